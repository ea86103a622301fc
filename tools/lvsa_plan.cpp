// lvsa-plan: print the LVSA attention pattern for a model preset or a raw latent geometry.
//
// Scripted interface (all latent frames):
//   lvsa-plan --latent-frames T --window W --n-first N --reference R --scale S --step I --json
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "lvsa/models.hpp"
#include "lvsa/report.hpp"

namespace {

const char* kUsage = R"(usage: lvsa-plan [geometry] [pattern] [output]

geometry (either a model preset or a raw latent geometry):
  --model NAME            preset (see --list-models); with --frames/--height/--width in
                          video frames and pixels (defaults: the preset's)
  --latent-frames T       raw geometry: latent frames
  --tokens-per-frame P    tokens per latent frame (default 1)
  --encoder-len E         encoder tokens in the attention sequence (default 0)
  --encoder-side S        before | after (required when E > 0)

pattern (latent frames):
  --window W              local window half-width (default 3)
  --n-first N             leading global frames (default 1)
  --kfi K                 manual keyframe interval (0: none; default: automatic)
  --reference R           reference latent frames (default: the preset's, else 21)
  --scale S               sparsity scale (default 1.0)
  --step I                denoising step, 0-based (default 0)
  --no-expand             keep the adaptive window, do not expand it
  --no-rotate             do not rotate the keyframe grid across steps
pattern (video frames, converted by the VAE temporal factor 4, as users type them):
  --window-frames N, --n-first-frames N, --kfi-frames N

output:
  --heads H --head-dim D  FLOP accounting (default: the preset's, else 12 x 128)
  --json                  one JSON object instead of the readable summary and mask
  --list-models           list the presets
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "lvsa-plan: %s\n\n%s", message.c_str(), kUsage);
  std::exit(2);
}

[[noreturn]] void error(const std::string& message) {
  std::fprintf(stderr, "lvsa-plan: %s\n", message.c_str());
  std::exit(2);
}

// Runs body, naming `flags` in what the library says is wrong with their values.
template <class Body>
decltype(auto) for_flags(const std::string& flags, Body&& body) {
  try {
    return body();
  } catch (const lvsa::Error& e) {
    std::string_view what = e.what();
    if (what.starts_with("lvsa: ")) what.remove_prefix(6);
    error(flags + ": " + std::string(what));
  }
}

// Ranges are the planner's (plan.hpp), checked here so the message names the flag.
constexpr long long kFrames = lvsa::kMaxFrames, kInt = 2147483647LL, kSteps = 1LL << 40;

long long parse_int(std::string_view flag, const char* text, long long lo, long long hi,
                    const char* note = "") {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text, &end, 10);
  if (errno || end == text || *end || v < lo || v > hi)
    usage_error(std::string(flag) + " expects an integer in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]" + note + ", got '" + text + "'");
  return v;
}

int parse_int32(std::string_view flag, const char* text, long long lo, long long hi = kInt,
                const char* note = "") {
  return int(parse_int(flag, text, lo, hi, note));
}

double parse_scale(std::string_view flag, const char* text) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end || !std::isfinite(v) || v <= 0 || v > kFrames)
    usage_error(std::string(flag) + " expects a finite number in (0, " + std::to_string(kFrames) +
                "], got '" + text + "'");
  return v;
}

