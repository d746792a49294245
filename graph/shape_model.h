/* shape_model.h - a model made of a shape alone: hyperparameters and tensor
 * descriptions (name, type, shape, size) with no data, laid out as `bitnet
 * gen` writes them. The graph builder accepts it, so the planner sees the
 * same graph as for a real file, which lets `bitnet plan --shape 100b` plan
 * a model one does not have. Never run its graph: weights point nowhere. */
#ifndef BN_SHAPE_MODEL_H
#define BN_SHAPE_MODEL_H

#include "../core/model.h"
#include "build.h"

typedef struct bn_shape_params {
    const char *arch; /* "bitnet-b1.58", "bitnet", "llama" */
    const char *name;
    int n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, n_ctx;
    float rope_freq_base;
    bool untied_output; /* llama layout: output.weight, no sub-norms */
    uint32_t proj_type; /* I2_S, TQ2_0, TQ1_0, F16, ... */
} bn_shape_params;

bn_status bn_shape_model_new(const bn_shape_params *s, bn_model **out, bn_err *err);
void bn_shape_model_free(bn_model *m);

/* A KV cache description for planning: shapes only, no memory. */
bn_status bn_shape_kv(const bn_model *m, int n_ctx, uint32_t type, bn_kv_cache *kv, bn_err *err);
void bn_shape_kv_free(bn_kv_cache *kv);

#endif
