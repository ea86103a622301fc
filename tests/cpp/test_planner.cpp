// Property tests of the planner over a wide grid of configurations (spec §1-§6).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "lvsa/plan.hpp"

namespace {

using lvsa::PatternConfig;

struct Case {
  int T, W, n_first, R;
  double s;
  bool expand;
};

std::vector<Case> grid() {
  std::vector<Case> cases;
  for (int T : {1, 2, 3, 5, 8, 13, 21, 22, 33, 41, 49, 64, 81, 121})
    for (int W : {0, 1, 2, 3, 5, 8})
      for (int n_first : {0, 1, 2, 4})
        for (int R : {1, 5, 13, 21, 33})
          for (double s : {0.5, 1.0, 1.7})
            for (bool expand : {true, false}) cases.push_back({T, W, n_first, R, s, expand});
  return cases;
}

PatternConfig config_of(const Case& c) {
  PatternConfig cfg;
  cfg.window = c.W;
  cfg.n_first = c.n_first;
  cfg.reference = c.R;
  cfg.scale = c.s;
  cfg.expand = c.expand;
  return cfg;
}

TEST(Planner, PropertiesOverGrid) {
  for (const Case& c : grid()) {
    const PatternConfig cfg = config_of(c);
    const int kfi = lvsa::keyframe_interval(c.T, cfg);
    ASSERT_GE(kfi, 1);
    ASSERT_LE(kfi, std::max(c.T, 1));
    for (int64_t step : {0, 1, 2, 7, 1000003}) {
      SCOPED_TRACE(testing::Message() << "T=" << c.T << " W=" << c.W << " n_first=" << c.n_first
                                      << " R=" << c.R << " s=" << c.s << " expand=" << c.expand
                                      << " step=" << step);
      const auto p = lvsa::build_frame_pattern(c.T, cfg, step);
      EXPECT_EQ(p.kfi, kfi);
      EXPECT_EQ(p.offset, int(step % kfi));
      // Globals: sorted, unique, contain the first frames and the rotated grid.
      ASSERT_TRUE(std::is_sorted(p.globals.begin(), p.globals.end()));
      ASSERT_EQ(std::set<int>(p.globals.begin(), p.globals.end()).size(), p.globals.size());
      for (int f = 0; f < std::min(c.n_first, c.T); ++f) EXPECT_TRUE(p.is_global[f]);
      for (int x = p.offset; x < c.T; x += kfi) EXPECT_TRUE(p.is_global[x]);
      const int G = int(p.globals.size());
      for (int f = 0; f < c.T; ++f) {
        const auto att = p.attended(f);
        ASSERT_TRUE(std::is_sorted(att.begin(), att.end()));
        if (kfi == 1) {
          EXPECT_EQ(int(att.size()), c.T) << "kfi = 1 must be dense";
        } else if (c.W == 0) {
          EXPECT_EQ(int(att.size()), G) << "W = 0 attends to globals only";
        } else if (c.expand) {
          EXPECT_EQ(int(att.size()), G + std::min(2 * c.W + 1, c.T - G));
        } else {
          // The adaptive window keeps its width 2W+1 (clipped to T) at the edges.
          EXPECT_EQ(p.window_hi[f] - p.window_lo[f] + 1, std::min(2 * c.W + 1, c.T));
        }
        if (c.W > 0) {
          EXPECT_LE(p.window_lo[f], f);
          EXPECT_GE(p.window_hi[f], f);
        }
      }
    }
  }
}

TEST(Planner, KeyRangesCoverExactlyTheAttendedFrames) {
  for (const Case& c : grid()) {
    if (c.T > 49) continue;
    for (auto side : {lvsa::EncoderSide::None, lvsa::EncoderSide::Before, lvsa::EncoderSide::After}) {
      lvsa::Geometry g{c.T, 7, side == lvsa::EncoderSide::None ? 0 : 5, side};
      const auto plan = lvsa::make_plan(g, config_of(c), 3);
      const auto& r = plan.ranges;
      ASSERT_EQ(int(r.range_offsets.size()), c.T + 1);
      for (int f = 0; f < c.T; ++f) {
        std::vector<int64_t> tokens;
        for (int i = r.range_offsets[f]; i < r.range_offsets[f + 1]; ++i) {
          ASSERT_LT(r.range_begin[i], r.range_end[i]);
          if (i > r.range_offsets[f]) {
            // Sorted, disjoint and merged: a gap of at least one frame between intervals.
            ASSERT_LT(r.range_end[i - 1], r.range_begin[i]);
          }
          for (int64_t t = r.range_begin[i]; t < r.range_end[i]; ++t) tokens.push_back(t);
        }
        std::vector<int64_t> expected;
        for (int x : plan.pattern.attended(f))
          for (int t = 0; t < g.tokens_per_frame; ++t)
            expected.push_back(g.video_begin() + int64_t(x) * g.tokens_per_frame + t);
        ASSERT_EQ(tokens, expected);
        EXPECT_EQ(r.attended_video_tokens(f), int64_t(expected.size()));
      }
    }
  }
}

TEST(Planner, DenseWhenVideoFitsTheReference) {
  PatternConfig cfg;  // R = 21
  for (int T = 1; T <= 21; ++T) {
    EXPECT_EQ(lvsa::keyframe_interval(T, cfg), 1);
    const auto p = lvsa::build_frame_pattern(T, cfg, 5);
    EXPECT_DOUBLE_EQ(p.frame_density(), 1.0);
  }
}

TEST(Planner, SpecSparsityTable) {
  // spec "Sparsity at a glance": kfi for Wan (R=21) and HunyuanVideo 1.5 (R=33).
  PatternConfig wan, hy;
  hy.reference = 33;
  const std::vector<std::tuple<int, int, int>> table = {
      {21, 1, 1}, {33, 2, 1}, {41, 3, 2}, {49, 3, 2}, {81, 6, 3}, {121, 9, 5}};
  for (auto [T, kfi_wan, kfi_hy] : table) {
    EXPECT_EQ(lvsa::keyframe_interval(T, wan), kfi_wan) << "T=" << T;
    EXPECT_EQ(lvsa::keyframe_interval(T, hy), kfi_hy) << "T=" << T;
  }
}

TEST(Planner, ManualAndNoKeyframes) {
  PatternConfig cfg;
  cfg.keyframe_interval = 4;
  const auto p = lvsa::build_frame_pattern(30, cfg, 6);
  EXPECT_EQ(p.kfi, 4);
  EXPECT_EQ(p.offset, 2);
  EXPECT_EQ(p.globals, (std::vector<int>{0, 2, 6, 10, 14, 18, 22, 26}));
  cfg.keyframe_interval = lvsa::kNoKeyframes;
  cfg.n_first = 2;
  const auto q = lvsa::build_frame_pattern(30, cfg, 6);
  EXPECT_EQ(q.kfi, 0);
  EXPECT_EQ(q.globals, (std::vector<int>{0, 1}));
}

TEST(Planner, RotationOff) {
  PatternConfig cfg;
  cfg.rotate = false;
  const auto a = lvsa::build_frame_pattern(81, cfg, 0);
  const auto b = lvsa::build_frame_pattern(81, cfg, 5);
  EXPECT_EQ(a.globals, b.globals);
  EXPECT_EQ(b.offset, 0);
}

TEST(Planner, WorkEstimate) {
  lvsa::Geometry g{81, 1560, 0, lvsa::EncoderSide::None};
  const auto plan = lvsa::make_plan(g, {}, 0);
  const auto w = lvsa::estimate_work(plan.ranges, 12, 128);
  const double S = 81.0 * 1560;
  EXPECT_DOUBLE_EQ(w.dense_flops, 4.0 * S * S * 12 * 128);
  EXPECT_NEAR(w.density(), plan.pattern.frame_density(), 1e-12);
  // Encoder queries are dense, video queries add the encoder keys.
  lvsa::Geometry gh{10, 3, 4, lvsa::EncoderSide::After};
  const auto dense = lvsa::make_plan(gh, [] { PatternConfig c; c.keyframe_interval = 1; return c; }(), 0);
  EXPECT_DOUBLE_EQ(lvsa::estimate_work(dense.ranges, 1, 8).density(), 1.0);
}

// key_tiles against a mask oracle: every attended key token of a frame (its attended frames
// and the encoder span) marked on the sequence, then walked key by key: a tile closes when
// full, and, without spanning, at the end of a maximal run; with it, at the start of a third run.
TEST(Planner, KeyTilesCountTheKernelsWalk) {
  for (const lvsa::Geometry& g : {lvsa::Geometry{21, 1560, 0, lvsa::EncoderSide::None},
                                  lvsa::Geometry{121, 1560, 0, lvsa::EncoderSide::None},
                                  lvsa::Geometry{65, 1590, 1985, lvsa::EncoderSide::After},
                                  lvsa::Geometry{13, 1350, 226, lvsa::EncoderSide::Before},
                                  lvsa::Geometry{9, 37, 5, lvsa::EncoderSide::Before},
                                  lvsa::Geometry{40, 7, 3, lvsa::EncoderSide::After}})
    for (int tile_n : {1, 16, 64, 160, 176})
      for (bool spanning : {false, true}) {
        const auto plan = lvsa::make_plan(g, {}, 3);
        int64_t expected = 0;
        for (int f = 0; f < g.frames; ++f) {
          std::vector<uint8_t> key(size_t(g.seq_len()), 0);
          for (int x : plan.pattern.attended(f))
            for (int64_t t = 0; t < g.tokens_per_frame; ++t)
              key[size_t(g.video_begin() + x * g.tokens_per_frame + t)] = 1;
          for (int64_t t = 0; t < g.encoder_len; ++t) key[size_t(g.encoder_begin() + t)] = 1;
          int fill = 0, segments = 0;  // of the open tile
          for (size_t t = 0; t < key.size(); ++t) {
            if (!key[t]) continue;
            const bool run_starts = t == 0 || !key[t - 1];
            if (run_starts && !spanning) fill = 0;
            if (fill == tile_n || (run_starts && segments == 2)) fill = 0;
            if (fill == 0) ++expected, segments = 0;
            if (fill == 0 || run_starts) ++segments;
            ++fill;
          }
        }
        EXPECT_EQ(lvsa::key_tiles(plan.ranges, tile_n, spanning), expected)
            << "T=" << g.frames << " tile_n=" << tile_n << " spanning=" << spanning;
      }
  // At Wan 2.1's 1560-token frames every anchor frame ends in a 152-key tile of 176: spanning
  // tiles fill them.
  const auto wan = lvsa::make_plan({121, 1560, 0, lvsa::EncoderSide::None}, {}, 0);
  EXPECT_LT(lvsa::key_tiles(wan.ranges, 176, true), lvsa::key_tiles(wan.ranges, 176, false));
  EXPECT_THROW(lvsa::key_tiles(lvsa::make_plan({4, 8, 0, lvsa::EncoderSide::None}, {}, 0).ranges, 0), lvsa::Error);
}

TEST(Planner, FramesShareAKeyListExactlyWhenDense) {
  const lvsa::Geometry g{21, 1560, 0, lvsa::EncoderSide::None};
  PatternConfig dense;
  dense.keyframe_interval = 1;
  EXPECT_TRUE(lvsa::frames_share_key_list(lvsa::make_plan(g, dense, 0).ranges));
  EXPECT_TRUE(lvsa::frames_share_key_list(lvsa::make_plan({1, 150, 40, lvsa::EncoderSide::After}, {}, 0).ranges));
  PatternConfig sparse;
  sparse.reference = 5;
  EXPECT_FALSE(lvsa::frames_share_key_list(lvsa::make_plan(g, sparse, 0).ranges));
  // Sliding windows: neighbouring frames attend different keys.
  PatternConfig windowed;
  windowed.keyframe_interval = 4;
  windowed.window = 1;
  EXPECT_FALSE(lvsa::frames_share_key_list(lvsa::make_plan({8, 10, 0, lvsa::EncoderSide::None}, windowed, 0).ranges));
}

TEST(PlannerErrors, BadInputsNameTheArgument) {
  auto expect_error = [](auto fn, const char* needle) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one mentioning " << needle;
    } catch (const lvsa::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  PatternConfig cfg;
  expect_error([&] { lvsa::keyframe_interval(0, cfg); }, "frames");
  expect_error([&] { lvsa::keyframe_interval(-3, cfg); }, "frames");
  expect_error([&] { PatternConfig c; c.window = -1; lvsa::validate(c); }, "window");
  expect_error([&] { PatternConfig c; c.n_first = -1; lvsa::validate(c); }, "n_first");
  expect_error([&] { PatternConfig c; c.reference = 0; lvsa::validate(c); }, "reference");
  expect_error([&] { PatternConfig c; c.scale = 0; lvsa::validate(c); }, "scale");
  expect_error([&] { PatternConfig c; c.scale = -1; lvsa::validate(c); }, "scale");
  expect_error([&] { PatternConfig c; c.scale = 1.0 / 0.0; lvsa::validate(c); }, "scale");
  expect_error([&] { PatternConfig c; c.keyframe_interval = -2; lvsa::validate(c); }, "keyframe_interval");
  expect_error([&] { lvsa::build_frame_pattern(10, cfg, -1); }, "step");
  expect_error([&] { lvsa::make_plan({10, 0, 0, lvsa::EncoderSide::None}, cfg, 0); }, "tokens_per_frame");
  expect_error([&] { lvsa::make_plan({10, 4, 3, lvsa::EncoderSide::None}, cfg, 0); }, "encoder_side");
  expect_error([&] { lvsa::make_plan({10, 4, -3, lvsa::EncoderSide::After}, cfg, 0); }, "encoder_len");
  expect_error([&] { lvsa::make_plan({1 << 20, 1 << 12, 0, lvsa::EncoderSide::None}, cfg, 0); }, "2^31");
  const auto p = lvsa::build_frame_pattern(10, cfg, 0);
  expect_error([&] { lvsa::lower_to_ranges(p, {11, 4, 0, lvsa::EncoderSide::None}); }, "frames");
  expect_error([&] { p.attended(10); }, "query frame");
}

}  // namespace
