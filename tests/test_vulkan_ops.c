/* test_vulkan_ops.c - every IR op on the Vulkan backend against the CPU backend (the scalar
 * reference), on Vulkan device 0 (lavapipe in CI; BITNET_VK_DEVICE=N picks another), with
 * the validation layer on: any validation message fails the test.
 *
 * Ternary matmuls are checked bit-exact in int32: with integer activations whose row
 * maximum is 127 the activation scale is exactly 1, and with unit weight scales the output
 * is the exact integer sum, computed here independently. Other ternary cases (random
 * scales and activations) must match the CPU to float rounding; QUANTIZE_ACT, GET_ROWS,
 * CPY and KV_STORE must match bit for bit; float ops within NMSE 1e-7. Shapes include K
 * not a multiple of the workgroup, N = 1 and odd N, both the mat-vec (few tokens) and the
 * tiled (prefill) matmul paths, weights split across bindings, and KV caches reused across
 * graphs with a changing n_past. The set runs on the device as it is, then in part with
 * BITNET_VK_FORCE_DISCRETE=1 (staging uploads, host mirrors, copies), with the f32
 * shaders and shared-memory reductions (BITNET_VK_FP64=0, BITNET_VK_SUBGROUP=0), and with
 * the integer-dot matmul code (BITNET_VK_INT_DOT_EMULATE=1). Exit 77 when no Vulkan device
 * exists. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/backend.h"
#include "../core/types.h"
#include "../graph/ir.h"

#ifndef BITNET_HAVE_VULKAN
int main(void) {
    bt_skip("built without the Vulkan backend");
}
#else
#include "../backends/vulkan/vk_diag.h"

static bn_backend *g_cpu, *g_vk;

/* The device under test: BITNET_VK_DEVICE (bench/gpu-check.sh picks the GPU), else 0. */
static int vk_device(void) {
    const char *s = getenv("BITNET_VK_DEVICE");
    return s && *s ? atoi(s) : 0;
}

/* Host memory that outlives every test: the backend keys weights by host pointer, so a
 * weight buffer must not be freed (and its address reused) while the backend is open. */
static void *keep[4096];
static int n_keep;
static void *kalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    assert_true(n_keep < 4096);
    keep[n_keep++] = p;
    return p;
}

static void check_ok(bn_status st, const bn_err *e) {
    if (st != BN_OK) fail_msg("%s", e->msg);
}

static void run(bn_backend *be, bn_graph *g) {
    bn_err e = {0};
    check_ok(be->ops->graph_prepare(be, g, &e), &e);
    check_ok(be->ops->graph_compute(be, g, &e), &e);
}

static void no_validation_messages(void) {
    assert_int_equal(bn_vk_validation_messages(), 0);
}

static bn_tensor *leaf(bn_graph *g, uint32_t type, int64_t ne0, int64_t ne1, void *data,
                       uint32_t flags) {
    bn_tensor *t = bn_new_tensor(g, type, ne0, ne1, "leaf");
    t->data = data;
    t->flags |= flags;
    return t;
}

static float *rand_f32(bt_rng *r, size_t n, double scale) {
    float *x = kalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(bt_rng_normal(r) * scale);
    return x;
}

/* Both graphs built by f, run on the CPU and on Vulkan; the outputs' bytes compared. */
typedef bn_tensor *(*build_fn)(bn_graph *g, void *ctx);

typedef struct result {
    bn_graph *g[2];
    bn_tensor *out[2];
} result;

static void run_both(build_fn f, void *ctx, result *r) {
    for (int i = 0; i < 2; i++) {
        r->g[i] = bn_graph_new();
        r->out[i] = f(r->g[i], ctx);
        r->out[i]->flags |= BN_TENSOR_OUTPUT;
        run(i ? g_vk : g_cpu, r->g[i]);
    }
}

static void result_free(result *r) {
    g_cpu->ops->graph_release(g_cpu, r->g[0]);
    g_vk->ops->graph_release(g_vk, r->g[1]);
    bn_graph_free(r->g[0]);
    bn_graph_free(r->g[1]);
}

static void expect_same_bytes(const result *r) {
    size_t n = bn_tensor_nbytes(r->out[0]);
    assert_int_equal(n, bn_tensor_nbytes(r->out[1]));
    if (memcmp(r->out[0]->data, r->out[1]->data, n)) {
        const uint8_t *a = r->out[0]->data, *b = r->out[1]->data;
        size_t i = 0;
        while (a[i] == b[i]) i++;
        fail_msg("'%s': byte %zu differs (cpu %02x, vulkan %02x)", r->out[0]->name, i, a[i], b[i]);
    }
}

