// Times kernel schedules (the list in bench/cuda/CMakeLists.txt) against the shipped sm80 and
// sm90 kernels on one LVSA shape, bf16, on the same data; every output is poisoned first and
// compared with the shipped sm80 kernel's of the same head dim (verified by tests/gpu). Schedules
// with fp8 scores read Q and K rounded to e4m3 (descale 1: the data lies in [-2, 2]), those with
// int8 scores Q and K rounded to multiples of 2/127 (descale 2/127), so their difference is that
// rounding's; those with fp8 values also V as the value pre-pass writes it (descale 2/448).
//
//   lvsa_cuda_variants [T=121] [P=1560] [heads=12] [encoder=0] [reps=5] [only=name,name,...]
//
// `only` runs just the named schedules (exact names, as printed) and skips the comparison:
// for profiling them one by one (scripts/gpu_check.sh ncu).
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <tuple>
#include <utility>
#include <string>
#include <vector>

#include "common/exit_on_error.hpp"
#include "common/host.hpp"
#include "generated/fwd_kernels.hpp"
#include "generated/variant_kernels.hpp"
#include "lvsa/cuda.hpp"

namespace {

uint16_t bf16_bits(float x) {
  __nv_bfloat16 h = __float2bfloat16(x);
  return *reinterpret_cast<uint16_t*>(&h);
}
float bf16_value(uint16_t u) { return __bfloat162float(*reinterpret_cast<__nv_bfloat16*>(&u)); }

struct Variant {
  std::string name;
  int d;
  lvsa::DType score_dtype;
  lvsa::DType value_dtype;
  lvsa::cuda::Launcher launch;
  bool frame_pairs = true;  // false: sparse plans tiled frame by frame (build_fwd_params)
};

// Per head dim (in the order the variant list first names it, then 128 and 64) and family: the shipped bf16
// kernel, then that family's variants. The first sm90 kernel timed after mma.sync ones runs
// slow for about a second (docs/perf/cuda_sm90.md), so the shipped sm90 kernel is timed once
// more after its variants. The first row of a head dim, shipped sm80, is the reference.
std::vector<Variant> run_order() {
  using namespace lvsa::cuda;
  std::vector<int> dims;
  for (const KernelEntry& e : kVariantKernels)
    if (std::find(dims.begin(), dims.end(), e.head_dim) == dims.end()) dims.push_back(e.head_dim);
  for (int d : {128, 64})  // the shipped kernels are timed with no variant built too
    if (std::find(dims.begin(), dims.end(), d) == dims.end()) dims.push_back(d);
  std::vector<Variant> order;
  for (int d : dims)
    for (Family family : {Family::Sm80, Family::Sm90}) {
      const lvsa::DType bf16 = lvsa::DType::BF16, e4m3 = lvsa::DType::E4M3, i8 = lvsa::DType::I8;
      const KernelEntry* shipped = find_kernel(kFwdKernels, family, bf16, bf16, bf16, d);
      if (shipped == nullptr) continue;  // the sm90 family is not built
      const std::string prefix = family == Family::Sm90 ? "sm90" : "sm80";
      order.push_back({prefix + " shipped", d, bf16, bf16, shipped->launch});
      if (const KernelEntry* fp8 = find_kernel(kFwdKernels, family, bf16, e4m3, bf16, d))
        order.push_back({prefix + " shipped e4m3", d, e4m3, bf16, fp8->launch});
      if (const KernelEntry* int8 = find_kernel(kFwdKernels, family, bf16, i8, bf16, d))
        order.push_back({prefix + " shipped int8", d, i8, bf16, int8->launch});
      const KernelEntry* fp8v = find_kernel(kFwdKernels, family, bf16, i8, e4m3, d);
      if (fp8v) order.push_back({prefix + " shipped int8+fp8", d, i8, e4m3, fp8v->launch});
      for (const KernelEntry& e : kVariantKernels)
        if (e.family == family && e.head_dim == d)
          order.push_back({e.name, d, e.score_dtype, e.value_dtype, e.launch, e.frame_pairs});
      if (family == Family::Sm90) {
        order.push_back({prefix + " shipped, again", d, bf16, bf16, shipped->launch});
        // Query tiles of one frame each, as before tiles could hold rows of two frames.
        order.push_back({prefix + " shipped, frame runs", d, bf16, bf16, shipped->launch, false});
        if (fp8v) order.push_back({prefix + " shipped int8+fp8, frame runs", d, i8, e4m3, fp8v->launch, false});
        // The kernel without the pair code that launches without pair tiles (dense plans) run.
        const KernelEntry* single = find_kernel(kFwdKernels, family, bf16, bf16, bf16, d, false,
                                                [](const KernelEntry& e) { return e.frame_pairs ? 1.0 : 0.0; });
        if (single && !single->frame_pairs)
          order.push_back({prefix + " shipped no-pairs, frame runs", d, bf16, bf16, single->launch, false});
      }
    }
  return order;
}

}  // namespace

