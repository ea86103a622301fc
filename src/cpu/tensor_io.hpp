// Strided row access to [B, S, H, D] tensors of any supported dtype.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "convert.hpp"
#include "lvsa/attention.hpp"

namespace lvsa::cpu {

// Element offset of t[b, s, h, 0].
inline int64_t row_offset(const TensorRef& t, int64_t b, int64_t s, int64_t h) {
  return b * t.stride[0] + s * t.stride[1] + h * t.stride[2];
}

// Converts the D elements of the row at `offset` to Out (float or double).
template <class Out>
void load_row(const TensorRef& t, int64_t offset, int64_t n, Out* dst) {
  const int64_t sd = t.stride[3];
  switch (t.dtype) {
    case DType::F32: {
      const float* src = static_cast<const float*>(t.data) + offset;
      if constexpr (std::is_same_v<Out, float>) {
        if (sd == 1) {
          std::memcpy(dst, src, size_t(n) * sizeof(float));
          break;
        }
      }
      for (int64_t d = 0; d < n; ++d) dst[d] = Out(src[d * sd]);
      break;
    }
    case DType::F16: {
      const uint16_t* src = static_cast<const uint16_t*>(t.data) + offset;
      for (int64_t d = 0; d < n; ++d) dst[d] = Out(half_to_float(src[d * sd]));
      break;
    }
    case DType::BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(t.data) + offset;
      for (int64_t d = 0; d < n; ++d) dst[d] = Out(bf16_to_float(src[d * sd]));
      break;
    }
    case DType::E4M3:  // quantised scores: refused before any row is read (refuse_quantized_scores)
    case DType::I8:
      break;
  }
}

// Rounds the n floats of src to t's dtype and writes them to the row at `offset`.
inline void store_row(const TensorRef& t, int64_t offset, int64_t n, const float* src) {
  const int64_t sd = t.stride[3];
  switch (t.dtype) {
    case DType::F32: {
      float* dst = static_cast<float*>(t.data) + offset;
      for (int64_t d = 0; d < n; ++d) dst[d * sd] = src[d];
      break;
    }
    case DType::F16: {
      uint16_t* dst = static_cast<uint16_t*>(t.data) + offset;
      for (int64_t d = 0; d < n; ++d) dst[d * sd] = float_to_half(src[d]);
      break;
    }
    case DType::BF16: {
      uint16_t* dst = static_cast<uint16_t*>(t.data) + offset;
      for (int64_t d = 0; d < n; ++d) dst[d * sd] = float_to_bf16(src[d]);
      break;
    }
    case DType::E4M3:  // never an output dtype (validate_attention)
    case DType::I8:
      break;
  }
}

}  // namespace lvsa::cpu
