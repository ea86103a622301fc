// CPU attention backends against an independent oracle.
//
// The oracle here is deliberately naive and shares no code with the library: it derives the
// boolean mask from plan.pattern.attended(f) (frames, not the lowered key ranges) plus the
// encoder rules of the spec, and runs masked dense softmax in double. The reference backend
// must match it to dtype rounding, and the fast path must match the reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../../src/cpu/convert.hpp"
#include "lvsa/attention.hpp"

namespace {

using lvsa::DType;
using lvsa::EncoderSide;
using lvsa::Geometry;
using lvsa::PatternConfig;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- independent dtype handling --------------------------------------------------------

size_t element_size(DType t) { return t == DType::F32 ? 4 : 2; }

float half_value(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (e == 0x1f) return m ? kNaN : sign * std::numeric_limits<float>::infinity();
  if (e == 0) return sign * std::ldexp(float(m), -24);
  return sign * std::ldexp(float(1024 + m), e - 25);
}

float decode(DType t, const uint8_t* p) {
  if (t == DType::F32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return t == DType::BF16 ? std::bit_cast<float>(uint32_t(h) << 16) : half_value(h);
}

// Encodes x, which the caller guarantees is representable (a normal number in range).
void encode_exact(DType t, float x, uint8_t* p) {
  if (t == DType::F32) {
    std::memcpy(p, &x, 4);
    return;
  }
  uint16_t h;
  if (t == DType::BF16) {
    h = uint16_t(std::bit_cast<uint32_t>(x) >> 16);
  } else {
    int e;
    const float m = std::frexp(std::fabs(x), &e);  // |x| = m * 2^e, m in [0.5, 1)
    h = uint16_t((x < 0 ? 0x8000 : 0) | ((e + 14) << 10) | (int(m * 2048) - 1024));
  }
  std::memcpy(p, &h, 2);
}

// A random value representable in t, never zero, magnitude in [1/16, 1).
float random_value(DType t, std::mt19937& rng) {
  std::uniform_real_distribution<float> mag(0.0625f, 1.0f);
  float x = mag(rng) * (rng() & 1 ? 1.0f : -1.0f);
  if (t == DType::BF16) x = std::bit_cast<float>(std::bit_cast<uint32_t>(x) & 0xffff0000u);
  if (t == DType::F16) {
    int e;
    const float m = std::frexp(x, &e);
    x = std::ldexp(std::trunc(m * 2048) / 2048, e);
  }
  return x;
}

// ---- tensors in a byte buffer with arbitrary strides ------------------------------------

struct Storage {
  DType dtype;
  std::vector<uint8_t> bytes;
  Storage(DType t, size_t elements) : dtype(t), bytes(elements * element_size(t)) {}
  lvsa::TensorRef view(int64_t offset, std::vector<int64_t> shape, std::vector<int64_t> stride) {
    lvsa::TensorRef r;
    r.data = bytes.data() + offset * element_size(dtype);
    r.dtype = dtype;
    for (int i = 0; i < 4; ++i) r.shape[i] = shape[i], r.stride[i] = stride[i];
    return r;
  }
  // Every element NaN (or a NaN-like pattern for the 16-bit types).
  void poison() {
    for (size_t i = 0; i < bytes.size(); i += element_size(dtype)) {
      if (dtype == DType::F32) std::memcpy(&bytes[i], &kNaN, 4);
      else bytes[i] = 0xff, bytes[i + 1] = 0x7f;
    }
  }
};

uint8_t* at(const lvsa::TensorRef& t, int64_t b, int64_t s, int64_t h, int64_t d) {
  return static_cast<uint8_t*>(t.data) +
         (b * t.stride[0] + s * t.stride[1] + h * t.stride[2] + d * t.stride[3]) *
             int64_t(element_size(t.dtype));
}

// ---- the naive oracle -----------------------------------------------------------------

struct Result {
  std::vector<double> out;  // [B, Sq, Hq, D]
  std::vector<double> lse;  // [B, Hq, Sq]
};

// mask(b, i, j): may query row i attend to key j? Masked dense softmax in double.
template <class Mask>
Result masked_dense(const lvsa::AttentionParams& p, double scale, const Mask& mask) {
  const int64_t B = p.q.shape[0], Sq = p.q.shape[1], Hq = p.q.shape[2], D = p.q.shape[3];
  const int64_t Sk = p.k.shape[1], g = Hq / p.k.shape[2];
  Result r{std::vector<double>(B * Sq * Hq * D, 0.0), std::vector<double>(B * Hq * Sq, -kInf)};
  std::vector<double> logit(Sk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Sq; ++i) {
        double mx = -kInf;
        for (int64_t j = 0; j < Sk; ++j) {
          logit[j] = -kInf;
          if (!mask(b, i, j)) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += double(decode(p.q.dtype, at(p.q, b, i, h, d))) *
                   double(decode(p.k.dtype, at(p.k, b, j, h / g, d)));
          logit[j] = dot * scale;
          mx = std::max(mx, logit[j]);
        }
        if (mx == -kInf) continue;
        double sum = 0;
        double* o = &r.out[((b * Sq + i) * Hq + h) * D];
        for (int64_t j = 0; j < Sk; ++j) {
          if (logit[j] == -kInf) continue;
          const double w = std::exp(logit[j] - mx);
          sum += w;
          for (int64_t d = 0; d < D; ++d) o[d] += w * double(decode(p.v.dtype, at(p.v, b, j, h / g, d)));
        }
        for (int64_t d = 0; d < D; ++d) o[d] /= sum;
        r.lse[(b * Hq + h) * Sq + i] = mx + std::log(sum);
      }
  return r;
}

// The spec's mask, written from the frame pattern and the layout rules directly.
Result oracle(const lvsa::StepPlan& plan, const lvsa::AttentionParams& p,
              const std::vector<int32_t>& valid, double scale) {
  const Geometry& g = plan.ranges.geometry;
  const int64_t T = g.frames, P = g.tokens_per_frame, E = g.encoder_len;
  const int64_t video0 = g.encoder_side == EncoderSide::Before ? E : 0;
  const int64_t enc0 = g.encoder_side == EncoderSide::Before ? 0 : T * P;
  const bool video_only = E > 0 && p.q.shape[1] == T * P;
  std::vector<std::vector<bool>> sees(T, std::vector<bool>(T, false));
  for (int f = 0; f < T; ++f)
    for (int x : plan.pattern.attended(f)) sees[f][x] = true;
  const auto valid_len = [&](int64_t b) { return valid.empty() ? E : int64_t(valid[b]); };
  return masked_dense(p, scale, [&](int64_t b, int64_t i, int64_t j) {
    const bool key_video = j >= video0 && j < video0 + T * P;
    const bool key_ok = key_video || j - enc0 < valid_len(b);
    const int64_t qi = video_only ? i + video0 : i;  // the query's sequence position
    if (qi >= video0 && qi < video0 + T * P)
      return key_video ? bool(sees[(qi - video0) / P][(j - video0) / P]) : key_ok;
    return qi - enc0 < valid_len(b) && key_ok;  // encoder query: dense over valid keys
  });
}

// ---- one attention problem, its buffers, and the checks ----------------------------------

struct Case {
  Geometry g;
  PatternConfig cfg;
  int64_t step = 0;
  int B = 1, Hq = 2, Hkv = 2, D = 64;
  bool video_only = false;
  std::vector<int32_t> valid;  // empty: encoder_valid = null
  bool packed = false;         // q/k/v slices of one qkv tensor, out head-major with gaps
  float scale = 0.0f;
  int threads = 2;
};

struct Problem {
  lvsa::StepPlan plan;
  Storage inputs, out;
  std::vector<uint8_t> inputs_before;
  lvsa::AttentionParams params;
  std::vector<float> lse;
  int64_t out_gap_begin = 0;  // out elements that are not part of the view (packed layout)

  Problem(const Case& c, DType dtype, uint32_t seed)
      : plan(lvsa::make_plan(c.g, c.cfg, c.step)),
        inputs(dtype, 0),
        out(dtype, 0) {
    const int64_t S = c.g.seq_len(), Sq = c.video_only ? c.g.video_tokens() : S;
    const int64_t B = c.B, Hq = c.Hq, Hkv = c.Hkv, D = c.D;
    if (c.packed) {
      // qkv: [B, S, Hq + 2 Hkv, D]; out: [B, Hq, Sq, D + 3] viewed as [B, Sq, Hq, D].
      const int64_t Ht = Hq + 2 * Hkv;
      inputs = Storage(dtype, B * S * Ht * D);
      const std::vector<int64_t> st = {S * Ht * D, Ht * D, D, 1};
      params.q = inputs.view(0, {B, Sq, Hq, D}, st);
      params.k = inputs.view(Hq * D, {B, S, Hkv, D}, st);
      params.v = inputs.view((Hq + Hkv) * D, {B, S, Hkv, D}, st);
      out = Storage(dtype, B * Hq * Sq * (D + 3));
      params.out = out.view(0, {B, Sq, Hq, D}, {Hq * Sq * (D + 3), D + 3, Sq * (D + 3), 1});
      out_gap_begin = 1;
    } else {
      inputs = Storage(dtype, B * Sq * Hq * D + 2 * B * S * Hkv * D);
      params.q = inputs.view(0, {B, Sq, Hq, D}, {Sq * Hq * D, Hq * D, D, 1});
      params.k = inputs.view(B * Sq * Hq * D, {B, S, Hkv, D}, {S * Hkv * D, Hkv * D, D, 1});
      params.v = inputs.view(B * Sq * Hq * D + B * S * Hkv * D, {B, S, Hkv, D},
                             {S * Hkv * D, Hkv * D, D, 1});
      out = Storage(dtype, B * Sq * Hq * D);
      params.out = out.view(0, {B, Sq, Hq, D}, {Sq * Hq * D, Hq * D, D, 1});
    }
    std::mt19937 rng(seed);
    for (size_t i = 0; i < inputs.bytes.size(); i += element_size(dtype))
      encode_exact(dtype, random_value(dtype, rng), &inputs.bytes[i]);
    inputs_before = inputs.bytes;
    lse.assign(B * Hq * Sq, kNaN);
    params.lse = lse.data();
    params.encoder_valid = c.valid.empty() ? nullptr : c.valid.data();
    params.scale = c.scale;
  }

  void poison() {
    out.poison();
    std::fill(lse.begin(), lse.end(), kNaN);
  }

  // Output as doubles [B, Sq, Hq, D]; also checks the call wrote no NaN and left the
  // inputs and the gaps of a strided out untouched.
  std::vector<double> output() const {
    const auto& o = params.out;
    std::vector<double> r;
    for (int64_t b = 0; b < o.shape[0]; ++b)
      for (int64_t s = 0; s < o.shape[1]; ++s)
        for (int64_t h = 0; h < o.shape[2]; ++h)
          for (int64_t d = 0; d < o.shape[3]; ++d) {
            r.push_back(decode(o.dtype, at(o, b, s, h, d)));
            EXPECT_FALSE(std::isnan(r.back())) << "out not written at b=" << b << " s=" << s;
          }
    for (float x : lse) EXPECT_FALSE(std::isnan(x)) << "lse not written";
    EXPECT_EQ(inputs.bytes, inputs_before) << "inputs modified";
    if (out_gap_begin) {
      size_t written = 0;
      for (size_t i = 0; i < out.bytes.size(); i += element_size(out.dtype))
        written += !std::isnan(decode(out.dtype, &out.bytes[i]));
      EXPECT_EQ(written, r.size()) << "writes outside the out view";
    }
    return r;
  }
};

struct Tolerance {
  double atol, rtol;
};

// |got - want| <= atol + rtol |want|, element by element; -inf must match exactly.
template <class Got, class Want>
void expect_close(const Got& got, const Want& want, Tolerance tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int failures = 0;
  for (size_t i = 0; i < got.size() && failures < 5; ++i) {
    const double g = got[i], w = want[i];
    const bool ok = std::isinf(w) ? g == w : std::fabs(g - w) <= tol.atol + tol.rtol * std::fabs(w);
    if (!ok) {
      ++failures;
      ADD_FAILURE() << what << " [" << i << "]: got " << g << ", want " << w;
    }
  }
}

// Rounding the exact result to the dtype, plus margin for the reference's double -> float ->
// dtype double rounding.
Tolerance rounding_tol(DType t) {
  switch (t) {
    case DType::F32: return {1e-7, 2e-7};
    case DType::F16: return {1e-7, 1.0 / 1024};
    case DType::BF16: return {1e-7, 1.0 / 128};
  }
  return {};
}

// The fast path (fp32 accumulation, approximate exp) against the reference: outputs are
// convex combinations of values below 1, so an absolute bound of a few output ulps.
Tolerance fast_tol(DType t) {
  switch (t) {
    case DType::F32: return {2e-5, 0};
    case DType::F16: return {2e-3, 0};
    case DType::BF16: return {1.6e-2, 0};
  }
  return {};
}

// Runs both backends and the oracle on one case in one dtype.
void check_case(const Case& c, DType dtype, uint32_t seed = 1) {
  SCOPED_TRACE(testing::Message() << "dtype=" << lvsa::dtype_name(dtype) << " T=" << c.g.frames
                                  << " P=" << c.g.tokens_per_frame << " E=" << c.g.encoder_len
                                  << " B=" << c.B << " Hq=" << c.Hq << " Hkv=" << c.Hkv
                                  << " D=" << c.D << " video_only=" << c.video_only
                                  << " packed=" << c.packed);
  Problem pr(c, dtype, seed);
  const double scale = c.scale > 0 ? c.scale : 1.0 / std::sqrt(double(c.D));
  const Result want = oracle(pr.plan, pr.params, c.valid, scale);

  pr.poison();
  lvsa::attention_reference(pr.plan.ranges, pr.params);
  const std::vector<double> ref = pr.output();
  const std::vector<float> ref_lse = pr.lse;
  expect_close(ref, want.out, rounding_tol(dtype), "reference out vs oracle");
  expect_close(ref_lse, want.lse, {1e-6, 1e-6}, "reference lse vs oracle");

  pr.poison();
  lvsa::attention_cpu(pr.plan.ranges, pr.params, c.threads);
  expect_close(pr.output(), ref, fast_tol(dtype), "fast out vs reference");
  expect_close(pr.lse, ref_lse, {2e-5, 2e-6}, "fast lse vs reference");
}

void check_all_dtypes(const Case& c) {
  for (DType t : {DType::F32, DType::F16, DType::BF16}) check_case(c, t);
}

PatternConfig sparse(int reference, int window = 1) {
  PatternConfig cfg;
  cfg.reference = reference;
  cfg.window = window;
  return cfg;
}

// ---- conversions -------------------------------------------------------------------------

// Round-to-nearest-even to a format with `bits` significand bits, in double: independent of
// the bit tricks under test. min_exp is the exponent of the smallest normal number.
double round_to_format(double a, int bits, int min_exp, double max_finite) {
  int e;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e)
  const double ulp = std::ldexp(1.0, std::max(e - 1, min_exp) - (bits - 1));
  const double r = std::nearbyint(a / ulp) * ulp;  // default rounding mode: ties to even
  const double overflow = max_finite + ulp / 2;    // ties at the top round to even = Inf
  return a >= overflow ? kInf : r;
}

TEST(Convert, HalfDecodeAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = lvsa::cpu::half_to_float(uint16_t(h)), want = half_value(uint16_t(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << h;
      EXPECT_TRUE(std::isnan(half_value(lvsa::cpu::float_to_half(got)))) << h;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want)) << h;
      ASSERT_EQ(lvsa::cpu::float_to_half(got), h) << "round trip of " << h;
    }
  }
}

