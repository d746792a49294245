/* context.c - evaluation of token batches on the planned devices (see context.h). */
#include "context.h"

#include <stdlib.h>
#include <string.h>

#include "../core/os.h"
#include "devices.h"
#include "planner.h"
#include "scheduler.h"

#define MAX_GRAPHS 4

typedef struct cached_graph {
    int n_tokens;
    bool all_logits;
    bn_forward fwd;
    bn_sched *sched; /* fwd split across the devices */
    unsigned last_used;
} cached_graph;

struct bn_context {
    const bn_model *model;
    bn_context_params p;
    bn_kv_cache kv;
    bn_devset ds;
    bn_plan_model pm;
    bn_plan plan;
    char text[8192];
    int *kv_home; /* per layer: the device holding its KV cache (scheduler.h) */
    cached_graph graphs[MAX_GRAPHS];
    int n_graphs;
    unsigned clock;
    int n_past;
};

void bn_context_params_default(bn_context_params *p) {
    memset(p, 0, sizeof *p);
    p->kv_type = BN_TYPE_F16;
    p->gpu_layers = -1;
}

static bn_status get_graph(bn_context *c, int n, bool all_logits, bn_forward **out,
                           bn_sched **sched, int *failed, bn_err *err);

/* Resolves the devices, plans, opens them and prepares the one-token graph; a
 * device that fails to prepare its part is dropped (its work goes to the CPU,
 * with a note) and the plan is made again. Fills c->text. */
static bn_status plan_devices(bn_context *c, const bn_context_params *p, bn_err *err) {
    bn_device_request r = {
        .backend = p->backend, .devices = p->devices, .profile = p->profile, .gpu_mem = p->gpu_mem};
    bn_plan_constraints pc;
    bn_plan_constraints_default(&pc);
    pc.gpu_layers = p->gpu_layers;
    if (p->tensor_split && bn_plan_parse_split(p->tensor_split, &pc, err) != BN_OK)
        return err->code;
    if (p->tensor_split) pc.fixed_order = true;
    if (bn_devset_resolve(&r, &c->ds, err) != BN_OK) return err->code;
    bn_backend_config cfg = {.n_threads = p->n_threads};
    c->kv_home = malloc(sizeof(int) * (size_t)c->model->hp.n_layer);
    if (!c->kv_home) return bn_fail(err, BN_ERR_OOM, "out of memory");
    for (;;) {
        for (int l = 0; l < c->model->hp.n_layer; l++) c->kv_home[l] = -1;
        if (bn_devset_plan(&c->ds, c->model, &c->kv, c->p.n_batch, &pc, &cfg, true, &c->pm,
                           &c->plan, err) != BN_OK)
            return err->code;
        bn_forward *f;
        bn_sched *s;
        int failed = -1;
        if (get_graph(c, 1, false, &f, &s, &failed, err) == BN_OK) break;
        if (failed < 0 || failed == c->ds.fallback) return err->code;
        bn_devset_drop(&c->ds, failed, err);
        bn_plan_free(&c->plan);
        bn_plan_model_free(&c->pm);
    }
    snprintf(c->text, sizeof c->text, "%s%splan: %s%s%s%s%s", c->ds.note, c->ds.note[0] ? "\n" : "",
             c->plan.reason, c->plan.fallbacks[0] ? "\non the CPU instead: " : "",
             c->plan.fallbacks, c->plan.warning[0] ? "\nwarning: " : "", c->plan.warning);
    return BN_OK;
}

/* A context the model was not trained for, or whose KV cache does not fit in the
 * memory available now, is refused before anything is allocated. */
static bn_status check_context_size(const bn_model *m, int n_ctx, uint32_t kv_type, bn_err *err) {
    const bn_hparams *hp = &m->hp;
    if (n_ctx > hp->n_ctx_train)
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "a context of %d tokens is larger than the %d the model was trained for; "
                       "use -c %d or less",
                       n_ctx, hp->n_ctx_train, hp->n_ctx_train);
    double kv = 2.0 * hp->n_layer * (double)n_ctx * hp->head_dim * hp->n_head_kv *
                (kv_type == BN_TYPE_F32 ? 4 : 2);
    uint64_t total, avail;
    bn_host_memory(&total, &avail);
    if (avail && kv > (double)avail)
        return bn_fail(err, BN_ERR_OOM,
                       "a KV cache of %d tokens needs %.1f MB but only %.1f MB of memory is "
                       "available; use a smaller -c (or --kv f16)",
                       n_ctx, kv / 1e6, (double)avail / 1e6);
    return BN_OK;
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
    bn_status st = check_context_size(m, c->p.n_ctx, c->p.kv_type, err);
    if (st == BN_OK) st = bn_kv_cache_init(&c->kv, &m->hp, c->p.n_ctx, c->p.kv_type, err);
    if (st == BN_OK) st = plan_devices(c, p, err);
    if (st != BN_OK) {
        bn_context_free(c);
        return st;
    }
    *out = c;
    return BN_OK;
}