static void expect_nmse(const result *r, double tol) {
    size_t n = (size_t)bn_tensor_nelems(r->out[0]);
    double e = bt_nmse_f32(r->out[1]->data, r->out[0]->data, n);
    if (!(e <= tol))
        fail_msg("'%s' (%s): NMSE %.3g > %.3g", r->out[0]->name, bn_op_name(r->out[0]->op), e, tol);
}

/* ---- GET_ROWS ---- */

typedef struct rows_ctx {
    uint32_t type;
    int64_t K, R, T;
    void *table;
    int32_t *ids;
} rows_ctx;

static bn_tensor *build_rows(bn_graph *g, void *p) {
    rows_ctx *c = p;
    bn_tensor *tab = leaf(g, c->type, c->K, c->R, c->table, BN_TENSOR_WEIGHT);
    bn_tensor *ids = leaf(g, BN_TYPE_I32, c->T, 1, c->ids, BN_TENSOR_INPUT);
    return bn_get_rows(g, tab, ids);
}

static void get_rows_case(uint32_t type, int64_t K, int64_t R, long max_chunk) {
    bt_rng rng;
    bt_rng_seed(&rng, (uint64_t)(type * 1000 + K));
    rows_ctx c = {type, K, R, 6, NULL, kalloc(6 * sizeof(int32_t))};
    const float *src = rand_f32(&rng, (size_t)(K * R), 1.0);
    int64_t ne[4] = {K, R, 1, 1};
    size_t bytes;
    bn_err e = {0};
    check_ok(bn_tensor_bytes(type, ne, &bytes, &e), &e);
    c.table = kalloc(bytes);
    if (type == BN_TYPE_I32) {
        for (int64_t i = 0; i < K * R; i++) ((int32_t *)c.table)[i] = (int32_t)(src[i] * 1000);
    } else {
        check_ok(bn_quantize(type, src, K, R, c.table, &e), &e);
    }
    int32_t ids[6] = {0, (int32_t)R - 1, 3, -1, (int32_t)R, (int32_t)(R / 2)};
    memcpy(c.ids, ids, sizeof ids);
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", max_chunk);
    if (max_chunk) setenv("BITNET_VK_MAX_CHUNK", buf, 1);
    result r;
    run_both(build_rows, &c, &r);
    unsetenv("BITNET_VK_MAX_CHUNK");
    expect_same_bytes(&r);
    result_free(&r);
}

static void test_get_rows(void **state) {
    (void)state;
    get_rows_case(BN_TYPE_F32, 100, 37, 0);
    get_rows_case(BN_TYPE_F16, 257, 40, 0);
    get_rows_case(BN_TYPE_BF16, 64, 9, 0);
    get_rows_case(BN_TYPE_I32, 33, 8, 0);
    /* a table split across bindings of 3 rows each (F16: 2 * 257 bytes a row) */
    get_rows_case(BN_TYPE_F16, 257, 41, 3 * 2 * 257);
    no_validation_messages();
}

/* ---- elementwise and row ops ---- */

typedef struct un_ctx {
    bn_op op;
    int64_t K, T, bk, bt;
    float *x, *b;
    float f;
} un_ctx;

static bn_tensor *build_un(bn_graph *g, void *p) {
    un_ctx *c = p;
    bn_tensor *x = leaf(g, BN_TYPE_F32, c->K, c->T, c->x, BN_TENSOR_INPUT);
    switch (c->op) {
    case BN_OP_RMS_NORM:
        return bn_rms_norm(g, x, c->f);
    case BN_OP_RELU_SQR:
        return bn_relu_sqr(g, x);
    case BN_OP_SILU:
        return bn_silu(g, x);
    case BN_OP_SCALE:
        return bn_scale(g, x, c->f);
    case BN_OP_MUL:
    case BN_OP_ADD: {
        /* b as a weight leaf for the broadcast forms (norm weights, scales) */
        bn_tensor *b = leaf(g, BN_TYPE_F32, c->bk, c->bt, c->b,
                            c->bt == c->T ? BN_TENSOR_INPUT : BN_TENSOR_WEIGHT);
        return c->op == BN_OP_MUL ? bn_mul(g, x, b) : bn_add(g, x, b);
    }
    default:
        fail_msg("op");
        return NULL;
    }
}

