/* test_opencl_ops.c - every IR op on the OpenCL backend against the CPU
 * backend (the scalar reference), one single-op graph at a time, built twice
 * from the same host data and run on bn_backend_cpu() and on opencl:0.
 *
 * Thresholds: bit-exact for QUANTIZE_ACT, MATMUL_TERNARY with ternary weights
 * (the int32 group sums are recovered from y and compared with sums computed
 * here; with fp64 the f32 results must equal the reference bit for bit, without
 * it within 1e-6 relative), GET_ROWS, KV_STORE, CPY, MUL, ADD, SCALE,
 * RELU_SQR; NMSE <= 1e-7 for the other float ops, 5e-4 for long reductions
 * (attention, MATMUL_F with large K). Shapes include K not a multiple of the
 * work-group (64) or of 4, N = 1 and odd N, and prefill batches (T > 4 takes
 * the tiled matmul kernels, T not a multiple of their 8 tokens).
 *
 * The suite runs with the device's capabilities, then the ops whose kernels
 * use fp64 run again with BITNET_OPENCL_FP64=0 (the f32 paths of GPUs without
 * fp64), and the matmuls with BITNET_OPENCL_LPR=16 (the lanes-per-row split
 * and local-memory reduction GPUs use; PoCL, a CPU device, walks whole rows).
 * Skips (77) when no OpenCL platform exists. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#ifndef BITNET_HAVE_OPENCL
int main(void) {
    bt_skip("built without OpenCL");
}
#else

#include "backend.h"
#include "ir.h"
#include "opencl/cl_internal.h"

#define TEST(name) static void name(void **state __attribute__((unused)))

static bn_backend *cpu, *ocl;
static bool fp64; /* the OpenCL kernels were built with -DUSE_FP64 */

/* ---- host data, kept until the backends close ----
 * A device backend keys weights and caches by host pointer until close, so
 * test buffers are not freed (and their addresses not reused) before then. */

/* n zeroed bytes, freed by bt_free_tracked when the backends close. */
static void *track(size_t n) {
    return bt_track(calloc(1, n ? n : 1));
}

