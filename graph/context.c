/* context.c - evaluation of token batches on the CPU backend (see context.h). */
#include "context.h"

#include <stdlib.h>
#include <string.h>

#define MAX_GRAPHS 4

typedef struct cached_graph {
    int n_tokens;
    bool all_logits;
    bn_forward fwd;
    unsigned last_used;
} cached_graph;

struct bn_context {
    const bn_model *model;
    bn_context_params p;
    bn_kv_cache kv;
    bn_backend *backend;
    cached_graph graphs[MAX_GRAPHS];
    int n_graphs;
    unsigned clock;
    int n_past;
};

void bn_context_params_default(bn_context_params *p) {
    memset(p, 0, sizeof *p);
    p->kv_type = BN_TYPE_F16;
}

bn_status bn_context_new(const bn_model *m, const bn_context_params *p, bn_context **out,
                         bn_err *err) {
    *out = NULL;
    bn_context *c = calloc(1, sizeof *c);
    if (!c) return bn_fail(err, BN_ERR_OOM, "out of memory");
    c->model = m;
    c->p = *p;
    if (c->p.n_ctx <= 0) c->p.n_ctx = m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096;
    if (c->p.n_batch <= 0) c->p.n_batch = 64;
    if (c->p.n_batch > c->p.n_ctx) c->p.n_batch = c->p.n_ctx;
    if (c->p.kv_type != BN_TYPE_F32) c->p.kv_type = BN_TYPE_F16;
    bn_status st = bn_kv_cache_init(&c->kv, &m->hp, c->p.n_ctx, c->p.kv_type, err);
    if (st == BN_OK) {
        bn_backend_config cfg = {.n_threads = p->n_threads};
        st = bn_backend_cpu()->open(0, &cfg, &c->backend, err);
    }
    if (st != BN_OK) {
        bn_context_free(c);
        return st;
    }
    *out = c;
    return BN_OK;
}

void bn_context_free(bn_context *c) {
    if (!c) return;
    for (int i = 0; i < c->n_graphs; i++) {
        if (c->backend) c->backend->ops->graph_release(c->backend, c->graphs[i].fwd.g);
        bn_forward_free(&c->graphs[i].fwd);
    }
    if (c->backend) c->backend->ops->close(c->backend);
    bn_kv_cache_free(&c->kv);
    free(c);
}

/* The graph for n tokens, built and prepared on first use; the least recently
 * used one is dropped when the cache is full. */
static bn_status get_graph(bn_context *c, int n, bool all_logits, bn_forward **out, bn_err *err) {
    c->clock++;
    for (int i = 0; i < c->n_graphs; i++)
        if (c->graphs[i].n_tokens == n && c->graphs[i].all_logits == all_logits) {
            c->graphs[i].last_used = c->clock;
            *out = &c->graphs[i].fwd;
            return BN_OK;
        }
    int slot = c->n_graphs;
    if (slot == MAX_GRAPHS) {
        slot = 0;
        for (int i = 1; i < MAX_GRAPHS; i++)
            if (c->graphs[i].last_used < c->graphs[slot].last_used) slot = i;
        c->backend->ops->graph_release(c->backend, c->graphs[slot].fwd.g);
        bn_forward_free(&c->graphs[slot].fwd);
        c->n_graphs--;
        c->graphs[slot] = c->graphs[c->n_graphs];
        slot = c->n_graphs;
    }
    cached_graph *cg = &c->graphs[slot];
    bn_status st = bn_build_forward(c->model, &c->kv, n, all_logits, &cg->fwd, err);
    if (st != BN_OK) return st;
    st = c->backend->ops->graph_prepare(c->backend, cg->fwd.g, err);
    if (st != BN_OK) {
        bn_forward_free(&cg->fwd);
        return st;
    }
    cg->n_tokens = n;
    cg->all_logits = all_logits;
    cg->last_used = c->clock;
    c->n_graphs++;
    *out = &cg->fwd;
    return BN_OK;
}

bn_status bn_context_eval(bn_context *c, const int32_t *tokens, int n, bool all_logits,
                          float *logits, bn_err *err) {
    int n_vocab = c->model->hp.n_vocab;
    if (n <= 0) return bn_fail(err, BN_ERR_INVALID_ARG, "nothing to evaluate (0 tokens)");
    if (n > c->p.n_ctx - c->n_past)
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "%d tokens do not fit in the context: %d of %d positions are used; use a "
                       "larger -c or a shorter prompt",
                       n, c->n_past, c->p.n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return bn_fail(err, BN_ERR_INVALID_ARG, "token id %d is out of range (vocabulary: %d)",
                           tokens[i], n_vocab);
    for (int done = 0; done < n;) {
        int b = n - done < c->p.n_batch ? n - done : c->p.n_batch;
        bool last = done + b == n;
        bn_forward *f;
        bn_status st = get_graph(c, b, all_logits, &f, err);
        if (st != BN_OK) return st;
        int32_t *ids = f->tokens->data, *pos = f->positions->data;
        for (int i = 0; i < b; i++) {
            ids[i] = tokens[done + i];
            pos[i] = c->n_past + i;
        }
        if (f->out_ids) *(int32_t *)f->out_ids->data = b - 1;
        bn_forward_set_n_past(f, c->n_past);
        st = c->backend->ops->graph_compute(c->backend, f->g, err);
        if (st != BN_OK) return st;
        if (all_logits)
            memcpy(logits + (size_t)done * n_vocab, f->logits->data,
                   sizeof(float) * (size_t)b * n_vocab);
        else if (last)
            memcpy(logits, f->logits->data, sizeof(float) * (size_t)n_vocab);
        c->n_past += b;
        done += b;
    }
    return BN_OK;
}

int bn_context_n_past(const bn_context *c) {
    return c->n_past;
}

int bn_context_n_ctx(const bn_context *c) {
    return c->p.n_ctx;
}

void bn_context_reset(bn_context *c) {
    c->n_past = 0;
}

size_t bn_context_kv_bytes(const bn_context *c) {
    return bn_kv_cache_bytes(&c->kv);
}
