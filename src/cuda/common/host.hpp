// Host-side internals shared by the public entry point and the kernel-variant benchmark.
#pragma once

#include "lvsa/cuda.hpp"
#include "params.hpp"

namespace lvsa::cuda {

// All checks of attention() and the kernel arguments they imply (tiling at kQueryTileRows rows).
// pointers_on_current_device: as LaunchOptions says, skips the pointer queries. frame_pairs
// false tiles sparse plans frame by frame, as before query tiles could hold two frames (for
// bench/cuda, which times both).
FwdParams build_fwd_params(const KeyRanges& ranges, const DevicePlanView& plan,
                           const AttentionParams& params, bool pointers_on_current_device = false,
                           bool frame_pairs = true);

}  // namespace lvsa::cuda
