// Thin nanobind layer over the planner and the CPU attention backends. Tensors cross via
// DLPack with zero copies; lvsa::Error surfaces in Python as ValueError.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>

#include "lvsa/attention.hpp"
#include "lvsa/models.hpp"
#include "lvsa/packed_plan.hpp"
#include "lvsa/report.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using CpuArray = nb::ndarray<nb::device::cpu>;

lvsa::EncoderSide parse_side(const std::string& side) {
  if (side == "none") return lvsa::EncoderSide::None;
  if (side == "before") return lvsa::EncoderSide::Before;
  if (side == "after") return lvsa::EncoderSide::After;
  throw lvsa::Error("lvsa: encoder_side must be 'none', 'before' or 'after', got '" + side + "'");
}

const char* side_name(lvsa::EncoderSide side) {
  switch (side) {
    case lvsa::EncoderSide::Before: return "before";
    case lvsa::EncoderSide::After: return "after";
    default: return "none";
  }
}

lvsa::PatternConfig make_config(int window, int n_first, int keyframe_interval, int reference,
                                double scale, bool expand, bool rotate) {
  lvsa::PatternConfig c;
  c.window = window;
  c.n_first = n_first;
  c.keyframe_interval = keyframe_interval;
  c.reference = reference;
  c.scale = scale;
  c.expand = expand;
  c.rotate = rotate;
  lvsa::validate(c);
  return c;
}

template <class T>
nb::ndarray<nb::numpy, T, nb::ndim<1>> to_numpy(const std::vector<T>& values) {
  auto* copy = new std::vector<T>(values);
  nb::capsule owner(copy, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T, nb::ndim<1>>(copy->data(), {copy->size()}, owner);
}

lvsa::DType dtype_of(const CpuArray& a, const char* name) {
  const nb::dlpack::dtype t = a.dtype();
  if (t == nb::dtype<float>()) return lvsa::DType::F32;
  if (t.code == uint8_t(nb::dlpack::dtype_code::Float) && t.bits == 16 && t.lanes == 1)
    return lvsa::DType::F16;
  if (t.code == uint8_t(nb::dlpack::dtype_code::Bfloat) && t.bits == 16 && t.lanes == 1)
    return lvsa::DType::BF16;
  throw lvsa::Error(std::string("lvsa: ") + name +
                    " must be float32, float16 or bfloat16 on the CPU backend");
}

lvsa::TensorRef tensor_ref(const CpuArray& a, const char* name) {
  if (a.ndim() != 4)
    throw lvsa::Error(std::string("lvsa: ") + name + " must have 4 dims [B, S, H, D], got " +
                      std::to_string(a.ndim()));
  lvsa::TensorRef t;
  t.data = const_cast<void*>(a.data());
  t.dtype = dtype_of(a, name);
  for (int i = 0; i < 4; ++i) {
    t.shape[i] = int64_t(a.shape(i));
    t.stride[i] = a.stride(i);
  }
  return t;
}

// Runs the reference or the fast CPU path. `lse` and `encoder_valid` are optional;
// `encoder_valid` must be int32 [B] and `lse` float32 [B, Hq, Sq] contiguous.
void attention_cpu(const lvsa::StepPlan& plan, CpuArray q, CpuArray k, CpuArray v, CpuArray out,
                   std::optional<nb::ndarray<float, nb::ndim<3>, nb::c_contig, nb::device::cpu>> lse,
                   std::optional<nb::ndarray<const int32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>>
                       encoder_valid,
                   float scale, int num_threads, bool reference) {
  lvsa::AttentionParams p;
  p.q = tensor_ref(q, "q");
  p.k = tensor_ref(k, "k");
  p.v = tensor_ref(v, "v");
  p.out = tensor_ref(out, "out");
  p.scale = scale;
  if (lse) {
    const int64_t expect[3] = {p.q.shape[0], p.q.shape[2], p.q.shape[1]};
    for (int i = 0; i < 3; ++i)
      if (int64_t(lse->shape(i)) != expect[i])
        throw lvsa::Error("lvsa: lse must be float32 [B, Hq, Sq] = [" + std::to_string(expect[0]) +
                          ", " + std::to_string(expect[1]) + ", " + std::to_string(expect[2]) + "]");
    p.lse = lse->data();
  }
  if (encoder_valid) {
    if (int64_t(encoder_valid->shape(0)) != p.q.shape[0])
      throw lvsa::Error("lvsa: encoder_valid must have one entry per batch (" +
                        std::to_string(p.q.shape[0]) + "), got " +
                        std::to_string(encoder_valid->shape(0)));
    p.encoder_valid = encoder_valid->data();
  }
  nb::gil_scoped_release release;
  if (reference)
    lvsa::attention_reference(plan.ranges, p);
  else
    lvsa::attention_cpu(plan.ranges, p, num_threads);
}

// Writes the packed device layout of the plan (lvsa/packed_plan.hpp) into a host buffer the
// caller owns: the CUDA backend's pinned upload source, filled without an intermediate copy.
// Pinned torch tensors export as DLPack kDLCUDAHost, ordinary host memory as kDLCPU.
void pack_into(const lvsa::StepPlan& plan, nb::ndarray<int32_t, nb::ndim<1>, nb::c_contig> buffer,
               int64_t capacity) {
  const int32_t device = buffer.device_type();
  if (device != nb::device::cpu::value && device != nb::device::cuda_host::value)
    throw lvsa::Error("lvsa: pack_into: buffer must be host memory (CPU or pinned), got DLPack device type " +
                      std::to_string(device));
  const int64_t need = lvsa::packed_plan_size(plan.ranges.geometry.frames, capacity);
  if (capacity < 1 || int64_t(buffer.shape(0)) != need)
    throw lvsa::Error("lvsa: pack_into: buffer must have packed_plan_size(" +
                      std::to_string(plan.ranges.geometry.frames) + ", " + std::to_string(capacity) +
                      ") = " + std::to_string(need) + " int32 elements, got " + std::to_string(buffer.shape(0)));
  lvsa::pack_plan(plan.ranges, capacity, buffer.data());
}

}  // namespace

