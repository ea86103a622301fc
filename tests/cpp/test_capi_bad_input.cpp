// The C API's bad-input catalogue: one row per way to call it wrongly. Each row asserts
// the status, that lvsa_last_error() names the argument and what was expected, and that
// nothing was written (every byte of every buffer, out and lse poisoned, is unchanged).
// Compiled as C++ against the plain C header only.
#include <gtest/gtest.h>

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

constexpr uint8_t kPoison = 0xA5;
constexpr int64_t B = 2, Hq = 4, Hkv = 2, D = 8;
// T=5 frames of P=3 tokens and 4 encoder tokens after them: S = 19.
constexpr lvsa_geometry kGeometry = {5, 3, 4, LVSA_ENCODER_AFTER};
constexpr int64_t S = 19;

// C code may store any int in an enum field; C++ may not name such a value, so copy it in.
template <class Enum>
void store_raw(Enum& field, int value) {
  static_assert(sizeof(Enum) == sizeof(int));
  std::memcpy(&field, &value, sizeof value);
}

lvsa_config test_config() {
  lvsa_config c;
  lvsa_config_default(&c);
  c.reference = 3;  // sparse at T = 5
  return c;
}

lvsa_plan* make_plan(lvsa_geometry geometry) {
  const lvsa_config config = test_config();
  lvsa_plan* plan = nullptr;
  EXPECT_EQ(lvsa_plan_create(&geometry, &config, 1, &plan), LVSA_OK) << lvsa_last_error();
  return plan;
}

lvsa_tensor contiguous(float* data, int64_t heads) {
  return {data, LVSA_F32, {B, S, heads, D}, {S * heads * D, heads * D, D, 1}};
}

// A valid call on fresh random inputs; each row breaks one thing.
struct Call {
  std::vector<float> q, k, v, out, lse;
  int32_t valid[B] = {4, 2};
  lvsa_attention_args args{};
  const lvsa_attention_args* args_ptr = &args;
  const lvsa_plan* plan = nullptr;
  int num_threads = 1;

  Call() : q(B * S * Hq * D), k(B * S * Hkv * D), v(k.size()), out(q.size()), lse(B * Hq * S) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto* t : {&q, &k, &v})
      for (float& x : *t) x = u(rng);
    std::memset(out.data(), kPoison, out.size() * sizeof(float));
    std::memset(lse.data(), kPoison, lse.size() * sizeof(float));
    args.q = contiguous(q.data(), Hq);
    args.k = contiguous(k.data(), Hkv);
    args.v = contiguous(v.data(), Hkv);
    args.out = contiguous(out.data(), Hq);
    args.lse = lse.data();
    args.lse_len = int64_t(lse.size());
    args.encoder_valid = valid;
  }

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> all;
    for (const auto* t : {&q, &k, &v, &out, &lse}) {
      const auto* p = reinterpret_cast<const uint8_t*>(t->data());
      all.insert(all.end(), p, p + t->size() * sizeof(float));
    }
    return all;
  }
};

// Plans shared by the rows: the call's own, one for another geometry, a destroyed one.
struct Plans {
  lvsa_plan* live = make_plan(kGeometry);
  lvsa_plan* other_geometry = make_plan({4, 3, 4, LVSA_ENCODER_AFTER});
  const lvsa_plan* destroyed = [] {
    lvsa_plan* p = make_plan(kGeometry);
    lvsa_plan_destroy(p);
    return p;
  }();
};

Plans& plans() {
  static Plans p;
  return p;
}

struct AttentionRow {
  std::string name;
  std::function<void(Call&)> mutate;
  std::vector<std::string> needles;  // all must appear in lvsa_last_error()
  bool cpu_only = false;             // the row is about an argument of lvsa_attention_cpu
};

void PrintTo(const AttentionRow& row, std::ostream* os) { *os << row.name; }

