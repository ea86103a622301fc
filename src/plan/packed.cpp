// The packed device layout of a plan (include/lvsa/packed_plan.hpp).
#include "lvsa/packed_plan.hpp"

#include <algorithm>
#include <string>

namespace lvsa {

int64_t packed_plan_size(int frames, int64_t capacity) { return int64_t(frames) + 2 + 2 * (capacity + 1); }

int64_t worst_case_capacity(int frames) {
  // Merged, disjoint, sorted frame runs: a frame's list alternates attended/unattended frames
  // at worst, so it holds at most ceil(T/2) intervals.
  return std::max<int64_t>(1, int64_t(frames) * ((int64_t(frames) + 1) / 2));
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
  const int64_t slots = capacity + 1;
  int32_t* begin = dst + T + 2;
  int32_t* end = begin + slots;
  for (int f = 0; f <= T; ++f) dst[f] = r.range_offsets[f];
  for (int64_t i = 0; i < n; ++i) {
    begin[i] = int32_t(r.range_begin[i]);
    end[i] = int32_t(r.range_end[i]);
  }
  dst[T + 1] = int32_t(n + 1);
  begin[n] = int32_t(r.geometry.video_begin());
  end[n] = int32_t(r.geometry.video_begin() + r.geometry.video_tokens());
}

}  // namespace lvsa
