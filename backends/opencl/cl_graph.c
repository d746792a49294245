/* cl_graph.c - preparing and running graphs (or the scheduler's segments of
 * one) on an OpenCL device, following the data contract of backends/backend.h:
 *  - weights and KV caches: the shared per-backend buffers of cl_memory.c;
 *  - BN_TENSOR_INPUT leaves: host memory (allocated here if data is NULL)
 *    copied to a small device buffer at the start of every graph_compute;
 *  - intermediates: one device arena, placed by graph/alloc.h's planner
 *    (regions reused once their last reader has run); a KV_STORE node is its
 *    cache's buffer;
 *  - BN_TENSOR_OUTPUT nodes: host memory (allocated here if NULL) that the
 *    result is read back into before graph_compute returns.
 * Nodes run in graph order on one in-order queue; graph_compute waits for
 * the read-back events, so it is synchronous. With BITNET_OPENCL_PROFILE=1
 * every node is waited for and timed, and close prints the time per op. */
#include <stdlib.h>
#include <string.h>

#include "../../core/os.h"
#include "../../graph/alloc.h"
#include "cl_internal.h"

static clb_graph_state *find_state(clb_backend *be, const bn_graph *g) {
    for (clb_graph_state *s = be->graphs; s; s = s->next)
        if (s->g == g) return s;
    return NULL;
}

static void state_free(clb_graph_state *st) {
    bn_graph *g = st->g;
    for (int i = 0; i < g->n_tensors; i++) {
        if (st->input_mem && st->input_mem[i]) clReleaseMemObject(st->input_mem[i]);
        if (st->owned_host && st->owned_host[i]) {
            if (g->tensors[i]->data == st->owned_host[i]) g->tensors[i]->data = NULL;
            free(st->owned_host[i]);
        }
    }
    for (int i = 0; st->exec && i < g->n_nodes; i++)
        if (st->exec[i].aux) clReleaseMemObject(st->exec[i].aux);
    if (st->arena) clReleaseMemObject(st->arena);
    free(st->loc);
    free(st->exec);
    free(st->owned_host);
    free(st->input_mem);
    free(st);
}

/* Host memory for an input or output whose data the caller left NULL. */
static bn_status own_host(clb_graph_state *st, bn_tensor *t, bn_err *err) {
    if (t->data) return BN_OK;
    size_t n = bn_tensor_nbytes(t);
    t->data = st->owned_host[t->id] = calloc(1, n ? n : 1);
    if (!t->data) return bn_fail(err, BN_ERR_OOM, "out of memory for '%s' (%zu bytes)", t->name, n);
    return BN_OK;
}

/* Device locations of the leaves. Inputs get host memory and a device copy;
 * the other leaves that nodes read are caches or weights (a leaf with
 * neither flag is treated as a weight: constant data shared by pointer). */
static bn_status place_leaves(clb_backend *be, clb_graph_state *st, const bool *used, bn_err *err) {
    bn_graph *g = st->g;
    for (int i = 0; i < g->n_tensors; i++) {
        bn_tensor *t = g->tensors[i];
        if (t->op != BN_OP_NONE) continue;
        const size_t bytes = bn_tensor_nbytes(t);
        if (t->flags & BN_TENSOR_INPUT) {
            if (own_host(st, t, err) != BN_OK) return err->code;
            cl_int r;
            st->input_mem[i] = clCreateBuffer(be->ctx, CL_MEM_READ_ONLY, bytes, NULL, &r);
            if (!st->input_mem[i] || r != CL_SUCCESS)
                return bn_cl_fail(be, err, r, "allocating an input buffer");
            st->loc[i] = (clb_loc){st->input_mem[i], 0};
            continue;
        }
        if (!used[i]) continue;
        if (!t->data)
            return bn_fail(err, BN_ERR_INVALID_ARG,
                           "opencl:%d: leaf '%s' has no data (weights and caches need their host "
                           "memory before graph_prepare)",
                           be->base.device, t->name);
        cl_mem m;
        bn_status s = (t->flags & BN_TENSOR_CACHE) ? bn_cl_cache(be, t->data, bytes, &m, err)
                                                   : bn_cl_weight(be, t->data, bytes, &m, err);
        if (s != BN_OK) {
            bn_err_prefix(err, "'%s'", t->name);
            return s;
        }
        st->loc[i] = (clb_loc){m, 0};
    }
    return BN_OK;
}

