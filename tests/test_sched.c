/* test_sched.c - one generated model split across CPU devices gives
 * bit-identical logits and the same greedy ids for every plan: everything on
 * cpu:0, a cpu:0/cpu:1 split at every layer boundary (through the context,
 * as `--devices cpu:0,cpu:1 --tensor-split a,b` does), three-way splits over
 * three CPU backend instances with cuts at the embedding and the head, and a
 * device that cannot run some ops (its nodes, and the KV group with them, go
 * to the fallback). The reference is the same model run as one graph on one
 * CPU backend, without the scheduler. The CPU kernels give each output
 * element to one thread, so the numbers cannot depend on which backend
 * instance computes them: any difference is a scheduler bug (a missed copy,
 * a stale parameter, a cache written on one device and read on another). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/backend.h"
#include "../core/gguf.h"
#include "../core/model.h"
#include "../core/types.h"
#include "../graph/build.h"
#include "../graph/context.h"
#include "../graph/scheduler.h"

enum { E = 128, F = 256, NH = 4, NKV = 2, V = 96, L = 5, CTX = 64, T = 7, GEN = 6 };
static const int32_t prompt[T] = {1, 17, 42, 5, 88, 60, 3};
static char model_path[1024];

/* ---- the model: random ternary I2_S projections, f16 embedding ---- */

static void put(gguf_writer *w, uint32_t type, const float *x, int64_t k, int64_t rows) {
    bn_err err = {0};
    int64_t ne[4] = {k, rows, 1, 1};
    size_t bytes;
    assert_int_equal(bn_tensor_bytes(type, ne, &bytes, &err), BN_OK);
    uint8_t *q = malloc(bytes + 64);
    assert_non_null(q);
    if (type == BN_TYPE_F32)
        memcpy(q, x, bytes);
    else
        assert_int_equal(bn_quantize(type, x, k, rows, q, &err), BN_OK);
    assert_int_equal(gguf_writer_write_tensor(w, q, bytes, &err), BN_OK);
    free(q);
}

static void write_model(const char *path) {
    static const char *proj[7] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                  "ffn_gate", "ffn_up", "ffn_down"};
    const int64_t rows[7] = {E, E / NH * NKV, E / NH * NKV, E, F, F, E},
                  cols[7] = {E, E, E, E, E, E, F};
    gguf_writer *w = gguf_writer_new();
    const bt_bitnet_shape shape = {L, CTX, E, F, NH, NKV, V, 1e-5f, 10000.0f};
    bt_gguf_bitnet_meta(w, &shape);
    bn_err err = {0};
    int64_t ne[4] = {E, V, 1, 1};
#define ADD(type, a, b, ...)                                                                       \
    do {                                                                                           \
        char n_[96];                                                                               \
        snprintf(n_, sizeof n_, __VA_ARGS__);                                                      \
        ne[0] = a;                                                                                 \
        ne[1] = b;                                                                                 \
        assert_int_equal(gguf_writer_add_tensor(w, n_, type, (b) > 1 ? 2 : 1, ne, &err), BN_OK);   \
    } while (0)
    ADD(BN_TYPE_F16, E, V, "token_embd.weight");
    ADD(BN_TYPE_F32, E, 1, "output_norm.weight");
    for (int l = 0; l < L; l++) {
        ADD(BN_TYPE_F32, E, 1, "blk.%d.attn_norm.weight", l);
        ADD(BN_TYPE_F32, E, 1, "blk.%d.attn_sub_norm.weight", l);
        ADD(BN_TYPE_F32, E, 1, "blk.%d.ffn_norm.weight", l);
        ADD(BN_TYPE_F32, F, 1, "blk.%d.ffn_sub_norm.weight", l);
        for (int p = 0; p < 7; p++)
            ADD(BN_TYPE_I2_S, cols[p], rows[p], "blk.%d.%s.weight", l, proj[p]);
    }
