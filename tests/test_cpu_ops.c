/* test_cpu_ops.c - every op of the CPU backend (backends/cpu/cpu_ops.h)
 * against a naive computation written here, straight from the formulas of
 * graph/ir.h and FORMATS.md, in double precision (or exact integers).
 *
 * Each node is checked with bn_cpu_check_node, computed with nth = 1, then with
 * nth = 3 and 7 (ith = 0..nth-1 called one after another: threads write
 * disjoint outputs) and through a real pool of 3 threads; all runs must give
 * the same bytes. Thresholds: exact for QUANTIZE_ACT, the MATMUL_TERNARY
 * integer sums, GET_ROWS, KV_STORE, CPY, MUL, ADD, SCALE, RELU_SQR; NMSE
 * <= 1e-12 for the other float ops (their f32 rounding alone gives ~1e-14). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "cpu/cpu_internal.h"
#include "cpu/cpu_ops.h"
#include "cpu/float_kernels.h"
#include "cpu/threadpool.h"
#include "ir.h"

#define NMSE_TOL 1e-12
#define TEST(name) static void name(void **state __attribute__((unused)))

/* ---- fixtures: one graph and the buffers of a test, freed in teardown ---- */

static bn_graph *g;
static bn_pool *pool;

static void *alloc_data(bn_tensor *t) {
    size_t n = bn_tensor_nbytes(t);
    t->data = bt_track(calloc(1, n ? n : 1));
    return t->data;
}

/* A node with its output buffer. */
static bn_tensor *out(bn_tensor *t) {
    alloc_data(t);
    return t;
}

static bn_tensor *new_f32(int64_t ne0, int64_t ne1, const char *name) {
    bn_tensor *t = out(bn_new_tensor(g, BN_TYPE_F32, ne0, ne1, name));
    return t;
}

static int setup(void **state __attribute__((unused))) {
    g = bn_graph_new();
    return g ? 0 : -1;
}

static int teardown(void **state __attribute__((unused))) {
    bt_free_tracked();
    bn_graph_free(g);
    g = NULL;
    return 0;
}

/* ---- running a node ---- */

typedef struct pool_job {
    const bn_tensor *node;
    void *scratch[8];
} pool_job;

static void pool_fn(void *ctx, int ith, int nth) {
    pool_job *j = ctx;
    bn_cpu_compute(j->node, ith, nth, j->scratch[ith]);
}

static void *new_scratch(const bn_tensor *node) {
    size_t sb = bn_cpu_scratch_bytes(node);
    assert_int_equal(sb % 64, 0);
    void *s = aligned_alloc(64, sb ? sb : 64);
    assert_non_null(s);
    memset(s, 0xA5, sb ? sb : 64); /* kernels must not rely on zeroed scratch */
    return s;
}

static void compute_seq(const bn_tensor *node, int nth) {
    for (int ith = 0; ith < nth; ith++) {
        void *s = new_scratch(node);
        bn_cpu_compute(node, ith, nth, s);
        free(s);
    }
}

/* Checks the node, runs it every way, asserts identical results. The output is
 * poisoned before each run (except KV_STORE's, which is the cache itself). */
static void run_node(bn_tensor *node) {
    bn_err e = {0};
    bn_status st = bn_cpu_check_node(node, &e);
    if (st != BN_OK) fail_msg("check failed: %s", e.msg);
    const size_t nbytes = bn_tensor_nbytes(node);
    const bool poison = node->op != BN_OP_KV_STORE;
    if (poison) memset(node->data, 0xFF, nbytes);
    compute_seq(node, 1);
    void *first = malloc(nbytes);
    assert_non_null(first);
    memcpy(first, node->data, nbytes);
    const int nths[] = {3, 7};
    for (int k = 0; k < 2; k++) {
        if (poison) memset(node->data, 0xFF, nbytes);
        compute_seq(node, nths[k]);
        assert_memory_equal(node->data, first, nbytes);
    }
    pool_job job = {.node = node};
    const int np = bn_pool_size(pool);
    for (int i = 0; i < np; i++) job.scratch[i] = new_scratch(node);
    if (poison) memset(node->data, 0xFF, nbytes);
    bn_pool_run(pool, pool_fn, &job);
    for (int i = 0; i < np; i++) free(job.scratch[i]);
    assert_memory_equal(node->data, first, nbytes);
    free(first);
}

static void assert_nmse(const float *got, const double *want, size_t n, const char *what) {
    double e = bt_nmse_f32_f64(got, want, n);
    if (getenv("BT_VERBOSE")) printf("  %-40s NMSE %.3g\n", what, e);
    if (!(e <= NMSE_TOL)) fail_msg("%s: NMSE %g > %g", what, e, NMSE_TOL);
}

/* ---- QUANTIZE_ACT ---- */

/* Round half to even, written with floor. */
static double round_half_even(double v) {
    double f = floor(v), d = v - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return fmod(f, 2.0) == 0.0 ? f : f + 1;
}

/* FORMATS.md: m = max(max|x|, 1e-5), s = 127/m in f32, q = rhe(x*s) (f32 product),
 * clamped; the row must match byte for byte (padding zero). */