static float *randn(int64_t n, double sd, uint64_t seed) {
    bt_rng r;
    bt_rng_seed(&r, seed);
    float *x = track(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(sd * bt_rng_normal(&r));
    return x;
}

/* Encodes n0 x n1 floats as type (bn_quantize). */
static void *encode(uint32_t type, const float *x, int64_t n0, int64_t n1) {
    int64_t ne[4] = {n0, n1, 1, 1};
    size_t bytes;
    bn_err err = {0};
    assert_int_equal(bn_tensor_bytes(type, ne, &bytes, &err), BN_OK);
    void *p = track(bytes);
    assert_int_equal(bn_quantize(type, x, n0, n1, p, &err), BN_OK);
    return p;
}

/* ---- graphs ---- */

static bn_tensor *leaf(bn_graph *g, uint32_t type, int64_t n0, int64_t n1, void *data,
                       uint32_t flags) {
    bn_tensor *t = bn_new_tensor(g, type, n0, n1, flags & BN_TENSOR_INPUT ? "in" : "w");
    t->data = data;
    t->flags |= flags;
    return t;
}
#define INPUT(g, type, n0, n1, data) leaf(g, type, n0, n1, data, BN_TENSOR_INPUT)
#define WEIGHT(g, type, n0, n1, data) leaf(g, type, n0, n1, data, BN_TENSOR_WEIGHT)

typedef bn_tensor *(*build_fn)(bn_graph *g, const void *arg);

/* Builds the graph on each backend, runs it `runs` times, and returns a copy
 * of each output (cpu_out, cl_out: malloc'd via track). */
static size_t run_both(build_fn fn, const void *arg, void **cpu_out, void **cl_out) {
    bn_backend *be[2] = {cpu, ocl};
    void **outs[2] = {cpu_out, cl_out};
    size_t n = 0;
    for (int b = 0; b < 2; b++) {
        bn_graph *g = bn_graph_new();
        assert_non_null(g);
        bn_tensor *o = fn(g, arg);
        o->flags |= BN_TENSOR_OUTPUT;
        bn_err err = {0};
        if (be[b]->ops->graph_prepare(be[b], g, &err) != BN_OK ||
            be[b]->ops->graph_compute(be[b], g, &err) != BN_OK)
            fail_msg("%s: %s", be[b]->ops->name, err.msg);
        n = bn_tensor_nbytes(o);
        *outs[b] = track(n);
        memcpy(*outs[b], o->data, n);
        be[b]->ops->graph_release(be[b], g);
        bn_graph_free(g);
    }
    return n;
}

static void expect_nmse(const char *what, const float *got, const float *want, size_t n,
                        double tol) {
    for (size_t i = 0; i < n; i++)
        if (isnan(got[i]) != isnan(want[i])) fail_msg("%s: NaN mismatch at %zu", what, i);
    double e = bt_nmse_f32(got, want, n);
    if (!(e <= tol))
        fail_msg("%s: NMSE %.3g > %.3g (first: %g vs %g)", what, e, tol, (double)got[0],
                 (double)want[0]);
}

static void expect_same(const char *what, const void *got, const void *want, size_t n) {
    if (memcmp(got, want, n) == 0) return;
    const uint8_t *a = got, *b = want;
    size_t i = 0;
    while (a[i] == b[i]) i++;
    fail_msg("%s: byte %zu of %zu differs (%u vs %u)", what, i, n, a[i], b[i]);
}

/* ---- elementwise ops ---- */

typedef struct unary_case {
    bn_op op;
    int64_t K, T;
    float *x;
    float s;
} unary_case;

static bn_tensor *build_unary(bn_graph *g, const void *arg) {
    const unary_case *c = arg;
    bn_tensor *x = INPUT(g, BN_TYPE_F32, c->K, c->T, c->x);
    switch (c->op) {
    case BN_OP_RMS_NORM:
        return bn_rms_norm(g, x, c->s);
    case BN_OP_RELU_SQR:
        return bn_relu_sqr(g, x);
    case BN_OP_SILU:
        return bn_silu(g, x);
    default:
        return bn_scale(g, x, c->s);
    }
}

TEST(test_unary_ops) {
    const int64_t shapes[][2] = {{1, 1}, {7, 3}, {64, 2}, {1000, 3}, {2560, 1}};
    const bn_op ops[] = {BN_OP_RMS_NORM, BN_OP_RELU_SQR, BN_OP_SILU, BN_OP_SCALE};
    for (size_t s = 0; s < 5; s++)
        for (size_t o = 0; o < 4; o++) {
            unary_case c = {ops[o], shapes[s][0], shapes[s][1], NULL, 1e-5f};
            if (ops[o] == BN_OP_SCALE) c.s = -0.37f;
            c.x = randn(c.K * c.T, 2.0, 11 + s);
            void *a, *b;
            size_t n = run_both(build_unary, &c, &a, &b);
            char what[96];
            snprintf(what, sizeof what, "%s [%lld, %lld]", bn_op_name(c.op), (long long)c.K,
                     (long long)c.T);
            if (c.op == BN_OP_RELU_SQR || c.op == BN_OP_SCALE)
                expect_same(what, b, a, n);
            else
                expect_nmse(what, b, a, n / 4, 1e-7);
        }
}

typedef struct binary_case {
    bool mul;
    int64_t K, T, bK, bT;
    float *a, *b;
} binary_case;

static bn_tensor *build_binary(bn_graph *g, const void *arg) {
    const binary_case *c = arg;
    bn_tensor *a = INPUT(g, BN_TYPE_F32, c->K, c->T, c->a);
    bn_tensor *b = WEIGHT(g, BN_TYPE_F32, c->bK, c->bT, c->b);
    return c->mul ? bn_mul(g, a, b) : bn_add(g, a, b);
}

TEST(test_mul_add_broadcast) {
    const int64_t shapes[][4] = {{1, 1, 1, 1},   {1, 5, 1, 5},  {1, 5, 1, 1},    {70, 3, 70, 3},
                                 {70, 3, 70, 1}, {70, 3, 1, 1}, {300, 9, 300, 1}};
    for (size_t s = 0; s < 7; s++)
        for (int mul = 0; mul < 2; mul++) {
            binary_case c = {mul,          shapes[s][0], shapes[s][1], shapes[s][2],
                             shapes[s][3], NULL,         NULL};
            c.a = randn(c.K * c.T, 1.0, 21 + s);
            c.b = randn(c.bK * c.bT, 1.0, 31 + s);
            void *x, *y;
            size_t n = run_both(build_binary, &c, &x, &y);
            char what[96];
            snprintf(what, sizeof what, "%s [%lld,%lld] x [%lld,%lld]", mul ? "MUL" : "ADD",
                     (long long)c.K, (long long)c.T, (long long)c.bK, (long long)c.bT);
            expect_same(what, y, x, n);
        }
}

typedef struct rope_case {
    int mode, n_rot, hd, n_head, T;
    float base;
    float *x;
    int32_t *pos;
} rope_case;

static bn_tensor *build_rope(bn_graph *g, const void *arg) {
    const rope_case *c = arg;
    bn_tensor *x = INPUT(g, BN_TYPE_F32, (int64_t)c->hd * c->n_head, c->T, c->x);
    bn_tensor *p = INPUT(g, BN_TYPE_I32, c->T, 1, c->pos);
    return bn_rope(g, x, p, c->mode, c->n_rot, c->hd, c->base);
}

TEST(test_rope) {
    const rope_case cases[] = {
        {BN_ROPE_NEOX, 64, 64, 3, 5, 10000.0f, NULL, NULL},
        {BN_ROPE_NORMAL, 64, 64, 2, 3, 500000.0f, NULL, NULL},
        {BN_ROPE_NEOX, 32, 48, 2, 4, 10000.0f, NULL, NULL}, /* partial rotation */
        {BN_ROPE_NORMAL, 6, 10, 3, 1, 10000.0f, NULL, NULL},
    };
    for (size_t i = 0; i < 4; i++) {
        rope_case c = cases[i];
        c.x = randn((int64_t)c.hd * c.n_head * c.T, 1.0, 41 + i);
        c.pos = track(sizeof(int32_t) * (size_t)c.T);
        bt_rng r;
        bt_rng_seed(&r, 51 + i);
        for (int t = 0; t < c.T; t++) c.pos[t] = bt_rng_int(&r, 0, 4000);
        void *a, *b;
        size_t n = run_both(build_rope, &c, &a, &b);
        char what[64];
        snprintf(what, sizeof what, "ROPE case %zu", i);
        expect_nmse(what, b, a, n / 4, fp64 ? 1e-12 : 1e-10);
    }
}

typedef struct cpy_case {
    uint32_t from, to;
    int64_t n0, n1;
    void *x;
} cpy_case;

static bn_tensor *build_cpy(bn_graph *g, const void *arg) {
    const cpy_case *c = arg;
    return bn_cpy(g, INPUT(g, c->from, c->n0, c->n1, c->x), c->to);
}

TEST(test_cpy) {
    const uint32_t types[2] = {BN_TYPE_F32, BN_TYPE_F16};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            cpy_case c = {types[a], types[b], 67, 3, NULL};
            float *x = randn(c.n0 * c.n1, 3.0, 61);
            c.x = types[a] == BN_TYPE_F32 ? (void *)x : encode(BN_TYPE_F16, x, c.n0, c.n1);
            void *p, *q;
            size_t n = run_both(build_cpy, &c, &p, &q);
            expect_same("CPY", q, p, n);
        }
}

