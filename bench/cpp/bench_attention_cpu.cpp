// Fast CPU path on a scaled-down Wan geometry (T=81, P=48, H=2, D=64): the sparse default
// pattern (R=21) against a dense plan (keyframe_interval=1) run by the same code. The
// sparse/dense time ratio should approach the pattern's density; compare the two runs'
// "GFLOP/s" counters (attended work per second): equal rates mean perfect scaling.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "lvsa/attention.hpp"

namespace {

constexpr int kFrames = 81, kTokens = 48, kHeads = 2, kDim = 64;

void BM_AttentionCpu(benchmark::State& state) {
  const auto dtype = lvsa::DType(state.range(0));
  const bool dense = state.range(1) != 0;
  const int threads = int(state.range(2));
  const lvsa::Geometry g{kFrames, kTokens, 0, lvsa::EncoderSide::None};
  lvsa::PatternConfig config;
  if (dense) config.keyframe_interval = 1;
  const auto plan = lvsa::make_plan(g, config, 0);

  const int64_t S = g.seq_len(), n = S * kHeads * kDim;
  const size_t bytes = dtype == lvsa::DType::F32 ? 4 : 2;
  // Any bit pattern of a small-exponent number works as input; keep values O(1).
  std::vector<uint8_t> q(n * bytes), k(n * bytes), v(n * bytes), out(n * bytes);
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  for (auto* buf : {&q, &k, &v})
    for (int64_t i = 0; i < n; ++i) {
      const float x = uni(rng);
      if (bytes == 4) {
        reinterpret_cast<float*>(buf->data())[i] = x;
      } else {
        // Truncated bf16 or a fixed half pattern; the value distribution is irrelevant
        // to speed as long as it is finite.
        uint32_t u;
        std::memcpy(&u, &x, 4);
        reinterpret_cast<uint16_t*>(buf->data())[i] =
            dtype == lvsa::DType::BF16 ? uint16_t(u >> 16) : uint16_t(0x3800 | (u & 0x83ff));
      }
    }
  auto ref = [&](std::vector<uint8_t>& buf) {
    lvsa::TensorRef t;
    t.data = buf.data();
    t.dtype = dtype;
    const int64_t shape[4] = {1, S, kHeads, kDim}, stride[4] = {S * kHeads * kDim, kHeads * kDim, kDim, 1};
    for (int i = 0; i < 4; ++i) t.shape[i] = shape[i], t.stride[i] = stride[i];
    return t;
  };
  lvsa::AttentionParams p;
  p.q = ref(q);
  p.k = ref(k);
  p.v = ref(v);
  p.out = ref(out);

  for (auto _ : state) {
    lvsa::attention_cpu(plan.ranges, p, threads);
    benchmark::DoNotOptimize(out.data());
  }
  const auto work = lvsa::estimate_work(plan.ranges, kHeads, kDim);
  state.counters["density"] = work.density();
  state.counters["GFLOP/s"] = benchmark::Counter(work.sparse_flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Args: dtype (0 fp32, 1 fp16, 2 bf16), dense plan, threads.
BENCHMARK(BM_AttentionCpu)
    ->ArgNames({"dtype", "dense", "threads"})
    ->ArgsProduct({{0, 2}, {0, 1}, {1}})
    ->Args({1, 0, 1})
    ->Args({0, 0, 0})
    ->Args({0, 1, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
