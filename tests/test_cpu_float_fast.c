/* test_cpu_float_fast.c - the CPU backend's fast float kernels
 * (backends/cpu/float_kernels.h), run through bn_cpu_compute with the fast
 * table selected, against computations written here in double precision
 * from graph/ir.h's formulas, and against the plain-C reference where the
 * contract is "same bytes":
 *  - QUANTIZE_ACT: byte for byte what the reference writes (NaN, inf, ties,
 *    zero rows, odd lengths);
 *  - RMS_NORM, SILU, ATTENTION, MATMUL_F with F32/F16/BF16 weights: NMSE
 *    <= 1e-10 (the reference's own f32 rounding is ~1e-14; reordered f32
 *    sums give ~1e-13);
 *  - MATMUL_F with Q6_K weights: NMSE <= 5e-8 (activations rounded to 16
 *    bits per 256-block: at most 256 / (12 * 32767^2) = 2e-8 in expectation
 *    whatever the outliers, since each block's rounding error scales with
 *    its own largest value, which is part of sum x^2; the outlier-laden x
 *    here reaches 1.8e-8); other block types go through the fast f32 dot:
 *    1e-10;
 *  - every node gives the same bytes with 1, 3 and 7 threads.
 * Every table this CPU runs is tested in turn ("avx2", "avx512vnni").
 * Skipped (77) on a CPU without a fast table (no AVX2/FMA/F16C). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "cpu/cpu_ops.h"
#include "cpu/float_kernels.h"
#include "ir.h"

#define TEST(name) static void name(void **state __attribute__((unused)))

static int run_group(void);

static bn_graph *g;
static const char *table = "auto"; /* the fast table under test */

static void *alloc_data(bn_tensor *t) {
    size_t n = bn_tensor_nbytes(t);
    t->data = bt_track(calloc(1, n ? n : 1));
    return t->data;
}

static int setup(void **state __attribute__((unused))) {
    g = bn_graph_new();
    return g ? 0 : -1;
}

static int teardown(void **state __attribute__((unused))) {
    bt_free_tracked();
    bn_graph_free(g);
    g = NULL;
    bn_cpu_float_select(table);
    return 0;
}

/* Runs node as nth threads would (ith = 0..nth-1 in turn), fresh poisoned
 * scratch for each. */
static void compute(const bn_tensor *node, int nth) {
    size_t sb = bn_cpu_scratch_bytes(node);
    for (int ith = 0; ith < nth; ith++) {
        void *s = aligned_alloc(64, sb ? (sb + 63) / 64 * 64 : 64);
        assert_non_null(s);
        memset(s, 0xA5, sb ? sb : 64);
        bn_cpu_compute(node, ith, nth, s);
        free(s);
    }
}

/* Checks the node, computes it with the fast table on 1, 3 and 7 threads
 * (same bytes each time); the result stays in node->data. */
static void run_fast(bn_tensor *node) {
    bn_err e = {0};
    if (bn_cpu_check_node(node, &e) != BN_OK) fail_msg("check failed: %s", e.msg);
    assert_non_null(bn_cpu_float_select(table));
    const size_t n = bn_tensor_nbytes(node);
    memset(node->data, 0xFF, n);
    compute(node, 1);
    void *first = malloc(n);
    assert_non_null(first);
    memcpy(first, node->data, n);
    const int nths[] = {3, 7};
    for (int k = 0; k < 2; k++) {
        memset(node->data, 0xFF, n);
        compute(node, nths[k]);
        assert_memory_equal(node->data, first, n);
    }
    free(first);
}

static void assert_nmse(const float *got, const double *want, size_t n, double tol,
                        const char *what) {
    double e = bt_nmse_f32_f64(got, want, n);
    if (getenv("BT_VERBOSE")) printf("  %-44s NMSE %.3g\n", what, e);
    if (!(e <= tol)) fail_msg("%s: NMSE %g > %g", what, e, tol);
}

