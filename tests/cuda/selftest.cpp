// Standalone GPU check of the CUDA kernels against the exact CPU reference, without Python:
// the program compute-sanitizer runs (memcheck, racecheck) and a quick smoke test.
//
//   lvsa_cuda_selftest [--small] [--every-kernel | --kernel NAME | --list]
//     exit status 0 only when every case passes. --every-kernel: each case also runs on every
//     kernel of the family that takes it (LaunchOptions::kernel), not only on the one the cost
//     model picks, so that widths no case here is picked for are checked too; --kernel NAME:
//     only on that kernel (e.g. a new instantiation, under compute-sanitizer). --list: which
//     cases each kernel of the build takes, without a GPU; exit status 1 if one takes none
//     (CTest runs it, so that a new instantiation cannot go unchecked by --every-kernel).
//   (LVSA_CUDA_KERNEL=auto|sm80|sm90 picks the kernel family, as in the Python package)
//
// Each case draws fresh random inputs, poisons the outputs with NaN, runs the kernel and
// compares out and lse with lvsa::attention_reference. The last case captures the call in a
// CUDA graph, uploads the next step's plan and replays it. Quantised-score cases (sm90 only) give
// the kernel q and k in e4m3 or int8 with per-head descale factors, and the reference their
// dequantised values; fp8-value cases also v, as the value pre-pass lays it out (and check that
// the pre-pass, lvsa::cuda::value_quantize, writes exactly those bytes).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/exit_on_error.hpp"
#include "generated/fwd_kernels.hpp"
#include "host_launch.hpp"
#include "lvsa/attention.hpp"
#include "lvsa/cuda.hpp"
#include "lvsa/plan.hpp"

