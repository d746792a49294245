/* build.h - the forward pass of a model as a graph (FORMATS.md "One layer").
 *
 * One builder serves every supported architecture: BitNet b1.58 (ReLU^2 or
 * SiLU FFN, sub-norms) and the llama layout with ternary weights. A graph is
 * built for a number of tokens; the position in the sequence (n_past) is set
 * before each run with bn_forward_set_n_past, so one graph serves every step. */
#ifndef BN_BUILD_H
#define BN_BUILD_H

#include <stdbool.h>

#include "../core/model.h"
#include "ir.h"

/* The KV cache: per layer a K and a V tensor [head_dim * n_head_kv, n_ctx]. */
typedef struct bn_kv_cache {
    int n_ctx, n_layer;
    uint32_t type; /* BN_TYPE_F16 or BN_TYPE_F32 */
    int64_t row_elems;
    void **k, **v;
} bn_kv_cache;

bn_status bn_kv_cache_init(bn_kv_cache *kv, const bn_hparams *hp, int n_ctx, uint32_t type,
                           bn_err *err);
void bn_kv_cache_free(bn_kv_cache *kv);
size_t bn_kv_cache_bytes(const bn_kv_cache *kv);

typedef struct bn_forward {
    bn_graph *g;
    int n_tokens;
    bool all_logits;
    bn_tensor *tokens;    /* I32 [n_tokens], input */
    bn_tensor *positions; /* I32 [n_tokens], input */
    bn_tensor *out_ids;   /* I32 [1] = n_tokens - 1 when !all_logits, input */
    bn_tensor *logits;    /* F32 [n_vocab, all_logits ? n_tokens : 1], output */
} bn_forward;

bn_status bn_build_forward(const bn_model *m, const bn_kv_cache *kv, int n_tokens, bool all_logits,
                           bn_forward *out, bn_err *err);
void bn_forward_free(bn_forward *f);
/* Sets the position of the first token for every KV_STORE and ATTENTION node. */
void bn_forward_set_n_past(bn_forward *f, int n_past);

#endif
