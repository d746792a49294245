/* test_forward.c - the whole forward pass of a 1-layer BitNet model against a
 * step-by-step computation written here in double precision, straight from
 * FORMATS.md "One layer" and "Activations". The model is written with the GGUF
 * writer (I2_S and TQ2_0 projections), loaded with bn_model_load and run
 * through bn_context_eval with an f32 KV cache. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/gguf.h"
#include "../core/model.h"
#include "../core/types.h"
#include "../graph/context.h"

enum { E = 256, F = 512, NH = 4, NKV = 2, HD = E / NH, KVD = HD * NKV, V = 48, T = 5 };
static const double EPS = 1e-5, THETA = 10000.0;

/* The model's weights as plain doubles (what the reference uses). */
typedef struct ref_model {
    double embd[V][E];
    double attn_norm[E], attn_sub_norm[E], ffn_norm[E], ffn_sub_norm[F], out_norm[E];
    double wq[E][E], wk[KVD][E], wv[KVD][E], wo[E][E], wg[F][E], wu[F][E], wd[E][F];
} ref_model;

static const char *proj_names[7] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                    "ffn_gate", "ffn_up", "ffn_down"};

static double *proj(ref_model *r, int i, int *rows, int *cols) {
    double *p[7] = {&r->wq[0][0], &r->wk[0][0], &r->wv[0][0], &r->wo[0][0],
                    &r->wg[0][0], &r->wu[0][0], &r->wd[0][0]};
    int nr[7] = {E, KVD, KVD, E, F, F, E}, nc[7] = {E, E, E, E, E, E, F};
    *rows = nr[i];
    *cols = nc[i];
    return p[i];
}

static void make_ref(ref_model *r, bt_rng *g) {
    /* f16-exact values so the f16 embedding equals the reference */
    for (int v = 0; v < V; v++)
        for (int i = 0; i < E; i++)
            r->embd[v][i] = bn_f16_to_f32(bn_f32_to_f16((float)bt_rng_normal(g)));
    for (int i = 0; i < E; i++) {
        r->attn_norm[i] = (float)(1 + 0.2 * bt_rng_normal(g));
        r->attn_sub_norm[i] = (float)(1 + 0.2 * bt_rng_normal(g));
        r->ffn_norm[i] = (float)(1 + 0.2 * bt_rng_normal(g));
        r->out_norm[i] = (float)(1 + 0.2 * bt_rng_normal(g));
    }
    for (int i = 0; i < F; i++) r->ffn_sub_norm[i] = (float)(1 + 0.2 * bt_rng_normal(g));
    for (int p = 0; p < 7; p++) {
        int rows, cols;
        double *w = proj(r, p, &rows, &cols);
        double scale = 0.0234375 * (p + 1); /* exact in f16 and f32 */
        for (int i = 0; i < rows * cols; i++) w[i] = (bt_rng_int(g, 0, 2) - 1) * scale;
    }
}

