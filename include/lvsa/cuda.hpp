// CUDA backend: the attention contract of attention.hpp on device pointers and a stream.
//
// A step's key ranges live on the device in fixed-capacity buffers (DevicePlan), laid out so
// that the kernel arguments do not depend on the step: uploading the next step's plan into
// the same buffers changes no pointer, allocates nothing, and a CUDA graph captured at one
// step replays correctly at the next once the new plan has been uploaded.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "lvsa/attention.hpp"
#include "lvsa/packed_plan.hpp"
#include "lvsa/plan.hpp"

namespace lvsa::cuda {

// A device copy of one plan in the packed layout of lvsa/packed_plan.hpp.
struct DevicePlanView {
  const int32_t* data = nullptr;
  int frames = 0;
  int64_t capacity = 0;  // max intervals the buffer holds
};

// Owning device buffers of fixed capacity plus a pinned staging area, on the device that is
// current at construction.
class DevicePlan {
 public:
  DevicePlan(int frames, int64_t capacity);  // allocates once
  ~DevicePlan();
  DevicePlan(const DevicePlan&) = delete;
  DevicePlan& operator=(const DevicePlan&) = delete;

  // Stream-ordered copy of the ranges into the buffers: no allocation, and no host wait
  // unless the previous upload's copy is still reading the staging area.
  void upload(const KeyRanges& ranges, cudaStream_t stream);
  DevicePlanView view() const { return {device_, frames_, capacity_}; }

