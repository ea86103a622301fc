#include "lvsa/report.hpp"

#include <cstdio>
#include <sstream>

namespace lvsa {
namespace {

const char* side_name(EncoderSide s) {
  switch (s) {
    case EncoderSide::Before: return "before";
    case EncoderSide::After: return "after";
    default: return "none";
  }
}

std::string number(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

template <class Range>
void json_list(std::ostringstream& os, const Range& values) {
  os << '[';
  bool first = true;
  for (auto v : values) {
    os << (first ? "" : ",") << v;
    first = false;
  }
  os << ']';
}

}  // namespace

std::string plan_to_json(const StepPlan& plan, int heads, int head_dim) {
  const FramePattern& p = plan.pattern;
  const Geometry& g = plan.ranges.geometry;
  const PatternConfig& c = plan.config;
  const WorkEstimate w = estimate_work(plan.ranges, heads, head_dim);
  std::ostringstream os;
  os << "{\"T\":" << p.frames << ",\"W\":" << c.window << ",\"n_first\":" << c.n_first
     << ",\"ref\":" << c.reference << ",\"scale\":" << number(c.scale)
     << ",\"expand\":" << (c.expand ? "true" : "false")
     << ",\"rotate\":" << (c.rotate ? "true" : "false") << ",\"step\":" << plan.step
     << ",\"kfi\":" << p.kfi << ",\"offset\":" << p.offset << ",\"globals\":";
  json_list(os, p.globals);
  os << ",\"attended\":[";
  for (int f = 0; f < p.frames; ++f) {
    os << (f ? "," : "");
    json_list(os, p.attended(f));
  }
  os << "],\"geometry\":{\"frames\":" << g.frames << ",\"tokens_per_frame\":" << g.tokens_per_frame
     << ",\"encoder_len\":" << g.encoder_len << ",\"encoder_side\":\"" << side_name(g.encoder_side)
     << "\",\"seq_len\":" << g.seq_len() << "},\"ranges\":[";
  const KeyRanges& r = plan.ranges;
  for (int f = 0; f < p.frames; ++f) {
    os << (f ? "," : "") << '[';
    for (int i = r.range_offsets[f]; i < r.range_offsets[f + 1]; ++i)
      os << (i > r.range_offsets[f] ? "," : "") << '[' << r.range_begin[i] << ',' << r.range_end[i]
         << ']';
    os << ']';
  }
  os << "],\"frame_density\":" << number(p.frame_density())
     << ",\"token_density\":" << number(w.density()) << ",\"heads\":" << heads
     << ",\"head_dim\":" << head_dim << ",\"sparse_flops\":" << number(w.sparse_flops)
     << ",\"dense_flops\":" << number(w.dense_flops) << "}";
  return os.str();
}

std::string plan_to_text(const StepPlan& plan, int heads, int head_dim) {
  const FramePattern& p = plan.pattern;
  const Geometry& g = plan.ranges.geometry;
  const PatternConfig& c = plan.config;
  const WorkEstimate w = estimate_work(plan.ranges, heads, head_dim);
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line,
                "LVSA plan: T=%d latent frames, P=%d tokens/frame, encoder %d (%s), seq %lld\n",
                g.frames, g.tokens_per_frame, g.encoder_len, side_name(g.encoder_side),
                (long long)g.seq_len());
  os << line;
  std::snprintf(line, sizeof line,
                "config: window=%d n_first=%d reference=%d scale=%g expand=%s rotate=%s step=%lld\n",
                c.window, c.n_first, c.reference, c.scale, c.expand ? "on" : "off",
                c.rotate ? "on" : "off", (long long)plan.step);
  os << line;
  std::snprintf(line, sizeof line, "kfi=%d offset=%d globals=%zu:", p.kfi, p.offset,
                p.globals.size());
  os << line;
  for (int x : p.globals) os << ' ' << x;
  os << '\n';
  std::snprintf(line, sizeof line,
                "density: frames %.4f, tokens %.4f; FLOPs (H=%d, D=%d): sparse %.4g, dense %.4g "
                "(%.2fx less)\n",
                p.frame_density(), w.density(), heads, head_dim, w.sparse_flops, w.dense_flops,
                w.sparse_flops > 0 ? w.dense_flops / w.sparse_flops : 0.0);
  os << line;
  os << "mask (rows: query frames, columns: key frames; G global, w window, B both, . skipped)\n";
  for (int f = 0; f < p.frames; ++f) {
    std::snprintf(line, sizeof line, "%5d ", f);
    os << line;
    for (int x = 0; x < p.frames; ++x) {
      const bool glob = p.is_global[x], win = x >= p.window_lo[f] && x <= p.window_hi[f];
      os << (glob && win ? 'B' : glob ? 'G' : win ? 'w' : '.');
    }
    os << '\n';
  }
  return os.str();
}

}  // namespace lvsa