static void check_act_row(const float *x, int64_t K, const bn_act_row *a, size_t row_bytes) {
    float m = 0;
    for (int64_t i = 0; i < K; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    if (m < 1e-5f) m = 1e-5f;
    const float s = (float)(127.0 / (double)m);
    assert_true(a->s == s);
    int64_t sum = 0;
    int maxq = 0;
    for (int64_t i = 0; i < K; i++) {
        const float p = x[i] * s;
        double q = round_half_even((double)p);
        q = q > 127 ? 127 : q < -128 ? -128 : q;
        if (a->q[i] != (int8_t)q)
            fail_msg("q[%lld] = %d, want %d (x %.9g)", (long long)i, a->q[i], (int)q, (double)x[i]);
        sum += (int64_t)q;
        if (abs(a->q[i]) > maxq) maxq = abs(a->q[i]);
    }
    assert_int_equal(a->sum, sum);
    for (size_t b = sizeof(bn_act_row) + (size_t)K; b < row_bytes; b++)
        assert_int_equal(((const uint8_t *)a)[b], 0);
    if (m > 1e-5f) assert_int_equal(maxq, 127); /* s = 127/m: never -128, max is 127 */
}

TEST(test_quantize_act) {
    bt_rng r = bt_rng_new(1);
    const int64_t Ks[] = {256, 512, 100};
    for (int k = 0; k < 3; k++) {
        const int64_t K = Ks[k], T = 6;
        bn_tensor *x = new_f32(K, T, "x");
        float *xd = x->data;
        bt_fill_normal(xd, K * T, 2.0, &r);
        /* row 1: all zero (m = 1e-5); row 2: x*s = k + 0.5 with s = 1 (max 127);
         * row 3: s = 2 (max 63.5), x*s = k + 0.5; row 4: tiny values; row 5: negative max */
        memset(xd + K, 0, (size_t)K * sizeof(float));
        for (int64_t i = 0; i < K; i++) {
            xd[2 * K + i] = (float)((i % 253) - 126) + 0.5f; /* -125.5 .. 126.5 */
            xd[3 * K + i] = ((float)((i % 127) - 63) + 0.5f) / 2.0f;
            xd[4 * K + i] = (float)(1e-7 * bt_rng_normal(&r));
            xd[5 * K + i] = (float)(0.3 * bt_rng_normal(&r));
        }
        xd[2 * K + 0] = 127.0f;
        xd[3 * K + 0] = -63.5f;
        xd[5 * K + 7] = -4.0f;
        bn_tensor *q = out(bn_quantize_act(g, x));
        assert_int_equal(q->nb[1], bn_act_row_bytes(K));
        run_node(q);
        for (int64_t t = 0; t < T; t++)
            check_act_row(xd + t * K, K, (const bn_act_row *)((char *)q->data + t * q->nb[1]),
                          q->nb[1]);
        const bn_act_row *z = (const bn_act_row *)((char *)q->data + q->nb[1]);
        assert_true(z->s == 127.0f / 1e-5f);
        assert_int_equal(z->sum, 0);
        /* half-even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0, -1.5 -> -2 */
        const bn_act_row *h = (const bn_act_row *)((char *)q->data + 2 * q->nb[1]);
        assert_true(h->s == 1.0f);
        const bn_act_row *h2 = (const bn_act_row *)((char *)q->data + 3 * q->nb[1]);
        assert_true(h2->s == 2.0f);
        for (int64_t i = 1; i < K; i++) {
            const int f = (int)(i % 253) - 126, f2 = (int)(i % 127) - 63;
            assert_int_equal(h->q[i], f + (f & 1));
            assert_int_equal(h2->q[i], f2 + (f2 & 1));
        }
    }
}

/* ---- MATMUL_TERNARY ---- */

/* Activations built by hand: q random in [-128, 127], s random or 1. */
static bn_tensor *make_act(int64_t K, int64_t T, bool unit_s, bt_rng *r) {
    bn_tensor *a = out(bn_new_tensor(g, BN_TYPE_ACT_Q8, K, T, "xq"));
    for (int64_t t = 0; t < T; t++) {
        bn_act_row *row = (bn_act_row *)((char *)a->data + t * a->nb[1]);
        int32_t sum = 0;
        for (int64_t i = 0; i < K; i++) {
            row->q[i] = (int8_t)bt_rng_int(r, -128, 127);
            sum += row->q[i];
        }
        row->s = unit_s ? 1.0f : (float)(0.5 + 200 * bt_rng_uniform(r));
        row->sum = sum;
    }
    return a;
}

static const bn_act_row *act_row(const bn_tensor *a, int64_t t) {
    return (const bn_act_row *)((const char *)a->data + t * a->nb[1]);
}

static bn_tensor *make_weight(uint32_t type, const float *vals, int64_t K, int64_t N) {
    bn_tensor *w = out(bn_new_tensor(g, type, K, N, "w"));
    bn_err e = {0};
    if (bn_quantize(type, vals, K, N, w->data, &e) != BN_OK) fail_msg("quantize: %s", e.msg);
    return w;
}

/* Scales d = k/256 (k in 1..255) are exact in f16 and bf16. */
static float random_scale(bt_rng *r) {
    return (float)bt_rng_int(r, 1, 255) / 256.0f;
}

enum { SC_TENSOR, SC_BLOCK, SC_POW2 };

/* w[n][i] in {-1,0,1} with every 256-block holding a +1 (so max|x| = d), and
 * scales d[n][g] per mode: one for the tensor, random per block, or powers of 2. */
static void make_ternary(int64_t K, int64_t N, int mode, bt_rng *r, int8_t *w, float *d,
                         float *vals) {
    const int64_t G = K / 256;
    const float d0 = random_scale(r);
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < G; gi++)
            d[n * G + gi] = mode == SC_TENSOR  ? d0
                            : mode == SC_BLOCK ? random_scale(r)
                                               : ldexpf(1.0f, bt_rng_int(r, -2, 3));
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < K; i++) {
            w[n * K + i] = (int8_t)(i % 256 == 17 ? 1 : bt_rng_int(r, -1, 1));
            vals[n * K + i] = (float)w[n * K + i] * d[n * G + i / 256];
        }
}

