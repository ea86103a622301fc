// The one attention contract every backend implements.
//
//   out[b, i, h, :] = softmax_j( scale · q[b,i,h,:] · k[b,j,h/g,:] ) · v[b,j,h/g,:]
//
// where j runs over the keys query i may see:
//  * a video query in frame f: the video key intervals of KeyRanges for f, plus the valid
//    encoder tokens [encoder_begin, encoder_begin + valid[b]);
//  * an encoder query (joint-attention models): all video tokens and the valid encoder
//    tokens. Padded encoder query rows (index >= valid[b]) are defined as zeros, lse -inf.
// Encoder padding receives exactly zero weight. A query with no keys at all (possible only
// with an empty pattern) gets zeros and lse -inf, never NaN.
//
// Tensors are [B, S, H, D] with arbitrary element strides. Q may have more heads than K/V
// (grouped-query attention, g = Hq / Hkv). Queries cover either the whole sequence
// (Sq == seq_len) or the video tokens only (Sq == T·P, Cosmos 3 generation attention);
// keys always cover the whole sequence. out is written while q, k and v are read: it must
// not overlap them or itself (checked on the byte ranges the shapes and strides reach).
// NaN and Inf are not checked for; they reach only the rows that attend them (lvsa.h says
// exactly how), and encoder padding is never read.
#pragma once

#include <cstdint>

#include "lvsa/plan.hpp"

namespace lvsa {

// E4M3 (float8_e4m3fn) and I8 (int8) only for quantised scores, q and k of the CUDA sm90
// kernels, and E4M3 for their fp8 values, v (AttentionParams).
enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, E4M3 = 3, I8 = 4 };

const char* dtype_name(DType dtype);

// Whether q and k of this dtype carry quantised scores (fp8 or int8, with descale factors).
inline bool is_quantized_score(DType dtype) { return dtype == DType::E4M3 || dtype == DType::I8; }

struct TensorRef {
  void* data = nullptr;
  DType dtype = DType::F32;
  int64_t shape[4] = {0, 0, 0, 0};   // B, S, H, D
  int64_t stride[4] = {0, 0, 0, 0};  // in elements
};

struct AttentionParams {
  TensorRef q, k, v;   // q: [B, Sq, Hq, D]; k, v: [B, Sk, Hkv, D]
  TensorRef out;       // [B, Sq, Hq, D], same dtype as q
  float* lse = nullptr;                    // optional [B, Hq, Sq] contiguous, natural log
  const int32_t* encoder_valid = nullptr;  // optional [B]; null: all encoder tokens valid
  float scale = 0.0f;                      // 0: 1/sqrt(D)
  // Quantised scores (opt-in; only the CUDA backend's sm90 kernels run them): q and k are E4M3
  // (fp8 scores) or I8 (int8 scores) and stand for q_descale[b * Hq + h] * q[b, :, h, :] and
  // k_descale[b * Hkv + h] * k[b, :, h, :]; v and out are float16 or bfloat16. Both null
  // otherwise, when q, k, v and out share a dtype.
  const float* q_descale = nullptr;  // [B, Hq] contiguous, float32, on q's device
  const float* k_descale = nullptr;  // [B, Hkv]
  // fp8 values (opt-in, with quantised scores; CUDA sm90 only): v is E4M3 and stands for
  // v_descale[b * Hkv + h] * v[b, :, h, :], in the layout the value pre-pass writes
  // (cuda::value_quantize): shape [B, Sk, Hkv, D] with strides (batch, 1, head, row) in elements,
  // i.e. each (batch, head, feature) a row of keys, row >= Sk rounded up to 16 and a multiple of
  // 16; within each aligned group of 16 keys position 4t + c holds key 8(c >> 1) + 2t + (c & 1)
  // (what lets the kernel use its probabilities in place); keys past Sk and padded encoder
  // tokens are zeros. out is then float16 or bfloat16.
  const float* v_descale = nullptr;  // [B, Hkv]
};

// Keys per row of fp8 values' V^T for seq_k keys: seq_k rounded up to a group of 16.
inline int64_t value_row_keys(int64_t seq_k) { return (seq_k + 15) / 16 * 16; }

// Checks shapes, dtypes, strides and encoder lengths against the plan's geometry.
// Throws lvsa::Error naming the argument and what was expected.
void validate_attention(const KeyRanges& ranges, const AttentionParams& params);

// Throws lvsa::Error when params carry quantised scores, which `backend` does not run.
void refuse_quantized_scores(const AttentionParams& params, const char* backend);

// True when the queries are the video tokens only (Sq == T·P and an encoder exists).
bool video_queries_only(const KeyRanges& ranges, const AttentionParams& params);

// Exact reference: double accumulation, one query at a time. The oracle of the tests.
void attention_reference(const KeyRanges& ranges, const AttentionParams& params);

// Fast CPU path: tiled online softmax over the key ranges on `num_threads` threads
// (0: all hardware threads). fp32 accumulation.
void attention_cpu(const KeyRanges& ranges, const AttentionParams& params, int num_threads = 0);

}  // namespace lvsa
