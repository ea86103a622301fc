// Model presets: geometry from (frames, height, width) and video-frame knob conversion.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "lvsa/models.hpp"

namespace {

TEST(Models, DefaultGeometries) {
  struct Expect {
    const char* name;
    int frames, height, width, T, P;
  };
  for (const Expect& e : {Expect{"wan2.1-1.3b", 81, 480, 832, 21, 1560},
                          Expect{"wan2.1-1.3b", 481, 480, 832, 121, 1560},
                          Expect{"wan2.1-14b", 81, 720, 1280, 21, 3600},
                          Expect{"wan2.2-ti2v-5b", 121, 704, 1280, 31, 880},
                          Expect{"hunyuanvideo-1.5", 121, 480, 848, 31, 1590},
                          Expect{"cogvideox-5b", 49, 480, 720, 13, 1350},
                          Expect{"cogvideox1.5-5b", 81, 768, 1360, 11, 4080},
                          Expect{"cogvideox1.5-5b", 85, 768, 1360, 11, 4080},
                          Expect{"cosmos-2.5", 93, 704, 1280, 24, 3520}}) {
    const auto& m = lvsa::find_preset(e.name);
    const auto g = lvsa::model_geometry(m, e.frames, e.height, e.width);
    EXPECT_EQ(g.frames, e.T) << e.name << " " << e.frames;
    EXPECT_EQ(g.tokens_per_frame, e.P) << e.name;
  }
  const auto hy = lvsa::model_geometry(lvsa::find_preset("hunyuanvideo-1.5"), 121, 480, 848);
  EXPECT_EQ(hy.encoder_side, lvsa::EncoderSide::After);
  EXPECT_EQ(hy.encoder_len, 1985);
  const auto cog = lvsa::model_geometry(lvsa::find_preset("cogvideox-2b"), 49, 480, 720);
  EXPECT_EQ(cog.encoder_side, lvsa::EncoderSide::Before);
  EXPECT_EQ(cog.video_begin(), 226);
}

TEST(Models, ReferenceIsPerModel) {
  EXPECT_EQ(lvsa::find_preset("wan2.1-1.3b").reference, 21);
  EXPECT_EQ(lvsa::find_preset("hunyuanvideo-1.5").reference, 33);
  EXPECT_EQ(lvsa::find_preset("cogvideox-2b").reference, 13);
  EXPECT_EQ(lvsa::find_preset("wan2.2-ti2v-5b").reference, 31);
  EXPECT_EQ(lvsa::find_preset("cosmos-2.5").reference, 24);
}

TEST(Models, ImpossibleInputsAreErrors) {
  const auto& wan = lvsa::find_preset("wan2.1-1.3b");
  try {
    lvsa::latent_frames(wan, 80);
    FAIL();
  } catch (const lvsa::Error& e) {
    EXPECT_NE(std::string(e.what()).find("77 or 81"), std::string::npos) << e.what();
  }
  EXPECT_THROW(lvsa::latent_frames(wan, 0), lvsa::Error);
  EXPECT_THROW(lvsa::latent_frames(wan, -5), lvsa::Error);
  EXPECT_THROW(lvsa::tokens_per_frame(wan, 481, 832), lvsa::Error);
  EXPECT_THROW(lvsa::tokens_per_frame(wan, 480, 0), lvsa::Error);
  EXPECT_THROW(lvsa::tokens_per_frame(lvsa::find_preset("wan2.2-ti2v-5b"), 720, 1280), lvsa::Error);
  EXPECT_THROW(lvsa::find_preset("wan3"), lvsa::Error);
}

TEST(Models, VideoFrameKnobs) {
  lvsa::VideoFrameKnobs k{12, 4, 16};
  const auto c = lvsa::to_latent_config(k, 4);
  EXPECT_EQ(c.window, 3);
  EXPECT_EQ(c.n_first, 1);
  EXPECT_EQ(c.keyframe_interval, 4);
  k.keyframe_interval = lvsa::kAutoKeyframes;
  EXPECT_EQ(lvsa::to_latent_config(k, 4).keyframe_interval, lvsa::kAutoKeyframes);
  k.keyframe_interval = 2;
  EXPECT_THROW(lvsa::to_latent_config(k, 4), lvsa::Error);
  k = {-4, 4, 16};
  EXPECT_THROW(lvsa::to_latent_config(k, 4), lvsa::Error);
}

// The one clip conversion (settings' reference in video frames, lvsa generate's grid, presets).
TEST(Models, ClipTokenFrames) {
  EXPECT_EQ(lvsa::clip_token_frames(81, 4, 1), 21);   // Wan: 81 video frames are 21 latent frames
  EXPECT_EQ(lvsa::clip_token_frames(80, 4, 1), 20);   // off the grid: rounded down, as the VAE does
  EXPECT_EQ(lvsa::clip_token_frames(81, 4, 2), 11);   // CogVideoX 1.5 pads 21 latent frames to 22
  EXPECT_EQ(lvsa::clip_token_frames(1, 4, 1), 1);
  EXPECT_EQ(lvsa::latent_frames(lvsa::find_preset("cogvideox1.5-5b"), 81), lvsa::clip_token_frames(81, 4, 2));
  for (auto [frames, vae, patch, name] : {std::tuple{0, 4, 1, "video_frames"}, {81, 0, 1, "vae_temporal"},
                                          {81, 4, 0, "patch_t"}}) {
    try {
      lvsa::clip_token_frames(frames, vae, patch);
      ADD_FAILURE() << name;
    } catch (const lvsa::Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

}  // namespace