std::vector<AttentionRow> attention_rows() {
  const auto other_heads = [](Call& c, int64_t heads) {
    c.args.q.shape[2] = c.args.out.shape[2] = heads;
  };
  return {
      {"null_plan", [](Call& c) { c.plan = nullptr; }, {"plan must not be NULL"}},
      {"destroyed_plan", [](Call& c) { c.plan = plans().destroyed; },
       {"plan is not a live plan", "lvsa_plan_create"}},
      {"null_args", [](Call& c) { c.args_ptr = nullptr; }, {"args must not be NULL"}},
      {"q_null_data", [](Call& c) { c.args.q.data = nullptr; }, {"q has no data"}},
      {"k_zero_sequence", [](Call& c) { c.args.k.shape[1] = 0; },
       {"k must be 4-D [B, S, H, D] with every size > 0", "[2, 0, 2, 8]"}},
      {"q_negative_batch", [](Call& c) { c.args.q.shape[0] = -2; },
       {"q must be 4-D [B, S, H, D] with every size > 0", "[-2, 19, 4, 8]"}},
      {"hkv_zero", [](Call& c) { c.args.k.shape[2] = c.args.v.shape[2] = 0; },
       {"k must be 4-D [B, S, H, D] with every size > 0", "[2, 19, 0, 8]"}},
      {"v_negative_stride", [](Call& c) { c.args.v.stride[2] = -8; },
       {"v has a negative stride -8 in dim 2", "not supported"}},
      {"hq_not_multiple_of_hkv", [&](Call& c) { other_heads(c, 3); },
       {"q has 3 heads", "not a multiple of the 2 heads of k and v"}},
      {"out_unknown_dtype", [](Call& c) { store_raw(c.args.out.dtype, 9); },
       {"out has an unknown dtype 9", "expected float32 (0), float16 (1), bfloat16 (2), float8_e4m3 (3"}},
      {"q_negative_dtype", [](Call& c) { store_raw(c.args.q.dtype, -1); },
       {"q has an unknown dtype -1", "expected float32"}},
      {"k_other_dtype", [](Call& c) { c.args.k.dtype = LVSA_F16; },
       {"k has dtype float16", "expected q's dtype float32"}},
      {"plan_for_another_geometry", [](Call& c) { c.plan = plans().other_geometry; },
       {"k has sequence length 19 (dim 1)", "expected 16"}},
      {"q_sequence_length", [](Call& c) { c.args.q.shape[1] = c.args.out.shape[1] = 18; },
       {"q has sequence length 18", "plan expects 19 (all tokens) or 15 (video tokens only)"}},
      {"k_batch", [](Call& c) { c.args.k.shape[0] = c.args.v.shape[0] = 1; },
       {"k has batch size 1 (dim 0)", "expected 2"}},
      {"k_head_dim", [](Call& c) { c.args.k.shape[3] = c.args.v.shape[3] = 4; },
       {"k has head dim 4 (dim 3)", "expected 8"}},
      {"v_shape_differs_from_k", [](Call& c) { c.args.v.shape[2] = 1; },
       {"v has shape [2, 19, 1, 8] but k has [2, 19, 2, 8]", "must match"}},
      {"out_shape", [](Call& c) { c.args.out.shape[3] = 4; },
       {"out has shape [2, 19, 4, 4]", "expected q's shape [2, 19, 4, 8]"}},
      {"encoder_valid_above_encoder_len", [](Call& c) { c.valid[1] = 5; },
       {"encoder_valid[1] = 5", "outside [0, encoder_len = 4]"}},
      {"encoder_valid_negative", [](Call& c) { c.valid[0] = -1; },
       {"encoder_valid[0] = -1", "outside [0, encoder_len = 4]"}},
      {"scale_negative", [](Call& c) { c.args.scale = -0.5f; },
       {"scale must be finite and >= 0 (0 means 1/sqrt(D))", "got -0.5"}},
      {"scale_nan", [](Call& c) { c.args.scale = std::numeric_limits<float>::quiet_NaN(); },
       {"scale must be finite", "got nan"}},
      {"scale_inf", [](Call& c) { c.args.scale = std::numeric_limits<float>::infinity(); },
       {"scale must be finite", "got inf"}},
      {"out_is_q", [](Call& c) { c.args.out.data = c.q.data(); },
       {"out overlaps q in memory", "expected a separate buffer"}},
      {"out_overlaps_half_of_k",
       [](Call& c) { c.args.out.data = c.k.data() + c.k.size() / 2; },
       {"out overlaps k in memory", "expected a separate buffer"}},
      {"out_overlaps_last_element_of_v",
       [](Call& c) { c.args.out.data = c.v.data() + c.v.size() - 1; },
       {"out overlaps v in memory"}},
      {"out_elements_share_memory", [](Call& c) { c.args.out.stride[2] = 0; },
       {"out has strides [608, 32, 0, 1] for shape [2, 19, 4, 8]", "share memory",
        "expected strides that, in increasing order, each step past"}},
      {"lse_one_float_short", [](Call& c) { c.args.lse_len = B * Hq * S - 1; },
       {"lse_len is 151 floats", "expected at least B*Hq*Sq = 152"}},
      {"lse_len_missing", [](Call& c) { c.args.lse_len = 0; },
       {"lse_len is 0 floats", "expected at least B*Hq*Sq = 152"}},
      {"lse_overlaps_out", [](Call& c) { c.args.lse = c.out.data() + 5; },
       {"lse overlaps out in memory", "expected a separate buffer"}},
      {"lse_overlaps_q", [](Call& c) { c.args.lse = c.q.data(); }, {"lse overlaps q in memory"}},
      {"strides_beyond_address_space",
       [](Call& c) { c.args.q.stride[0] = std::numeric_limits<int64_t>::max() / 2; },
       {"q has shape [2, 19, 4, 8]", "reach beyond the address space"}},
      {"num_threads_negative", [](Call& c) { c.num_threads = -1; },
       {"num_threads must be >= 0 (0: all hardware threads)", "got -1"}, true},
  };
}