static void unary_case(bn_op op, int64_t K, int64_t T, float f, double tol) {
    bt_rng rng;
    bt_rng_seed(&rng, (uint64_t)op * 77 + (uint64_t)K);
    un_ctx c = {op, K, T, 0, 0, rand_f32(&rng, (size_t)(K * T), 3.0), NULL, f};
    result r;
    run_both(build_un, &c, &r);
    if (tol == 0)
        expect_same_bytes(&r);
    else
        expect_nmse(&r, tol);
    result_free(&r);
}

static void binary_case(bn_op op, int64_t K, int64_t T, int64_t bk, int64_t bt) {
    bt_rng rng;
    bt_rng_seed(&rng, (uint64_t)op * 31 + (uint64_t)(bk + bt));
    un_ctx c = {op,
                K,
                T,
                bk,
                bt,
                rand_f32(&rng, (size_t)(K * T), 2.0),
                rand_f32(&rng, (size_t)(bk * bt), 2.0),
                0};
    result r;
    run_both(build_un, &c, &r);
    expect_same_bytes(&r); /* one correctly rounded f32 operation */
    result_free(&r);
}

static void test_elementwise(void **state) {
    (void)state;
    unary_case(BN_OP_RMS_NORM, 300, 3, 1e-5f, 1e-7);
    unary_case(BN_OP_RMS_NORM, 1, 2, 1e-6f, 1e-7);
    unary_case(BN_OP_RMS_NORM, 6912, 2, 1e-5f, 1e-7);
    unary_case(BN_OP_RELU_SQR, 1000, 3, 0, 0);
    unary_case(BN_OP_SILU, 1001, 1, 0, 1e-7);
    unary_case(BN_OP_SCALE, 257, 5, 0.125f, 0);
    binary_case(BN_OP_ADD, 300, 4, 300, 4);
    binary_case(BN_OP_MUL, 300, 4, 300, 1);
    binary_case(BN_OP_MUL, 77, 3, 1, 1);
    binary_case(BN_OP_ADD, 129, 2, 129, 1);
    no_validation_messages();
}

/* ---- QUANTIZE_ACT ---- */

typedef struct q_ctx {
    int64_t K, T;
    float *x;
} q_ctx;

static bn_tensor *build_q(bn_graph *g, void *p) {
    q_ctx *c = p;
    return bn_quantize_act(g, leaf(g, BN_TYPE_F32, c->K, c->T, c->x, BN_TENSOR_INPUT));
}

static void test_quantize_act(void **state) {
    (void)state;
    bt_rng rng;
    bt_rng_seed(&rng, 5);
    const int64_t Ks[] = {333, 4, 1, 2560};
    for (int k = 0; k < 4; k++) {
        const int64_t K = Ks[k], T = 64;
        q_ctx c = {K, T, kalloc((size_t)(K * T) * sizeof(float))};
        for (int64_t t = 0; t < T; t++) {
            /* rows of every magnitude, so many scales s = 127 / max are exercised */
            double scale = t == 0 ? 1e-7 : pow(10.0, bt_rng_uniform(&rng) * 8 - 4);
            for (int64_t i = 0; i < K; i++) c.x[t * K + i] = (float)(bt_rng_normal(&rng) * scale);
            if (t == 1) c.x[t * K] = 0.5f / 127; /* a tie: x * s rounds half to even */
        }
        result r;
        run_both(build_q, &c, &r);
        expect_same_bytes(&r);
        result_free(&r);
    }
    no_validation_messages();
}

/* ---- MATMUL_TERNARY ---- */

typedef struct mm_ctx {
    uint32_t wtype;
    int64_t K, N, T;
    void *w;
    float *x;
    bool float_mm; /* MATMUL_F instead */
} mm_ctx;

static bn_tensor *build_mm(bn_graph *g, void *p) {
    mm_ctx *c = p;
    bn_tensor *w = leaf(g, c->wtype, c->K, c->N, c->w, BN_TENSOR_WEIGHT);
    bn_tensor *x = leaf(g, BN_TYPE_F32, c->K, c->T, c->x, BN_TENSOR_INPUT);
    if (c->float_mm) return bn_matmul_f(g, w, x);
    return bn_matmul_ternary(g, w, bn_quantize_act(g, x));
}

static void *make_weight(uint32_t type, const float *wf, int64_t K, int64_t N) {
    int64_t ne[4] = {K, N, 1, 1};
    size_t bytes;
    bn_err e = {0};
    check_ok(bn_tensor_bytes(type, ne, &bytes, &e), &e);
    void *w = kalloc(bytes);
    check_ok(bn_quantize(type, wf, K, N, w, &e), &e);
    return w;
}

/* Exact case: weights in {-1, 0, 1} (scales exactly 1), activations integers with a row
 * maximum of 127 (activation scale exactly 1): y must be the integer sum itself. */