TEST(Convert, RoundToNearestEven) {
  std::mt19937 rng(7);
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, 1e9f, 1e-30f,
                           std::numeric_limits<float>::infinity(), 3.4e38f, 1e-40f};
  // Exact midpoints between neighbouring halves and bf16s (ties), and random bit patterns.
  for (uint32_t h = 0; h < 0x7bff; h += 7) {
    xs.push_back(float((double(half_value(uint16_t(h))) + half_value(uint16_t(h + 1))) / 2));
    xs.push_back(std::bit_cast<float>((h << 16) | 0x8000u));
    xs.push_back(std::bit_cast<float>(((h + 0x7f00u) << 16) | 0x8000u));
  }
  for (int i = 0; i < 200000; ++i) xs.push_back(std::bit_cast<float>(uint32_t(rng()) & 0x7fffffffu));
  for (float x : xs)
    for (float s : {x, -x}) {
      if (std::isnan(s)) continue;
      const double a = std::fabs(double(s)), sign = std::signbit(s) ? -1.0 : 1.0;
      const double want_h = sign * round_to_format(a, 11, -14, 65504.0);
      const double got_h = half_value(lvsa::cpu::float_to_half(s));
      ASSERT_EQ(got_h, want_h) << "half of " << s;
      ASSERT_EQ(std::signbit(got_h), std::signbit(s));
      const double max_bf16 = std::ldexp(255.0, 120);
      const double want_b = sign * round_to_format(a, 8, -126, max_bf16);
      const double got_b = lvsa::cpu::bf16_to_float(lvsa::cpu::float_to_bf16(s));
      ASSERT_EQ(got_b, want_b) << "bf16 of " << s;
    }
  EXPECT_TRUE(std::isnan(lvsa::cpu::bf16_to_float(lvsa::cpu::float_to_bf16(kNaN))));
  EXPECT_TRUE(std::isnan(half_value(lvsa::cpu::float_to_half(kNaN))));
}

