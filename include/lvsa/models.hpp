// Model presets: how a model family turns (video frames, height, width) into the
// planner's geometry, and its reference horizon. Facts from docs/spec/models.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lvsa/plan.hpp"

namespace lvsa {

struct ModelPreset {
  std::string name;          // e.g. "wan2.1-1.3b"
  std::string family;        // "wan", "hunyuan_video", "cogvideox", "cosmos"
  int vae_spatial = 8;       // VAE spatial compression
  int vae_temporal = 4;      // VAE temporal compression
  int patch_t = 1, patch_h = 2, patch_w = 2;
  int reference = 21;        // R, in the planner's frame unit (token frames)
  int encoder_len = 0;       // encoder tokens inside self-attention (0: video only)
  EncoderSide encoder_side = EncoderSide::None;
  int heads = 0, head_dim = 0;
  int default_frames = 81, default_height = 480, default_width = 832;
};

const std::vector<ModelPreset>& model_presets();
// Throws lvsa::Error listing the known names when `name` is unknown.
const ModelPreset& find_preset(std::string_view name);

// Latent (token) frames for `video_frames` input frames. Video frame counts must lie on
// the model's grid 4k+1; patch_t > 1 (CogVideoX 1.5) pads the latent frames up to a
// multiple of patch_t, as the pipeline does.
int latent_frames(const ModelPreset& preset, int video_frames);
// The same conversion for any clip length, as the VAE applies it (the first frame kept, the rest
// compressed by vae_temporal, rounding down) and then padded up to a multiple of patch_t; no grid
// check. The one home of this arithmetic: the Python package binds it (settings, generate).
int clip_token_frames(int video_frames, int vae_temporal, int patch_t);
// Tokens per latent frame; height and width must divide by vae_spatial · patch.
int tokens_per_frame(const ModelPreset& preset, int height, int width);
Geometry model_geometry(const ModelPreset& preset, int video_frames, int height, int width);

// User knobs in video frames (window 12, first frames 4, keyframe interval 16) converted
// to latent units by integer division by the VAE temporal factor: 12→3, 4→1, 16→4.
// Negative values are rejected; a positive keyframe interval that rounds to 0 is an error.
struct VideoFrameKnobs {
  int window = 12;
  int n_first = 4;
  int keyframe_interval = kAutoKeyframes;  // in video frames, or kAutoKeyframes/kNoKeyframes
};
PatternConfig to_latent_config(const VideoFrameKnobs& knobs, int vae_temporal,
                               PatternConfig base = {});

}  // namespace lvsa
