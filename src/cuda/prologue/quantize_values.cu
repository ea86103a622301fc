// fp8 values' input: v as the V^T that the sm90 kernels with fp8 values read (AttentionParams::
// v_descale says the layout), in one pass after the statistics (score_stats, whose per-feature
// minimum and maximum give the scale).
//
// A block per 64 keys of one (batch, head): it reads the keys' rows of v (16-byte loads, zeros
// for encoder padding and for keys past the sequence, which the kernel reads past an interval's
// end and must meet as finite zeros), keeps them in shared memory as float, and writes each
// feature's 64 keys as four 16-byte stores of 16 keys each, in the order the kernel's
// probabilities come in (position 4t + c of a group holds key 8(c >> 1) + 2t + (c & 1): see
// sm90/mainloop.cuh, to_operand).
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <string>

#include "common/params.hpp"
#include "common/vec16.cuh"
#include "lvsa/cuda.hpp"
#include "prologue/score_tensor.cuh"

namespace lvsa::cuda {
namespace {

using prologue::check_rows, prologue::fail, prologue::launched, prologue::padded_rows, prologue::PaddedRows,
    prologue::row_of;

constexpr int kThreads = 256;
constexpr int kBlockKeys = 64;
constexpr int kGroup = 16;  // keys per permuted group, one 16-byte store
constexpr int kMaxHeadDim = 128;

// The key at position `pos` of a permuted group of 16.
__device__ constexpr int permuted_key(int pos) { return 8 * ((pos & 3) >> 1) + 2 * (pos >> 2) + (pos & 1); }

__global__ void __launch_bounds__(kThreads) value_quantize_kernel(ValueQuantizeParams p) {
  const ScoreTensor& x = p.x;
  const int h = blockIdx.y;
  const int64_t b = blockIdx.z;
  const int64_t key0 = int64_t(blockIdx.x) * kBlockKeys;
  const int D = x.head_dim;
  const PaddedRows padded = padded_rows(x, b);
  // +1 float per row: the stores below read a column (16 keys of one feature) without bank conflicts.
  __shared__ float tile[kBlockKeys][kMaxHeadDim + 1];
  const int lanes = D / kVec16;
  for (int i = threadIdx.x; i < kBlockKeys * lanes; i += kThreads) {
    const int k = i / lanes, f = (i - k * lanes) * kVec16;
    const int64_t key = key0 + k;
    float e[kVec16] = {};
    if (key < x.rows && !padded.contains(key))
      unpack<__nv_bfloat16>(*reinterpret_cast<const uint4*>(row_of(x, b, key, h) + f), e);
#pragma unroll
    for (int j = 0; j < kVec16; ++j) tile[k][f + j] = e[j];
  }
  __syncthreads();
  // x times the reciprocal of its scale, as the reference computes it (an IEEE reciprocal).
  const float inverse = __frcp_rn(p.descale[b * x.heads + h]);
  constexpr int kGroups = kBlockKeys / kGroup;
  for (int i = threadIdx.x; i < D * kGroups; i += kThreads) {
    const int g = i % kGroups, d = i / kGroups;  // adjacent threads: adjacent 16-byte stores
    const int64_t first = key0 + g * kGroup;
    if (first >= p.row_keys) continue;
    uint32_t packed[4];
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const float* col = &tile[g * kGroup][d];
      const int k0 = permuted_key(4 * w), k1 = permuted_key(4 * w + 1), k2 = permuted_key(4 * w + 2),
                k3 = permuted_key(4 * w + 3);
      const uint32_t lo = __nv_cvt_float2_to_fp8x2(
          make_float2(col[k0 * (kMaxHeadDim + 1)] * inverse, col[k1 * (kMaxHeadDim + 1)] * inverse), __NV_SATFINITE,
          __NV_E4M3);
      const uint32_t hi = __nv_cvt_float2_to_fp8x2(
          make_float2(col[k2 * (kMaxHeadDim + 1)] * inverse, col[k3 * (kMaxHeadDim + 1)] * inverse), __NV_SATFINITE,
          __NV_E4M3);
      packed[w] = lo | (hi << 16);
    }
    auto* out = static_cast<uint8_t*>(p.out) + ((b * x.heads + h) * D + d) * p.row_keys + first;
    *reinterpret_cast<uint4*>(out) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  }
}

constexpr const char* kKernel = "value_quantize";

}  // namespace

void value_quantize(const ValueQuantizeParams& p, cudaStream_t stream) {
  const ScoreTensor& x = p.x;
  if (x.head_dim < kVec16 || x.head_dim % kVec16 != 0 || x.head_dim > kMaxHeadDim)
    fail(kKernel, "head_dim must be a multiple of " + std::to_string(kVec16) + " up to " +
                      std::to_string(kMaxHeadDim) + ", got " + std::to_string(x.head_dim));
  check_rows(x, kKernel, "v");
  if (p.row_keys < value_row_keys(x.rows) || p.row_keys % 16 != 0)
    fail(kKernel, "row_keys must be a multiple of 16 and at least " + std::to_string(value_row_keys(x.rows)) +
                      ", got " + std::to_string(p.row_keys));
  if (reinterpret_cast<uintptr_t>(p.out) % 16 != 0) fail(kKernel, "out must be 16-byte aligned");
  if (x.batch == 0 || x.rows == 0) return;
  const dim3 grid(unsigned((p.row_keys + kBlockKeys - 1) / kBlockKeys), unsigned(x.heads), unsigned(x.batch));
  value_quantize_kernel<<<grid, kThreads, 0, stream>>>(p);
  launched("launching value_quantize");
}

}  // namespace lvsa::cuda