// ---- geometries --------------------------------------------------------------------------

TEST(AttentionCpu, WanLikeVideoOnly) {
  Case c;
  c.g = {21, 7, 0, EncoderSide::None};
  c.cfg = sparse(5);
  for (int64_t step : {0, 1}) {
    c.step = step;
    check_all_dtypes(c);
  }
  c.g = {9, 37, 0, EncoderSide::None};  // P not a multiple of any tile size
  c.cfg = sparse(3);
  check_all_dtypes(c);
}

TEST(AttentionCpu, HunyuanLikeEncoderAfterWithPadding) {
  Case c;
  c.g = {8, 10, 13, EncoderSide::After};
  c.cfg = sparse(3);
  c.B = 3;
  c.valid = {13, 5, 0};
  c.step = 2;
  check_all_dtypes(c);
}

TEST(AttentionCpu, CogVideoXLikeEncoderBefore) {
  Case c;
  c.g = {7, 12, 9, EncoderSide::Before};
  c.cfg = sparse(3);
  c.B = 2;
  c.valid = {9, 4};
  check_all_dtypes(c);
  c.valid.clear();  // encoder_valid = null: the whole encoder is valid
  check_case(c, DType::F32);
}

TEST(AttentionCpu, VideoQueriesOnlyWithEncoderKeys) {
  for (auto side : {EncoderSide::After, EncoderSide::Before}) {
    Case c;
    c.g = {8, 9, 11, side};
    c.cfg = sparse(3);
    c.B = 2;
    c.valid = {11, 3};
    c.video_only = true;
    check_all_dtypes(c);
  }
}