static void write_model(const ref_model *r, uint32_t type, const char *path) {
    gguf_writer *w = gguf_writer_new();
    const bt_bitnet_shape shape = {1, 64, E, F, NH, NKV, V, (float)EPS, (float)THETA};
    bt_gguf_bitnet_meta(w, &shape);

    bn_err err = {0};
    float *buf = malloc(sizeof(float) * F * E);
    uint8_t *q = malloc(sizeof(float) * F * E + 64);
    int64_t ne[4];
#define ADD(name, t, a, b)                                                                         \
    do {                                                                                           \
        ne[0] = a;                                                                                 \
        ne[1] = b;                                                                                 \
        ne[2] = ne[3] = 1;                                                                         \
        assert_int_equal(gguf_writer_add_tensor(w, name, t, (b) > 1 ? 2 : 1, ne, &err), BN_OK);    \
    } while (0)
    ADD("token_embd.weight", BN_TYPE_F16, E, V);
    ADD("output_norm.weight", BN_TYPE_F32, E, 1);
    ADD("blk.0.attn_norm.weight", BN_TYPE_F32, E, 1);
    ADD("blk.0.attn_sub_norm.weight", BN_TYPE_F32, E, 1);
    ADD("blk.0.ffn_norm.weight", BN_TYPE_F32, E, 1);
    ADD("blk.0.ffn_sub_norm.weight", BN_TYPE_F32, F, 1);
    for (int p = 0; p < 7; p++) {
        char n[64];
        int rows, cols;
        proj((ref_model *)r, p, &rows, &cols);
        snprintf(n, sizeof n, "blk.0.%s.weight", proj_names[p]);
        ADD(n, type, cols, rows);
    }
    assert_int_equal(gguf_writer_begin(w, path, &err), BN_OK);
    /* write in declaration order */
    for (int i = 0; i < V * E; i++) buf[i] = (float)r->embd[i / E][i % E];
    ne[0] = E, ne[1] = V;
    size_t bytes;
    assert_int_equal(bn_quantize(BN_TYPE_F16, buf, E, V, q, &err), BN_OK);
    bn_tensor_bytes(BN_TYPE_F16, ne, &bytes, NULL);
    assert_int_equal(gguf_writer_write_tensor(w, q, bytes, &err), BN_OK);
    const double *norms[5] = {r->out_norm, r->attn_norm, r->attn_sub_norm, r->ffn_norm,
                              r->ffn_sub_norm};
    for (int k = 0; k < 5; k++) {
        int n = k == 4 ? F : E;
        for (int i = 0; i < n; i++) buf[i] = (float)norms[k][i];
        assert_int_equal(gguf_writer_write_tensor(w, buf, sizeof(float) * (size_t)n, &err), BN_OK);
    }
    for (int p = 0; p < 7; p++) {
        int rows, cols;
        double *m = proj((ref_model *)r, p, &rows, &cols);
        for (int i = 0; i < rows * cols; i++) buf[i] = (float)m[i];
        assert_int_equal(bn_quantize(type, buf, cols, rows, q, &err), BN_OK);
        int64_t pne[4] = {cols, rows, 1, 1};
        bn_tensor_bytes(type, pne, &bytes, NULL);
        assert_int_equal(gguf_writer_write_tensor(w, q, bytes, &err), BN_OK);
    }
    assert_int_equal(gguf_writer_finish(w, &err), BN_OK);
    gguf_writer_free(w);
    free(buf);
    free(q);
}

/* ---- the reference forward pass ---- */

static void rms_norm(const double *x, const double *w, int n, double *out) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / n + EPS);
    for (int i = 0; i < n; i++) out[i] = x[i] * r * w[i];
}

/* BitLinear: y = W (q / s) with q = round_half_even(x * s), s = 127 / max|x|. */
static void bitlinear(const double *w, int rows, int cols, const double *x, double *y) {
    double m = 1e-5;
    for (int i = 0; i < cols; i++) m = fmax(m, fabs(x[i]));
    double s = 127.0 / (double)(float)m;
    s = (float)(127.0f / (float)m);
    double q[F];
    for (int i = 0; i < cols; i++) {
        double v = nearbyint((double)(float)((float)x[i] * (float)s));
        q[i] = fmin(127, fmax(-128, v));
    }
    for (int r = 0; r < rows; r++) {
        double acc = 0;
        for (int i = 0; i < cols; i++) acc += w[(size_t)r * cols + i] * q[i];
        y[r] = acc / s;
    }
}

/* NEOX RoPE: dimension j pairs with j + HD/2, theta = pos * THETA^(-2j/HD). */
static void rope(double *v, int n_heads, int pos) {
    for (int h = 0; h < n_heads; h++)
        for (int j = 0; j < HD / 2; j++) {
            double th = pos * pow(THETA, -2.0 * j / HD);
            double a = v[h * HD + j], b = v[h * HD + j + HD / 2];
            v[h * HD + j] = a * cos(th) - b * sin(th);
            v[h * HD + j + HD / 2] = a * sin(th) + b * cos(th);
        }
}

