/* cl_calibrate.c - the OpenCL device's throughput profile (ops->calibrate),
 * measured with small graphs run through this backend's own graph path:
 *  - ternary_gbps: an I2_S mat-vec of 4096 x 4096 (4 MiB of weights) with one
 *    token, minus the same graph without the matmul (input copy, quantize);
 *  - float_gflops: an F16 matmul of 1024 x 1024 with 16 tokens (tiled path),
 *    minus a graph of the same input and a same-sized output;
 *  - dispatch_us: a chain of 16 SCALE nodes minus a chain of 1, per node;
 *  - h2d / d2h_gbps: blocking copies of 16 MiB; latency_us: a 4-byte copy.
 * Each figure is the best of a few runs after a warm-up. The kernels'
 * programs are built first (from the disk cache after the first time), so
 * the measurements themselves take a few tens of milliseconds. */
#include <stdlib.h>
#include <string.h>

#include "../../core/os.h"
#include "cl_internal.h"

typedef struct cal_graph {
    bn_graph *g;
    bn_tensor *in, *out;
} cal_graph;

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Best wall time of reps runs of g (after one warm-up run), seconds. */
static bn_status best_time(bn_backend *b, bn_graph *g, int reps, double *out, bn_err *err) {
    if (bn_cl_graph_prepare(b, g, err) != BN_OK) return err->code;
    if (bn_cl_graph_compute(b, g, err) != BN_OK) return err->code;
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        double t = bn_time_sec();
        if (bn_cl_graph_compute(b, g, err) != BN_OK) return err->code;
        t = bn_time_sec() - t;
        if (t < best) best = t;
    }
    *out = best;
    return BN_OK;
}

/* x: an F32 input [K, T] filled with values in [-1, 1). */
static bn_tensor *input(bn_graph *g, int64_t K, int64_t T, float *data, uint64_t *rng) {
    bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, K, T, "cal_x");
    x->flags |= BN_TENSOR_INPUT;
    for (int64_t i = 0; i < K * T; i++)
        data[i] = (float)((int64_t)(next(rng) % 2001) - 1000) / 1000;
    x->data = data;
    return x;
}

static bn_tensor *weight(bn_graph *g, uint32_t type, int64_t K, int64_t N, void *data) {
    bn_tensor *w = bn_new_tensor(g, type, K, N, "cal_w");
    w->flags |= BN_TENSOR_WEIGHT;
    w->data = data;
    return w;
}

static void output(bn_tensor *t) {
    t->flags |= BN_TENSOR_OUTPUT;
}

static bn_status measure_graphs(clb_backend *be, bn_device_profile *p, bn_graph **gs, uint8_t *w2,
                                uint16_t *wf, float *xin, bn_err *err) {
    bn_backend *b = &be->base;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    const int64_t KT = 4096, KF = 1024, TF = 16;
    double t_a = 0, t_b = 0;

    /* ternary mat-vec */
    for (size_t i = 0; i < (size_t)(KT * KT / 4); i++) {
        unsigned v = (unsigned)next(&rng);
        uint8_t byte = 0;
        for (int f = 0; f < 4; f++) byte |= (uint8_t)(((v >> (8 * f)) % 3) << (2 * f));
        w2[i] = byte;
    }
    const float one = 1.0f;
    memcpy(w2 + KT * KT / 4, &one, sizeof one);
    bn_graph *g0 = gs[0], *g1 = gs[1];
    output(bn_quantize_act(g0, input(g0, KT, 1, xin, &rng)));
    output(bn_matmul_ternary(g1, weight(g1, BN_TYPE_I2_S, KT, KT, w2),
                             bn_quantize_act(g1, input(g1, KT, 1, xin, &rng))));
    if (bn_graph_check(g0, err) || bn_graph_check(g1, err)) return err->code;
    if (best_time(b, g0, 5, &t_a, err) || best_time(b, g1, 5, &t_b, err)) return err->code;
    const double t_mv = t_b - t_a > 1e-6 ? t_b - t_a : 1e-6;
    p->ternary_gbps = (double)(KT * KT / 4) / t_mv / 1e9;

    /* float matmul, tiled */
    for (size_t i = 0; i < (size_t)(KF * KF); i++)
        wf[i] = (uint16_t)(0x3000 + (next(&rng) & 0x3ff)); /* f16 in [0.125, 0.25) */
    bn_graph *g2 = gs[2], *g3 = gs[3];
    output(bn_scale(g2, input(g2, KF, TF, xin, &rng), 1.0f));
    output(bn_matmul_f(g3, weight(g3, BN_TYPE_F16, KF, KF, wf), input(g3, KF, TF, xin, &rng)));
    if (bn_graph_check(g2, err) || bn_graph_check(g3, err)) return err->code;
    if (best_time(b, g2, 3, &t_a, err) || best_time(b, g3, 3, &t_b, err)) return err->code;
    const double t_mm = t_b - t_a > 1e-6 ? t_b - t_a : 1e-6;
    p->float_gflops = 2.0 * (double)(KF * KF * TF) / t_mm / 1e9;

    /* dispatch cost */
    bn_graph *g4 = gs[4], *g5 = gs[5];
    output(bn_scale(g4, input(g4, 64, 1, xin, &rng), 1.0f));
    bn_tensor *c = input(g5, 64, 1, xin, &rng);
    for (int i = 0; i < 16; i++) c = bn_scale(g5, c, 1.0f);
    output(c);
    if (bn_graph_check(g4, err) || bn_graph_check(g5, err)) return err->code;
    if (best_time(b, g4, 5, &t_a, err) || best_time(b, g5, 5, &t_b, err)) return err->code;
    p->dispatch_us = t_b > t_a ? (t_b - t_a) / 15 * 1e6 : 0.1;
    return BN_OK;
}

