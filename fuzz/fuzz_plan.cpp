// libFuzzer target for the planner: arbitrary configurations must either plan or raise
// lvsa::Error, never crash, hang or break the plan's invariants.
//   ./build-fuzz/fuzz/lvsa_fuzz_plan -max_total_time=300
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "lvsa/plan.hpp"

namespace {

template <class T>
T take(const uint8_t*& data, size_t& size) {
  T value{};
  const size_t n = size < sizeof(T) ? size : sizeof(T);
  std::memcpy(&value, data, n);
  data += n;
  size -= n;
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lvsa::PatternConfig c;
  // Frame counts are kept to a few thousand so each input runs in microseconds; the
  // arithmetic bounds are exercised by the other fields, which take any int.
  const int frames = int(take<uint16_t>(data, size) % 4096) - 8;
  c.window = take<int32_t>(data, size);
  c.n_first = take<int32_t>(data, size);
  c.reference = take<int32_t>(data, size);
  c.keyframe_interval = take<int32_t>(data, size);
  c.scale = take<double>(data, size);
  const uint8_t flags = take<uint8_t>(data, size);
  c.expand = flags & 1;
  c.rotate = flags & 2;
  const int64_t step = take<int64_t>(data, size);
  const lvsa::Geometry g{frames, int(take<uint16_t>(data, size) % 64) - 1,
                         int(take<uint16_t>(data, size) % 64) - 1,
                         lvsa::EncoderSide(int(flags >> 2) % 4)};
  try {
    const auto plan = lvsa::make_plan(g, c, step);
    const auto& p = plan.pattern;
    for (int f = 0; f < p.frames; ++f) {
      if (p.kfi == 1 && plan.ranges.attended_video_tokens(f) != g.video_tokens()) std::abort();
      for (int i = plan.ranges.range_offsets[f] + 1; i < plan.ranges.range_offsets[f + 1]; ++i)
        if (plan.ranges.range_begin[i] <= plan.ranges.range_end[i - 1]) std::abort();
    }
  } catch (const lvsa::Error&) {
  }
  return 0;
}
