// Host-side internals shared by the public entry point and the kernel-variant benchmark.
#pragma once

#include "kernel_table.hpp"
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

// The kernel of `family` (Sm80 or Sm90) that attention() launches for these arguments and the
// tiling `p` (build_fwd_params): among those that run its tiles, the key-tile width with the
// least padded keys plus per-tile overhead, and, without frame-pair tiles, one without the pair
// code where it is built. Null when this build has none; asks no GPU. With `name`
// (LaunchOptions::kernel), the row of that name instead, or an lvsa::Error saying why it cannot
// run these arguments.
const KernelEntry* choose_kernel(const KeyRanges& ranges, const FwdParams& p, const AttentionParams& params,
                                 Family family, const char* name = nullptr);

}  // namespace lvsa::cuda
