// nanobind module `lvsa._cuda`: the CUDA kernels on raw device pointers handed over from
// PyTorch (data_ptr, shape, strides) and a CUDA stream passed as an integer.
//
// The plan crosses as the core plan object (`lvsa._native.CorePlan`) itself (nanobind shares bound types
// between the two modules): the kernels read the packed copy the backend uploaded, and the
// host ranges are only the C++ contract's reference for the checks.
//
// The CUDA runtime is linked statically, so importing this module needs no GPU and no
// libcudart; a missing driver or device only surfaces when a function is called. Because this
// runtime instance is not PyTorch's, its "current device" is set explicitly on every call.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "lvsa/attention.hpp"
#include "lvsa/cuda.hpp"
#include "lvsa/plan.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

lvsa::DType parse_dtype(const std::string& dtype) {
  if (dtype == "bfloat16") return lvsa::DType::BF16;
  if (dtype == "float16") return lvsa::DType::F16;
  if (dtype == "float32") return lvsa::DType::F32;  // refused by the C++ contract, which names it
  throw lvsa::Error("lvsa: cuda backend: q has dtype " + dtype + "; the CUDA kernels take float16 or bfloat16");
}

// The dtype of quantised scores' q and k: "float8_e4m3" or "int8".
lvsa::DType parse_score_dtype(const std::string& scores) {
  if (scores == "float8_e4m3") return lvsa::DType::E4M3;
  if (scores == "int8") return lvsa::DType::I8;
  throw lvsa::Error("lvsa: cuda backend: quantised scores are float8_e4m3 or int8, got " + scores);
}

using Tensor = std::tuple<uintptr_t, std::vector<int64_t>, std::vector<int64_t>>;

lvsa::TensorRef tensor_ref(const Tensor& t, lvsa::DType dtype, const char* name) {
  const auto& [ptr, shape, stride] = t;
  if (shape.size() != 4 || stride.size() != 4)
    throw lvsa::Error(std::string("lvsa: ") + name + " must have 4 dims [B, S, H, D]");
  lvsa::TensorRef r;
  r.data = reinterpret_cast<void*>(ptr);
  r.dtype = dtype;
  for (int i = 0; i < 4; ++i) {
    r.shape[i] = shape[size_t(i)];
    r.stride[i] = stride[size_t(i)];
  }
  return r;
}

void set_device(int device) {
  const cudaError_t err = cudaSetDevice(device);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw lvsa::Error("lvsa: cuda backend: cannot select cuda:" + std::to_string(device) + " (" +
                      cudaGetErrorString(err) + ")");
  }
}

lvsa::cuda::ScoreTensor score_tensor(const Tensor& t, uintptr_t valid, int64_t encoder_begin, int64_t encoder_len) {
  const auto& [ptr, shape, stride] = t;
  if (shape.size() != 4 || stride.size() != 4 || stride[3] != 1)
    throw lvsa::Error("lvsa: quantised inputs: q, k and v must be [B, S, H, D] with unit stride in D");
  lvsa::cuda::ScoreTensor x;
  x.x = reinterpret_cast<const void*>(ptr);
  x.batch = shape[0], x.rows = shape[1], x.heads = int(shape[2]), x.head_dim = int(shape[3]);
  x.batch_stride = stride[0], x.row_stride = stride[1], x.head_stride = stride[2];
  x.encoder_valid = reinterpret_cast<const int32_t*>(valid);
  x.encoder_begin = encoder_begin, x.encoder_len = encoder_len;
  return x;
}

}  // namespace

