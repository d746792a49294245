/* build.c - the model graph builder: one transformer layer after another, read
 * top to bottom like the math in FORMATS.md "One layer". */
#include "build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bn_status bn_kv_cache_init(bn_kv_cache *kv, const bn_hparams *hp, int n_ctx, uint32_t type,
                           bn_err *err) {
    memset(kv, 0, sizeof *kv);
    if (type != BN_TYPE_F16 && type != BN_TYPE_F32)
        return bn_fail(err, BN_ERR_INVALID_ARG, "the KV cache must be f16 or f32");
    kv->n_ctx = n_ctx;
    kv->n_layer = hp->n_layer;
    kv->type = type;
    kv->row_elems = (int64_t)hp->head_dim * hp->n_head_kv;
    kv->k = calloc((size_t)hp->n_layer, sizeof(void *));
    kv->v = calloc((size_t)hp->n_layer, sizeof(void *));
    if (!kv->k || !kv->v) goto oom;
    size_t bytes = bn_kv_cache_bytes(kv) / 2 / (size_t)hp->n_layer;
    for (int l = 0; l < hp->n_layer; l++) {
        kv->k[l] = calloc(1, bytes);
        kv->v[l] = calloc(1, bytes);
        if (!kv->k[l] || !kv->v[l]) goto oom;
    }
    return BN_OK;
oom:
    bn_kv_cache_free(kv);
    return bn_fail(err, BN_ERR_OOM, "out of memory for a KV cache of %d tokens", n_ctx);
}

void bn_kv_cache_free(bn_kv_cache *kv) {
    for (int l = 0; l < kv->n_layer; l++) {
        if (kv->k) free(kv->k[l]);
        if (kv->v) free(kv->v[l]);
    }
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
}

size_t bn_kv_cache_bytes(const bn_kv_cache *kv) {
    size_t elem = kv->type == BN_TYPE_F16 ? 2 : 4;
    return 2 * (size_t)kv->n_layer * (size_t)kv->n_ctx * (size_t)kv->row_elems * elem;
}

/* A leaf for a model tensor, its data in the file mapping. */
static bn_tensor *weight(bn_graph *g, const gguf_tensor_info *ti) {
    bn_tensor *t = bn_new_tensor(g, ti->type, ti->ne[0], ti->ne[1], ti->name);
    t->data = (void *)ti->data;
    t->flags |= BN_TENSOR_WEIGHT;
    return t;
}

/* A projection y = W x: a BitLinear (per-token int8 input, ternary matmul) or a
 * float matmul; optionally times a per-tensor output scale. xq is the quantized
 * input, shared by projections that read the same x. */
static bn_tensor *project(bn_graph *g, const bn_model *m, const gguf_tensor_info *w,
                          const gguf_tensor_info *scale, bn_tensor *x, bn_tensor *xq) {
    bn_tensor *y =
        m->hp.bitlinear ? bn_matmul_ternary(g, weight(g, w), xq) : bn_matmul_f(g, weight(g, w), x);
    bn_set_name(y, "%.50s", w->name);
    if (scale) y = bn_mul(g, y, weight(g, scale));
    return y;
}

static bn_tensor *norm(bn_graph *g, const bn_model *m, bn_tensor *x, const gguf_tensor_info *w) {
    return bn_mul(g, bn_rms_norm(g, x, m->hp.rms_eps), weight(g, w));
}

static bn_tensor *quant(bn_graph *g, const bn_model *m, bn_tensor *x) {
    return m->hp.bitlinear ? bn_quantize_act(g, x) : NULL;
}