int main(int argc, char** argv) {
  const int T = argc > 1 ? std::atoi(argv[1]) : 121;
  const int P = argc > 2 ? std::atoi(argv[2]) : 1560;
  const int H = argc > 3 ? std::atoi(argv[3]) : 12;
  const int E = argc > 4 ? std::atoi(argv[4]) : 0;
  const int reps = argc > 5 ? std::atoi(argv[5]) : 5;
  std::vector<std::string> only;
  if (argc > 6)
    for (std::stringstream names(argv[6]); names.good();) {
      std::string name;
      std::getline(names, name, ',');
      only.push_back(name);
    }
  const int D = 128;  // buffers sized for the largest head dim
  lvsa::Geometry g{T, P, E, E ? lvsa::EncoderSide::After : lvsa::EncoderSide::None};
  lvsa::PatternConfig cfg;
  cfg.reference = E ? 33 : 21;
  const lvsa::StepPlan plan = lvsa::make_plan(g, cfg, 0);
  const int64_t S = g.seq_len(), n = S * H * D;
  double pairs = 0;
  for (int f = 0; f < T; ++f) pairs += double(P) * double(plan.ranges.attended_video_tokens(f) + E);
  pairs += double(E) * double(S);
  const double flop = 4.0 * pairs * D * H;

  // Random bf16 data generated on the host once (a small pool tiled over the tensors).
  std::vector<uint16_t> pool(1 << 22);
  uint64_t st = 0x9E3779B97F4A7C15ull;
  for (auto& x : pool) {
    st ^= st << 13; st ^= st >> 7; st ^= st << 17;
    x = bf16_bits(float(int64_t(st % 20001) - 10000) / 5000.0f);
  }
  void *q, *k, *v, *o0, *o;
  for (void** ptr : {&q, &k, &v, &o0, &o}) CHECK_CUDA(cudaMalloc(ptr, size_t(n) * 2));
  for (void* dst : {q, k, v})
    for (int64_t off = 0; off < n; off += int64_t(pool.size())) {
      // Offset the pool per tensor so q, k and v differ.
      const int64_t cnt = std::min<int64_t>(int64_t(pool.size()), n - off);
      CHECK_CUDA(cudaMemcpy(static_cast<uint16_t*>(dst) + off, pool.data() + (dst == k ? 7 : dst == v ? 13 : 0),
                    size_t(std::min<int64_t>(cnt, int64_t(pool.size()) - 13)) * 2, cudaMemcpyHostToDevice));
    }
  // e4m3 copies of q and k for the fp8-score schedules, with descale factors 1, and int8 ones
  // for the int8-score schedules, with descale factors 2/127.
  constexpr float kInt8Descale = 2.0f / 127.0f;
  void *q8, *k8, *qi8, *ki8;
  float *ones, *int8_descale;
  for (void** ptr : {&q8, &k8, &qi8, &ki8}) CHECK_CUDA(cudaMalloc(ptr, size_t(n)));
  CHECK_CUDA(cudaMalloc(&ones, size_t(H) * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&int8_descale, size_t(H) * sizeof(float)));
  {
    std::vector<uint16_t> h(static_cast<size_t>(n));
    std::vector<__nv_fp8_e4m3> h8(static_cast<size_t>(n));
    std::vector<int8_t> hi8(static_cast<size_t>(n));
    const std::vector<float> one(size_t(H), 1.0f), int8_scale(size_t(H), kInt8Descale);
    CHECK_CUDA(cudaMemcpy(ones, one.data(), one.size() * sizeof(float), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(int8_descale, int8_scale.data(), int8_scale.size() * sizeof(float), cudaMemcpyHostToDevice));
    for (auto [src, dst, dst_i8] : {std::tuple{q, q8, qi8}, std::tuple{k, k8, ki8}}) {
      CHECK_CUDA(cudaMemcpy(h.data(), src, size_t(n) * 2, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < h.size(); ++i) {
        h8[i] = __nv_fp8_e4m3(bf16_value(h[i]));
        hi8[i] = int8_t(std::clamp(std::nearbyint(bf16_value(h[i]) / kInt8Descale), -127.0f, 127.0f));
      }
      CHECK_CUDA(cudaMemcpy(dst, h8.data(), size_t(n), cudaMemcpyHostToDevice));
      CHECK_CUDA(cudaMemcpy(dst_i8, hi8.data(), size_t(n), cudaMemcpyHostToDevice));
    }
  }
  // V^T in e4m3 for the fp8-value schedules, written by the value pre-pass with descale 2/448.
  const int64_t row_keys = lvsa::value_row_keys(S);
  void* vt;
  float* v_descale;
  CHECK_CUDA(cudaMalloc(&vt, size_t(H) * D * row_keys));
  CHECK_CUDA(cudaMalloc(&v_descale, size_t(H) * sizeof(float)));
  {
    const std::vector<float> scale(size_t(H), 2.0f / 448.0f);
    CHECK_CUDA(cudaMemcpy(v_descale, scale.data(), scale.size() * sizeof(float), cudaMemcpyHostToDevice));
    lvsa::cuda::ValueQuantizeParams vq;
    vq.x.x = v;
    vq.x.batch_stride = S * H * D, vq.x.row_stride = int64_t(H) * D, vq.x.head_stride = D;
    vq.x.batch = 1, vq.x.rows = S, vq.x.heads = H, vq.x.head_dim = D;
    vq.descale = v_descale;
    vq.row_keys = row_keys;
    vq.out = vt;
    lvsa::cuda::value_quantize(vq, nullptr);
  }
  lvsa::cuda::DevicePlan dplan(T, lvsa::worst_case_capacity(T));
  dplan.upload(plan.ranges, nullptr);
  lvsa::AttentionParams ap;
  auto ref = [&](lvsa::TensorRef& t, void* data, int d, lvsa::DType dtype = lvsa::DType::BF16) {
    t.data = data; t.dtype = dtype;
    t.shape[0] = 1; t.shape[1] = S; t.shape[2] = H; t.shape[3] = d;
    t.stride[3] = 1; t.stride[2] = d; t.stride[1] = int64_t(H) * d; t.stride[0] = S * H * d;
  };
  using namespace lvsa::cuda;
  std::vector<Variant> variants = run_order();
  if (!only.empty())
    variants.erase(std::remove_if(variants.begin(), variants.end(),
                                  [&](const Variant& v) {
                                    return std::find(only.begin(), only.end(), v.name) == only.end();
                                  }),
                   variants.end());
  std::vector<uint16_t> h0(static_cast<size_t>(n)), h1(static_cast<size_t>(n));
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  std::printf("T=%d P=%d H=%d E=%d S=%lld kept TFLOP=%.2f (D=128)\n", T, P, H, E, (long long)S, flop / 1e12);
  for (size_t vi = 0; vi < variants.size(); ++vi) {
    const int d = variants[vi].d;
    // The reference is the first row of a head dim; a filtered run compares nothing.
    const bool first_of_dim = !only.empty() || vi == 0 || variants[vi - 1].d != d;
    const bool fp8 = variants[vi].score_dtype == lvsa::DType::E4M3, int8 = variants[vi].score_dtype == lvsa::DType::I8;
    ref(ap.q, fp8 ? q8 : int8 ? qi8 : q, d, variants[vi].score_dtype);
    ref(ap.k, fp8 ? k8 : int8 ? ki8 : k, d, variants[vi].score_dtype);
    ref(ap.v, v, d);
    ap.v_descale = nullptr;
    if (variants[vi].value_dtype == lvsa::DType::E4M3) {  // V^T rows of row_keys keys
      ap.v.data = vt, ap.v.dtype = lvsa::DType::E4M3;
      ap.v.stride[0] = int64_t(H) * d * row_keys, ap.v.stride[1] = 1, ap.v.stride[2] = d * row_keys;
      ap.v.stride[3] = row_keys;
      ap.v_descale = v_descale;
    }
    ap.q_descale = ap.k_descale = fp8 ? ones : int8 ? int8_descale : nullptr;
    ref(ap.out, first_of_dim ? o0 : o, d);
    const double vflop = flop * d / D;
    const FwdParams p = build_fwd_params(plan.ranges, dplan.view(), ap, false, variants[vi].frame_pairs);
    CHECK_CUDA(cudaMemset(first_of_dim ? o0 : o, 0xFF, size_t(n) * 2));  // NaN: every element must be written
    variants[vi].launch(p, nullptr);
    CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<float> ms;
    for (int r = 0; r < reps; ++r) {
      CHECK_CUDA(cudaEventRecord(a));
      variants[vi].launch(p, nullptr);
      CHECK_CUDA(cudaEventRecord(b));
      CHECK_CUDA(cudaEventSynchronize(b));
      float t;
      CHECK_CUDA(cudaEventElapsedTime(&t, a, b));
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    double diff = 0;
    if (!first_of_dim) {
      CHECK_CUDA(cudaMemcpy(h0.data(), o0, size_t(n) * 2, cudaMemcpyDeviceToHost));
      CHECK_CUDA(cudaMemcpy(h1.data(), o, size_t(n) * 2, cudaMemcpyDeviceToHost));
      for (int64_t i = 0; i < n * d / D; i += 7) {
        const double e = std::fabs(double(bf16_value(h0[size_t(i)])) - double(bf16_value(h1[size_t(i)])));
        diff = std::isnan(e) ? INFINITY : std::max(diff, e);
      }
    }
    const float med = ms[ms.size() / 2];
    std::printf("variant %2zu %-24s D=%3d median %8.2f ms  min %8.2f  %6.1f TFLOP/s kept  maxdiff vs sm80 %.2e\n",
                vi, variants[vi].name.c_str(), d, med, ms.front(), vflop / (med * 1e-3) / 1e12, diff);
  }
  return 0;
}
