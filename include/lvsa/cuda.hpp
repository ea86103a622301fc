// CUDA backend: the attention contract of attention.hpp on device pointers and a stream.
//
// A step's key ranges live on the device in fixed-capacity buffers (DevicePlan), laid out so
// that the kernel arguments do not depend on the step: uploading the next step's plan into
// the same buffers changes no pointer, allocates nothing, and a CUDA graph captured at one
// step replays correctly at the next once the new plan has been uploaded.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "lvsa/attention.hpp"
#include "lvsa/plan.hpp"

namespace lvsa::cuda {

// Device copy of one plan's key ranges: a single int32 buffer holding, with n intervals and
// C = capacity + 1 slots,
//   [0, T+2)               range_offsets, plus offsets[T+1] = n+1
//   [T+2, T+2+C)           range_begin
//   [T+2+C, T+2+2C)        range_end
// Slot n is a pseudo-frame T: one interval over all video tokens, the key list of encoder
// queries, so the kernel walks every query tile the same way. The layout depends only on
// (frames, capacity), never on the step.
struct DevicePlanView {
  const int32_t* data = nullptr;
  int frames = 0;
  int64_t capacity = 0;  // max intervals the buffer holds
};

// Elements of the packed buffer for T frames and `capacity` intervals.
int64_t packed_plan_size(int frames, int64_t capacity);
// Capacity that fits every pattern of T frames (at most ceil(T/2) intervals per frame).
int64_t worst_case_capacity(int frames);
// Fills a host buffer of packed_plan_size(T, capacity) elements; throws if it does not fit.
void pack_plan(const KeyRanges& ranges, int64_t capacity, int32_t* dst);

// Owning device buffers of fixed capacity plus a pinned staging area, on the device that is
// current at construction.
class DevicePlan {
 public:
  DevicePlan(int frames, int64_t capacity);  // allocates once
  ~DevicePlan();
  DevicePlan(const DevicePlan&) = delete;
  DevicePlan& operator=(const DevicePlan&) = delete;

  // Stream-ordered copy of the ranges into the buffers: no allocation, and no host wait
  // unless the previous upload's copy is still reading the staging area.
  void upload(const KeyRanges& ranges, cudaStream_t stream);
  DevicePlanView view() const { return {device_, frames_, capacity_}; }

 private:
  int frames_ = 0;
  int64_t capacity_ = 0;
  int32_t* device_ = nullptr;
  int32_t* staging_ = nullptr;
  cudaEvent_t copied_ = nullptr;
};

// Number of visible CUDA devices (0 when there is no driver or device; never throws).
int device_count();

// out (+ lse) = attention over `ranges` on `stream`. q, k, v, out, lse and encoder_valid
// are device pointers; `plan` must hold `ranges` (uploaded on this stream or before).
// Requirements beyond validate_attention: float16 or bfloat16, head_dim 64 or 128, a
// contiguous last dim, 16-byte aligned rows. Throws lvsa::Error naming the argument.
// encoder_valid values are not read on the host (that would synchronise); the kernel
// clamps them to [0, encoder_len].
void attention(const KeyRanges& ranges, const DevicePlanView& plan, const AttentionParams& params,
               cudaStream_t stream);

}  // namespace lvsa::cuda