TEST(AttentionCpu, GroupedQueryAttention) {
  Case c;
  c.g = {6, 10, 5, EncoderSide::After};
  c.cfg = sparse(2);
  c.valid = {4};
  c.Hq = 4;
  for (int hkv : {2, 1}) {
    c.Hkv = hkv;
    check_case(c, DType::F32);
    check_case(c, DType::BF16);
  }
}

TEST(AttentionCpu, GlobalsOnlyWindowZero) {
  Case c;
  c.g = {12, 6, 0, EncoderSide::None};
  c.cfg.window = 0;
  c.cfg.keyframe_interval = 4;
  c.step = 1;
  check_all_dtypes(c);
}

TEST(AttentionCpu, KeyframeIntervalOneIsDenseAttention) {
  Case c;
  c.g = {5, 9, 6, EncoderSide::After};
  c.cfg.keyframe_interval = 1;
  for (DType t : {DType::F32, DType::BF16}) {
    Problem pr(c, t, 3);
    const Result dense = masked_dense(pr.params, 1.0 / 8, [](int64_t, int64_t, int64_t) { return true; });
    pr.poison();
    lvsa::attention_cpu(pr.plan.ranges, pr.params, 2);
    expect_close(pr.output(), dense.out, t == DType::F32 ? Tolerance{2e-5, 0} : Tolerance{1.6e-2, 0},
                 "kfi=1 vs plain dense softmax");
    expect_close(pr.lse, dense.lse, {2e-5, 2e-6}, "kfi=1 lse vs plain dense softmax");
  }
}