static void check_matmul_ternary(int64_t K, int64_t T, int mode, uint64_t seed) {
    const int64_t N = 5, G = K / 256;
    bt_rng r = bt_rng_new(seed);
    int8_t *w = bt_track(malloc((size_t)(N * K)));
    float *d = bt_track(malloc((size_t)(N * G) * sizeof(float)));
    float *vals = bt_track(malloc((size_t)(N * K) * sizeof(float)));
    make_ternary(K, N, mode, &r, w, d, vals);
    bn_tensor *xq = make_act(K, T, mode == SC_POW2, &r);

    /* reference: integer group sums in int64, then sum_g d_g * S_g / s_t */
    int64_t *S = bt_track(malloc((size_t)(T * N * G) * sizeof(int64_t)));
    double *ref = bt_track(malloc((size_t)(T * N) * sizeof(double)));
    for (int64_t t = 0; t < T; t++)
        for (int64_t n = 0; n < N; n++) {
            double y = 0;
            for (int64_t gi = 0; gi < G; gi++) {
                int64_t s = 0;
                for (int64_t i = gi * 256; i < gi * 256 + 256; i++)
                    s += (int64_t)w[n * K + i] * act_row(xq, t)->q[i];
                S[(t * N + n) * G + gi] = s;
                y += (double)d[n * G + gi] * (double)s;
            }
            ref[t * N + n] = y / (double)act_row(xq, t)->s;
        }

    const uint32_t types[] = {BN_TYPE_TQ2_0, BN_TYPE_TQ1_0, BN_TYPE_I2_S,
                              BN_TYPE_F16,   BN_TYPE_F32,   BN_TYPE_BF16};
    float *first = NULL;
    for (int k = 0; k < 6; k++) {
        if (types[k] == BN_TYPE_I2_S && mode != SC_TENSOR) continue; /* one scale only */
        bn_tensor *wt = make_weight(types[k], vals, K, N);
        bn_tensor *y = out(bn_matmul_ternary(g, wt, xq));
        run_node(y);
        const float *yd = y->data;
        char what[64];
        snprintf(what, sizeof what, "MATMUL_TERNARY %s K=%lld T=%lld mode %d",
                 bn_type_name(types[k]), (long long)K, (long long)T, mode);
        assert_nmse(yd, ref, (size_t)(T * N), what);
        for (int64_t t = 0; t < T; t++)
            for (int64_t n = 0; n < N; n++) {
                const float got = yd[t * N + n];
                if (mode == SC_POW2) {
                    /* s = 1 and power-of-2 scales: y is exactly the integer sum */
                    if ((double)got != ref[t * N + n])
                        fail_msg("%s: y[%lld,%lld] = %.9g, want exactly %.9g", what, (long long)n,
                                 (long long)t, (double)got, ref[t * N + n]);
                } else if (mode == SC_TENSOR) {
                    /* one scale: y * s / d recovers the integer sum */
                    int64_t s = 0;
                    for (int64_t gi = 0; gi < G; gi++) s += S[(t * N + n) * G + gi];
                    const double back = (double)got * act_row(xq, t)->s / d[0];
                    assert_int_equal(llround(back), s);
                }
            }
        /* the encodings hold the same weights: bit-identical outputs */
        if (!first)
            first = (float *)yd;
        else
            assert_memory_equal(yd, first, (size_t)(T * N) * sizeof(float));
    }
}

TEST(test_matmul_ternary) {
    uint64_t seed = 10;
    const int64_t Ks[] = {256, 512}, Ts[] = {1, 3};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int mode = SC_TENSOR; mode <= SC_POW2; mode++)
                check_matmul_ternary(Ks[a], Ts[b], mode, seed++);
}

/* QUANTIZE_ACT then MATMUL_TERNARY, as in a layer, through the pool. */
TEST(test_quantize_then_matmul) {
    bt_rng r = bt_rng_new(77);
    const int64_t K = 512, N = 7, T = 3, G = 2;
    int8_t *w = bt_track(malloc((size_t)(N * K)));
    float *d = bt_track(malloc((size_t)(N * G) * sizeof(float)));
    float *vals = bt_track(malloc((size_t)(N * K) * sizeof(float)));
    make_ternary(K, N, SC_BLOCK, &r, w, d, vals);
    bn_tensor *x = new_f32(K, T, "x");
    bt_fill_normal(x->data, K * T, 1.0, &r);
    bn_tensor *xq = out(bn_quantize_act(g, x));
    bn_tensor *wt = make_weight(BN_TYPE_TQ2_0, vals, K, N);
    bn_tensor *y = out(bn_matmul_ternary(g, wt, xq));
    run_node(xq);
    run_node(y);
    double ref[21];
    for (int64_t t = 0; t < T; t++) {
        const float *xt = (const float *)x->data + t * K;
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t i = 0; i < K; i++) acc += (double)vals[n * K + i] * act_row(xq, t)->q[i];
            ref[t * N + n] = acc / act_row(xq, t)->s;
        }
        check_act_row(xt, K, act_row(xq, t), xq->nb[1]);
    }
    assert_nmse(y->data, ref, (size_t)(N * T), "quantize + matmul");
}

/* ---- MATMUL_F ---- */

