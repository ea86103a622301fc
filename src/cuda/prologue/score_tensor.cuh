// What the quantisers of q, k (quantize_scores.cu) and v (quantize_values.cu) share about the
// ScoreTensor they read: its rows, its encoder padding, the host checks of its layout and of a
// launch.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <string>

#include "lvsa/cuda.hpp"

namespace lvsa::cuda::prologue {

// The padded rows [begin, end) of batch b (empty without padding), read once per block.
struct PaddedRows {
  int64_t begin = 0, end = 0;
  __device__ bool contains(int64_t row) const { return row >= begin && row < end; }
};

__device__ inline PaddedRows padded_rows(const ScoreTensor& x, int64_t b) {
  if (!x.encoder_valid) return {};
  const int64_t valid = min(max(int64_t(x.encoder_valid[b]), int64_t(0)), x.encoder_len);
  return {x.encoder_begin + valid, x.encoder_begin + x.encoder_len};
}

__device__ inline const __nv_bfloat16* row_of(const ScoreTensor& x, int64_t b, int64_t row, int h) {
  return static_cast<const __nv_bfloat16*>(x.x) + b * x.batch_stride + row * x.row_stride + h * x.head_stride;
}

[[noreturn]] inline void fail(const char* kernel, const std::string& message) {
  throw Error(std::string("lvsa: cuda ") + kernel + ": " + message);
}

// 16-byte loads of every row, and a grid of (..., heads, batch) or (..., batch): `name` is the
// tensor as the messages call it.
inline void check_rows(const ScoreTensor& x, const char* kernel, const char* name) {
  if (reinterpret_cast<uintptr_t>(x.x) % 16 != 0 || x.batch_stride % 8 || x.row_stride % 8 || x.head_stride % 8)
    fail(kernel, std::string(name) + " must be 16-byte aligned, with batch, row and head strides multiples of 8 "
                 "elements");
  if (x.batch < 0 || x.rows < 0 || x.heads <= 0 || x.batch > 65535 || x.heads > 65535)
    fail(kernel, "batch and heads must be in [1, 65535], got batch " + std::to_string(x.batch) + ", heads " +
                     std::to_string(x.heads));
}

inline void launched(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw_cuda_error(what, int(err));
}

}  // namespace lvsa::cuda::prologue
