// The C API: translates C structs to the C++ core and exceptions to status codes.
#include "lvsa/lvsa.h"

#include <exception>
#include <string>

#include "lvsa/attention.hpp"

struct lvsa_plan {
  lvsa::StepPlan plan;
};

namespace {

thread_local std::string last_error;

template <class F>
lvsa_status guarded(F&& body) {
  try {
    body();
    last_error.clear();
    return LVSA_OK;
  } catch (const lvsa::Error& e) {
    last_error = e.what();
    return LVSA_ERROR_INVALID_ARGUMENT;
  } catch (const std::exception& e) {
    last_error = e.what();
    return LVSA_ERROR_INTERNAL;
  }
}

void require(const void* pointer, const char* name) {
  if (!pointer) throw lvsa::Error(std::string("lvsa: ") + name + " must not be NULL");
}

lvsa::TensorRef to_ref(const lvsa_tensor& t) {
  lvsa::TensorRef r;
  r.data = t.data;
  r.dtype = lvsa::DType(t.dtype);
  for (int i = 0; i < 4; ++i) {
    r.shape[i] = t.shape[i];
    r.stride[i] = t.stride[i];
  }
  return r;
}

lvsa::AttentionParams to_params(const lvsa_attention_args& a) {
  for (const lvsa_tensor* t : {&a.q, &a.k, &a.v, &a.out})
    if (t->dtype < LVSA_F32 || t->dtype > LVSA_BF16) throw lvsa::Error("lvsa: unknown dtype code");
  lvsa::AttentionParams p;
  p.q = to_ref(a.q);
  p.k = to_ref(a.k);
  p.v = to_ref(a.v);
  p.out = to_ref(a.out);
  p.lse = a.lse;
  p.encoder_valid = a.encoder_valid;
  p.scale = a.scale;
  return p;
}

}  // namespace

extern "C" {

void lvsa_config_default(lvsa_config* config) {
  if (!config) return;
  const lvsa::PatternConfig d;
  *config = {d.window, d.n_first, d.keyframe_interval, d.reference, d.scale, d.expand, d.rotate};
}

lvsa_status lvsa_plan_create(const lvsa_geometry* geometry, const lvsa_config* config, int64_t step,
                             lvsa_plan** plan) {
  return guarded([&] {
    require(geometry, "geometry");
    require(config, "config");
    require(plan, "plan");
    *plan = nullptr;
    lvsa::Geometry g{geometry->frames, geometry->tokens_per_frame, geometry->encoder_len,
                     lvsa::EncoderSide(geometry->encoder_side)};
    lvsa::PatternConfig c;
    c.window = config->window;
    c.n_first = config->n_first;
    c.keyframe_interval = config->keyframe_interval;
    c.reference = config->reference;
    c.scale = config->scale;
    c.expand = config->expand != 0;
    c.rotate = config->rotate != 0;
    *plan = new lvsa_plan{lvsa::make_plan(g, c, step)};
  });
}

void lvsa_plan_destroy(lvsa_plan* plan) { delete plan; }

lvsa_status lvsa_plan_ranges(const lvsa_plan* plan, int* frames, const int32_t** offsets,
                             const int64_t** begin, const int64_t** end) {
  return guarded([&] {
    require(plan, "plan");
    const lvsa::KeyRanges& r = plan->plan.ranges;
    if (frames) *frames = r.geometry.frames;
    if (offsets) *offsets = r.range_offsets.data();
    if (begin) *begin = r.range_begin.data();
    if (end) *end = r.range_end.data();
  });
}

lvsa_status lvsa_plan_info(const lvsa_plan* plan, int* kfi, int* offset, double* frame_density) {
  return guarded([&] {
    require(plan, "plan");
    if (kfi) *kfi = plan->plan.pattern.kfi;
    if (offset) *offset = plan->plan.pattern.offset;
    if (frame_density) *frame_density = plan->plan.pattern.frame_density();
  });
}

lvsa_status lvsa_attention_cpu(const lvsa_plan* plan, const lvsa_attention_args* args, int num_threads) {
  return guarded([&] {
    require(plan, "plan");
    require(args, "args");
    lvsa::attention_cpu(plan->plan.ranges, to_params(*args), num_threads);
  });
}

lvsa_status lvsa_attention_reference(const lvsa_plan* plan, const lvsa_attention_args* args) {
  return guarded([&] {
    require(plan, "plan");
    require(args, "args");
    lvsa::attention_reference(plan->plan.ranges, to_params(*args));
  });
}

const char* lvsa_last_error(void) { return last_error.c_str(); }

}  // extern "C"