TEST(AttentionCpu, OddSizes) {
  Case c;
  c.g = {1, 7, 0, EncoderSide::None};  // a single frame
  c.B = 3;
  c.Hq = c.Hkv = 1;
  check_all_dtypes(c);
  c.g = {5, 70, 67, EncoderSide::After};  // frames and encoder each span two row tiles
  c.cfg = sparse(2);
  c.B = 2;
  c.valid = {66, 1};
  check_case(c, DType::F32);
}

TEST(AttentionCpu, StridedViews) {
  Case c;
  c.g = {6, 11, 7, EncoderSide::Before};
  c.cfg = sparse(2);
  c.B = 2;
  c.Hq = 4;
  c.valid = {7, 2};
  c.packed = true;
  check_all_dtypes(c);
}

TEST(AttentionCpu, ElementStrideInHeadDim) {
  // Every other element of a [.., 2D] tensor: stride 2 in the innermost dimension.
  Case c;
  c.g = {4, 5, 0, EncoderSide::None};
  Problem pr(c, DType::F32, 5);
  Storage wide(DType::F32, size_t(2) * 20 * 2 * 64 * 3);
  for (size_t i = 0; i < wide.bytes.size(); i += 4) {
    const float x = 0.5f + float(i % 97) / 97;
    std::memcpy(&wide.bytes[i], &x, 4);
  }
  const std::vector<int64_t> st = {20 * 2 * 128, 2 * 128, 128, 2};
  pr.params.q = wide.view(0, {1, 20, 2, 64}, st);
  pr.params.k = wide.view(20 * 2 * 128, {1, 20, 2, 64}, st);
  pr.params.v = wide.view(2 * 20 * 2 * 128 + 1, {1, 20, 2, 64}, st);
  pr.poison();
  lvsa::attention_reference(pr.plan.ranges, pr.params);
  const auto ref = pr.output();
  expect_close(ref, oracle(pr.plan, pr.params, {}, 0.125).out, rounding_tol(DType::F32), "reference");
  pr.poison();
  lvsa::attention_cpu(pr.plan.ranges, pr.params, 2);
  expect_close(pr.output(), ref, fast_tol(DType::F32), "fast");
}

TEST(AttentionCpu, HeadDims) {
  Case c;
  c.g = {6, 9, 4, EncoderSide::After};
  c.cfg = sparse(2);
  c.valid = {3};
  for (int d : {128, 24, 20, 8}) {
    c.D = d;
    check_case(c, DType::F32);
    check_case(c, DType::BF16);
  }
}

