// NaN and Inf through the C API's CPU backends, as lvsa.h documents them: they reach the
// output rows of the queries that attend them and nothing else; encoder padding never leaks.
// Each case plants a value in an otherwise random input and compares every output element
// with a clean run: rows that do not attend the planted value must be bit-identical.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lvsa/lvsa.h"

namespace {

constexpr int64_t B = 2, Hq = 4, Hkv = 2, D = 8;
constexpr int T = 8, P = 4, E = 5;  // encoder after the video
constexpr int64_t S = int64_t(T) * P + E;
constexpr int32_t kValid[B] = {E, 2};

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kNegativeNaN = std::bit_cast<float>(0xffc00000u);  // what 0.0f / 0.0f gives on x86
const float kInf = std::numeric_limits<float>::infinity();

int64_t at(int64_t b, int64_t s, int64_t h, int64_t heads, int64_t d = 0) {
  return ((b * S + s) * heads + h) * D + d;
}

struct Buffers {
  std::vector<float> q, k, v, out, lse;
  Buffers() : q(B * S * Hq * D), k(B * S * Hkv * D), v(k.size()), out(q.size()), lse(B * Hq * S) {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto* t : {&q, &k, &v})
      for (float& x : *t) x = u(rng);
  }
};

// A sparse pattern (window 1, one global frame, no keyframes), so that most query frames do
// not attend a given key frame.
class NonFinite : public ::testing::Test {
 protected:
  void SetUp() override {
    const lvsa_geometry geometry = {T, P, E, LVSA_ENCODER_AFTER};
    lvsa_config config;
    lvsa_config_default(&config);
    config.window = 1;
    config.keyframe_interval = LVSA_NO_KEYFRAMES;
    config.expand = 0;
    ASSERT_EQ(lvsa_plan_create(&geometry, &config, 0, &plan_), LVSA_OK) << lvsa_last_error();
    ASSERT_EQ(lvsa_plan_ranges(plan_, nullptr, &offsets_, &begin_, &end_), LVSA_OK);
  }
  void TearDown() override { lvsa_plan_destroy(plan_); }

  // Whether query row i of batch b sees key token j.
  bool attends(int64_t b, int64_t i, int64_t j) const {
    const int64_t video = int64_t(T) * P;
    const bool valid_encoder_key = j >= video && j - video < kValid[b];
    if (i >= video) return i - video < kValid[b] && (j < video || valid_encoder_key);
    if (valid_encoder_key) return true;
    const int64_t f = i / P;
    for (int r = offsets_[f]; r < offsets_[f + 1]; ++r)
      if (j >= begin_[r] && j < end_[r]) return true;
    return false;
  }

  void run(Buffers& x, bool reference) const {
    lvsa_attention_args args{};
    const auto tensor = [](std::vector<float>& data, int64_t heads) {
      return lvsa_tensor{data.data(), LVSA_F32, {B, S, heads, D}, {S * heads * D, heads * D, D, 1}};
    };
    args.q = tensor(x.q, Hq);
    args.k = tensor(x.k, Hkv);
    args.v = tensor(x.v, Hkv);
    args.out = tensor(x.out, Hq);
    args.lse = x.lse.data();
    args.lse_len = int64_t(x.lse.size());
    args.encoder_valid = kValid;
    const lvsa_status status =
        reference ? lvsa_attention_reference(plan_, &args) : lvsa_attention_cpu(plan_, &args, 2);
    ASSERT_EQ(status, LVSA_OK) << lvsa_last_error();
  }

