/* LVSA C API: plan + attention on raw pointers, for C/C++ inference engines without Python.
 *
 * Every function returns an lvsa_status; on failure lvsa_last_error() gives the message
 * (thread-local, valid until the next call on the same thread). Units and semantics are
 * those of include/lvsa/plan.hpp and include/lvsa/attention.hpp.
 *
 * Bad input is LVSA_ERROR_INVALID_ARGUMENT with a message naming the argument and what was
 * expected, and a failed call writes nothing (out and lse are untouched). Checked: NULL
 * pointers; geometry, configuration and step ranges; enum values; plans that are not live;
 * tensor sizes (all > 0), strides (>= 0), dtypes and shapes against the plan's geometry;
 * Hq a multiple of Hkv; encoder_valid[b] in [0, encoder_len]; scale; lse_len; and aliasing:
 * out and lse must not overlap q, k, v or each other (the byte ranges that shapes and strides
 * reach must be disjoint), and out's strides, in increasing order, must each step past
 * everything the smaller ones reach (true of any slice or permutation of a contiguous
 * tensor), so that no two elements of out share memory. Not checkable: that buffers really
 * hold what their shapes, strides and lse_len claim, and that encoder_valid holds B entries.
 *
 * Non-finite inputs are not checked for (that would cost a pass over the inputs); they
 * reach the outputs of the queries that attend them and no others. A NaN in a query row
 * makes that row's out and lse NaN; a NaN in a key makes out and lse NaN for every query
 * that attends the key; a NaN or Inf in a value makes that head-dim element of those
 * queries' out NaN or Inf. An Inf in q or k follows IEEE arithmetic (a score of -Inf is a
 * weight of 0, +Inf gives NaN). Keys a query does not attend, encoder padding (tokens at or
 * past encoder_valid[b]) and padded encoder query rows are never read, so NaN or Inf there
 * never leaks. The fast CPU path accumulates in fp32: finite inputs whose scores overflow
 * fp32 (|scale * q.k| > 3e38) also give non-finite rows there. */
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
  lvsa_tensor q, k, v, out;     /* q, out: [B, Sq, Hq, D]; k, v: [B, Sk, Hkv, D], one dtype */
  float* lse;                   /* optional [B, Hq, Sq] contiguous, natural log */
  int64_t lse_len;              /* floats lse can hold, >= B*Hq*Sq; ignored when lse is NULL */
  const int32_t* encoder_valid; /* optional [B] */
  float scale;                  /* 0: 1/sqrt(D); otherwise finite and > 0 */
} lvsa_attention_args;

typedef struct lvsa_plan lvsa_plan; /* opaque: one step's pattern and key ranges */

/* The spec's defaults: W=3, n_first=1, automatic keyframes, R=21, s=1, expand, rotate. */
void lvsa_config_default(lvsa_config* config);

/* On failure *plan is set to NULL. */
lvsa_status lvsa_plan_create(const lvsa_geometry* geometry, const lvsa_config* config, int64_t step,
                             lvsa_plan** plan);
/* NULL and plans already destroyed are ignored; using a destroyed plan is an error. The
 * arrays of lvsa_plan_ranges die with the plan. */
void lvsa_plan_destroy(lvsa_plan* plan);

/* The key ranges of query frame f are [begin[i], end[i]) for i in [offsets[f], offsets[f+1]);
 * the arrays live as long as the plan. */
lvsa_status lvsa_plan_ranges(const lvsa_plan* plan, int* frames, const int32_t** offsets,
                             const int64_t** begin, const int64_t** end);
lvsa_status lvsa_plan_info(const lvsa_plan* plan, int* kfi, int* offset, double* frame_density);

/* CPU backends: the fast path (num_threads >= 0; 0: all cores) and the exact reference. */
lvsa_status lvsa_attention_cpu(const lvsa_plan* plan, const lvsa_attention_args* args, int num_threads);
lvsa_status lvsa_attention_reference(const lvsa_plan* plan, const lvsa_attention_args* args);

const char* lvsa_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* LVSA_LVSA_H */
