/* sampler.h — turns a row of logits into the next token id: greedy (ties go to
 * the lowest id), or temperature -> top-k -> top-p -> min-p -> seeded random
 * draw; an optional repetition penalty over the last N accepted tokens; and an
 * optional mask of allowed tokens (the grammar's hook) applied before anything
 * else. Each sampler has its own RNG state (no global state). */
#ifndef AGX_SAMPLER_H
#define AGX_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "agx/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AGX_SAMPLER_SEED_RANDOM UINT64_MAX   /* seed from the clock at create time */

typedef struct agx_sampler_params {
    float temperature;     /* <= 0: greedy (argmax). default 0.7 */
    int top_k;             /* <= 0: off. default 0 */
    float top_p;           /* >= 1: off. default 0.9 */
    float min_p;           /* <= 0: off. default 0 */
    float repeat_penalty;  /* 1: off. default 1.1 */
    int repeat_last_n;     /* tokens of history the penalty looks at. default 64 */
    uint64_t seed;         /* default AGX_SAMPLER_SEED_RANDOM */
} agx_sampler_params;

agx_sampler_params agx_sampler_default_params(void);
/* Defaults overridden by AGX_CANDLE_TEMPERATURE, AGX_CANDLE_TOP_P, AGX_CANDLE_SEED;
 * a malformed value is a config error naming the variable. */
agx_status agx_sampler_params_from_env(agx_sampler_params *out, agx_error *err);

typedef struct agx_sampler agx_sampler;

agx_status agx_sampler_create(const agx_sampler_params *p, agx_sampler **out, agx_error *err);
void agx_sampler_free(agx_sampler *s);
/* Forgets the history and re-seeds the RNG with the original seed. */
void agx_sampler_reset(agx_sampler *s);
/* Records a token in the repetition-penalty history (prompt tokens too, if wanted). */
void agx_sampler_accept(agx_sampler *s, int32_t token);
/* The seed actually used (useful when it was drawn from the clock). */
uint64_t agx_sampler_seed(const agx_sampler *s);

/* Picks a token from logits[0..n_vocab). allowed (may be NULL) is a byte array
 * over the vocab: nonzero = allowed; it is applied before penalties/truncation.
 * logits are not modified. Returns -1 when no token is allowed (or n_vocab <= 0).
 * Does not call agx_sampler_accept. */
int32_t agx_sampler_sample(agx_sampler *s, const float *logits, int32_t n_vocab, const uint8_t *allowed);

#ifdef __cplusplus
}
#endif
#endif
