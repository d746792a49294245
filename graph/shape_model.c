/* shape_model.c - models described by a shape, without data (see shape_model.h). */
#include "shape_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape_model {
    bn_model m;
    gguf_tensor_info *infos;
    int n_infos;
} shape_model;

static const gguf_tensor_info *add(shape_model *s, uint32_t type, int64_t ne0, int64_t ne1,
                                   const char *fmt, int layer) {
    gguf_tensor_info *t = &s->infos[s->n_infos++];
    snprintf(t->name, sizeof t->name, fmt, layer);
    t->n_dims = ne1 > 1 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = t->ne[3] = 1;
    t->type = type;
    size_t bytes = 0;
    bn_tensor_bytes(type, t->ne, &bytes, NULL);
    t->nbytes = bytes;
    return t;
}

bn_status bn_shape_model_new(const bn_shape_params *p, bn_model **out, bn_err *err) {
    *out = NULL;
    if (p->n_layer < 1 || p->n_embd < 1 || p->n_head < 1 || p->n_head_kv < 1 ||
        p->n_embd % p->n_head || p->n_head % p->n_head_kv || p->n_ff < 1 || p->n_vocab < 1)
        return bn_fail(err, BN_ERR_INVALID_ARG, "the shape is not valid");
    if (!bn_type_name(p->proj_type))
        return bn_fail(err, BN_ERR_INVALID_ARG, "unknown weight type %u", p->proj_type);
    shape_model *s = calloc(1, sizeof *s);
    if (!s) return bn_fail(err, BN_ERR_OOM, "out of memory");
    s->infos = calloc((size_t)(3 + 11 * p->n_layer), sizeof *s->infos);
    s->m.layers = calloc((size_t)p->n_layer, sizeof *s->m.layers);
    if (!s->infos || !s->m.layers) {
        bn_shape_model_free(&s->m);
        return bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    bn_hparams *hp = &s->m.hp;
    snprintf(hp->arch_name, sizeof hp->arch_name, "%s", p->arch);
    hp->arch = !strcmp(p->arch, "llama")    ? BN_ARCH_LLAMA
               : !strcmp(p->arch, "bitnet") ? BN_ARCH_BITNET
                                            : BN_ARCH_BITNET_B158;
    bool llama = hp->arch == BN_ARCH_LLAMA;
    hp->n_vocab = p->n_vocab;
    hp->n_embd = p->n_embd;
    hp->n_layer = p->n_layer;
    hp->n_head = p->n_head;
    hp->n_head_kv = p->n_head_kv;
    hp->head_dim = p->n_embd / p->n_head;
    hp->n_rot = hp->head_dim;
    hp->n_ff = p->n_ff;
    hp->n_ctx_train = p->n_ctx;
    hp->rms_eps = 1e-5f;
    hp->rope_freq_base = p->rope_freq_base;
    hp->rope_mode = llama ? BN_ROPE_NORMAL : BN_ROPE_NEOX;
    hp->ffn_act = hp->arch == BN_ARCH_BITNET_B158 ? BN_FFN_RELU_SQR : BN_FFN_SILU;
    hp->sub_norms = !p->untied_output;
    hp->tied_output = !p->untied_output;
    hp->bitlinear = !llama || bn_type_is_ternary(p->proj_type);
    snprintf(s->m.path, sizeof s->m.path, "%s", p->name ? p->name : "shape");
    s->m.weight_type = p->proj_type;
    int64_t E = p->n_embd, F = p->n_ff, KV = (int64_t)hp->head_dim * p->n_head_kv;
    uint32_t P = p->proj_type;
    s->m.tok_embd = add(s, BN_TYPE_F16, E, p->n_vocab, "token_embd.weight", 0);
    s->m.output_norm = add(s, BN_TYPE_F32, E, 1, "output_norm.weight", 0);
    s->m.output =
        p->untied_output ? add(s, BN_TYPE_F16, E, p->n_vocab, "output.weight", 0) : s->m.tok_embd;
    for (int l = 0; l < p->n_layer; l++) {
        bn_layer *L = &s->m.layers[l];
        L->attn_norm = add(s, BN_TYPE_F32, E, 1, "blk.%d.attn_norm.weight", l);
        L->attn_q = add(s, P, E, E, "blk.%d.attn_q.weight", l);
        L->attn_k = add(s, P, E, KV, "blk.%d.attn_k.weight", l);
        L->attn_v = add(s, P, E, KV, "blk.%d.attn_v.weight", l);
        L->attn_output = add(s, P, E, E, "blk.%d.attn_output.weight", l);
        if (hp->sub_norms)
            L->attn_sub_norm = add(s, BN_TYPE_F32, E, 1, "blk.%d.attn_sub_norm.weight", l);
        L->ffn_norm = add(s, BN_TYPE_F32, E, 1, "blk.%d.ffn_norm.weight", l);
        L->ffn_gate = add(s, P, E, F, "blk.%d.ffn_gate.weight", l);
        L->ffn_up = add(s, P, E, F, "blk.%d.ffn_up.weight", l);
        L->ffn_down = add(s, P, F, E, "blk.%d.ffn_down.weight", l);
        if (hp->sub_norms)
            L->ffn_sub_norm = add(s, BN_TYPE_F32, F, 1, "blk.%d.ffn_sub_norm.weight", l);
    }
    *out = &s->m;
    return BN_OK;
}

void bn_shape_model_free(bn_model *m) {
    if (!m) return;
    shape_model *s = (shape_model *)m; /* m is the first member */
    free(s->infos);
    free(s->m.layers);
    free(s);
}

bn_status bn_shape_kv(const bn_model *m, int n_ctx, uint32_t type, bn_kv_cache *kv, bn_err *err) {
    memset(kv, 0, sizeof *kv);
    kv->n_ctx = n_ctx;
    kv->n_layer = m->hp.n_layer;
    kv->type = type;
    kv->row_elems = (int64_t)m->hp.head_dim * m->hp.n_head_kv;
    kv->k = calloc((size_t)m->hp.n_layer, sizeof(void *));
    kv->v = calloc((size_t)m->hp.n_layer, sizeof(void *));
    if (!kv->k || !kv->v) {
        bn_shape_kv_free(kv);
        return bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    return BN_OK;
}

void bn_shape_kv_free(bn_kv_cache *kv) {
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
}