TEST(test_matmul_f) {
    bt_rng r = bt_rng_new(3);
    const int64_t K = 256, N = 5;
    const uint32_t types[] = {BN_TYPE_F32,  BN_TYPE_F16,   BN_TYPE_BF16,
                              BN_TYPE_Q8_0, BN_TYPE_TQ2_0, BN_TYPE_I2_S};
    for (int64_t T = 1; T <= 3; T += 2)
        for (int k = 0; k < 6; k++) {
            const uint32_t type = types[k];
            float *wv = bt_track(malloc((size_t)(N * K) * sizeof(float)));
            bn_tensor *wt;
            if (type == BN_TYPE_Q8_0) {
                /* built by hand: per 32 elements f16 d, then 32 int8; value q * d */
                wt = bn_new_tensor(g, type, K, N, "w");
                uint8_t *p = alloc_data(wt);
                for (int64_t b = 0; b < N * K / 32; b++, p += 34) {
                    const float dq = random_scale(&r) / 64.0f;
                    const uint16_t dh = bn_f32_to_f16(dq);
                    memcpy(p, &dh, 2);
                    for (int j = 0; j < 32; j++) {
                        int8_t q = (int8_t)bt_rng_int(&r, -127, 127);
                        p[2 + j] = (uint8_t)q;
                        wv[b * 32 + j] = (float)q * dq;
                    }
                }
            } else {
                const int nonzero_every = 256;
                const float dd = random_scale(&r);
                for (int64_t i = 0; i < N * K; i++) {
                    if (type == BN_TYPE_TQ2_0 || type == BN_TYPE_I2_S)
                        wv[i] = (i % nonzero_every == 0 ? 1.0f : (float)bt_rng_int(&r, -1, 1)) * dd;
                    else if (type == BN_TYPE_F16)
                        wv[i] = bn_f16_to_f32(bn_f32_to_f16((float)bt_rng_normal(&r)));
                    else if (type == BN_TYPE_BF16)
                        wv[i] = bn_bf16_to_f32(bn_f32_to_bf16((float)bt_rng_normal(&r)));
                    else
                        wv[i] = (float)bt_rng_normal(&r);
                }
                wt = make_weight(type, wv, K, N);
            }
            bn_tensor *x = new_f32(K, T, "x");
            bt_fill_normal(x->data, K * T, 1.0, &r);
            bn_tensor *y = out(bn_matmul_f(g, wt, x));
            run_node(y);
            double ref[15];
            for (int64_t t = 0; t < T; t++)
                for (int64_t n = 0; n < N; n++) {
                    double acc = 0;
                    for (int64_t i = 0; i < K; i++)
                        acc += (double)wv[n * K + i] * ((const float *)x->data)[t * K + i];
                    ref[t * N + n] = acc;
                }
            assert_nmse(y->data, ref, (size_t)(N * T), bn_type_name(type));
        }
}

/* ---- GET_ROWS ---- */

TEST(test_get_rows) {
    bt_rng r = bt_rng_new(4);
    const uint32_t types[] = {BN_TYPE_F32, BN_TYPE_F16, BN_TYPE_TQ2_0, BN_TYPE_I2_S};
    const int64_t R = 7, T = 7;
    for (int k = 0; k < 4; k++) {
        const int64_t K = k < 2 ? 64 : 256;
        float *vals = bt_track(malloc((size_t)(K * R) * sizeof(float)));
        const float dd = random_scale(&r);
        for (int64_t i = 0; i < K * R; i++) {
            if (k >= 2)
                vals[i] = (i % 256 == 3 ? 1.0f : (float)bt_rng_int(&r, -1, 1)) * dd;
            else
                vals[i] = bn_f16_to_f32(bn_f32_to_f16((float)bt_rng_normal(&r)));
        }
        bn_tensor *tab = make_weight(types[k], vals, K, R);
        bn_tensor *ids = bn_new_tensor(g, BN_TYPE_I32, T, 1, "ids");
        int32_t *id = alloc_data(ids);
        const int32_t want[] = {3, 0, 6, 3, 7, -1, 99}; /* out of range -> zeros */
        memcpy(id, want, sizeof want);
        bn_tensor *y = out(bn_get_rows(g, tab, ids));
        run_node(y);
        const float *yd = y->data;
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = 0; i < K; i++) {
                const float e = want[t] >= 0 && want[t] < R ? vals[want[t] * K + i] : 0.0f;
                if (yd[t * K + i] != e)
                    fail_msg("%s row %lld [%lld]", bn_type_name(types[k]), (long long)t,
                             (long long)i);
            }
    }
}

/* ---- RMS_NORM ---- */

TEST(test_rms_norm) {
    bt_rng r = bt_rng_new(5);
    const int64_t K = 96, T = 4;
    const float eps = 1e-5f;
    bn_tensor *x = new_f32(K, T, "x");
    float *xd = x->data;
    bt_fill_normal(xd, K * T, 3.0, &r);
    memset(xd + 2 * K, 0, (size_t)K * sizeof(float)); /* zero row: 0 / sqrt(eps) */
    bn_tensor *y = out(bn_rms_norm(g, x, eps));
    run_node(y);
    double ref[96 * 4];
    for (int64_t t = 0; t < T; t++) {
        double ss = 0;
        for (int64_t i = 0; i < K; i++) ss += (double)xd[t * K + i] * xd[t * K + i];
        for (int64_t i = 0; i < K; i++) ref[t * K + i] = xd[t * K + i] / sqrt(ss / K + (double)eps);
    }
    assert_nmse(y->data, ref, (size_t)(K * T), "RMS_NORM");
    for (int64_t i = 0; i < K; i++) assert_true(((float *)y->data)[2 * K + i] == 0.0f);
}

/* ---- MUL / ADD with broadcasting ---- */

