// The producer warpgroup: the Q tile and every K/V tile of the walk into shared memory, each
// completing on an mbarrier that the consumers wait on. Q and partial K/V tiles by zero-filling
// cp.async (common/row_loader.cuh); full K/V tiles by TMA when the schedule says so, and with fp8
// values every V tile (tma.cuh).
//
// Order: K0, then K(j), V(j-1) for j >= 1, then the last V -- the order the consumers need
// them (S of tile j is computed before P.V of tile j-1).
#pragma once

#include <type_traits>

#include "../common/block_info.cuh"
#include "../common/params.hpp"
#include "kernel_traits.cuh"
#include "ptx.cuh"
#include "tma.cuh"

namespace lvsa::cuda::sm90 {

template <class Tr>
__device__ __forceinline__ void producer(const FwdParams& p, const KVTensorMaps& maps, const QueryTile& qt, int b,
                                         int h, int hkv, uint32_t s_base, const Barriers& bar, int ptid) {
  typename Tr::ScoreLoader cq, ck;
  typename Tr::ValueLoader cv;
  cq.init(p.q, int64_t(b) * p.q_stride[0] + int64_t(h) * p.q_stride[2], p.q_stride[1], ptid);
  ck.init(p.k, int64_t(b) * p.k_stride[0] + int64_t(hkv) * p.k_stride[2], p.k_stride[1], ptid);
  cv.init(p.v, int64_t(b) * p.v_stride[0] + int64_t(hkv) * p.v_stride[2], p.v_stride[1], ptid);

  // Q rows past valid_rows (padded encoder queries, rows past the frame) are zeros.
  cq.template load<Tr::kM>(s_base + Tr::kQOffset, qt.row0, qt.valid_rows, ptid);
  ptx::cp_async_arrive_noinc(bar.q_full);

  // K or V tile j (its keys: t) into its stage once the consumers released it, signalled on the
  // stage's full barrier. kSkipCopies (measurement only): after the first round the stages keep
  // their tiles and are only signalled.
  auto fill = [&](const auto& rows, const CUtensorMap* map, uint32_t offset, uint32_t stage_bytes, uint32_t empty,
                  uint32_t full, int j, const KeyTile& t) {
    using Elem = typename std::remove_reference_t<decltype(rows)>::Elem;
    const int s = Tr::stage(j);
    ptx::mbar_wait(empty + 8 * s, Tr::round_parity(j) ^ 1);
    const uint32_t dst = s_base + offset + s * stage_bytes;
    if (Tr::kSkipCopies && j >= Tr::kStages) {
      ptx::cp_async_arrive_noinc(full + 8 * s);
    } else if (Tr::kQuantValues && offset == Tr::kVOffset) {  // fp8 values: every V^T tile by TMA
      tma_value_tile<Tr>(map, dst, t.cur, hkv, b, full + 8 * s, ptid);
    } else if (Tr::kTmaFullTiles && t.first == Tr::kN) {  // one segment, whole
      tma_tile<int(sizeof(Elem)), Tr::kD, Tr::kN>(map, dst, Tr::kOneHotTile ? 0 : t.cur, hkv, b, full + 8 * s, ptid);
    } else {
      if constexpr (Tr::kSpan)
        rows.template load<Tr::kN>(dst, t.cur, t.first, t.cur2, t.count, ptid);
      else
        rows.template load<Tr::kN>(dst, t.cur, t.count, ptid);
      ptx::cp_async_arrive_noinc(full + 8 * s);
    }
  };
  typename Tr::Walk walk;
  walk.init(p, qt);
  KeyTile prev{};
  for (int j = 0; walk.valid(); ++j) {
    const KeyTile t = walk.tile();
    fill(ck, &maps.k, Tr::kKOffset, Tr::kKBytes, bar.k_empty, bar.k_full, j, t);
    if (j > 0) fill(cv, &maps.v, Tr::kVOffset, Tr::kVBytes, bar.v_empty, bar.v_full, j - 1, prev);
    prev = t;
    walk.advance();
    if (!walk.valid()) fill(cv, &maps.v, Tr::kVOffset, Tr::kVBytes, bar.v_empty, bar.v_full, j, t);  // the last V
  }
  // Leave no copy in flight behind an exited thread.
  ptx::cp_async_wait_all();
}

}  // namespace lvsa::cuda::sm90
