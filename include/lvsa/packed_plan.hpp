// The packed form of a step's key ranges that the CUDA kernels read: one int32 buffer whose
// layout depends only on (frames, capacity), never on the step, so that a fixed device buffer
// can hold any step's plan of a geometry and kernel arguments stay the same across steps.
// Host-only: it is built next to the planner, once per plan, and copied to the device as bytes.
#pragma once

#include <cstdint>

#include "lvsa/plan.hpp"

namespace lvsa {

// With n intervals, capacity C and T frames, sections in this order (element offsets in
// PackedPlanLayout):
//   range_offsets  T+2   offsets[0..T] of the plan, plus offsets[T+1] = n+1
//   range_begin    C+1   the plan's intervals, then slot n: a pseudo-frame T, one interval
//   range_end      C+1   over all video tokens, the key list of encoder queries
//   pair_offsets   T     frame pairs (f, f+1), f < T-1: the key list of a query tile that holds
//   pair_begin     2C    rows of both frames, the union of their intervals (merged), is
//   pair_end       2C    pair_begin/end[pair_offsets[f] .. pair_offsets[f+1])
//   pair_only      4T    per pair: [4f, 4f+1) the keys only frame f attends, [4f+2, 4f+3) those
//                        only f+1 attends, as (begin, end), empty (0, 0) where there are none
// A union of lists of a and b intervals has at most a + b, so 2C slots hold every pair's. The
// kernels take frame pairs only where frame_pairs_fit; otherwise pair_only is left as it is.
// All interval lists are sorted and disjoint. Slots past the used ones are left as they are.
struct PackedPlanLayout {
  int64_t range_offsets, range_begin, range_end;
  int64_t pair_offsets, pair_begin, pair_end, pair_only;
  int64_t size;  // elements in all
};

// Whether the kernels can tile two adjacent frames together, for every pair: the frames differ by
// at most one interval of keys each way (one frame of a sliding window, the usual case), which is
// what pair_only can say, and both start at the same key (a global first frame), so that every
// row's first key tile holds a key it attends and its running maximum is finite from then on.
bool frame_pairs_fit(const KeyRanges& ranges);

PackedPlanLayout packed_plan_layout(int frames, int64_t capacity);
// Elements of the packed buffer for T frames and `capacity` intervals.
int64_t packed_plan_size(int frames, int64_t capacity);
// Capacity that fits every pattern of T frames (at most ceil(T/2) intervals per frame).
int64_t worst_case_capacity(int frames);
// Fills `dst` (packed_plan_size(T, capacity) elements); throws lvsa::Error if the plan has
// more intervals than `capacity`.
void pack_plan(const KeyRanges& ranges, int64_t capacity, int32_t* dst);

}  // namespace lvsa