TEST(test_mul_add) {
    bt_rng r = bt_rng_new(6);
    const int64_t K = 40, T = 3;
    const int64_t bshape[3][2] = {{K, T}, {K, 1}, {1, 1}};
    for (int op = 0; op < 2; op++)
        for (int s = 0; s < 3; s++) {
            bn_tensor *a = new_f32(K, T, "a");
            bn_tensor *b = new_f32(bshape[s][0], bshape[s][1], "b");
            bt_fill_normal(a->data, K * T, 1.0, &r);
            bt_fill_normal(b->data, bshape[s][0] * bshape[s][1], 1.0, &r);
            bn_tensor *y = out(op ? bn_add(g, a, b) : bn_mul(g, a, b));
            run_node(y);
            const float *ad = a->data, *bd = b->data, *yd = y->data;
            for (int64_t t = 0; t < T; t++)
                for (int64_t i = 0; i < K; i++) {
                    const double av = ad[t * K + i];
                    const double bv = bd[(bshape[s][1] == 1 ? 0 : t) * bshape[s][0] +
                                         (bshape[s][0] == 1 ? 0 : i)];
                    /* one f32 rounding of the exact result */
                    const float e = (float)(op ? av + bv : av * bv);
                    assert_true(yd[t * K + i] == e);
                }
        }
}

/* ---- ROPE ---- */

TEST(test_rope) {
    bt_rng r = bt_rng_new(7);
    const int n_head = 3, hd = 16, T = 3;
    const int32_t positions[3] = {0, 5, 1000};
    const int modes[2] = {BN_ROPE_NORMAL, BN_ROPE_NEOX}, rots[2] = {16, 8};
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 2; k++) {
            const int n_rot = rots[k];
            const float base = 10000.0f;
            bn_tensor *x = new_f32(n_head * hd, T, "x");
            bt_fill_normal(x->data, n_head * hd * T, 1.0, &r);
            bn_tensor *pos = bn_new_tensor(g, BN_TYPE_I32, T, 1, "pos");
            memcpy(alloc_data(pos), positions, sizeof positions);
            bn_tensor *y = out(bn_rope(g, x, pos, modes[m], n_rot, hd, base));
            run_node(y);
            const float *xd = x->data, *yd = y->data;
            double ref[48 * 3];
            for (int t = 0; t < T; t++)
                for (int h = 0; h < n_head; h++) {
                    const int o = t * n_head * hd + h * hd;
                    for (int i = 0; i < hd; i++) ref[o + i] = xd[o + i];
                    for (int j = 0; j < n_rot / 2; j++) {
                        const double th = positions[t] * pow((double)base, -2.0 * j / n_rot);
                        const int i0 = modes[m] == BN_ROPE_NEOX ? j : 2 * j;
                        const int i1 = modes[m] == BN_ROPE_NEOX ? j + n_rot / 2 : 2 * j + 1;
                        const double a = xd[o + i0], b = xd[o + i1];
                        ref[o + i0] = a * cos(th) - b * sin(th);
                        ref[o + i1] = a * sin(th) + b * cos(th);
                    }
                    for (int i = n_rot; i < hd; i++) assert_true(yd[o + i] == xd[o + i]);
                }
            for (int i = 0; i < n_head * hd; i++) assert_true(yd[i] == xd[i]); /* pos 0 */
            assert_nmse(yd, ref, (size_t)(n_head * hd * T), "ROPE");
        }
}

/* ---- KV_STORE ---- */

static bn_tensor *new_cache(uint32_t type, int64_t D, int64_t n_ctx, const char *name) {
    bn_tensor *c = out(bn_new_tensor(g, type, D, n_ctx, name));
    c->flags |= BN_TENSOR_CACHE;
    return c;
}

TEST(test_kv_store) {
    bt_rng r = bt_rng_new(8);
    const int64_t D = 12, n_ctx = 8, T = 3, n_past = 2;
    const uint32_t types[2] = {BN_TYPE_F32, BN_TYPE_F16};
    for (int k = 0; k < 2; k++) {
        bn_tensor *c = new_cache(types[k], D, n_ctx, "cache");
        memset(c->data, 0x3C, bn_tensor_nbytes(c)); /* sentinel bytes */
        bn_tensor *x = new_f32(D, T, "x");
        bt_fill_normal(x->data, D * T, 1.0, &r);
        bn_tensor *st = bn_kv_store(g, c, x, (int)n_past);
        assert_ptr_equal(st->data, c->data);
        run_node(st);
        const float *xd = x->data;
        for (int64_t j = 0; j < n_ctx; j++)
            for (int64_t i = 0; i < D; i++) {
                const bool stored = j >= n_past && j < n_past + T;
                const float xv = stored ? xd[(j - n_past) * D + i] : 0.0f;
                if (types[k] == BN_TYPE_F32) {
                    uint32_t got;
                    memcpy(&got, (char *)c->data + (j * D + i) * 4, 4);
                    if (stored)
                        assert_true(((float *)c->data)[j * D + i] == xv);
                    else
                        assert_int_equal(got, 0x3C3C3C3Cu);
                } else {
                    const uint16_t got = ((uint16_t *)c->data)[j * D + i];
                    assert_int_equal(got, stored ? bn_f32_to_f16(xv) : 0x3C3C);
                }
            }
    }
}

/* ---- ATTENTION ---- */

/* Cache row values, rounded through f16 for F16 caches; rows >= valid are NaN
 * (never read: causality). */
static void fill_cache(bn_tensor *c, int64_t valid, bt_rng *r, float *vals) {
    const int64_t D = c->ne[0], n = c->ne[1];
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < D; i++) {
            float v = j < valid ? (float)bt_rng_normal(r) : NAN;
            if (c->type == BN_TYPE_F16) {
                const uint16_t h = bn_f32_to_f16(v);
                ((uint16_t *)c->data)[j * D + i] = h;
                v = bn_f16_to_f32(h);
            } else {
                ((float *)c->data)[j * D + i] = v;
            }
            vals[j * D + i] = v;
        }
}

