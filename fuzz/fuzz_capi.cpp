// libFuzzer target for the C API: random geometry, configuration, step, shapes, strides,
// dtypes, aliasing, lse sizes, encoder lengths, scales and planted NaN/Inf through
// lvsa_plan_create and both CPU backends. Sizes are capped so an input runs in milliseconds.
// Aborts (a finding) unless:
//  * every call returns LVSA_OK or LVSA_ERROR_INVALID_ARGUMENT with a non-empty message;
//  * a failed call wrote nothing, and the two backends fail alike;
//  * a call whose out or lse overlaps another buffer, or whose out elements share memory, failed;
//  * a successful call wrote exactly out's elements and lse's first B*Hq*Sq floats, left q, k
//    and v alone, and agrees with lvsa_attention_reference: within rounding where both are
//    finite, and finite exactly where the reference is (NaN/Inf only where planted inputs
//    are attended; never from encoder padding).
//   ./build-fuzz/fuzz/lvsa_fuzz_capi -max_total_time=600
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lvsa/lvsa.h"

namespace {

[[noreturn]] void finding(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz_capi: %s %s\n", what, detail.c_str());
  std::abort();
}

// Reads the fuzzer's bytes as decisions; past the end every decision is 0.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  template <class T>
  T raw() {
    T value{};
    const size_t n = std::min(size_, sizeof(T));
    std::memcpy(&value, data_, n);
    data_ += n;
    size_ -= n;
    return value;
  }
  int in(int lo, int hi) { return lo + int(raw<uint8_t>() % unsigned(hi - lo + 1)); }  // [lo, hi]
  bool one_in(int n) { return raw<uint8_t>() % n == 0; }
  template <class T, size_t N>
  T pick(const T (&options)[N]) { return options[raw<uint8_t>() % N]; }

 private:
  const uint8_t* data_;
  size_t size_;
};

template <class Enum>
void store_raw(Enum& field, int value) {
  static_assert(sizeof(Enum) == sizeof(int));
  std::memcpy(&field, &value, sizeof value);
}

int element_size(int dtype) { return dtype == LVSA_F32 ? 4 : 2; }

float half_to_float(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const float magnitude = exponent == 0 ? std::ldexp(float(mantissa), -24)
                          : exponent == 31
                              ? (mantissa ? std::numeric_limits<float>::quiet_NaN()
                                          : std::numeric_limits<float>::infinity())
                              : std::ldexp(float(mantissa | 0x400), exponent - 25);
  return h & 0x8000 ? -magnitude : magnitude;
}

// One tensor argument and the buffer behind it. Buffers are exactly what the shape and
// strides reach, so AddressSanitizer sees any access past them.
struct Tensor {
  lvsa_tensor t{};
  int dtype = LVSA_F32;  // the raw value stored in t.dtype
  std::vector<uint8_t> buffer;
  bool valid = true;     // sizes > 0, strides >= 0, known dtype, data, span fits the address space
  bool reshaped = false; // a size differs from what the call needs
  bool odd_strides = false;  // one stride is not from a (permuted, padded) contiguous layout
  uint64_t span = 0;     // bytes the elements reach

  int64_t offset(int64_t b, int64_t s, int64_t h, int64_t d) const {
    return b * t.stride[0] + s * t.stride[1] + h * t.stride[2] + d * t.stride[3];
  }
  float load(int64_t element) const {
    const uint8_t* p = static_cast<const uint8_t*>(t.data) + element * element_size(dtype);
    if (dtype == LVSA_F32) return std::bit_cast<float>(read<uint32_t>(p));
    const uint16_t h = read<uint16_t>(p);
    return dtype == LVSA_F16 ? half_to_float(h) : std::bit_cast<float>(uint32_t(h) << 16);
  }
  // Stores a small random value in q/k/v's dtype, or a non-finite one.
  void store(int64_t element, uint32_t random, int non_finite) {
    uint8_t* p = static_cast<uint8_t*>(t.data) + element * element_size(dtype);
    const uint32_t sign = random & 1;
    if (dtype == LVSA_F32) {
      static const uint32_t special[] = {0x7fc00000u, 0xffc00000u, 0x7f800000u, 0xff800000u};
      const float value = (float(random >> 8) / float(1 << 24)) * 2.0f - 1.0f;
      write(p, non_finite ? special[non_finite - 1] : std::bit_cast<uint32_t>(value));
    } else if (dtype == LVSA_F16) {
      static const uint16_t special[] = {0x7e00, 0xfe00, 0x7c00, 0xfc00};
      // Exponent 10..14: magnitudes in [2^-5, 1), mantissa random.
      const uint16_t value = uint16_t(sign << 15 | (10 + (random >> 1) % 5) << 10 | (random >> 4) & 0x3ff);
      write(p, non_finite ? special[non_finite - 1] : value);
    } else {
      static const uint16_t special[] = {0x7fc0, 0xffc0, 0x7f80, 0xff80};
      const uint16_t value = uint16_t(sign << 15 | (122 + (random >> 1) % 5) << 7 | (random >> 4) & 0x7f);
      write(p, non_finite ? special[non_finite - 1] : value);
    }
  }