TEST(test_select) {
    assert_null(bn_cpu_float_select("scalar"));
    assert_string_equal(bn_cpu_float_name(), "scalar");
    assert_null(bn_cpu_float_select("no-such-isa"));
    const bn_cpu_float_ops *t = bn_cpu_float_select("auto");
    assert_non_null(t);
    assert_string_equal(bn_cpu_float_name(), t->isa);
    assert_ptr_equal(bn_cpu_float_select(t->isa), t);
}

/* ---- QUANTIZE_ACT: the same bytes as the reference ---- */
TEST(test_quantize_act_exact) {
    bt_rng r;
    bt_rng_seed(&r, 11);
    const int64_t Ks[] = {2560, 256, 100, 33, 7, 1};
    for (size_t k = 0; k < sizeof Ks / sizeof Ks[0]; k++) {
        const int64_t K = Ks[k], T = 9;
        bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, K, T, "x");
        float *xd = alloc_data(x);
        bt_fill_normal(xd, K * T, 3.0, &r);
        for (int64_t i = 0; i < K; i++) {
            xd[1 * K + i] = 0.0f;                                       /* m = 1e-5 */
            xd[2 * K + i] = (float)((i % 253) - 126) + 0.5f;            /* ties at s = 1 */
            xd[3 * K + i] = (float)(1e-7 * bt_rng_normal(&r));          /* below 1e-5 */
            xd[4 * K + i] = (float)(1e30 * bt_rng_normal(&r));          /* huge */
            xd[5 * K + i] = i % 5 ? (float)bt_rng_normal(&r) : NAN;     /* NaN ignored */
            xd[6 * K + i] = i % 7 ? (float)bt_rng_normal(&r) : -0.0f;   /* signed zeros */
            xd[7 * K + i] = i == K / 2 ? INFINITY : (float)(i % 3) - 1; /* inf: s = 0 */
            xd[8 * K + i] = (float)(i % 2 ? 1e-40 : -3e-39);            /* subnormals */
        }
        xd[2 * K] = 127.0f;
        bn_tensor *q = bn_quantize_act(g, x);
        alloc_data(q);
        run_fast(q);
        const size_t n = bn_tensor_nbytes(q);
        void *fast = malloc(n);
        assert_non_null(fast);
        memcpy(fast, q->data, n);
        bn_cpu_float_select("scalar");
        memset(q->data, 0xFF, n);
        compute(q, 1);
        for (int64_t t = 0; t < T; t++)
            if (memcmp((char *)fast + t * q->nb[1], (char *)q->data + t * q->nb[1], q->nb[1]))
                fail_msg("K %lld row %lld differs from the reference", (long long)K, (long long)t);
        free(fast);
    }
}

/* ---- RMS_NORM ---- */
TEST(test_rms_norm) {
    bt_rng r;
    bt_rng_seed(&r, 12);
    const int64_t Ks[] = {2560, 100, 7};
    for (size_t k = 0; k < 3; k++) {
        const int64_t K = Ks[k], T = 4;
        bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, K, T, "x");
        float *xd = alloc_data(x);
        bt_fill_normal(xd, K * T, 5.0, &r);
        bn_tensor *y = bn_rms_norm(g, x, 1e-5f);
        alloc_data(y);
        run_fast(y);
        double *want = malloc(sizeof(double) * (size_t)(K * T));
        assert_non_null(want);
        for (int64_t t = 0; t < T; t++) {
            double ss = 0;
            for (int64_t i = 0; i < K; i++) ss += (double)xd[t * K + i] * xd[t * K + i];
            const double f = 1.0 / sqrt(ss / (double)K + 1e-5);
            for (int64_t i = 0; i < K; i++) want[t * K + i] = xd[t * K + i] * f;
        }
        assert_nmse(y->data, want, (size_t)(K * T), 1e-12, "rms_norm");
        free(want);
    }
}

