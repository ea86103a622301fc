// The QK prologue in one pass: RMSNorm over groups of a token's features, then rotary
// embedding on interleaved pairs, from a projection's output [B, S, H·D] into the [B, S, H, D]
// tensor the attention kernels read.
//
// In eager PyTorch the same work is a chain of full-size elementwise kernels per tensor (upcast,
// square, mean, scale, weight, split pairs, four products, strided writes), each a round trip
// through HBM, several in float32 (about 330 ms of a 3.55 s Wan 2.1 1.3B forward at 121 latent
// frames on an H200). Here every element is read once from HBM and written once.
//
// One warp per token and input; the warps of a token's q and k sit in one block, so the token's
// row of the RoPE tables (a tenth of the bytes) comes from HBM once for both. A warp first copies
// its row into shared memory with cp.async, every load in flight at once whatever the row's
// width and without holding it in registers (a kernel that held rows in registers, or both of a
// token's rows per warp, had too few warps per SM to reach the HBM bandwidth;
// docs/perf/prologue.md). Each lane reads back only the vectors it copied, so no barrier is
// needed. A lane's features sit at the same offset of every head (head_dim divides 256 = 32 lanes
// x 8), so its 16 table entries are read once per row. A norm group is either at most one
// warp-wide chunk of vectors (G/8 <= 32 lanes, a per-head norm: HunyuanVideo 1.5) or whole
// chunks (G/8 a multiple of 32, a norm across heads: Wan); its sum of squares is reduced with
// shuffles.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "common/params.hpp"
#include "common/ptx.cuh"
#include "common/vec16.cuh"
#include "lvsa/cuda.hpp"

namespace lvsa::cuda {
namespace {

constexpr int kVec = kVec16;
constexpr int kMaxWarps = 4;  // rows per block: small blocks, so that wide rows still fit several per SM

// Normalises, scales and rounds the 8 features `e` of one vector, rotates them by the lane's
// table entries (or not: rope false) and stores them.
template <class T>
__device__ inline void finish_vector(const float (&e)[kVec], float scale, const T* weight, bool rope,
                                     const float (&cos)[kVec], const float (&sin)[kVec], T* out) {
  using T2 = typename Pair<T>::T2;
  float w[kVec];
  if (weight) {
    unpack<T>(*reinterpret_cast<const uint4*>(weight), w);
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i) w[i] = 1.0f;
  }
  uint4 packed;
  auto* pairs = reinterpret_cast<T2*>(&packed);
#pragma unroll
  for (int i = 0; i < kVec; i += 2) {
    // The norm's output is rounded to the model's dtype, as the model's own norm returns it,
    // and the rotation reads those rounded values.
    const float2 y = Pair<T>::to_float2(Pair<T>::from_float2(make_float2(e[i] * scale * w[i], e[i + 1] * scale * w[i + 1])));
    const float2 o = rope ? make_float2(y.x * cos[i] - y.y * sin[i], y.y * cos[i + 1] + y.x * sin[i + 1]) : y;
    pairs[i / 2] = Pair<T>::from_float2(o);
  }
  *reinterpret_cast<uint4*>(out) = packed;
}

template <class T>
__device__ inline float sum_of_squares(const T* staged, float (&e)[kVec]) {
  unpack<T>(*reinterpret_cast<const uint4*>(staged), e);
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < kVec; ++i) sum += e[i] * e[i];
  return sum;
}