 private:
  template <class T>
  static T read(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  template <class T>
  static void write(uint8_t* p, T v) {
    std::memcpy(p, &v, sizeof v);
  }
};

constexpr int64_t kMaxBytes = 1 << 20;

// Shape as the call needs it, then possibly broken; a random dim order, padding, and now and
// then a broadcast (0), small, negative or huge stride. Returns false when the API would
// accept a tensor too big for the cap (the input is skipped).
bool make_tensor(Input& in, Tensor& x, const int64_t (&shape)[4], int dtype) {
  x.dtype = dtype;
  store_raw(x.t.dtype, dtype);
  for (int i = 0; i < 4; ++i) x.t.shape[i] = shape[i];
  if (in.one_in(24)) {
    x.t.shape[in.in(0, 3)] += in.in(-2, 1);
    x.reshaped = !std::equal(shape, shape + 4, x.t.shape);
  }
  int order[4] = {0, 1, 2, 3};
  for (int i = 3; i > 0; --i) std::swap(order[i], order[in.in(0, i)]);
  if (in.one_in(2)) std::sort(order, order + 4, std::greater<int>());  // mostly row-major
  int64_t step = 1;
  for (const int i : order) {
    x.t.stride[i] = step;
    step *= std::max<int64_t>(x.t.shape[i], 1) + (in.one_in(6) ? in.in(1, 2) : 0);
  }
  if (in.one_in(16)) {
    x.t.stride[in.in(0, 3)] = in.pick({int64_t(0), int64_t(-1), int64_t(1) << 61, int64_t(in.in(1, 3))});
    x.odd_strides = true;
  }

  // The API's rule: refused when the bytes the elements reach do not fit in int64.
  x.valid = dtype >= LVSA_F32 && dtype <= LVSA_BF16;
  __int128 last = 0;
  for (int i = 0; i < 4; ++i) {
    x.valid &= x.t.shape[i] > 0 && x.t.stride[i] >= 0;
    last += __int128(std::max<int64_t>(x.t.shape[i] - 1, 0)) * std::max<int64_t>(x.t.stride[i], 0);
  }
  const __int128 bytes = (last + 1) * element_size(x.dtype);
  x.valid &= bytes <= std::numeric_limits<int64_t>::max();
  if (x.valid && bytes > kMaxBytes) return false;
  x.span = x.valid ? uint64_t(bytes) : 64;  // invalid tensors get a small buffer, never read
  x.buffer.assign(x.span, 0xA5);
  x.t.data = in.one_in(40) ? nullptr : x.buffer.data();
  x.valid &= x.t.data != nullptr;
  return true;
}

bool overlaps(const uint8_t* a, uint64_t a_len, const uint8_t* b, uint64_t b_len) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + b_len && pb < pa + a_len;
}

struct Plan {
  lvsa_plan* handle = nullptr;
  ~Plan() { lvsa_plan_destroy(handle); }
};

