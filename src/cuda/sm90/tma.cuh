// Tensor-memory-accelerator (TMA) copies of full K/V tiles: the host encodes one tensor map
// per operand for each launch, the producer's thread 0 issues one bulk copy per 64-column
// block of a tile, completing on the stage's "full" mbarrier by transaction bytes.
//
// Why only full tiles: a TMA box zero-fills only coordinates outside the tensor, never rows
// inside it, and rows past an interval's end must read as exact zeros (padded encoder tokens
// may hold Inf/NaN; kernel_traits.cuh). A tile whose keys all lie in its interval needs no
// zeros, so TMA takes it; the partial last tile of an interval stays on the zero-filling
// cp.async path. Measured on an H200: the cp.async copies cost 12-16 % of the kernel's time
// (docs/perf/cuda_sm90.md, "diag-nocopy").
//
// The box is {128 bytes of a row, kN rows} with the 128-byte swizzle: exactly one column block
// of the SwizzledColumnBlocks layout (16-byte chunk c of row r at chunk c ^ (r & 7)) when the
// destination is 1024-byte aligned, so the consumers' wgmma descriptors do not change. K holds
// 16-bit or (quantised scores) 1-byte elements, V 16-bit ones.
//
// fp8 values are the exception: V^T ([B, Hkv, D, keys] e4m3, kernel_traits.cuh) arrives by TMA
// in every tile, full or not, in boxes of {64 keys, D features} with the 64-byte swizzle. Keys
// past an interval's end are read as they are (the next keys' finite values, or TMA's zeros past
// the tensor) and meet P = 0; the pre-pass zeroed the padded encoder tokens, where NaN could
// otherwise survive 0 * NaN.
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "../common/params.hpp"
#include "ptx.cuh"

namespace lvsa::cuda::sm90 {

struct KVTensorMaps {
  CUtensorMap k, v;
};

// ---- host ----------------------------------------------------------------------------------

// cuTensorMapEncodeTiled from the driver (CUDA 12+), found through the runtime so that the
// library does not link libcuda itself. Null when the driver lacks it.
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* ptr = nullptr;
    cudaDriverEntryPointQueryResult status{};
#if CUDART_VERSION >= 12050
    const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000,
                                                             cudaEnableDefault, &status);
#else
    const cudaError_t err = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &ptr, cudaEnableDefault, &status);
#endif
    if (err != cudaSuccess || status != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      ptr = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(ptr);
  }();
  return fn;
}

