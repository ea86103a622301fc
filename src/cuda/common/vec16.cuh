// 16-bit element pairs and 16-byte vectors of them in float32, for the elementwise prologue
// kernels (prologue/): each thread reads 8 bfloat16 or float16 elements as one 16-byte load.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace lvsa::cuda {

inline constexpr int kVec16 = 8;  // 16-bit elements per 16-byte vector

// The packed pair type of T and its float2 conversions (round to nearest even).
template <class T>
struct Pair;
template <>
struct Pair<__nv_bfloat16> {
  using T2 = __nv_bfloat162;
  static __device__ float2 to_float2(T2 v) { return __bfloat1622float2(v); }
  static __device__ T2 from_float2(float2 v) { return __float22bfloat162_rn(v); }
};
template <>
struct Pair<__half> {
  using T2 = __half2;
  static __device__ float2 to_float2(T2 v) { return __half22float2(v); }
  static __device__ T2 from_float2(float2 v) { return __float22half2_rn(v); }
};

// The 8 elements of a 16-byte vector of T, in float32.
template <class T>
__device__ inline void unpack(const uint4& raw, float (&x)[kVec16]) {
  const auto* pairs = reinterpret_cast<const typename Pair<T>::T2*>(&raw);
#pragma unroll
  for (int i = 0; i < kVec16 / 2; ++i) {
    const float2 f = Pair<T>::to_float2(pairs[i]);
    x[2 * i] = f.x;
    x[2 * i + 1] = f.y;
  }
}

}  // namespace lvsa::cuda