static void ternary_exact_code3(uint32_t type, int64_t K, int64_t N, int64_t T, long max_chunk,
                                bool code3);
static void ternary_exact(uint32_t type, int64_t K, int64_t N, int64_t T, long max_chunk) {
    ternary_exact_code3(type, K, N, T, max_chunk, false);
}

/* code3: the first I2_S block of row 0 holds code 3 everywhere (no quantizer writes it;
 * kernels read it as weight 0, FORMATS.md). */
static void ternary_exact_code3(uint32_t type, int64_t K, int64_t N, int64_t T, long max_chunk,
                                bool code3) {
    bt_rng rng;
    bt_rng_seed(&rng, (uint64_t)(type * 7919 + K * 31 + N * 7 + T));
    float *wf = kalloc((size_t)(K * N) * sizeof(float));
    int8_t *wi = kalloc((size_t)(K * N));
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < K; i++) {
            /* every 256-block holds a 1, so its TQ scale max|w| is exactly 1 */
            int v = (i % 256 == 0) ? 1 : bt_rng_int(&rng, -1, 1);
            wi[n * K + i] = (int8_t)v;
            wf[n * K + i] = (float)v;
        }
    mm_ctx c = {type, K, N, T, make_weight(type, wf, K, N), kalloc((size_t)(K * T) * 4), false};
    if (code3) {
        memset(c.w, 0xff, 32);
        memset(wi, 0, 128);
    }
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < K; i++)
            c.x[t * K + i] =
                i == t % K ? (t % 2 ? -127.0f : 127.0f) : (float)bt_rng_int(&rng, -127, 127);
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", max_chunk);
    if (max_chunk) setenv("BITNET_VK_MAX_CHUNK", buf, 1);
    result r;
    run_both(build_mm, &c, &r);
    unsetenv("BITNET_VK_MAX_CHUNK");
    const float *y = r.out[1]->data;
    for (int64_t t = 0; t < T; t++)
        for (int64_t n = 0; n < N; n++) {
            int32_t s = 0;
            for (int64_t i = 0; i < K; i++) s += (int32_t)wi[n * K + i] * (int32_t)c.x[t * K + i];
            if (y[t * N + n] != (float)s)
                fail_msg("%s K=%lld N=%lld T=%lld: y[%lld, %lld] = %.1f, exact sum %d",
                         bn_type_name(type), (long long)K, (long long)N, (long long)T, (long long)t,
                         (long long)n, (double)y[t * N + n], s);
        }
    expect_same_bytes(&r);
    result_free(&r);
}

/* General case: random latent weights (TQ blocks get different scales), random inputs. */
static void matmul_random(uint32_t type, int64_t K, int64_t N, int64_t T, bool float_mm,
                          double tol) {
    bt_rng rng;
    bt_rng_seed(&rng, (uint64_t)(type * 104729 + K * 13 + N * 3 + T));
    float *wf = rand_f32(&rng, (size_t)(K * N), 1.0);
    if (!float_mm && !bn_type_is_ternary(type)) /* float weights holding ternary values */
        for (int64_t i = 0; i < K * N; i++) wf[i] = (float)(bt_rng_int(&rng, -1, 1) * 0.0234375);
    mm_ctx c = {type,    K, N, T, make_weight(type, wf, K, N), rand_f32(&rng, (size_t)(K * T), 1.0),
                float_mm};
    result r;
    run_both(build_mm, &c, &r);
    expect_nmse(&r, tol);
    result_free(&r);
}

static void test_matmul_ternary_exact(void **state) {
    (void)state;
    const uint32_t types[] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    for (int ti = 0; ti < 3; ti++) {
        const uint32_t ty = types[ti];
        const int64_t k1 = ty == BN_TYPE_I2_S ? 384 : 768; /* not a multiple of the work */
        ternary_exact(ty, 256, 1, 1, 0);                   /* N = 1 */
        ternary_exact(ty, k1, 7, 1, 0);                    /* odd N, mat-vec */
        ternary_exact(ty, k1, 67, 3, 0);                   /* mat-vec, 3 tokens */
        ternary_exact(ty, k1, 67, 9, 0);                   /* tiled, partial tiles */
        ternary_exact(ty, 512, 130, 37, 0);                /* tiled, two row tiles */
    }
    /* code 3 reads as weight 0, both paths */
    ternary_exact_code3(BN_TYPE_I2_S, 256, 3, 1, 0, true);
    ternary_exact_code3(BN_TYPE_I2_S, 256, 3, 8, 0, true);
    /* a weight split across bindings: 5 rows per chunk, both paths */
    ternary_exact(BN_TYPE_I2_S, 256, 23, 1, 5 * 64);
    ternary_exact(BN_TYPE_TQ2_0, 256, 23, 12, 5 * 64);
    no_validation_messages();
}

