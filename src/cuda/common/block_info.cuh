// A query tile's rows and the key tiles it visits.
//
// A run's rows (one frame's P, or all T * P) are cut into tiles of kM, the last one short.
// Runs of one frame give every row of a tile one key list. A run of all frames does too where
// every frame attends the same keys (a dense plan); with frame pairs (sparse plans, P >= kM)
// a tile may instead hold the end of frame f and the start of frame f+1. It then walks the
// union of both key lists, and FramePairMask hides from each frame's rows the keys only the
// other attends: no frame ends in a short tile (Wan's 1560 rows would leave 24 to a tile of
// their own), for one extra frame of keys in one tile of ~12. Encoder query rows (joint
// attention) form their own tiles with a dense key list.
//
// The key list is walked as merged intervals in sequence order: the frame's video intervals
// from the plan plus the valid encoder span, with adjacent intervals fused (an encoder placed
// right before frame 0 continues into it). Key tiles start at each merged interval's first
// token -- K/V are read in place, so tiles need no alignment -- and only the last tile of an
// interval is partial, which is the only place masking happens. Where the value layout groups
// keys (kAlign > 1: sm90's fp8 values, permuted in groups of 16), a merged interval's first tile
// starts at its first token rounded down to a multiple of kAlign instead, and its first head()
// columns, keys before the interval, are masked too.
//
// Spanning tiles (kSpan; the sm90 16-bit D = 64 kernels, docs/perf/cuda_sm90.md v11): an
// interval's last tile, instead of ending short, continues with the first keys of the next
// merged interval, so a tile holds two segments of keys, [cur, end) and [cur2, cur2 + n2), and
// only the list's last tile (or one whose second interval is shorter than the rest of the tile)
// is partial. Softmax does not care about the order of keys, only that a K row and its V row
// share a column.
#pragma once

#include "params.hpp"

// Host-callable as well, so that tests/cuda/test_key_walk.cu checks the walk on the CPU against
// the plan it comes from; the kernels compile to the same code.
#define LVSA_WALK __host__ __device__ __forceinline__

namespace lvsa::cuda {

// A plan entry, through the read-only cache on the device.
LVSA_WALK int plan_load(const int32_t* p) {
#ifdef __CUDA_ARCH__
  return __ldg(p);
#else
  return *p;
#endif
}

struct QueryTile {
  int row0;        // first query row (index into q's sequence dim)
  int rows;        // rows of this tile that exist (< kM only for a run's last tile)
  int valid_rows;  // rows with keys: padded encoder queries are zeros with lse -inf
  int frame;       // video frame whose key list the rows use (its first), -1: encoder queries
  int split;       // rows [0, split) are frame's; split < rows: the rest are frame + 1's
  int enc_valid;   // valid encoder tokens of this batch entry

  LVSA_WALK bool two_frames() const { return split < rows; }  // CTA-uniform
};

template <int kM>
LVSA_WALK QueryTile query_tile(const FwdParams& p, int b, int tile) {
  QueryTile q;
  int ev = p.encoder_len;
  // Clamped rather than trusted: a bad length must not make the kernel read past the span.
  if (p.encoder_valid) ev = min(max(plan_load(p.encoder_valid + b), 0), p.encoder_len);
  q.enc_valid = ev;
  if (tile < p.encoder_tiles) {
    const int r0 = tile * kM;
    q.row0 = p.q_encoder_begin + r0;
    q.rows = min(kM, p.encoder_query_rows - r0);
    q.valid_rows = min(max(ev - r0, 0), q.rows);
    q.frame = -1;
    q.split = q.rows;
  } else {
    const int vt = tile - p.encoder_tiles;
    const int run = vt / p.tiles_per_run;
    const int r0 = (vt - run * p.tiles_per_run) * kM;
    q.row0 = p.q_video_begin + run * p.tokens_per_run + r0;
    q.rows = min(kM, p.tokens_per_run - r0);
    q.valid_rows = q.rows;
    q.frame = run * p.frames_per_run;
    q.split = q.rows;
    if (p.frame_pairs) {  // one run of all frames, P >= kM: at most two frames per tile
      q.frame = r0 / p.tokens_per_frame;
      q.split = min((q.frame + 1) * p.tokens_per_frame - r0, q.rows);
    }
  }
  return q;
}

// One key tile's keys: [cur, cur + first), then (spanning tiles) [cur2, cur2 + count - first).
struct KeyTile {
  int cur, first, cur2, count;
};

// Iterates the key tiles [cur, cur + count()) of a query tile. All threads of a CTA run it
// in lockstep on the same data, so every branch below is CTA-uniform. Encoder queries walk
// the plan's pseudo-frame T (all video tokens), so every tile is walked the same way.
template <int kN, int kAlign = 1, bool kSpan = false>
struct KeyWalk {
  static_assert(!kSpan || kAlign == 1, "spanning tiles start at any key");
  const int32_t* rb;  // the frame's video intervals rb/re[0 .. nvideo)
  const int32_t* re;
  int enc_b, enc_e;   // valid encoder span, listed first (before video) or last
  int enc_at;         // list index of the encoder span, -1 when it is empty
  int n, next;        // intervals in the list; index of the next one to open
  int cur, end;       // current tile start; end of the current merged interval
  int begin;          // first token of the current merged interval
  int cur2, n2;       // kSpan: the tile's second segment [cur2, cur2 + n2), n2 = 0: none
  int end2, next2;    // kSpan: the end of that segment's interval; next once it is open

