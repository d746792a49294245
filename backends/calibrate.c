/* calibrate.c - measures a device's throughput profile through the backend
 * interface alone, so every backend gets one without code of its own: small
 * synthetic graphs are prepared (weights uploaded once) and run a few times,
 * and the fastest run of each counts. The whole measurement stays well under
 * 2 s, even on a slow software device (sizes shrink when a first small run
 * is slow).
 *
 *   ternary_gbps  QUANTIZE_ACT + MATMUL_TERNARY, one token, an I2_S (or TQ2_0)
 *                 weight of up to 64 MB: weight bytes / time.
 *   float_gflops  MATMUL_F, F16 (or F32) weights, 64 tokens: 2 K N T / time.
 *   h2d_gbps      a large INPUT reduced by a one-row MATMUL_F (input bytes / time).
 *   d2h_gbps      GET_ROWS of many rows into a large OUTPUT (output bytes / time).
 *   latency_us    half the time of a one-node graph on 16 floats (one transfer each way).
 *   dispatch_us   the extra time per node of a chain of 64 SCALE nodes.
 *
 * Backends keep per-weight state keyed by host pointer until close, so every
 * synthetic weight stays allocated until the measurement ends (no address is
 * reused for another weight), and callers measure on an instance opened for
 * that alone (bn_profile_get does). */
#include <stdlib.h>
#include <string.h>

#include "../core/os.h"
#include "backend.h"

#define TIME_PER_TEST 0.15 /* seconds per measurement, warm-up included, after one run */
#define MAX_REPS 20

typedef struct calib_graph {
    bn_graph *g;
    bn_tensor *in, *ids, *out;
    void *weight; /* host memory of the weight leaf (kept until the end) */
} calib_graph;

#define MAX_WEIGHTS 16
static _Thread_local void *kept[MAX_WEIGHTS]; /* this measurement's weights */
static _Thread_local int n_kept;

static void calib_free(bn_backend *be, calib_graph *c) {
    if (c->g) {
        be->ops->graph_release(be, c->g);
        bn_graph_free(c->g);
    }
    if (c->weight) {
        if (n_kept < MAX_WEIGHTS)
            kept[n_kept++] = c->weight;
        else
            free(c->weight); /* not reached: a measurement makes fewer */
    }
    memset(c, 0, sizeof *c);
}

/* A weight leaf with host memory filled by a byte pattern (valid codes for the
 * ternary types, finite values for floats). */
static bn_tensor *pattern_weight(bn_graph *g, calib_graph *c, uint32_t type, int64_t k, int64_t n,
                                 int pattern) {
    bn_tensor *w = bn_new_tensor(g, type, k, n, "calib.weight");
    size_t bytes = bn_tensor_nbytes(w);
    c->weight = malloc(bytes);
    if (!c->weight) {
        g->oom = true;
        return w;
    }
    memset(c->weight, pattern, bytes);
    if (type == BN_TYPE_I2_S) {
        float one = 1.0f; /* the tensor scale lives in the tail */
        memcpy((char *)c->weight + bytes - BN_I2S_TAIL, &one, sizeof one);
    }
    w->data = c->weight;
    w->flags |= BN_TENSOR_WEIGHT;
    return w;
}

static bn_tensor *input(bn_graph *g, uint32_t type, int64_t ne0, int64_t ne1) {
    bn_tensor *t = bn_new_tensor(g, type, ne0, ne1, "calib.input");
    t->flags |= BN_TENSOR_INPUT;
    return t;
}