class AttentionBadInput : public ::testing::TestWithParam<AttentionRow> {};

TEST_P(AttentionBadInput, FailsNamingTheArgumentAndWritesNothing) {
  const AttentionRow& row = GetParam();
  using Entry = std::function<lvsa_status(const lvsa_plan*, const lvsa_attention_args*, int)>;
  std::vector<std::pair<const char*, Entry>> entries = {{"lvsa_attention_cpu", lvsa_attention_cpu}};
  if (!row.cpu_only)
    entries.push_back({"lvsa_attention_reference", [](const lvsa_plan* p, const lvsa_attention_args* a,
                                                      int) { return lvsa_attention_reference(p, a); }});
  for (const auto& [entry_name, entry] : entries) {
    SCOPED_TRACE(entry_name);
    Call call;
    call.plan = plans().live;
    row.mutate(call);
    const std::vector<uint8_t> before = call.bytes();
    EXPECT_EQ(entry(call.plan, call.args_ptr, call.num_threads), LVSA_ERROR_INVALID_ARGUMENT);
    const std::string error = lvsa_last_error();
    for (const std::string& needle : row.needles)
      EXPECT_NE(error.find(needle), std::string::npos) << "'" << needle << "' not in: " << error;
    EXPECT_TRUE(call.bytes() == before) << "a failed call wrote to its buffers";
  }
}

INSTANTIATE_TEST_SUITE_P(CApi, AttentionBadInput, ::testing::ValuesIn(attention_rows()),
                         [](const auto& info) { return info.param.name; });

// The rows' starting point is a good call, and that call overwrites the poison everywhere,
// so an unchanged buffer above means nothing was written.
TEST(AttentionBadInput, TheUnbrokenCallSucceedsAndWritesEveryByte) {
  Call call;
  ASSERT_EQ(lvsa_attention_cpu(plans().live, &call.args, 1), LVSA_OK) << lvsa_last_error();
  EXPECT_STREQ(lvsa_last_error(), "");
  float poison;
  std::memset(&poison, kPoison, sizeof poison);
  for (const auto* t : {&call.out, &call.lse})
    for (const float x : *t) EXPECT_NE(std::memcmp(&x, &poison, sizeof x), 0);
}

struct PlanCall {
  lvsa_geometry geometry = kGeometry;
  lvsa_config config = test_config();
  int64_t step = 1;
  const lvsa_geometry* geometry_ptr = &geometry;
  const lvsa_config* config_ptr = &config;
  bool null_result = false;  // pass NULL for the lvsa_plan** result
};

struct PlanRow {
  std::string name;
  std::function<void(PlanCall&)> mutate;
  std::vector<std::string> needles;
};

void PrintTo(const PlanRow& row, std::ostream* os) { *os << row.name; }

