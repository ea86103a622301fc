// Lowering a frame pattern to the token intervals kernels walk, and work accounting.
#include <algorithm>
#include <string>

#include "lvsa/plan.hpp"

namespace lvsa {

void validate(const Geometry& g) {
  if (g.frames < 1 || g.frames > kMaxFrames)
    throw Error("lvsa: geometry.frames must be in [1, " + std::to_string(kMaxFrames) + "], got " +
                std::to_string(g.frames));
  if (g.tokens_per_frame < 1)
    throw Error("lvsa: geometry.tokens_per_frame must be >= 1, got " +
                std::to_string(g.tokens_per_frame));
  if (g.encoder_len < 0)
    throw Error("lvsa: geometry.encoder_len must be >= 0, got " + std::to_string(g.encoder_len));
  const int side = int(g.encoder_side);
  if (side < 0 || side > 2)
    throw Error("lvsa: geometry.encoder_side must be none (0), before (1) or after (2), got " +
                std::to_string(side));
  if (g.encoder_len > 0 && g.encoder_side == EncoderSide::None)
    throw Error("lvsa: geometry.encoder_len is " + std::to_string(g.encoder_len) +
                " but encoder_side is none; say whether encoder tokens come before or after "
                "the video");
  // Token indices are int64 in plans but int32-addressable sequences keep kernels simple.
  if (g.seq_len() > (int64_t(1) << 31) - 1)
    throw Error("lvsa: sequence length T*P + encoder_len = " + std::to_string(g.seq_len()) +
                " exceeds 2^31-1");
}

KeyRanges lower_to_ranges(const FramePattern& p, const Geometry& g) {
  validate(g);
  if (p.frames != g.frames)
    throw Error("lvsa: pattern has " + std::to_string(p.frames) + " frames but geometry has " +
                std::to_string(g.frames));
  KeyRanges r;
  r.geometry = g;
  r.range_offsets.reserve(p.frames + 1);
  r.range_offsets.push_back(0);
  const int64_t P = g.tokens_per_frame, base = g.video_begin();
  for (int f = 0; f < p.frames; ++f) {
    // Walk frames in order; a run of attended frames becomes one interval.
    int run_start = -1;
    for (int x = 0; x <= p.frames; ++x) {
      const bool attended =
          x < p.frames && (p.is_global[x] || (x >= p.window_lo[f] && x <= p.window_hi[f]));
      if (attended && run_start < 0) run_start = x;
      if (!attended && run_start >= 0) {
        r.range_begin.push_back(base + run_start * P);
        r.range_end.push_back(base + x * P);
        run_start = -1;
      }
    }
    r.range_offsets.push_back(int32_t(r.range_begin.size()));
  }
  return r;
}

int64_t KeyRanges::attended_video_tokens(int f) const {
  int64_t n = 0;
  for (int i = range_offsets[f]; i < range_offsets[f + 1]; ++i) n += range_end[i] - range_begin[i];
  return n;
}

WorkEstimate estimate_work(const KeyRanges& r, int heads, int head_dim) {
  if (heads < 1 || head_dim < 1)
    throw Error("lvsa: heads and head_dim must be >= 1, got " + std::to_string(heads) + " and " +
                std::to_string(head_dim));
  const Geometry& g = r.geometry;
  const double P = g.tokens_per_frame, E = g.encoder_len, S = double(g.seq_len());
  WorkEstimate w;
  for (int f = 0; f < g.frames; ++f) w.sparse_pairs += P * (double(r.attended_video_tokens(f)) + E);
  w.sparse_pairs += E * S;  // encoder queries are dense
  w.dense_pairs = S * S;
  const double per_pair = 4.0 * heads * head_dim;
  w.sparse_flops = w.sparse_pairs * per_pair;
  w.dense_flops = w.dense_pairs * per_pair;
  return w;
}

StepPlan make_plan(const Geometry& geometry, const PatternConfig& config, int64_t step) {
  validate(geometry);
  StepPlan plan;
  plan.config = config;
  plan.step = step;
  plan.pattern = build_frame_pattern(geometry.frames, config, step);
  plan.ranges = lower_to_ranges(plan.pattern, geometry);
  return plan;
}

bool frames_share_key_list(const KeyRanges& r) {
  const int n = r.num_ranges(0);
  for (int f = 1; f < r.geometry.frames; ++f) {
    if (r.num_ranges(f) != n) return false;
    const size_t a = size_t(r.range_offsets[0]), b = size_t(r.range_offsets[f]);
    for (size_t i = 0; i < size_t(n); ++i)
      if (r.range_begin[a + i] != r.range_begin[b + i] || r.range_end[a + i] != r.range_end[b + i]) return false;
  }
  return true;
}

int64_t key_tiles(const KeyRanges& r, int tile_n, bool spanning) {
  if (tile_n < 1) throw Error("lvsa: tile_n must be >= 1, got " + std::to_string(tile_n));
  const Geometry& g = r.geometry;
  const int64_t enc_b = g.encoder_begin(), enc_e = enc_b + g.encoder_len;
  int64_t n = 0;
  for (int f = 0; f < g.frames; ++f) {
    // Intervals in sequence order, the encoder span first or last; a run of touching ones is
    // one merged interval. open: keys in the list's last tile when it is partial and has one
    // segment, so that (spanning) the next merged interval's first keys complete it.
    int64_t run_b = -1, run_e = -1, open = 0;
    auto walk = [&](int64_t len) {
      if (spanning && open > 0) {
        const int64_t take = std::min(tile_n - open, len);
        len -= take;
        open = 0;  // a tile has at most two segments
      }
      n += (len + tile_n - 1) / tile_n;
      open = len % tile_n;
    };
    auto add = [&](int64_t b, int64_t e) {
      if (b == e) return;
      if (b == run_e) {
        run_e = e;
        return;
      }
      if (run_e > run_b) walk(run_e - run_b);
      run_b = b;
      run_e = e;
    };
    if (g.encoder_side == EncoderSide::Before) add(enc_b, enc_e);
    for (int i = r.range_offsets[f]; i < r.range_offsets[f + 1]; ++i) add(r.range_begin[i], r.range_end[i]);
    if (g.encoder_side == EncoderSide::After) add(enc_b, enc_e);
    if (run_e > run_b) walk(run_e - run_b);
  }
  return n;
}

}  // namespace lvsa
