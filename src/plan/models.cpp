// Model presets and video-frame → latent-frame conversion (docs/spec/models.md).
#include <algorithm>
#include <string>

#include "lvsa/models.hpp"

namespace lvsa {
namespace {

ModelPreset preset(std::string name, std::string family, int vae_spatial, int patch_t, int patch_hw,
                   int reference, int encoder_len, EncoderSide side, int heads, int head_dim,
                   int frames, int height, int width) {
  ModelPreset p;
  p.name = std::move(name);
  p.family = std::move(family);
  p.vae_spatial = vae_spatial;
  p.vae_temporal = 4;
  p.patch_t = patch_t;
  p.patch_h = p.patch_w = patch_hw;
  p.reference = reference;
  p.encoder_len = encoder_len;
  p.encoder_side = side;
  p.heads = heads;
  p.head_dim = head_dim;
  p.default_frames = frames;
  p.default_height = height;
  p.default_width = width;
  return p;
}

}  // namespace

const std::vector<ModelPreset>& model_presets() {
  using S = EncoderSide;
  static const std::vector<ModelPreset> presets = {
      // Wan: self-attention (attn1) is video only; text goes through cross-attention.
      preset("wan2.1-1.3b", "wan", 8, 1, 2, 21, 0, S::None, 12, 128, 81, 480, 832),
      preset("wan2.1-14b", "wan", 8, 1, 2, 21, 0, S::None, 40, 128, 81, 720, 1280),
      preset("wan2.2-a14b", "wan", 8, 1, 2, 21, 0, S::None, 40, 128, 81, 720, 1280),
      preset("wan2.2-ti2v-5b", "wan", 16, 1, 2, 31, 0, S::None, 24, 128, 121, 704, 1280),
      // HunyuanVideo 1.5: joint attention over cat([video, encoder]), up to 1985 encoder tokens.
      preset("hunyuanvideo-1.5", "hunyuan_video", 16, 1, 1, 33, 1985, S::After, 16, 128, 121, 480,
             848),
      // CogVideoX: joint attention over cat([text(226), video]).
      preset("cogvideox-2b", "cogvideox", 8, 1, 2, 13, 226, S::Before, 30, 64, 49, 480, 720),
      preset("cogvideox-5b", "cogvideox", 8, 1, 2, 13, 226, S::Before, 48, 64, 49, 480, 720),
      // CogVideoX 1.5: patch_t = 2, so one token frame is two latent frames; trained at 81
      // video frames = 21 latent = 11 token frames, the planner's unit for this model.
      preset("cogvideox1.5-5b", "cogvideox", 8, 2, 2, 11, 226, S::Before, 48, 64, 81, 768, 1360),
      // Cosmos 2.5: self-attention (attn1) on video only.
      preset("cosmos-2.5", "cosmos", 8, 1, 2, 24, 0, S::None, 16, 128, 93, 704, 1280),
  };
  return presets;
}

const ModelPreset& find_preset(std::string_view name) {
  std::string known;
  for (const auto& p : model_presets()) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  throw Error("lvsa: unknown model preset '" + std::string(name) + "'; known presets: " + known);
}

int latent_frames(const ModelPreset& m, int video_frames) {
  if (video_frames < 1 || video_frames > kMaxFrames)
    throw Error("lvsa: frames must be in [1, " + std::to_string(kMaxFrames) + "], got " +
                std::to_string(video_frames));
  if ((video_frames - 1) % m.vae_temporal != 0) {
    const int below = (video_frames - 1) / m.vae_temporal * m.vae_temporal + 1;
    throw Error("lvsa: frames must be " + std::to_string(m.vae_temporal) + "k+1 for " + m.name +
                ", got " + std::to_string(video_frames) + "; nearest valid: " +
                std::to_string(below) + " or " + std::to_string(below + m.vae_temporal));
  }
  return clip_token_frames(video_frames, m.vae_temporal, m.patch_t);
}

int clip_token_frames(int video_frames, int vae_temporal, int patch_t) {
  auto positive = [](const char* name, int value) {
    if (value < 1) throw Error(std::string("lvsa: ") + name + " must be >= 1, got " + std::to_string(value));
  };
  positive("video_frames", video_frames);
  positive("vae_temporal", vae_temporal);
  positive("patch_t", patch_t);
  const int latent = (video_frames - 1) / vae_temporal + 1;
  return (latent + patch_t - 1) / patch_t;
}

int tokens_per_frame(const ModelPreset& m, int height, int width) {
  const int unit_h = m.vae_spatial * m.patch_h, unit_w = m.vae_spatial * m.patch_w;
  constexpr int kMaxPixels = 1 << 16;
  auto check = [&](const char* name, int value, int unit) {
    if (value >= unit && value <= kMaxPixels && value % unit == 0) return;
    const int top = kMaxPixels / unit * unit;
    const int below = std::clamp(value / unit * unit, unit, top);
    const int above = std::min(below + unit, top);
    std::string nearest = std::to_string(below);
    if (value > below && above != below) nearest += " or " + std::to_string(above);
    throw Error("lvsa: " + std::string(name) + " must be a multiple of " + std::to_string(unit) +
                " in [" + std::to_string(unit) + ", " + std::to_string(top) + "] (VAE " +
                std::to_string(m.vae_spatial) + " x patch) for " + m.name + ", got " +
                std::to_string(value) + "; nearest valid: " + nearest);
  };
  check("height", height, unit_h);
  check("width", width, unit_w);
  return (height / unit_h) * (width / unit_w);
}

Geometry model_geometry(const ModelPreset& m, int video_frames, int height, int width) {
  Geometry g;
  g.frames = latent_frames(m, video_frames);
  g.tokens_per_frame = tokens_per_frame(m, height, width);
  g.encoder_len = m.encoder_len;
  g.encoder_side = m.encoder_side;
  validate(g);
  return g;
}

PatternConfig to_latent_config(const VideoFrameKnobs& k, int vae_temporal, PatternConfig base) {
  if (vae_temporal < 1)
    throw Error("lvsa: vae_temporal must be >= 1, got " + std::to_string(vae_temporal));
  auto non_negative = [](const char* name, int value) {
    if (value < 0 || value > kMaxFrames)
      throw Error("lvsa: " + std::string(name) + " (video frames) must be in [0, " +
                  std::to_string(kMaxFrames) + "], got " + std::to_string(value));
  };
  non_negative("window", k.window);
  non_negative("n_first", k.n_first);
  base.window = k.window / vae_temporal;
  base.n_first = k.n_first / vae_temporal;
  if (k.keyframe_interval == kAutoKeyframes || k.keyframe_interval == kNoKeyframes) {
    base.keyframe_interval = k.keyframe_interval;
  } else {
    non_negative("keyframe_interval", k.keyframe_interval);
    if (k.keyframe_interval < vae_temporal)
      throw Error("lvsa: keyframe_interval " + std::to_string(k.keyframe_interval) +
                  " video frames is below one latent frame (" + std::to_string(vae_temporal) +
                  " video frames)");
    base.keyframe_interval = k.keyframe_interval / vae_temporal;
  }
  validate(base);
  return base;
}

}  // namespace lvsa
