/* context.h - running a model: owns the KV cache, builds and caches the forward
 * graphs (one per batch size), feeds tokens in batches and returns logits.
 *
 * bn_context_eval appends tokens after the ones already evaluated (n_past)
 * and writes the logits of the last token, or of every token. A prompt longer
 * than the remaining context is refused with a clear error. */
#ifndef BN_CONTEXT_H
#define BN_CONTEXT_H

#include <stdbool.h>

#include "../backends/backend.h"
#include "../core/model.h"
#include "build.h"

typedef struct bn_context_params {
    int n_ctx;        /* 0: the model's training context, capped at 4096 */
    int n_batch;      /* tokens per graph run (prompt processing); 0: 64 */
    int n_threads;    /* 0: physical cores */
    uint32_t kv_type; /* BN_TYPE_F16 (default) or BN_TYPE_F32 */
} bn_context_params;

typedef struct bn_context bn_context;

void bn_context_params_default(bn_context_params *p);
bn_status bn_context_new(const bn_model *m, const bn_context_params *p, bn_context **out,
                         bn_err *err);
void bn_context_free(bn_context *c);

/* Evaluates n tokens at positions n_past.. and advances n_past. logits receives
 * n_vocab floats (the last token) or n * n_vocab (all_logits, row per token). */
bn_status bn_context_eval(bn_context *c, const int32_t *tokens, int n, bool all_logits,
                          float *logits, bn_err *err);

int bn_context_n_past(const bn_context *c);
int bn_context_n_ctx(const bn_context *c);
/* Forgets every evaluated token (the cache is overwritten from position 0). */
void bn_context_reset(bn_context *c);
size_t bn_context_kv_bytes(const bn_context *c);

#endif