static bn_status place_nodes(clb_backend *be, clb_graph_state *st, bn_err *err) {
    bn_graph *g = st->g;
    size_t *offs = malloc(sizeof(size_t) * (size_t)(g->n_tensors ? g->n_tensors : 1));
    if (!offs) return bn_fail(err, BN_ERR_OOM, "out of memory planning the graph");
    size_t bytes = bn_graph_plan_memory(g, offs, err);
    if (!bytes) {
        free(offs);
        return err->code;
    }
    if (bytes > be->caps.max_alloc) {
        free(offs);
        return bn_fail(err, BN_ERR_OOM,
                       "opencl:%d: the graph's %zu bytes of activations exceed the device's "
                       "largest allocation (%llu bytes)",
                       be->base.device, bytes, (unsigned long long)be->caps.max_alloc);
    }
    cl_int r;
    st->arena = clCreateBuffer(be->ctx, CL_MEM_READ_WRITE, bytes, NULL, &r);
    if (!st->arena || r != CL_SUCCESS) {
        free(offs);
        return bn_cl_fail(be, err, r, "allocating the activation arena");
    }
    for (int i = 0; i < g->n_nodes; i++) {
        bn_tensor *t = g->nodes[i];
        if (t->op == BN_OP_KV_STORE)
            st->loc[t->id] = st->loc[t->src[0]->id];
        else
            st->loc[t->id] = (clb_loc){st->arena, offs[t->id]};
        if ((t->flags & BN_TENSOR_OUTPUT) && t->op != BN_OP_KV_STORE &&
            own_host(st, t, err) != BN_OK) {
            free(offs);
            return err->code;
        }
    }
    free(offs);
    return BN_OK;
}

bn_status bn_cl_graph_prepare(bn_backend *b, bn_graph *g, bn_err *err) {
    clb_backend *be = (clb_backend *)b;
    if (find_state(be, g)) return BN_OK;
    if (bn_graph_check(g, err) != BN_OK) return err->code;
    bool *used = calloc((size_t)(g->n_tensors ? g->n_tensors : 1), sizeof *used);
    if (!used) return bn_fail(err, BN_ERR_OOM, "out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        const bn_tensor *t = g->nodes[i];
        if (t->id < 0 || t->id >= g->n_tensors || g->tensors[t->id] != t) {
            free(used);
            return bn_fail(err, BN_ERR_INVALID_ARG, "node '%s' is not in the graph's tensor list",
                           t->name);
        }
        for (int s = 0; s < BN_MAX_SRC; s++) {
            const bn_tensor *src = t->src[s];
            if (!src) continue;
            if (src->id < 0 || src->id >= g->n_tensors || g->tensors[src->id] != src) {
                free(used);
                return bn_fail(err, BN_ERR_INVALID_ARG,
                               "source '%s' of node '%s' is not in the graph's tensor list",
                               src->name, t->name);
            }
            used[src->id] = true;
        }
        bn_status s = bn_cl_check_node(be, t, err);
        if (s != BN_OK) {
            free(used);
            return s;
        }
    }
    clb_graph_state *st = calloc(1, sizeof *st);
    const size_t nt = (size_t)(g->n_tensors ? g->n_tensors : 1);
    if (st) {
        st->g = g;
        st->loc = calloc(nt, sizeof *st->loc);
        st->exec = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *st->exec);
        st->owned_host = calloc(nt, sizeof *st->owned_host);
        st->input_mem = calloc(nt, sizeof *st->input_mem);
    }
    if (!st || !st->loc || !st->exec || !st->owned_host || !st->input_mem) {
        free(used);
        if (st) state_free(st);
        return bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    bn_status s = place_leaves(be, st, used, err);
    free(used);
    if (s == BN_OK) s = place_nodes(be, st, err);
    for (int i = 0; s == BN_OK && i < g->n_nodes; i++)
        s = bn_cl_op_prepare(be, g->nodes[i], &st->exec[i], err);
    if (s == BN_OK) {
        cl_int r = clFinish(be->queue); /* cache zero-fills */
        if (r != CL_SUCCESS) s = bn_cl_fail(be, err, r, "preparing a graph");
    }
    if (s != BN_OK) {
        state_free(st);
        return s;
    }
    st->next = be->graphs;
    be->graphs = st;
    return BN_OK;
}