/* Checks every node is supported, prepares, fills the inputs. */
static bn_status calib_prepare(bn_backend *be, calib_graph *c, bn_err *err) {
    if (bn_graph_check(c->g, err) != BN_OK) return err->code;
    c->out->flags |= BN_TENSOR_OUTPUT;
    if (be->ops->supports)
        for (int i = 0; i < c->g->n_nodes; i++)
            if (!be->ops->supports(be, c->g->nodes[i]))
                return bn_fail(err, BN_ERR_UNSUPPORTED, "%s is not supported",
                               bn_op_name(c->g->nodes[i]->op));
    if (be->ops->graph_prepare(be, c->g, err) != BN_OK) return err->code;
    if (c->in) {
        float *x = c->in->data;
        for (int64_t i = 0; i < bn_tensor_nelems(c->in); i++) x[i] = (float)(i % 7) - 3.0f;
    }
    if (c->ids) {
        int32_t *ids = c->ids->data;
        for (int64_t i = 0; i < bn_tensor_nelems(c->ids); i++) ids[i] = (int32_t)i;
    }
    return BN_OK;
}

/* The fastest of a few runs after one warm-up run, in seconds; < 0 on error. */
static double time_runs(bn_backend *be, calib_graph *c, bn_err *err) {
    double t0 = bn_time_sec();
    if (be->ops->graph_compute(be, c->g, err) != BN_OK) return -1;
    double best = 1e30, spent = bn_time_sec() - t0; /* the warm-up counts against the budget */
    for (int r = 0; r < MAX_REPS && (r < 1 || spent < TIME_PER_TEST); r++) {
        double t0 = bn_time_sec();
        if (be->ops->graph_compute(be, c->g, err) != BN_OK) return -1;
        double dt = bn_time_sec() - t0;
        spent += dt;
        if (dt < best) best = dt;
    }
    return best > 1e-9 ? best : 1e-9;
}

static double no_memory(bn_err *err) {
    bn_fail(err, BN_ERR_OOM, "out of memory");
    return -1;
}

/* Times a matmul of K x N weights and T tokens with the first of the weight
 * types the device runs: MATMUL_TERNARY (one token, quantized input) or
 * MATMUL_F. *bytes receives the weight's size. < 0 on error. */
static double matmul_run(bn_backend *be, bool ternary, int64_t k, int64_t n, int64_t t,
                         double *bytes, bn_err *err) {
    static const uint32_t tern[2] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0},
                          flt[2] = {BN_TYPE_F16, BN_TYPE_F32};
    for (int ti = 0; ti < 2; ti++) {
        calib_graph c = {0};
        c.g = bn_graph_new();
        if (!c.g) return no_memory(err);
        c.in = input(c.g, BN_TYPE_F32, k, t);
        /* 0x16 = 2-bit codes 0,1,1,2 (every ternary value); 0x3c: f16 ~1.06, f32 ~0.0115 */
        bn_tensor *w =
            pattern_weight(c.g, &c, ternary ? tern[ti] : flt[ti], k, n, ternary ? 0x16 : 0x3c);
        c.out = ternary ? bn_matmul_ternary(c.g, w, bn_quantize_act(c.g, c.in))
                        : bn_matmul_f(c.g, w, c.in);
        bn_err e2 = {0};
        double dt = -1;
        bn_status st = calib_prepare(be, &c, &e2);
        if (st == BN_OK) {
            *bytes = (double)bn_tensor_nbytes(w);
            dt = time_runs(be, &c, &e2);
        }
        calib_free(be, &c);
        if (dt > 0) return dt;
        if (st != BN_ERR_UNSUPPORTED) {
            *err = e2;
            return -1;
        }
    }
    bn_fail(err, BN_ERR_UNSUPPORTED, "no %s matmul weight type is supported",
            ternary ? "ternary" : "float");
    return -1;
}

/* h2d: a [k, t] input reduced to [1, t] by a one-row F32 matmul. */
static double h2d_run(bn_backend *be, int64_t k, int64_t t, bn_err *err) {
    calib_graph c = {0};
    c.g = bn_graph_new();
    if (!c.g) return no_memory(err);
    c.in = input(c.g, BN_TYPE_F32, k, t);
    c.out = bn_matmul_f(c.g, pattern_weight(c.g, &c, BN_TYPE_F32, k, 1, 0x3c), c.in);
    double dt = calib_prepare(be, &c, err) == BN_OK ? time_runs(be, &c, err) : -1;
    calib_free(be, &c);
    return dt;
}