NB_MODULE(_cuda, m) {
  m.doc() = "LVSA CUDA kernels (sm80+ block-sparse attention)";
  nb::set_leak_warnings(false);
  // Registers the plan type that attention() takes.
  nb::module_::import_("lvsa._native");

  nb::enum_<lvsa::cuda::KernelFamily>(m, "KernelFamily")
      .value("auto", lvsa::cuda::KernelFamily::Auto)
      .value("sm80", lvsa::cuda::KernelFamily::Sm80)
      .value("sm90", lvsa::cuda::KernelFamily::Sm90);

  m.def("device_count", &lvsa::cuda::device_count);
  m.def(
      "choose_kernel_family",
      [](int device, const std::string& request) {
        return lvsa::cuda::choose_kernel_family(device, request.c_str());
      },
      "device"_a, "request"_a);

  // The pointers come from the backend: q, k and v it checked to be on cuda:`device`, out,
  // lse, encoder_valid, the descale factors and the plan buffer it placed there. So the C++
  // contract skips its per-pointer device queries; every other check of it runs. `dtype` is v's
  // and out's, and q's and k's unless `scores` names quantised ones (float8_e4m3 or int8, with
  // descale factors), and v's unless `values` is "float8_e4m3" (fp8 values: v is then the value
  // pre-pass's V^T, as (data_ptr, [B, Sk, Hkv, D], its strides in that layout), with v_descale).
  m.def(
      "attention",
      [](const lvsa::StepPlan& plan, int device, uintptr_t plan_ptr, int64_t capacity, const Tensor& q,
         const Tensor& k, const Tensor& v, const Tensor& out, const std::string& dtype, uintptr_t lse,
         uintptr_t encoder_valid, float scale, uintptr_t stream, lvsa::cuda::KernelFamily family,
         uintptr_t q_descale, uintptr_t k_descale, const std::string& scores, uintptr_t v_descale,
         const std::string& values) {
        const lvsa::DType dt = parse_dtype(dtype);
        const lvsa::DType score_dt = scores.empty() ? dt : parse_score_dtype(scores);
        if (!values.empty() && values != "float8_e4m3")
          throw lvsa::Error("lvsa: cuda backend: fp8 values are float8_e4m3, got " + values);
        lvsa::AttentionParams p;
        p.q = tensor_ref(q, score_dt, "q");
        p.k = tensor_ref(k, score_dt, "k");
        p.q_descale = reinterpret_cast<const float*>(q_descale);
        p.k_descale = reinterpret_cast<const float*>(k_descale);
        p.v = tensor_ref(v, values.empty() ? dt : lvsa::DType::E4M3, "v");
        p.v_descale = reinterpret_cast<const float*>(v_descale);
        p.out = tensor_ref(out, dt, "out");
        p.lse = reinterpret_cast<float*>(lse);
        p.encoder_valid = reinterpret_cast<const int32_t*>(encoder_valid);
        p.scale = scale;
        set_device(device);
        const lvsa::cuda::DevicePlanView view{reinterpret_cast<const int32_t*>(plan_ptr),
                                              plan.ranges.geometry.frames, capacity};
        lvsa::cuda::LaunchOptions options;
        options.family = family;
        options.pointers_on_current_device = true;
        lvsa::cuda::attention(plan.ranges, view, p, reinterpret_cast<cudaStream_t>(stream), options);
      },
      "plan"_a, "device"_a, "plan_ptr"_a, "capacity"_a, "q"_a, "k"_a, "v"_a, "out"_a, "dtype"_a, "lse"_a,
      "encoder_valid"_a, "scale"_a, "stream"_a, "family"_a, "q_descale"_a = 0, "k_descale"_a = 0, "scores"_a = "",
      "v_descale"_a = 0, "values"_a = "");

  // The QK prologue (lvsa.prologue): pointers the caller checked to be on cuda:`device`; `inputs`
  // holds (x, x_batch_stride, x_row_stride, out, weight, eps) of q, or of q and k.
  m.def(
      "norm_rope",
      [](int device, const std::vector<std::tuple<uintptr_t, int64_t, int64_t, uintptr_t, uintptr_t, float>>& inputs,
         uintptr_t cos, uintptr_t sin, int64_t rope_row_stride, int64_t batch, int64_t rows, int heads,
         int head_dim, int group, const std::string& dtype, uintptr_t stream) {
        lvsa::cuda::NormRopeParams p;
        if (inputs.empty() || inputs.size() > std::size(p.inputs))
          throw lvsa::Error("lvsa: cuda norm_rope: takes 1 or 2 inputs (q and k), got " + std::to_string(inputs.size()));
        p.input_count = int(inputs.size());
        for (size_t t = 0; t < inputs.size(); ++t) {
          const auto& [x, batch_stride, row_stride, out, weight, eps] = inputs[t];
          p.inputs[t] = {reinterpret_cast<const void*>(x), batch_stride, row_stride, reinterpret_cast<void*>(out),
                         reinterpret_cast<const void*>(weight), eps};
        }
        p.cos = reinterpret_cast<const float*>(cos);
        p.sin = reinterpret_cast<const float*>(sin);
        p.rope_row_stride = rope_row_stride;
        p.batch = batch;
        p.rows = rows;
        p.heads = heads;
        p.head_dim = head_dim;
        p.group = group;
        p.dtype = parse_dtype(dtype);
        set_device(device);
        lvsa::cuda::norm_rope(p, reinterpret_cast<cudaStream_t>(stream));
      },
      "device"_a, "inputs"_a, "cos"_a, "sin"_a, "rope_row_stride"_a, "batch"_a, "rows"_a, "heads"_a,
      "head_dim"_a, "group"_a, "dtype"_a, "stream"_a);

  // Quantised scores' inputs (lvsa.backends.quantized_scores): a bfloat16 q or k on cuda:`device`
  // as (data_ptr, shape, strides), its encoder padding (valid_ptr 0: none) and output pointers;
  // score_quantize writes `scores` values (float8_e4m3 or int8).
  m.attr("score_stats_chunk_rows") = lvsa::cuda::kScoreStatsChunkRows;
  m.def(
      "score_stats",
      [](int device, const Tensor& x, uintptr_t valid, int64_t encoder_begin, int64_t encoder_len, uintptr_t sum,
         uintptr_t min, uintptr_t max, uintptr_t stream) {
        lvsa::cuda::ScoreStatsParams p;
        p.x = score_tensor(x, valid, encoder_begin, encoder_len);
        p.sum = reinterpret_cast<float*>(sum);
        p.min = reinterpret_cast<float*>(min);
        p.max = reinterpret_cast<float*>(max);
        set_device(device);
        lvsa::cuda::score_stats(p, reinterpret_cast<cudaStream_t>(stream));
      },
      "device"_a, "x"_a, "valid"_a, "encoder_begin"_a, "encoder_len"_a, "sum"_a, "min"_a, "max"_a, "stream"_a);
  m.def(
      "score_quantize",
      [](int device, const Tensor& x, uintptr_t valid, int64_t encoder_begin, int64_t encoder_len,
         uintptr_t descale, uintptr_t mean, uintptr_t score_mean, int group, float score_scale, uintptr_t mean_scores,
         uintptr_t out, const std::string& scores, uintptr_t stream) {
        lvsa::cuda::ScoreQuantizeParams p;
        p.out_dtype = parse_score_dtype(scores);
        p.x = score_tensor(x, valid, encoder_begin, encoder_len);
        p.descale = reinterpret_cast<const float*>(descale);
        p.mean = reinterpret_cast<const float*>(mean);
        p.score_mean = reinterpret_cast<const float*>(score_mean);
        p.group = group;
        p.score_scale = score_scale;
        p.mean_scores = reinterpret_cast<float*>(mean_scores);
        p.out = reinterpret_cast<void*>(out);
        set_device(device);
        lvsa::cuda::score_quantize(p, reinterpret_cast<cudaStream_t>(stream));
      },
      "device"_a, "x"_a, "valid"_a, "encoder_begin"_a, "encoder_len"_a, "descale"_a, "mean"_a, "score_mean"_a,
      "group"_a, "score_scale"_a, "mean_scores"_a, "out"_a, "scores"_a, "stream"_a);
  // fp8 values' input (lvsa.backends.quantized_scores): a bfloat16 v as above, written as the e4m3
  // V^T [B, Hkv, D, row_keys] of AttentionParams::v_descale's layout.
  m.def(
      "value_quantize",
      [](int device, const Tensor& x, uintptr_t valid, int64_t encoder_begin, int64_t encoder_len,
         uintptr_t descale, int64_t row_keys, uintptr_t out, uintptr_t stream) {
        lvsa::cuda::ValueQuantizeParams p;
        p.x = score_tensor(x, valid, encoder_begin, encoder_len);
        p.descale = reinterpret_cast<const float*>(descale);
        p.row_keys = row_keys;
        p.out = reinterpret_cast<void*>(out);
        set_device(device);
        lvsa::cuda::value_quantize(p, reinterpret_cast<cudaStream_t>(stream));
      },
      "device"_a, "x"_a, "valid"_a, "encoder_begin"_a, "encoder_len"_a, "descale"_a, "row_keys"_a, "out"_a,
      "stream"_a);
}