std::vector<PlanRow> plan_rows() {
  return {
      {"null_geometry", [](PlanCall& c) { c.geometry_ptr = nullptr; }, {"geometry must not be NULL"}},
      {"null_config", [](PlanCall& c) { c.config_ptr = nullptr; }, {"config must not be NULL"}},
      {"null_result", [](PlanCall& c) { c.null_result = true; }, {"plan must not be NULL"}},
      {"zero_frames", [](PlanCall& c) { c.geometry.frames = 0; },
       {"geometry.frames must be in [1, 1048576]", "got 0"}},
      {"negative_tokens_per_frame", [](PlanCall& c) { c.geometry.tokens_per_frame = -1; },
       {"geometry.tokens_per_frame must be >= 1", "got -1"}},
      {"negative_encoder_len", [](PlanCall& c) { c.geometry.encoder_len = -3; },
       {"geometry.encoder_len must be >= 0", "got -3"}},
      {"encoder_without_side", [](PlanCall& c) { c.geometry.encoder_side = LVSA_ENCODER_NONE; },
       {"geometry.encoder_len is 4 but encoder_side is none", "before or after"}},
      {"unknown_encoder_side", [](PlanCall& c) { store_raw(c.geometry.encoder_side, 7); },
       {"geometry.encoder_side must be none (0), before (1) or after (2)", "got 7"}},
      {"sequence_too_long",
       [](PlanCall& c) { c.geometry.frames = 1 << 20, c.geometry.tokens_per_frame = 4096; },
       {"sequence length T*P + encoder_len", "exceeds 2^31-1"}},
      {"negative_window", [](PlanCall& c) { c.config.window = -1; },
       {"window must be in [0, 1048576]", "got -1"}},
      {"negative_n_first", [](PlanCall& c) { c.config.n_first = -2; },
       {"n_first must be in [0, 1048576]", "got -2"}},
      {"zero_reference", [](PlanCall& c) { c.config.reference = 0; },
       {"reference must be in [1, 1048576]", "got 0"}},
      {"keyframe_interval_below_auto", [](PlanCall& c) { c.config.keyframe_interval = -2; },
       {"keyframe_interval must be in [-1, 1048576]", "got -2"}},
      {"sparsity_scale_nan",
       [](PlanCall& c) { c.config.scale = std::numeric_limits<double>::quiet_NaN(); },
       {"scale must be a finite number in (0, 1048576]", "got nan"}},
      {"sparsity_scale_zero", [](PlanCall& c) { c.config.scale = 0; },
       {"scale must be a finite number in (0, 1048576]", "got 0"}},
      {"negative_step", [](PlanCall& c) { c.step = -1; }, {"step must be >= 0", "got -1"}},
  };
}

class PlanBadInput : public ::testing::TestWithParam<PlanRow> {};

TEST_P(PlanBadInput, FailsNamingTheArgumentAndReturnsNoPlan) {
  const PlanRow& row = GetParam();
  PlanCall call;
  row.mutate(call);
  lvsa_plan* plan = reinterpret_cast<lvsa_plan*>(uintptr_t(0xA5A5A5A5));
  EXPECT_EQ(lvsa_plan_create(call.geometry_ptr, call.config_ptr, call.step,
                             call.null_result ? nullptr : &plan),
            LVSA_ERROR_INVALID_ARGUMENT);
  const std::string error = lvsa_last_error();
  for (const std::string& needle : row.needles)
    EXPECT_NE(error.find(needle), std::string::npos) << "'" << needle << "' not in: " << error;
  if (!call.null_result) EXPECT_EQ(plan, nullptr);
}

INSTANTIATE_TEST_SUITE_P(CApi, PlanBadInput, ::testing::ValuesIn(plan_rows()),
                         [](const auto& info) { return info.param.name; });

// lvsa_plan_ranges and lvsa_plan_info on a NULL or destroyed plan: an error, outputs untouched.
TEST(PlanBadInput, QueriesOnANullOrDestroyedPlanFail) {
  const std::pair<const char*, const lvsa_plan*> bad[] = {{"plan must not be NULL", nullptr},
                                                          {"plan is not a live plan", plans().destroyed}};
  for (const auto& [needle, plan] : bad) {
    int frames = -7, kfi = -7, offset = -7;
    double density = -7;
    const int32_t* offsets = nullptr;
    const int64_t *begin = nullptr, *end = nullptr;
    EXPECT_EQ(lvsa_plan_ranges(plan, &frames, &offsets, &begin, &end), LVSA_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(lvsa_last_error()).find(needle), std::string::npos) << lvsa_last_error();
    EXPECT_EQ(lvsa_plan_info(plan, &kfi, &offset, &density), LVSA_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(lvsa_last_error()).find(needle), std::string::npos) << lvsa_last_error();
    EXPECT_TRUE(frames == -7 && kfi == -7 && offset == -7 && density == -7);
    EXPECT_TRUE(offsets == nullptr && begin == nullptr && end == nullptr);
  }
  lvsa_plan_destroy(nullptr);  // both ignored, not a double free
  lvsa_plan_destroy(const_cast<lvsa_plan*>(plans().destroyed));
}

}  // namespace
