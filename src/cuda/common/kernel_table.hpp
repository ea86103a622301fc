// A row of the kernel tables that src/cuda/instantiate.cmake generates: one launcher per
// (family, dtype, head_dim, key-tile width) instantiation. The library dispatches on
// generated/fwd_kernels.hpp (its instantiation list is in src/cuda/CMakeLists.txt); bench/cuda
// adds its schedule variants.
// Host code only.
#pragma once

#include "lvsa/attention.hpp"
#include "lvsa/cuda.hpp"
#include "params.hpp"

namespace lvsa::cuda {

// A row's family is Sm80 or Sm90, never Auto.
using Family = KernelFamily;

using Launcher = void (*)(const FwdParams& p, void* stream);

struct KernelEntry {
  Family family;
  DType dtype;        // of O (and of Q, K and V unless they are quantised)
  DType score_dtype;  // of Q and K: dtype, or E4M3 / I8 (quantised scores)
  DType value_dtype;  // of V: dtype, or E4M3 (fp8 values)
  int head_dim;
  int tile_n;        // keys per K/V tile
  bool frame_pairs;  // runs query tiles with rows of two frames (FwdParams::frame_pairs); without,
                     // only launches whose tiles hold one frame each
  bool spanning;     // key tiles continue into the next interval (lvsa::key_tiles' `spanning`)
  const char* name;  // what the entry is, for messages and benchmark tables
  Launcher launch;

  // Whether it runs these operand dtypes at this head dim (its family and pair code aside).
  constexpr bool takes(DType out, DType scores, DType values, int64_t d) const {
    return dtype == out && score_dtype == scores && value_dtype == values && head_dim == d;
  }
};

// The entry for (family, dtype, score_dtype, value_dtype, head_dim) of `table` that runs a launch
// with (frame_pairs) or without frame-pair tiles and costs least, or null when it has none.
// cost(entry) is any ordering; ties go to the first row.
template <class Table, class Cost>
const KernelEntry* find_kernel(const Table& table, Family family, DType dtype, DType score_dtype,
                               DType value_dtype, int head_dim, bool frame_pairs, Cost cost) {
  const KernelEntry* best = nullptr;
  double best_cost = 0;
  for (const KernelEntry& e : table)
    if (e.family == family && e.takes(dtype, score_dtype, value_dtype, head_dim) && (e.frame_pairs || !frame_pairs)) {
      const double c = cost(e);
      if (best == nullptr || c < best_cost) best = &e, best_cost = c;
    }
  return best;
}

// The first entry for (family, dtype, score_dtype, value_dtype, head_dim) that runs frame-pair
// tiles: the width listed first, the family default.
template <class Table>
const KernelEntry* find_kernel(const Table& table, Family family, DType dtype, DType score_dtype,
                               DType value_dtype, int head_dim) {
  return find_kernel(table, family, dtype, score_dtype, value_dtype, head_dim, true,
                     [](const KernelEntry&) { return 0.0; });
}

}  // namespace lvsa::cuda