// A [batch, seq, heads, D] operand of `elem_bytes`-byte elements with element strides (batch,
// seq, head; D contiguous), as a 4-D map {D, seq, heads, batch} and a {128 bytes, rows} box. The
// launcher's checks (16-byte aligned data and strides) are TMA's requirements too, so this fails
// only on a bug.
inline bool encode_kv_map(PFN_cuTensorMapEncodeTiled_v12000 encode, CUtensorMap& map, const void* data,
                          const int64_t (&stride)[3], int elem_bytes, int D, int seq, int heads, int batch,
                          int rows) {
  const cuuint64_t dims[4] = {cuuint64_t(D), cuuint64_t(seq), cuuint64_t(heads), cuuint64_t(batch)};
  const int64_t extent[3] = {seq, heads, batch};
  const int64_t elem_stride[3] = {stride[1], stride[2], stride[0]};
  // A dimension of extent 1 is never stepped: any 16-byte multiple will do as its stride.
  int64_t span = 16;
  for (int i = 0; i < 3; ++i) span = std::max(span, elem_stride[i] * elem_bytes * extent[i]);
  cuuint64_t strides[3];
  for (int i = 0; i < 3; ++i) {
    const int64_t bytes = extent[i] > 1 ? elem_stride[i] * elem_bytes : (span + 15) / 16 * 16;
    if (bytes <= 0 || bytes % 16 != 0) return false;
    strides[i] = cuuint64_t(bytes);
  }
  const cuuint32_t box[4] = {cuuint32_t(128 / elem_bytes), cuuint32_t(rows), 1, 1};
  const cuuint32_t elem_strides[4] = {1, 1, 1, 1};
  const CUtensorMapDataType type = elem_bytes == 1 ? CU_TENSOR_MAP_DATA_TYPE_UINT8 : CU_TENSOR_MAP_DATA_TYPE_UINT16;
  return encode(&map, type, 4, const_cast<void*>(data), dims, strides, box,
                elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// fp8 values: V^T, [batch, heads, D, row_keys] bytes with element strides (batch, head) and
// rows of row_keys keys, as a 4-D map {row_keys, D, heads, batch} and a {64, D} box.
inline bool encode_value_map(PFN_cuTensorMapEncodeTiled_v12000 encode, CUtensorMap& map, const void* data,
                             int64_t batch_stride, int64_t head_stride, int64_t row_keys, int D, int heads,
                             int batch, int box_keys) {
  const cuuint64_t dims[4] = {cuuint64_t(row_keys), cuuint64_t(D), cuuint64_t(heads), cuuint64_t(batch)};
  const int64_t steps[3] = {row_keys, heads > 1 ? head_stride : D * row_keys,
                            batch > 1 ? batch_stride : int64_t(heads) * D * row_keys};
  cuuint64_t strides[3];
  for (int i = 0; i < 3; ++i) {
    if (steps[i] <= 0 || steps[i] % 16 != 0) return false;
    strides[i] = cuuint64_t(steps[i]);
  }
  const cuuint32_t box[4] = {cuuint32_t(box_keys), cuuint32_t(D), 1, 1};
  const cuuint32_t elem_strides[4] = {1, 1, 1, 1};
  return encode(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 4, const_cast<void*>(data), dims, strides, box, elem_strides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_64B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <class Tr>
KVTensorMaps encode_kv_maps(const FwdParams& p) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (encode == nullptr)
    throw_cuda_error("looking up cuTensorMapEncodeTiled, which the sm90 kernel's TMA loads need, in the driver",
                     int(cudaErrorNotSupported));
  KVTensorMaps maps{};
  constexpr int kScoreBytes = int(sizeof(typename Tr::TS)), kValueBytes = int(sizeof(typename Tr::TV));
  const bool values_ok =
      Tr::kQuantValues
          ? encode_value_map(encode, maps.v, p.v, p.v_stride[0], p.v_stride[2], p.v_row_keys, Tr::kD, p.heads_kv,
                             p.batch, Tr::kValueBlockKeys)
          : encode_kv_map(encode, maps.v, p.v, p.v_stride, kValueBytes, Tr::kD, p.seq_k, p.heads_kv, p.batch, Tr::kN);
  if (!encode_kv_map(encode, maps.k, p.k, p.k_stride, kScoreBytes, Tr::kD, p.seq_k, p.heads_kv, p.batch, Tr::kN) ||
      !values_ok)
    throw_cuda_error("encoding the sm90 kernel's K/V tensor maps (cuTensorMapEncodeTiled)", int(cudaErrorInvalidValue));
  return maps;
}

// ---- device --------------------------------------------------------------------------------

// A full tile [row0, row0 + kN) of head `head`, batch `b`, rows of kD elements of kElemBytes
// bytes, into the stage at `dst`: thread 0 arms the barrier with the tile's bytes and issues the
// copies; the other producer threads arrive plainly, so the barrier still counts 128 arrivals per
// phase.
template <int kElemBytes, int kD, int kN>
__device__ __forceinline__ void tma_tile(const CUtensorMap* map, uint32_t dst, int row0, int head, int b,
                                         uint32_t bar, int ptid) {
  constexpr int kBlockElems = 128 / kElemBytes;  // elements of one 128-byte column block
  if (ptid == 0) {
    ptx::mbar_arrive_expect_tx(bar, kN * kD * kElemBytes);
#pragma unroll
    for (int cb = 0; cb < kD / kBlockElems; ++cb)
      ptx::tma_load_4d(dst + cb * kN * 128, map, cb * kBlockElems, row0, head, b, bar);
  } else {
    ptx::mbar_arrive(bar);
  }
}

// fp8 values: the V^T tile of keys [key0, key0 + kN) (key0 a multiple of 16), as Tr::kValueBlocks
// boxes of {64 keys, kD features}, each into its own block of kD rows of 64 bytes.
template <class Tr>
__device__ __forceinline__ void tma_value_tile(const CUtensorMap* map, uint32_t dst, int key0, int head, int b,
                                               uint32_t bar, int ptid) {
  if (ptid == 0) {
    ptx::mbar_arrive_expect_tx(bar, Tr::kVBytes);
#pragma unroll
    for (int blk = 0; blk < Tr::kValueBlocks; ++blk)
      ptx::tma_load_4d(dst + blk * Tr::kValueBlockBytes, map, key0 + blk * Tr::kValueBlockKeys, 0, head, b, bar);
  } else {
    ptx::mbar_arrive(bar);
  }
}

}  // namespace lvsa::cuda::sm90
