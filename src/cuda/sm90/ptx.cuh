// Thin wrappers over the Hopper (sm_90a) instructions of the sm90 kernel: mbarriers, TMA, proxy
// fences, register reallocation, wgmma descriptors and the wgmma group controls. They extend
// lvsa::cuda::ptx (common/ptx.cuh: the sm80 instructions both families use) but stay in this
// folder because only sm_90a code may use them. The wgmma instructions themselves are in
// wgmma.cuh (generated).
#pragma once

#include <cstdint>

namespace lvsa::cuda::ptx {

// ---- mbarrier (shared::cta, 64-bit) ------------------------------------------------------

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// Makes initialised barriers visible to the other threads (with the barrier that follows).
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.release.cta.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// Returns once the phase with the given parity has completed. A fresh barrier is in phase 0,
// so waiting on parity 1 returns at once: producers start waiting on their "empty" barriers
// with parity 1. The spin loop lives inside the asm: a C loop around try_wait is a divergent
// branch to ptxas, which then serialises every wgmma after it (warning C7520).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred p;\n"
      "LVSA_WAIT:\n"
      "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra LVSA_WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

// Arrives on `bar` once every cp.async this thread issued so far has landed. noinc: the
// arrival counts against the barrier's expected count (one per producer thread).
__device__ __forceinline__ void cp_async_arrive_noinc(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}

__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// Orders shared memory written through the generic proxy (cp.async, st.shared) before this
// thread's later async-proxy accesses (wgmma operands).
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// ---- TMA (bulk tensor copies; the maps are encoded on the host, tma.cuh) -----------------

// Arrives on `bar` and adds `bytes` to the transaction count its phase waits for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.release.cta.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}

// One box of the tensor map at `map` (a kernel parameter) at coordinates {c0, c1, c2, c3}
// into shared memory at `dst`, completing its bytes on `bar`.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const void* map, int c0, int c1, int c2, int c3,
                                            uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}

// ---- named barriers (id 0 is __syncthreads) ---------------------------------------------

__device__ __forceinline__ void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// ---- register reallocation between warpgroups --------------------------------------------

template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}

// ---- wgmma group control -----------------------------------------------------------------

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Keeps the compiler from moving reads/writes of wgmma operand registers across the
// (volatile) issue/wait instructions: each register passes through an empty volatile asm.
template <int N>
__device__ __forceinline__ void fence_regs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_regs(uint32_t (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

// ---- shared-memory matrix descriptors ----------------------------------------------------
//
// 64-bit wgmma descriptor: start address >> 4 in bits [0,14), leading-dimension byte
// offset >> 4 in [16,30), stride-dimension byte offset >> 4 in [32,46), base offset in
// [49,52) (0: every swizzle atom is 1024-byte aligned), layout type in [62,64) (1: 128-byte
// swizzle). Tiles are stored as column blocks of 64 elements (128 bytes per row), rows 128
// bytes apart, 16-byte chunks XOR-swizzled by (row & 7): the canonical 128B-swizzle atom of
// 8 rows x 128 bytes, 1024 bytes, repeated down the rows.
//  * K-major operand (Q, K): SBO = 1024 (next 8 rows); LBO unused (1). A k16 step inside a
//    column block advances the start address by 32 bytes.
//  * MN-major operand (V as the B of P.V, N = head dim): SBO = 1024 (next 8 keys), LBO =
//    distance between 64-wide column blocks along N.
//  * fp8 values (V^T as the K-major B of P.V): blocks of 64 keys, rows (head-dim features) of
//    64 bytes with the 64-byte swizzle (layout type 2; atoms of 8 rows x 64 bytes, 512 bytes, as
//    TMA writes them): SBO = 512; a k32 step inside a block advances the start by 32 bytes.
inline constexpr uint32_t kSwizzle128B = 1, kSwizzle64B = 2;
__device__ __forceinline__ uint64_t desc_base(uint32_t lbo_bytes, uint32_t sbo_bytes,
                                              uint32_t layout = kSwizzle128B) {
  return (uint64_t(layout) << 62) | (uint64_t((sbo_bytes >> 4) & 0x3FFF) << 32) |
         (uint64_t((lbo_bytes >> 4) & 0x3FFF) << 16);
}
__device__ __forceinline__ uint64_t desc_at(uint64_t base, uint32_t smem_addr) {
  return base | uint64_t((smem_addr >> 4) & 0x3FFF);
}

}  // namespace lvsa::cuda::ptx