static bn_status measure_copies(clb_backend *be, bn_device_profile *p, void *host, size_t n,
                                bn_err *err) {
    cl_int r;
    cl_mem m = clCreateBuffer(be->ctx, CL_MEM_READ_WRITE, n, NULL, &r);
    if (!m || r != CL_SUCCESS) return bn_cl_fail(be, err, r, "calibration buffer");
    double best_w = 1e30, best_r = 1e30, best_l = 1e30;
    for (int i = 0; i < 4 && r == CL_SUCCESS; i++) {
        double t = bn_time_sec();
        r = clEnqueueWriteBuffer(be->queue, m, CL_TRUE, 0, n, host, 0, NULL, NULL);
        double tw = bn_time_sec() - t;
        t = bn_time_sec();
        if (r == CL_SUCCESS)
            r = clEnqueueReadBuffer(be->queue, m, CL_TRUE, 0, n, host, 0, NULL, NULL);
        double tr = bn_time_sec() - t;
        t = bn_time_sec();
        if (r == CL_SUCCESS)
            r = clEnqueueReadBuffer(be->queue, m, CL_TRUE, 0, 4, host, 0, NULL, NULL);
        double tl = bn_time_sec() - t;
        if (i == 0) continue; /* warm-up (first touch) */
        if (tw < best_w) best_w = tw;
        if (tr < best_r) best_r = tr;
        if (tl < best_l) best_l = tl;
    }
    clReleaseMemObject(m);
    if (r != CL_SUCCESS) return bn_cl_fail(be, err, r, "calibration copies");
    p->h2d_gbps = (double)n / (best_w > 1e-9 ? best_w : 1e-9) / 1e9;
    p->d2h_gbps = (double)n / (best_r > 1e-9 ? best_r : 1e-9) / 1e9;
    p->latency_us = best_l * 1e6;
    return BN_OK;
}

bn_status bn_cl_calibrate(bn_backend *b, bn_device_profile *out, bn_err *err) {
    clb_backend *be = (clb_backend *)b;
    memset(out, 0, sizeof *out);
    const size_t copy_bytes = 16u << 20;
    uint8_t *w2 = malloc(4096 * 4096 / 4 + 32);
    uint16_t *wf = malloc(sizeof(uint16_t) * 1024 * 1024);
    float *xin =
        malloc(sizeof(float) * 1024 * 16 > copy_bytes ? sizeof(float) * 1024 * 16 : copy_bytes);
    bn_graph *gs[6] = {0};
    bool ok = w2 && wf && xin;
    for (int i = 0; i < 6; i++) ok = ok && (gs[i] = bn_graph_new()) != NULL;
    bn_status st = ok ? BN_OK : bn_fail(err, BN_ERR_OOM, "out of memory for calibration");
    if (st == BN_OK) st = measure_graphs(be, out, gs, w2, wf, xin, err);
    for (int i = 0; i < 6; i++)
        if (gs[i]) {
            bn_cl_graph_release(b, gs[i]);
            bn_graph_free(gs[i]);
        }
    if (w2) bn_cl_weight_forget(be, w2);
    if (wf) bn_cl_weight_forget(be, wf);
    if (st == BN_OK) st = measure_copies(be, out, xin, copy_bytes, err);
    free(w2);
    free(wf);
    free(xin);
    if (st != BN_OK) bn_err_prefix(err, "calibrating opencl:%d", b->device);
    return st;
}
