/* planner.c - the cost model and the dynamic program of planner.h: model
 * costs from a graph, evaluation of an assignment, the search, and the
 * reason given for the result. Printing is in planner_print.c. */
#include "planner.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Speeds assumed for a device without a profile (its predicted times are
 * marked as such in the output; it gets units only when the user asks). */
static const bn_device_profile nominal = {
    .ternary_gbps = 10,
    .float_gflops = 10,
    .h2d_gbps = 10,
    .d2h_gbps = 10,
    .latency_us = 10,
    .dispatch_us = 5,
};

void bn_plan_device_unsupport(bn_plan_device *d, bn_op op, uint32_t type) {
    if (!bn_plan_device_runs(d, op, type) || d->n_unsupported == BN_PLAN_MAX_UNSUPPORTED) return;
    d->unsupported[d->n_unsupported].op = op;
    d->unsupported[d->n_unsupported].type = type;
    d->n_unsupported++;
}

bool bn_plan_device_runs(const bn_plan_device *d, bn_op op, uint32_t type) {
    for (int i = 0; i < d->n_unsupported; i++)
        if (d->unsupported[i].op == op && d->unsupported[i].type == type) return false;
    return true;
}

void bn_plan_node_key(const bn_tensor *n, bn_op *op, uint32_t *type) {
    *op = n->op;
    const bn_tensor *s = n->op == BN_OP_ATTENTION ? n->src[1] : n->src[0];
    *type = s ? s->type : n->type;
}

uint64_t bn_plan_usable(uint64_t budget) {
    return budget - budget / 20;
}

void bn_plan_constraints_default(bn_plan_constraints *c) {
    memset(c, 0, sizeof *c);
    c->gpu_layers = -1;
}

bn_status bn_plan_parse_split(const char *s, bn_plan_constraints *c, bn_err *err) {
    c->n_split = 0;
    double sum = 0;
    const char *p = s;
    while (p && *p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0 || !isfinite(v) || (*end && *end != ',') ||
            c->n_split == BN_PLAN_MAX_DEVICES)
            return bn_fail(err, BN_ERR_INVALID_ARG,
                           "--tensor-split must be up to %d non-negative numbers separated by "
                           "commas (e.g. 3,1), not '%s'",
                           BN_PLAN_MAX_DEVICES, s);
        c->split[c->n_split++] = v;
        sum += v;
        p = *end ? end + 1 : end;
    }
    if (c->n_split == 0 || sum <= 0)
        return bn_fail(err, BN_ERR_INVALID_ARG, "--tensor-split '%s' has no positive share", s);
    return BN_OK;
}

/* ---------------------------------------------------------------------------
 * Model costs from a graph
 * ------------------------------------------------------------------------- */

static bn_plan_item *unit_item(bn_plan_unit *u, bn_op op, uint32_t type) {
    for (int i = 0; i < u->n_items; i++)
        if (u->items[i].op == op && u->items[i].type == type) return &u->items[i];
    if (u->n_items == BN_PLAN_MAX_ITEMS) return NULL;
    bn_plan_item *it = &u->items[u->n_items++];
    memset(it, 0, sizeof *it);
    it->op = op;
    it->type = type;
    it->kv = op == BN_OP_KV_STORE || op == BN_OP_ATTENTION;
    return it;
}

/* Names of the weights already counted in a unit (a weight may be read twice). */
typedef struct name_set {
    const char **names;
    int n, cap;
} name_set;

static bool name_add(name_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) return false;
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 32;
        const char **p = realloc(s->names, sizeof *p * (size_t)nc);
        if (!p) return false;
        s->names = p;
        s->cap = nc;
    }
    s->names[s->n++] = name;
    return true;
}

static bool name_has(const name_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) return true;
    return false;
}