/* ---- SILU, including the exp clamps at both ends ---- */
TEST(test_silu) {
    bt_rng r;
    bt_rng_seed(&r, 13);
    const int64_t n = 1003;
    bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, n, 1, "x");
    float *xd = alloc_data(x);
    for (int64_t i = 0; i < n; i++) xd[i] = (float)(-100.0 + 200.0 * (double)i / (double)(n - 1));
    for (int64_t i = 0; i < 200; i++) xd[i] = (float)(4 * bt_rng_normal(&r));
    bn_tensor *y = bn_silu(g, x);
    alloc_data(y);
    run_fast(y);
    double *want = malloc(sizeof(double) * n);
    assert_non_null(want);
    const float *yd = y->data;
    for (int64_t i = 0; i < n; i++) {
        want[i] = xd[i] / (1.0 + exp(-(double)xd[i]));
        /* relative to |x| (silu(x) ~ x e^x underflows for x << 0) */
        double err = fabs(yd[i] - want[i]) / (fabs(xd[i]) + 1e-30);
        if (err > 1e-6)
            fail_msg("silu(%g) = %.9g, want %.9g", (double)xd[i], (double)yd[i], want[i]);
    }
    assert_nmse(yd, want, (size_t)n, 1e-12, "silu");
    free(want);
}

/* ---- f32 -> f16 (KV_STORE): the reference's bits, for random bit patterns
 * (every exponent: NaN payloads, infinities, f32 and f16 subnormals, overflow,
 * ties) and special values; f16 -> f32: every pattern's value ---- */
TEST(test_f16_conversions_exact) {
    bt_rng r;
    bt_rng_seed(&r, 20);
    const int64_t D = 4099, T = 64;
    bn_tensor *cache = bn_new_tensor(g, BN_TYPE_F16, D, T + 2, "cache");
    uint16_t *cd = alloc_data(cache);
    bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, D, T, "x");
    float *xd = alloc_data(x);
    for (int64_t i = 0; i < D * T; i++) {
        uint32_t u = (uint32_t)bt_rng_u64(&r);
        if (i % 3 == 0) /* exponents near the f16 range, where rounding matters */
            u = (u & 0x807fffffu) | (uint32_t)bt_rng_int(&r, 100, 145) << 23;
        if (i % 7 == 0) u &= 0xffffe000u | 0x1000u; /* exact ties */
        memcpy(&xd[i], &u, 4);
    }
    const float special[] = {0.0f,      -0.0f,   INFINITY, -INFINITY, NAN,      65504.0f, 65520.0f,
                             65519.99f, 6.1e-5f, 5.96e-8f, 2.98e-8f,  2.99e-8f, 1e-45f,   -1e-40f};
    memcpy(xd, special, sizeof special);
    bn_tensor *st = bn_kv_store(g, cache, x, 1);
    st->data = cache->data;
    run_fast(st);
    for (int64_t i = 0; i < D * T; i++) {
        uint16_t want = bn_f32_to_f16(xd[i]);
        if (cd[D + i] != want)
            fail_msg("f16 of 0x%08x: 0x%04x, want 0x%04x", (unsigned)((uint32_t *)xd)[i], cd[D + i],
                     want);
    }
    /* every f16 bit pattern back to f32: the value (NaN stays NaN) */
    const bn_cpu_float_ops *f = bn_cpu_float_select(table);
    uint16_t *hv = bt_track(malloc(2 * 65536));
    float *fv = bt_track(malloc(4 * 65536));
    for (int i = 0; i < 65536; i++) hv[i] = (uint16_t)i;
    f->f16_to_f32(hv, fv, 65536);
    for (int i = 0; i < 65536; i++) {
        float w = bn_f16_to_f32(hv[i]);
        if (!(fv[i] == w || (isnan(fv[i]) && isnan(w))))
            fail_msg("f32 of f16 0x%04x: %g, want %g", hv[i], (double)fv[i], (double)w);
    }
}

