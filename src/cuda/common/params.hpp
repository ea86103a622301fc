// Everything the forward kernels read, resolved on the host into plain integers and device
// pointers so that the kernel does no geometry reasoning beyond index arithmetic.
// Included by host C++ (the launcher) and by device code.
#pragma once

#include <cstdint>

namespace lvsa::cuda {

struct FwdParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;  // [B, Hq, Sq] contiguous, or null

  // Element strides of batch, sequence and head; the head dim is contiguous (checked).
  int64_t q_stride[3] = {0, 0, 0};
  int64_t k_stride[3] = {0, 0, 0};
  int64_t v_stride[3] = {0, 0, 0};
  int64_t o_stride[3] = {0, 0, 0};

  int batch = 0, heads_q = 0, heads_kv = 0, group = 1;  // group = heads_q / heads_kv
  int seq_q = 0, seq_k = 0;
  float scale_log2 = 0.0f;  // softmax scale * log2(e): scores live in the exp2 domain

  // Geometry in token indices. Keys always cover the whole sequence; queries either the
  // whole sequence or only the video tokens (then q_video_begin = 0 and no encoder rows).
  int frames = 0, encoder_len = 0;
  // Video queries are tiled in runs of frames_per_run frames: one frame, or all of them, so that
  // no frame ends in a short query tile. All of them when every frame has one key list (a dense
  // plan), or with frame_pairs: then a tile may hold rows of two frames (tokens_per_frame >= the
  // tile's rows), walks the union of both key lists (pair_*) and hides from each frame's rows the
  // keys only the other attends (pair_only; lvsa/packed_plan.hpp).
  int frames_per_run = 1, tokens_per_run = 0, tokens_per_frame = 0;
  int frame_pairs = 0;
  int k_video_begin = 0, k_encoder_begin = 0;
  int q_video_begin = 0, q_encoder_begin = 0, encoder_query_rows = 0;
  const int32_t* encoder_valid = nullptr;  // device [B]; null: all encoder tokens valid

  // The step's plan on the device: intervals of frame f are
  // [range_begin[i], range_end[i]) for i in [range_offsets[f], range_offsets[f+1]).
  const int32_t* range_offsets = nullptr;
  const int32_t* range_begin = nullptr;
  const int32_t* range_end = nullptr;
  // Frame pairs (f, f+1): union intervals [pair_offsets[f], pair_offsets[f+1]); the keys only f
  // attends [pair_only[4f], pair_only[4f+1]), those only f+1 attends [pair_only[4f+2], pair_only[4f+3]).
  const int32_t* pair_offsets = nullptr;
  const int32_t* pair_begin = nullptr;
  const int32_t* pair_end = nullptr;
  const int32_t* pair_only = nullptr;

  // Query tiling (filled by the launcher from the kernel's tile height).
  int tiles_per_run = 0, encoder_tiles = 0, tiles_per_head = 0;

  // Quantised scores (sm90 only): q and k hold e4m3 or int8 values whose true values are
  // q_descale[b * heads_q + h] and k_descale[b * heads_kv + h_kv] times them; null otherwise.
  const float* q_descale = nullptr;
  const float* k_descale = nullptr;
  // fp8 values (sm90 only): v is V^T, e4m3 [B, Hkv, D, v_row_keys] with batch and head strides
  // v_stride[0] and v_stride[2] (v_stride[1] unused), keys permuted within aligned groups of 16
  // (kernel_traits.cuh); true values are v_descale[b * heads_kv + h_kv] times them. Null otherwise.
  const float* v_descale = nullptr;
  int64_t v_row_keys = 0;
};

// Raises the error of a failed launch (defined in api.cpp, which owns error reporting).
[[noreturn]] void throw_cuda_error(const char* what, int cuda_error);

// Query rows per CTA of every kernel family: the host tiles queries once for either.
inline constexpr int kQueryTileRows = 128;

}  // namespace lvsa::cuda