namespace {

struct Case {
  std::string name;
  lvsa::Geometry g;
  lvsa::PatternConfig cfg;
  int64_t step = 0;
  int B = 1, Hq = 2, Hkv = 2, D = 64;
  lvsa::DType dtype = lvsa::DType::BF16;
  bool video_only = false;
  bool packed_qkv = false;  // q/k/v are slices of one [B, S, 3, H, D] tensor
  // E4M3 or I8: q and k to the kernel quantised, with per-head scales (not with packed_qkv);
  // any other dtype: q and k in `dtype`.
  lvsa::DType scores = lvsa::DType::F32;
  bool fp8_values = false;     // v in e4m3 too (with int8 scores)
  std::vector<int32_t> valid;  // per batch, empty: all valid
};

uint16_t to_bits(float x, lvsa::DType t) {
  if (t == lvsa::DType::BF16) {
    __nv_bfloat16 h = __float2bfloat16(x);
    uint16_t u;
    std::memcpy(&u, &h, 2);
    return u;
  }
  __half h = __float2half(x);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}

float from_bits(uint16_t u, lvsa::DType t) {
  if (t == lvsa::DType::BF16) {
    __nv_bfloat16 h;
    std::memcpy(&h, &u, 2);
    return __bfloat162float(h);
  }
  __half h;
  std::memcpy(&h, &u, 2);
  return __half2float(h);
}

struct Buffers {
  std::vector<uint16_t> qkv_host, q_host, k_host, v_host;
  lvsa::TensorRef q, k, v, out;  // host views for the reference
};

bool run_case(const Case& c, std::mt19937& rng, bool graph_step_change, const lvsa::cuda::LaunchOptions& launch) {
  const lvsa::StepPlan plan = lvsa::make_plan(c.g, c.cfg, c.step);
  const lvsa::KeyRanges& r = plan.ranges;
  const int64_t S = c.g.seq_len(), Sq = c.video_only ? c.g.video_tokens() : S;
  const int64_t B = c.B, Hq = c.Hq, Hkv = c.Hkv, D = c.D;
  std::normal_distribution<float> normal(0.0f, 1.0f);

  // Host tensors. Packed: one [B, S, Hq + 2 Hkv, D] buffer; q/k/v are head slices of it.
  const int64_t Htot = c.packed_qkv ? Hq + 2 * Hkv : 0;
  std::vector<uint16_t> packed, qh, kh, vh;
  auto fill = [&](std::vector<uint16_t>& v, int64_t n) {
    v.resize(size_t(n));
    for (auto& x : v) x = to_bits(normal(rng), c.dtype);
  };
  lvsa::TensorRef q{}, k{}, v{}, out{};
  for (lvsa::TensorRef* t : {&q, &k, &v, &out}) t->dtype = c.dtype;
  auto set_dense = [](lvsa::TensorRef& t, int64_t b, int64_t s, int64_t h, int64_t d) {
    t.shape[0] = b; t.shape[1] = s; t.shape[2] = h; t.shape[3] = d;
    t.stride[3] = 1; t.stride[2] = d; t.stride[1] = h * d; t.stride[0] = s * h * d;
  };
  if (c.packed_qkv) {
    fill(packed, B * S * Htot * D);
    for (lvsa::TensorRef* t : {&q, &k, &v}) {
      const int64_t h = t == &q ? Hq : Hkv;
      set_dense(*t, B, t == &q ? Sq : S, h, D);
      t->stride[2] = D; t->stride[1] = Htot * D; t->stride[0] = S * Htot * D;
    }
    // Video-only queries are the video tokens of the packed sequence.
    const int64_t q_first = c.video_only ? c.g.video_begin() : 0;
    q.data = packed.data() + q_first * Htot * D;
    k.data = packed.data() + Hq * D;
    v.data = packed.data() + (Hq + Hkv) * D;
  } else {
    fill(qh, B * Sq * Hq * D);
    fill(kh, B * S * Hkv * D);
    fill(vh, B * S * Hkv * D);
    set_dense(q, B, Sq, Hq, D);
    set_dense(k, B, S, Hkv, D);
    set_dense(v, B, S, Hkv, D);
    q.data = qh.data(); k.data = kh.data(); v.data = vh.data();
  }
  set_dense(out, B, Sq, Hq, D);
  std::vector<uint16_t> ref_out(size_t(B * Sq * Hq * D));
  std::vector<float> ref_lse(size_t(B * Hq * Sq));
  out.data = ref_out.data();

  lvsa::AttentionParams hp;
  hp.q = q; hp.k = k; hp.v = v; hp.out = out;
  hp.lse = ref_lse.data();
  hp.encoder_valid = c.valid.empty() ? nullptr : c.valid.data();

  // Device copies with the same strides.
  auto to_device = [&](const std::vector<uint16_t>& h) {
    void* d = nullptr;
    CHECK_CUDA(cudaMalloc(&d, std::max<size_t>(2, h.size() * 2)));
    if (!h.empty()) CHECK_CUDA(cudaMemcpy(d, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
    return d;
  };
  void *d_packed = nullptr, *d_q = nullptr, *d_k = nullptr, *d_v = nullptr, *d_out = nullptr;
  lvsa::AttentionParams dp = hp;
  if (c.packed_qkv) {
    d_packed = to_device(packed);
    auto rebase = [&](const void* hptr) {
      return static_cast<void*>(static_cast<uint16_t*>(d_packed) +
                                (static_cast<const uint16_t*>(hptr) - packed.data()));
    };
    dp.q.data = rebase(q.data); dp.k.data = rebase(k.data); dp.v.data = rebase(v.data);
  } else {
    d_q = to_device(qh); d_k = to_device(kh); d_v = to_device(vh);
    dp.q.data = d_q; dp.k.data = d_k; dp.v.data = d_v;
  }
  // Quantised scores: q and k rounded to e4m3 or int8 with one factor per (batch, head), as
  // lvsa.backends.quantized_scores does; the reference reads the dequantised values (rounded to
  // the 16-bit dtype).
  void *d_q8 = nullptr, *d_k8 = nullptr;
  float *d_q_descale = nullptr, *d_k_descale = nullptr;
  auto quantize = [&](std::vector<uint16_t>& h, int64_t heads, void*& d_values, float*& d_descale) {
    const int64_t rows = int64_t(h.size()) / (B * heads * D);
    std::vector<float> descale(size_t(B * heads), 0.0f);
    for (size_t i = 0; i < h.size(); ++i) {
      const size_t bh = size_t((int64_t(i) / (rows * heads * D)) * heads + (int64_t(i) / D) % heads);
      descale[bh] = std::max(descale[bh], std::fabs(from_bits(h[i], c.dtype)));
    }
    const bool int8 = c.scores == lvsa::DType::I8;
    for (float& s : descale) s = std::max(s, 1e-30f) / (int8 ? 127.0f : 448.0f);
    std::vector<uint8_t> values(h.size());
    for (size_t i = 0; i < h.size(); ++i) {
      const float s = descale[size_t((int64_t(i) / (rows * heads * D)) * heads + (int64_t(i) / D) % heads)];
      const float x = from_bits(h[i], c.dtype) / s;
      float value;
      if (int8) {
        const auto v = int8_t(std::clamp(std::nearbyint(x), -127.0f, 127.0f));
        values[i] = uint8_t(v);
        value = float(v);
      } else {
        const __nv_fp8_e4m3 v(x);
        values[i] = v.__x;
        value = float(v);
      }
      h[i] = to_bits(value * s, c.dtype);
    }
    CHECK_CUDA(cudaMalloc(&d_values, values.size()));
    CHECK_CUDA(cudaMemcpy(d_values, values.data(), values.size(), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMalloc(&d_descale, descale.size() * 4));
    CHECK_CUDA(cudaMemcpy(d_descale, descale.data(), descale.size() * 4, cudaMemcpyHostToDevice));
  };
  if (lvsa::is_quantized_score(c.scores)) {
    quantize(qh, Hq, d_q8, d_q_descale);
    quantize(kh, Hkv, d_k8, d_k_descale);
    dp.q.data = d_q8; dp.k.data = d_k8;
    dp.q.dtype = dp.k.dtype = c.scores;
    dp.q_descale = d_q_descale;
    dp.k_descale = d_k_descale;
  }
  CHECK_CUDA(cudaMalloc(&d_out, ref_out.size() * 2));
  float* d_lse = nullptr;
  CHECK_CUDA(cudaMalloc(&d_lse, ref_lse.size() * 4));
  int32_t* d_valid = nullptr;
  if (!c.valid.empty()) {
    CHECK_CUDA(cudaMalloc(&d_valid, c.valid.size() * 4));
    CHECK_CUDA(cudaMemcpy(d_valid, c.valid.data(), c.valid.size() * 4, cudaMemcpyHostToDevice));
  }
  // fp8 values: v rounded to e4m3 with one factor per (batch, head) over its unpadded tokens, as
  // V^T rows of `row` keys permuted within groups of 16, padding and the tail zero
  // (AttentionParams::v_descale); the reference reads the dequantised values.
  void* d_vt = nullptr;
  float* d_v_descale = nullptr;
  bool prepass_ok = true;
  if (c.fp8_values) {
    const int64_t row = lvsa::value_row_keys(S);
    auto padded = [&](int64_t b, int64_t key) {
      if (c.valid.empty() || c.g.encoder_len == 0) return false;
      const int64_t first = c.g.encoder_begin() + c.valid[size_t(b)];
      return key >= first && key < c.g.encoder_begin() + c.g.encoder_len;
    };
    auto at = [&](int64_t b, int64_t key, int64_t h, int64_t d) { return size_t(((b * S + key) * Hkv + h) * D + d); };
    std::vector<float> descale(size_t(B * Hkv), 0.0f);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t key = 0; key < S; ++key)
        if (!padded(b, key))
          for (int64_t h = 0; h < Hkv; ++h)
            for (int64_t d = 0; d < D; ++d)
              descale[size_t(b * Hkv + h)] =
                  std::max(descale[size_t(b * Hkv + h)], std::fabs(from_bits(vh[at(b, key, h, d)], c.dtype)));
    for (float& s : descale) s = std::max(s, 1e-30f) / 448.0f;
    std::vector<uint8_t> vt(size_t(B * Hkv * D * row), 0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hkv; ++h) {
        const float inverse = 1.0f / descale[size_t(b * Hkv + h)];
        for (int64_t j = 0; j < row; ++j) {
          const int pos = int(j % 16);
          const int64_t key = j - pos + 8 * ((pos & 3) >> 1) + 2 * (pos >> 2) + (pos & 1);
          if (key >= S || padded(b, key)) continue;
          for (int64_t d = 0; d < D; ++d) {
            const __nv_fp8_e4m3 e(from_bits(vh[at(b, key, h, d)], c.dtype) * inverse);
            vt[size_t(((b * Hkv + h) * D + d) * row + j)] = e.__x;
            vh[at(b, key, h, d)] = to_bits(float(e) * descale[size_t(b * Hkv + h)], c.dtype);
          }
        }
      }
    CHECK_CUDA(cudaMalloc(&d_vt, vt.size()));
    CHECK_CUDA(cudaMemcpy(d_vt, vt.data(), vt.size(), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMalloc(&d_v_descale, descale.size() * 4));
    CHECK_CUDA(cudaMemcpy(d_v_descale, descale.data(), descale.size() * 4, cudaMemcpyHostToDevice));
    // The pre-pass on the original bf16 v must write the same bytes.
    lvsa::cuda::ValueQuantizeParams vq;
    vq.x.x = d_v;
    vq.x.batch_stride = S * Hkv * D, vq.x.row_stride = Hkv * D, vq.x.head_stride = D;
    vq.x.batch = B, vq.x.rows = S, vq.x.heads = int(Hkv), vq.x.head_dim = int(D);
    vq.x.encoder_valid = d_valid;
    vq.x.encoder_begin = c.g.encoder_begin(), vq.x.encoder_len = c.g.encoder_len;
    vq.descale = d_v_descale;
    vq.row_keys = row;
    void* d_prepass = nullptr;
    CHECK_CUDA(cudaMalloc(&d_prepass, vt.size()));
    CHECK_CUDA(cudaMemset(d_prepass, 0x7f, vt.size()));  // NaN poison (e4m3 0x7f)
    vq.out = d_prepass;
    lvsa::cuda::value_quantize(vq, nullptr);
    std::vector<uint8_t> prepass(vt.size());
    CHECK_CUDA(cudaMemcpy(prepass.data(), d_prepass, prepass.size(), cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaFree(d_prepass));
    const auto mismatches = std::inner_product(prepass.begin(), prepass.end(), vt.begin(), int64_t(0), std::plus<>(),
                                               [](uint8_t a, uint8_t b) { return int64_t(a != b); });
    prepass_ok = mismatches == 0;
    if (!prepass_ok) std::printf("  value_quantize: %lld of %zu bytes differ\n", (long long)mismatches, vt.size());
    dp.v.data = d_vt;
    dp.v.dtype = lvsa::DType::E4M3;
    dp.v.stride[0] = Hkv * D * row, dp.v.stride[1] = 1, dp.v.stride[2] = D * row, dp.v.stride[3] = row;
    dp.v_descale = d_v_descale;
  }
  dp.out.data = d_out;
  dp.lse = d_lse;
  dp.encoder_valid = d_valid;
  CHECK_CUDA(cudaMemset(d_out, 0xff, ref_out.size() * 2));  // NaN poison
  CHECK_CUDA(cudaMemset(d_lse, 0xff, ref_lse.size() * 4));

  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const int64_t cap = lvsa::worst_case_capacity(c.g.frames);
  lvsa::cuda::DevicePlan dplan(c.g.frames, cap);
  const lvsa::KeyRanges* checked = &r;
  lvsa::StepPlan next;
  if (!graph_step_change) {
    dplan.upload(r, stream);
    lvsa::cuda::attention(r, dplan.view(), dp, stream, launch);
  } else {
    // Capture at step c.step, then make the next step's plan current and replay: the graph
    // must compute the new pattern without being re-captured.
    next = lvsa::make_plan(c.g, c.cfg, c.step + 1);
    dplan.upload(r, stream);
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    lvsa::cuda::attention(r, dplan.view(), dp, stream, launch);
    CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    CHECK_CUDA(cudaGraphLaunch(exec, stream));
    dplan.upload(next.ranges, stream);
    CHECK_CUDA(cudaMemsetAsync(d_out, 0xff, ref_out.size() * 2, stream));
    CHECK_CUDA(cudaGraphLaunch(exec, stream));
    CHECK_CUDA(cudaStreamSynchronize(stream));
    CHECK_CUDA(cudaGraphExecDestroy(exec));
    CHECK_CUDA(cudaGraphDestroy(graph));
    checked = &next.ranges;
  }
  CHECK_CUDA(cudaStreamSynchronize(stream));
  CHECK_CUDA(cudaGetLastError());

  std::vector<uint16_t> got(ref_out.size());
  std::vector<float> got_lse(ref_lse.size());
  CHECK_CUDA(cudaMemcpy(got.data(), d_out, got.size() * 2, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(got_lse.data(), d_lse, got_lse.size() * 4, cudaMemcpyDeviceToHost));

  lvsa::attention_reference(*checked, hp);

  double num = 0, den = 0, max_abs = 0, lse_max = 0;
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double a = from_bits(got[i], c.dtype), b = from_bits(ref_out[i], c.dtype);
    if (!std::isfinite(a)) { ++bad; continue; }
    num += (a - b) * (a - b);
    den += b * b;
    max_abs = std::max(max_abs, std::fabs(a - b));
  }
  for (size_t i = 0; i < got_lse.size(); ++i) {
    const float a = got_lse[i], b = ref_lse[i];
    if (std::isinf(b)) {
      if (!(std::isinf(a) && a < 0)) ++bad;
    } else if (!std::isfinite(a)) {
      ++bad;
    } else {
      lse_max = std::max(lse_max, double(std::fabs(a - b)));
    }
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  // fp8 values: P in e4m3 rounds each probability by up to 2^-4 (3.6 % r.m.s.); lse is unaffected.
  const double tol = c.fp8_values ? 6e-2 : c.dtype == lvsa::DType::BF16 ? 1e-2 : 3e-3;
  const bool ok = bad == 0 && rel < tol && lse_max < 2e-2 && prepass_ok;
  std::printf("%-34s %s rel_l2=%.2e max_abs=%.2e lse_max=%.2e nonfinite=%lld\n", c.name.c_str(),
              ok ? "PASS" : "FAIL", rel, max_abs, lse_max, (long long)bad);

  CHECK_CUDA(cudaStreamDestroy(stream));
  for (void* p : {d_packed, d_q, d_k, d_v, d_out, static_cast<void*>(d_lse), static_cast<void*>(d_valid), d_q8, d_k8,
                  static_cast<void*>(d_q_descale), static_cast<void*>(d_k_descale), d_vt, static_cast<void*>(d_v_descale)})
    if (p) CHECK_CUDA(cudaFree(p));
  return ok;
}

// Whether kernel `e` takes case `c`: its dtypes and head dim, and, for a kernel without the
// frame-pair code, a launch without query tiles of two frames (build_fwd_params over host memory).
bool takes(const lvsa::cuda::KernelEntry& e, const Case& c) {
  const lvsa::DType scores = lvsa::is_quantized_score(c.scores) ? c.scores : c.dtype;
  if (!e.takes(c.dtype, scores, c.fp8_values ? lvsa::DType::E4M3 : c.dtype, c.D)) return false;
  return e.frame_pairs || !lvsa_test::host_launch(c.g, c.cfg, c.step, c.dtype, c.D).p.frame_pairs;
}

}  // namespace

int main(int argc, char** argv) {
  bool small = false, every_kernel = false, list = false;
  std::string only_kernel;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--small") small = true;
    else if (arg == "--every-kernel") every_kernel = true;
    else if (arg == "--kernel" && i + 1 < argc) only_kernel = argv[++i];
    else if (arg == "--list") list = true;
    else {
      std::fprintf(stderr, "usage: lvsa_cuda_selftest [--small] [--every-kernel | --kernel NAME | --list]\n");
      return 2;
    }
  }
  if (!list && lvsa::cuda::device_count() == 0) {
    std::fprintf(stderr, "lvsa_cuda_selftest: no CUDA device\n");
    return 2;
  }
  using lvsa::DType;
  using lvsa::EncoderSide;
  std::vector<Case> cases;
  auto add = [&](std::string name, int T, int P, int E, EncoderSide side, int W, int kfi) -> Case& {
    Case c;
    c.name = std::move(name);
    c.g.frames = T; c.g.tokens_per_frame = P; c.g.encoder_len = E; c.g.encoder_side = side;
    c.cfg.window = W; c.cfg.keyframe_interval = kfi; c.cfg.reference = 5;
    cases.push_back(c);
    return cases.back();
  };
  add("wan-like T9 P37 bf16 d64", 9, 37, 0, EncoderSide::None, 1, lvsa::kAutoKeyframes);
  { auto& c = add("wan-like T9 P37 fp16 d128", 9, 37, 0, EncoderSide::None, 1, lvsa::kAutoKeyframes); c.dtype = DType::F16; c.D = 128; }
  { auto& c = add("hunyuan-like enc after, padded B2", 7, 40, 29, EncoderSide::After, 1, 3); c.B = 2; c.valid = {11, 29}; c.D = 128; }
  { auto& c = add("cogvideox-like enc before", 6, 33, 20, EncoderSide::Before, 1, 2); c.valid = {7}; }
  { auto& c = add("video-only queries, enc after", 6, 30, 17, EncoderSide::After, 1, 2); c.video_only = true; c.valid = {5}; }
  { auto& c = add("GQA 4:1 packed qkv", 8, 50, 0, EncoderSide::None, 1, 3); c.Hq = 4; c.Hkv = 1; c.packed_qkv = true; c.D = 128; }
  // Intervals of 600 keys: full K/V tiles (TMA in the sm90 kernel) read by two query heads.
  { auto& c = add("GQA 2:1 P=200, full key tiles", 6, 200, 0, EncoderSide::None, 1, 3); c.Hq = 2; c.Hkv = 1; c.D = 128; }
  // Frames of >= 128 rows: query tiles with rows of two frames (the union of their keys, each
  // frame's rows masked to its own), 150 = 128 + 22 and 130 = 128 + 2 rows a frame.
  { auto& c = add("frame pairs P=150 d128", 9, 150, 0, EncoderSide::None, 1, lvsa::kAutoKeyframes); c.D = 128; c.step = 1; }
  { auto& c = add("frame pairs P=130 fp16 enc after B2", 7, 130, 29, EncoderSide::After, 1, 3); c.dtype = DType::F16; c.B = 2; c.valid = {11, 29}; }
  { auto& c = add("frame pairs P=140 W=2 no-expand enc before", 11, 140, 20, EncoderSide::Before, 2, 4); c.cfg.expand = false; c.valid = {13}; c.D = 128; c.step = 2; }
  { auto& c = add("frame pairs P=150 video-only GQA 2:1", 8, 150, 17, EncoderSide::After, 1, 3); c.video_only = true; c.Hq = 4; c.Hkv = 2; c.D = 128; }
  // At D = 64 the kernels with the pair code span intervals: pair tiles and spans together.
  { auto& c = add("frame pairs P=150 d64 enc before", 9, 150, 20, EncoderSide::Before, 1, 3); c.valid = {7}; c.step = 1; }
  add("W=0 globals only", 10, 25, 0, EncoderSide::None, 0, 3);
  add("kfi=1 dense", 6, 41, 0, EncoderSide::None, 1, 1);
  { auto& c = add("kfi=1 dense fp16", 6, 41, 0, EncoderSide::None, 1, 1); c.dtype = DType::F16; }
  { auto& c = add("T=1 H=1 enc all padded", 1, 150, 40, EncoderSide::After, 1, lvsa::kAutoKeyframes); c.Hq = c.Hkv = 1; c.valid = {0}; }
  if (!small) {
    { auto& c = add("P=300 T=12 enc before 200 (B2)", 12, 300, 200, EncoderSide::Before, 2, 4); c.B = 2; c.valid = {200, 57}; c.D = 128; }
  }
  // LVSA_CUDA_KERNEL as in the Python package, so that sanitizer runs can cover either family.
  lvsa::cuda::LaunchOptions launch;
  // --list covers both families' kernels, so it takes the sm90 family's cases (a superset).
  launch.family = list ? lvsa::cuda::KernelFamily::Sm90
                       : lvsa::cuda::choose_kernel_family(0, std::getenv("LVSA_CUDA_KERNEL"));
  if (launch.family == lvsa::cuda::KernelFamily::Sm90)  // quantised scores: the sm90 kernels only
    for (lvsa::DType scores : {lvsa::DType::E4M3, lvsa::DType::I8}) {
      const std::string name = scores == lvsa::DType::I8 ? "int8 scores " : "fp8 scores ";
      { auto& c = add(name + "wan-like T9 P37", 9, 37, 0, EncoderSide::None, 1, lvsa::kAutoKeyframes); c.D = 128; c.scores = scores; }
      { auto& c = add(name + "enc after, padded B2", 7, 40, 29, EncoderSide::After, 1, 3); c.B = 2; c.valid = {11, 29}; c.D = 128; c.scores = scores; }
      { auto& c = add(name + "GQA 2:1 P=200, full tiles", 6, 200, 0, EncoderSide::None, 1, 3); c.Hq = 2; c.Hkv = 1; c.D = 128; c.scores = scores; }
      { auto& c = add(name + "frame pairs P=150", 9, 150, 0, EncoderSide::None, 1, lvsa::kAutoKeyframes); c.D = 128; c.scores = scores; c.step = 1; }
    }
  if (launch.family == lvsa::cuda::KernelFamily::Sm90) {  // fp8 values, with int8 scores
    auto fp8v = [&](Case& c) { c.D = 128; c.scores = DType::I8; c.fp8_values = true; };
    // Frames of 37 keys: every interval starts off a multiple of 16 (masked tile heads).
    fp8v(add("int8+fp8 values wan-like T9 P37", 9, 37, 0, EncoderSide::None, 1, lvsa::kAutoKeyframes));
    { auto& c = add("int8+fp8 values enc after, padded B2", 7, 40, 29, EncoderSide::After, 1, 3); c.B = 2; c.valid = {11, 29}; fp8v(c); }
    { auto& c = add("int8+fp8 values enc before, padded", 6, 33, 20, EncoderSide::Before, 1, 2); c.valid = {7}; fp8v(c); }
    { auto& c = add("int8+fp8 values GQA 2:1 P=200", 6, 200, 0, EncoderSide::None, 1, 3); c.Hq = 2; c.Hkv = 1; fp8v(c); }
    { auto& c = add("int8+fp8 values video-only queries", 6, 30, 17, EncoderSide::After, 1, 2); c.video_only = true; c.valid = {5}; fp8v(c); }
    { auto& c = add("int8+fp8 values frame pairs P=150", 9, 150, 29, EncoderSide::After, 1, 3); c.valid = {11}; c.step = 1; fp8v(c); }
  }
  if (list) {
    bool covered = true;
    for (const lvsa::cuda::KernelEntry& e : lvsa::cuda::kFwdKernels) {
      const auto n = std::count_if(cases.begin(), cases.end(), [&](const Case& c) { return takes(e, c); });
      std::printf("%-32s takes %lld cases\n", e.name, (long long)n);
      covered &= n > 0;
    }
    return covered ? 0 : 1;
  }
  std::printf("kernel family %s\n", launch.family == lvsa::cuda::KernelFamily::Sm90 ? "sm90" : "sm80");
  std::mt19937 rng(12345);
  bool all = true;
  if (only_kernel.empty())
    for (const Case& c : cases) all &= run_case(c, rng, false, launch);
  if (every_kernel || !only_kernel.empty()) {
    int runs = 0;
    for (const lvsa::cuda::KernelEntry& e : lvsa::cuda::kFwdKernels) {
      if (e.family != launch.family || (!only_kernel.empty() && only_kernel != e.name)) continue;
      lvsa::cuda::LaunchOptions named = launch;
      named.kernel = e.name;
      for (const Case& c : cases)
        if (takes(e, c)) {
          Case on_kernel = c;
          on_kernel.name = std::string(e.name) + ": " + c.name;
          all &= run_case(on_kernel, rng, false, named);
          ++runs;
        }
    }
    if (runs == 0) {  // --kernel: a name of the other family, or none of this build
      std::printf("no kernel of this family named '%s' takes a case\n", only_kernel.c_str());
      all = false;
    }
  }
  // Graph capture + replay across a step change (rotating keyframes: offsets differ).
  if (only_kernel.empty()) {
    Case c;
    c.name = "graph replay across step change";
    c.g.frames = 11; c.g.tokens_per_frame = 45; c.cfg.window = 1; c.cfg.keyframe_interval = 3;
    c.cfg.reference = 5; c.D = 128;
    all &= run_case(c, rng, true, launch);
    c.name = "graph replay, frame pairs P=150";
    c.g.tokens_per_frame = 150;
    all &= run_case(c, rng, true, launch);
  }
  std::printf("%s\n", all ? "ALL PASS" : "SOME FAILED");
  return all ? 0 : 1;
}