  LVSA_WALK void interval(int i, int& b, int& e) const {
    if (i == enc_at) { b = enc_b; e = enc_e; return; }
    const int j = enc_at == 0 ? i - 1 : i;
    b = plan_load(rb + j);
    e = plan_load(re + j);
  }

  // The merged interval [b, e) that starts at list index i (intervals that touch are fused);
  // returns the index after it.
  LVSA_WALK int merged(int i, int& b, int& e) const {
    interval(i++, b, e);
    while (i < n) {
      int b2, e2;
      interval(i, b2, e2);
      if (b2 != e) break;
      e = e2;
      ++i;
    }
    return i;
  }

  LVSA_WALK void open_next() {
    int b, e;
    next = merged(next, b, e);
    begin = b;
    cur = b & -kAlign;
    end = e;
  }

  // kSpan: where the current interval leaves the tile short, the next interval's first keys fill it.
  LVSA_WALK void span() {
    n2 = 0;
    if (end - cur < kN && next < n) {
      next2 = merged(next, cur2, end2);
      n2 = min(kN - (end - cur), end2 - cur2);
    }
  }

  LVSA_WALK void init(const FwdParams& p, const QueryTile& q) {
    const int f = q.frame < 0 ? p.frames : q.frame;
    const bool pair = q.two_frames();  // the union of frames f and f + 1
    const int32_t* offsets = pair ? p.pair_offsets : p.range_offsets;
    const int first = plan_load(offsets + f);
    const int nvideo = plan_load(offsets + f + 1) - first;
    rb = (pair ? p.pair_begin : p.range_begin) + first;
    re = (pair ? p.pair_end : p.range_end) + first;
    enc_b = p.k_encoder_begin;
    enc_e = p.k_encoder_begin + q.enc_valid;
    const bool has_enc = q.enc_valid > 0;
    n = nvideo + (has_enc ? 1 : 0);
    enc_at = !has_enc ? -1 : (p.k_encoder_begin < p.k_video_begin ? 0 : nvideo);
    next = 0;
    cur = end = begin = 0;
    cur2 = n2 = end2 = next2 = 0;
    if (n > 0) open_next();
    if constexpr (kSpan) span();
  }

  LVSA_WALK bool valid() const { return cur < end; }
  // Keys of the first segment (all of the tile's without kSpan).
  LVSA_WALK int first_count() const { return min(kN, end - cur); }
  LVSA_WALK int count() const { return kSpan ? first_count() + n2 : first_count(); }
  LVSA_WALK KeyTile tile() const { return {cur, first_count(), cur2, count()}; }
  // Columns of the current tile before the interval (0 unless it is the interval's first tile).
  LVSA_WALK int head() const { return max(begin - cur, 0); }
  LVSA_WALK void advance() {
    if (kSpan && n2 > 0) {  // the second segment's interval is the current one now
      begin = cur2;
      cur = cur2 + n2;
      end = end2;
      next = next2;
    } else {
      cur += kN;
    }
    if (cur >= end && next < n) open_next();
    if constexpr (kSpan) span();
  }
};

// The keys a tile with rows of frames f and f + 1 walks but one of its frames does not attend:
// at most one span each way (the host takes frame pairs only then: lvsa::frame_pairs_fit).
struct FramePairMask {
  int split;              // rows [0, split) are frame f's
  int first0, first1;     // keys only frame f attends: hidden from frame f + 1's rows
  int second0, second1;   // keys only frame f + 1 attends: hidden from frame f's rows

  LVSA_WALK void init(const FwdParams& p, const QueryTile& q) {
    split = q.split;
    const int32_t* only = p.pair_only + 4 * q.frame;
    first0 = plan_load(only), first1 = plan_load(only + 1), second0 = plan_load(only + 2), second1 = plan_load(only + 3);
  }
  // Calls hide(c0, c1, first) for each span overlapping the key tile [cur, cur + n): its columns
  // [c0, c1) (c0 may be < 0, c1 > n) must get -inf for the rows of frame f (first) or f + 1.
  template <class Hide>
  LVSA_WALK void visit(int cur, int n, Hide&& hide) const {
    if (first0 < cur + n && first1 > cur) hide(first0 - cur, first1 - cur, false);
    if (second0 < cur + n && second1 > cur) hide(second0 - cur, second1 - cur, true);
  }
  // The same for a spanning tile: keys [cur, cur + a) at columns [0, a), then [cur2, cur2 + n2) at
  // [a, a + n2). A span lies within one merged interval of the pair's list, so it overlaps at most
  // one segment, and within it ends no later than the segment's interval does.
  template <class Hide>
  LVSA_WALK void visit(int cur, int a, int cur2, int n2, Hide&& hide) const {
    auto one = [&](int s0, int s1, bool first) {
      if (s0 < cur + a && s1 > cur) hide(s0 - cur, s1 - cur, first);
      else if (n2 > 0 && s0 < cur2 + n2 && s1 > cur2) hide(a + s0 - cur2, a + s1 - cur2, first);
    };
    one(first0, first1, false);
    one(second0, second1, true);
  }
};

}  // namespace lvsa::cuda