typedef struct rows_case {
    uint32_t type;
    int64_t K, R, T;
    void *tab;
    int32_t *ids;
} rows_case;

static bn_tensor *build_rows(bn_graph *g, const void *arg) {
    const rows_case *c = arg;
    return bn_get_rows(g, WEIGHT(g, c->type, c->K, c->R, c->tab),
                       INPUT(g, BN_TYPE_I32, c->T, 1, c->ids));
}

TEST(test_get_rows) {
    const uint32_t types[3] = {BN_TYPE_F32, BN_TYPE_F16, BN_TYPE_BF16};
    for (int i = 0; i < 3; i++) {
        rows_case c = {types[i], 75, 9, 6, NULL, NULL};
        float *x = randn(c.K * c.R, 1.0, 71 + i);
        c.tab = types[i] == BN_TYPE_F32 ? (void *)x : encode(types[i], x, c.K, c.R);
        c.ids = track(sizeof(int32_t) * 6);
        const int32_t ids[6] = {3, 0, 8, -1, 9, 3}; /* -1 and 9 are out of range: zeros */
        memcpy(c.ids, ids, sizeof ids);
        void *a, *b;
        size_t n = run_both(build_rows, &c, &a, &b);
        expect_same("GET_ROWS", b, a, n);
        const float *y = b;
        for (int64_t k = 0; k < c.K; k++)
            assert_true(y[3 * c.K + k] == 0.0f && y[4 * c.K + k] == 0.0f);
    }
}

