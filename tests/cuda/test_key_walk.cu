// The kernels' key walk (common/block_info.cuh: query_tile, KeyWalk, FramePairMask), run on the
// host over real plans and held to the pattern itself. For every query tile of a launch:
//   - its key tiles cover exactly the keys its rows attend (for a tile with rows of two frames,
//     the union of both lists), each once;
//   - a tile holds at most kN keys, in one segment (two with spanning), and starts at a
//     multiple of kAlign;
//   - in a tile with rows of two frames, the frame-pair masks hide from each frame's rows
//     exactly the keys that frame does not attend.
// Also, lvsa::key_tiles counts the tiles the walk takes. No GPU needed: the same functions the
// kernels inline, compiled for the host.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/block_info.cuh"
#include "host_launch.hpp"
#include "lvsa/plan.hpp"

namespace {

using lvsa::cuda::FramePairMask;
using lvsa::cuda::FwdParams;
using lvsa::cuda::KeyWalk;
using lvsa::cuda::QueryTile;

// A plan packed in host memory and the kernel parameters over it, as attention() builds them.
struct Launch {
  lvsa::Geometry g;
  lvsa_test::HostLaunch host;
};

// Whether query frame f (-1: encoder queries, which attend every key) attends key token t.
struct Attends {
  const Launch& l;
  std::vector<std::vector<uint8_t>> frames;  // [f][x]: frame f attends video frame x

