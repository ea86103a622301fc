// The LVSA planner: (geometry, configuration, denoising step) -> attention pattern.
//
// Implements docs/spec/pattern.md exactly. Everything here is host-only C++20
// with no dependencies; all quantities are in latent frames unless a name says
// otherwise. Invalid input throws lvsa::Error naming the argument.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lvsa {

// Every user-facing error of the engine. Derives from std::invalid_argument so callers
// that only know the standard library still catch it; the message names the argument.
struct Error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Upper bound on any frame-valued input. Keeps all arithmetic (2W+1, T*P, ...) far from
// integer overflow and the planner's O(T) loops bounded.
inline constexpr int kMaxFrames = 1 << 20;

// Keyframe interval selector: a positive value is a manual interval, kAutoKeyframes
// derives it from the budget (spec §1), kNoKeyframes disables periodic keyframes.
inline constexpr int kAutoKeyframes = -1;
inline constexpr int kNoKeyframes = 0;

struct PatternConfig {
  int window = 3;                       // W: local window half-width
  int n_first = 1;                      // leading global anchor frames
  int keyframe_interval = kAutoKeyframes;
  int reference = 21;                   // R: training-horizon latent frames of the model
  double scale = 1.0;                   // s: sparsity scale, multiplies the budget
  bool expand = true;                   // grow the window to 2W+1 non-global frames
  bool rotate = true;                   // shift the keyframe grid every denoising step
};

// Throws lvsa::Error if any field is out of its documented range.
void validate(const PatternConfig& config);

// Spec §1 (auto) or the manual/none value. Returns 0 when there are no periodic keyframes.
int keyframe_interval(int frames, const PatternConfig& config);

// The frame-level pattern of one denoising step.
struct FramePattern {
  int frames = 0;              // T
  int kfi = 0;                 // effective keyframe interval (0: no periodic keyframes)
  int offset = 0;              // rotation offset of the keyframe grid at this step
  std::vector<int> globals;    // G(offset), sorted, unique
  std::vector<uint8_t> is_global;  // size T
  // Local window [window_lo[f], window_hi[f]] of query frame f; empty when lo > hi.
  std::vector<int> window_lo, window_hi;

  // Sorted key frames query frame f attends to: G ∪ window(f).
  std::vector<int> attended(int f) const;
  // Σ_f |attended(f)| / T²  (frame-level density; encoder tokens not included).
  double frame_density() const;
};

FramePattern build_frame_pattern(int frames, const PatternConfig& config, int64_t step);

// Where encoder (text/image) tokens sit relative to the video tokens in the sequence.
enum class EncoderSide : int { None = 0, Before = 1, After = 2 };

// Token layout of one attention call. Video tokens are frame-major.
struct Geometry {
  int frames = 0;               // T, latent frames
  int tokens_per_frame = 0;     // P
  int encoder_len = 0;          // E (capacity; per-batch valid lengths are given at call time)
  EncoderSide encoder_side = EncoderSide::None;

  int64_t video_tokens() const { return int64_t(frames) * tokens_per_frame; }
  int64_t seq_len() const { return video_tokens() + encoder_len; }
  int64_t video_begin() const { return encoder_side == EncoderSide::Before ? encoder_len : 0; }
  int64_t encoder_begin() const { return encoder_side == EncoderSide::Before ? 0 : video_tokens(); }
};

void validate(const Geometry& geometry);

// The kernel-facing form of a step's pattern: per query frame, sorted merged key-token
// intervals [begin, end) in sequence coordinates (a run of adjacent attended frames is
// one interval). The encoder span is kept apart because its valid length is per batch:
// every query also attends to [encoder_begin, encoder_begin + valid_len[b]).
struct KeyRanges {
  Geometry geometry;
  // Intervals of query frame f are range_begin/end[range_offsets[f] .. range_offsets[f+1]).
  std::vector<int32_t> range_offsets;   // size T+1
  std::vector<int64_t> range_begin, range_end;

  int num_ranges(int f) const { return range_offsets[f + 1] - range_offsets[f]; }
  // Attended video key tokens of query frame f (encoder excluded).
  int64_t attended_video_tokens(int f) const;
};

KeyRanges lower_to_ranges(const FramePattern& pattern, const Geometry& geometry);

// Work accounting at full encoder length: attended (query, key) pairs and the forward
// FLOPs 4·pairs·D·H, for the sparse pattern and for dense attention over the same sequence.
struct WorkEstimate {
  double sparse_pairs = 0, dense_pairs = 0;
  double sparse_flops = 0, dense_flops = 0;
  double density() const { return dense_pairs > 0 ? sparse_pairs / dense_pairs : 0.0; }
};

WorkEstimate estimate_work(const KeyRanges& ranges, int heads, int head_dim);

// Key tiles of `tile_n` keys that one query tile of every frame walks, at the full encoder
// length, as the CUDA kernels cut them: a tile starts at each merged interval (the frame's
// intervals and the encoder span, touching ones fused), so only an interval's last tile is
// partial; with `spanning` (the sm90 16-bit kernels) that tile continues with the next merged
// interval's first keys instead, up to two segments a tile. The CUDA dispatch weighs it to pick
// a key-tile width per plan.
int64_t key_tiles(const KeyRanges& ranges, int tile_n, bool spanning = false);

// Whether every video frame attends exactly the same key intervals (a dense plan, or T = 1).
// The CUDA kernels then tile the video queries as one run instead of frame by frame, so no
// frame ends in a short query tile.
bool frames_share_key_list(const KeyRanges& ranges);

// One step's everything: what the CLI prints, the bindings expose and kernels consume.
struct StepPlan {
  PatternConfig config;
  int64_t step = 0;
  FramePattern pattern;
  KeyRanges ranges;
};

StepPlan make_plan(const Geometry& geometry, const PatternConfig& config, int64_t step);

}  // namespace lvsa
