// The CUDA entry point's argument errors name what this build's instantiations cover (the
// dtypes and head dims are read from the generated kernel table). These checks run before any
// CUDA call, so no GPU is needed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lvsa/cuda.hpp"
#include "lvsa/plan.hpp"

namespace {

// q, k, v and out of one batch entry, all tokens, two heads, on a host buffer: the checks
// under test come before the device-pointer checks. out has its own half of the buffer, since
// an out that overlaps q is refused first.
lvsa::AttentionParams params_for(const lvsa::Geometry& g, lvsa::DType dtype, int head_dim,
                                 std::vector<float>& storage) {
  const int64_t S = g.seq_len(), H = 2, elements = S * H * head_dim;
  storage.assign(size_t(2 * elements), 0.0f);
  lvsa::AttentionParams p;
  for (lvsa::TensorRef* t : {&p.q, &p.k, &p.v, &p.out}) {
    t->data = storage.data() + (t == &p.out ? elements : 0);
    t->dtype = dtype;
    t->shape[0] = 1; t->shape[1] = S; t->shape[2] = H; t->shape[3] = head_dim;
    t->stride[3] = 1; t->stride[2] = head_dim; t->stride[1] = H * head_dim; t->stride[0] = S * H * head_dim;
  }
  return p;
}

std::string error_of(lvsa::DType dtype, int head_dim) {
  const lvsa::Geometry g{4, 16, 0, lvsa::EncoderSide::None};
  const lvsa::StepPlan plan = lvsa::make_plan(g, lvsa::PatternConfig{}, 0);
  std::vector<float> storage;
  const lvsa::AttentionParams p = params_for(g, dtype, head_dim, storage);
  try {
    lvsa::cuda::attention(plan.ranges, lvsa::cuda::DevicePlanView{}, p, nullptr);
  } catch (const lvsa::Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(CudaArguments, DtypeErrorListsTheInstantiatedDtypes) {
  EXPECT_EQ(error_of(lvsa::DType::F32, 64),
            "lvsa: cuda attention: q has dtype float32; the CUDA kernels take float16 or bfloat16");
}

TEST(CudaArguments, HeadDimErrorListsTheInstantiatedHeadDims) {
  EXPECT_EQ(error_of(lvsa::DType::BF16, 96),
            "lvsa: cuda attention: head_dim (q.shape[3]) is 96; the CUDA kernels support 64 and 128");
}

}  // namespace
