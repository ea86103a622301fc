// Attention arguments over host memory for the host-side tests of the CUDA entry point and for
// the selftest's choice of cases: only their addresses are read (with pointers_on_current_device
// the device-pointer queries are skipped), so no GPU is needed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/host.hpp"
#include "lvsa/attention.hpp"
#include "lvsa/packed_plan.hpp"
#include "lvsa/plan.hpp"

namespace lvsa_test {

// q, k, v and out of one batch entry, every token, `heads` heads, contiguous, in `dtype`. q, k
// and v share the first half of `storage`; out has the second, since an out that overlaps q is
// refused first.
inline lvsa::AttentionParams params_for(const lvsa::Geometry& g, lvsa::DType dtype, int64_t head_dim,
                                        std::vector<float>& storage, int64_t heads = 2) {
  const int64_t S = g.seq_len(), elements = S * heads * head_dim;
  storage.assign(size_t(2 * elements), 0.0f);
  lvsa::AttentionParams p;
  for (lvsa::TensorRef* t : {&p.q, &p.k, &p.v, &p.out}) {
    t->data = storage.data() + (t == &p.out ? elements : 0);
    t->dtype = dtype;
    t->shape[0] = 1; t->shape[1] = S; t->shape[2] = heads; t->shape[3] = head_dim;
    t->stride[3] = 1; t->stride[2] = head_dim; t->stride[1] = heads * head_dim; t->stride[0] = S * heads * head_dim;
  }
  return p;
}

// One step's plan, packed in host memory as the device holds it, and the kernel arguments
// attention() builds over it (frame_pairs false: frame by frame, as bench/cuda can time).
struct HostLaunch {
  lvsa::StepPlan plan;
  std::vector<int32_t> packed;
  std::vector<float> storage;  // q, k, v and out
  lvsa::AttentionParams params;
  lvsa::cuda::FwdParams p;
};

inline HostLaunch host_launch(const lvsa::Geometry& g, const lvsa::PatternConfig& cfg, int64_t step,
                              lvsa::DType dtype, int64_t head_dim, int64_t heads = 2, bool frame_pairs = true) {
  HostLaunch l{lvsa::make_plan(g, cfg, step)};
  const int64_t capacity = lvsa::worst_case_capacity(g.frames);
  l.packed.resize(size_t(lvsa::packed_plan_size(g.frames, capacity)));
  lvsa::pack_plan(l.plan.ranges, capacity, l.packed.data());
  l.params = params_for(g, dtype, head_dim, l.storage, heads);
  const lvsa::cuda::DevicePlanView view{l.packed.data(), g.frames, capacity};
  l.p = lvsa::cuda::build_fwd_params(l.plan.ranges, view, l.params, true, frame_pairs);
  return l;
}

// The message of the lvsa::Error that `call` throws, or "no error".
template <class Call>
std::string error_of(Call&& call) {
  try {
    call();
  } catch (const lvsa::Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace lvsa_test