/* ---- QUANTIZE_ACT ---- */

typedef struct quant_case {
    int64_t K, T;
    float *x;
} quant_case;

static bn_tensor *build_quant(bn_graph *g, const void *arg) {
    const quant_case *c = arg;
    return bn_quantize_act(g, INPUT(g, BN_TYPE_F32, c->K, c->T, c->x));
}

TEST(test_quantize_act) {
    const int64_t shapes[][2] = {{1, 1}, {7, 2}, {256, 3}, {1000, 2}, {2560, 1}};
    for (size_t s = 0; s < 5; s++) {
        quant_case c = {shapes[s][0], shapes[s][1], NULL};
        c.x = randn(c.K * c.T, s == 3 ? 1e-7 : 1.5, 81 + s); /* s == 3: below the 1e-5 floor */
        void *a, *b;
        size_t n = run_both(build_quant, &c, &a, &b);
        expect_same("QUANTIZE_ACT", b, a, n);
    }
    /* ties: with max |x| = 127, s = 1 and x * s = k + 0.5 rounds to even */
    quant_case c = {8, 1, track(8 * sizeof(float))};
    const float x[8] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -126.5f, 3.49999f};
    memcpy(c.x, x, sizeof x);
    void *a, *b;
    size_t n = run_both(build_quant, &c, &a, &b);
    expect_same("QUANTIZE_ACT ties", b, a, n);
    const bn_act_row *row = b;
    const int8_t want[8] = {127, 0, 2, 2, 0, -2, -126, 3};
    assert_memory_equal(row->q, want, 8);
}

/* ---- matmuls ---- */

/* ACT_Q8 activations [K, T] with random q, s and the matching sums. */
static void *act_rows(int64_t K, int64_t T, uint64_t seed) {
    bt_rng r;
    bt_rng_seed(&r, seed);
    uint8_t *p = track(bn_act_row_bytes(K) * (size_t)T);
    for (int64_t t = 0; t < T; t++) {
        bn_act_row *a = (bn_act_row *)(p + bn_act_row_bytes(K) * (size_t)t);
        int32_t sum = 0;
        for (int64_t i = 0; i < K; i++) sum += a->q[i] = (int8_t)bt_rng_int(&r, -128, 127);
        a->sum = sum;
        a->s = (float)(127.0 / (0.1 + 3 * bt_rng_uniform(&r)));
    }
    return p;
}

typedef struct mm_case {
    bool ternary_op; /* MATMUL_TERNARY (ACT_Q8 input) or MATMUL_F */
    uint32_t type;
    int64_t K, N, T;
    void *w, *x;
} mm_case;

