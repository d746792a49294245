/* scheduler.c - splitting a graph into per-device segments and running them
 * (see scheduler.h). */
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seg_copy {
    bn_tensor *dst;       /* INPUT leaf of this segment */
    const bn_tensor *src; /* producer's node in an earlier segment, or a full-graph input */
} seg_copy;

typedef struct segment {
    int device;
    bn_backend *be;
    bn_graph *g;
    const bn_tensor **orig; /* the full-graph node of each of g's nodes */
    seg_copy *copies;
    int n_copies, cap_copies;
    bool prepared;
} segment;

struct bn_sched {
    bn_graph *g;
    segment *seg;
    int n_seg;
    void **bufs; /* host memory of the full graph's inputs, owned */
    int n_bufs;
    int n_fallback;
};

/* A copy of t in g: a node (appended to g's nodes) or a leaf. NULL on OOM. */
static bn_tensor *clone(bn_graph *g, const bn_tensor *t, bool node) {
    bn_tensor *c = bn_new_tensor(g, t->type, t->ne[0], t->ne[1], t->name);
    if (g->oom) return NULL;
    memcpy(c->ne, t->ne, sizeof c->ne);
    memcpy(c->nb, t->nb, sizeof c->nb);
    memcpy(c->ip, t->ip, sizeof c->ip);
    memcpy(c->fp, t->fp, sizeof c->fp);
    c->layer = t->layer;
    if (!node) return c;
    c->op = t->op;
    c->flags = t->flags; /* OUTPUT; CACHE for a KV store, whose data is its cache's */
    if (t->op == BN_OP_KV_STORE) c->data = t->data;
    if (g->n_nodes == g->cap_nodes) {
        int nc = g->cap_nodes ? g->cap_nodes * 2 : 256;
        bn_tensor **p = realloc(g->nodes, sizeof *p * (size_t)nc);
        if (!p) {
            g->oom = true;
            return NULL;
        }
        g->nodes = p;
        g->cap_nodes = nc;
    }
    g->nodes[g->n_nodes++] = c;
    return c;
}

static bool add_copy(segment *s, bn_tensor *dst, const bn_tensor *src) {
    if (s->n_copies == s->cap_copies) {
        int nc = s->cap_copies ? s->cap_copies * 2 : 16;
        seg_copy *p = realloc(s->copies, sizeof *p * (size_t)nc);
        if (!p) return false;
        s->copies = p;
        s->cap_copies = nc;
    }
    s->copies[s->n_copies].dst = dst;
    s->copies[s->n_copies].src = src;
    s->n_copies++;
    return true;
}

static bool runs(bn_backend *const *be, int d, const bn_tensor *n) {
    return !be[d]->ops->supports || be[d]->ops->supports(be[d], n);
}

/* The device of every node: its unit's, the fallback's for what that device
 * cannot run, and one device for each KV group: where the layer's cache
 * already lives (kv_home) if an earlier graph put it somewhere. */
static bn_status place(bn_sched *s, const int *unit_device, int n_units, bn_backend *const *be,
                       int n_be, int fallback, int *kv_home, int *dev, bn_err *err) {
    const bn_graph *g = s->g;
    int *node_of = malloc(sizeof(int) * (size_t)g->n_tensors);
    if (!node_of) return bn_fail(err, BN_ERR_OOM, "out of memory");
    for (int i = 0; i < g->n_tensors; i++) node_of[i] = -1;
    bool in_layers = false;
    for (int i = 0; i < g->n_nodes; i++) {
        const bn_tensor *n = g->nodes[i];
        node_of[n->id] = i;
        int u;
        if (n->layer >= 0) {
            u = 1 + n->layer;
            in_layers = true;
        } else {
            u = in_layers ? n_units - 1 : 0;
        }
        if (u >= n_units) {
            free(node_of);
            return bn_fail(err, BN_ERR_INTERNAL, "node '%s' is in layer %d but the plan has %d",
                           n->name, n->layer, n_units - 2);
        }
        int d = unit_device[u];
        if (d < 0 || d >= n_be || !be[d]) {
            free(node_of);
            return bn_fail(err, BN_ERR_INTERNAL, "node '%s': device %d is not open", n->name, d);
        }
        if (d != fallback && be[d]->ops->supports && !be[d]->ops->supports(be[d], n)) {
            d = fallback;
            s->n_fallback++;
        }
        dev[i] = d;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const bn_tensor *a = g->nodes[i];
        if (a->op != BN_OP_ATTENTION) continue;
        int k = a->src[1] ? node_of[a->src[1]->id] : -1,
            v = a->src[2] ? node_of[a->src[2]->id] : -1;
        bool same = (k < 0 || dev[k] == dev[i]) && (v < 0 || dev[v] == dev[i]);
        int want = same ? dev[i] : fallback, l = a->layer;
        if (kv_home && l >= 0 && l < n_units - 2 && kv_home[l] >= 0 && kv_home[l] != want) {
            int h = kv_home[l];
            if (h != fallback && !(runs(be, h, a) && (k < 0 || runs(be, h, g->nodes[k])) &&
                                   (v < 0 || runs(be, h, g->nodes[v])))) {
                free(node_of);
                return bn_fail(err, BN_ERR_UNSUPPORTED,
                               "layer %d: its KV cache is on %s:%d, which cannot run the "
                               "attention of a %lld-token graph",
                               l, be[h]->ops->name, be[h]->device, (long long)a->ne[1]);
            }
            want = h;
        }
        if (kv_home && l >= 0 && l < n_units - 2) kv_home[l] = want;
        int *grp[3] = {&dev[i], k >= 0 ? &dev[k] : NULL, v >= 0 ? &dev[v] : NULL};
        for (int q = 0; q < 3; q++)
            if (grp[q] && *grp[q] != want) {
                if (want == fallback) s->n_fallback++;
                *grp[q] = want;
            }
    }
    free(node_of);
    return BN_OK;
}