NB_MODULE(_native, m) {
  m.doc() = "LVSA C++ core: the planner, its plan object (CorePlan) and the CPU attention kernels";
  // Plans captured by torch.compile's caches are still alive at interpreter exit; that is
  // not a leak worth a warning on every run.
  nb::set_leak_warnings(false);

  nb::class_<lvsa::StepPlan>(m, "CorePlan")
      .def_prop_ro("step", [](const lvsa::StepPlan& p) { return p.step; })
      .def_prop_ro("kfi", [](const lvsa::StepPlan& p) { return p.pattern.kfi; })
      .def_prop_ro("offset", [](const lvsa::StepPlan& p) { return p.pattern.offset; })
      .def_prop_ro("frames", [](const lvsa::StepPlan& p) { return p.pattern.frames; })
      .def_prop_ro("globals", [](const lvsa::StepPlan& p) { return p.pattern.globals; })
      .def_prop_ro("window_lo", [](const lvsa::StepPlan& p) { return p.pattern.window_lo; })
      .def_prop_ro("window_hi", [](const lvsa::StepPlan& p) { return p.pattern.window_hi; })
      .def("attended", [](const lvsa::StepPlan& p, int f) { return p.pattern.attended(f); }, "frame"_a)
      .def_prop_ro("frame_density", [](const lvsa::StepPlan& p) { return p.pattern.frame_density(); })
      .def_prop_ro("tokens_per_frame", [](const lvsa::StepPlan& p) { return p.ranges.geometry.tokens_per_frame; })
      .def_prop_ro("encoder_len", [](const lvsa::StepPlan& p) { return p.ranges.geometry.encoder_len; })
      .def_prop_ro("encoder_side", [](const lvsa::StepPlan& p) { return side_name(p.ranges.geometry.encoder_side); })
      .def_prop_ro("range_offsets", [](const lvsa::StepPlan& p) { return to_numpy(p.ranges.range_offsets); }, nb::rv_policy::automatic)
      .def_prop_ro("range_begin", [](const lvsa::StepPlan& p) { return to_numpy(p.ranges.range_begin); }, nb::rv_policy::automatic)
      .def_prop_ro("range_end", [](const lvsa::StepPlan& p) { return to_numpy(p.ranges.range_end); }, nb::rv_policy::automatic)
      .def("work", [](const lvsa::StepPlan& p, int heads, int head_dim) {
             const auto w = lvsa::estimate_work(p.ranges, heads, head_dim);
             nb::dict d;
             d["sparse_pairs"] = w.sparse_pairs;
             d["dense_pairs"] = w.dense_pairs;
             d["sparse_flops"] = w.sparse_flops;
             d["dense_flops"] = w.dense_flops;
             d["density"] = w.density();
             return d;
           }, "heads"_a, "head_dim"_a)
      // noconvert: a converted copy would take the writes and be dropped.
      .def("pack_into", &pack_into, "buffer"_a.noconvert(), "capacity"_a)
      .def("to_json", [](const lvsa::StepPlan& p, int heads, int head_dim) {
             return lvsa::plan_to_json(p, heads, head_dim);
           }, "heads"_a = 12, "head_dim"_a = 128)
      .def("to_text", [](const lvsa::StepPlan& p, int heads, int head_dim) {
             return lvsa::plan_to_text(p, heads, head_dim);
           }, "heads"_a = 12, "head_dim"_a = 128);

  m.def("make_plan",
        [](int frames, int tokens_per_frame, int encoder_len, const std::string& encoder_side,
           int window, int n_first, int keyframe_interval, int reference, double scale, bool expand,
           bool rotate, int64_t step) {
          lvsa::Geometry g{frames, tokens_per_frame, encoder_len, parse_side(encoder_side)};
          return lvsa::make_plan(g, make_config(window, n_first, keyframe_interval, reference, scale,
                                                expand, rotate), step);
        },
        "frames"_a, "tokens_per_frame"_a, "encoder_len"_a, "encoder_side"_a, "window"_a,
        "n_first"_a, "keyframe_interval"_a, "reference"_a, "scale"_a, "expand"_a, "rotate"_a,
        "step"_a);

  m.def("packed_plan_size", &lvsa::packed_plan_size, "frames"_a, "capacity"_a);
  m.def("worst_case_capacity", &lvsa::worst_case_capacity, "frames"_a);

  m.def("model_presets", [] {
    nb::list out;
    for (const auto& p : lvsa::model_presets()) {
      nb::dict d;
      d["name"] = p.name;
      d["family"] = p.family;
      d["vae_spatial"] = p.vae_spatial;
      d["vae_temporal"] = p.vae_temporal;
      d["patch"] = nb::make_tuple(p.patch_t, p.patch_h, p.patch_w);
      d["reference"] = p.reference;
      d["encoder_len"] = p.encoder_len;
      d["encoder_side"] = side_name(p.encoder_side);
      d["heads"] = p.heads;
      d["head_dim"] = p.head_dim;
      d["default_size"] = nb::make_tuple(p.default_frames, p.default_height, p.default_width);
      out.append(d);
    }
    return out;
  });

  m.def("model_geometry",
        [](const std::string& name, int frames, int height, int width) {
          const auto g = lvsa::model_geometry(lvsa::find_preset(name), frames, height, width);
          return nb::make_tuple(g.frames, g.tokens_per_frame, g.encoder_len, side_name(g.encoder_side));
        },
        "name"_a, "frames"_a, "height"_a, "width"_a);

  m.def("clip_token_frames", &lvsa::clip_token_frames, "video_frames"_a, "vae_temporal"_a, "patch_t"_a);

  m.def("to_latent_knobs",
        [](int window, int n_first, int keyframe_interval, int vae_temporal) {
          const auto c = lvsa::to_latent_config({window, n_first, keyframe_interval}, vae_temporal);
          return nb::make_tuple(c.window, c.n_first, c.keyframe_interval);
        },
        "window"_a, "n_first"_a, "keyframe_interval"_a, "vae_temporal"_a);

  m.def("attention_cpu", &attention_cpu, "plan"_a, "q"_a, "k"_a, "v"_a, "out"_a, "lse"_a.none(),
        "encoder_valid"_a.none(), "scale"_a, "num_threads"_a, "reference"_a);

  m.attr("AUTO_KEYFRAMES") = lvsa::kAutoKeyframes;
  m.attr("NO_KEYFRAMES") = lvsa::kNoKeyframes;
}