static bn_tensor *build_mm(bn_graph *g, const void *arg) {
    const mm_case *c = arg;
    bn_tensor *w = WEIGHT(g, c->type, c->K, c->N, c->w);
    if (c->ternary_op) return bn_matmul_ternary(g, w, INPUT(g, BN_TYPE_ACT_Q8, c->K, c->T, c->x));
    return bn_matmul_f(g, w, INPUT(g, BN_TYPE_F32, c->K, c->T, c->x));
}

/* Ternary weights [K, N] as floats: codes times a scale per 256-block (or one
 * scale when uniform), f16-exact, so every encoding holds exactly these. */
static float *ternary_values(int64_t K, int64_t N, bool uniform, uint64_t seed) {
    bt_rng r;
    bt_rng_seed(&r, seed);
    float *w = track(sizeof(float) * (size_t)(K * N));
    for (int64_t i = 0; i < K * N; i += 256) {
        const float d = uniform ? 0.046875f : (float)bt_rng_int(&r, 1, 64) / 512.0f;
        for (int64_t j = i; j < i + 256 && j < K * N; j++)
            w[j] = (float)(bt_rng_int(&r, 0, 2) - 1) * d;
        w[i] = d; /* every block reaches its scale */
    }
    return w;
}

TEST(test_matmul_ternary) {
    const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    const int64_t shapes[][3] = {{256, 1, 1},    {256, 7, 1},  {512, 33, 3}, {768, 65, 9},
                                 {512, 130, 17}, {1024, 3, 4}, {256, 1, 5}};
    for (int ty = 0; ty < 3; ty++)
        for (size_t s = 0; s < 7; s++)
            for (int uniform = 0; uniform < 2; uniform++) {
                mm_case c = {true, types[ty], shapes[s][0], shapes[s][1], shapes[s][2], NULL, NULL};
                if (types[ty] == BN_TYPE_I2_S && !uniform) continue; /* one scale per tensor */
                float *wf = ternary_values(c.K, c.N, uniform, 101 + s);
                c.w = encode(c.type, wf, c.K, c.N);
                c.x = act_rows(c.K, c.T, 111 + s);
                void *a, *b;
                run_both(build_mm, &c, &a, &b);
                const float *ycpu = a, *ycl = b;
                char what[96];
                snprintf(what, sizeof what, "MATMUL_TERNARY %s K=%lld N=%lld T=%lld%s",
                         bn_type_name(c.type), (long long)c.K, (long long)c.N, (long long)c.T,
                         uniform ? " (one scale)" : "");
                /* the expectation, from the codes and scales as the format defines them */
                uint8_t *codes = track((size_t)c.K);
                float *scales = track(sizeof(float) * (size_t)(c.K / 256 + 1));
                for (int64_t n = 0; n < c.N; n++) {
                    bn_ternary_row_codes(c.type, c.w, c.K, c.N, n, codes, scales);
                    for (int64_t t = 0; t < c.T; t++) {
                        const bn_act_row *xr =
                            (const bn_act_row *)((uint8_t *)c.x +
                                                 bn_act_row_bytes(c.K) * (size_t)t);
                        double acc = 0;
                        int64_t total = 0;
                        for (int64_t g0 = 0; g0 < c.K; g0 += 256) {
                            int32_t S = 0;
                            for (int64_t i = g0; i < g0 + 256; i++) S += (codes[i] - 1) * xr->q[i];
                            acc += (double)scales[g0 / 256] * S;
                            total += S;
                        }
                        const float want = (float)(acc * (1.0 / (double)xr->s));
                        const float got = ycl[t * c.N + n];
                        if (uniform) { /* recover the int32 sum exactly */
                            double rec = (double)got * xr->s / scales[0];
                            if (llround(rec) != total || fabs(rec - (double)total) > 0.05)
                                fail_msg("%s: n=%lld t=%lld sum %lld, recovered %.3f", what,
                                         (long long)n, (long long)t, (long long)total, rec);
                        }
                        if (ycpu[t * c.N + n] != want) fail_msg("%s: CPU reference differs", what);
                        if (fp64 ? got != want : fabsf(got - want) > 1e-6f * fabsf(want) + 1e-30f)
                            fail_msg("%s: n=%lld t=%lld: %.9g, expected %.9g", what, (long long)n,
                                     (long long)t, (double)got, (double)want);
                    }
                }
            }
}

