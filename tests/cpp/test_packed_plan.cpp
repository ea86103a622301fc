// The packed device plan (include/lvsa/packed_plan.hpp) against a token-set oracle: the frame
// lists as the planner lowered them, and for every pair of adjacent frames the union the kernels
// walk for a query tile holding rows of both, and the keys only one of the two attends.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lvsa/models.hpp"
#include "lvsa/packed_plan.hpp"

namespace {

// Token membership of a list of intervals (begin/end arrays, [i0, i1)), checking its form:
// sorted, disjoint and, where `fused`, never touching.
std::vector<char> members(const int32_t* b, const int32_t* e, int i0, int i1, int64_t seq, bool fused,
                          const std::string& what) {
  std::vector<char> in(size_t(seq), 0);
  for (int i = i0; i < i1; ++i) {
    EXPECT_LT(b[i], e[i]) << what << " interval " << i << " is empty";
    if (i > i0) EXPECT_GT(b[i], fused ? e[i - 1] : e[i - 1] - 1) << what << " intervals " << i - 1 << ", " << i;
    for (int x = b[i]; x < e[i]; ++x) in[size_t(x)] = 1;
  }
  return in;
}

TEST(PackedPlan, FramePairListsAreUnionAndDifferences) {
  constexpr int32_t kPoison = -7;
  int fits = 0;
  for (const lvsa::Geometry& g : {lvsa::Geometry{1, 150, 40, lvsa::EncoderSide::After},
                                  lvsa::Geometry{2, 3, 0, lvsa::EncoderSide::None},
                                  lvsa::Geometry{9, 5, 4, lvsa::EncoderSide::Before},
                                  lvsa::Geometry{13, 3, 2, lvsa::EncoderSide::After},
                                  lvsa::Geometry{33, 2, 0, lvsa::EncoderSide::None}})
    for (int W : {0, 1, 3})
      for (int R : {1, 5, 13})
        for (bool expand : {true, false})
          for (int64_t step : {0, 1, 2, 5}) {
            lvsa::PatternConfig cfg;
            cfg.window = W;
            cfg.reference = R;
            cfg.expand = expand;
            const lvsa::StepPlan plan = lvsa::make_plan(g, cfg, step);
            const lvsa::KeyRanges& r = plan.ranges;
            SCOPED_TRACE(testing::Message() << "T=" << g.frames << " P=" << g.tokens_per_frame << " W=" << W
                                            << " R=" << R << " expand=" << expand << " step=" << step);
            const int T = g.frames;
            const int64_t seq = g.seq_len(), capacity = lvsa::worst_case_capacity(T);
            const lvsa::PackedPlanLayout l = lvsa::packed_plan_layout(T, capacity);
            ASSERT_EQ(l.size, lvsa::packed_plan_size(T, capacity));
            std::vector<int32_t> buf(size_t(l.size) + 64, kPoison);
            lvsa::pack_plan(r, capacity, buf.data());
            for (size_t i = size_t(l.size); i < buf.size(); ++i) ASSERT_EQ(buf[i], kPoison) << "written past the end";
            const int32_t* d = buf.data();
            bool fit = true;
            for (int f = 0; f + 1 < T; ++f) {
              const int32_t* off = d + l.range_offsets;
              const auto a = members(d + l.range_begin, d + l.range_end, off[f], off[f + 1], seq, false, "frame");
              const auto b = members(d + l.range_begin, d + l.range_end, off[f + 1], off[f + 2], seq, false, "frame");
              const int32_t* po = d + l.pair_offsets;
              ASSERT_LE(po[f], po[f + 1]);
              ASSERT_LE(po[f + 1], 2 * capacity);
              const auto u = members(d + l.pair_begin, d + l.pair_end, po[f], po[f + 1], seq, true, "union");
              // pair_only: one span each way, where the frames differ by at most that.
              std::vector<char> only_a(size_t(seq), 0), only_b(size_t(seq), 0);
              int spans_a = 0, spans_b = 0;
              for (int64_t x = 0; x < seq; ++x) {
                const size_t i = size_t(x);
                only_a[i] = a[i] && !b[i];
                only_b[i] = b[i] && !a[i];
                spans_a += only_a[i] && (x == 0 || !only_a[i - 1]);
                spans_b += only_b[i] && (x == 0 || !only_b[i - 1]);
                ASSERT_EQ(u[i], char(a[i] || b[i])) << "union, frames " << f << ", " << f + 1 << ", token " << x;
              }
              const bool same_start = off[f] < off[f + 1] && off[f + 1] < off[f + 2] &&
                                      d[l.range_begin + off[f]] == d[l.range_begin + off[f + 1]];
              fit = fit && spans_a <= 1 && spans_b <= 1 && same_start;
              if (!lvsa::frame_pairs_fit(r)) continue;
              const int32_t* only = d + l.pair_only + 4 * f;
              for (int64_t x = 0; x < seq; ++x) {
                ASSERT_EQ(char(x >= only[0] && x < only[1]), only_a[size_t(x)]) << "only frame " << f << ", token " << x;
                ASSERT_EQ(char(x >= only[2] && x < only[3]), only_b[size_t(x)]) << "only frame " << f + 1 << ", token " << x;
              }
            }
            EXPECT_EQ(lvsa::frame_pairs_fit(r), fit);
            fits += fit;
            if (T > 1) EXPECT_EQ(d[l.pair_offsets], 0);
          }
  EXPECT_GT(fits, 0);
}

// The models' default patterns at their published lengths, every step of the keyframe rotation:
// the frame-pair tiles are for these, so they must fit.
TEST(PackedPlan, ModelPatternsFitFramePairs) {
  for (const lvsa::ModelPreset& preset : lvsa::model_presets()) {
    const int d = preset.default_frames;  // 4k + 1, so are 2d - 1 and 4d - 3
    for (int video_frames : {d, 2 * d - 1, 4 * d - 3, 6 * d - 5}) {
      const lvsa::Geometry g = lvsa::model_geometry(preset, video_frames, preset.default_height, preset.default_width);
      lvsa::PatternConfig cfg = lvsa::to_latent_config({}, preset.vae_temporal);
      cfg.reference = preset.reference;
      for (int64_t step = 0; step < 16; ++step)
        EXPECT_TRUE(lvsa::frame_pairs_fit(lvsa::make_plan(g, cfg, step).ranges))
            << preset.name << " " << video_frames << " frames, step " << step;
    }
  }
}

// Frames whose lists differ by more than one interval either way, or start at different keys
// (a row's first key tile could hide every key from it), do not fit.
TEST(PackedPlan, FramePairsFitOnlyOneSpanEachWayFromTheSameFirstKey) {
  lvsa::KeyRanges r;
  r.geometry = {2, 3, 0, lvsa::EncoderSide::None};  // tokens [0, 6)
  auto frames = [&](std::vector<int64_t> b0, std::vector<int64_t> e0, std::vector<int64_t> b1,
                    std::vector<int64_t> e1) {
    r.range_offsets = {0, int32_t(b0.size()), int32_t(b0.size() + b1.size())};
    r.range_begin = b0, r.range_end = e0;
    r.range_begin.insert(r.range_begin.end(), b1.begin(), b1.end());
    r.range_end.insert(r.range_end.end(), e1.begin(), e1.end());
    return lvsa::frame_pairs_fit(r);
  };
  EXPECT_TRUE(frames({0}, {3}, {0}, {6}));             // frame 1 attends [3, 6) more
  EXPECT_TRUE(frames({0, 4}, {2, 5}, {0}, {3}));       // one span each way: [4, 5) and [2, 3)
  EXPECT_FALSE(frames({0, 2, 4}, {1, 3, 5}, {0}, {1}));  // frame 0 has two spans more
  EXPECT_FALSE(frames({0}, {3}, {1}, {6}));            // first keys 0 and 1
  EXPECT_FALSE(frames({0}, {3}, {}, {}));              // frame 1 attends nothing
}

TEST(PackedPlan, SectionsFollowEachOther) {
  const lvsa::PackedPlanLayout l = lvsa::packed_plan_layout(5, 11);
  EXPECT_EQ(l.range_offsets, 0);
  EXPECT_EQ(l.range_begin, 5 + 2);
  EXPECT_EQ(l.range_end, l.range_begin + 12);
  EXPECT_EQ(l.pair_offsets, l.range_end + 12);
  EXPECT_EQ(l.pair_begin, l.pair_offsets + 5);
  EXPECT_EQ(l.pair_end, l.pair_begin + 22);
  EXPECT_EQ(l.pair_only, l.pair_end + 22);
  EXPECT_EQ(l.size, l.pair_only + 20);
}

}  // namespace