void expect_error(lvsa_status status, const char* call) {
  if (status != LVSA_ERROR_INVALID_ARGUMENT) finding(call, "returned an unexpected status");
  if (lvsa_last_error()[0] == '\0') finding(call, "failed without a message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);

  // ---- plan -------------------------------------------------------------------------------
  lvsa_geometry g{};
  // Out-of-range frame counts, but no large valid ones: lowering a plan is O(T^2) (README.md).
  g.frames = in.one_in(32) ? in.pick({INT32_MIN, -5, 0, (1 << 20) + 1, INT32_MAX}) : in.in(-1, 10);
  g.tokens_per_frame = in.one_in(32) ? in.raw<int32_t>() : in.in(-1, 5);
  g.encoder_len = in.in(-1, 5);
  store_raw(g.encoder_side, in.in(-1, 3));
  lvsa_config c;
  lvsa_config_default(&c);
  c.window = in.in(-1, 6);
  c.n_first = in.in(-1, 3);
  c.keyframe_interval = in.in(-2, 6);
  c.reference = in.in(-1, 24);
  c.scale = in.one_in(16) ? in.raw<double>()
                          : in.pick({1.0, 0.5, 2.0, 0.25, 0.0, -1.0, std::nan(""), HUGE_VAL});
  c.expand = in.in(0, 2);
  c.rotate = in.in(0, 2);
  const int64_t step = in.one_in(32) ? in.raw<int64_t>() : in.in(-1, 30);

  Plan plan;
  plan.handle = reinterpret_cast<lvsa_plan*>(uintptr_t(0x5A5A));
  const lvsa_status created = lvsa_plan_create(&g, &c, step, &plan.handle);
  if (created != LVSA_OK) {
    expect_error(created, "lvsa_plan_create");
    if (plan.handle != nullptr) finding("lvsa_plan_create failed but returned a plan");
    return 0;
  }
  if (lvsa_last_error()[0] != '\0') finding("lvsa_plan_create succeeded with a message");
  const int64_t video = int64_t(g.frames) * g.tokens_per_frame, seq = video + g.encoder_len;
  if (seq > 64) return 0;  // keeps the reference path fast

  // ---- tensors ----------------------------------------------------------------------------
  const int64_t B = in.one_in(24) ? in.in(-1, 0) : in.in(1, 2);
  const int64_t Hkv = in.one_in(24) ? 0 : in.in(1, 3);
  const int64_t Hq = in.one_in(16) ? in.in(0, 6) : Hkv * in.in(1, 2);
  const int64_t D = in.one_in(8) ? in.in(-1, 20) : in.pick({int64_t(8), int64_t(16), int64_t(64), int64_t(3)});
  int64_t Sq = seq;
  if (g.encoder_len > 0 && in.one_in(3)) Sq = video;
  if (in.one_in(24)) Sq = in.in(0, int(seq) + 1);
  const int dtype = in.in(0, 2);
  const auto dtype_of = [&] { return in.one_in(24) ? in.in(-1, 4) : dtype; };

  Tensor q, k, v, out;
  if (!make_tensor(in, q, {B, Sq, Hq, D}, dtype) || !make_tensor(in, k, {B, seq, Hkv, D}, dtype_of()) ||
      !make_tensor(in, v, {B, seq, Hkv, D}, dtype_of()) || !make_tensor(in, out, {B, Sq, Hq, D}, dtype_of()))
    return 0;

  // out inside another buffer: the API must refuse any overlap, so nothing may be written
  // (ASan would see writes past that buffer, the byte checks below writes inside it).
  Tensor* out_host = nullptr;
  if (in.one_in(8) && out.t.data) {
    Tensor* hosts[] = {&q, &k, &v};
    out_host = hosts[in.in(0, 2)];
    out.t.data = out_host->buffer.data() + in.raw<uint16_t>() % out_host->buffer.size();
  }

  const int64_t lse_need = std::max<int64_t>(B, 0) * std::max<int64_t>(Hq, 0) * std::max<int64_t>(Sq, 0);
  std::vector<float> lse_buffer;
  lvsa_attention_args args{};
  if (!in.one_in(3)) {
    const int64_t len = std::max<int64_t>(lse_need + in.in(-2, 2) * in.in(0, 1), 0);
    lse_buffer.assign(size_t(std::max<int64_t>(len, 1)), 0.0f);
    std::fill(lse_buffer.begin(), lse_buffer.end(), std::bit_cast<float>(0xA5A5A5A5u));
    args.lse = lse_buffer.data();
    args.lse_len = in.one_in(32) ? -1 : len;
  }
  uint8_t* lse_alias = nullptr;
  if (args.lse && in.one_in(12)) {
    Tensor* hosts[] = {&q, &k, &v, &out};
    Tensor* host = hosts[in.in(0, 3)];
    lse_alias = host->buffer.data() + (in.raw<uint16_t>() % host->buffer.size()) / 4 * 4;
    args.lse = reinterpret_cast<float*>(lse_alias);
  }

  std::vector<int32_t> valid;
  if (in.one_in(2)) {
    valid.resize(size_t(std::max<int64_t>(B, 1)));
    for (int32_t& x : valid)
      x = in.one_in(16) ? in.pick({-1, g.encoder_len + 1, INT32_MIN, INT32_MAX}) : in.in(0, g.encoder_len);
    args.encoder_valid = valid.data();
  }
  args.scale = in.pick({0.0f, 0.125f, 0.5f, 1.0f, 2.0f, -1.0f, std::nanf(""), HUGE_VALF});
  const int threads = in.pick({1, 1, 2, -1});

  // ---- inputs: random values, and maybe NaN/Inf in one element or in the encoder padding ----
  std::mt19937 rng(in.raw<uint32_t>());
  const int plant = in.pick({0, 0, 0, 1, 2});  // none, one attended element, encoder padding
  if (q.valid && k.valid && v.valid)
    for (Tensor* x : {&q, &k, &v})
      for (int64_t b = 0; b < x->t.shape[0]; ++b)
        for (int64_t s = 0; s < x->t.shape[1]; ++s)
          for (int64_t h = 0; h < x->t.shape[2]; ++h)
            for (int64_t d = 0; d < x->t.shape[3]; ++d) x->store(x->offset(b, s, h, d), rng(), 0);
  if (plant == 1 && q.valid && k.valid && v.valid) {
    Tensor* x = in.pick({&q, &k, &v});
    x->store(x->offset(in.raw<uint8_t>() % x->t.shape[0], in.raw<uint8_t>() % x->t.shape[1],
                       in.raw<uint8_t>() % x->t.shape[2], in.raw<uint8_t>() % x->t.shape[3]),
             0, in.in(1, 4));
  }
  const int enc_side = std::bit_cast<int>(g.encoder_side);
  const int64_t enc_begin = enc_side == LVSA_ENCODER_BEFORE ? 0 : video;
  // Broadcast or overlapping strides would make padding share memory with valid tokens.
  const bool plain = !q.odd_strides && !k.odd_strides && !v.odd_strides;
  if (plant == 2 && plain && q.valid && k.valid && v.valid && g.encoder_len > 0)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t used = valid.empty() ? g.encoder_len : std::clamp<int64_t>(valid[b], 0, g.encoder_len);
      for (int64_t s = enc_begin + used; s < enc_begin + g.encoder_len; ++s)
        for (Tensor* x : {&q, &k, &v}) {
          if (x == &q && Sq != seq) continue;
          if (b >= x->t.shape[0] || s >= x->t.shape[1]) continue;  // a reshaped tensor
          for (int64_t h = 0; h < x->t.shape[2]; ++h)
            for (int64_t d = 0; d < x->t.shape[3]; ++d) x->store(x->offset(b, s, h, d), 0, in.in(1, 4));
        }
    }

  args.q = q.t;
  args.k = k.t;
  args.v = v.t;
  args.out = out.t;

  // ---- whether the API must accept the call, worked out independently ---------------------
  bool aliased = false;
  if (out_host && out.valid)
    for (const Tensor* x : {&q, &k, &v})
      aliased |= overlaps(static_cast<uint8_t*>(out.t.data), out.span, x->buffer.data(), x->span);
  if (lse_alias)
    for (const Tensor* x : {&q, &k, &v, &out})
      aliased |= overlaps(lse_alias, uint64_t(lse_need) * 4, static_cast<const uint8_t*>(x->t.data), x->span);
  // Which bytes of out's buffer belong to an element, and whether two elements share one.
  std::vector<uint8_t> owned;
  bool out_shares_memory = false;
  if (out.valid && !out_host) {
    owned.assign(out.buffer.size(), 0);
    const int es = element_size(out.dtype);
    for (int64_t b = 0; b < out.t.shape[0]; ++b)
      for (int64_t s = 0; s < out.t.shape[1]; ++s)
        for (int64_t h = 0; h < out.t.shape[2]; ++h)
          for (int64_t d = 0; d < out.t.shape[3]; ++d) {
            const int64_t at = out.offset(b, s, h, d) * es;
            out_shares_memory |= owned[at] != 0;
            std::fill_n(owned.begin() + at, es, uint8_t(1));
          }
  }
  bool valid_encoder_lengths = true;
  for (int64_t b = 0; b < B && !valid.empty(); ++b)
    valid_encoder_lengths &= valid[b] >= 0 && valid[b] <= g.encoder_len;
  const bool acceptable =
      q.valid && k.valid && v.valid && out.valid && !q.reshaped && !k.reshaped && !v.reshaped &&
      !out.reshaped && k.dtype == dtype && v.dtype == dtype && out.dtype == dtype &&
      (Sq == seq || (g.encoder_len > 0 && Sq == video)) && Hkv > 0 && Hq % Hkv == 0 && valid_encoder_lengths &&
      std::isfinite(args.scale) && args.scale >= 0 && (!args.lse || args.lse_len >= lse_need) &&
      !aliased && !out_shares_memory && threads >= 0;
  // out strides that interleave without sharing memory may be refused: the API's rule is a
  // sufficient one (lvsa.h).
  const bool judged = !(out.odd_strides && !out_shares_memory);

  // ---- the calls ----------------------------------------------------------------------------
  const auto snapshot = [&] {
    std::vector<uint8_t> all;
    for (const Tensor* x : {&q, &k, &v, &out}) all.insert(all.end(), x->buffer.begin(), x->buffer.end());
    for (const float x : lse_buffer) {
      const auto bits = std::bit_cast<std::array<uint8_t, 4>>(x);
      all.insert(all.end(), bits.begin(), bits.end());
    }
    return all;
  };
  const std::vector<uint8_t> before = snapshot();
  const lvsa_status fast = lvsa_attention_cpu(plan.handle, &args, threads);
  const std::string fast_error = lvsa_last_error();
  if (fast != LVSA_OK) {
    expect_error(fast, "lvsa_attention_cpu");
    if (acceptable && judged) finding("lvsa_attention_cpu refused a valid call", fast_error);
    if (snapshot() != before) finding("lvsa_attention_cpu failed but wrote to a buffer", fast_error);
    const lvsa_status exact = lvsa_attention_reference(plan.handle, &args);
    if (threads >= 0 && (exact != fast || fast_error != lvsa_last_error()))
      finding("the backends disagree on a bad call", fast_error + " | " + lvsa_last_error());
    if (exact != LVSA_OK && snapshot() != before)
      finding("lvsa_attention_reference failed but wrote to a buffer", lvsa_last_error());
    return 0;
  }
  if (!acceptable) finding("lvsa_attention_cpu accepted a call it must refuse");
  if (!fast_error.empty()) finding("lvsa_attention_cpu succeeded with a message", fast_error);

  // Written: exactly out's elements and lse's first B*Hq*Sq floats; q, k, v untouched.
  const std::vector<uint8_t> after = snapshot();
  size_t at = 0;
  for (const Tensor* x : {&q, &k, &v}) {
    if (!std::equal(x->buffer.begin(), x->buffer.end(), after.begin() + at)) finding("an input was written to");
    at += x->buffer.size();
  }
  for (size_t i = 0; i < out.buffer.size(); ++i)
    if (!owned[i] && out.buffer[i] != 0xA5) finding("out was written outside its elements");
  for (size_t i = size_t(lse_need); i < lse_buffer.size(); ++i)
    if (std::bit_cast<uint32_t>(lse_buffer[i]) != 0xA5A5A5A5u) finding("lse was written past B*Hq*Sq");

  Tensor fast_out = out;
  fast_out.t.data = fast_out.buffer.data();
  const std::vector<float> fast_lse = lse_buffer;
  std::memset(out.buffer.data(), 0xA5, out.buffer.size());
  std::fill(lse_buffer.begin(), lse_buffer.end(), std::bit_cast<float>(0xA5A5A5A5u));
  if (lvsa_attention_reference(plan.handle, &args) != LVSA_OK)
    finding("lvsa_attention_reference failed where lvsa_attention_cpu succeeded", lvsa_last_error());

  const float tolerance = dtype == LVSA_F32 ? 2e-4f : dtype == LVSA_F16 ? 2e-3f : 1.6e-2f;
  const auto agree = [&](float got, float want, float tol, const char* what) {
    // Finite inputs, or non-finite ones only in encoder padding: finite outputs (lse -inf
    // for rows without keys).
    if (std::isfinite(got) != std::isfinite(want) || (plant != 1 && !std::isfinite(want) && want != -HUGE_VALF))
      finding(what, "non-finite mismatch: fast " + std::to_string(got) + ", reference " + std::to_string(want));
    if (std::isfinite(want) && std::fabs(got - want) > tol * (1 + std::fabs(want)))
      finding(what, "fast " + std::to_string(got) + " vs reference " + std::to_string(want));
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < Sq; ++s)
      for (int64_t h = 0; h < Hq; ++h) {
        for (int64_t d = 0; d < D; ++d) {
          const int64_t e = out.offset(b, s, h, d);
          agree(fast_out.load(e), out.load(e), tolerance, "out");
        }
        if (args.lse) {
          const size_t i = size_t((b * Hq + h) * Sq + s);
          agree(fast_lse[i], lse_buffer[i], 1e-4f, "lse");
        }
      }
  return 0;
}