bn_status bn_cl_graph_compute(bn_backend *b, bn_graph *g, bn_err *err) {
    clb_backend *be = (clb_backend *)b;
    clb_graph_state *st = find_state(be, g);
    if (!st) {
        bn_status s = bn_cl_graph_prepare(b, g, err);
        if (s != BN_OK) return s;
        st = find_state(be, g);
    }
    bn_status s = BN_OK;
    cl_int r = CL_SUCCESS;
    for (int i = 0; i < g->n_tensors && r == CL_SUCCESS; i++)
        if (st->input_mem[i])
            r = clEnqueueWriteBuffer(be->queue, st->input_mem[i], CL_FALSE, 0,
                                     bn_tensor_nbytes(g->tensors[i]), g->tensors[i]->data, 0, NULL,
                                     NULL);
    if (r != CL_SUCCESS) s = bn_cl_fail(be, err, r, "copying the inputs");
    for (int i = 0; s == BN_OK && i < g->n_nodes; i++) {
        const double t0 = be->profile ? bn_time_sec() : 0;
        s = bn_cl_op_enqueue(be, st, g->nodes[i], &st->exec[i], err);
        if (be->profile && s == BN_OK && clFinish(be->queue) == CL_SUCCESS) {
            const bn_op op = g->nodes[i]->op;
            be->op_sec[op] += bn_time_sec() - t0;
            be->op_count[op]++;
        }
    }
    /* read the outputs back; one event each, waited for together */
    cl_event evs[16];
    int n_ev = 0;
    for (int i = 0; s == BN_OK && i < g->n_nodes; i++) {
        const bn_tensor *t = g->nodes[i];
        if (!(t->flags & BN_TENSOR_OUTPUT) || t->op == BN_OP_KV_STORE) continue;
        if (n_ev == 16) {
            r = clWaitForEvents((cl_uint)n_ev, evs);
            for (int e = 0; e < n_ev; e++) clReleaseEvent(evs[e]);
            n_ev = 0;
            if (r != CL_SUCCESS) {
                s = bn_cl_fail(be, err, r, "running the graph");
                break;
            }
        }
        const clb_loc *l = &st->loc[t->id];
        r = clEnqueueReadBuffer(be->queue, l->mem, CL_FALSE, (size_t)l->off, bn_tensor_nbytes(t),
                                t->data, 0, NULL, &evs[n_ev]);
        if (r != CL_SUCCESS)
            s = bn_cl_fail(be, err, r, "reading an output");
        else
            n_ev++;
    }
    if (n_ev) {
        r = clWaitForEvents((cl_uint)n_ev, evs);
        for (int e = 0; e < n_ev; e++) clReleaseEvent(evs[e]);
        if (r != CL_SUCCESS && s == BN_OK) s = bn_cl_fail(be, err, r, "running the graph");
    }
    r = clFinish(be->queue);
    if (r != CL_SUCCESS && s == BN_OK) s = bn_cl_fail(be, err, r, "running the graph");
    return s;
}

void bn_cl_graph_release(bn_backend *b, bn_graph *g) {
    clb_backend *be = (clb_backend *)b;
    for (clb_graph_state **p = &be->graphs; *p; p = &(*p)->next)
        if ((*p)->g == g) {
            clb_graph_state *st = *p;
            *p = st->next;
            clFinish(be->queue);
            state_free(st);
            return;
        }
}
