// nanobind module `lvsa._cuda`: the CUDA kernels on raw device pointers handed over from
// PyTorch (data_ptr, shape, strides) and a CUDA stream passed as an integer.
//
// The CUDA runtime is linked statically, so importing this module needs no GPU and no
// libcudart; a missing driver or device only surfaces when a function is called. Because this
// runtime instance is not PyTorch's, its "current device" is set explicitly on every call.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "lvsa/attention.hpp"
#include "lvsa/cuda.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

// One plan in the form the kernels need: the host ranges (for validation) and the packed
// buffer (for the upload into the fixed-capacity device plan).
struct HostRanges {
  lvsa::KeyRanges ranges;
  int64_t capacity = 0;
  std::vector<int32_t> packed;
};

lvsa::EncoderSide parse_side(const std::string& side) {
  if (side == "none") return lvsa::EncoderSide::None;
  if (side == "before") return lvsa::EncoderSide::Before;
  if (side == "after") return lvsa::EncoderSide::After;
  throw lvsa::Error("lvsa: encoder_side must be 'none', 'before' or 'after', got '" + side + "'");
}

template <class T>
std::vector<T> to_vector(const nb::ndarray<const T, nb::ndim<1>, nb::c_contig, nb::device::cpu>& a) {
  return std::vector<T>(a.data(), a.data() + a.shape(0));
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
  const int n = lvsa::cuda::device_count();
  if (n == 0) throw lvsa::Error("lvsa: cuda backend: no CUDA device is visible to lvsa._cuda");
  if (device < 0 || device >= n)
    throw lvsa::Error("lvsa: cuda backend: device " + std::to_string(device) + " is not one of the " +
                      std::to_string(n) + " visible devices");
  if (cudaSetDevice(device) != cudaSuccess) {
    cudaGetLastError();
    throw lvsa::Error("lvsa: cuda backend: cannot select cuda:" + std::to_string(device));
  }
}

}  // namespace

NB_MODULE(_cuda, m) {
  m.doc() = "LVSA CUDA kernels (sm80+ block-sparse attention)";
  nb::set_leak_warnings(false);

  nb::class_<HostRanges>(m, "Ranges")
      .def(
          "__init__",
          [](HostRanges* self, int frames, int tokens_per_frame, int encoder_len,
             const std::string& encoder_side,
             nb::ndarray<const int32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> offsets,
             nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> begin,
             nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu> end,
             int64_t capacity) {
            auto* r = new (self) HostRanges();
            r->ranges.geometry = {frames, tokens_per_frame, encoder_len, parse_side(encoder_side)};
            r->ranges.range_offsets = to_vector(offsets);
            r->ranges.range_begin = to_vector(begin);
            r->ranges.range_end = to_vector(end);
            r->capacity = capacity;
            r->packed.resize(size_t(lvsa::cuda::packed_plan_size(frames, capacity)));
            lvsa::cuda::pack_plan(r->ranges, capacity, r->packed.data());
          },
          "frames"_a, "tokens_per_frame"_a, "encoder_len"_a, "encoder_side"_a, "range_offsets"_a,
          "range_begin"_a, "range_end"_a, "capacity"_a)
      .def_prop_ro("capacity", [](const HostRanges& r) { return r.capacity; })
      .def_prop_ro(
          "packed",
          [](const HostRanges& r) {
            // A read-only view tied to this object's lifetime.
            return nb::ndarray<nb::numpy, const int32_t, nb::ndim<1>>(r.packed.data(), {r.packed.size()},
                                                                      nb::handle());
          },
          nb::rv_policy::reference_internal);

  m.def("device_count", &lvsa::cuda::device_count);
  m.def("worst_case_capacity", &lvsa::cuda::worst_case_capacity, "frames"_a);
  m.def("packed_plan_size", &lvsa::cuda::packed_plan_size, "frames"_a, "capacity"_a);

  m.def(
      "attention",
      [](const HostRanges& r, int device, uintptr_t plan_ptr, const Tensor& q, const Tensor& k,
         const Tensor& v, const Tensor& out, const std::string& dtype, uintptr_t lse,
         uintptr_t encoder_valid, float scale, uintptr_t stream) {
        lvsa::DType dt;
        if (dtype == "bfloat16") dt = lvsa::DType::BF16;
        else if (dtype == "float16") dt = lvsa::DType::F16;
        else
          throw lvsa::Error("lvsa: cuda backend: q has dtype " + dtype +
                            "; the CUDA kernels take float16 or bfloat16");
        lvsa::AttentionParams p;
        p.q = tensor_ref(q, dt, "q");
        p.k = tensor_ref(k, dt, "k");
        p.v = tensor_ref(v, dt, "v");
        p.out = tensor_ref(out, dt, "out");
        p.lse = reinterpret_cast<float*>(lse);
        p.encoder_valid = reinterpret_cast<const int32_t*>(encoder_valid);
        p.scale = scale;
        set_device(device);
        lvsa::cuda::DevicePlanView view{reinterpret_cast<const int32_t*>(plan_ptr), r.ranges.geometry.frames,
                                        r.capacity};
        lvsa::cuda::attention(r.ranges, view, p, reinterpret_cast<cudaStream_t>(stream));
      },
      "ranges"_a, "device"_a, "plan_ptr"_a, "q"_a, "k"_a, "v"_a, "out"_a, "dtype"_a, "lse"_a,
      "encoder_valid"_a, "scale"_a, "stream"_a);
}
