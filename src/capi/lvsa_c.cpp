// The C API: translates C structs to the C++ core and exceptions to status codes.
#include "lvsa/lvsa.h"

#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "../cpu/memory_span.hpp"
#include "lvsa/attention.hpp"
#include "plan_handles.hpp"

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

std::shared_ptr<const lvsa::StepPlan> live_plan(const lvsa_plan* plan) {
  require(plan, "plan");
  auto found = lvsa::capi::find_plan(plan);
  if (!found)
    throw lvsa::Error("lvsa: plan is not a live plan: expected one from lvsa_plan_create that "
                      "lvsa_plan_destroy has not destroyed");
  return found;
}

// A C enum field may hold any int the caller stored; reading an out-of-range value through
// the enum type is undefined in C++, so the validators get the raw int.
template <class Enum>
int raw_enum(const Enum& value) {
  static_assert(sizeof(Enum) == sizeof(int));
  int raw;
  std::memcpy(&raw, &value, sizeof raw);
  return raw;
}

lvsa::TensorRef to_ref(const lvsa_tensor& t) {
  lvsa::TensorRef r;
  r.data = t.data;
  r.dtype = lvsa::DType(raw_enum(t.dtype));
  for (int i = 0; i < 4; ++i) {
    r.shape[i] = t.shape[i];
    r.stride[i] = t.stride[i];
  }
  return r;
}

lvsa::AttentionParams to_params(const lvsa_attention_args& a) {
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

// The C++ core trusts lse to hold [B, Hq, Sq]; C callers say how much room it has.
void check_lse(const lvsa_attention_args& a, const lvsa::AttentionParams& p) {
  if (!a.lse) return;
  const int64_t need = p.q.shape[0] * p.q.shape[2] * p.q.shape[1];  // bounded by out's span
  if (a.lse_len < need)
    throw lvsa::Error("lvsa: attention: lse_len is " + std::to_string(a.lse_len) +
                      " floats, expected at least B*Hq*Sq = " + std::to_string(need) +
                      " (lse is [B, Hq, Sq] contiguous)");
  lvsa::TensorRef lse;
  lse.data = a.lse;
  for (int i = 0; i < 4; ++i) lse.shape[i] = lse.stride[i] = 1;
  lse.shape[0] = need;
  const auto span = lvsa::cpu::memory_span(lse);
  if (!span) throw lvsa::Error("lvsa: attention: lse's B*Hq*Sq floats reach beyond the address space");
  const std::pair<const lvsa::TensorRef*, const char*> others[] = {
      {&p.out, "out"}, {&p.q, "q"}, {&p.k, "k"}, {&p.v, "v"}};
  for (const auto& [t, name] : others)
    if (span->overlaps(*lvsa::cpu::memory_span(*t)))
      throw lvsa::Error(std::string("lvsa: attention: lse overlaps ") + name +
                        " in memory; expected a separate buffer");
}

template <class Backend>
lvsa_status attend(const lvsa_plan* plan, const lvsa_attention_args* args, Backend&& backend) {
  return guarded([&] {
    const auto p = live_plan(plan);
    require(args, "args");
    const lvsa::AttentionParams params = to_params(*args);
    lvsa::validate_attention(p->ranges, params);
    check_lse(*args, params);
    backend(p->ranges, params);
  });
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
    require(plan, "plan");
    *plan = nullptr;
    require(geometry, "geometry");
    require(config, "config");
    lvsa::Geometry g{geometry->frames, geometry->tokens_per_frame, geometry->encoder_len,
                     lvsa::EncoderSide(raw_enum(geometry->encoder_side))};
    lvsa::PatternConfig c;
    c.window = config->window;
    c.n_first = config->n_first;
    c.keyframe_interval = config->keyframe_interval;
    c.reference = config->reference;
    c.scale = config->scale;
    c.expand = config->expand != 0;
    c.rotate = config->rotate != 0;
    *plan = lvsa::capi::add_plan(lvsa::make_plan(g, c, step));
  });
}

void lvsa_plan_destroy(lvsa_plan* plan) { lvsa::capi::remove_plan(plan); }

lvsa_status lvsa_plan_ranges(const lvsa_plan* plan, int* frames, const int32_t** offsets,
                             const int64_t** begin, const int64_t** end) {
  return guarded([&] {
    const auto live = live_plan(plan);
    const lvsa::KeyRanges& r = live->ranges;
    if (frames) *frames = r.geometry.frames;
    if (offsets) *offsets = r.range_offsets.data();
    if (begin) *begin = r.range_begin.data();
    if (end) *end = r.range_end.data();
  });
}

lvsa_status lvsa_plan_info(const lvsa_plan* plan, int* kfi, int* offset, double* frame_density) {
  return guarded([&] {
    const auto live = live_plan(plan);
    const lvsa::FramePattern& p = live->pattern;
    if (kfi) *kfi = p.kfi;
    if (offset) *offset = p.offset;
    if (frame_density) *frame_density = p.frame_density();
  });
}

lvsa_status lvsa_attention_cpu(const lvsa_plan* plan, const lvsa_attention_args* args, int num_threads) {
  return attend(plan, args, [&](const lvsa::KeyRanges& ranges, const lvsa::AttentionParams& params) {
    if (num_threads < 0)
      throw lvsa::Error("lvsa: attention: num_threads must be >= 0 (0: all hardware threads), got " +
                        std::to_string(num_threads));
    lvsa::attention_cpu(ranges, params, num_threads);
  });
}

lvsa_status lvsa_attention_reference(const lvsa_plan* plan, const lvsa_attention_args* args) {
  return attend(plan, args, [](const lvsa::KeyRanges& ranges, const lvsa::AttentionParams& params) {
    lvsa::attention_reference(ranges, params);
  });
}

const char* lvsa_last_error(void) { return last_error.c_str(); }

}  // extern "C"