bn_status bn_plan_model_from_graph(const bn_graph *g, int n_layer, int n_ctx, int n_batch,
                                   uint64_t scratch_bytes, const char *name, bn_plan_model *out,
                                   bn_err *err) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name ? name : "model");
    out->n_layer = n_layer;
    out->n_ctx = n_ctx;
    out->n_batch = n_batch;
    out->n_units = n_layer + 2;
    out->scratch_bytes = scratch_bytes;
    out->units = calloc((size_t)out->n_units, sizeof *out->units);
    name_set *seen = calloc((size_t)out->n_units, sizeof *seen);
    if (!out->units || !seen) {
        free(seen);
        bn_plan_model_free(out);
        return bn_fail(err, BN_ERR_OOM, "out of memory for the plan");
    }
    for (int u = 0; u < out->n_units; u++) {
        out->units[u].kind = u == 0                  ? BN_UNIT_EMBD
                             : u == out->n_units - 1 ? BN_UNIT_HEAD
                                                     : BN_UNIT_LAYER;
        out->units[u].layer = u - 1;
    }
    double pos = n_ctx / 2.0; /* attention reads the cache as at half the context */
    bool in_layers = false;
    bn_status st = BN_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        const bn_tensor *n = g->nodes[i];
        int u;
        if (n->layer >= 0 && n->layer < n_layer) {
            u = 1 + n->layer;
            in_layers = true;
        } else {
            u = in_layers ? out->n_units - 1 : 0;
        }
        bn_plan_unit *U = &out->units[u];
        bn_op op;
        uint32_t type;
        bn_plan_node_key(n, &op, &type);
        bn_plan_item *it = unit_item(U, op, type);
        if (!it) {
            st = bn_fail(err, BN_ERR_INTERNAL, "unit %d has more than %d kinds of nodes", u,
                         BN_PLAN_MAX_ITEMS);
            break;
        }
        it->n_nodes++;
        double out_b = (double)bn_tensor_nbytes(n);
        double io = out_b;
        for (int s = 0; s < BN_MAX_SRC && n->src[s]; s++) {
            const bn_tensor *src = n->src[s];
            if (src->flags & BN_TENSOR_WEIGHT) {
                if (name_add(&seen[u], src->name)) {
                    it->weight_bytes += bn_tensor_nbytes(src);
                    U->weight_bytes += bn_tensor_nbytes(src);
                }
            } else if (src->op == BN_OP_NONE && (src->flags & BN_TENSOR_CACHE)) {
                it->kv_bytes += bn_tensor_nbytes(src);
                U->kv_bytes += bn_tensor_nbytes(src);
            } else if (src->op != BN_OP_KV_STORE) {
                io += (double)bn_tensor_nbytes(src);
            }
        }
        switch (n->op) {
        case BN_OP_MATMUL_TERNARY:
        case BN_OP_MATMUL_F: {
            double k = (double)n->src[0]->ne[0], rows = (double)n->src[0]->ne[1];
            it->bytes += (double)bn_tensor_nbytes(n->src[0]);
            it->flops += 2 * k * rows;
            it->prefill_flops += 2 * k * rows;
            break;
        }
        case BN_OP_GET_ROWS:
            it->bytes += (double)n->src[0]->nb[1] * (double)n->ne[1] + out_b;
            break;
        case BN_OP_ATTENTION:
            it->bytes += 2 * (double)n->src[1]->nb[1] * pos + 2 * out_b;
            it->flops += 4 * (double)n->ne[0] * pos;
            it->prefill_flops += 4 * (double)n->ne[0] * pos;
            break;
        case BN_OP_KV_STORE:
            it->bytes += 2 * (double)bn_tensor_nbytes(n->src[1]);
            break;
        default:
            it->bytes += 3 * out_b;
            it->flops += 4 * (double)bn_tensor_nelems(n);
            it->prefill_flops += 4 * (double)bn_tensor_nelems(n);
            break;
        }
        it->io_bytes += io;
        if (n->op != BN_OP_KV_STORE) U->out_bytes = out_b; /* the unit's last value */
        if (n->flags & BN_TENSOR_OUTPUT) out->logits_bytes += out_b;
    }
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i]->op == BN_OP_NONE && (g->tensors[i]->flags & BN_TENSOR_INPUT) &&
            !strcmp(g->tensors[i]->name, "tokens"))
            out->in_bytes = (double)bn_tensor_nbytes(g->tensors[i]);
    /* a table read by both the embedding and the head (tied output) */
    if (st == BN_OK)
        for (int i = 0; i < seen[0].n; i++)
            if (name_has(&seen[out->n_units - 1], seen[0].names[i]))
                for (int t = 0; t < g->n_tensors; t++)
                    if (g->tensors[t]->name == seen[0].names[i])
                        out->shared_bytes = bn_tensor_nbytes(g->tensors[t]);
    for (int u = 0; u < out->n_units; u++) free(seen[u].names);
    free(seen);
    if (st != BN_OK) bn_plan_model_free(out);
    return st;
}

void bn_plan_model_free(bn_plan_model *m) {
    free(m->units);
    m->units = NULL;
    m->n_units = 0;
}

/* ---------------------------------------------------------------------------
 * Costs
 * ------------------------------------------------------------------------- */

static double val(double v, double dflt) {
    return v > 0 ? v : dflt;
}

/* The profile used for computing: the device's, unknown numbers nominal. */
static bn_device_profile eff(const bn_plan_device *d) {
    bn_device_profile p = d->has_profile ? d->prof : nominal;
    p.ternary_gbps = val(p.ternary_gbps, nominal.ternary_gbps);
    p.float_gflops = val(p.float_gflops, nominal.float_gflops);
    p.h2d_gbps = val(p.h2d_gbps, nominal.h2d_gbps);
    p.d2h_gbps = val(p.d2h_gbps, nominal.d2h_gbps);
    if (p.latency_us < 0) p.latency_us = 0;
    if (p.dispatch_us < 0) p.dispatch_us = 0;
    return p;
}

/* Seconds of one item on a device, per generated token and per prompt token. */
static void item_time(const bn_plan_item *it, const bn_device_profile *p, int n_batch, double *dec,
                      double *pre) {
    double bw = p->ternary_gbps * 1e9, fl = p->float_gflops * 1e9, disp = p->dispatch_us * 1e-6;
    if (it->op == BN_OP_MATMUL_TERNARY) {
        /* decode: the measured rate includes the arithmetic; prefill: integer
         * ops at least as fast as float ones and as 8 per weight byte */
        *dec = it->bytes / bw + it->n_nodes * disp;
        double ops = fmax(fl, 8 * bw);
        *pre = it->prefill_flops / ops + (it->bytes / bw + it->n_nodes * disp) / n_batch;
    } else {
        *dec = fmax(it->bytes / bw, it->flops / fl) + it->n_nodes * disp;
        *pre = it->prefill_flops / fl + (it->weight_bytes / bw + it->n_nodes * disp) / n_batch;
    }
}