/* d2h: t rows of a [k, t] table gathered into a [k, t] output. */
static double d2h_run(bn_backend *be, int64_t k, int64_t t, bn_err *err) {
    calib_graph c = {0};
    c.g = bn_graph_new();
    if (!c.g) return no_memory(err);
    c.ids = input(c.g, BN_TYPE_I32, t, 1);
    c.out = bn_get_rows(c.g, pattern_weight(c.g, &c, BN_TYPE_F32, k, t, 0x3c), c.ids);
    double dt = calib_prepare(be, &c, err) == BN_OK ? time_runs(be, &c, err) : -1;
    calib_free(be, &c);
    return dt;
}

/* A chain of n SCALE nodes on 16 floats. */
static double chain_run(bn_backend *be, int n, bn_err *err) {
    calib_graph c = {0};
    c.g = bn_graph_new();
    if (!c.g) return no_memory(err);
    c.in = input(c.g, BN_TYPE_F32, 16, 1);
    bn_tensor *x = c.in;
    for (int i = 0; i < n; i++) x = bn_scale(c.g, x, 1.0f);
    c.out = x;
    double dt = calib_prepare(be, &c, err) == BN_OK ? time_runs(be, &c, err) : -1;
    calib_free(be, &c);
    return dt;
}

static bn_status measure(bn_backend *be, bn_device_profile *out, bn_err *err);

bn_status bn_backend_calibrate_generic(bn_backend *be, bn_device_profile *out, bn_err *err) {
    n_kept = 0;
    bn_status st = measure(be, out, err);
    for (int i = 0; i < n_kept; i++) free(kept[i]);
    n_kept = 0;
    return st;
}

static bn_status measure(bn_backend *be, bn_device_profile *out, bn_err *err) {
    memset(out, 0, sizeof *out);
    bn_err e = {0};
    double t1 = chain_run(be, 1, &e), t64 = t1 >= 0 ? chain_run(be, 64, &e) : -1;
    if (t64 < 0) goto fail;
    out->latency_us = t1 / 2 * 1e6;
    out->dispatch_us = t64 > t1 ? (t64 - t1) / 63 * 1e6 : 0.01;

    /* ternary: 4 MB first; 64 MB when that took under 2 ms */
    double bytes = 0, t = matmul_run(be, true, 4096, 4096, 1, &bytes, &e);
    if (t < 0) goto fail;
    if (t < 2e-3 && (t = matmul_run(be, true, 8192, 32768, 1, &bytes, &e)) < 0) goto fail;
    out->ternary_gbps = bytes / (t > t1 ? t - t1 : t) / 1e9;

    /* float: 2 x 1024 x 1024 x 16 flops first; 2 x 2048 x 2048 x 64 when under 5 ms */
    double flops = 2.0 * 1024 * 1024 * 16;
    t = matmul_run(be, false, 1024, 1024, 16, &bytes, &e);
    if (t < 0) goto fail;
    if (t < 5e-3) {
        flops = 2.0 * 2048 * 2048 * 64;
        if ((t = matmul_run(be, false, 2048, 2048, 64, &bytes, &e)) < 0) goto fail;
    }
    out->float_gflops = flops / (t > t1 ? t - t1 : t) / 1e9;

    /* transfers: 4 MB each way (16 MB when fast) */
    int64_t k = 1024, rows = 1024;
    for (int pass = 0; pass < 2; pass++) {
        double th = h2d_run(be, k, rows, &e), td = th >= 0 ? d2h_run(be, k, rows, &e) : -1;
        if (td < 0) goto fail;
        double nbytes = 4.0 * (double)k * (double)rows;
        out->h2d_gbps = nbytes / (th > t1 ? th - t1 / 2 : th) / 1e9;
        out->d2h_gbps = nbytes / (td > t1 ? td - t1 / 2 : td) / 1e9;
        if (pass == 0 && th + td > 10e-3) break;
        rows = 4096;
    }
    return BN_OK;
fail:
    return bn_fail(err, e.code ? e.code : BN_ERR_DEVICE, "calibration failed: %s", e.msg);
}
