// A row of the kernel tables that src/cuda/instantiate.cmake generates: one launcher per
// (family, dtype, head_dim) instantiation. The library dispatches on generated/fwd_kernels.hpp
// (its instantiation list is in src/cuda/CMakeLists.txt); bench/cuda adds its schedule variants.
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
  DType dtype;
  int head_dim;
  const char* name;  // what the entry is, for messages and benchmark tables
  Launcher launch;
};

// The entry for (family, dtype, head_dim) of `table`, or null when it has none.
template <class Table>
constexpr const KernelEntry* find_kernel(const Table& table, Family family, DType dtype, int head_dim) {
  for (const KernelEntry& e : table)
    if (e.family == family && e.dtype == dtype && e.head_dim == head_dim) return &e;
  return nullptr;
}

}  // namespace lvsa::cuda