/* Seconds to move `bytes` from device a to device b through the host. */
static double xfer(const bn_device_profile *a, const bn_device_profile *b, double bytes) {
    return bytes / (a->d2h_gbps * 1e9) + a->latency_us * 1e-6 + bytes / (b->h2d_gbps * 1e9) +
           b->latency_us * 1e-6;
}

static bool kv_group_runs(const bn_plan_unit *u, const bn_plan_device *d) {
    for (int i = 0; i < u->n_items; i++)
        if (u->items[i].kv && !bn_plan_device_runs(d, u->items[i].op, u->items[i].type))
            return false;
    return true;
}

/* Whether item i of unit u runs on d (else on the fallback). */
static bool item_on(const bn_plan_unit *u, int i, const bn_plan_device *d, bool kv_ok) {
    const bn_plan_item *it = &u->items[i];
    return it->kv ? kv_ok : bn_plan_device_runs(d, it->op, it->type);
}

/* What unit u costs when placed on device d: time there, time of its items
 * that run on the fallback (with their copies), and memory on d. */
typedef struct unit_cost {
    double dec, pre;           /* total, per token, fallbacks and their copies included */
    double fb_dec, fb_pre;     /* the part spent on the fallback device */
    double copy_dec, copy_pre; /* the part spent copying to and from the fallback */
    uint64_t mem;              /* weights and caches on d */
    uint64_t fb_mem;           /* weights and caches on the fallback */
    bool table_here;           /* embedding / head: its table is on d */
} unit_cost;

static unit_cost cost_of(const bn_plan_model *m, int u, const bn_plan_device *devs, int d, int fb) {
    unit_cost c = {0};
    const bn_plan_unit *U = &m->units[u];
    bn_device_profile p = eff(&devs[d]), pf = eff(&devs[fb]);
    bool kv_ok = d == fb || kv_group_runs(U, &devs[d]);
    c.table_here = true;
    for (int i = 0; i < U->n_items; i++) {
        const bn_plan_item *it = &U->items[i];
        double dec, pre;
        if (d == fb || item_on(U, i, &devs[d], kv_ok)) {
            item_time(it, &p, m->n_batch, &dec, &pre);
            c.mem += it->weight_bytes + it->kv_bytes;
        } else {
            item_time(it, &pf, m->n_batch, &dec, &pre);
            c.fb_dec += dec;
            c.fb_pre += pre;
            c.fb_mem += it->weight_bytes + it->kv_bytes;
            if (m->shared_bytes && it->weight_bytes >= m->shared_bytes) c.table_here = false;
            double half = it->io_bytes / 2;
            double cp = xfer(&p, &pf, half) + xfer(&pf, &p, half);
            c.copy_dec += cp;
            c.copy_pre += cp / m->n_batch;
        }
        c.dec += dec;
        c.pre += pre;
    }
    c.dec += c.copy_dec;
    c.pre += c.copy_pre;
    return c;
}

/* ---------------------------------------------------------------------------
 * Evaluation of an assignment
 * ------------------------------------------------------------------------- */

static void copy_add(bn_plan *p, int from, int to, double bytes, double s) {
    if (bytes == 0) /* fallback copies: one entry per pair of devices */
        for (int i = 0; i < p->n_copies; i++)
            if (p->copies[i].bytes == 0 && p->copies[i].from == from && p->copies[i].to == to) {
                p->copies[i].seconds += s;
                return;
            }
    if (p->n_copies == (int)(sizeof p->copies / sizeof p->copies[0])) return;
    bn_plan_copy *c = &p->copies[p->n_copies++];
    c->from = from;
    c->to = to;
    c->bytes = bytes;
    c->seconds = s;
}

