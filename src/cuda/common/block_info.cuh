// A query tile's rows and the key tiles it visits.
//
// Query tiles never straddle runs of frames with different key lists: a run's rows (one
// frame's P, or all T * P when every frame attends the same keys) are cut into tiles of kM,
// the last one short, so every row of a tile shares one key list. Encoder query rows (joint
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
#pragma once

#include "params.hpp"

namespace lvsa::cuda {

struct QueryTile {
  int row0;        // first query row (index into q's sequence dim)
  int rows;        // rows of this tile that exist (< kM only for a run's last tile)
  int valid_rows;  // rows with keys: padded encoder queries are zeros with lse -inf
  int frame;       // video frame whose key list the rows use (a run's first), -1: encoder queries
  int enc_valid;   // valid encoder tokens of this batch entry
};

template <int kM>
__device__ __forceinline__ QueryTile query_tile(const FwdParams& p, int b, int tile) {
  QueryTile q;
  int ev = p.encoder_len;
  // Clamped rather than trusted: a bad length must not make the kernel read past the span.
  if (p.encoder_valid) ev = min(max(__ldg(p.encoder_valid + b), 0), p.encoder_len);
  q.enc_valid = ev;
  if (tile < p.encoder_tiles) {
    const int r0 = tile * kM;
    q.row0 = p.q_encoder_begin + r0;
    q.rows = min(kM, p.encoder_query_rows - r0);
    q.valid_rows = min(max(ev - r0, 0), q.rows);
    q.frame = -1;
  } else {
    const int vt = tile - p.encoder_tiles;
    const int run = vt / p.tiles_per_run;
    const int r0 = (vt - run * p.tiles_per_run) * kM;
    q.row0 = p.q_video_begin + run * p.tokens_per_run + r0;
    q.rows = min(kM, p.tokens_per_run - r0);
    q.valid_rows = q.rows;
    q.frame = run * p.frames_per_run;
  }
  return q;
}

// Iterates the key tiles [cur, cur + count()) of a query tile. All threads of a CTA run it
// in lockstep on the same data, so every branch below is CTA-uniform. Encoder queries walk
// the plan's pseudo-frame T (all video tokens), so every tile is walked the same way.
template <int kN, int kAlign = 1>
struct KeyWalk {
  const int32_t* rb;  // the frame's video intervals rb/re[0 .. nvideo)
  const int32_t* re;
  int enc_b, enc_e;   // valid encoder span, listed first (before video) or last
  int enc_at;         // list index of the encoder span, -1 when it is empty
  int n, next;        // intervals in the list; index of the next one to open
  int cur, end;       // current tile start; end of the current merged interval
  int begin;          // first token of the current merged interval

  __device__ __forceinline__ void interval(int i, int& b, int& e) const {
    if (i == enc_at) { b = enc_b; e = enc_e; return; }
    const int j = enc_at == 0 ? i - 1 : i;
    b = __ldg(rb + j);
    e = __ldg(re + j);
  }

  __device__ __forceinline__ void open_next() {
    int b, e;
    interval(next++, b, e);
    while (next < n) {  // fuse intervals that touch
      int b2, e2;
      interval(next, b2, e2);
      if (b2 != e) break;
      e = e2;
      ++next;
    }
    begin = b;
    cur = b & -kAlign;
    end = e;
  }

  __device__ __forceinline__ void init(const FwdParams& p, const QueryTile& q) {
    const int f = q.frame < 0 ? p.frames : q.frame;
    const int first = __ldg(p.range_offsets + f);
    const int nvideo = __ldg(p.range_offsets + f + 1) - first;
    rb = p.range_begin + first;
    re = p.range_end + first;
    enc_b = p.k_encoder_begin;
    enc_e = p.k_encoder_begin + q.enc_valid;
    const bool has_enc = q.enc_valid > 0;
    n = nvideo + (has_enc ? 1 : 0);
    enc_at = !has_enc ? -1 : (p.k_encoder_begin < p.k_video_begin ? 0 : nvideo);
    next = 0;
    cur = end = begin = 0;
    if (n > 0) open_next();
  }

  __device__ __forceinline__ bool valid() const { return cur < end; }
  __device__ __forceinline__ int count() const { return min(kN, end - cur); }
  // Columns of the current tile before the interval (0 unless it is the interval's first tile).
  __device__ __forceinline__ int head() const { return max(begin - cur, 0); }
  __device__ __forceinline__ void advance() {
    cur += kN;
    if (cur >= end && next < n) open_next();
  }
};

}  // namespace lvsa::cuda
