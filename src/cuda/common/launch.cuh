// Launching a forward kernel: one CTA per (batch, query head, query tile), with its dynamic
// shared memory raised past the 48 KB default. Shared by the sm80 and sm90 families.
#pragma once

#include <cuda_runtime.h>

#include "params.hpp"

namespace lvsa::cuda {

// `extra`: further kernel arguments after the FwdParams (the sm90 kernel's tensor maps).
template <class Kernel, class... Extra>
void launch_tiles(Kernel kernel, const FwdParams& p, int threads, int smem_bytes, void* stream,
                  const char* what, const Extra&... extra) {
  const int64_t ctas = int64_t(p.batch) * p.heads_q * p.tiles_per_head;
  if (ctas == 0) return;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
  if (err == cudaSuccess) {
    kernel<<<dim3(unsigned(ctas)), dim3(threads), smem_bytes, static_cast<cudaStream_t>(stream)>>>(p, extra...);
    err = cudaGetLastError();
  }
  if (err != cudaSuccess) throw_cuda_error(what, int(err));
}

}  // namespace lvsa::cuda
