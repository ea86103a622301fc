// Spec §2-§5: global frames for the step's rotation offset and the local windows.
#include <algorithm>
#include <string>

#include "lvsa/plan.hpp"

namespace lvsa {
namespace {

// Spec §3: adaptive window of query frame f, then expansion to 2W+1 non-global frames.
void window_of(const FramePattern& p, const PatternConfig& c, int f, int& lo, int& hi) {
  const int T = p.frames, W = c.window;
  if (W == 0) {
    lo = 1;
    hi = 0;  // empty
    return;
  }
  lo = std::max(0, std::min(f - W, T - 1 - 2 * W));
  hi = std::min(T - 1, std::max(f + W, 2 * W));
  if (!c.expand) return;
  const int target = std::min(2 * W + 1, T - int(p.globals.size()));
  int count = 0;
  for (int x = lo; x <= hi; ++x) count += !p.is_global[x];
  while (count < target) {
    bool moved = false;
    if (lo > 0) {
      --lo;
      moved = true;
      count += !p.is_global[lo];
    }
    if (count >= target) break;
    if (hi < T - 1) {
      ++hi;
      moved = true;
      count += !p.is_global[hi];
    }
    if (!moved) break;
  }
}

}  // namespace

FramePattern build_frame_pattern(int frames, const PatternConfig& c, int64_t step) {
  if (step < 0) throw Error("lvsa: step must be >= 0, got " + std::to_string(step));
  FramePattern p;
  p.frames = frames;
  p.kfi = keyframe_interval(frames, c);  // validates config and frames
  const int T = frames;
  p.offset = (p.kfi > 0 && c.rotate) ? int(step % p.kfi) : 0;

  p.is_global.assign(T, 0);
  for (int f = 0; f < std::min(c.n_first, T); ++f) p.is_global[f] = 1;
  if (p.kfi > 0) {
    const int count = (T + p.kfi - 1) / p.kfi;
    for (int i = 0; i < count; ++i) p.is_global[(p.offset + int64_t(i) * p.kfi) % T] = 1;
  }
  for (int f = 0; f < T; ++f)
    if (p.is_global[f]) p.globals.push_back(f);

  p.window_lo.resize(T);
  p.window_hi.resize(T);
  for (int f = 0; f < T; ++f) window_of(p, c, f, p.window_lo[f], p.window_hi[f]);
  return p;
}

std::vector<int> FramePattern::attended(int f) const {
  if (f < 0 || f >= frames)
    throw Error("lvsa: query frame must be in [0, " + std::to_string(frames - 1) + "], got " +
                std::to_string(f));
  std::vector<int> out;
  for (int x = 0; x < frames; ++x)
    if (is_global[x] || (x >= window_lo[f] && x <= window_hi[f])) out.push_back(x);
  return out;
}

double FramePattern::frame_density() const {
  if (frames == 0) return 0.0;
  double total = 0;
  for (int f = 0; f < frames; ++f) {
    int window_only = 0;
    for (int x = window_lo[f]; x <= window_hi[f]; ++x) window_only += !is_global[x];
    total += double(globals.size() + window_only);
  }
  return total / (double(frames) * frames);
}

}  // namespace lvsa