#undef ADD
    assert_int_equal(gguf_writer_begin(w, path, &err), BN_OK);
    bt_rng g;
    bt_rng_seed(&g, 7);
    float *x = malloc(sizeof(float) * F * E);
    assert_non_null(x);
    for (int i = 0; i < E * V; i++) x[i] = (float)(0.5 * bt_rng_normal(&g));
    put(w, BN_TYPE_F16, x, E, V);
    for (int i = 0; i < E; i++) x[i] = (float)(1 + 0.1 * bt_rng_normal(&g));
    put(w, BN_TYPE_F32, x, E, 1);
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < 4; k++) {
            int n = k == 3 ? F : E;
            for (int i = 0; i < n; i++) x[i] = (float)(1 + 0.1 * bt_rng_normal(&g));
            put(w, BN_TYPE_F32, x, n, 1);
        }
        for (int p = 0; p < 7; p++) {
            float s = 0.03125f * (float)(p + 1) / (float)sqrt((double)cols[p] / 128);
            for (int i = 0; i < rows[p] * cols[p]; i++)
                x[i] = (float)(bt_rng_int(&g, 0, 2) - 1) * s;
            put(w, BN_TYPE_I2_S, x, cols[p], rows[p]);
        }
    }
    assert_int_equal(gguf_writer_finish(w, &err), BN_OK);
    gguf_writer_free(w);
    free(x);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* ---- the reference: one graph per step on one CPU backend ---- */

typedef struct result {
    float logits[T * V]; /* every prompt position */
    float steps[GEN][V]; /* each generated step */
    int ids[GEN];
} result;

static bn_backend *open_cpu(int device) {
    bn_backend *be = NULL;
    bn_err err = {0};
    bn_backend_config cfg = {.n_threads = 2};
    assert_int_equal(bn_backend_cpu()->open(device, &cfg, &be, &err), BN_OK);
    return be;
}

static void reference(const bn_model *m, result *r) {
    bn_err err = {0};
    bn_kv_cache kv;
    assert_int_equal(bn_kv_cache_init(&kv, &m->hp, CTX, BN_TYPE_F16, &err), BN_OK);
    bn_backend *be = open_cpu(0);
    bn_forward f;
    assert_int_equal(bn_build_forward(m, &kv, T, true, &f, &err), BN_OK);
    assert_int_equal(be->ops->graph_prepare(be, f.g, &err), BN_OK);
    memcpy(f.tokens->data, prompt, sizeof prompt);
    for (int i = 0; i < T; i++) ((int32_t *)f.positions->data)[i] = i;
    bn_forward_set_n_past(&f, 0);
    assert_int_equal(be->ops->graph_compute(be, f.g, &err), BN_OK);
    memcpy(r->logits, f.logits->data, sizeof r->logits);
    be->ops->graph_release(be, f.g);
    bn_forward_free(&f);
    assert_int_equal(bn_build_forward(m, &kv, 1, false, &f, &err), BN_OK);
    assert_int_equal(be->ops->graph_prepare(be, f.g, &err), BN_OK);
    int tok = argmax(r->logits + (T - 1) * V, V);
    for (int s = 0; s < GEN; s++) {
        r->ids[s] = tok;
        *(int32_t *)f.tokens->data = tok;
        *(int32_t *)f.positions->data = T + s;
        *(int32_t *)f.out_ids->data = 0;
        bn_forward_set_n_past(&f, T + s);
        assert_int_equal(be->ops->graph_compute(be, f.g, &err), BN_OK);
        memcpy(r->steps[s], f.logits->data, sizeof r->steps[s]);
        tok = argmax(r->steps[s], V);
    }
    be->ops->graph_release(be, f.g);
    bn_forward_free(&f);
    be->ops->close(be);
    bn_kv_cache_free(&kv);
}

static void compare(const result *a, const result *b, const char *what) {
    bool same = !memcmp(a->logits, b->logits, sizeof a->logits) &&
                !memcmp(a->steps, b->steps, sizeof a->steps) &&
                !memcmp(a->ids, b->ids, sizeof a->ids);
    if (!same) fprintf(stderr, "%s: differs from the single-device run\n", what);
    assert_true(same);
}

static bn_model *load(void) {
    bn_model *m = NULL;
    bn_err err = {0};
    if (bn_model_load(model_path, &m, &err) != BN_OK) fprintf(stderr, "%s\n", err.msg);
    assert_non_null(m);
    return m;
}

/* ---- through the context: --devices cpu:0,cpu:1 --tensor-split k,L-k ---- */

