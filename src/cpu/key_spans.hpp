// Which query rows are video or encoder tokens, and which keys each kind of row sees.
// Shared by the reference and the fast path so both read the contract the same way.
#pragma once

#include <cstdint>
#include <vector>

#include "lvsa/attention.hpp"

namespace lvsa::cpu {

struct Span {
  int64_t begin, end;  // key tokens [begin, end) in sequence coordinates
};

// Placement of the query rows: video-only queries are the video tokens in order and hold
// no encoder rows; joint queries follow the sequence layout.
struct QueryRows {
  int64_t video_begin = 0;    // row of video token 0
  int64_t encoder_begin = 0;  // row of encoder token 0
  int64_t encoder_rows = 0;
};

inline QueryRows query_rows(const KeyRanges& ranges, const AttentionParams& params) {
  const Geometry& g = ranges.geometry;
  if (video_queries_only(ranges, params)) return {0, 0, 0};
  return {g.video_begin(), g.encoder_begin(), g.encoder_len};
}

inline int64_t encoder_valid(const KeyRanges& ranges, const AttentionParams& params, int64_t b) {
  return params.encoder_valid ? params.encoder_valid[b] : ranges.geometry.encoder_len;
}

// Keys of a video query in frame f: the pattern's intervals, then the valid encoder tokens.
inline void video_query_keys(const KeyRanges& ranges, int f, int64_t valid,
                             std::vector<Span>& out) {
  out.clear();
  for (int i = ranges.range_offsets[f]; i < ranges.range_offsets[f + 1]; ++i)
    out.push_back({ranges.range_begin[i], ranges.range_end[i]});
  const int64_t e = ranges.geometry.encoder_begin();
  if (valid > 0) out.push_back({e, e + valid});
}

// Keys of a valid encoder query: every video token, then the valid encoder tokens.
inline void encoder_query_keys(const KeyRanges& ranges, int64_t valid, std::vector<Span>& out) {
  out.clear();
  const Geometry& g = ranges.geometry;
  out.push_back({g.video_begin(), g.video_begin() + g.video_tokens()});
  if (valid > 0) out.push_back({g.encoder_begin(), g.encoder_begin() + valid});
}

}  // namespace lvsa::cpu
