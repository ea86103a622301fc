// Cost of building one step's plan (frame pattern + key ranges); target: well under 1 ms
// for T = 121, P = 1560.
#include <benchmark/benchmark.h>

#include "lvsa/plan.hpp"

static void BM_MakePlan(benchmark::State& state) {
  const lvsa::Geometry g{int(state.range(0)), 1560, 0, lvsa::EncoderSide::None};
  int64_t step = 0;
  for (auto _ : state) {
    auto plan = lvsa::make_plan(g, {}, step++);
    benchmark::DoNotOptimize(plan.ranges.range_begin.data());
  }
}
BENCHMARK(BM_MakePlan)->Arg(21)->Arg(81)->Arg(121)->Arg(481)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
