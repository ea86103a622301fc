/* LVSA C API: plan + attention on raw pointers, for C/C++ inference engines without Python.
 *
 * Every function returns an lvsa_status; on failure lvsa_last_error() gives the message
 * (thread-local, valid until the next call on the same thread). Units and semantics are
 * those of include/lvsa/plan.hpp and include/lvsa/attention.hpp. */
#ifndef LVSA_LVSA_H
#define LVSA_LVSA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  LVSA_OK = 0,
  LVSA_ERROR_INVALID_ARGUMENT = 1, /* bad geometry, configuration, shape, dtype, ... */
  LVSA_ERROR_INTERNAL = 2
} lvsa_status;

typedef enum { LVSA_ENCODER_NONE = 0, LVSA_ENCODER_BEFORE = 1, LVSA_ENCODER_AFTER = 2 } lvsa_encoder_side;
typedef enum { LVSA_F32 = 0, LVSA_F16 = 1, LVSA_BF16 = 2 } lvsa_dtype;

enum { LVSA_AUTO_KEYFRAMES = -1, LVSA_NO_KEYFRAMES = 0 };

typedef struct {
  int frames;           /* T, latent frames */
  int tokens_per_frame; /* P */
  int encoder_len;      /* encoder tokens in the sequence (0: none) */
  lvsa_encoder_side encoder_side;
} lvsa_geometry;

typedef struct {
  int window;            /* W, latent half-width */
  int n_first;           /* leading global frames */
  int keyframe_interval; /* > 0 manual, LVSA_AUTO_KEYFRAMES, or LVSA_NO_KEYFRAMES */
  int reference;         /* R, the model's training-horizon latent frames */
  double scale;          /* sparsity scale s */
  int expand;            /* bool */
  int rotate;            /* bool */
} lvsa_config;

typedef struct {
  void* data;
  lvsa_dtype dtype;
  int64_t shape[4];  /* B, S, H, D */
  int64_t stride[4]; /* in elements */
} lvsa_tensor;

typedef struct {
  lvsa_tensor q, k, v, out;
  float* lse;                   /* optional [B, Hq, Sq] */
  const int32_t* encoder_valid; /* optional [B] */
  float scale;                  /* 0: 1/sqrt(D) */
} lvsa_attention_args;

typedef struct lvsa_plan lvsa_plan; /* opaque: one step's pattern and key ranges */

/* The spec's defaults: W=3, n_first=1, automatic keyframes, R=21, s=1, expand, rotate. */
void lvsa_config_default(lvsa_config* config);

lvsa_status lvsa_plan_create(const lvsa_geometry* geometry, const lvsa_config* config, int64_t step,
                             lvsa_plan** plan);
void lvsa_plan_destroy(lvsa_plan* plan);

/* The key ranges of query frame f are [begin[i], end[i]) for i in [offsets[f], offsets[f+1]);
 * the arrays live as long as the plan. */
lvsa_status lvsa_plan_ranges(const lvsa_plan* plan, int* frames, const int32_t** offsets,
                             const int64_t** begin, const int64_t** end);
lvsa_status lvsa_plan_info(const lvsa_plan* plan, int* kfi, int* offset, double* frame_density);

/* CPU backends: the fast path (num_threads 0: all cores) and the exact reference. */
lvsa_status lvsa_attention_cpu(const lvsa_plan* plan, const lvsa_attention_args* args, int num_threads);
lvsa_status lvsa_attention_reference(const lvsa_plan* plan, const lvsa_attention_args* args);

const char* lvsa_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* LVSA_LVSA_H */
