// Launching a forward kernel: one CTA per (batch, query head, query tile), with its dynamic
// shared memory raised past the 48 KB default, optionally in clusters. Shared by the sm80 and
// sm90 families.
#pragma once

#include <cuda_runtime.h>

#include "params.hpp"

namespace lvsa::cuda {

// `cluster`: CTAs per thread-block cluster (1: none). The grid is padded to a multiple of it;
// the kernel returns at once in a padding CTA. `extra`: further kernel arguments after the
// FwdParams (the sm90 kernel's tensor maps).
template <class Kernel, class... Extra>
void launch_tiles(Kernel kernel, const FwdParams& p, int threads, int smem_bytes, int cluster, void* stream,
                  const char* what, const Extra&... extra) {
  int64_t ctas = int64_t(p.batch) * p.heads_q * p.tiles_per_head;
  if (ctas == 0) return;
  ctas = (ctas + cluster - 1) / cluster * cluster;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
  if (err == cudaSuccess) {
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(unsigned(ctas));
    config.blockDim = dim3(threads);
    config.dynamicSmemBytes = size_t(smem_bytes);
    config.stream = static_cast<cudaStream_t>(stream);
    cudaLaunchAttribute attribute{};
    attribute.id = cudaLaunchAttributeClusterDimension;
    attribute.val.clusterDim.x = unsigned(cluster);
    attribute.val.clusterDim.y = 1;
    attribute.val.clusterDim.z = 1;
    config.attrs = &attribute;
    config.numAttrs = cluster > 1 ? 1 : 0;
    err = cudaLaunchKernelEx(&config, kernel, p, extra...);
  }
  if (err != cudaSuccess) throw_cuda_error(what, int(err));
}

}  // namespace lvsa::cuda