  explicit Attends(const Launch& launch) : l(launch), frames(size_t(launch.g.frames)) {
    for (int f = 0; f < l.g.frames; ++f) {
      frames[size_t(f)].assign(size_t(l.g.frames), 0);
      for (int x : l.host.plan.pattern.attended(f)) frames[size_t(f)][size_t(x)] = 1;
    }
  }
  bool operator()(int f, int64_t t) const {
    const int64_t v = t - l.g.video_begin();
    if (v < 0 || v >= l.g.video_tokens()) return true;  // the encoder span: all valid here
    return f < 0 || frames[size_t(f)][size_t(v / l.g.tokens_per_frame)];
  }
  int64_t count(int f) const {
    return l.g.encoder_len + (f < 0 ? l.g.video_tokens() : l.host.plan.ranges.attended_video_tokens(f));
  }
};

// FramePairMask's callback: columns [c0, c1) hidden from the rows of the tile's first frame
// (rows_of_first) or of its second. Callable where the walk is (host and device).
template <int kN>
struct Hide {
  uint8_t (*hidden)[kN];
  __host__ __device__ void operator()(int c0, int c1, bool rows_of_first) const {
    for (int c = c0 < 0 ? 0 : c0; c < c1 && c < kN; ++c) hidden[rows_of_first ? 0 : 1][c] = 1;
  }
};

template <int kN, int kAlign, bool kSpan>
void check_walk(const Launch& l, const std::string& what) {
  const Attends attends(l);
  const FwdParams& p = l.host.p;
  std::vector<int> stamp(size_t(l.g.seq_len()) * 2, -1);  // [key][row frame]: the last query tile that saw it
  for (int tile = 0; tile < p.tiles_per_head; ++tile) {
    const QueryTile qt = lvsa::cuda::query_tile<lvsa::cuda::kQueryTileRows>(p, 0, tile);
    const bool pair = qt.two_frames();
    FramePairMask mask{};
    if (pair) mask.init(p, qt);
    KeyWalk<kN, kAlign, kSpan> walk;
    walk.init(p, qt);
    int64_t seen[2] = {0, 0};  // keys the rows of qt.frame (and of qt.frame + 1) see
    for (int n = 0; walk.valid(); ++n) {
      const lvsa::cuda::KeyTile t = walk.tile();  // what the producer loads
      const int count = t.count, first = t.first, head = walk.head();
      ASSERT_TRUE(count > 0 && count <= kN) << what << " query tile " << tile << " key tile " << n;
      ASSERT_EQ(t.cur % kAlign, 0) << what;
      if (!kSpan) ASSERT_EQ(first, count) << what;
      // Column c holds key cur + c in the first segment, cur2 + c - first in the second.
      uint8_t hidden[2][kN] = {};
      const Hide<kN> hide{hidden};
      if (pair) {
        if (kSpan) mask.visit(t.cur, first, t.cur2, count - first, hide);
        else mask.visit(t.cur, kN, hide);
      }
      for (int c = head; c < count; ++c) {
        const int64_t key = c < first ? int64_t(t.cur) + c : int64_t(t.cur2) + c - first;
        for (int r = 0; r < (pair ? 2 : 1); ++r) {
          if (hidden[r][c]) continue;
          const int f = qt.frame < 0 ? -1 : qt.frame + r;
          ASSERT_TRUE(attends(f, key)) << what << " query tile " << tile << " (frame " << f << ") sees key " << key;
          int& s = stamp[size_t(key) * 2 + size_t(r)];
          ASSERT_NE(s, tile) << what << " query tile " << tile << " sees key " << key << " twice";
          s = tile;
          ++seen[r];
        }
      }
      walk.advance();
    }
    for (int r = 0; r < (pair ? 2 : 1); ++r) {
      const int f = qt.frame < 0 ? -1 : qt.frame + r;
      ASSERT_EQ(seen[r], attends.count(f)) << what << " query tile " << tile << " frame " << f;
    }
  }
  // key_tiles counts one query tile's walk per frame (its own list).
  if (kAlign == 1) {
    int64_t tiles = 0;
    for (int f = 0; f < l.g.frames; ++f) {
      QueryTile qt{};
      qt.rows = qt.valid_rows = qt.split = 1;
      qt.frame = f;
      qt.enc_valid = l.g.encoder_len;
      KeyWalk<kN, kAlign, kSpan> walk;
      walk.init(p, qt);
      for (; walk.valid(); walk.advance()) ++tiles;
    }
    EXPECT_EQ(tiles, lvsa::key_tiles(l.host.plan.ranges, kN, kSpan)) << what;
  }
}

// The walks the kernels instantiate: sm90 16-bit (one segment, spanning), sm80, fp8 values.
void check_all_walks(const lvsa::Geometry& g, const lvsa::PatternConfig& cfg) {
  for (int step : {0, 3}) {
    const Launch l{g, lvsa_test::host_launch(g, cfg, step, lvsa::DType::BF16, 64, 1)};
    const std::string what = "T=" + std::to_string(g.frames) + " P=" + std::to_string(g.tokens_per_frame) +
                             " E=" + std::to_string(g.encoder_len) + " step " + std::to_string(step) +
                             (l.host.p.frame_pairs ? " (frame pairs)" : "");
    check_walk<176, 1, false>(l, what + " N176");
    check_walk<160, 1, false>(l, what + " N160");
    check_walk<176, 1, true>(l, what + " N176 spanning");
    check_walk<192, 1, true>(l, what + " N192 spanning");
    check_walk<224, 1, true>(l, what + " N224 spanning");
    check_walk<64, 1, false>(l, what + " N64 (sm80)");
    check_walk<192, 16, false>(l, what + " N192 aligned (fp8 values)");
  }
}

lvsa::PatternConfig reference(int frames) {
  lvsa::PatternConfig cfg;
  cfg.reference = frames;
  return cfg;
}

TEST(KeyWalk, WanFramesAtSixTimesTheReference) {
  check_all_walks({121, 1560, 0, lvsa::EncoderSide::None}, reference(21));
}

TEST(KeyWalk, HunyuanVideoWithItsEncoderAfter) {
  check_all_walks({65, 1590, 1985, lvsa::EncoderSide::After}, reference(33));
}

TEST(KeyWalk, CogVideoXWithItsTextBefore) {
  check_all_walks({49, 1350, 226, lvsa::EncoderSide::Before}, reference(13));
}

TEST(KeyWalk, FramesShorterThanATile) {
  lvsa::PatternConfig cfg = reference(5);
  cfg.window = 1;
  check_all_walks({40, 7, 3, lvsa::EncoderSide::After}, cfg);
  check_all_walks({9, 37, 5, lvsa::EncoderSide::Before}, cfg);
  check_all_walks({9, 150, 0, lvsa::EncoderSide::None}, cfg);
}

TEST(KeyWalk, DensePlans) {
  lvsa::PatternConfig dense = reference(5);
  dense.keyframe_interval = 1;
  check_all_walks({8, 88, 0, lvsa::EncoderSide::None}, dense);
  check_all_walks({6, 41, 17, lvsa::EncoderSide::Before}, dense);
}

}  // namespace