/* Builds the segment graphs. */
static bn_status split(bn_sched *s, const int *dev, bn_backend *const *be, bn_err *err) {
    const bn_graph *g = s->g;
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += i == 0 || dev[i] != dev[i - 1];
    s->seg = calloc((size_t)(n ? n : 1), sizeof *s->seg);
    /* per full-graph tensor: the producing segment and its copy there; the
     * copy in the segment being built */
    int *owner = malloc(sizeof(int) * (size_t)g->n_tensors);
    bn_tensor **prod = calloc((size_t)g->n_tensors, sizeof *prod);
    bn_tensor **here = calloc((size_t)g->n_tensors, sizeof *here);
    if (!s->seg || !owner || !prod || !here) {
        free(owner);
        free(prod);
        free(here);
        return bn_fail(err, BN_ERR_OOM, "out of memory splitting the graph");
    }
    for (int i = 0; i < g->n_tensors; i++) owner[i] = -1;
    bn_status st = BN_OK;
    for (int i = 0; i < g->n_nodes && st == BN_OK;) {
        int j = i;
        while (j < g->n_nodes && dev[j] == dev[i]) j++;
        segment *sg = &s->seg[s->n_seg++];
        sg->device = dev[i];
        sg->be = be[dev[i]];
        sg->g = bn_graph_new();
        sg->orig = malloc(sizeof *sg->orig * (size_t)(j - i));
        if (!sg->g || !sg->orig) {
            st = bn_fail(err, BN_ERR_OOM, "out of memory splitting the graph");
            break;
        }
        memset(here, 0, sizeof *here * (size_t)g->n_tensors);
        for (int k = i; k < j && st == BN_OK; k++) {
            const bn_tensor *n = g->nodes[k];
            bn_tensor *c = clone(sg->g, n, true);
            if (!c) {
                st = bn_fail(err, BN_ERR_OOM, "out of memory splitting the graph");
                break;
            }
            sg->orig[k - i] = n;
            for (int q = 0; q < BN_MAX_SRC && n->src[q]; q++) {
                const bn_tensor *src = n->src[q];
                bn_tensor *m = here[src->id];
                if (!m) {
                    m = clone(sg->g, src, false);
                    if (!m) {
                        st = bn_fail(err, BN_ERR_OOM, "out of memory splitting the graph");
                        break;
                    }
                    here[src->id] = m;
                    if (src->op != BN_OP_NONE) {
                        /* produced by an earlier segment: an input filled from its output */
                        if (owner[src->id] < 0) {
                            st = bn_fail(err, BN_ERR_INTERNAL, "node '%s' runs before its source",
                                         n->name);
                            break;
                        }
                        m->flags = BN_TENSOR_INPUT;
                        prod[src->id]->flags |= BN_TENSOR_OUTPUT;
                        if (!add_copy(sg, m, prod[src->id]))
                            st = bn_fail(err, BN_ERR_OOM, "out of memory");
                    } else if (src->flags & BN_TENSOR_INPUT) {
                        m->flags = BN_TENSOR_INPUT;
                        if (!add_copy(sg, m, src)) st = bn_fail(err, BN_ERR_OOM, "out of memory");
                    } else {
                        m->flags = src->flags; /* weight or cache: same host pointer */
                        m->data = src->data;
                    }
                }
                c->src[q] = m;
            }
            here[n->id] = c;
            owner[n->id] = s->n_seg - 1;
            prod[n->id] = c;
        }
        if (st == BN_OK && sg->g->oom) st = bn_fail(err, BN_ERR_OOM, "out of memory");
        i = j;
    }
    free(owner);
    free(prod);
    free(here);
    return st;
}

