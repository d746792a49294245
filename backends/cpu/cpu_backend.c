/* cpu_backend.c - the CPU backend's entry in the backend table: graphs
 * prepared by checking every node and planning an activation arena, run node
 * by node on a thread pool with a barrier between nodes.
 *
 * It has two devices. cpu:0 is the CPU. cpu:1 is the same CPU again as a
 * second device with its own thread pool and buffers, hidden from --backend
 * auto: the scheduler copies data between cpu:0 and cpu:1 segments like
 * between any two devices, so multi-device plans are tested without a GPU. */
#define _DEFAULT_SOURCE /* sysconf(_SC_PHYS_PAGES) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/os.h"
#include "../../graph/alloc.h"
#include "../backend.h"
#include "cpu_ops.h"
#include "ternary.h"
#include "threadpool.h"

#define CPU_DEVICES 2

typedef struct cpu_graph_state {
    bn_graph *g;
    void *arena;
    size_t arena_bytes;
    uint8_t *scratch; /* n_threads regions of scratch_stride bytes */
    size_t scratch_stride;
    struct cpu_graph_state *next;
} cpu_graph_state;

typedef struct cpu_backend {
    bn_backend base;
    bn_pool *pool;
    cpu_graph_state *graphs;
} cpu_backend;

static int cpu_device_count(char *why, size_t why_len) {
    (void)why;
    (void)why_len;
    return CPU_DEVICES;
}

static bn_status cpu_device_info(int device, bn_device_info *info, bn_err *err) {
    if (device < 0 || device >= CPU_DEVICES)
        return bn_fail(err, BN_ERR_DEVICE, "cpu:%d: no such device (cpu:0 and cpu:1 exist)",
                       device);
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "CPU (%d threads)", bn_cpu_count());
    if (device == 1)
        snprintf(info->details, sizeof info->details,
                 "the same CPU as a second device, for testing multi-device plans; not used by "
                 "auto");
    info->type = BN_DEVICE_CPU;
    info->unified = true;
    info->hidden = device == 1;
    bn_host_memory(&info->mem_total, &info->mem_free);
    return BN_OK;
}

static bool cpu_supports(bn_backend *be, const bn_tensor *node) {
    (void)be;
    return bn_cpu_check_node(node, NULL) == BN_OK;
}

static bn_status cpu_open(int device, const bn_backend_config *cfg, bn_backend **out, bn_err *err) {
    *out = NULL;
    if (device < 0 || device >= CPU_DEVICES)
        return bn_fail(err, BN_ERR_DEVICE, "cpu:%d: no such device (cpu:0 and cpu:1 exist)",
                       device);
    int n = cfg && cfg->n_threads > 0 ? cfg->n_threads : bn_cpu_count_physical();
    cpu_backend *be = calloc(1, sizeof *be);
    if (!be) return bn_fail(err, BN_ERR_OOM, "out of memory");
    be->pool = bn_pool_new(n);
    if (!be->pool) {
        free(be);
        return bn_fail(err, BN_ERR_OOM, "cannot start %d threads", n);
    }
    be->base.ops = bn_backend_cpu();
    be->base.device = device;
    *out = &be->base;
    return BN_OK;
}

static cpu_graph_state *find_state(cpu_backend *be, bn_graph *g) {
    for (cpu_graph_state *s = be->graphs; s; s = s->next)
        if (s->g == g) return s;
    return NULL;
}

static bn_status cpu_graph_prepare(bn_backend *b, bn_graph *g, bn_err *err) {
    cpu_backend *be = (cpu_backend *)b;
    if (find_state(be, g)) return BN_OK;
    size_t scratch = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (bn_cpu_check_node(g->nodes[i], err) != BN_OK) return err->code;
        if (bn_tern_prepare(g->nodes[i], be, err) != BN_OK) return err->code; /* ternary.h */
        size_t s = bn_cpu_scratch_bytes(g->nodes[i]);
        if (s > scratch) scratch = s;
    }
    cpu_graph_state *st = calloc(1, sizeof *st);
    if (!st) return bn_fail(err, BN_ERR_OOM, "out of memory");
    st->g = g;
    if (bn_graph_alloc(g, &st->arena, &st->arena_bytes, err) != BN_OK) {
        free(st);
        return err->code;
    }
    st->scratch_stride = (scratch + 63) & ~(size_t)63;
    if (st->scratch_stride) {
        st->scratch = aligned_alloc(64, st->scratch_stride * (size_t)bn_pool_size(be->pool));
        if (!st->scratch) {
            free(st->arena);
            free(st);
            return bn_fail(err, BN_ERR_OOM, "out of memory for scratch buffers");
        }
    }
    st->next = be->graphs;
    be->graphs = st;
    return BN_OK;
}

typedef struct run_ctx {
    bn_graph *g;
    cpu_graph_state *st;
    bn_pool *pool;
} run_ctx;

static void run_nodes(void *p, int ith, int nth) {
    run_ctx *c = p;
    void *scratch = c->st->scratch ? c->st->scratch + (size_t)ith * c->st->scratch_stride : NULL;
    for (int i = 0; i < c->g->n_nodes; i++) {
        bn_cpu_compute(c->g->nodes[i], ith, nth, scratch);
        bn_pool_barrier(c->pool);
    }
}

static bn_status cpu_graph_compute(bn_backend *b, bn_graph *g, bn_err *err) {
    cpu_backend *be = (cpu_backend *)b;
    cpu_graph_state *st = find_state(be, g);
    if (!st) {
        if (cpu_graph_prepare(b, g, err) != BN_OK) return err->code;
        st = find_state(be, g);
    }
    run_ctx c = {g, st, be->pool};
    bn_pool_run(be->pool, run_nodes, &c);
    return BN_OK;
}

static void cpu_graph_release(bn_backend *b, bn_graph *g) {
    cpu_backend *be = (cpu_backend *)b;
    for (cpu_graph_state **p = &be->graphs; *p; p = &(*p)->next) {
        if ((*p)->g == g) {
            cpu_graph_state *st = *p;
            *p = st->next;
            free(st->arena);
            free(st->scratch);
            free(st);
            return;
        }
    }
}

static void cpu_close(bn_backend *b) {
    cpu_backend *be = (cpu_backend *)b;
    if (!be) return;
    while (be->graphs) cpu_graph_release(b, be->graphs->g);
    bn_tern_release(be); /* ternary.h: weights prepared for this backend */
    bn_pool_free(be->pool);
    free(be);
}

const bn_backend_ops *bn_backend_cpu(void) {
    static const bn_backend_ops ops = {
        .name = "cpu",
        .device_count = cpu_device_count,
        .device_info = cpu_device_info,
        .open = cpu_open,
        .supports = cpu_supports,
        .calibrate = bn_backend_calibrate_generic,
        .graph_prepare = cpu_graph_prepare,
        .graph_compute = cpu_graph_compute,
        .graph_release = cpu_graph_release,
        .close = cpu_close,
    };
    return &ops;
}