 private:
  int frames_ = 0;
  int64_t capacity_ = 0;
  int32_t* device_ = nullptr;
  int32_t* staging_ = nullptr;
  cudaEvent_t copied_ = nullptr;
};

// Number of visible CUDA devices (0 when there is no driver or device; never throws).
int device_count();

// Which kernels run: Auto picks the fastest family the device can run.
enum class KernelFamily { Auto, Sm80, Sm90 };

// The family a request names ("auto", "sm80" or "sm90", the values of the Python package's
// LVSA_CUDA_KERNEL), resolved for `device`: Sm80 or Sm90, never Auto. Throws lvsa::Error when
// the request is none of these, the device is older than compute capability 8.0, or sm90 is
// asked for and this build or the device cannot run it. Meant to be called once per device,
// not per call.
KernelFamily choose_kernel_family(int device, const char* request);

struct LaunchOptions {
  // A family choose_kernel_family returned for the current device; Auto resolves it on every
  // call (three device queries).
  KernelFamily family = KernelFamily::Auto;
  // The caller guarantees that every pointer of the call is device memory of the current
  // device (the Python backend: tensors it checked to share one CUDA device, and buffers it
  // allocated there). Skips the cudaPointerGetAttributes query per pointer.
  bool pointers_on_current_device = false;
  // The kernel to run by its name in the build's kernel table ("sm90 bf16 d64 n176", as the
  // error for an unknown name lists them), instead of the one the cost model picks: for tests
  // and benchmarks that cover every instantiation. It must run the arguments (family, dtypes,
  // head_dim, query tiles of two frames), or attention() throws saying which does not fit.
  const char* kernel = nullptr;
};

// out (+ lse) = attention over `ranges` on `stream`. q, k, v, out, lse and encoder_valid
// are device pointers; `plan` must hold `ranges` (uploaded on this stream or before), packed
// by pack_plan.
// Requirements beyond validate_attention: float16 or bfloat16, head_dim 64 or 128, a
// contiguous last dim, 16-byte aligned rows. Throws lvsa::Error naming the argument.
// encoder_valid values are not read on the host (that would synchronise); the kernel
// clamps them to [0, encoder_len].
void attention(const KeyRanges& ranges, const DevicePlanView& plan, const AttentionParams& params,
               cudaStream_t stream, const LaunchOptions& options = {});

// The QK prologue of attention inputs (src/cuda/prologue/norm_rope.cu): RMSNorm over groups
// of `group` features of each token (a per-head norm: group = head_dim; a norm across heads:
// group = heads x head_dim), scaled by `weight`, rounded to the dtype, then rotated by RoPE
// tables on interleaved pairs (out[2j] = y[2j] cos[2j] - y[2j+1] sin[2j],
// out[2j+1] = y[2j+1] cos[2j+1] + y[2j] sin[2j+1]).
//
// q and k go in one launch (two inputs of one shape): each token's table row is then read
// from HBM once for both.
struct NormRopeInput {
  const void* x = nullptr;  // [batch, rows, heads x head_dim], unit stride within a row
  int64_t x_batch_stride = 0, x_row_stride = 0;  // in elements
  void* out = nullptr;                           // [batch, rows, heads, head_dim], contiguous
  const void* weight = nullptr;                  // [group] of x's dtype, or null (no scale)
  float eps = 0.0f;
};
inline constexpr int kNormRopeMaxInputs = 2;
struct NormRopeParams {
  NormRopeInput inputs[kNormRopeMaxInputs];
  int input_count = 1;
  const float* cos = nullptr;  // [rows, >= head_dim] float32, or null (no RoPE)
  const float* sin = nullptr;
  int64_t rope_row_stride = 0;  // in elements
  int64_t batch = 0, rows = 0;
  int heads = 0, head_dim = 0, group = 0;
  DType dtype = DType::BF16;
};

// Throws lvsa::Error naming what does not fit: float16 or bfloat16; head_dim a multiple of 8 that
// divides 256; a group dividing heads x head_dim that is 8 x (a divisor of 32) or a multiple of 256
// features; 16-byte aligned x, out and weight rows; 1 or 2 inputs; a token's rows of all inputs
// within one block's shared memory.
void norm_rope(const NormRopeParams& params, cudaStream_t stream);

// Quantised scores' inputs (src/cuda/prologue/quantize_scores.cu): a bfloat16 q or k
// [batch, rows, heads, head_dim] in two passes, statistics then values. Encoder padding, the
// rows [encoder_begin + encoder_valid[b], encoder_begin + encoder_len) of a whole sequence, is
// never read (its values may be anything): a padded row counts as zeros.
struct ScoreTensor {
  const void* x = nullptr;  // bfloat16, unit stride within a head, 16-byte aligned rows
  int64_t batch_stride = 0, row_stride = 0, head_stride = 0;  // in elements
  int64_t batch = 0, rows = 0;
  int heads = 0, head_dim = 0;
  const int32_t* encoder_valid = nullptr;  // [batch], or null: no padding
  int64_t encoder_begin = 0, encoder_len = 0;
};

// Rows per chunk of the statistics' partials (one chunk per block, reduced by the caller).
constexpr int64_t kScoreStatsChunkRows = 1024;

// Per chunk of kScoreStatsChunkRows rows: the sum, minimum and maximum of each (batch, head,
// feature) over the chunk's unpadded rows, into [chunks, batch, heads, head_dim] float32 arrays.
// NaN propagates into minimum and maximum (a non-finite input must reach the scale it feeds).
struct ScoreStatsParams {
  ScoreTensor x;
  float* sum = nullptr;
  float* min = nullptr;
  float* max = nullptr;
};
void score_stats(const ScoreStatsParams& params, cudaStream_t stream);

// out = e4m3(x / descale[b, h]), or with `mean` e4m3(bfloat16(x - mean[b, h]) / descale[b, h])
// (k smoothed), saturating, padded rows zero; with out_dtype I8 the same values rounded to the
// nearest integer (ties to even) and clamped to [-127, 127]. With `score_mean` ([batch, heads /
// group, head_dim], k's mean per key head), also mean_scores[b, row, h] = score_scale * x[b, row,
// h] . score_mean[b, h / group] in float32 from the 16-bit x (what q's scores against k's mean add
// to the lse).
struct ScoreQuantizeParams {
  ScoreTensor x;
  const float* descale = nullptr;     // [batch, heads]
  const float* mean = nullptr;        // [batch, heads, head_dim], or null
  const float* score_mean = nullptr;  // or null
  int group = 1;
  float score_scale = 1.0f;
  float* mean_scores = nullptr;  // [batch, rows, heads], written when score_mean is given
  DType out_dtype = DType::E4M3;  // E4M3 or I8
  void* out = nullptr;            // out_dtype [batch, rows, heads, head_dim], contiguous
};
void score_quantize(const ScoreQuantizeParams& params, cudaStream_t stream);

// fp8 values' input (src/cuda/prologue/quantize_values.cu): a bfloat16 v [batch, rows, heads,
// head_dim] as the V^T of AttentionParams::v_descale's layout, out[b, h, d, j] = e4m3(v[b, key(j),
// h, d] / descale[b, h]) (saturating; key(j) permutes j within its group of 16) for j < row_keys,
// zeros at keys >= rows and at encoder padding (never read). The scale comes from score_stats.
struct ValueQuantizeParams {
  ScoreTensor x;                   // head_dim a multiple of 8, at most 128
  const float* descale = nullptr;  // [batch, heads]
  int64_t row_keys = 0;            // a multiple of 16, >= value_row_keys(rows)
  void* out = nullptr;             // e4m3 [batch, heads, head_dim, row_keys], 16-byte aligned
};
void value_quantize(const ValueQuantizeParams& params, cudaStream_t stream);

}  // namespace lvsa::cuda