TEST(AttentionCpu, ExplicitAndLargeScale) {
  Case c;
  c.g = {6, 8, 3, EncoderSide::After};
  c.cfg = sparse(2);
  c.scale = 0.3f;
  check_case(c, DType::F32);
  c.scale = 12.0f;  // logits in the hundreds: the running max must keep exp in range
  check_case(c, DType::F32);
  check_case(c, DType::F16);
}

TEST(AttentionCpu, EmptyPatternGivesZerosAndMinusInf) {
  Case c;
  c.g = {4, 6, 5, EncoderSide::After};
  c.cfg.window = 0;
  c.cfg.n_first = 0;
  c.cfg.keyframe_interval = lvsa::kNoKeyframes;
  c.B = 2;
  c.valid = {0, 2};  // batch 0 has no keys at all for its video queries
  check_case(c, DType::F32);
  check_case(c, DType::BF16);

  Problem pr(c, DType::F32, 9);
  pr.poison();
  lvsa::attention_cpu(pr.plan.ranges, pr.params, 2);
  const auto out = pr.output();
  const int64_t Sq = pr.params.q.shape[1], D = pr.params.q.shape[3];
  for (int64_t i = 0; i < Sq; ++i)
    for (int64_t h = 0; h < 2; ++h) {
      EXPECT_EQ(pr.lse[(0 * 2 + h) * Sq + i], -kInf);
      for (int64_t d = 0; d < D; ++d) EXPECT_EQ(out[((0 * Sq + i) * 2 + h) * D + d], 0.0);
    }
}

TEST(AttentionCpu, PaddedEncoderRowsAreZeroAndKeysGetNoWeight) {
  // Padded encoder keys must get exactly zero weight: changing them must not change the
  // output bit for bit, and padded encoder query rows are zeros with lse -inf.
  Case c;
  c.g = {4, 6, 8, EncoderSide::After};
  c.cfg.keyframe_interval = 1;
  c.valid = {3};
  for (DType t : {DType::F32, DType::BF16}) {
    Problem pr(c, t, 11);
    pr.poison();
    lvsa::attention_cpu(pr.plan.ranges, pr.params, 2);
    const auto first = pr.output();
    const std::vector<float> first_lse = pr.lse;
    for (int64_t j = 24 + 3; j < 32; ++j)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t d = 0; d < 64; ++d) {
          encode_exact(t, 1000.0f, at(pr.params.k, 0, j, h, d));
          encode_exact(t, -512.0f, at(pr.params.v, 0, j, h, d));
        }
    pr.inputs_before = pr.inputs.bytes;
    pr.poison();
    lvsa::attention_cpu(pr.plan.ranges, pr.params, 2);
    EXPECT_EQ(pr.output(), first);
    EXPECT_EQ(pr.lse, first_lse);
    const int64_t Sq = 32;
    for (int64_t i = 24 + 3; i < Sq; ++i)
      for (int64_t h = 0; h < 2; ++h) {
        EXPECT_EQ(pr.lse[h * Sq + i], -kInf);
        for (int64_t d = 0; d < 64; ++d) EXPECT_EQ(first[(i * 2 + h) * 64 + d], 0.0);
      }
  }
}

TEST(AttentionCpu, ThreadCountDoesNotChangeBits) {
  Case c;
  c.g = {9, 30, 10, EncoderSide::Before};
  c.cfg = sparse(3);
  c.B = 2;
  c.valid = {10, 6};
  c.Hq = 4;
  for (DType t : {DType::F32, DType::F16}) {
    Problem pr(c, t, 13);
    pr.poison();
    lvsa::attention_cpu(pr.plan.ranges, pr.params, 1);
    const std::vector<uint8_t> single = pr.out.bytes;
    const std::vector<float> single_lse = pr.lse;
    for (int threads : {3, 0}) {
      pr.poison();
      lvsa::attention_cpu(pr.plan.ranges, pr.params, threads);
      EXPECT_EQ(pr.out.bytes, single) << threads << " threads";
      EXPECT_EQ(0, std::memcmp(pr.lse.data(), single_lse.data(), single_lse.size() * 4));
    }
  }
}

TEST(AttentionCpu, OptionalLse) {
  Case c;
  c.g = {3, 5, 0, EncoderSide::None};
  Problem pr(c, DType::F32, 17);
  pr.params.lse = nullptr;
  pr.lse.clear();
  pr.poison();
  lvsa::attention_cpu(pr.plan.ranges, pr.params, 1);
  const auto fast = pr.output();
  pr.poison();
  lvsa::attention_reference(pr.plan.ranges, pr.params);
  expect_close(fast, pr.output(), fast_tol(DType::F32), "without lse");
}

// ---- errors ------------------------------------------------------------------------------