static void test_matmul_ternary_random(void **state) {
    (void)state;
    const uint32_t types[] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0,
                              BN_TYPE_F16,  BN_TYPE_F32,   BN_TYPE_BF16};
    for (int ti = 0; ti < 6; ti++) {
        const uint32_t ty = types[ti];
        matmul_random(ty, 768, 33, 1, false, 1e-10);
        matmul_random(ty, 512, 65, 17, false, 1e-10);
    }
    no_validation_messages();
}

static void test_matmul_f(void **state) {
    (void)state;
    const uint32_t types[] = {BN_TYPE_F32, BN_TYPE_F16, BN_TYPE_BF16};
    for (int ti = 0; ti < 3; ti++) {
        matmul_random(types[ti], 1, 5, 1, true, 1e-7);
        matmul_random(types[ti], 33, 1, 2, true, 1e-7);
        matmul_random(types[ti], 300, 129, 1, true, 1e-7);
        matmul_random(types[ti], 301, 17, 9, true, 1e-7);   /* tiled, odd K */
        matmul_random(types[ti], 2560, 70, 40, true, 1e-7); /* long reductions, tiled */
    }
    no_validation_messages();
}

/* ---- ROPE ---- */

typedef struct rope_ctx {
    int mode, n_rot, hd, nh;
    int64_t T;
    float base;
    float *x;
    int32_t *pos;
} rope_ctx;

static bn_tensor *build_rope(bn_graph *g, void *p) {
    rope_ctx *c = p;
    bn_tensor *x = leaf(g, BN_TYPE_F32, (int64_t)c->nh * c->hd, c->T, c->x, BN_TENSOR_INPUT);
    bn_tensor *pos = leaf(g, BN_TYPE_I32, c->T, 1, c->pos, BN_TENSOR_INPUT);
    return bn_rope(g, x, pos, c->mode, c->n_rot, c->hd, c->base);
}

static void test_rope(void **state) {
    (void)state;
    bt_rng rng;
    bt_rng_seed(&rng, 99);
    const int modes[2] = {BN_ROPE_NEOX, BN_ROPE_NORMAL};
    for (int m = 0; m < 2; m++)
        for (int partial = 0; partial < 2; partial++) {
            rope_ctx c = {
                modes[m], partial ? 32 : 64,          64, 4, 5, partial ? 10000.0f : 500000.0f,
                NULL,     kalloc(5 * sizeof(int32_t))};
            c.x = rand_f32(&rng, (size_t)(c.nh * c.hd * c.T), 1.0);
            const int32_t pos[5] = {0, 1, 17, 1000, 4095};
            memcpy(c.pos, pos, sizeof pos);
            result r;
            run_both(build_rope, &c, &r);
            expect_nmse(&r, 1e-7);
            result_free(&r);
        }
    no_validation_messages();
}

/* ---- CPY ---- */

typedef struct cpy_ctx {
    uint32_t from, to;
    int64_t K, T;
    void *x;
} cpy_ctx;

static bn_tensor *build_cpy(bn_graph *g, void *p) {
    cpy_ctx *c = p;
    return bn_cpy(g, leaf(g, c->from, c->K, c->T, c->x, BN_TENSOR_INPUT), c->to);
}

static void test_cpy(void **state) {
    (void)state;
    bt_rng rng;
    bt_rng_seed(&rng, 3);
    const uint32_t ty[2] = {BN_TYPE_F32, BN_TYPE_F16};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            const int64_t K = 101, T = 3; /* odd element count */
            cpy_ctx c = {ty[a], ty[b], K, T, NULL};
            float *f = rand_f32(&rng, (size_t)(K * T), 1000.0);
            f[0] = 1e-6f;         /* f16 subnormal */
            f[1] = 70000.0f;      /* f16 overflow */
            f[2] = 2.0009765625f; /* a tie in f16 */
            if (ty[a] == BN_TYPE_F16) {
                uint16_t *h = kalloc((size_t)(K * T) * 2);
                for (int64_t i = 0; i < K * T; i++) h[i] = bn_f32_to_f16(f[i]);
                c.x = h;
            } else {
                c.x = f;
            }
            result r;
            run_both(build_cpy, &c, &r);
            expect_same_bytes(&r);
            result_free(&r);
        }
    no_validation_messages();
}

/* ---- KV_STORE and ATTENTION over caches that persist across graphs ---- */