static void check_attention(uint32_t ktype, uint32_t vtype, int n_past, int T, int n_head, int n_kv,
                            float scale, uint64_t seed) {
    const int hd = 8, n_ctx = 10;
    bt_rng r = bt_rng_new(seed);
    bn_tensor *kc = new_cache(ktype, n_kv * hd, n_ctx, "k");
    bn_tensor *vc = new_cache(vtype, n_kv * hd, n_ctx, "v");
    float *kv = bt_track(malloc((size_t)(n_kv * hd * n_ctx) * sizeof(float)));
    float *vv = bt_track(malloc((size_t)(n_kv * hd * n_ctx) * sizeof(float)));
    fill_cache(kc, n_past + T, &r, kv);
    fill_cache(vc, n_past + T, &r, vv);
    bn_tensor *q = new_f32(n_head * hd, T, "q");
    bt_fill_normal(q->data, n_head * hd * T, 1.0, &r);
    bn_tensor *y = out(bn_attention(g, q, kc, vc, n_past, n_head, n_kv, hd, scale));
    run_node(y);

    const float *qd = q->data;
    double *ref = bt_track(malloc((size_t)(n_head * hd * T) * sizeof(double)));
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_head; h++) {
            const int kvh = h / (n_head / n_kv), L = n_past + t + 1;
            double s[16], mx = -INFINITY, sum = 0;
            for (int j = 0; j < L; j++) {
                double dot = 0;
                for (int i = 0; i < hd; i++)
                    dot +=
                        (double)qd[t * n_head * hd + h * hd + i] * kv[j * n_kv * hd + kvh * hd + i];
                s[j] = (double)scale * dot;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int j = 0; j < L; j++) sum += exp(s[j] - mx);
            for (int i = 0; i < hd; i++) {
                double o = 0;
                for (int j = 0; j < L; j++)
                    o += exp(s[j] - mx) / sum * vv[j * n_kv * hd + kvh * hd + i];
                ref[t * n_head * hd + h * hd + i] = o;
            }
        }
    assert_nmse(y->data, ref, (size_t)(n_head * hd * T), "ATTENTION");
}

TEST(test_attention) {
    const uint32_t F32 = BN_TYPE_F32, F16 = BN_TYPE_F16;
    const float s = 1.0f / sqrtf(8.0f);
    check_attention(F32, F32, 0, 4, 4, 2, s, 20);      /* prefill, GQA */
    check_attention(F16, F16, 3, 3, 4, 2, s, 21);      /* prefilled cache */
    check_attention(F16, F32, 6, 1, 4, 2, s, 22);      /* decode */
    check_attention(F32, F16, 2, 2, 4, 4, s, 23);      /* no grouping */
    check_attention(F16, F16, 5, 5, 4, 1, s, 24);      /* one kv head, cache full */
    check_attention(F32, F32, 4, 2, 4, 2, 400.0f, 25); /* scores ~1e3: needs the max shift */
}

/* KV_STORE then ATTENTION reading the store node, as the graph builder wires it. */
TEST(test_store_then_attend) {
    bt_rng r = bt_rng_new(30);
    const int hd = 4, n_head = 2, n_kv = 1, n_ctx = 6, n_past = 2, T = 2;
    bn_tensor *kc = new_cache(BN_TYPE_F32, hd, n_ctx, "k");
    bn_tensor *vc = new_cache(BN_TYPE_F32, hd, n_ctx, "v");
    /* all keys zero (calloc): the softmax is uniform over the visible positions */
    bn_tensor *kn = new_f32(hd, T, "k_new"), *vn = new_f32(hd, T, "v_new");
    bt_fill_normal(vc->data, hd * n_ctx, 1.0, &r);
    bt_fill_normal(vn->data, hd * T, 1.0, &r);
    bn_tensor *ks = bn_kv_store(g, kc, kn, n_past), *vs = bn_kv_store(g, vc, vn, n_past);
    bn_tensor *q = new_f32(n_head * hd, T, "q");
    bt_fill_normal(q->data, n_head * hd * T, 1.0, &r);
    bn_tensor *y = out(bn_attention(g, q, ks, vs, n_past, n_head, n_kv, hd, 0.5f));
    run_node(ks);
    run_node(vs);
    run_node(y);
    const float *vd = vc->data;
    double ref[16];
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_head; h++)
            for (int i = 0; i < hd; i++) {
                double m = 0;
                for (int j = 0; j <= n_past + t; j++) m += vd[j * hd + i];
                ref[t * n_head * hd + h * hd + i] = m / (n_past + t + 1);
            }
    assert_nmse(y->data, ref, (size_t)(n_head * hd * T), "store + attention");
}

/* ---- RELU_SQR, SILU, SCALE ---- */

TEST(test_unary) {
    bt_rng r = bt_rng_new(9);
    const int64_t K = 50, T = 3, n = K * T;
    for (int op = 0; op < 3; op++) {
        bn_tensor *x = new_f32(K, T, "x");
        float *xd = x->data;
        bt_fill_normal(xd, n, 3.0, &r);
        xd[0] = 0.0f;
        xd[1] = -100.0f;
        xd[2] = 100.0f;
        bn_tensor *y = out(op == 0   ? bn_relu_sqr(g, x)
                           : op == 1 ? bn_silu(g, x)
                                     : bn_scale(g, x, -0.37f));
        run_node(y);
        const float *yd = y->data;
        double ref[150];
        for (int64_t i = 0; i < n; i++) {
            const double v = xd[i];
            ref[i] = op == 0 ? (v > 0 ? v * v : 0) : op == 1 ? v / (1 + exp(-v)) : v * -0.37f;
            if (op != 1) assert_true(yd[i] == (float)ref[i]); /* one f32 rounding */
        }
        assert_nmse(yd, ref, (size_t)n, bn_op_name(y->op));
    }
}