bn_status bn_plan_evaluate(const bn_plan_model *m, const bn_plan_device *devs, int n_devs,
                           int fallback, const int *unit_device, bn_plan *out, bn_err *err) {
    memset(out, 0, sizeof *out);
    if (n_devs < 1 || n_devs > BN_PLAN_MAX_DEVICES || fallback < 0 || fallback >= n_devs)
        return bn_fail(err, BN_ERR_INVALID_ARG, "the plan needs 1 to %d devices and a fallback",
                       BN_PLAN_MAX_DEVICES);
    out->n_devices = n_devs;
    out->fallback = fallback;
    memcpy(out->dev, devs, sizeof *devs * (size_t)n_devs);
    out->n_units = m->n_units;
    out->unit_device = malloc(sizeof(int) * (size_t)m->n_units);
    if (!out->unit_device) return bn_fail(err, BN_ERR_OOM, "out of memory for the plan");
    memcpy(out->unit_device, unit_device, sizeof(int) * (size_t)m->n_units);
    for (int d = 0; d < n_devs; d++) out->use[d].first_layer = out->use[d].last_layer = -1;
    bool busy[BN_PLAN_MAX_DEVICES] = {0};
    int embd_table = -1, head_table = -1;
    size_t fl = 0;
    for (int u = 0; u < m->n_units; u++) {
        int d = unit_device[u];
        if (d < 0 || d >= n_devs) {
            bn_plan_free(out);
            return bn_fail(err, BN_ERR_INVALID_ARG, "unit %d has no device", u);
        }
        const bn_plan_unit *U = &m->units[u];
        unit_cost c = cost_of(m, u, devs, d, fallback);
        bn_plan_use *use = &out->use[d], *fu = &out->use[fallback];
        busy[d] = true;
        if (c.fb_mem || c.fb_dec > 0) busy[fallback] = true;
        use->decode_s += c.dec - c.fb_dec - c.copy_dec;
        use->prefill_s += c.pre - c.fb_pre - c.copy_pre;
        fu->decode_s += c.fb_dec;
        fu->prefill_s += c.fb_pre;
        out->decode_s += c.dec;
        out->prefill_s += c.pre;
        if (c.copy_dec > 0) copy_add(out, d, fallback, 0, c.copy_dec);
        /* memory by kind */
        bool kv_ok = d == fallback || kv_group_runs(U, &devs[d]);
        for (int i = 0; i < U->n_items; i++) {
            bool here = d == fallback || item_on(U, i, &devs[d], kv_ok);
            bn_plan_use *w = here ? use : fu;
            w->weight_bytes += U->items[i].weight_bytes;
            w->kv_bytes += U->items[i].kv_bytes;
            if (!here && fl < sizeof out->fallbacks - 160) {
                const char *tn = bn_type_name(U->items[i].type);
                char where[32];
                if (U->kind == BN_UNIT_LAYER)
                    snprintf(where, sizeof where, "layer %d", U->layer);
                else
                    snprintf(where, sizeof where, "%s",
                             U->kind == BN_UNIT_EMBD ? "the embedding" : "the output head");
                int k = snprintf(out->fallbacks + fl, sizeof out->fallbacks - fl,
                                 "%s%s(%s) of %s on %s (%s cannot run it)", fl ? "; " : "",
                                 bn_op_name(U->items[i].op), tn ? tn : "?", where,
                                 devs[fallback].id, devs[d].id);
                if (k > 0) fl += (size_t)k;
            }
        }
        if (U->kind == BN_UNIT_EMBD) embd_table = c.table_here ? d : fallback;
        if (U->kind == BN_UNIT_HEAD) head_table = c.table_here ? d : fallback;
        if (U->kind == BN_UNIT_LAYER) {
            if (use->first_layer < 0) use->first_layer = U->layer;
            use->last_layer = U->layer;
        }
        if (U->kind == BN_UNIT_EMBD) use->embd = true;
        if (U->kind == BN_UNIT_HEAD) use->head = true;
        /* the boundary copy into this unit */
        const bn_device_profile pd = eff(&devs[d]);
        if (u == 0) {
            double s = m->in_bytes / (pd.h2d_gbps * 1e9) + pd.latency_us * 1e-6;
            out->decode_s += s;
            out->prefill_s += s / m->n_batch;
            copy_add(out, -1, d, m->in_bytes, s);
        } else if (unit_device[u - 1] != d) {
            int a = unit_device[u - 1];
            const bn_device_profile pa = eff(&devs[a]);
            double bytes = m->units[u - 1].out_bytes, s = xfer(&pa, &pd, bytes);
            out->decode_s += s;
            out->prefill_s += s / m->n_batch;
            copy_add(out, a, d, bytes, s);
        }
        if (u == m->n_units - 1) {
            double s = m->logits_bytes / (pd.d2h_gbps * 1e9) + pd.latency_us * 1e-6;
            out->decode_s += s;
            out->prefill_s += s / m->n_batch;
            copy_add(out, d, -1, m->logits_bytes, s);
        }
    }
    if (embd_table >= 0 && embd_table == head_table)
        out->use[embd_table].weight_bytes -= m->shared_bytes;
    out->fits = true;
    for (int d = 0; d < n_devs; d++) {
        bn_plan_use *use = &out->use[d];
        use->scratch_bytes = busy[d] ? m->scratch_bytes : 0;
        use->mem_bytes = use->weight_bytes + use->kv_bytes + use->scratch_bytes;
        use->usable_bytes = bn_plan_usable(devs[d].mem_budget);
        if (use->mem_bytes > use->usable_bytes) out->fits = false;
    }
    return BN_OK;
}

void bn_plan_free(bn_plan *p) {
    free(p->unit_device);
    p->unit_device = NULL;
}

/* ---------------------------------------------------------------------------
 * The search
 * ------------------------------------------------------------------------- */

typedef struct key {
    double pen, dec, pre; /* compared in this order */
} key;

static bool key_less(key a, key b) {
    if (a.pen != b.pen) return a.pen < b.pen;
    double tol = 1e-9 * fmax(fabs(a.dec), fabs(b.dec));
    if (fabs(a.dec - b.dec) > tol) return a.dec < b.dec;
    return a.pre < b.pre - 1e-9 * fmax(fabs(a.pre), fabs(b.pre));
}

static key key_add(key a, key b) {
    return (key){a.pen + b.pen, a.dec + b.dec, a.pre + b.pre};
}