  // Plants values with `plant`, then checks each output element: `hit(b, i, h, d)` says
  // whether it must be non-finite (NaN when want_nan), and lse_hit whether the lse of such
  // rows must be NaN; all other elements must equal the clean run's.
  void check(const std::function<void(Buffers&)>& plant,
             const std::function<bool(int64_t, int64_t, int64_t, int64_t)>& hit, bool want_nan,
             bool lse_hit, bool expect_hits = true) const {
    for (const bool reference : {false, true}) {
      SCOPED_TRACE(reference ? "lvsa_attention_reference" : "lvsa_attention_cpu");
      Buffers clean, planted;
      plant(planted);
      run(clean, reference);
      run(planted, reference);
      int64_t hits = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < S; ++i)
          for (int64_t h = 0; h < Hq; ++h) {
            bool row_hit = false;
            for (int64_t d = 0; d < D; ++d) {
              const float got = planted.out[at(b, i, h, Hq, d)], want = clean.out[at(b, i, h, Hq, d)];
              if (hit(b, i, h, d)) {
                ++hits;
                row_hit = true;
                EXPECT_TRUE(want_nan ? std::isnan(got) : !std::isfinite(got))
                    << "out[" << b << ", " << i << ", " << h << ", " << d << "] = " << got;
              } else {
                EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
                    << "out[" << b << ", " << i << ", " << h << ", " << d << "] = " << got
                    << ", clean run " << want;
              }
            }
            const float got = planted.lse[(b * Hq + h) * S + i], want = clean.lse[(b * Hq + h) * S + i];
            if (lse_hit && row_hit)
              EXPECT_TRUE(std::isnan(got)) << "lse[" << b << ", " << h << ", " << i << "] = " << got;
            else
              EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
                  << "lse[" << b << ", " << h << ", " << i << "] = " << got << ", clean run " << want;
          }
      if (expect_hits) EXPECT_GT(hits, 0) << "no output attends the planted value; the case tests nothing";
    }
  }

  lvsa_plan* plan_ = nullptr;
  const int32_t* offsets_ = nullptr;
  const int64_t *begin_ = nullptr, *end_ = nullptr;
};

// Key token 5*P+1 (video frame 5) of batch 1, kv head 1: seen by query frames 4-6 and the
// valid encoder queries, in query heads 2 and 3.
constexpr int64_t kKeyToken = 5 * P + 1, kKeyBatch = 1, kKvHead = 1;

TEST_F(NonFinite, NaNInAKeyMakesEveryRowThatAttendsItNaN) {
  for (const float nan : {kNaN, kNegativeNaN}) {
    SCOPED_TRACE(std::signbit(nan) ? "negative NaN" : "positive NaN");
    check([&](Buffers& x) { x.k[at(kKeyBatch, kKeyToken, kKvHead, Hkv, 3)] = nan; },
          [&](int64_t b, int64_t i, int64_t h, int64_t) {
            return b == kKeyBatch && h / (Hq / Hkv) == kKvHead && attends(b, i, kKeyToken);
          },
          true, true);
  }
}

TEST_F(NonFinite, NaNOrInfInAValueReachesThatDimOfTheRowsThatAttendIt) {
  for (const float bad : {kNaN, kNegativeNaN, kInf, -kInf}) {
    SCOPED_TRACE(bad);
    check([&](Buffers& x) { x.v[at(kKeyBatch, kKeyToken, kKvHead, Hkv, 6)] = bad; },
          [&](int64_t b, int64_t i, int64_t h, int64_t d) {
            return d == 6 && b == kKeyBatch && h / (Hq / Hkv) == kKvHead && attends(b, i, kKeyToken);
          },
          std::isnan(bad), false);
  }
}

TEST_F(NonFinite, NaNInAQueryRowStaysInThatRow) {
  const int64_t row = 2 * P + 3, head = 1;
  check([&](Buffers& x) { x.q[at(0, row, head, Hq, 0)] = kNegativeNaN; },
        [&](int64_t b, int64_t i, int64_t h, int64_t) { return b == 0 && i == row && h == head; },
        true, true);
}

// Batch 1 has 2 valid encoder tokens: the 3 after them are padding, as keys and as queries.
TEST_F(NonFinite, NaNAndInfInEncoderPaddingNeverLeak) {
  check([](Buffers& x) {
          const float poison[] = {kNaN, kInf, -kInf, kNegativeNaN};
          int n = 0;
          for (int64_t s = int64_t(T) * P + kValid[1]; s < S; ++s) {
            for (int64_t h = 0; h < Hkv; ++h)
              for (int64_t d = 0; d < D; ++d) {
                x.k[at(1, s, h, Hkv, d)] = poison[n++ % 4];
                x.v[at(1, s, h, Hkv, d)] = poison[n++ % 4];
              }
            for (int64_t h = 0; h < Hq; ++h)
              for (int64_t d = 0; d < D; ++d) x.q[at(1, s, h, Hq, d)] = poison[n++ % 4];
          }
        },
        [](int64_t, int64_t, int64_t, int64_t) { return false; }, true, false, false);
}

}  // namespace