template <class T>
__global__ void __launch_bounds__(kMaxWarps * 32) norm_rope_kernel(NormRopeParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  // Warp w of a block: input w % input_count of a token (blocks hold whole tokens).
  const int64_t row = (int64_t(blockIdx.x) * (blockDim.x / 32) + warp) / p.input_count;
  if (row >= p.batch * p.rows) return;
  const NormRopeInput& in = p.inputs[warp % p.input_count];
  const int64_t b = row / p.rows, s = row % p.rows;
  const int width = p.heads * p.head_dim, vectors = width / kVec;
  T* xs = reinterpret_cast<T*>(smem) + int64_t(warp) * width;
  const T* x = static_cast<const T*>(in.x) + b * in.x_batch_stride + s * in.x_row_stride;
  for (int v = lane; v < vectors; v += 32) ptx::cp_async_16(ptx::smem_addr(xs + v * kVec), x + v * kVec, true);
  ptx::cp_async_commit();

  const bool rope = p.cos != nullptr;
  float cos[kVec], sin[kVec];
  if (rope) {
    const int d = (lane * kVec) % p.head_dim;
    const float* c = p.cos + s * p.rope_row_stride + d;
    const float* sn = p.sin + s * p.rope_row_stride + d;
#pragma unroll
    for (int i = 0; i < kVec; i += 2) {
      const float2 c2 = *reinterpret_cast<const float2*>(c + i), s2 = *reinterpret_cast<const float2*>(sn + i);
      cos[i] = c2.x, cos[i + 1] = c2.y, sin[i] = s2.x, sin[i + 1] = s2.y;
    }
  }

  const int group_vectors = p.group / kVec;
  const float inv_group = 1.0f / float(p.group);
  T* out = static_cast<T*>(in.out) + row * width;
  const T* weight = static_cast<const T*>(in.weight);
  ptx::cp_async_wait<0>();
  float e[kVec];
  if (group_vectors < 32) {  // groups of `group_vectors` lanes within each chunk
    for (int v = lane; v - lane < vectors; v += 32) {
      float sum = v < vectors ? sum_of_squares(xs + v * kVec, e) : 0.0f;
      for (int offset = group_vectors / 2; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      if (v < vectors)
        finish_vector<T>(e, rsqrtf(sum * inv_group + in.eps), weight ? weight + v * kVec % p.group : nullptr, rope,
                         cos, sin, out + v * kVec);
    }
  } else {  // each group spans whole chunks: sum them, reduce over the warp, then finish them
    for (int g = 0; g < vectors; g += group_vectors) {
      float sum = 0.0f;
      for (int v = g + lane; v < g + group_vectors; v += 32) sum += sum_of_squares(xs + v * kVec, e);
      for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      const float scale = rsqrtf(sum * inv_group + in.eps);
      for (int v = g + lane; v < g + group_vectors; v += 32) {
        unpack<T>(*reinterpret_cast<const uint4*>(xs + v * kVec), e);
        finish_vector<T>(e, scale, weight ? weight + (v - g) * kVec : nullptr, rope, cos, sin, out + v * kVec);
      }
    }
  }
}

[[noreturn]] void fail(const std::string& message) { throw Error("lvsa: cuda norm_rope: " + message); }

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

template <class T>
void launch(const NormRopeParams& p, cudaStream_t stream) {
  int device = 0, smem_optin = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  const int64_t row_bytes = int64_t(p.heads) * p.head_dim * int64_t(sizeof(T));
  // Whole tokens per block: a multiple of input_count warps.
  const int warps = int(std::min<int64_t>(kMaxWarps, smem_optin / row_bytes)) / p.input_count * p.input_count;
  if (warps == 0)
    fail("a token's " + std::to_string(p.input_count) + " input row(s) of " + std::to_string(p.heads * p.head_dim) +
         " features do not fit in one block's shared memory (" + std::to_string(smem_optin) + " bytes)");
  const int smem = int(warps * row_bytes);
  if (smem > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(norm_rope_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (err != cudaSuccess) throw_cuda_error("setting norm_rope's shared memory", int(err));
  }
  const int64_t tokens_per_block = warps / p.input_count, rows = p.batch * p.rows;
  norm_rope_kernel<T><<<unsigned((rows + tokens_per_block - 1) / tokens_per_block), warps * 32, smem, stream>>>(p);
}

}  // namespace

void norm_rope(const NormRopeParams& p, cudaStream_t stream) {
  if (p.dtype != DType::BF16 && p.dtype != DType::F16) fail("x must be float16 or bfloat16");
  if (p.input_count < 1 || p.input_count > kNormRopeMaxInputs)
    fail("takes 1 or 2 inputs (q and k), got " + std::to_string(p.input_count));
  if (p.head_dim % kVec != 0 || 256 % p.head_dim != 0)
    fail("head_dim must be a multiple of 8 that divides 256, got " + std::to_string(p.head_dim));
  const int64_t width = int64_t(p.heads) * p.head_dim;
  const int64_t group_vectors = p.group / kVec;
  if (p.group % kVec != 0 || width % p.group != 0 ||
      !((group_vectors <= 32 && 32 % group_vectors == 0) || group_vectors % 32 == 0))
    fail("the norm group of " + std::to_string(p.group) + " features must divide heads x head_dim = " +
         std::to_string(width) + " and be 8 x (a divisor of 32) or a multiple of 256 features");
  if (p.cos && (!p.sin || p.rope_row_stride < p.head_dim))
    fail("the RoPE tables need cos and sin of at least head_dim columns per row");
  for (int t = 0; t < p.input_count; ++t) {
    const NormRopeInput& in = p.inputs[t];
    if (!aligned16(in.x) || !aligned16(in.out) || (in.weight && !aligned16(in.weight)) ||
        in.x_row_stride % kVec != 0 || in.x_batch_stride % kVec != 0)
      fail("input " + std::to_string(t) + ": x, out and weight must be 16-byte aligned, with x's row and "
           "batch strides multiples of 8 elements");
  }
  if ((p.cos && (reinterpret_cast<uintptr_t>(p.cos) % 8 || reinterpret_cast<uintptr_t>(p.sin) % 8)) ||
      p.rope_row_stride % 2 != 0)
    fail("the RoPE tables must be 8-byte aligned with an even row stride");
  if (p.batch * p.rows == 0) return;
  if (p.dtype == DType::BF16)
    launch<__nv_bfloat16>(p, stream);
  else
    launch<__half>(p, stream);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw_cuda_error("launching norm_rope", int(err));
}

}  // namespace lvsa::cuda
