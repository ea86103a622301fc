// The QK prologue in one pass: RMSNorm over groups of a token's features, then rotary
// embedding on interleaved pairs, from a projection's output [B, S, H·D] into the [B, S, H, D]
// tensor the attention kernels read.
//
// In eager PyTorch the same work is a chain of full-size elementwise kernels per tensor (upcast,
// square, mean, scale, weight, split pairs, four products, strided writes), each a round trip
// through HBM, several in float32 (about 330 ms of a 3.55 s Wan 2.1 1.3B forward at 121 latent
// frames on an H200). Here every element is read once from HBM and written once.
//
// One warp per token row, for q and then k of that token, so that the row of the RoPE tables
// (a quarter of the bytes) comes from HBM once for both. A lane holds its 16-byte vectors of
// whole norm groups in registers (kHeld at a time): their loads are all in flight at once, the
// sum of squares is reduced with shuffles, and the held values are normalised, rotated and
// stored without a second read (docs/perf/prologue.md). A group is either at most one warp-wide
// chunk of vectors (G/8 <= 32 lanes, a per-head norm: HunyuanVideo 1.5) or whole chunks
// (G/8 a multiple of 32, a norm across heads: Wan), at most kHeld of them.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <string>

#include "common/params.hpp"
#include "common/vec16.cuh"
#include "lvsa/cuda.hpp"

namespace lvsa::cuda {
namespace {

constexpr int kVec = kVec16;
constexpr int kWarps = 8;
// Vectors a lane holds: 8 covers Wan 2.1 1.3B's 1536-feature group and every per-head norm
// (one kernel with few registers); 24 the widest group (Wan 14B: 5120 features, 20 chunks).
constexpr int kHeldNarrow = 8, kHeldWide = kNormRopeMaxGroup / (32 * kVec);

// Normalises, scales, rounds and rotates the 8 features of one held vector and stores them.
template <class T>
__device__ inline void finish_vector(const uint4& raw, float scale, const T* weight, const float* cos,
                                     const float* sin, int d, T* out) {
  using T2 = typename Pair<T>::T2;
  float e[kVec], w[kVec];
  unpack<T>(raw, e);
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
    float2 o = y;
    if (cos) {
      const float2 c2 = *reinterpret_cast<const float2*>(cos + d + i);
      const float2 s2 = *reinterpret_cast<const float2*>(sin + d + i);
      o = make_float2(y.x * c2.x - y.y * s2.x, y.y * c2.y + y.x * s2.y);
    }
    pairs[i / 2] = Pair<T>::from_float2(o);
  }
  *reinterpret_cast<uint4*>(out) = packed;
}

template <class T, int kHeld>
__global__ void __launch_bounds__(kWarps * 32) norm_rope_kernel(NormRopeParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= p.batch * p.rows) return;
  const int64_t b = row / p.rows, s = row % p.rows;
  const float* cos = p.cos ? p.cos + s * p.rope_row_stride : nullptr;
  const float* sin = p.sin ? p.sin + s * p.rope_row_stride : nullptr;

  const int vectors = p.heads * p.head_dim / kVec;
  const int group_vectors = p.group / kVec;
  // Lanes sharing one group within a chunk of 32 vectors, chunks one group spans, and chunks
  // held at once (whole groups).
  const int segment = group_vectors < 32 ? group_vectors : 32;
  const int chunks_per_group = group_vectors < 32 ? 1 : group_vectors / 32;
  const int held = kHeld / chunks_per_group * chunks_per_group;
  const float inv_group = 1.0f / float(p.group);

  for (int t = 0; t < p.input_count; ++t) {
    const NormRopeInput& in = p.inputs[t];
    const T* x = static_cast<const T*>(in.x) + b * in.x_batch_stride + s * in.x_row_stride;
    T* out = static_cast<T*>(in.out) + row * int64_t(p.heads) * p.head_dim;
    const T* weight = static_cast<const T*>(in.weight);
    for (int chunk0 = 0; chunk0 * 32 < vectors; chunk0 += held) {
      uint4 raw[kHeld];
      float sum[kHeld];
#pragma unroll
      for (int c = 0; c < kHeld; ++c) {
        const int v = (chunk0 + c) * 32 + lane;
        sum[c] = 0.0f;
        if (c < held && v < vectors) {
          raw[c] = *reinterpret_cast<const uint4*>(x + v * kVec);
          float e[kVec];
          unpack<T>(raw[c], e);
#pragma unroll
          for (int i = 0; i < kVec; ++i) sum[c] += e[i] * e[i];
        }
      }
      // Each group's sum of squares: its chunks' partial sums in its first chunk's slot, then
      // over its lanes. Every index is a compile-time one, so nothing goes to local memory.
      float scale[kHeld];
#pragma unroll
      for (int c = 0; c < kHeld; ++c) {
        if (c >= held || c % chunks_per_group != 0) continue;
        float total = 0.0f;
#pragma unroll
        for (int c2 = 0; c2 < kHeld; ++c2)
          if (c2 >= c && c2 < c + chunks_per_group) total += sum[c2];
        for (int offset = segment / 2; offset > 0; offset /= 2) total += __shfl_xor_sync(0xffffffffu, total, offset);
        const float r = rsqrtf(total * inv_group + in.eps);
#pragma unroll
        for (int c2 = 0; c2 < kHeld; ++c2)
          if (c2 >= c && c2 < c + chunks_per_group) scale[c2] = r;
      }
#pragma unroll
      for (int c = 0; c < kHeld; ++c) {
        const int feature = ((chunk0 + c) * 32 + lane) * kVec;
        if (c < held && feature < vectors * kVec)
          finish_vector<T>(raw[c], scale[c], weight ? weight + feature % p.group : nullptr, cos, sin,
                           feature % p.head_dim, out + feature);
      }
    }
  }
}

template <class T>
void launch(const NormRopeParams& p, cudaStream_t stream) {
  const int64_t rows = p.batch * p.rows;
  const dim3 grid(unsigned((rows + kWarps - 1) / kWarps)), block(kWarps * 32);
  if (p.group <= kHeldNarrow * 32 * kVec)
    norm_rope_kernel<T, kHeldNarrow><<<grid, block, 0, stream>>>(p);
  else
    norm_rope_kernel<T, kHeldWide><<<grid, block, 0, stream>>>(p);
}

[[noreturn]] void fail(const std::string& message) { throw Error("lvsa: cuda norm_rope: " + message); }

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

}  // namespace

void norm_rope(const NormRopeParams& p, cudaStream_t stream) {
  if (p.dtype != DType::BF16 && p.dtype != DType::F16) fail("x must be float16 or bfloat16");
  if (p.input_count < 1 || p.input_count > kNormRopeMaxInputs)
    fail("takes 1 or 2 inputs (q and k), got " + std::to_string(p.input_count));
  if (p.head_dim % kVec != 0) fail("head_dim must be a multiple of 8, got " + std::to_string(p.head_dim));
  const int64_t width = int64_t(p.heads) * p.head_dim;
  const int64_t group_vectors = p.group / kVec;
  if (p.group % kVec != 0 || width % p.group != 0 ||
      !((group_vectors <= 32 && 32 % group_vectors == 0) || group_vectors % 32 == 0))
    fail("the norm group of " + std::to_string(p.group) + " features must divide heads x head_dim = " +
         std::to_string(width) + " and be 8 x (a divisor of 32) or a multiple of 256 features");
  if (p.group > kNormRopeMaxGroup)
    fail("the norm group of " + std::to_string(p.group) + " features is wider than the " +
         std::to_string(kNormRopeMaxGroup) + " the kernel holds in registers");
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