static void run_context(const bn_model *m, const bn_context_params *cp, result *r) {
    bn_err err = {0};
    bn_context *c = NULL;
    if (bn_context_new(m, cp, &c, &err) != BN_OK) fprintf(stderr, "%s\n", err.msg);
    assert_non_null(c);
    assert_int_equal(bn_context_eval(c, prompt, T, true, r->logits, &err), BN_OK);
    int tok = argmax(r->logits + (T - 1) * V, V);
    for (int s = 0; s < GEN; s++) {
        r->ids[s] = tok;
        assert_int_equal(bn_context_eval(c, &tok, 1, false, r->steps[s], &err), BN_OK);
        tok = argmax(r->steps[s], V);
    }
    bn_context_free(c);
}

static void test_every_layer_boundary(void **state) {
    (void)state;
    bn_model *m = load();
    result *ref = malloc(sizeof *ref), *got = malloc(sizeof *got);
    reference(m, ref);
    bn_context_params cp;
    bn_context_params_default(&cp);
    cp.n_ctx = CTX;
    cp.n_threads = 2;
    cp.n_batch = 4; /* the prompt in two batches: graphs of 4 and 3 tokens */
    cp.backend = "cpu";
    run_context(m, &cp, got);
    compare(ref, got, "--backend cpu");
    char split[32];
    for (int k = 0; k <= L; k++) {
        snprintf(split, sizeof split, "%d,%d", k, L - k);
        cp.backend = NULL;
        cp.devices = "cpu:0,cpu:1";
        cp.tensor_split = split;
        run_context(m, &cp, got);
        printf("cpu:0,cpu:1 --tensor-split %s: identical\n", split);
        compare(ref, got, split);
    }
    free(ref);
    free(got);
    bn_model_free(m);
}

/* ---- the scheduler directly: any unit assignment, three devices ---- */

static void run_sched(const bn_model *m, bn_backend **be, int n_be, int fallback, const int *units,
                      result *r, int *n_segments, int *n_segments1) {
    bn_err err = {0};
    bn_kv_cache kv;
    assert_int_equal(bn_kv_cache_init(&kv, &m->hp, CTX, BN_TYPE_F16, &err), BN_OK);
    bn_forward f, f1;
    bn_sched *s = NULL, *s1 = NULL;
    int kv_home[L];
    for (int l = 0; l < L; l++) kv_home[l] = -1;
    assert_int_equal(bn_build_forward(m, &kv, T, true, &f, &err), BN_OK);
    assert_int_equal(bn_build_forward(m, &kv, 1, false, &f1, &err), BN_OK);
    if (bn_sched_new(f.g, units, L + 2, be, n_be, fallback, kv_home, &s, NULL, &err) != BN_OK)
        fprintf(stderr, "%s\n", err.msg);
    assert_non_null(s);
    assert_int_equal(bn_sched_new(f1.g, units, L + 2, be, n_be, fallback, kv_home, &s1, NULL, &err),
                     BN_OK);
    *n_segments = bn_sched_n_segments(s);
    if (n_segments1) *n_segments1 = bn_sched_n_segments(s1);
    memcpy(f.tokens->data, prompt, sizeof prompt);
    for (int i = 0; i < T; i++) ((int32_t *)f.positions->data)[i] = i;
    bn_forward_set_n_past(&f, 0);
    assert_int_equal(bn_sched_compute(s, &err), BN_OK);
    memcpy(r->logits, f.logits->data, sizeof r->logits);
    int tok = argmax(r->logits + (T - 1) * V, V);
    for (int st = 0; st < GEN; st++) {
        r->ids[st] = tok;
        *(int32_t *)f1.tokens->data = tok;
        *(int32_t *)f1.positions->data = T + st;
        *(int32_t *)f1.out_ids->data = 0;
        bn_forward_set_n_past(&f1, T + st);
        assert_int_equal(bn_sched_compute(s1, &err), BN_OK);
        memcpy(r->steps[st], f1.logits->data, sizeof r->steps[st]);
        tok = argmax(r->steps[st], V);
    }
    bn_sched_free(s);
    bn_sched_free(s1);
    bn_forward_free(&f);
    bn_forward_free(&f1);
    bn_kv_cache_free(&kv);
}