/* ---- CPY ---- */

TEST(test_cpy) {
    bt_rng r = bt_rng_new(11);
    const int64_t K = 50, T = 3, n = K * T;
    float *src = bt_track(malloc((size_t)n * sizeof(float)));
    bt_fill_normal(src, n, 10.0, &r);
    const uint32_t types[2] = {BN_TYPE_F32, BN_TYPE_F16};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            bn_tensor *x = out(bn_new_tensor(g, types[a], K, T, "x"));
            for (int64_t i = 0; i < n; i++) {
                if (types[a] == BN_TYPE_F32)
                    ((float *)x->data)[i] = src[i];
                else
                    ((uint16_t *)x->data)[i] = bn_f32_to_f16(src[i]);
            }
            bn_tensor *y = out(bn_cpy(g, x, types[b]));
            run_node(y);
            for (int64_t i = 0; i < n; i++) {
                if (types[b] == BN_TYPE_F16) {
                    assert_int_equal(((uint16_t *)y->data)[i], bn_f32_to_f16(src[i]));
                } else {
                    const float e =
                        types[a] == BN_TYPE_F32 ? src[i] : bn_f16_to_f32(bn_f32_to_f16(src[i]));
                    assert_true(((float *)y->data)[i] == e);
                }
            }
        }
}

/* ---- bn_cpu_check_node refusals ---- */

static void expect_refused(bn_tensor *node, bn_status want, const char *name) {
    bn_set_name(node, "%s", name);
    bn_err e = {0};
    assert_int_equal(bn_cpu_check_node(node, &e), want);
    assert_int_equal(e.code, want);
    assert_true(strlen(e.msg) > 0);
    if (!strstr(e.msg, name)) fail_msg("message does not name the node: %s", e.msg);
}

TEST(test_check_node) {
    bn_tensor *w256 = bn_new_tensor(g, BN_TYPE_TQ2_0, 256, 4, "w256");
    bn_tensor *xq512 = bn_new_tensor(g, BN_TYPE_ACT_Q8, 512, 2, "xq512");
    bn_tensor *xq256 = bn_new_tensor(g, BN_TYPE_ACT_Q8, 256, 2, "xq256");
    bn_tensor *wq8 = bn_new_tensor(g, BN_TYPE_Q8_0, 256, 4, "wq8");
    bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, 256, 2, "x");
    bn_tensor *xh = bn_new_tensor(g, BN_TYPE_F16, 256, 2, "xh");
    expect_refused(bn_matmul_ternary(g, w256, xq512), BN_ERR_INVALID_ARG, "mm_k_mismatch");
    expect_refused(bn_matmul_ternary(g, wq8, xq256), BN_ERR_UNSUPPORTED, "mm_q8_weight");
    expect_refused(bn_matmul_ternary(g, w256, x), BN_ERR_UNSUPPORTED, "mm_f32_acts");
    expect_refused(bn_matmul_f(g, w256, xq256), BN_ERR_UNSUPPORTED, "mmf_q8_acts");
    expect_refused(bn_rms_norm(g, xh, 1e-5f), BN_ERR_UNSUPPORTED, "norm_f16");
    expect_refused(bn_quantize_act(g, xh), BN_ERR_UNSUPPORTED, "quant_f16");
    bn_tensor *b2 = bn_new_tensor(g, BN_TYPE_F32, 256, 3, "b2");
    expect_refused(bn_mul(g, x, b2), BN_ERR_INVALID_ARG, "mul_bcast");
    bn_tensor *b3 = bn_new_tensor(g, BN_TYPE_F32, 2, 1, "b3");
    expect_refused(bn_add(g, x, b3), BN_ERR_INVALID_ARG, "add_bcast");

    bn_tensor *q = bn_new_tensor(g, BN_TYPE_F32, 4 * 8, 3, "q");
    bn_tensor *kc = bn_new_tensor(g, BN_TYPE_F16, 2 * 8, 10, "kc");
    bn_tensor *vc = bn_new_tensor(g, BN_TYPE_F16, 2 * 8, 10, "vc");
    bn_tensor *kq8 = bn_new_tensor(g, BN_TYPE_Q8_0, 32, 10, "kq8");
    bn_err e = {0};
    assert_int_equal(bn_cpu_check_node(bn_attention(g, q, kc, vc, 7, 4, 2, 8, 1.0f), &e), BN_OK);
    expect_refused(bn_attention(g, q, kc, vc, 8, 4, 2, 8, 1.0f), BN_ERR_INVALID_ARG, "att_ctx");
    expect_refused(bn_attention(g, q, kc, vc, 0, 3, 2, 8, 1.0f), BN_ERR_INVALID_ARG, "att_gqa");
    expect_refused(bn_attention(g, q, kc, vc, 0, 4, 2, 4, 1.0f), BN_ERR_INVALID_ARG, "att_hd");
    expect_refused(bn_attention(g, q, kq8, kq8, 0, 4, 2, 16, 1.0f), BN_ERR_UNSUPPORTED, "att_q8");

    bn_tensor *kn = bn_new_tensor(g, BN_TYPE_F32, 16, 3, "kn");
    bn_tensor *kbad = bn_new_tensor(g, BN_TYPE_F32, 12, 3, "kbad");
    assert_int_equal(bn_cpu_check_node(bn_kv_store(g, kc, kn, 7), &e), BN_OK);
    expect_refused(bn_kv_store(g, kc, kn, 8), BN_ERR_INVALID_ARG, "kv_ctx");
    expect_refused(bn_kv_store(g, kc, kbad, 0), BN_ERR_INVALID_ARG, "kv_row");
    bn_tensor *kd = new_cache(BN_TYPE_F32, 16, 10, "kd"), *kvs = bn_kv_store(g, kd, kn, 0);
    kd->data = NULL; /* the cache moved after the store node was built */
    expect_refused(kvs, BN_ERR_INVALID_ARG, "kv_alias");

    bn_tensor *pos = bn_new_tensor(g, BN_TYPE_I32, 3, 1, "pos");
    bn_tensor *pos2 = bn_new_tensor(g, BN_TYPE_I32, 2, 1, "pos2");
    assert_int_equal(bn_cpu_check_node(bn_rope(g, q, pos, BN_ROPE_NEOX, 8, 8, 1e4f), &e), BN_OK);
    expect_refused(bn_rope(g, q, pos, BN_ROPE_NEOX, 7, 8, 1e4f), BN_ERR_INVALID_ARG, "rope_odd");
    expect_refused(bn_rope(g, q, pos, BN_ROPE_NEOX, 16, 8, 1e4f), BN_ERR_INVALID_ARG, "rope_big");
    expect_refused(bn_rope(g, q, pos, 1, 8, 8, 1e4f), BN_ERR_UNSUPPORTED, "rope_mode");
    expect_refused(bn_rope(g, q, pos2, BN_ROPE_NEOX, 8, 8, 1e4f), BN_ERR_INVALID_ARG, "rope_pos");
    expect_refused(bn_cpy(g, wq8, BN_TYPE_F32), BN_ERR_UNSUPPORTED, "cpy_q8");
    bn_tensor *ids = bn_new_tensor(g, BN_TYPE_F32, 3, 1, "ids_f32");
    expect_refused(bn_get_rows(g, w256, ids), BN_ERR_UNSUPPORTED, "rows_ids");
    /* an F16 source is a weight or cache, not checked before its op: its layout still is */
    bn_tensor *xs = bn_new_tensor(g, BN_TYPE_F16, 256, 2, "xs");
    bn_tensor *cs = bn_cpy(g, xs, BN_TYPE_F32);
    assert_int_equal(bn_cpu_check_node(cs, &e), BN_OK);
    xs->nb[1] += 2; /* rows with a gap */
    expect_refused(cs, BN_ERR_INVALID_ARG, "cpy_strided");
}