/* ---- RELU_SQR: the same bytes as the reference (NaN, signed zeros, inf) ---- */
TEST(test_relu_sqr_exact) {
    bt_rng r;
    bt_rng_seed(&r, 19);
    const int64_t n = 1037;
    bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, n, 1, "x");
    float *xd = alloc_data(x);
    bt_fill_normal(xd, n, 3.0, &r);
    xd[3] = NAN;
    xd[4] = -0.0f;
    xd[5] = INFINITY;
    xd[6] = -INFINITY;
    xd[7] = 1e30f; /* squares to inf */
    bn_tensor *y = bn_relu_sqr(g, x);
    alloc_data(y);
    run_fast(y);
    float *fast = bt_track(malloc(sizeof(float) * n));
    memcpy(fast, y->data, sizeof(float) * n);
    bn_cpu_float_select("scalar");
    compute(y, 1);
    assert_memory_equal(fast, y->data, sizeof(float) * n);
}

/* ---- MATMUL_F ---- */

/* A weight of the given type holding `vals` as quantized (its exact values
 * are read back with bn_dequantize_row for the expectation). */
static bn_tensor *make_weight(uint32_t type, const float *vals, int64_t K, int64_t N) {
    bn_tensor *w = bn_new_tensor(g, type, K, N, "w");
    alloc_data(w);
    bn_err e = {0};
    if (bn_quantize(type, vals, K, N, w->data, &e) != BN_OK) fail_msg("quantize: %s", e.msg);
    return w;
}

/* y = w x in double: want[t * N + n] = sum_i w[n][i] * x[t * K + i], w's rows
 * (K x N of type) read back with bn_dequantize_row. Freed in teardown. */
static const double *ref_matmul(uint32_t type, const void *w, const float *x, int64_t K, int64_t N,
                                int64_t T) {
    double *want = bt_track(malloc(sizeof(double) * (size_t)(N * T)));
    float *row = bt_track(malloc(sizeof(float) * (size_t)K));
    for (int64_t n = 0; n < N; n++) {
        bn_dequantize_row(type, w, K, N, n, row);
        for (int64_t t = 0; t < T; t++) {
            double s = 0;
            for (int64_t i = 0; i < K; i++) s += (double)row[i] * x[t * K + i];
            want[t * N + n] = s;
        }
    }
    return want;
}

static void check_matmul_f(uint32_t type, int64_t K, int64_t N, int64_t T, double tol, bt_rng *r) {
    float *vals = bt_track(malloc(sizeof(float) * (size_t)(K * N)));
    bt_fill_normal(vals, K * N, 0.05, r);
    bn_tensor *w = make_weight(type, vals, K, N);
    bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, K, T, "x");
    float *xd = alloc_data(x);
    bt_fill_normal(xd, K * T, 1.0, r);
    for (int64_t i = 0; i < K; i += 97) xd[i] *= 30.0f; /* outliers: per-block ranges */
    bn_tensor *y = bn_matmul_f(g, w, x);
    alloc_data(y);
    run_fast(y);
    const double *want = ref_matmul(type, w->data, xd, K, N, T);
    char what[96];
    snprintf(what, sizeof what, "matmul_f %s K=%lld N=%lld T=%lld", bn_type_name(type),
             (long long)K, (long long)N, (long long)T);
    assert_nmse(y->data, want, (size_t)(N * T), tol, what);
}

TEST(test_matmul_f_float) {
    bt_rng r;
    bt_rng_seed(&r, 14);
    const uint32_t types[] = {BN_TYPE_F16, BN_TYPE_BF16, BN_TYPE_F32};
    for (int k = 0; k < 3; k++) {
        check_matmul_f(types[k], 2560, 37, 1, 1e-10, &r);
        check_matmul_f(types[k], 256, 100, 3, 1e-10, &r);
        check_matmul_f(types[k], 100, 21, 1, 1e-10, &r); /* tails */
        check_matmul_f(types[k], 7, 5, 2, 1e-10, &r);
        check_matmul_f(types[k], 24, 1, 1, 1e-10, &r);
    }
}

TEST(test_matmul_f_q6k) {
    bt_rng r;
    bt_rng_seed(&r, 15);
    check_matmul_f(BN_TYPE_Q6_K, 2560, 45, 1, 5e-8, &r);
    check_matmul_f(BN_TYPE_Q6_K, 512, 33, 5, 5e-8, &r);
    check_matmul_f(BN_TYPE_Q6_K, 256, 1, 1, 5e-8, &r);
}