typedef struct attn_ctx {
    uint32_t ktype, vtype;
    int nh, nkv, hd, n_ctx;
    int64_t T;
    int n_past;
    void *kc, *vc; /* cache host pointers: their identity */
    float *q, *k, *v;
    bool readback; /* output the K cache (CPY to f32) instead of the attention */
} attn_ctx;

static bn_tensor *build_attn(bn_graph *g, void *p) {
    attn_ctx *c = p;
    const int64_t qd = (int64_t)c->nh * c->hd, kd = (int64_t)c->nkv * c->hd;
    bn_tensor *kc = leaf(g, c->ktype, kd, c->n_ctx, c->kc, BN_TENSOR_CACHE);
    bn_tensor *vc = leaf(g, c->vtype, kd, c->n_ctx, c->vc, BN_TENSOR_CACHE);
    bn_tensor *q = leaf(g, BN_TYPE_F32, qd, c->T, c->q, BN_TENSOR_INPUT);
    bn_tensor *k = leaf(g, BN_TYPE_F32, kd, c->T, c->k, BN_TENSOR_INPUT);
    bn_tensor *v = leaf(g, BN_TYPE_F32, kd, c->T, c->v, BN_TENSOR_INPUT);
    bn_tensor *ks = bn_kv_store(g, kc, k, c->n_past);
    bn_tensor *vs = bn_kv_store(g, vc, v, c->n_past);
    bn_tensor *a =
        bn_attention(g, q, ks, vs, c->n_past, c->nh, c->nkv, c->hd, 1.0f / sqrtf((float)c->hd));
    if (!c->readback) return a;
    /* the cache as seen after the store, read back through an op (caches stay on the
     * device); the attention output is a second output so both nodes run */
    a->flags |= BN_TENSOR_OUTPUT;
    return bn_cpy(g, ks, BN_TYPE_F32);
}

static void set_n_past(bn_graph *g, int n_past) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == BN_OP_KV_STORE || g->nodes[i]->op == BN_OP_ATTENTION)
            g->nodes[i]->ip[0] = n_past;
}

/* A prefill graph of T0 tokens, then a decode graph of one token run at n_past = T0,
 * T0 + 1, ...; both graphs share the caches (the same host pointers) on each backend. */
static void attention_case(uint32_t kt, uint32_t vt, int nh, int nkv, int hd, int n_ctx, int T0,
                           int steps) {
    bt_rng rng;
    bt_rng_seed(&rng, (uint64_t)(nh * 131 + hd * 7 + T0 + kt));
    const int64_t kd = (int64_t)nkv * hd;
    const size_t kes = kt == BN_TYPE_F16 ? 2 : 4, ves = vt == BN_TYPE_F16 ? 2 : 4;
    attn_ctx pre = {kt,
                    vt,
                    nh,
                    nkv,
                    hd,
                    n_ctx,
                    T0,
                    0,
                    kalloc((size_t)(kd * n_ctx) * kes),
                    kalloc((size_t)(kd * n_ctx) * ves),
                    rand_f32(&rng, (size_t)(nh * hd * T0), 1.0),
                    rand_f32(&rng, (size_t)(kd * T0), 1.0),
                    rand_f32(&rng, (size_t)(kd * T0), 1.0),
                    true};
    /* the CPU reads its caches through the same pointers: give it its own copies */
    attn_ctx pre_cpu = pre;
    pre_cpu.kc = kalloc((size_t)(kd * n_ctx) * kes);
    pre_cpu.vc = kalloc((size_t)(kd * n_ctx) * ves);
    bn_graph *gp[2] = {bn_graph_new(), bn_graph_new()};
    bn_tensor *op[2] = {build_attn(gp[0], &pre_cpu), build_attn(gp[1], &pre)};
    bn_tensor *ap[2];
    for (int i = 0; i < 2; i++) {
        op[i]->flags |= BN_TENSOR_OUTPUT;
        ap[i] = NULL;
        for (int n = 0; n < gp[i]->n_nodes; n++)
            if (gp[i]->nodes[n]->op == BN_OP_ATTENTION) ap[i] = gp[i]->nodes[n];
        run(i ? g_vk : g_cpu, gp[i]);
    }
    result rr = {{gp[0], gp[1]}, {op[0], op[1]}};
    expect_same_bytes(&rr); /* the K cache after the store, bit for bit */
    result ra = {{gp[0], gp[1]}, {ap[0], ap[1]}};
    expect_nmse(&ra, 1e-7);

    attn_ctx dec = pre, dec_cpu = pre_cpu;
    dec.T = dec_cpu.T = 1;
    dec.readback = dec_cpu.readback = false;
    dec.q = dec_cpu.q = rand_f32(&rng, (size_t)(nh * hd), 1.0);
    dec.k = dec_cpu.k = rand_f32(&rng, (size_t)kd, 1.0);
    dec.v = dec_cpu.v = rand_f32(&rng, (size_t)kd, 1.0);
    bn_graph *gd[2] = {bn_graph_new(), bn_graph_new()};
    bn_tensor *od[2] = {build_attn(gd[0], &dec_cpu), build_attn(gd[1], &dec)};
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < 2; i++) {
            od[i]->flags |= BN_TENSOR_OUTPUT;
            set_n_past(gd[i], T0 + s);
            run(i ? g_vk : g_cpu, gd[i]);
        }
        result rd = {{gd[0], gd[1]}, {od[0], od[1]}};
        expect_nmse(&rd, 1e-7);
        /* new inputs for the next step (the same host buffers) */
        for (int64_t i = 0; i < nh * hd; i++) dec.q[i] = (float)bt_rng_normal(&rng);
        for (int64_t i = 0; i < kd; i++) dec.k[i] = (float)bt_rng_normal(&rng);
    }
    for (int i = 0; i < 2; i++) {
        bn_backend *be = i ? g_vk : g_cpu;
        be->ops->graph_release(be, gp[i]);
        be->ops->graph_release(be, gd[i]);
        bn_graph_free(gp[i]);
        bn_graph_free(gd[i]);
    }
}