/* The inlined f16 / bf16 conversions of the kernels equal core's, bit for bit. */
TEST(test_inline_conversions) {
    for (uint32_t h = 0; h < 65536; h++) {
        const float a = bn_cpu_f16_to_f32((uint16_t)h), b = bn_f16_to_f32((uint16_t)h);
        const float c = bn_cpu_bf16_to_f32((uint16_t)h), d = bn_bf16_to_f32((uint16_t)h);
        if (memcmp(&a, &b, 4) != 0 || memcmp(&c, &d, 4) != 0) fail_msg("half 0x%04x", h);
    }
}

/* Scratch sizes are 64-byte multiples and cover the per-thread buffers. */
TEST(test_scratch_sizes) {
    bn_tensor *w = bn_new_tensor(g, BN_TYPE_TQ1_0, 512, 3, "w");
    bn_tensor *wh = bn_new_tensor(g, BN_TYPE_F16, 300, 3, "wh");
    bn_tensor *xq = bn_new_tensor(g, BN_TYPE_ACT_Q8, 512, 1, "xq");
    bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, 300, 1, "x");
    size_t s1 = bn_cpu_scratch_bytes(bn_matmul_ternary(g, w, xq));
    size_t s2 = bn_cpu_scratch_bytes(bn_matmul_f(g, wh, x));
    assert_true(s1 % 64 == 0 && s1 >= 512 + 2 * sizeof(float));
    assert_true(s2 % 64 == 0 && s2 >= 300 * sizeof(float));
    bn_tensor *q = bn_new_tensor(g, BN_TYPE_F32, 64, 1, "q");
    bn_tensor *kc = bn_new_tensor(g, BN_TYPE_F16, 64, 1000, "kc");
    size_t s3 = bn_cpu_scratch_bytes(bn_attention(g, q, kc, kc, 0, 4, 4, 16, 1.0f));
    assert_true(s3 % 64 == 0 && s3 >= 1000 * sizeof(float));
    assert_int_equal(bn_cpu_scratch_bytes(bn_silu(g, x)), 0);
}

static int group_setup(void **state __attribute__((unused))) {
    pool = bn_pool_new(3);
    return pool ? 0 : -1;
}

static int group_teardown(void **state __attribute__((unused))) {
    bn_pool_free(pool);
    return 0;
}

#define TEST_CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
    /* the float ops' plain-C reference (test_cpu_float_fast.c tests the fast kernels) */
    bn_cpu_float_select("scalar");
    const struct CMUnitTest tests[] = {TEST_CASE(test_quantize_act),
                                       TEST_CASE(test_matmul_ternary),
                                       TEST_CASE(test_quantize_then_matmul),
                                       TEST_CASE(test_matmul_f),
                                       TEST_CASE(test_get_rows),
                                       TEST_CASE(test_rms_norm),
                                       TEST_CASE(test_mul_add),
                                       TEST_CASE(test_rope),
                                       TEST_CASE(test_kv_store),
                                       TEST_CASE(test_attention),
                                       TEST_CASE(test_store_then_attend),
                                       TEST_CASE(test_unary),
                                       TEST_CASE(test_cpy),
                                       TEST_CASE(test_check_node),
                                       TEST_CASE(test_scratch_sizes),
                                       TEST_CASE(test_inline_conversions)};
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
