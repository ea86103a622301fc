// The QK prologue in one pass: RMSNorm over groups of a token's features, then rotary
// embedding on interleaved pairs, from a projection's output [B, S, H·D] into the [B, S, H, D]
// tensor the attention kernels read.
//
// In eager PyTorch the same work is a chain of full-size elementwise kernels per tensor (upcast,
// square, mean, scale, weight, split pairs, four products, strided writes), each a round trip
// through HBM, several in float32 (about 330 ms of a 3.55 s Wan 2.1 1.3B forward at 121 latent
// frames on an H200). Here every element is read once from HBM and written once (38 ms).
//
// One warp per token row. A norm group of G features is either at most one warp-wide chunk of
// 16-byte vectors (G/8 <= 32 lanes, a per-head norm: HunyuanVideo 1.5) or a whole number
// of them (G/8 a multiple of 32, a norm across heads: Wan). The group's sum of squares is reduced
// with shuffles, then the group is read again (an L1 hit) to normalise, rotate and store.
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

template <class T>
__global__ void __launch_bounds__(kWarps * 32) norm_rope_kernel(NormRopeParams p) {
  using T2 = typename Pair<T>::T2;
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= p.batch * p.rows) return;
  const int64_t b = row / p.rows, s = row % p.rows;
  const T* x = static_cast<const T*>(p.x) + b * p.x_batch_stride + s * p.x_row_stride;
  T* out = static_cast<T*>(p.out) + row * int64_t(p.heads) * p.head_dim;
  const T* weight = static_cast<const T*>(p.weight);
  const float* cos = p.cos ? p.cos + s * p.rope_row_stride : nullptr;
  const float* sin = p.sin ? p.sin + s * p.rope_row_stride : nullptr;

  const int vectors = p.heads * p.head_dim / kVec;
  const int group_vectors = p.group / kVec;
  // Lanes sharing one group within a chunk of 32 vectors, and chunks one group spans.
  const int segment = group_vectors < 32 ? group_vectors : 32;
  const int chunks_per_group = group_vectors < 32 ? 1 : group_vectors / 32;
  const float inv_group = 1.0f / float(p.group);

  for (int chunk0 = 0; chunk0 * 32 < vectors; chunk0 += chunks_per_group) {
    float sum = 0.0f;
    for (int c = 0; c < chunks_per_group; ++c) {
      const int v = (chunk0 + c) * 32 + lane;
      if (v < vectors) {
        float e[kVec];
        unpack<T>(*reinterpret_cast<const uint4*>(x + v * kVec), e);
#pragma unroll
        for (int i = 0; i < kVec; ++i) sum += e[i] * e[i];
      }
    }
    for (int offset = segment / 2; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    const float scale = rsqrtf(sum * inv_group + p.eps);

    for (int c = 0; c < chunks_per_group; ++c) {
      const int v = (chunk0 + c) * 32 + lane;
      if (v >= vectors) continue;
      const int feature = v * kVec;
      float e[kVec], w[kVec];
      unpack<T>(*reinterpret_cast<const uint4*>(x + feature), e);
      if (weight) {
        unpack<T>(*reinterpret_cast<const uint4*>(weight + feature % p.group), w);
      } else {
#pragma unroll
        for (int i = 0; i < kVec; ++i) w[i] = 1.0f;
      }
      // The norm's output is rounded to the model's dtype, as the model's own norm returns it,
      // and the rotation reads those rounded values.
      float y[kVec];
#pragma unroll
      for (int i = 0; i < kVec; i += 2) {
        const float2 r = Pair<T>::to_float2(Pair<T>::from_float2(make_float2(e[i] * scale * w[i], e[i + 1] * scale * w[i + 1])));
        y[i] = r.x;
        y[i + 1] = r.y;
      }
      uint4 packed;
      auto* pairs = reinterpret_cast<T2*>(&packed);
      const int d = feature % p.head_dim;
#pragma unroll
      for (int i = 0; i < kVec; i += 2) {
        float2 o = make_float2(y[i], y[i + 1]);
        if (cos) {
          const float2 c2 = *reinterpret_cast<const float2*>(cos + d + i);
          const float2 s2 = *reinterpret_cast<const float2*>(sin + d + i);
          o = make_float2(y[i] * c2.x - y[i + 1] * s2.x, y[i + 1] * c2.y + y[i] * s2.y);
        }
        pairs[i / 2] = Pair<T>::from_float2(o);
      }
      *reinterpret_cast<uint4*>(out + feature) = packed;
    }
  }
}

[[noreturn]] void fail(const std::string& message) { throw Error("lvsa: cuda norm_rope: " + message); }

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

}  // namespace

void norm_rope(const NormRopeParams& p, cudaStream_t stream) {
  if (p.dtype != DType::BF16 && p.dtype != DType::F16) fail("x must be float16 or bfloat16");
  if (p.head_dim % kVec != 0) fail("head_dim must be a multiple of 8, got " + std::to_string(p.head_dim));
  const int64_t width = int64_t(p.heads) * p.head_dim;
  const int64_t group_vectors = p.group / kVec;
  if (p.group % kVec != 0 || width % p.group != 0 ||
      !((group_vectors <= 32 && 32 % group_vectors == 0) || group_vectors % 32 == 0))
    fail("the norm group of " + std::to_string(p.group) + " features must divide heads x head_dim = " +
         std::to_string(width) + " and be 8 x (a divisor of 32) or a multiple of 256 features");
  if (p.cos && (!p.sin || p.rope_row_stride < p.head_dim))
    fail("the RoPE tables need cos and sin of at least head_dim columns per row");
  if (!aligned16(p.x) || !aligned16(p.out) || (p.weight && !aligned16(p.weight)) ||
      p.x_row_stride % kVec != 0 || p.x_batch_stride % kVec != 0)
    fail("x, out and weight must be 16-byte aligned, with x's row and batch strides multiples of 8 elements");
  if ((p.cos && (reinterpret_cast<uintptr_t>(p.cos) % 8 || reinterpret_cast<uintptr_t>(p.sin) % 8)) ||
      p.rope_row_stride % 2 != 0)
    fail("the RoPE tables must be 8-byte aligned with an even row stride");
  const int64_t rows = p.batch * p.rows;
  if (rows == 0) return;
  const dim3 grid(unsigned((rows + kWarps - 1) / kWarps)), block(kWarps * 32);
  if (p.dtype == DType::BF16)
    norm_rope_kernel<__nv_bfloat16><<<grid, block, 0, stream>>>(p);
  else
    norm_rope_kernel<__half><<<grid, block, 0, stream>>>(p);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw_cuda_error("launching norm_rope", int(err));
}

}  // namespace lvsa::cuda
