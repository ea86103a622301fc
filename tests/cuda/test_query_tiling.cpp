// How the host tiles video queries (build_fwd_params): one run of all frames with frame-pair
// tiles where the plan allows them, one run for dense plans, runs of one frame otherwise; and
// which kernel runs the tiling (choose_kernel): one without the frame-pair code where no tile
// holds two frames. With pointers_on_current_device the device queries are skipped, so no GPU is
// needed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "host_launch.hpp"
#include "lvsa/cuda.hpp"
#include "lvsa/plan.hpp"

namespace {

struct Tiling {
  int frame_pairs, frames_per_run, tiles_per_run, tiles_per_head;
  const lvsa::cuda::KernelEntry* sm90;  // the sm90 kernel chosen (null: none built)
};

Tiling tiling_of(const lvsa::Geometry& g, const lvsa::PatternConfig& cfg, bool frame_pairs = true, int64_t D = 128,
                 const char* kernel = nullptr) {
  const lvsa_test::HostLaunch l = lvsa_test::host_launch(g, cfg, 1, lvsa::DType::BF16, D, 2, frame_pairs);
  return {l.p.frame_pairs, l.p.frames_per_run, l.p.tiles_per_run, l.p.tiles_per_head,
          lvsa::cuda::choose_kernel(l.plan.ranges, l.p, l.params, lvsa::cuda::Family::Sm90, kernel)};
}

// The chosen sm90 kernel runs the tiling's pair tiles (without them, the cost of padding decides
// between a width with the pair code and the 176-key kernel without it).
void expect_kernel_fits(const Tiling& t) {
  if (t.sm90 == nullptr) return;  // a build without the sm90 family
  if (t.frame_pairs) EXPECT_TRUE(t.sm90->frame_pairs) << t.sm90->name;
}

// CogVideoX 5B at 49 latent frames (D = 64, text first): sparse with a 13-frame reference.
const lvsa::Geometry kCogVideoX{49, 1350, 226, lvsa::EncoderSide::Before};
lvsa::PatternConfig cogvideox() {
  lvsa::PatternConfig cfg;
  cfg.reference = 13;
  return cfg;
}

lvsa::PatternConfig sparse() {
  lvsa::PatternConfig cfg;
  cfg.window = 1;
  cfg.reference = 5;
  return cfg;
}

TEST(QueryTiling, SparseFramesOfATileOrMorePairUp) {
  const Tiling t = tiling_of({9, 150, 0, lvsa::EncoderSide::None}, sparse());
  EXPECT_EQ(t.frame_pairs, 1);
  EXPECT_EQ(t.frames_per_run, 9);
  EXPECT_EQ(t.tiles_per_run, 11);  // 1350 rows
  EXPECT_EQ(t.tiles_per_head, 11);
  expect_kernel_fits(t);
}

TEST(QueryTiling, EncoderQueriesKeepTheirOwnTiles) {
  const Tiling t = tiling_of({9, 150, 200, lvsa::EncoderSide::Before}, sparse());
  EXPECT_EQ(t.frame_pairs, 1);
  EXPECT_EQ(t.tiles_per_head, 11 + 2);
}

TEST(QueryTiling, WithoutFramePairsEachFrameIsARun) {
  const Tiling t = tiling_of({9, 150, 0, lvsa::EncoderSide::None}, sparse(), false);
  EXPECT_EQ(t.frame_pairs, 0);
  EXPECT_EQ(t.frames_per_run, 1);
  EXPECT_EQ(t.tiles_per_run, 2);  // 128 + 22 rows
  EXPECT_EQ(t.tiles_per_head, 18);
  expect_kernel_fits(t);
}

TEST(QueryTiling, FramesShorterThanATileStayRunsOfOne) {
  const Tiling t = tiling_of({9, 100, 0, lvsa::EncoderSide::None}, sparse());
  EXPECT_EQ(t.frame_pairs, 0);
  EXPECT_EQ(t.frames_per_run, 1);
  EXPECT_EQ(t.tiles_per_head, 9);
  expect_kernel_fits(t);
}

TEST(QueryTiling, DensePlansAreOneRunWithoutPairs) {
  lvsa::PatternConfig dense = sparse();
  dense.keyframe_interval = 1;
  const Tiling t = tiling_of({9, 100, 0, lvsa::EncoderSide::None}, dense);
  EXPECT_EQ(t.frame_pairs, 0);
  EXPECT_EQ(t.frames_per_run, 9);
  EXPECT_EQ(t.tiles_per_head, 8);  // 900 rows
  expect_kernel_fits(t);
}

TEST(QueryTiling, DensePlansOfWholeKeyTilesRunTheKernelWithoutPairCode) {
  lvsa::PatternConfig dense = sparse();
  dense.keyframe_interval = 1;
  const Tiling t = tiling_of({4, 3520, 0, lvsa::EncoderSide::None}, dense);  // Cosmos 2.5's frames
  EXPECT_EQ(t.frame_pairs, 0);
  if (t.sm90 == nullptr) GTEST_SKIP() << "no sm90 kernels in this build";
  EXPECT_FALSE(t.sm90->frame_pairs) << t.sm90->name;
  EXPECT_EQ(t.sm90->tile_n, 176);
}

// tests/gpu/test_cuda_attention.py's dense plans rely on these choices to run both kinds of kernel.
TEST(QueryTiling, TheGpuTestsDensePlansRunKernelsWithAndWithoutPairCode) {
  lvsa::PatternConfig dense = sparse();
  dense.keyframe_interval = 1;
  const Tiling whole = tiling_of({8, 88, 0, lvsa::EncoderSide::None}, dense);    // 4 tiles of 176 keys
  const Tiling padded = tiling_of({6, 41, 0, lvsa::EncoderSide::None}, dense);   // 246 keys
  if (whole.sm90 == nullptr) GTEST_SKIP() << "no sm90 kernels in this build";
  EXPECT_FALSE(whole.sm90->frame_pairs) << whole.sm90->name;
  EXPECT_TRUE(padded.sm90->frame_pairs) << padded.sm90->name;
  EXPECT_EQ(padded.sm90->tile_n, 160);
}

// At D = 64 the kernels with frame-pair code span intervals, and 192-key tiles then win
// (docs/perf/cuda_sm90.md v11); dense plans keep the one-segment kernel without pair code.
TEST(QueryTiling, SparseHeadDim64PlansRunTheSpanningKernel) {
  const Tiling t = tiling_of(kCogVideoX, cogvideox(), true, 64);
  if (t.sm90 == nullptr) GTEST_SKIP() << "no sm90 kernels in this build";
  EXPECT_EQ(t.frame_pairs, 1);
  EXPECT_TRUE(t.sm90->spanning) << t.sm90->name;
  EXPECT_EQ(t.sm90->tile_n, 192) << t.sm90->name;
  const Tiling dense = tiling_of({13, 1350, 226, lvsa::EncoderSide::Before}, cogvideox(), true, 64);
  EXPECT_FALSE(dense.sm90->frame_pairs) << dense.sm90->name;
  EXPECT_FALSE(dense.sm90->spanning) << dense.sm90->name;
  // D = 128 keeps one segment.
  EXPECT_FALSE(tiling_of(kCogVideoX, cogvideox()).sm90->spanning);
}

TEST(QueryTiling, FramesThatStartAtDifferentKeysDoNotPair) {
  // A window and no global frame: frame f's keys start at frame f - 1, its neighbour's one later.
  lvsa::PatternConfig window_only = sparse();
  window_only.n_first = 0;
  window_only.keyframe_interval = lvsa::kNoKeyframes;
  window_only.expand = false;
  const Tiling t = tiling_of({9, 150, 0, lvsa::EncoderSide::None}, window_only);
  EXPECT_EQ(t.frame_pairs, 0);
  EXPECT_EQ(t.frames_per_run, 1);
  expect_kernel_fits(t);
}

// LaunchOptions::kernel: a named kernel runs instead of the cost model's choice (the selftest
// runs every case on every kernel this way), and one that cannot run the arguments is refused,
// saying why.
TEST(QueryTiling, ANamedKernelRunsInsteadOfTheCostModelsChoice) {
  if (tiling_of(kCogVideoX, cogvideox(), true, 64).sm90 == nullptr) GTEST_SKIP() << "no sm90 kernels in this build";
  const Tiling t = tiling_of(kCogVideoX, cogvideox(), true, 64, "sm90 bf16 d64 n176");
  EXPECT_STREQ(t.sm90->name, "sm90 bf16 d64 n176");
  EXPECT_EQ(t.sm90->tile_n, 176);
}

// Why a CogVideoX D = 64 launch refuses `kernel`.
std::string refusal(const char* kernel) {
  return lvsa_test::error_of([&] { tiling_of(kCogVideoX, cogvideox(), true, 64, kernel); });
}

TEST(QueryTiling, ANamedKernelThatCannotRunTheArgumentsIsRefused) {
  if (tiling_of(kCogVideoX, cogvideox(), true, 64).sm90 == nullptr) GTEST_SKIP() << "no sm90 kernels in this build";
  const std::string prefix = "lvsa: cuda attention: LaunchOptions::kernel is ";
  EXPECT_EQ(refusal("sm90 bf16 d128 n176"),
            prefix + "'sm90 bf16 d128 n176', which takes bfloat16 q and k, bfloat16 v with head_dim 128 and bfloat16 "
                     "out; these are bfloat16 q and k, bfloat16 v with head_dim 64 and bfloat16 out");
  EXPECT_EQ(refusal("sm90 bf16 d64 n176 no-pairs"),
            prefix + "'sm90 bf16 d64 n176 no-pairs', which has no frame-pair code, and this launch has query tiles "
                     "with rows of two frames");
  EXPECT_EQ(refusal("sm80 bf16 d64 n64"),
            prefix + "'sm80 bf16 d64 n64', an sm80 kernel, and the kernel family here is sm90");
  const std::string unknown = refusal("sm90 bf16 d64 n999");
  EXPECT_EQ(unknown.rfind(prefix + "'sm90 bf16 d64 n999', which this build does not have; it has 'sm80 bf16 d64 n64', ",
                          0),
            0u)
      << unknown;
}

}  // namespace