typedef struct search {
    const bn_plan_model *m;
    const bn_plan_device *devs;
    int n_devs, fb, U, L;
    /* per device, prefix sums over units: cost, memory, penalty */
    key *pk[BN_PLAN_MAX_DEVICES];
    uint64_t *pm[BN_PLAN_MAX_DEVICES];
    bool both_tables[BN_PLAN_MAX_DEVICES]; /* embedding and head tables share memory there */
    uint64_t usable[BN_PLAN_MAX_DEVICES];
    int gpu_layers; /* -1: free */
    int G;          /* size of the layer-count dimension (1 when free) */
    /* DP tables for one order */
    key *best;
    int *from; /* parent state, -1 for a start */
    bool *ok;
    /* the best complete assignment so far */
    bool found;
    key best_key;
    int *best_assign, *assign;
} search;

static int layers_in(const search *s, int i, int j) { /* layer units in [i, j) */
    int a = i < 1 ? 1 : i, b = j > s->L + 1 ? s->L + 1 : j;
    return b > a ? b - a : 0;
}

/* Cost of units [i, j) on device d; false when they do not fit. */
static bool range_cost(const search *s, int d, int i, int j, key *k) {
    uint64_t mem = s->pm[d][j] - s->pm[d][i] + s->m->scratch_bytes;
    if (i == 0 && j == s->U && s->both_tables[d]) mem -= s->m->shared_bytes;
    if (mem > s->usable[d]) return false;
    key a = s->pk[d][j], b = s->pk[d][i];
    *k = (key){a.pen - b.pen, a.dec - b.dec, a.pre - b.pre};
    return true;
}

static key boundary(const search *s, int a, int d, int i) {
    bn_device_profile pd = eff(&s->devs[d]);
    double t;
    if (i == 0)
        t = s->m->in_bytes / (pd.h2d_gbps * 1e9) + pd.latency_us * 1e-6;
    else {
        bn_device_profile pa = eff(&s->devs[a]);
        t = xfer(&pa, &pd, s->m->units[i - 1].out_bytes);
    }
    return (key){0, t, t / s->m->n_batch};
}

static key tail(const search *s, int d) {
    bn_device_profile pd = eff(&s->devs[d]);
    double t = s->m->logits_bytes / (pd.d2h_gbps * 1e9) + pd.latency_us * 1e-6;
    return (key){0, t, t / s->m->n_batch};
}

#define IDX(j, k, g) (((j)*K + (k)) * s->G + (g))

/* The DP over one order of devices (ord[0..K-1]). */
static void search_order(search *s, const int *ord, int K) {
    int U = s->U;
    size_t n = (size_t)(U + 1) * (size_t)K * (size_t)s->G;
    for (size_t x = 0; x < n; x++) s->ok[x] = false;
    for (int j = 1; j <= U; j++) /* first range: [0, j) */
        for (int k = 0; k < K; k++) {
            int d = ord[k], g = d != s->fb ? layers_in(s, 0, j) : 0;
            key c;
            if (s->G == 1) g = 0;
            if ((s->G > 1 && g > s->gpu_layers) || !range_cost(s, d, 0, j, &c)) continue;
            c = key_add(c, boundary(s, -1, d, 0));
            size_t x = (size_t)IDX(j, k, g);
            if (!s->ok[x] || key_less(c, s->best[x])) {
                s->ok[x] = true;
                s->best[x] = c;
                s->from[x] = -1;
            }
        }
    for (int i = 1; i < U; i++)
        for (int k = 0; k < K; k++)
            for (int g = 0; g < s->G; g++) {
                size_t x = (size_t)IDX(i, k, g);
                if (!s->ok[x]) continue;
                for (int k2 = k + 1; k2 < K; k2++) {
                    int d = ord[k2];
                    key b = key_add(s->best[x], boundary(s, ord[k], d, i));
                    for (int j = i + 1; j <= U; j++) {
                        int g2 = g + (d != s->fb && s->G > 1 ? layers_in(s, i, j) : 0);
                        if (s->G > 1 && g2 > s->gpu_layers) break;
                        key c;
                        if (!range_cost(s, d, i, j, &c)) break; /* longer ranges need more */
                        c = key_add(b, c);
                        size_t y = (size_t)IDX(j, k2, g2);
                        if (!s->ok[y] || key_less(c, s->best[y])) {
                            s->ok[y] = true;
                            s->best[y] = c;
                            s->from[y] = (int)x;
                        }
                    }
                }
            }
    for (int k = 0; k < K; k++)
        for (int g = 0; g < s->G; g++) {
            if (s->G > 1 && g != s->gpu_layers) continue;
            size_t x = (size_t)IDX(U, k, g);
            if (!s->ok[x]) continue;
            key c = key_add(s->best[x], tail(s, ord[k]));
            if (s->found && !key_less(c, s->best_key)) continue;
            /* walk back to the assignment */
            int cur = (int)x;
            while (cur >= 0) {
                int j = cur / s->G / K, kk = cur / s->G % K, prev = s->from[cur];
                int i = prev < 0 ? 0 : prev / s->G / K;
                for (int u = i; u < j; u++) s->assign[u] = ord[kk];
                cur = prev;
            }
            memcpy(s->best_assign, s->assign, sizeof(int) * (size_t)U);
            s->best_key = c;
            s->found = true;
        }
}
#undef IDX