static void test_attention(void **state) {
    (void)state;
    attention_case(BN_TYPE_F16, BN_TYPE_F16, 4, 2, 64, 16, 6, 3);  /* GQA, f16 cache */
    attention_case(BN_TYPE_F32, BN_TYPE_F32, 2, 2, 80, 12, 5, 2);  /* head_dim > workgroup */
    attention_case(BN_TYPE_F16, BN_TYPE_F32, 4, 1, 32, 80, 70, 2); /* more positions than a tile */
    no_validation_messages();
}

/* ---- interface ---- */

static void test_interface(void **state) {
    (void)state;
    const bn_backend_ops *ops = bn_backend_vulkan();
    bn_device_info info;
    bn_err e = {0};
    check_ok(ops->device_info(vk_device(), &info, &e), &e);
    printf("vulkan:%d: %s (%s)\n", vk_device(), info.name, info.details);
    assert_true(info.name[0] != 0);
    assert_non_null(strstr(info.details, "subgroup"));
    assert_non_null(strstr(info.details, "int dot"));
    assert_true(info.mem_total > 0);
    assert_int_not_equal(ops->device_info(99, &info, &e), BN_OK);
    assert_non_null(strstr(e.msg, "vulkan:99"));

    /* supports: quantized float tables go to the CPU, everything else runs here */
    bn_graph *g = bn_graph_new();
    bn_tensor *q8 = leaf(g, BN_TYPE_Q8_0, 64, 4, kalloc(4 * 68), BN_TENSOR_WEIGHT);
    bn_tensor *ids = leaf(g, BN_TYPE_I32, 2, 1, kalloc(8), BN_TENSOR_INPUT);
    bn_tensor *x = leaf(g, BN_TYPE_F32, 64, 2, kalloc(64 * 2 * 4), BN_TENSOR_INPUT);
    bn_tensor *f16 = leaf(g, BN_TYPE_F16, 64, 4, kalloc(64 * 4 * 2), BN_TENSOR_WEIGHT);
    assert_false(ops->supports(g_vk, bn_get_rows(g, q8, ids)));
    assert_false(ops->supports(g_vk, bn_matmul_f(g, q8, x)));
    assert_true(ops->supports(g_vk, bn_get_rows(g, f16, ids)));
    assert_true(ops->supports(g_vk, bn_matmul_f(g, f16, x)));
    assert_true(ops->supports(g_vk, bn_rms_norm(g, x, 1e-5f)));
    /* and graph_prepare refuses an unsupported node with a message */
    bn_graph *g2 = bn_graph_new();
    bn_tensor *t2 = leaf(g2, BN_TYPE_Q8_0, 64, 4, q8->data, BN_TENSOR_WEIGHT);
    bn_tensor *o2 = bn_get_rows(g2, t2, leaf(g2, BN_TYPE_I32, 2, 1, ids->data, BN_TENSOR_INPUT));
    o2->flags |= BN_TENSOR_OUTPUT;
    assert_int_equal(g_vk->ops->graph_prepare(g_vk, g2, &e), BN_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "Q8_0"));
    bn_graph_free(g);
    bn_graph_free(g2);

    bn_device_profile prof;
    check_ok(ops->calibrate(g_vk, &prof, &e), &e);
    assert_true(prof.ternary_gbps > 0 && prof.float_gflops > 0);
    assert_true(prof.h2d_gbps > 0 && prof.d2h_gbps > 0);
    assert_true(prof.latency_us > 0 && prof.dispatch_us > 0);
    /* the calibration's weights (freed host memory) must not be found again */
    ternary_exact(BN_TYPE_I2_S, 4096, 4096, 1, 0); /* the size the calibration used */
    no_validation_messages();
}