bn_status bn_sched_new(bn_graph *g, const int *unit_device, int n_units, bn_backend *const *be,
                       int n_be, int fallback, int *kv_home, bn_sched **out, int *failed_device,
                       bn_err *err) {
    *out = NULL;
    if (failed_device) *failed_device = -1;
    if (fallback < 0 || fallback >= n_be || !be[fallback])
        return bn_fail(err, BN_ERR_INTERNAL, "the scheduler needs an open fallback device");
    bn_sched *s = calloc(1, sizeof *s);
    int *dev = malloc(sizeof(int) * (size_t)(g->n_nodes ? g->n_nodes : 1));
    if (!s || !dev) {
        free(s);
        free(dev);
        return bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    s->g = g;
    bn_status st = place(s, unit_device, n_units, be, n_be, fallback, kv_home, dev, err);
    if (st == BN_OK) st = split(s, dev, be, err);
    free(dev);
    /* host buffers for the full graph's inputs */
    if (st == BN_OK) {
        s->bufs = calloc((size_t)g->n_tensors, sizeof *s->bufs);
        if (!s->bufs) st = bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    for (int i = 0; st == BN_OK && i < g->n_tensors; i++) {
        bn_tensor *t = g->tensors[i];
        if (t->op != BN_OP_NONE || !(t->flags & BN_TENSOR_INPUT) || t->data) continue;
        t->data = s->bufs[s->n_bufs++] = calloc(1, bn_tensor_nbytes(t) ? bn_tensor_nbytes(t) : 1);
        if (!t->data) st = bn_fail(err, BN_ERR_OOM, "out of memory for input '%s'", t->name);
    }
    for (int i = 0; st == BN_OK && i < s->n_seg; i++) {
        segment *sg = &s->seg[i];
        st = sg->be->ops->graph_prepare(sg->be, sg->g, err);
        if (st != BN_OK) {
            char id[48];
            snprintf(id, sizeof id, "%s:%d", sg->be->ops->name, sg->be->device);
            if (err && strncmp(err->msg, id, strlen(id)) != 0) bn_err_prefix(err, "%s", id);
            if (failed_device) *failed_device = sg->device;
        } else {
            sg->prepared = true;
        }
    }
    /* the full graph's outputs read their segment's host memory */
    for (int i = 0; st == BN_OK && i < s->n_seg; i++)
        for (int k = 0; k < s->seg[i].g->n_nodes; k++)
            if (s->seg[i].orig[k]->flags & BN_TENSOR_OUTPUT)
                ((bn_tensor *)s->seg[i].orig[k])->data = s->seg[i].g->nodes[k]->data;
    if (st != BN_OK) {
        bn_sched_free(s);
        return st;
    }
    *out = s;
    return BN_OK;
}

bn_status bn_sched_compute(bn_sched *s, bn_err *err) {
    for (int i = 0; i < s->n_seg; i++) {
        segment *sg = &s->seg[i];
        for (int c = 0; c < sg->n_copies; c++)
            memcpy(sg->copies[c].dst->data, sg->copies[c].src->data,
                   bn_tensor_nbytes(sg->copies[c].dst));
        for (int k = 0; k < sg->g->n_nodes; k++) {
            memcpy(sg->g->nodes[k]->ip, sg->orig[k]->ip, sizeof sg->orig[k]->ip);
            memcpy(sg->g->nodes[k]->fp, sg->orig[k]->fp, sizeof sg->orig[k]->fp);
        }
        bn_status st = sg->be->ops->graph_compute(sg->be, sg->g, err);
        if (st != BN_OK) {
            bn_err_prefix(err, "%s:%d", sg->be->ops->name, sg->be->device);
            return st;
        }
    }
    return BN_OK;
}

void bn_sched_free(bn_sched *s) {
    if (!s) return;
    for (int i = 0; i < s->n_seg; i++) {
        segment *sg = &s->seg[i];
        if (sg->prepared) sg->be->ops->graph_release(sg->be, sg->g);
        bn_graph_free(sg->g);
        free(sg->orig);
        free(sg->copies);
    }
    /* the full graph's inputs and outputs no longer have memory */
    for (int i = 0; i < s->g->n_tensors; i++) {
        bn_tensor *t = s->g->tensors[i];
        if (t->op != BN_OP_NONE && (t->flags & BN_TENSOR_OUTPUT)) t->data = NULL;
    }
    for (int i = 0; i < s->n_bufs; i++) {
        for (int k = 0; k < s->g->n_tensors; k++)
            if (s->g->tensors[k]->data == s->bufs[i]) s->g->tensors[k]->data = NULL;
        free(s->bufs[i]);
    }
    free(s->bufs);
    free(s->seg);
    free(s);
}

int bn_sched_n_segments(const bn_sched *s) {
    return s->n_seg;
}

void bn_sched_segment(const bn_sched *s, int i, int *device, int *n_nodes, int *n_copies) {
    *device = s->seg[i].device;
    *n_nodes = s->seg[i].g->n_nodes;
    *n_copies = s->seg[i].n_copies;
}

int bn_sched_n_fallback(const bn_sched *s) {
    return s->n_fallback;
}
