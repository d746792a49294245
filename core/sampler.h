/* sampler.h - picks the next token from a row of logits.
 *
 * Promises: the order of operations is repetition penalty -> (temp <= 0:
 * argmax) -> top-k -> softmax with temperature -> top-p -> min-p ->
 * renormalize -> draw. Draws come from a private xorshift64* generator seeded
 * from params.seed, so a seed gives the same sequence on every platform. The
 * caller's logits are never modified and sampling allocates nothing (all
 * buffers are made by bn_sampler_new). Top-k costs O(n log k); only top-p
 * without top-k sorts (just the tokens min-p keeps). NaN logits count as -inf
 * (probability 0); +inf tokens share all the mass; if every logit is -inf the
 * argmax rule applies (lowest id, i.e. 0). Ties always go to the lowest id.
 * A sampler is not thread-safe; use one per sequence. */
#ifndef BN_SAMPLER_H
#define BN_SAMPLER_H

#include <stdint.h>

#include "error.h"

typedef struct bn_sampler_params {
    float temp;           /* <= 0: greedy (argmax; ties -> lowest id) */
    int top_k;            /* <= 0 or >= n_vocab: off */
    float top_p;          /* in (0, 1]; 1: off */
    float min_p;          /* <= 0: off; keep tokens with p >= min_p * p_max; at most 1 */
    float repeat_penalty; /* > 0; 1: off. For each distinct token among the last repeat_last_n
                             accepted ones: logit > 0 ? logit / penalty : logit * penalty */
    int repeat_last_n;    /* window; 0: off, -1: whole history */
    uint64_t seed;
} bn_sampler_params;

/* temp 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1.0, repeat_last_n 64, seed 0 */
void bn_sampler_params_default(bn_sampler_params *p);

typedef struct bn_sampler bn_sampler;

/* Validates p (n_vocab >= 1, finite temp, top_p in (0, 1], min_p <= 1,
 * repeat_penalty > 0, repeat_last_n >= -1) and allocates every buffer. */
bn_status bn_sampler_new(const bn_sampler_params *p, int n_vocab, bn_sampler **out, bn_err *err);
void bn_sampler_free(bn_sampler *s);

/* Returns a token id in [0, n_vocab) for logits[n_vocab]. Does not record the
 * token: call bn_sampler_accept with the token actually used. */
int bn_sampler_sample(bn_sampler *s, const float *logits);

/* Records a token for the repetition penalty (ids outside [0, n_vocab) are ignored). */
void bn_sampler_accept(bn_sampler *s, int token);

/* Clears the history and reseeds the generator with the original seed. */
void bn_sampler_reset(bn_sampler *s);

#endif