bn_status bn_build_forward(const bn_model *m, const bn_kv_cache *kv, int n_tokens, bool all_logits,
                           bn_forward *out, bn_err *err) {
    memset(out, 0, sizeof *out);
    const bn_hparams *hp = &m->hp;
    bn_graph *g = bn_graph_new();
    if (!g) return bn_fail(err, BN_ERR_OOM, "out of memory for the graph");
    out->g = g;
    out->n_tokens = n_tokens;
    out->all_logits = all_logits;
    out->tokens = bn_new_tensor(g, BN_TYPE_I32, n_tokens, 1, "tokens");
    out->positions = bn_new_tensor(g, BN_TYPE_I32, n_tokens, 1, "positions");
    out->tokens->flags |= BN_TENSOR_INPUT;
    out->positions->flags |= BN_TENSOR_INPUT;
    float kq_scale = 1.0f / sqrtf((float)hp->head_dim);

    bn_tensor *x = bn_set_name(bn_get_rows(g, weight(g, m->tok_embd), out->tokens), "inp_embd");
    for (int i = 0; i < g->n_tensors; i++) g->tensors[i]->layer = -1; /* the embedding */
    for (int l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &m->layers[l];
        int first = g->n_tensors; /* tensors made from here to the loop's end belong to layer l */

        /* attention: h = norm(x); q, k, v = BitLinear(h); RoPE; cache; attend */
        bn_tensor *h = norm(g, m, x, L->attn_norm);
        bn_tensor *hq = quant(g, m, h);
        bn_tensor *q = project(g, m, L->attn_q, L->attn_q_scale, h, hq);
        bn_tensor *k = project(g, m, L->attn_k, L->attn_k_scale, h, hq);
        bn_tensor *v = project(g, m, L->attn_v, L->attn_v_scale, h, hq);
        q = bn_rope(g, q, out->positions, hp->rope_mode, hp->n_rot, hp->head_dim,
                    hp->rope_freq_base);
        k = bn_rope(g, k, out->positions, hp->rope_mode, hp->n_rot, hp->head_dim,
                    hp->rope_freq_base);
        bn_tensor *kc = bn_new_tensor(g, kv->type, kv->row_elems, kv->n_ctx, "cache_k");
        bn_tensor *vc = bn_new_tensor(g, kv->type, kv->row_elems, kv->n_ctx, "cache_v");
        kc->data = kv->k[l];
        vc->data = kv->v[l];
        kc->flags |= BN_TENSOR_CACHE;
        vc->flags |= BN_TENSOR_CACHE;
        bn_tensor *ks = bn_set_name(bn_kv_store(g, kc, k, 0), "blk.%d.k_store", l);
        bn_tensor *vs = bn_set_name(bn_kv_store(g, vc, v, 0), "blk.%d.v_store", l);
        bn_tensor *a =
            bn_attention(g, q, ks, vs, 0, hp->n_head, hp->n_head_kv, hp->head_dim, kq_scale);
        bn_set_name(a, "blk.%d.attn", l);
        if (L->attn_sub_norm) a = norm(g, m, a, L->attn_sub_norm);
        x = bn_add(g, x, project(g, m, L->attn_output, L->attn_output_scale, a, quant(g, m, a)));

        /* feed-forward: f = act(gate(h)) * up(h); sub-norm; x += down(f) */
        h = norm(g, m, x, L->ffn_norm);
        hq = quant(g, m, h);
        bn_tensor *gate = project(g, m, L->ffn_gate, L->ffn_gate_scale, h, hq);
        bn_tensor *up = project(g, m, L->ffn_up, L->ffn_up_scale, h, hq);
        gate = hp->ffn_act == BN_FFN_RELU_SQR ? bn_relu_sqr(g, gate) : bn_silu(g, gate);
        bn_tensor *f = bn_mul(g, gate, up);
        if (L->ffn_sub_norm) f = norm(g, m, f, L->ffn_sub_norm);
        x = bn_add(g, x, project(g, m, L->ffn_down, L->ffn_down_scale, f, quant(g, m, f)));
        bn_set_name(x, "blk.%d.out", l);
        for (int i = first; i < g->n_tensors; i++) g->tensors[i]->layer = l;
    }
    int head = g->n_tensors; /* the output head from here on */
    if (!all_logits) {
        out->out_ids = bn_new_tensor(g, BN_TYPE_I32, 1, 1, "out_ids");
        out->out_ids->flags |= BN_TENSOR_INPUT;
        x = bn_get_rows(g, x, out->out_ids);
    }
    x = norm(g, m, x, m->output_norm);
    out->logits = bn_set_name(bn_matmul_f(g, weight(g, m->output), x), "logits");
    out->logits->flags |= BN_TENSOR_OUTPUT;
    for (int i = head; i < g->n_tensors; i++) g->tensors[i]->layer = -1;
    bn_status st = bn_graph_check(g, err);
    if (st != BN_OK) bn_forward_free(out);
    return st;
}

void bn_forward_free(bn_forward *f) {
    bn_graph_free(f->g);
    f->g = NULL;
}

void bn_forward_set_n_past(bn_forward *f, int n_past) {
    for (int i = 0; i < f->g->n_nodes; i++) {
        bn_tensor *t = f->g->nodes[i];
        if (t->op == BN_OP_KV_STORE || t->op == BN_OP_ATTENTION) t->ip[0] = n_past;
    }
}
