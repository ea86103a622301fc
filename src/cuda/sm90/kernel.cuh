// The sm90 (Hopper, sm_90a) block-sparse forward kernel: warp-specialised, wgmma.
//
// Same contract, tiling and CTA order as the sm80 kernel (tile_coord, query_tile and KeyWalk
// from common/), so the host builds one FwdParams for either. Roles: see kernel_traits.cuh;
// producer.cuh and consumer.cuh hold the two sides of the K/V ring.
//
// Ring protocol, stage s = j % kStages of key tile j, round r = j / kStages:
//   *_full[s]   128 producer arrivals (cp.async completion); consumers wait on parity r & 1
//   *_empty[s]  one arrival per active consumer warp; the producer waits on parity (r & 1) ^ 1
//               (a fresh barrier passes parity 1 at once: round 0 needs no release)
#pragma once

#include <cuda_runtime.h>

#include "../common/block_info.cuh"
#include "../common/launch.cuh"
#include "../common/params.hpp"
#include "../common/ptx.cuh"
#include "../common/tile_scheduler.cuh"
#include "consumer.cuh"
#include "epilogue.cuh"
#include "kernel_traits.cuh"
#include "producer.cuh"
#include "ptx.cuh"
#include "tma.cuh"

namespace lvsa::cuda::sm90 {

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, 1) fwd_kernel(const __grid_constant__ FwdParams p,
                                                               const __grid_constant__ KVTensorMaps maps) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(1024) unsigned char smem[];
  const int tid = threadIdx.x;
  // 0: producer, 1..2: consumers. Broadcast so the compiler sees a warp-uniform value.
  const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);
  const TileCoord tc = tile_coord(p, blockIdx.x);
  const QueryTile qt = query_tile<Tr::kM>(p, tc.b, tc.tile);

  {
    typename Tr::Walk walk;
    walk.init(p, qt);
    if (qt.valid_rows == 0 || !walk.valid()) {  // CTA-uniform: nothing to attend to
      if (wg > 0) store_empty<Tr>(p, tc.b, tc.h, qt, wg - 1, tid % 128);
      return;
    }
  }

  const uint32_t s_raw = ptx::smem_addr(smem);
  const uint32_t s_base = (s_raw + 1023u) & ~1023u;  // swizzle atoms are 1024-byte aligned
  const uint32_t b0 = s_base + Tr::kBarOffset;
  const Barriers bar{b0, b0 + 8, b0 + 8 + 8 * Tr::kStages, b0 + 8 + 16 * Tr::kStages, b0 + 8 + 24 * Tr::kStages};
  const int active_wgs = min(Tr::kConsumerWGs, (qt.valid_rows + Tr::kWGRows - 1) / Tr::kWGRows);
  if (tid == 0) {
    ptx::mbar_init(bar.q_full, 128);
#pragma unroll
    for (int s = 0; s < Tr::kStages; ++s) {
      ptx::mbar_init(bar.k_full + 8 * s, 128);
      ptx::mbar_init(bar.v_full + 8 * s, 128);
      ptx::mbar_init(bar.k_empty + 8 * s, 4 * active_wgs);
      ptx::mbar_init(bar.v_empty + 8 * s, 4 * active_wgs);
    }
    ptx::mbar_init_fence();
  }
  __syncthreads();

  if (wg == 0) {
    ptx::setmaxnreg_dec<Tr::kProducerRegs>();
    producer<Tr>(p, maps, qt, tc.b, tc.h, tc.hkv, s_base, bar, tid);
  } else {
    ptx::setmaxnreg_inc<Tr::kConsumerRegs>();
    consumer<Tr>(p, qt, tc.b, tc.h, s_base, bar, wg - 1, tid % 128, active_wgs);  // thread in warpgroup
  }
#endif
}

template <class Tr>
void launch_fwd(const FwdParams& p, void* stream) {
  const KVTensorMaps maps = Tr::kTmaFullTiles ? encode_kv_maps<Tr>(p) : KVTensorMaps{};
  launch_tiles(fwd_kernel<Tr>, p, Tr::kThreads, Tr::kSmemBytes, stream, "launching the sm90 attention kernel",
               maps);
}

}  // namespace lvsa::cuda::sm90
