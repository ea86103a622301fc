// The packed form of a step's key ranges that the CUDA kernels read: one int32 buffer whose
// layout depends only on (frames, capacity), never on the step, so that a fixed device buffer
// can hold any step's plan of a geometry and kernel arguments stay the same across steps.
// Host-only: it is built next to the planner, once per plan, and copied to the device as bytes.
#pragma once

#include <cstdint>

#include "lvsa/plan.hpp"

namespace lvsa {

// With n intervals and C = capacity + 1 slots:
//   [0, T+2)               range_offsets, plus offsets[T+1] = n+1
//   [T+2, T+2+C)           range_begin
//   [T+2+C, T+2+2C)        range_end
// Slot n is a pseudo-frame T: one interval over all video tokens, the key list of encoder
// queries, so the kernel walks every query tile the same way. Slots past n are left as they are.

// Elements of the packed buffer for T frames and `capacity` intervals.
int64_t packed_plan_size(int frames, int64_t capacity);
// Capacity that fits every pattern of T frames (at most ceil(T/2) intervals per frame).
int64_t worst_case_capacity(int frames);
// Fills `dst` (packed_plan_size(T, capacity) elements); throws lvsa::Error if the plan has
// more intervals than `capacity`.
void pack_plan(const KeyRanges& ranges, int64_t capacity, int32_t* dst);

}  // namespace lvsa