/* Every order of the devices in ord[at..K-1] (ord[0..at-1] fixed). */
static void permute(search *s, int *ord, int K, int at) {
    if (at == K) {
        search_order(s, ord, K);
        return;
    }
    for (int i = at; i < K; i++) {
        int t = ord[at];
        ord[at] = ord[i];
        ord[i] = t;
        permute(s, ord, K, at + 1);
        ord[i] = ord[at];
        ord[at] = t;
    }
}

static void search_free(search *s) {
    for (int d = 0; d < BN_PLAN_MAX_DEVICES; d++) {
        free(s->pk[d]);
        free(s->pm[d]);
    }
    free(s->best);
    free(s->from);
    free(s->ok);
    free(s->best_assign);
    free(s->assign);
}

/* Runs the search over the usable devices; false when nothing fits. */
static bn_status run_search(search *s, const int *use, int K, bool all_orders, bn_err *err) {
    const bn_plan_model *m = s->m;
    s->U = m->n_units;
    s->L = m->n_layer;
    size_t n = (size_t)(s->U + 1) * (size_t)K * (size_t)s->G;
    s->best = malloc(sizeof *s->best * n);
    s->from = malloc(sizeof *s->from * n);
    s->ok = malloc(sizeof *s->ok * n);
    s->best_assign = malloc(sizeof(int) * (size_t)s->U);
    s->assign = malloc(sizeof(int) * (size_t)s->U);
    if (!s->best || !s->from || !s->ok || !s->best_assign || !s->assign)
        return bn_fail(err, BN_ERR_OOM, "out of memory for the plan search");
    for (int k = 0; k < K; k++) {
        int d = use[k];
        s->pk[d] = calloc((size_t)s->U + 1, sizeof(key));
        s->pm[d] = calloc((size_t)s->U + 1, sizeof(uint64_t));
        if (!s->pk[d] || !s->pm[d])
            return bn_fail(err, BN_ERR_OOM, "out of memory for the plan search");
        bool t0 = false, t1 = false;
        for (int u = 0; u < s->U; u++) {
            unit_cost c = cost_of(m, u, s->devs, d, s->fb);
            double pen = s->devs[d].prefer && m->units[u].kind == BN_UNIT_LAYER ? -1 : 0;
            s->pk[d][u + 1] = key_add(s->pk[d][u], (key){pen, c.dec, c.pre});
            s->pm[d][u + 1] = s->pm[d][u] + c.mem;
            if (u == 0) t0 = c.table_here;
            if (u == s->U - 1) t1 = c.table_here;
        }
        s->both_tables[d] = t0 && t1;
    }
    int ord[BN_PLAN_MAX_DEVICES];
    memcpy(ord, use, sizeof(int) * (size_t)K);
    if (all_orders)
        permute(s, ord, K, 0);
    else
        search_order(s, ord, K);
    return BN_OK;
}

/* --tensor-split: layer counts by cumulative rounding of the shares. */
static bn_status split_assign(const bn_plan_model *m, const int *use, int K,
                              const bn_plan_constraints *c, int *assign, bn_err *err) {
    if (c->n_split != K)
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "--tensor-split gives %d shares but the plan has %d devices", c->n_split, K);
    double total = 0, cum = 0;
    for (int k = 0; k < K; k++) total += c->split[k];
    int at = 0;
    for (int k = 0; k < K; k++) {
        cum += c->split[k];
        int end = (int)floor(m->n_layer * cum / total + 0.5);
        if (k == K - 1) end = m->n_layer;
        for (; at < end; at++) assign[1 + at] = use[k];
    }
    assign[0] = assign[1];
    assign[m->n_units - 1] = assign[m->n_layer];
    return BN_OK;
}

/* ---------------------------------------------------------------------------
 * The plan and its reason
 * ------------------------------------------------------------------------- */

const char *bn_plan_bytes_str(uint64_t b, char *buf, size_t len) {
    if (b >= 1000ull << 20)
        snprintf(buf, len, "%.1f GiB", (double)b / (1ull << 30));
    else if (b >= 1000ull << 10)
        snprintf(buf, len, "%.0f MiB", (double)b / (1ull << 20));
    else
        snprintf(buf, len, "%.0f KiB", (double)b / (1ull << 10));
    return buf;
}

static void append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...) {
    size_t n = strlen(buf);
    if (n + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, len - n, fmt, ap);
    va_end(ap);
}

/* "layers 0-17 + output head" */
static void describe_units(const bn_plan_use *u, int n_layer, char *buf, size_t len) {
    buf[0] = 0;
    if (u->first_layer < 0)
        ;
    else if (u->first_layer == 0 && u->last_layer == n_layer - 1)
        append(buf, len, "all %d layers", n_layer);
    else if (u->first_layer == u->last_layer)
        append(buf, len, "layer %d", u->first_layer);
    else
        append(buf, len, "layers %d-%d", u->first_layer, u->last_layer);
    if (u->embd) append(buf, len, "%sembedding", buf[0] ? " + " : "");
    if (u->head) append(buf, len, "%soutput head", buf[0] ? " + " : "");
    if (!buf[0]) append(buf, len, "nothing");
}

