// The bytes a strided tensor's elements occupy, for the aliasing checks of the attention
// arguments. Spans are conservative: two tensors interleaved without sharing an element
// still count as overlapping, which no caller needs and which keeps the check exact to state.
#pragma once

#include <cstdint>
#include <optional>

#include "lvsa/attention.hpp"

namespace lvsa::cpu {

struct MemorySpan {
  uintptr_t begin = 0, end = 0;  // bytes [begin, end)

  bool overlaps(const MemorySpan& other) const { return begin < other.end && other.begin < end; }
};

inline int64_t element_size(DType dtype) { return dtype == DType::F32 ? 4 : is_quantized_score(dtype) ? 1 : 2; }

// From the first element to one past the last one the shape and (non-negative) strides
// reach; nullopt when that does not fit the address space. Shapes must be > 0.
inline std::optional<MemorySpan> memory_span(const TensorRef& t) {
  int64_t last = 0;  // element offset of the last element
  for (int i = 0; i < 4; ++i) {
    int64_t reach = 0;
    if (__builtin_mul_overflow(t.shape[i] - 1, t.stride[i], &reach) ||
        __builtin_add_overflow(last, reach, &last))
      return std::nullopt;
  }
  int64_t bytes = 0;
  if (__builtin_add_overflow(last, int64_t(1), &bytes) ||
      __builtin_mul_overflow(bytes, element_size(t.dtype), &bytes))
    return std::nullopt;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data);
  uintptr_t end = 0;
  if (__builtin_add_overflow(begin, uintptr_t(bytes), &end)) return std::nullopt;
  return MemorySpan{begin, end};
}

}  // namespace lvsa::cpu