TEST(test_matmul_float_weights) {
    const uint32_t types[3] = {BN_TYPE_F32, BN_TYPE_F16, BN_TYPE_BF16};
    const int64_t shapes[][3] = {{1, 1, 1},     {3, 5, 2},      {100, 7, 1}, {333, 65, 9},
                                 {1000, 17, 3}, {256, 130, 20}, {2560, 9, 5}};
    for (int ty = 0; ty < 3; ty++)
        for (size_t s = 0; s < 7; s++)
            for (int tern = 0; tern < 2; tern++) {
                mm_case c = {tern, types[ty], shapes[s][0], shapes[s][1], shapes[s][2], NULL, NULL};
                float *wf =
                    tern ? ternary_values(c.K, c.N, true, 121 + s) : randn(c.K * c.N, 0.1, 121 + s);
                c.w = types[ty] == BN_TYPE_F32 ? (void *)wf : encode(c.type, wf, c.K, c.N);
                c.x = tern ? act_rows(c.K, c.T, 131 + s) : randn(c.K * c.T, 1.0, 131 + s);
                void *a, *b;
                size_t n = run_both(build_mm, &c, &a, &b);
                char what[96];
                snprintf(what, sizeof what, "%s %s K=%lld N=%lld T=%lld",
                         tern ? "MATMUL_TERNARY" : "MATMUL_F", bn_type_name(c.type), (long long)c.K,
                         (long long)c.N, (long long)c.T);
                if (tern) /* ternary values in floats: exact sums, so exact results */
                    expect_same(what, b, a, n);
                else
                    expect_nmse(what, b, a, n / 4, c.K >= 1000 ? 5e-4 : 1e-7);
            }
}

/* ---- KV_STORE (read back through CPY) and ATTENTION ---- */

typedef struct kv_case {
    uint32_t type;
    int64_t D, n_ctx, T;
    int n_past;
    void *cache; /* host identity of the cache (CPU: its contents) */
    float *x;
} kv_case;

static bn_tensor *build_kv(bn_graph *g, const void *arg) {
    const kv_case *c = arg;
    bn_tensor *cache = leaf(g, c->type, c->D, c->n_ctx, c->cache, BN_TENSOR_CACHE);
    bn_tensor *st = bn_kv_store(g, cache, INPUT(g, BN_TYPE_F32, c->D, c->T, c->x), c->n_past);
    return bn_cpy(g, st, BN_TYPE_F32);
}

TEST(test_kv_store) {
    const uint32_t types[2] = {BN_TYPE_F16, BN_TYPE_F32};
    for (int ty = 0; ty < 2; ty++) {
        kv_case c = {types[ty], 70, 12, 3, 0, NULL, NULL};
        c.cache = track((size_t)(c.D * c.n_ctx) * 4);
        /* two steps on one cache: rows 0..2, then rows 3..4; the device copy persists */
        c.x = randn(c.D * c.T, 1.0, 141);
        void *a, *b;
        size_t n = run_both(build_kv, &c, &a, &b);
        expect_same("KV_STORE step 1", b, a, n);
        c.n_past = 3, c.T = 2;
        c.x = randn(c.D * c.T, 1.0, 142);
        n = run_both(build_kv, &c, &a, &b);
        expect_same("KV_STORE step 2", b, a, n);
        const float *y = b;
        assert_true(y[5 * c.D] == 0.0f && y[3 * c.D] != 0.0f); /* untouched rows stay zero */
    }
}

