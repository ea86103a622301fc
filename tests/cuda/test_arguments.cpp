// The CUDA entry point's argument errors name what this build's instantiations cover (the
// dtypes and head dims are read from the generated kernel table). These checks run before any
// CUDA call, so no GPU is needed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "host_launch.hpp"
#include "lvsa/cuda.hpp"
#include "lvsa/plan.hpp"

namespace {

using lvsa_test::error_of;
using lvsa_test::params_for;

std::string error_of(lvsa::DType dtype, int head_dim) {
  const lvsa::Geometry g{4, 16, 0, lvsa::EncoderSide::None};
  const lvsa::StepPlan plan = lvsa::make_plan(g, lvsa::PatternConfig{}, 0);
  std::vector<float> storage;
  const lvsa::AttentionParams p = params_for(g, dtype, head_dim, storage);
  return error_of([&] { lvsa::cuda::attention(plan.ranges, lvsa::cuda::DevicePlanView{}, p, nullptr); });
}

TEST(CudaArguments, DtypeErrorListsTheInstantiatedDtypes) {
  EXPECT_EQ(error_of(lvsa::DType::F32, 64),
            "lvsa: cuda attention: q has dtype float32; the CUDA kernels take float16 or bfloat16");
}

TEST(CudaArguments, HeadDimErrorListsTheInstantiatedHeadDims) {
  EXPECT_EQ(error_of(lvsa::DType::BF16, 96),
            "lvsa: cuda attention: head_dim (q.shape[3]) is 96; the CUDA kernels support 64 and 128");
}

TEST(CudaArguments, Fp8ValuesNeedTmaAlignedRows) {
  // fp8 values (int8 scores, e4m3 V^T rows): the contract's layout holds, but a head stride off
  // 16 bytes is something TMA cannot read.
  const lvsa::Geometry g{4, 16, 0, lvsa::EncoderSide::None};  // 64 keys: rows of 64
  const lvsa::StepPlan plan = lvsa::make_plan(g, lvsa::PatternConfig{}, 0);
  std::vector<float> storage;
  lvsa::AttentionParams p = params_for(g, lvsa::DType::BF16, 128, storage);
  const float descale[2] = {1, 1};
  p.q.dtype = p.k.dtype = lvsa::DType::I8;
  p.v.dtype = lvsa::DType::E4M3;
  p.q_descale = p.k_descale = p.v_descale = descale;
  p.v.stride[1] = 1, p.v.stride[3] = 64, p.v.stride[2] = 128 * 64 + 8, p.v.stride[0] = 2 * (128 * 64 + 8);
  const std::string error =
      error_of([&] { lvsa::cuda::attention(plan.ranges, lvsa::cuda::DevicePlanView{}, p, nullptr); });
  if (error.find("built without the sm90 kernels") != std::string::npos) GTEST_SKIP() << error;
  EXPECT_EQ(error, "lvsa: cuda attention: v (fp8 values) stride[2] = 8200 is not a multiple of 16 (TMA's 16-byte "
                   "aligned rows)");
}

TEST(CudaArguments, ValueQuantizeNamesWhatItCannotWrite) {
  std::vector<float> storage(2 * 40 * 2 * 136);
  lvsa::cuda::ValueQuantizeParams p;
  p.x.x = storage.data();
  p.x.batch = 1, p.x.rows = 20, p.x.heads = 2, p.x.head_dim = 128;
  p.x.row_stride = 2 * 128, p.x.head_stride = 128, p.x.batch_stride = 20 * 2 * 128;
  p.out = storage.data() + 8;
  auto error = [](const lvsa::cuda::ValueQuantizeParams& q) {
    return error_of([&] { lvsa::cuda::value_quantize(q, nullptr); });
  };
  p.row_keys = 16;  // 20 keys need rows of 32
  EXPECT_EQ(error(p), "lvsa: cuda value_quantize: row_keys must be a multiple of 16 and at least 32, got 16");
  p.row_keys = 40;
  EXPECT_EQ(error(p), "lvsa: cuda value_quantize: row_keys must be a multiple of 16 and at least 32, got 40");
  p.row_keys = 32;
  p.x.head_dim = 136;
  EXPECT_EQ(error(p), "lvsa: cuda value_quantize: head_dim must be a multiple of 8 up to 128, got 136");
}

TEST(CudaArguments, NormRopeNamesWhatItCannotCompute) {
  std::vector<uint16_t> storage(4 * 2 * 128 + 8);
  lvsa::cuda::NormRopeParams p;
  p.inputs[0].x = storage.data(), p.inputs[0].out = storage.data();
  p.inputs[0].x_row_stride = 2 * 128, p.inputs[0].x_batch_stride = 4 * 2 * 128;
  p.batch = 1, p.rows = 4, p.heads = 2, p.head_dim = 128, p.group = 256;
  auto error = [](const lvsa::cuda::NormRopeParams& q) {
    return error_of([&] { lvsa::cuda::norm_rope(q, nullptr); });
  };
  lvsa::cuda::NormRopeParams q = p;
  q.input_count = 3;
  EXPECT_EQ(error(q), "lvsa: cuda norm_rope: takes 1 or 2 inputs (q and k), got 3");
  q = p;
  q.head_dim = 96, q.heads = 2, q.group = 96;
  EXPECT_EQ(error(q), "lvsa: cuda norm_rope: head_dim must be a multiple of 8 that divides 256, got 96");
  q = p;
  q.group = 96;
  EXPECT_EQ(error(q), "lvsa: cuda norm_rope: the norm group of 96 features must divide heads x head_dim = 256 and "
                      "be 8 x (a divisor of 32) or a multiple of 256 features");
  q = p;
  q.inputs[0].x_row_stride = 2 * 128 + 4;
  EXPECT_EQ(error(q), "lvsa: cuda norm_rope: input 0: x, out and weight must be 16-byte aligned, with x's row and "
                      "batch strides multiples of 8 elements");
}

}  // namespace
