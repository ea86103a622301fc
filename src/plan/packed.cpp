// The packed device layout of a plan (include/lvsa/packed_plan.hpp).
#include "lvsa/packed_plan.hpp"

#include <algorithm>
#include <string>

namespace lvsa {

namespace {

// Frame f's intervals as the planner lowered them: sorted, disjoint, never touching.
struct FrameList {
  const int64_t* b;
  const int64_t* e;
  int n;
  FrameList(const KeyRanges& r, int f)
      : b(r.range_begin.data() + r.range_offsets[f]), e(r.range_end.data() + r.range_offsets[f]),
        n(r.num_ranges(f)) {}
};

// Calls emit(begin, end) for each interval of the keys in a but not in b, in order.
template <class Emit>
void for_each_difference(const FrameList& a, const FrameList& b, Emit&& emit) {
  int j = 0;
  for (int i = 0; i < a.n; ++i) {
    int64_t lo = a.b[i];
    const int64_t hi = a.e[i];
    while (j < b.n && b.e[j] <= lo) ++j;
    for (int k = j; k < b.n && b.b[k] < hi; ++k) {
      if (b.b[k] > lo) emit(lo, b.b[k]);
      lo = std::max(lo, b.e[k]);
    }
    if (lo < hi) emit(lo, hi);
  }
}

// Calls emit(begin, end) for each interval of the union of a and b, touching ones fused.
template <class Emit>
void for_each_union(const FrameList& a, const FrameList& b, Emit&& emit) {
  int i = 0, j = 0;
  int64_t lo = 0, hi = -1;  // the interval being grown; hi < lo: none yet
  while (i < a.n || j < b.n) {
    const bool take_a = j >= b.n || (i < a.n && a.b[i] < b.b[j]);
    const int64_t xb = take_a ? a.b[i] : b.b[j], xe = take_a ? a.e[i++] : b.e[j++];
    if (hi >= lo && xb <= hi) {
      hi = std::max(hi, xe);
    } else {
      if (hi >= lo) emit(lo, hi);
      lo = xb, hi = xe;
    }
  }
  if (hi >= lo) emit(lo, hi);
}

int count_difference(const FrameList& a, const FrameList& b) {
  int n = 0;
  for_each_difference(a, b, [&](int64_t, int64_t) { ++n; });
  return n;
}

}  // namespace

PackedPlanLayout packed_plan_layout(int frames, int64_t capacity) {
  PackedPlanLayout l;
  const int64_t T = frames, C = capacity;
  l.range_offsets = 0;
  l.range_begin = l.range_offsets + T + 2;
  l.range_end = l.range_begin + C + 1;
  l.pair_offsets = l.range_end + C + 1;
  l.pair_begin = l.pair_offsets + T;
  l.pair_end = l.pair_begin + 2 * C;
  l.pair_only = l.pair_end + 2 * C;
  l.size = l.pair_only + 4 * T;
  return l;
}

int64_t packed_plan_size(int frames, int64_t capacity) { return packed_plan_layout(frames, capacity).size; }

int64_t worst_case_capacity(int frames) {
  // Merged, disjoint, sorted frame runs: a frame's list alternates attended/unattended frames
  // at worst, so it holds at most ceil(T/2) intervals.
  return std::max<int64_t>(1, int64_t(frames) * ((int64_t(frames) + 1) / 2));
}

bool frame_pairs_fit(const KeyRanges& r) {
  for (int f = 0; f + 1 < r.geometry.frames; ++f) {
    const FrameList a(r, f), b(r, f + 1);
    if (a.n == 0 || b.n == 0 || a.b[0] != b.b[0]) return false;  // the union's first key: both attend it
    if (count_difference(a, b) > 1 || count_difference(b, a) > 1) return false;
  }
  return true;
}

void pack_plan(const KeyRanges& r, int64_t capacity, int32_t* dst) {
  const int T = r.geometry.frames;
  const int64_t n = int64_t(r.range_begin.size());
  if (int64_t(r.range_offsets.size()) != int64_t(T) + 1 || int64_t(r.range_end.size()) != n)
    throw Error("lvsa: packed plan: ranges are inconsistent: range_offsets must have frames + 1 entries "
                "and range_begin/range_end the same size");
  if (n > capacity)
    throw Error("lvsa: packed plan: the plan has " + std::to_string(n) + " intervals but the packed plan holds " +
                std::to_string(capacity));
  const PackedPlanLayout l = packed_plan_layout(T, capacity);
  int32_t* begin = dst + l.range_begin;
  int32_t* end = dst + l.range_end;
  for (int f = 0; f <= T; ++f) dst[l.range_offsets + f] = r.range_offsets[f];
  for (int64_t i = 0; i < n; ++i) {
    begin[i] = int32_t(r.range_begin[i]);
    end[i] = int32_t(r.range_end[i]);
  }
  dst[l.range_offsets + T + 1] = int32_t(n + 1);
  begin[n] = int32_t(r.geometry.video_begin());
  end[n] = int32_t(r.geometry.video_begin() + r.geometry.video_tokens());

  const bool fit = frame_pairs_fit(r);
  int32_t at = 0;
  for (int f = 0; f + 1 < T; ++f) {
    const FrameList a(r, f), b(r, f + 1);
    dst[l.pair_offsets + f] = at;
    for_each_union(a, b, [&](int64_t lo, int64_t hi) {
      dst[l.pair_begin + at] = int32_t(lo);
      dst[l.pair_end + at] = int32_t(hi);
      ++at;
    });
    if (!fit) continue;
    int32_t* only = dst + l.pair_only + 4 * f;
    only[0] = only[1] = only[2] = only[3] = 0;
    for_each_difference(a, b, [&](int64_t lo, int64_t hi) { only[0] = int32_t(lo), only[1] = int32_t(hi); });
    for_each_difference(b, a, [&](int64_t lo, int64_t hi) { only[2] = int32_t(lo), only[3] = int32_t(hi); });
  }
  dst[l.pair_offsets + T - 1] = at;
}

}  // namespace lvsa