/* Decode time of one layer (the first) on device d, fallbacks included. */
static double layer_time(const bn_plan_model *m, const bn_plan *p, int d) {
    return cost_of(m, 1, p->dev, d, p->fallback).dec;
}

static void make_reason(const bn_plan_model *m, bn_plan *p, const bn_plan_constraints *c) {
    char *r = p->reason;
    size_t len = sizeof p->reason;
    r[0] = 0;
    if (c->n_split) append(r, len, "--tensor-split: ");
    if (c->gpu_layers >= 0) append(r, len, "--gpu-layers %d: ", c->gpu_layers);
    for (int d = 0; d < p->n_devices; d++)
        if (p->dev[d].prefer && !c->n_split && c->gpu_layers < 0) {
            append(r, len, "--backend: as many layers as fit on its devices; ");
            break;
        }
    int main_dev = p->unit_device[1], most = 0;
    for (int d = 0; d < p->n_devices; d++) {
        int nl = p->use[d].first_layer < 0 ? 0 : p->use[d].last_layer - p->use[d].first_layer + 1;
        if (nl > most) most = nl, main_dev = d;
    }
    bool first = true;
    int prev = -1;
    for (int u = 0; u < p->n_units; u++) { /* devices in the order they run */
        int d = p->unit_device[u];
        if (d == prev) continue;
        prev = d;
        const bn_plan_use *use = &p->use[d];
        char what[96], mem[32], usable[32];
        describe_units(use, m->n_layer, what, sizeof what);
        append(r, len, "%s%s on %s: %s of %s", first ? "" : "; ", what, p->dev[d].id,
               bn_plan_bytes_str(use->mem_bytes, mem, sizeof mem),
               bn_plan_bytes_str(use->usable_bytes, usable, sizeof usable));
        /* full: a neighbouring unit, run elsewhere, would not fit here */
        int last = u;
        while (last + 1 < p->n_units && p->unit_device[last + 1] == d) last++;
        bool full = false;
        if (last + 1 < p->n_units)
            full |= use->mem_bytes + cost_of(m, last + 1, p->dev, d, p->fallback).mem >
                    use->usable_bytes;
        if (u > 0)
            full |=
                use->mem_bytes + cost_of(m, u - 1, p->dev, d, p->fallback).mem > use->usable_bytes;
        if (full) append(r, len, " (full)");
        first = false;
    }
    for (int d = 0; d < p->n_devices; d++) {
        const bn_plan_use *use = &p->use[d];
        if (!p->dev[d].allowed || use->first_layer >= 0 || use->embd || use->head || use->mem_bytes)
            continue;
        char a[32], b[32];
        append(r, len, "%snothing on %s: ", first ? "" : "; ", p->dev[d].id);
        first = false;
        unit_cost lc = cost_of(m, 1, p->dev, d, p->fallback);
        uint64_t need = lc.mem + m->scratch_bytes;
        bool prefer_mode = false;
        for (int k = 0; k < p->n_devices; k++) prefer_mode |= p->dev[k].prefer;
        if (prefer_mode && !p->dev[d].prefer && c->gpu_layers < 0 && !c->n_split)
            append(r, len, "everything fits on the --backend devices");
        else if (!p->dev[d].has_profile && !p->dev[d].prefer && c->gpu_layers < 0 && !c->n_split)
            append(r, len, "no profile (give one with --profile)");
        else if (need > bn_plan_usable(p->dev[d].mem_budget))
            append(r, len, "one layer needs %s, it can use %s",
                   bn_plan_bytes_str(need, a, sizeof a),
                   bn_plan_bytes_str(bn_plan_usable(p->dev[d].mem_budget), b, sizeof b));
        else if (c->n_split)
            append(r, len, "its --tensor-split share is 0");
        else if (c->gpu_layers >= 0)
            append(r, len, "--gpu-layers %d leaves none for it", c->gpu_layers);
        else if (layer_time(m, p, d) > layer_time(m, p, main_dev))
            append(r, len, "slower than %s (%.3g vs %.3g ms per layer)", p->dev[main_dev].id,
                   layer_time(m, p, d) * 1e3, layer_time(m, p, main_dev) * 1e3);
        else
            append(r, len, "the copies to and from it would cost more than it saves");
    }
}

/* A device without a profile gets units only when no allowed device has one,
 * or when asked for (--backend, --gpu-layers, --tensor-split). */
static bool usable_dev(const bn_plan_device *devs, int n, int idx, int fb,
                       const bn_plan_constraints *c) {
    const bn_plan_device *d = &devs[idx];
    if (!d->allowed) return false;
    bool any_profile = false;
    for (int k = 0; k < n; k++) any_profile |= devs[k].allowed && devs[k].has_profile;
    return d->has_profile || d->prefer || idx == fb || c->gpu_layers >= 0 || c->n_split > 0 ||
           !any_profile;
}

static uint64_t total_need(const bn_plan_model *m) {
    uint64_t t = m->scratch_bytes;
    for (int u = 0; u < m->n_units; u++) t += m->units[u].weight_bytes + m->units[u].kv_bytes;
    return t - m->shared_bytes;
}

