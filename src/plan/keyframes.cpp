// Spec §1: the automatic keyframe interval, and validation of the configuration.
#include <algorithm>
#include <cmath>
#include <string>

#include "lvsa/plan.hpp"

namespace lvsa {
namespace {

void require_range(const char* name, long long value, long long lo, long long hi) {
  if (value < lo || value > hi)
    throw Error("lvsa: " + std::string(name) + " must be in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "], got " + std::to_string(value));
}

// | {0..nf-1} ∪ {0, k, 2k, ... < T} |, with nf = min(n_first, T).
int union_size(int frames, int nf, int k) {
  // Multiples of k in [nf, T): the ones not already counted among the first frames.
  const int first_multiple = (nf + k - 1) / k;           // ceil(nf / k)
  const int last_multiple = (frames - 1) / k;             // floor((T-1) / k)
  return nf + std::max(0, last_multiple - first_multiple + 1);
}

}  // namespace

void validate(const PatternConfig& c) {
  require_range("window", c.window, 0, kMaxFrames);
  require_range("n_first", c.n_first, 0, kMaxFrames);
  require_range("reference", c.reference, 1, kMaxFrames);
  require_range("keyframe_interval", c.keyframe_interval, kAutoKeyframes, kMaxFrames);
  if (!(std::isfinite(c.scale) && c.scale > 0.0 && c.scale <= kMaxFrames))
    throw Error("lvsa: scale must be a finite number in (0, " + std::to_string(kMaxFrames) +
                "], got " + std::to_string(c.scale));
}

int keyframe_interval(int frames, const PatternConfig& c) {
  validate(c);
  require_range("frames", frames, 1, kMaxFrames);
  if (c.keyframe_interval != kAutoKeyframes) return c.keyframe_interval;

  const int T = frames, W = c.window, nf_cfg = c.n_first;
  // 1. R' = max(n_first + 1, floor(R · s)) in double precision.
  const int r_scaled = int(std::min<double>(std::floor(double(c.reference) * c.scale), kMaxFrames));
  const int R = std::max(nf_cfg + 1, r_scaled);
  // 2. Short videos are fully dense.
  if (T <= R) return 1;
  // 3. Global-frame budget left after the window.
  const int target = std::max(nf_cfg, std::min(R, T) - std::min(2 * W + 1, T));
  // 4. Largest interval whose grid (with the first frames) reaches the target.
  const int nf = std::min(nf_cfg, T);
  int strict = 1;
  for (int k = T; k >= 1; --k) {
    if (union_size(T, nf, k) >= target) {
      strict = k;
      break;
    }
  }
  // 5. Fallback from the budget ratio (real division, then ceiling; may be <= 0).
  const int m = 2 * W + nf_cfg;
  const double fallback =
      std::ceil(double(std::max(T - m, R - m)) / double(std::max(R - m, 1)));
  // 6.
  return std::max(strict, int(fallback));
}

}  // namespace lvsa