/* ---- setup ---- */

/* mode 0: the device as it is; 1: the discrete-GPU memory path; 2: the f32 shaders with
 * shared-memory reductions (no fp64, no subgroups); 3: the integer-dot shaders with the
 * built-in written out (their code path, where glslc or the device lacks the extension). */
static int open_backends(int mode) {
    bn_err e = {0};
    if (mode == 1) setenv("BITNET_VK_FORCE_DISCRETE", "1", 1);
    if (mode == 2) {
        setenv("BITNET_VK_FP64", "0", 1);
        setenv("BITNET_VK_SUBGROUP", "0", 1);
    }
    if (mode == 3) setenv("BITNET_VK_INT_DOT_EMULATE", "1", 1);
    bn_status st = bn_backend_vulkan()->open(vk_device(), NULL, &g_vk, &e);
    unsetenv("BITNET_VK_FORCE_DISCRETE");
    unsetenv("BITNET_VK_FP64");
    unsetenv("BITNET_VK_SUBGROUP");
    unsetenv("BITNET_VK_INT_DOT_EMULATE");
    if (st != BN_OK) {
        fprintf(stderr, "cannot open vulkan:%d: %s\n", vk_device(), e.msg);
        return -1;
    }
    bn_backend_config cfg = {.n_threads = 2};
    return bn_backend_cpu()->open(0, &cfg, &g_cpu, &e) == BN_OK ? 0 : -1;
}

static int setup_unified(void **state) {
    (void)state;
    return open_backends(0);
}
static int setup_discrete(void **state) {
    (void)state;
    return open_backends(1);
}
static int setup_f32(void **state) {
    (void)state;
    return open_backends(2);
}
static int setup_int_dot(void **state) {
    (void)state;
    return open_backends(3);
}
static int teardown(void **state) {
    (void)state;
    if (g_vk) g_vk->ops->close(g_vk);
    if (g_cpu) g_cpu->ops->close(g_cpu);
    g_vk = g_cpu = NULL;
    for (int i = 0; i < n_keep; i++) free(keep[i]);
    n_keep = 0;
    return bn_vk_validation_messages() == 0 ? 0 : -1;
}

int main(void) {
    setenv("BITNET_VK_VALIDATE", "1", 0);
    char why[256] = "";
    if (bn_backend_vulkan()->device_count(why, sizeof why) == 0) bt_skip("%s", why);
    if (!bn_vk_validation_active())
        fprintf(stderr, "note: the Vulkan validation layer is not available; running without\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_rows),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_quantize_act),
        cmocka_unit_test(test_matmul_ternary_exact),
        cmocka_unit_test(test_matmul_ternary_random),
        cmocka_unit_test(test_matmul_f),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_cpy),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_interface),
    };
    const struct CMUnitTest discrete[] = {
        cmocka_unit_test(test_get_rows),
        cmocka_unit_test(test_matmul_ternary_exact),
        cmocka_unit_test(test_matmul_f),
        cmocka_unit_test(test_attention),
    };
    const struct CMUnitTest f32[] = {
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_quantize_act),
        cmocka_unit_test(test_matmul_ternary_exact),
        cmocka_unit_test(test_matmul_ternary_random),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention),
    };
    int fails = cmocka_run_group_tests_name("vulkan ops", tests, setup_unified, teardown);
    fails += cmocka_run_group_tests_name("vulkan ops, discrete-GPU memory path", discrete,
                                         setup_discrete, teardown);
    fails += cmocka_run_group_tests_name("vulkan ops, f32 shaders, shared-memory reductions", f32,
                                         setup_f32, teardown);
    const struct CMUnitTest dot[] = {
        cmocka_unit_test(test_matmul_ternary_exact),
        cmocka_unit_test(test_matmul_ternary_random),
    };
    fails += cmocka_run_group_tests_name("vulkan ops, integer-dot code path (emulated)", dot,
                                         setup_int_dot, teardown);
    return fails ? 1 : 0;
}
#endif