static void reference(const ref_model *r, const int *toks, double logits[T][V]) {
    static double x[T][E], kc[T][KVD], vc[T][KVD];
    for (int t = 0; t < T; t++) memcpy(x[t], r->embd[toks[t]], sizeof x[t]);
    double h[F], q[E], a[E], o[E], g[F], u[F];
    for (int t = 0; t < T; t++) {
        rms_norm(x[t], r->attn_norm, E, h);
        bitlinear(&r->wq[0][0], E, E, h, q);
        bitlinear(&r->wk[0][0], KVD, E, h, kc[t]);
        bitlinear(&r->wv[0][0], KVD, E, h, vc[t]);
        rope(q, NH, t);
        rope(kc[t], NKV, t);
        for (int hh = 0; hh < NH; hh++) {
            int kvh = hh / (NH / NKV);
            double sc[T], mx = -INFINITY, sum = 0;
            for (int j = 0; j <= t; j++) {
                double d = 0;
                for (int i = 0; i < HD; i++) d += q[hh * HD + i] * kc[j][kvh * HD + i];
                sc[j] = d / sqrt((double)HD);
                mx = fmax(mx, sc[j]);
            }
            for (int j = 0; j <= t; j++) sum += sc[j] = exp(sc[j] - mx);
            for (int i = 0; i < HD; i++) {
                double acc = 0;
                for (int j = 0; j <= t; j++) acc += sc[j] / sum * vc[j][kvh * HD + i];
                a[hh * HD + i] = acc;
            }
        }
        rms_norm(a, r->attn_sub_norm, E, h);
        bitlinear(&r->wo[0][0], E, E, h, o);
        for (int i = 0; i < E; i++) x[t][i] += o[i];
        rms_norm(x[t], r->ffn_norm, E, h);
        bitlinear(&r->wg[0][0], F, E, h, g);
        bitlinear(&r->wu[0][0], F, E, h, u);
        for (int i = 0; i < F; i++) {
            double relu = g[i] > 0 ? g[i] : 0;
            g[i] = relu * relu * u[i];
        }
        rms_norm(g, r->ffn_sub_norm, F, h);
        bitlinear(&r->wd[0][0], E, F, h, o);
        for (int i = 0; i < E; i++) x[t][i] += o[i];
        rms_norm(x[t], r->out_norm, E, h);
        for (int v = 0; v < V; v++) {
            double acc = 0;
            for (int i = 0; i < E; i++) acc += r->embd[v][i] * h[i];
            logits[t][v] = acc;
        }
    }
}

static void check_type(uint32_t type, const char *file) {
    static ref_model r;
    bt_rng g;
    bt_rng_seed(&g, 42);
    make_ref(&r, &g);
    const char *path = bt_tmp_path(file);
    write_model(&r, type, path);

    int toks[T] = {3, 17, 5, 40, 17};
    static double want[T][V];
    reference(&r, toks, want);

    bn_model *m;
    bn_err err = {0};
    assert_int_equal(bn_model_load(path, &m, &err), BN_OK);
    assert_int_equal(m->hp.n_layer, 1);
    assert_true(m->hp.bitlinear);
    bn_context_params p;
    bn_context_params_default(&p);
    p.kv_type = BN_TYPE_F32;
    p.n_threads = 2;
    p.n_batch = 2; /* prompt in batches of 2, 2, 1: exercises n_past > 0 */
    bn_context *c;
    assert_int_equal(bn_context_new(m, &p, &c, &err), BN_OK);
    int32_t ids[T];
    for (int t = 0; t < T; t++) ids[t] = toks[t];
    float got[T * V];
    assert_int_equal(bn_context_eval(c, ids, T, true, got, &err), BN_OK);
    for (int t = 0; t < T; t++) {
        double nmse = bt_nmse_f32_f64(got + t * V, want[t], V);
        printf("%s token %d: NMSE %.3g\n", bn_type_name(type), t, nmse);
        assert_true(nmse < 1e-6);
    }
    /* a context evaluated token by token gives the same last logits */
    bn_context_reset(c);
    float last[V];
    for (int t = 0; t < T; t++)
        assert_int_equal(bn_context_eval(c, &ids[t], 1, false, last, &err), BN_OK);
    assert_true(bt_nmse_f32_f64(last, want[T - 1], V) < 1e-6);
    /* the context refuses tokens past its end */
    bn_context_free(c);
    p.n_ctx = 4;
    assert_int_equal(bn_context_new(m, &p, &c, &err), BN_OK);
    assert_int_equal(bn_context_eval(c, ids, T, true, got, &err), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "context"));
    bn_context_free(c);
    bn_model_free(m);
}

static void test_forward_i2s(void **state) {
    (void)state;
    check_type(BN_TYPE_I2_S, "fwd_i2s.gguf");
}

static void test_forward_tq2(void **state) {
    (void)state;
    check_type(BN_TYPE_TQ2_0, "fwd_tq2.gguf");
}

static void test_forward_tq1(void **state) {
    (void)state;
    check_type(BN_TYPE_TQ1_0, "fwd_tq1.gguf");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_i2s),
        cmocka_unit_test(test_forward_tq2),
        cmocka_unit_test(test_forward_tq1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