bn_status bn_plan_make(const bn_plan_model *m, const bn_plan_device *devs, int n_devs, int fallback,
                       const bn_plan_constraints *c, bn_plan *out, bn_err *err) {
    memset(out, 0, sizeof *out);
    if (n_devs < 1 || n_devs > BN_PLAN_MAX_DEVICES || fallback < 0 || fallback >= n_devs)
        return bn_fail(err, BN_ERR_INVALID_ARG, "the plan needs 1 to %d devices and a fallback",
                       BN_PLAN_MAX_DEVICES);
    if (m->n_layer < 1 || m->n_units != m->n_layer + 2)
        return bn_fail(err, BN_ERR_INVALID_ARG, "the model has no layers to plan");
    bn_plan_constraints cc = *c;
    if (cc.gpu_layers > m->n_layer) cc.gpu_layers = m->n_layer;
    int use[BN_PLAN_MAX_DEVICES], K = 0, n_accel = 0;
    for (int d = 0; d < n_devs; d++)
        if (usable_dev(devs, n_devs, d, fallback, &cc)) {
            use[K++] = d;
            if (d != fallback) n_accel++;
        }
    if (K == 0) return bn_fail(err, BN_ERR_INVALID_ARG, "no device may hold layers");
    bool no_accel = cc.gpu_layers > 0 && n_accel == 0;
    if (no_accel) cc.gpu_layers = -1; /* like -ngl on a machine without a GPU: ignored, said */
    char a[32], b[32];
    int *assign = malloc(sizeof(int) * (size_t)m->n_units);
    if (!assign) return bn_fail(err, BN_ERR_OOM, "out of memory for the plan");
    bn_status st;
    if (cc.n_split) {
        st = split_assign(m, use, K, &cc, assign, err);
        if (st == BN_OK) st = bn_plan_evaluate(m, devs, n_devs, fallback, assign, out, err);
        free(assign);
        if (st != BN_OK) return st;
        for (int d = 0; d < n_devs; d++)
            if (out->use[d].mem_bytes > out->use[d].usable_bytes && d != fallback) {
                st = bn_fail(err, BN_ERR_OOM, "--tensor-split puts %s on %s, which can use %s",
                             bn_plan_bytes_str(out->use[d].mem_bytes, a, sizeof a), devs[d].id,
                             bn_plan_bytes_str(out->use[d].usable_bytes, b, sizeof b));
                bn_plan_free(out);
                return st;
            }
        if (!out->fits)
            snprintf(out->warning, sizeof out->warning,
                     "%s needs more memory than is available: it will run from the file "
                     "mapping, slowly",
                     devs[fallback].id);
        make_reason(m, out, &cc);
        return BN_OK;
    }
    free(assign);
    search s = {0};
    s.m = m;
    s.devs = devs;
    s.n_devs = n_devs;
    s.fb = fallback;
    s.gpu_layers = cc.gpu_layers;
    s.G = cc.gpu_layers >= 0 ? m->n_layer + 1 : 1;
    for (int d = 0; d < n_devs; d++) s.usable[d] = bn_plan_usable(devs[d].mem_budget);
    bool all_orders = !cc.fixed_order && K <= 5 && (s.G == 1 || K <= 3);
    bool soft = false;
    st = run_search(&s, use, K, all_orders, err);
    if (st == BN_OK && !s.found && devs[fallback].allowed) {
        /* the CPU reads weights from the file mapping: a plan that does not fit
         * in host memory still runs, slowly */
        s.usable[fallback] = UINT64_MAX / 2;
        soft = true;
        int ord[BN_PLAN_MAX_DEVICES];
        memcpy(ord, use, sizeof(int) * (size_t)K);
        if (all_orders)
            permute(&s, ord, K, 0);
        else
            search_order(&s, ord, K);
    }
    if (st == BN_OK && !s.found) {
        uint64_t usable = 0;
        for (int k = 0; k < K; k++) usable += s.usable[use[k]];
        if (cc.gpu_layers >= 0)
            st = bn_fail(err, BN_ERR_OOM, "--gpu-layers %d: that many layers do not fit",
                         cc.gpu_layers);
        else
            st = bn_fail(err, BN_ERR_OOM,
                         "the model needs %s (weights, KV cache for a context of %d, scratch) "
                         "but the devices can use %s; use a smaller context (-c) or more devices",
                         bn_plan_bytes_str(total_need(m), a, sizeof a), m->n_ctx,
                         bn_plan_bytes_str(usable, b, sizeof b));
    }
    if (st == BN_OK) st = bn_plan_evaluate(m, devs, n_devs, fallback, s.best_assign, out, err);
    search_free(&s);
    if (st != BN_OK) return st;
    if (soft || !out->fits)
        snprintf(out->warning, sizeof out->warning,
                 "%s needs %s but can use %s: it will run from the file mapping, slowly",
                 devs[fallback].id, bn_plan_bytes_str(out->use[fallback].mem_bytes, a, sizeof a),
                 bn_plan_bytes_str(out->use[fallback].usable_bytes, b, sizeof b));
    make_reason(m, out, &cc);
    if (no_accel)
        append(out->warning, sizeof out->warning,
               "%s--gpu-layers %d ignored: there is no device other than %s",
               out->warning[0] ? "; " : "", c->gpu_layers, devs[fallback].id);
    return BN_OK;
}
