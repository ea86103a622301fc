// fp16 / bf16 <-> fp32 conversions of the CPU backends.
//
// Written as branch-free integer and float arithmetic so the loops that call them
// auto-vectorise with plain SSE2, and so the results do not depend on F16C being present.
// They rely on the default IEEE rounding mode; the project never builds with -ffast-math.
#pragma once

#include <bit>
#include <cstdint>

namespace lvsa::cpu {

inline float bf16_to_float(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

// Round to nearest, ties to even; NaN stays a (quiet) NaN instead of rounding into Inf.
inline uint16_t float_to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Moving the 15 non-sign bits up by 13 gives a float whose exponent is short by 112;
// multiplying by 2^112 fixes that and normalises subnormal halves for free.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t rest = h & 0x7fffu;
  float magnitude = std::bit_cast<float>(rest << 13) * 0x1p112f;
  if (rest >= 0x7c00u) magnitude = std::bit_cast<float>((rest << 13) | 0x7f800000u);  // Inf, NaN
  return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | sign);
}

// IEEE round to nearest even, including subnormal results, overflow to Inf and NaN.
// Adding a power of two chosen from the input's exponent makes the float adder perform
// the rounding at exactly the bit where the half mantissa ends (the scale factors first
// push overflowing values to Inf and bring the rest into range).
inline uint16_t float_to_half(float f) {
  const uint32_t w = std::bit_cast<uint32_t>(f);
  const uint32_t twice = w + w;  // drops the sign
  const uint32_t sign = w & 0x80000000u;
  const float magnitude = std::bit_cast<float>(twice >> 1);
  float base = (magnitude * 0x1p112f) * 0x1p-110f;
  uint32_t bias = twice & 0xff000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;  // results below 2^-14 round as subnormals
  base = std::bit_cast<float>((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = std::bit_cast<uint32_t>(base);
  const uint32_t nonsign = ((bits >> 13) & 0x7c00u) + (bits & 0x0fffu);
  return uint16_t((sign >> 16) | (twice > 0xff000000u ? 0x7e00u : nonsign));
}

}  // namespace lvsa::cpu