/* Drops cached graph i (its segments, then the graph). */
static void drop_graph(bn_context *c, int i) {
    bn_sched_free(c->graphs[i].sched);
    c->graphs[i].sched = NULL;
    bn_forward_free(&c->graphs[i].fwd);
}

void bn_context_free(bn_context *c) {
    if (!c) return;
    for (int i = 0; i < c->n_graphs; i++) drop_graph(c, i);
    bn_devset_close(&c->ds);
    bn_plan_free(&c->plan);
    bn_plan_model_free(&c->pm);
    bn_kv_cache_free(&c->kv);
    free(c->kv_home);
    free(c);
}

/* The graph for n tokens, built and prepared on first use; the least recently
 * used one is dropped when the cache is full. */
static bn_status get_graph(bn_context *c, int n, bool all_logits, bn_forward **out,
                           bn_sched **sched, int *failed, bn_err *err) {
    c->clock++;
    for (int i = 0; i < c->n_graphs; i++)
        if (c->graphs[i].n_tokens == n && c->graphs[i].all_logits == all_logits) {
            c->graphs[i].last_used = c->clock;
            *out = &c->graphs[i].fwd;
            *sched = c->graphs[i].sched;
            return BN_OK;
        }
    int slot = c->n_graphs;
    if (slot == MAX_GRAPHS) {
        slot = 0;
        for (int i = 1; i < MAX_GRAPHS; i++)
            if (c->graphs[i].last_used < c->graphs[slot].last_used) slot = i;
        drop_graph(c, slot);
        c->n_graphs--;
        c->graphs[slot] = c->graphs[c->n_graphs];
        slot = c->n_graphs;
    }
    cached_graph *cg = &c->graphs[slot];
    bn_status st = bn_build_forward(c->model, &c->kv, n, all_logits, &cg->fwd, err);
    if (st != BN_OK) return st;
    st = bn_sched_new(cg->fwd.g, c->plan.unit_device, c->plan.n_units, c->ds.be, c->ds.n,
                      c->ds.fallback, c->kv_home, &cg->sched, failed, err);
    if (st != BN_OK) {
        bn_forward_free(&cg->fwd);
        return st;
    }
    cg->n_tokens = n;
    cg->all_logits = all_logits;
    cg->last_used = c->clock;
    c->n_graphs++;
    *out = &cg->fwd;
    *sched = cg->sched;
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
        bn_sched *sched;
        bn_status st = get_graph(c, b, all_logits, &f, &sched, NULL, err);
        if (st != BN_OK) return st;
        int32_t *ids = f->tokens->data, *pos = f->positions->data;
        for (int i = 0; i < b; i++) {
            ids[i] = tokens[done + i];
            pos[i] = c->n_past + i;
        }
        if (f->out_ids) *(int32_t *)f->out_ids->data = b - 1;
        bn_forward_set_n_past(f, c->n_past);
        st = bn_sched_compute(sched, err);
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

void bn_context_truncate(bn_context *c, int n) {
    if (n >= 0 && n < c->n_past) c->n_past = n;
}

size_t bn_context_kv_bytes(const bn_context *c) {
    return bn_kv_cache_bytes(&c->kv);
}

const char *bn_context_plan_text(const bn_context *c) {
    return c->text;
}

void bn_context_print_plan(const bn_context *c, FILE *out) {
    bn_plan_print(&c->plan, &c->pm, out);
}

void bn_context_devices(const bn_context *c, char *buf, size_t len) {
    size_t used = 0;
    if (len) buf[0] = 0;
    for (int d = 0; d < c->plan.n_devices; d++) {
        bool busy = false;
        for (int u = 0; u < c->plan.n_units && !busy; u++) busy = c->plan.unit_device[u] == d;
        if (!busy) continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", c->plan.dev[d].id);
        if (n < 0 || (size_t)n >= len - used) break;
        used += (size_t)n;
    }
}