void list_models() {
  std::printf("%-18s %-14s %-10s %-10s %-9s %-8s %s\n", "preset", "family", "default", "P", "R",
              "encoder", "heads x dim");
  for (const auto& m : lvsa::model_presets()) {
    const lvsa::Geometry g = lvsa::model_geometry(m, m.default_frames, m.default_height, m.default_width);
    char size[32];
    std::snprintf(size, sizeof size, "%dx%dx%d", m.default_frames, m.default_height, m.default_width);
    std::printf("%-18s %-14s %-10s %-10d %-9d %-8d %dx%d\n", m.name.c_str(), m.family.c_str(), size,
                g.tokens_per_frame, m.reference, m.encoder_len, m.heads, m.head_dim);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::string> model;
  std::optional<int> frames, height, width, latent_frames, reference, heads, head_dim;
  std::optional<int> window, n_first, kfi, window_frames, n_first_frames, kfi_frames;
  std::optional<int> tokens_per_frame, encoder_len;
  std::optional<std::string> encoder_side;
  lvsa::PatternConfig config;
  long long step = 0;
  bool json = false;

  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--list-models") {
      list_models();
      return 0;
    } else if (a == "--model") model = value();
    else if (a == "--frames") frames = parse_int32(a, value(), 1, kFrames);
    else if (a == "--height") height = parse_int32(a, value(), 1);
    else if (a == "--width") width = parse_int32(a, value(), 1);
    else if (a == "--latent-frames") latent_frames = parse_int32(a, value(), 1, kFrames);
    else if (a == "--tokens-per-frame") tokens_per_frame = parse_int32(a, value(), 1);
    else if (a == "--encoder-len") encoder_len = parse_int32(a, value(), 0);
    else if (a == "--encoder-side") encoder_side = value();
    else if (a == "--window") window = parse_int32(a, value(), 0, kFrames);
    else if (a == "--n-first") n_first = parse_int32(a, value(), 0, kFrames);
    else if (a == "--kfi") kfi = parse_int32(a, value(), 0, kFrames, " (0: no periodic keyframes)");
    else if (a == "--reference") reference = parse_int32(a, value(), 1, kFrames);
    else if (a == "--scale") config.scale = parse_scale(a, value());
    else if (a == "--step") step = parse_int(a, value(), 0, kSteps);
    else if (a == "--no-expand") config.expand = false;
    else if (a == "--no-rotate") config.rotate = false;
    else if (a == "--window-frames") window_frames = parse_int32(a, value(), 0, kFrames);
    else if (a == "--n-first-frames") n_first_frames = parse_int32(a, value(), 0, kFrames);
    else if (a == "--kfi-frames")
      kfi_frames = parse_int32(a, value(), 0, kFrames, " (0: no periodic keyframes)");
    else if (a == "--heads") heads = parse_int32(a, value(), 1);
    else if (a == "--head-dim") head_dim = parse_int32(a, value(), 1);
    else if (a == "--json") json = true;
    else usage_error("unknown argument '" + std::string(a) + "'");
  }

  // The same knob in latent and in video frames: which one was meant is a guess.
  for (const auto& [latent, video, names] :
       {std::tuple{&window, &window_frames, "--window or --window-frames"},
        std::tuple{&n_first, &n_first_frames, "--n-first or --n-first-frames"},
        std::tuple{&kfi, &kfi_frames, "--kfi or --kfi-frames"}})
    if (*latent && *video) usage_error(std::string("give either ") + names + ", not both");
  config.window = window.value_or(config.window);
  config.n_first = n_first.value_or(config.n_first);
  config.keyframe_interval = kfi.value_or(config.keyframe_interval);

  try {
    lvsa::Geometry geometry;
    int vae_temporal = 4;
    if (model) {
      if (latent_frames) usage_error("give either --model or --latent-frames, not both");
      if (tokens_per_frame || encoder_len || encoder_side)
        usage_error("--tokens-per-frame, --encoder-len and --encoder-side describe a raw geometry "
                    "(--latent-frames); a --model preset has its own");
      const lvsa::ModelPreset& m = for_flags("--model", [&] { return lvsa::find_preset(*model); });
      const int f = frames.value_or(m.default_frames), h = height.value_or(m.default_height),
                w = width.value_or(m.default_width);
      // One flag at a time against the preset's other defaults, so the message names it.
      for_flags("--frames", [&] { return lvsa::latent_frames(m, f); });
      for_flags("--height", [&] { return lvsa::tokens_per_frame(m, h, m.default_width); });
      for_flags("--width", [&] { return lvsa::tokens_per_frame(m, m.default_height, w); });
      geometry = for_flags("--frames x --height x --width",
                           [&] { return lvsa::model_geometry(m, f, h, w); });
      config.reference = reference.value_or(m.reference);
      heads = heads.value_or(m.heads);
      head_dim = head_dim.value_or(m.head_dim);
      vae_temporal = m.vae_temporal;
    } else {
      if (!latent_frames) usage_error("give --model NAME or --latent-frames T");
      if (frames || height || width) usage_error("--frames/--height/--width need --model");
      geometry.frames = *latent_frames;
      geometry.tokens_per_frame = tokens_per_frame.value_or(1);
      geometry.encoder_len = encoder_len.value_or(0);
      if (encoder_side) {
        if (*encoder_side == "before") geometry.encoder_side = lvsa::EncoderSide::Before;
        else if (*encoder_side == "after") geometry.encoder_side = lvsa::EncoderSide::After;
        else usage_error("--encoder-side expects 'before' or 'after', got '" + *encoder_side + "'");
      }
      if (geometry.encoder_len > 0 && !encoder_side)
        usage_error("--encoder-len " + std::to_string(geometry.encoder_len) +
                    " needs --encoder-side before|after");
      if (encoder_side && geometry.encoder_len == 0)
        usage_error("--encoder-side needs --encoder-len E > 0");
      for_flags("--latent-frames x --tokens-per-frame + --encoder-len",
                [&] { lvsa::validate(geometry); });
      config.reference = reference.value_or(config.reference);
    }
    if (window_frames || n_first_frames || kfi_frames) {
      if (kfi_frames && *kfi_frames > 0 && *kfi_frames < vae_temporal)
        usage_error("--kfi-frames expects 0 (no periodic keyframes) or at least one latent frame (" +
                    std::to_string(vae_temporal) + " video frames), got " + std::to_string(*kfi_frames));
      lvsa::VideoFrameKnobs knobs;
      knobs.window = window_frames.value_or(config.window * vae_temporal);
      knobs.n_first = n_first_frames.value_or(config.n_first * vae_temporal);
      knobs.keyframe_interval =
          kfi_frames.value_or(config.keyframe_interval > 0 ? config.keyframe_interval * vae_temporal
                                                           : config.keyframe_interval);
      config = for_flags("--window-frames/--n-first-frames/--kfi-frames",
                         [&] { return lvsa::to_latent_config(knobs, vae_temporal, config); });
    }
    const lvsa::StepPlan plan = lvsa::make_plan(geometry, config, step);
    const int h = heads.value_or(12), d = head_dim.value_or(128);
    const std::string out = json ? lvsa::plan_to_json(plan, h, d) : lvsa::plan_to_text(plan, h, d);
    std::fputs(out.c_str(), stdout);
    if (json) std::fputc('\n', stdout);
  } catch (const lvsa::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  return 0;
}