static void test_three_way(void **state) {
    (void)state;
    bn_model *m = load();
    result *ref = malloc(sizeof *ref), *got = malloc(sizeof *got);
    reference(m, ref);
    /* cpu:0, cpu:1 and a second instance of cpu:0: three backends, three buffers */
    bn_backend *be[3] = {open_cpu(0), open_cpu(1), open_cpu(0)};
    static const int plans[][L + 2] = {
        {0, 0, 0, 1, 1, 2, 2}, /* embd+L0-1 | L2-3 | L4+head */
        {1, 0, 0, 0, 0, 0, 2}, /* embedding alone | layers | head alone */
        {2, 1, 0, 2, 1, 0, 2}, /* a segment per unit, devices revisited */
        {0, 0, 0, 0, 0, 0, 0}, /* one segment */
    };
    static const int want_segments[] = {3, 3, 7, 1};
    for (size_t p = 0; p < sizeof plans / sizeof plans[0]; p++) {
        int n_seg;
        run_sched(m, be, 3, 0, plans[p], got, &n_seg, NULL);
        char what[64];
        snprintf(what, sizeof what, "plan %zu", p);
        printf("%s: %d segments\n", what, n_seg);
        assert_int_equal(n_seg, want_segments[p]);
        compare(ref, got, what);
    }
    for (int i = 0; i < 3; i++) be[i]->ops->close(be[i]);
    free(ref);
    free(got);
    bn_model_free(m);
}

/* ---- a device that cannot run attention or the output matmul ---- */

typedef struct limited {
    bn_backend base;
    bn_backend *inner;
} limited;
static bn_backend_ops limited_ops;

static bool attention_1 = false; /* the limited device runs 1-token attention */

static bool limited_supports(bn_backend *b, const bn_tensor *n) {
    (void)b;
    if (n->op == BN_OP_ATTENTION) return attention_1 && n->ne[1] == 1;
    return n->op != BN_OP_MATMUL_F;
}
static bn_status limited_prepare(bn_backend *b, bn_graph *g, bn_err *err) {
    for (int i = 0; i < g->n_nodes; i++)
        if (!limited_supports(b, g->nodes[i]))
            return bn_fail(err, BN_ERR_UNSUPPORTED, "given an unsupported node");
    bn_backend *in = ((limited *)b)->inner;
    return in->ops->graph_prepare(in, g, err);
}
static bn_status limited_compute(bn_backend *b, bn_graph *g, bn_err *err) {
    bn_backend *in = ((limited *)b)->inner;
    return in->ops->graph_compute(in, g, err);
}
static void limited_release(bn_backend *b, bn_graph *g) {
    bn_backend *in = ((limited *)b)->inner;
    in->ops->graph_release(in, g);
}

static void test_fallback(void **state) {
    (void)state;
    bn_model *m = load();
    result *ref = malloc(sizeof *ref), *got = malloc(sizeof *got);
    reference(m, ref);
    limited_ops.name = "limited";
    limited_ops.supports = limited_supports;
    limited_ops.graph_prepare = limited_prepare;
    limited_ops.graph_compute = limited_compute;
    limited_ops.graph_release = limited_release;
    limited lim = {.base = {.ops = &limited_ops, .device = 0}, .inner = open_cpu(1)};
    bn_backend *be[2] = {open_cpu(0), &lim.base};
    const int all_on_limited[L + 2] = {1, 1, 1, 1, 1, 1, 1};
    int n_seg, n_seg1;
    run_sched(m, be, 2, 0, all_on_limited, got, &n_seg, &n_seg1);
    /* per layer: [..q k v rope | kv stores + attention on the fallback | rest], then the head */
    printf("limited device: %d and %d segments\n", n_seg, n_seg1);
    assert_int_equal(n_seg, 2 * L + 2);
    assert_int_equal(n_seg1, 2 * L + 2);
    compare(ref, got, "limited device");
    /* it runs attention of one token, but the caches went to the fallback with the
     * prompt's graph: the one-token graph must keep them there */
    attention_1 = true;
    run_sched(m, be, 2, 0, all_on_limited, got, &n_seg, &n_seg1);
    printf("limited device, 1-token attention: %d and %d segments\n", n_seg, n_seg1);
    assert_int_equal(n_seg, 2 * L + 2);
    assert_int_equal(n_seg1, 2 * L + 2);
    compare(ref, got, "limited device, 1-token attention");
    be[0]->ops->close(be[0]);
    lim.inner->ops->close(lim.inner);
    free(ref);
    free(got);
    bn_model_free(m);
}

static int setup(void **state) {
    (void)state;
    snprintf(model_path, sizeof model_path, "%s", bt_tmp_path("sched_model.gguf"));
    write_model(model_path);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_layer_boundary),
        cmocka_unit_test(test_three_way),
        cmocka_unit_test(test_fallback),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
