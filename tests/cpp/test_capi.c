/* The C API from plain C: plan a Wan-like step and run the CPU attention on it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lvsa/lvsa.h"

#define CHECK(cond)                                               \
  do {                                                            \
    if (!(cond)) {                                                \
      fprintf(stderr, "%s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, lvsa_last_error()); \
      return 1;                                                   \
    }                                                             \
  } while (0)

static lvsa_tensor tensor(float* data, int64_t S, int64_t H, int64_t D) {
  lvsa_tensor t = {data, LVSA_F32, {1, S, H, D}, {S * H * D, H * D, D, 1}};
  return t;
}

int main(void) {
  lvsa_config config;
  lvsa_config_default(&config);
  config.reference = 5;
  const lvsa_geometry geometry = {17, 3, 0, LVSA_ENCODER_NONE};
  lvsa_plan* plan = NULL;
  CHECK(lvsa_plan_create(&geometry, &config, 2, &plan) == LVSA_OK);
  int kfi = 0, offset = 0, frames = 0;
  double density = 0;
  const int32_t* offsets;
  const int64_t *begin, *end;
  CHECK(lvsa_plan_info(plan, &kfi, &offset, &density) == LVSA_OK);
  CHECK(kfi > 1 && offset == 2 % kfi && density > 0 && density < 1);
  CHECK(lvsa_plan_ranges(plan, &frames, &offsets, &begin, &end) == LVSA_OK);
  CHECK(frames == 17 && offsets[0] == 0 && offsets[17] > 17);

  enum { S = 51, H = 2, D = 64, N = S * H * D };
  float* q = malloc(sizeof(float) * N);
  float* k = malloc(sizeof(float) * N);
  float* v = malloc(sizeof(float) * N);
  float* fast = malloc(sizeof(float) * N);
  float* exact = malloc(sizeof(float) * N);
  srand(7);
  for (int i = 0; i < N; ++i) {
    q[i] = (float)rand() / RAND_MAX - 0.5f;
    k[i] = (float)rand() / RAND_MAX - 0.5f;
    v[i] = (float)rand() / RAND_MAX - 0.5f;
    fast[i] = exact[i] = NAN;
  }
  lvsa_attention_args args = {tensor(q, S, H, D), tensor(k, S, H, D), tensor(v, S, H, D),
                              tensor(fast, S, H, D), NULL, 0, NULL, 0.0f};
  CHECK(lvsa_attention_cpu(plan, &args, 2) == LVSA_OK);
  args.out.data = exact;
  CHECK(lvsa_attention_reference(plan, &args) == LVSA_OK);
  for (int i = 0; i < N; ++i) CHECK(fabsf(fast[i] - exact[i]) < 1e-5f);

  float* lse = malloc(sizeof(float) * H * S);
  args.lse = lse;
  args.lse_len = H * S - 1; /* one float short: refused, nothing written */
  CHECK(lvsa_attention_cpu(plan, &args, 1) == LVSA_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(lvsa_last_error(), "lse_len") != NULL);
  args.lse_len = H * S;
  CHECK(lvsa_attention_cpu(plan, &args, 1) == LVSA_OK);
  for (int i = 0; i < H * S; ++i) CHECK(isfinite(lse[i]));

  args.k.shape[1] = S - 1; /* a plan for another geometry: an error, not a crash */
  CHECK(lvsa_attention_cpu(plan, &args, 1) == LVSA_ERROR_INVALID_ARGUMENT);
  CHECK(lvsa_last_error()[0] != '\0');
  lvsa_geometry bad = geometry;
  bad.tokens_per_frame = 0;
  lvsa_plan* none = NULL;
  CHECK(lvsa_plan_create(&bad, &config, 0, &none) == LVSA_ERROR_INVALID_ARGUMENT && none == NULL);

  lvsa_plan_destroy(plan);
  free(q); free(k); free(v); free(fast); free(exact); free(lse);
  printf("C API ok\n");
  return 0;
}