/* Q6_K blocks of random bytes: every code, scale and sign pattern, extreme
 * scales (-128, 127) included. */
TEST(test_matmul_f_q6k_random_bytes) {
    bt_rng r;
    bt_rng_seed(&r, 16);
    const int64_t K = 1024, N = 19, T = 2;
    bn_tensor *w = bn_new_tensor(g, BN_TYPE_Q6_K, K, N, "w");
    uint8_t *wd = alloc_data(w);
    for (size_t i = 0; i < bn_tensor_nbytes(w); i++) wd[i] = (uint8_t)bt_rng_int(&r, 0, 255);
    for (int64_t b = 0; b < N * K / 256; b++) { /* d = +-2^-10 .. 2^-4, no inf/NaN */
        uint16_t d = bn_f32_to_f16((float)ldexp(1.0, bt_rng_int(&r, -10, -4)) *
                                   (bt_rng_int(&r, 0, 1) ? 1.0f : -1.0f));
        wd[210 * b + 208] = (uint8_t)d;
        wd[210 * b + 209] = (uint8_t)(d >> 8);
        if (b == 3) memset(wd + 210 * b + 192, 0x80, 16); /* scales -128 */
        if (b == 4) memset(wd + 210 * b + 192, 0x7F, 16); /* scales 127 */
        if (b == 5) memset(wd + 210 * b, 0xFF, 192);      /* u = 63 everywhere */
    }
    bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, K, T, "x");
    float *xd = alloc_data(x);
    bt_fill_normal(xd, K * T, 1.0, &r);
    for (int64_t i = 0; i < 256; i++) xd[256 + i] = (float)(i % 2 ? 1e4 : -1e4); /* |X| at max */
    for (int64_t i = 0; i < 256; i++) xd[K + 512 + i] = 0.0f; /* an empty block */
    bn_tensor *y = bn_matmul_f(g, w, x);
    alloc_data(y);
    run_fast(y);
    const double *want = ref_matmul(BN_TYPE_Q6_K, wd, xd, K, N, T);
    assert_nmse(y->data, want, (size_t)(N * T), 5e-8, "matmul_f Q6_K random bytes");
}

/* Block types without a dedicated kernel: dequantized rows, fast f32 dots. */
TEST(test_matmul_f_other_types) {
    bt_rng r;
    bt_rng_seed(&r, 17);
    check_matmul_f(BN_TYPE_Q8_0, 512, 23, 1, 1e-10, &r);
    check_matmul_f(BN_TYPE_Q8_0, 256, 17, 3, 1e-10, &r);
    check_matmul_f(BN_TYPE_TQ2_0, 512, 9, 2, 1e-10, &r);
}

/* ---- ATTENTION ---- */