void expect_error(const lvsa::KeyRanges& ranges, const lvsa::AttentionParams& p, const char* needle) {
  for (int backend = 0; backend < 2; ++backend) {
    try {
      if (backend == 0) lvsa::attention_reference(ranges, p);
      else lvsa::attention_cpu(ranges, p, 1);
      ADD_FAILURE() << "no error; expected one mentioning " << needle;
    } catch (const lvsa::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

TEST(AttentionCpuErrors, BadInputsNameTheArgument) {
  Case c;
  c.g = {4, 6, 5, EncoderSide::After};
  c.B = 2;
  c.Hq = 4;
  c.valid = {5, 2};
  Problem pr(c, DType::F32, 19);
  const lvsa::KeyRanges& r = pr.plan.ranges;
  const lvsa::AttentionParams good = pr.params;
  lvsa::validate_attention(r, good);  // the baseline is valid
  auto bad = [&](auto edit, const char* needle) {
    lvsa::AttentionParams p = good;
    edit(p);
    expect_error(r, p, needle);
  };
  bad([](auto& p) { p.q.data = nullptr; }, "q has no data");
  bad([](auto& p) { p.k.data = nullptr; }, "k has no data");
  bad([](auto& p) { p.v.data = nullptr; }, "v has no data");
  bad([](auto& p) { p.out.data = nullptr; }, "out has no data");
  bad([](auto& p) { p.q.shape[3] = 0; }, "q must be 4-D");
  bad([](auto& p) { p.k.shape[2] = -1; }, "k must be 4-D");
  bad([](auto& p) { p.k.shape[0] = 1; p.v.shape[0] = 1; }, "k has batch size");
  bad([](auto& p) { p.k.shape[3] = 32; p.v.shape[3] = 32; }, "k has head dim");
  bad([](auto& p) { p.v.shape[1] = 20; }, "v has shape");
  bad([](auto& p) { p.k.shape[2] = 3; p.v.shape[2] = 3; }, "not a multiple");
  bad([](auto& p) { p.k.shape[1] = 30; p.v.shape[1] = 30; }, "k has sequence length");
  bad([](auto& p) { p.q.shape[1] = 25; p.out.shape[1] = 25; }, "expects 29 (all tokens) or 24 (video tokens only)");
  bad([](auto& p) { p.out.shape[2] = 2; }, "out has shape");
  bad([](auto& p) { p.out.dtype = DType::BF16; }, "out has dtype bfloat16");
  bad([](auto& p) { p.k.dtype = DType::F16; }, "k has dtype float16");
  bad([](auto& p) { p.v.dtype = DType::BF16; }, "v has dtype");
  bad([](auto& p) { p.q.dtype = DType(7); }, "q has an unknown dtype");
  bad([](auto& p) { p.v.stride[1] = -4; }, "v has a negative stride");
  bad([](auto& p) { p.out.stride[3] = -1; }, "out has a negative stride");
  bad([](auto& p) { p.scale = -1.0f; }, "scale");
  bad([](auto& p) { p.scale = std::numeric_limits<float>::infinity(); }, "scale");
  bad([](auto& p) { p.scale = kNaN; }, "scale");
  const int32_t too_long[] = {5, 6}, negative[] = {-1, 0};
  bad([&](auto& p) { p.encoder_valid = too_long; }, "encoder_valid[1] = 6");
  bad([&](auto& p) { p.encoder_valid = negative; }, "encoder_valid[0] = -1");

  auto bad_ranges = [&](auto edit, const char* needle) {
    lvsa::KeyRanges broken = r;
    edit(broken);
    expect_error(broken, good, needle);
  };
  bad_ranges([](auto& k) { k.range_offsets.pop_back(); }, "range_offsets");
  bad_ranges([](auto& k) { k.range_end.pop_back(); }, "range_end");
  bad_ranges([](auto& k) { k.range_end[0] = 25; }, "ranges of frame 0");
  bad_ranges([](auto& k) { k.range_begin[0] = -1; }, "ranges of frame 0");
  bad_ranges([](auto& k) { k.range_begin[0] = k.range_end[0]; }, "ranges of frame 0");
  bad_ranges([](auto& k) { k.geometry.frames = 5; }, "range_offsets");
  bad_ranges([](auto& k) { k.geometry.tokens_per_frame = 0; }, "tokens_per_frame");
}

TEST(AttentionCpuErrors, QuantizedScoresAreTheCudaKernelsAndCheckedAsOne) {
  // Quantised scores: float8_e4m3 or int8 q and k with per-head descale factors, 16-bit v and
  // out. The contract accepts them (the CUDA sm90 kernels run them); the CPU backends refuse them.
  Case c;
  c.g = {4, 6, 5, EncoderSide::After};
  c.Hq = 4;
  Problem pr(c, DType::BF16, 29);
  const lvsa::KeyRanges& r = pr.plan.ranges;
  const float descale[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  for (DType scores : {DType::E4M3, DType::I8}) {
    SCOPED_TRACE(lvsa::dtype_name(scores));
    lvsa::AttentionParams quantized = pr.params;
    quantized.q.dtype = quantized.k.dtype = scores;
    quantized.q_descale = quantized.k_descale = descale;
    lvsa::validate_attention(r, quantized);
    expect_error(r, quantized, "only the CUDA backend's sm90 kernels run");
    auto bad = [&](auto edit, const std::string& needle) {
      lvsa::AttentionParams p = quantized;
      edit(p);
      expect_error(r, p, needle.c_str());
    };
    bad([](auto& p) { p.k_descale = nullptr; }, "q_descale or k_descale is null");
    bad([](auto& p) { p.k.dtype = DType::BF16; },
        std::string("k has dtype bfloat16, expected q's dtype ") + lvsa::dtype_name(scores));
    bad([](auto& p) { p.v.dtype = p.out.dtype = DType::I8; }, "v must be float16, bfloat16 or float8_e4m3");
    bad([](auto& p) { p.out.dtype = DType::F16; }, "out has dtype float16, expected v's dtype bfloat16");
    bad([&](auto& p) { p.v_descale = descale; }, "v_descale is set but v is bfloat16");
  }
  lvsa::AttentionParams bf16 = pr.params;
  bf16.q_descale = descale;
  expect_error(r, bf16, "descale factors come only with float8_e4m3 or int8 q and k");
}

TEST(AttentionCpuErrors, Fp8ValuesAreTheValuePrepassLayout) {
  // fp8 values: with quantised scores, v in e4m3 as V^T rows of keys (strides batch, 1, head,
  // row), the row a multiple of 16 of at least the keys; the CPU backends refuse them.
  Case c;
  c.g = {4, 6, 5, EncoderSide::After};  // 29 keys: rows of 32
  c.Hq = 4;
  Problem pr(c, DType::BF16, 31);
  const lvsa::KeyRanges& r = pr.plan.ranges;
  EXPECT_EQ(lvsa::value_row_keys(29), 32);
  EXPECT_EQ(lvsa::value_row_keys(32), 32);
  const float descale[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  lvsa::AttentionParams fp8 = pr.params;
  fp8.q.dtype = fp8.k.dtype = DType::I8;
  fp8.q_descale = fp8.k_descale = fp8.v_descale = descale;
  fp8.v.dtype = DType::E4M3;
  const int64_t heads = fp8.v.shape[2], D = fp8.v.shape[3];
  fp8.v.stride[0] = heads * D * 32, fp8.v.stride[1] = 1, fp8.v.stride[2] = D * 32, fp8.v.stride[3] = 32;
  lvsa::validate_attention(r, fp8);
  expect_error(r, fp8, "only the CUDA backend's sm90 kernels run");
  auto bad = [&](auto edit, const std::string& needle) {
    lvsa::AttentionParams p = fp8;
    edit(p);
    expect_error(r, p, needle.c_str());
  };
  bad([](auto& p) { p.v_descale = nullptr; }, "v is float8_e4m3 (fp8 values) but v_descale is null");
  bad([](auto& p) { p.v.stride[3] = 24; }, "rows of at least 32 keys");
  bad([](auto& p) { p.v.stride[3] = 40; }, "a multiple of 16");
  bad([](auto& p) { p.v.stride[1] = 2; }, "keys contiguous (stride[1] = 1)");
  bad([](auto& p) { p.out.dtype = DType::E4M3; }, "with fp8 values out must be float16 or bfloat16");
  bad([](auto& p) { p.q.dtype = p.k.dtype = DType::BF16, p.q_descale = p.k_descale = nullptr; },
      "v has dtype float8_e4m3, expected q's dtype bfloat16");
}

TEST(AttentionCpuErrors, VideoQueriesNeedAnEncoder) {
  // Without an encoder, T*P is the whole sequence, so there is no video-only mode to pick.
  Case c;
  c.g = {4, 6, 0, EncoderSide::None};
  Problem pr(c, DType::F32, 23);
  EXPECT_FALSE(lvsa::video_queries_only(pr.plan.ranges, pr.params));
  pr.params.q.shape[1] = pr.params.out.shape[1] = 12;
  expect_error(pr.plan.ranges, pr.params, "expects 24 (all tokens)");
}

TEST(AttentionCpuErrors, DtypeNames) {
  EXPECT_STREQ(lvsa::dtype_name(DType::F32), "float32");
  EXPECT_STREQ(lvsa::dtype_name(DType::F16), "float16");
  EXPECT_STREQ(lvsa::dtype_name(DType::BF16), "bfloat16");
}

}  // namespace
