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
#include "lvsa/packed_plan.hpp"
#include "lvsa/plan.hpp"

namespace lvsa::cuda {

// A device copy of one plan in the packed layout of lvsa/packed_plan.hpp.
struct DevicePlanView {
  const int32_t* data = nullptr;
  int frames = 0;
  int64_t capacity = 0;  // max intervals the buffer holds
};

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

// Which kernels run: Auto picks the fastest family the device can run.
enum class KernelFamily { Auto, Sm80, Sm90 };

// The family a request names ("auto", "sm80" or "sm90", the values of the Python package's
// LVSA_CUDA_KERNEL), resolved for `device`: Sm80 or Sm90, never Auto. Throws lvsa::Error when
// the request is none of these, the device is older than compute capability 8.0, or sm90 is
// asked for and this build or the device cannot run it. Meant to be called once per device,
// not per call.
KernelFamily choose_kernel_family(int device, const char* request);

struct LaunchOptions {
  // A family choose_kernel_family returned for the current device; Auto resolves it on every
  // call (three device queries).
  KernelFamily family = KernelFamily::Auto;
  // The caller guarantees that every pointer of the call is device memory of the current
  // device (the Python backend: tensors it checked to share one CUDA device, and buffers it
  // allocated there). Skips the cudaPointerGetAttributes query per pointer.
  bool pointers_on_current_device = false;
};

// out (+ lse) = attention over `ranges` on `stream`. q, k, v, out, lse and encoder_valid
// are device pointers; `plan` must hold `ranges` (uploaded on this stream or before), packed
// by pack_plan.
// Requirements beyond validate_attention: float16 or bfloat16, head_dim 64 or 128, a
// contiguous last dim, 16-byte aligned rows. Throws lvsa::Error naming the argument.
// encoder_valid values are not read on the host (that would synchronise); the kernel
// clamps them to [0, encoder_len].
void attention(const KeyRanges& ranges, const DevicePlanView& plan, const AttentionParams& params,
               cudaStream_t stream, const LaunchOptions& options = {});

}  // namespace lvsa::cuda