static void check_attention(uint32_t kv_type, int n_head, int n_kv, int hd, int T, int n_past,
                            double qscale, bt_rng *r) {
    const int n_ctx = n_past + T + 3;
    bn_tensor *q = bn_new_tensor(g, BN_TYPE_F32, (int64_t)n_head * hd, T, "q");
    float *qd = alloc_data(q);
    bt_fill_normal(qd, (int64_t)n_head * hd * T, qscale, r);
    bn_tensor *kc = bn_new_tensor(g, kv_type, (int64_t)n_kv * hd, n_ctx, "k");
    bn_tensor *vc = bn_new_tensor(g, kv_type, (int64_t)n_kv * hd, n_ctx, "v");
    alloc_data(kc);
    alloc_data(vc);
    const int64_t ne = (int64_t)n_kv * hd * n_ctx;
    float *kf = bt_track(malloc(sizeof(float) * (size_t)ne)),
          *vf = bt_track(malloc(sizeof(float) * (size_t)ne));
    bt_fill_normal(kf, ne, 1.0, r);
    bt_fill_normal(vf, ne, 1.0, r);
    for (int64_t i = 0; i < ne; i++) {
        if (kv_type == BN_TYPE_F16) {
            ((uint16_t *)kc->data)[i] = bn_f32_to_f16(kf[i]);
            ((uint16_t *)vc->data)[i] = bn_f32_to_f16(vf[i]);
            kf[i] = bn_f16_to_f32(((uint16_t *)kc->data)[i]);
            vf[i] = bn_f16_to_f32(((uint16_t *)vc->data)[i]);
        } else {
            ((float *)kc->data)[i] = kf[i];
            ((float *)vc->data)[i] = vf[i];
        }
    }
    const float scale = 1.0f / sqrtf((float)hd);
    bn_tensor *a = bn_attention(g, q, kc, vc, n_past, n_head, n_kv, hd, scale);
    alloc_data(a);
    run_fast(a);
    double *want = malloc(sizeof(double) * (size_t)n_head * hd * T);
    double *s = malloc(sizeof(double) * (size_t)n_ctx);
    assert_non_null(want);
    assert_non_null(s);
    const int64_t D = (int64_t)n_kv * hd;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_head; h++) {
            const int gq = h / (n_head / n_kv), len = n_past + t + 1;
            const float *qh = qd + (int64_t)t * n_head * hd + (int64_t)h * hd;
            double m = -INFINITY, sum = 0;
            for (int j = 0; j < len; j++) {
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)qh[i] * kf[j * D + gq * hd + i];
                s[j] = (double)scale * d;
                m = s[j] > m ? s[j] : m;
            }
            for (int j = 0; j < len; j++) sum += (s[j] = exp(s[j] - m));
            for (int i = 0; i < hd; i++) {
                double o = 0;
                for (int j = 0; j < len; j++) o += s[j] * vf[j * D + gq * hd + i];
                want[(int64_t)t * n_head * hd + (int64_t)h * hd + i] = o / sum;
            }
        }
    char what[96];
    snprintf(what, sizeof what, "attention %s hd=%d T=%d n_past=%d qscale=%g",
             bn_type_name(kv_type), hd, T, n_past, qscale);
    assert_nmse(a->data, want, (size_t)n_head * hd * T, 1e-10, what);
    free(want);
    free(s);
}

TEST(test_attention) {
    bt_rng r;
    bt_rng_seed(&r, 18);
    const uint32_t kv[] = {BN_TYPE_F16, BN_TYPE_F32};
    for (int k = 0; k < 2; k++) {
        check_attention(kv[k], 8, 2, 128, 1, 0, 1.0, &r);
        check_attention(kv[k], 8, 2, 128, 1, 41, 1.0, &r);
        check_attention(kv[k], 4, 4, 100, 3, 9, 1.0, &r); /* head_dim with a tail */
        check_attention(kv[k], 6, 3, 36, 5, 0, 1.0, &r);
        check_attention(kv[k], 2, 1, 64, 2, 130, 12.0, &r); /* peaky softmax, exp clamps */
        check_attention(kv[k], 2, 2, 5, 1, 6, 1.0, &r);     /* head_dim below one vector */
        check_attention(kv[k], 8, 2, 64, 9, 20, 1.0, &r);   /* 36 pairs per kv head: 3 batches */
        check_attention(kv[k], 20, 1, 32, 2, 70, 1.0, &r);  /* 20 heads on one kv head */
    }
}

int main(void) {
    if (!bn_cpu_float_select("auto"))
        bt_skip("this CPU has no fast float kernels (they need AVX2, FMA and F16C)");
    static const char *const tables[] = {"avx2", "avx512vnni"};
    int failed = 0;
    for (size_t k = 0; k < sizeof tables / sizeof tables[0]; k++) {
        if (!bn_cpu_float_select(tables[k])) {
            printf("(table %s: not supported by this CPU, skipped)\n", tables[k]);
            continue;
        }
        table = tables[k];
        printf("float kernel table %s\n", table);
        failed |= run_group();
    }
    return failed;
}

static int run_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quantize_act_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rms_norm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relu_sqr_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_f16_conversions_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_f_float, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_f_q6k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_f_q6k_random_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_f_other_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attention, setup, teardown),
    };
    return cmocka_run_group_tests_name(table, tests, NULL, NULL);
}