typedef struct att_case {
    uint32_t ktype, vtype;
    int n_head, n_kv, hd, n_ctx, n_past, T;
    float *q;
    void *k, *v;
} att_case;

static bn_tensor *build_att(bn_graph *g, const void *arg) {
    const att_case *c = arg;
    const int64_t kvd = (int64_t)c->n_kv * c->hd;
    bn_tensor *q = INPUT(g, BN_TYPE_F32, (int64_t)c->n_head * c->hd, c->T, c->q);
    bn_tensor *k = WEIGHT(g, c->ktype, kvd, c->n_ctx, c->k);
    bn_tensor *v = WEIGHT(g, c->vtype, kvd, c->n_ctx, c->v);
    return bn_attention(g, q, k, v, c->n_past, c->n_head, c->n_kv, c->hd,
                        1.0f / sqrtf((float)c->hd));
}

TEST(test_attention) {
    const att_case cases[] = {
        {BN_TYPE_F16, BN_TYPE_F16, 4, 2, 64, 16, 0, 5, NULL, NULL, NULL},    /* prefill, GQA */
        {BN_TYPE_F16, BN_TYPE_F16, 4, 2, 64, 300, 200, 1, NULL, NULL, NULL}, /* decode, long */
        {BN_TYPE_F32, BN_TYPE_F32, 3, 3, 6, 140, 60, 7, NULL, NULL, NULL},   /* hd % 4 != 0 */
        {BN_TYPE_F32, BN_TYPE_F16, 2, 1, 256, 70, 63, 2, NULL, NULL, NULL},  /* hd = 256 */
        {BN_TYPE_F16, BN_TYPE_F32, 8, 2, 128, 129, 64, 65, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        att_case c = cases[i];
        const int64_t kvn = (int64_t)c.n_kv * c.hd * c.n_ctx;
        c.q = randn((int64_t)c.n_head * c.hd * c.T, 1.0, 151 + i);
        float *k = randn(kvn, 1.0, 161 + i), *v = randn(kvn, 1.0, 171 + i);
        c.k = c.ktype == BN_TYPE_F16 ? encode(BN_TYPE_F16, k, kvn, 1) : (void *)k;
        c.v = c.vtype == BN_TYPE_F16 ? encode(BN_TYPE_F16, v, kvn, 1) : (void *)v;
        void *a, *b;
        size_t n = run_both(build_att, &c, &a, &b);
        char what[64];
        snprintf(what, sizeof what, "ATTENTION case %zu", i);
        expect_nmse(what, b, a, n / 4, 5e-4);
        expect_nmse(what, b, a, n / 4, 1e-9); /* in practice f32 attention is this close */
    }
}

/* ---- the backend's own behaviour ---- */

TEST(test_supports_and_refusals) {
    bn_graph *g = bn_graph_new();
    static uint8_t blob[1 << 16];
    bn_tensor *ids = INPUT(g, BN_TYPE_I32, 2, 1, blob);
    bn_tensor *q8 = bn_get_rows(g, WEIGHT(g, BN_TYPE_Q8_0, 64, 4, blob), ids);
    bn_tensor *f16 = bn_get_rows(g, WEIGHT(g, BN_TYPE_F16, 64, 4, blob), ids);
    bn_tensor *mq = bn_matmul_f(g, WEIGHT(g, BN_TYPE_Q4_0, 64, 4, blob), f16);
    bn_tensor *qq = INPUT(g, BN_TYPE_F32, 320, 1, blob);
    bn_tensor *kk = WEIGHT(g, BN_TYPE_F16, 320, 8, blob);
    bn_tensor *big = bn_attention(g, qq, kk, kk, 0, 1, 1, 320, 1.0f);
    assert_false(ocl->ops->supports(ocl, q8));
    assert_true(ocl->ops->supports(ocl, f16));
    assert_false(ocl->ops->supports(ocl, mq));
    assert_false(ocl->ops->supports(ocl, big));
    bn_err err = {0};
    assert_int_equal(ocl->ops->graph_prepare(ocl, g, &err), BN_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Q8_0"));
    bn_graph_free(g);
}

TEST(test_device_info) {
    const bn_backend_ops *ops = bn_backend_opencl();
    bn_device_info info;
    bn_err err = {0};
    assert_int_equal(ops->device_info(0, &info, &err), BN_OK);
    assert_true(info.name[0] && info.details[0]);
    assert_true(info.mem_free_estimated && info.mem_free < info.mem_total);
    assert_int_equal(ops->device_info(99, &info, &err), BN_ERR_DEVICE);
    assert_non_null(strstr(err.msg, "opencl:99"));
    bn_backend *b = NULL;
    assert_int_equal(ops->open(99, NULL, &b, &err), BN_ERR_DEVICE);
    assert_null(b);
    bn_device_profile p;
    assert_int_equal(ops->calibrate(ocl, &p, &err), BN_OK);
    printf("profile: ternary %.2f GB/s, float %.2f GFLOP/s, h2d %.2f GB/s, d2h %.2f GB/s, "
           "latency %.1f us, dispatch %.1f us\n",
           p.ternary_gbps, p.float_gflops, p.h2d_gbps, p.d2h_gbps, p.latency_us, p.dispatch_us);
    assert_true(p.ternary_gbps > 0 && p.float_gflops > 0 && p.h2d_gbps > 0 && p.d2h_gbps > 0);
    assert_true(p.latency_us > 0 && p.dispatch_us > 0);
}

static int open_backends(void **state __attribute__((unused))) {
    bn_err err = {0};
    if (bn_backend_cpu()->open(0, NULL, &cpu, &err) != BN_OK) return -1;
    if (bn_backend_opencl()->open(0, NULL, &ocl, &err) != BN_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    fp64 = strstr(((clb_backend *)ocl)->base_options, "USE_FP64") != NULL;
    printf("opencl:0 options: %s\n", ((clb_backend *)ocl)->base_options);
    return 0;
}

static int close_backends(void **state __attribute__((unused))) {
    cpu->ops->close(cpu);
    ocl->ops->close(ocl);
    cpu = ocl = NULL;
    bt_free_tracked();
    return 0;
}

int main(void) {
    bt_opencl_prelude(); /* or skip; the CPU reference; the program cache */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_ops),
        cmocka_unit_test(test_mul_add_broadcast),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_cpy),
        cmocka_unit_test(test_get_rows),
        cmocka_unit_test(test_quantize_act),
        cmocka_unit_test(test_matmul_ternary),
        cmocka_unit_test(test_matmul_float_weights),
        cmocka_unit_test(test_kv_store),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_supports_and_refusals),
        cmocka_unit_test(test_device_info),
    };
    int fails = cmocka_run_group_tests_name("opencl ops", tests, open_backends, close_backends);
    /* the ops whose kernels change without fp64 (the others do not use it) */
    const struct CMUnitTest tests_f32[] = {
        cmocka_unit_test(test_unary_ops),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_quantize_act),
        cmocka_unit_test(test_matmul_ternary),
    };
    setenv("BITNET_OPENCL_FP64", "0", 1);
    fails += cmocka_run_group_tests_name("opencl ops without fp64", tests_f32, open_backends,
                                         close_backends);
    unsetenv("BITNET_OPENCL_FP64");
    /* the matmuls as GPUs run them: 16 lanes per row, reduced in local memory */
    const struct CMUnitTest tests_lanes[] = {
        cmocka_unit_test(test_matmul_ternary),
        cmocka_unit_test(test_matmul_float_weights),
    };
    setenv("BITNET_OPENCL_LPR", "16", 1);
    fails += cmocka_run_group_tests_name("opencl matmuls with 16 lanes per row", tests_lanes,
                                         open_backends, close_backends);
    unsetenv("BITNET_OPENCL_LPR");
    return fails;
}
#endif
