/* test_vulkan_graph.c - whole forward passes on the Vulkan backend against the CPU backend,
 * on models made by `bitnet gen --shape tiny` (I2_S, TQ2_0 and TQ1_0 projections), with the
 * validation layer on.
 *
 *  - The forward graphs of graph/build.h run directly on each backend: a 64-token prompt
 *    (all logits), then 36 one-token steps fed with the CPU's greedy tokens (so both see
 *    the same inputs), over an f16 KV cache that lives on the device.
 *  - Through the scheduler (graph/sched.h): the graph cut between every two units
 *    (embedding | layer 0 | layer 1 | head), CPU before Vulkan and Vulkan before CPU.
 *  - Through the context (graph/context.h), as `--devices` and `--tensor-split` do:
 *    Vulkan alone, and a CPU/Vulkan split between the layers in both orders.
 * The device is vulkan:0, or BITNET_VK_DEVICE=N.
 * Expectation (DESIGN.md "Numerics"): logits NMSE <= 1e-5 against the CPU and the same
 * top-1 token at >= 99 % of the positions. Exit 77 without a Vulkan device. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/backend.h"
#include "../core/model.h"
#include "../graph/build.h"
#include "../graph/context.h"
#include "../graph/scheduler.h"

#ifndef BITNET_HAVE_VULKAN
int main(void) {
    bt_skip("built without the Vulkan backend");
}
#else
#include "../backends/vulkan/vk_diag.h"

enum { P = 64, D = 36, CTX = 128 };

/* The device under test: BITNET_VK_DEVICE (bench/gpu-check.sh picks the GPU), else 0. */
static int vk_device(void) {
    const char *s = getenv("BITNET_VK_DEVICE");
    return s && *s ? atoi(s) : 0;
}

typedef struct run_out {
    int n_vocab;
    float *logits; /* (P + D) rows */
    int ids[D];    /* greedy ids of the reference, fed to every run */
} run_out;

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void check_ok(bn_status st, const bn_err *e) {
    if (st != BN_OK) fail_msg("%s", e->msg);
}

static const char *model_path(const char *type) {
    static char path[4][1024];
    static int next;
    char *p = path[next++ & 3];
    snprintf(p, 1024, "%s", bt_tmp_path("vk_tiny_"));
    strncat(p, type, 1024 - strlen(p) - 8);
    strcat(p, ".gguf");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s gen -o %s --shape tiny --type %s --seed 11 >/dev/null",
             BITNET_BIN, p, type);
    if (system(cmd) != 0) bt_skip("cannot make the test model with '%s gen'", BITNET_BIN);
    return p;
}

static void prompt(int32_t *ids, int n, int n_vocab) {
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((i * 37 + 11) % n_vocab);
}

/* The forward graphs on one backend; ref (may be NULL) gives the tokens of the steps. */
static void run_direct(const bn_model *m, bn_backend *be, const run_out *ref, run_out *out) {
    bn_err e = {0};
    const int V = m->hp.n_vocab;
    out->n_vocab = V;
    out->logits = malloc(sizeof(float) * (size_t)V * (P + D));
    assert_non_null(out->logits);
    bn_kv_cache kv;
    check_ok(bn_kv_cache_init(&kv, &m->hp, CTX, BN_TYPE_F16, &e), &e);
    bn_forward f;
    check_ok(bn_build_forward(m, &kv, P, true, &f, &e), &e);
    check_ok(be->ops->graph_prepare(be, f.g, &e), &e);
    prompt(f.tokens->data, P, V);
    for (int i = 0; i < P; i++) ((int32_t *)f.positions->data)[i] = i;
    bn_forward_set_n_past(&f, 0);
    check_ok(be->ops->graph_compute(be, f.g, &e), &e);
    memcpy(out->logits, f.logits->data, sizeof(float) * (size_t)V * P);
    be->ops->graph_release(be, f.g);
    bn_forward_free(&f);

    check_ok(bn_build_forward(m, &kv, 1, false, &f, &e), &e);
    check_ok(be->ops->graph_prepare(be, f.g, &e), &e);
    int tok = argmax(out->logits + (size_t)V * (P - 1), V);
    for (int s = 0; s < D; s++) {
        if (ref) tok = ref->ids[s];
        out->ids[s] = tok;
        *(int32_t *)f.tokens->data = tok;
        *(int32_t *)f.positions->data = P + s;
        *(int32_t *)f.out_ids->data = 0;
        bn_forward_set_n_past(&f, P + s);
        check_ok(be->ops->graph_compute(be, f.g, &e), &e);
        float *row = out->logits + (size_t)V * (P + s);
        memcpy(row, f.logits->data, sizeof(float) * (size_t)V);
        tok = argmax(row, V);
    }
    be->ops->graph_release(be, f.g);
    bn_forward_free(&f);
    bn_kv_cache_free(&kv);
}

/* The same through a context on the given devices. */
static void run_context(const bn_model *m, const char *backend, const char *devices,
                        const char *split, const run_out *ref, run_out *out) {
    bn_err e = {0};
    const int V = m->hp.n_vocab;
    out->n_vocab = V;
    out->logits = malloc(sizeof(float) * (size_t)V * (P + D));
    assert_non_null(out->logits);
    bn_context_params cp;
    bn_context_params_default(&cp);
    cp.n_ctx = CTX;
    cp.n_threads = 2;
    cp.n_batch = 40; /* the prompt in two batches: graphs of 40 and 24 tokens */
    cp.backend = backend;
    cp.devices = devices;
    cp.tensor_split = split;
    bn_context *c = NULL;
    check_ok(bn_context_new(m, &cp, &c, &e), &e);
    int32_t ids[P];
    prompt(ids, P, V);
    check_ok(bn_context_eval(c, ids, P, true, out->logits, &e), &e);
    for (int s = 0; s < D; s++) {
        int tok = ref->ids[s];
        out->ids[s] = tok;
        check_ok(bn_context_eval(c, &tok, 1, false, out->logits + (size_t)V * (P + s), &e), &e);
    }
    bn_context_free(c);
}

/* The same graphs split by the scheduler: units before `cut` on be[first], the rest on
 * the other backend. */
static void run_sched(const bn_model *m, bn_backend **be, int first, int cut, const run_out *ref,
                      run_out *out, int *n_segments) {
    bn_err e = {0};
    const int V = m->hp.n_vocab, L = m->hp.n_layer, n_units = L + 2;
    out->n_vocab = V;
    out->logits = malloc(sizeof(float) * (size_t)V * (P + D));
    assert_non_null(out->logits);
    int units[64], kv_home[64];
    assert_true(n_units <= 64);
    for (int u = 0; u < n_units; u++) units[u] = u < cut ? first : 1 - first;
    for (int l = 0; l < L; l++) kv_home[l] = -1;
    bn_kv_cache kv;
    check_ok(bn_kv_cache_init(&kv, &m->hp, CTX, BN_TYPE_F16, &e), &e);
    bn_forward f, f1;
    bn_sched *s = NULL, *s1 = NULL;
    check_ok(bn_build_forward(m, &kv, P, true, &f, &e), &e);
    check_ok(bn_build_forward(m, &kv, 1, false, &f1, &e), &e);
    check_ok(bn_sched_new(f.g, units, n_units, be, 2, 0, kv_home, &s, NULL, &e), &e);
    check_ok(bn_sched_new(f1.g, units, n_units, be, 2, 0, kv_home, &s1, NULL, &e), &e);
    *n_segments = bn_sched_n_segments(s);
    prompt(f.tokens->data, P, V);
    for (int i = 0; i < P; i++) ((int32_t *)f.positions->data)[i] = i;
    bn_forward_set_n_past(&f, 0);
    check_ok(bn_sched_compute(s, &e), &e);
    memcpy(out->logits, f.logits->data, sizeof(float) * (size_t)V * P);
    for (int st = 0; st < D; st++) {
        out->ids[st] = ref->ids[st];
        *(int32_t *)f1.tokens->data = ref->ids[st];
        *(int32_t *)f1.positions->data = P + st;
        *(int32_t *)f1.out_ids->data = 0;
        bn_forward_set_n_past(&f1, P + st);
        check_ok(bn_sched_compute(s1, &e), &e);
        memcpy(out->logits + (size_t)V * (P + st), f1.logits->data, sizeof(float) * (size_t)V);
    }
    bn_sched_free(s);
    bn_sched_free(s1);
    bn_forward_free(&f);
    bn_forward_free(&f1);
    bn_kv_cache_free(&kv);
}

static void compare(const run_out *ref, const run_out *got, const char *what) {
    const int V = ref->n_vocab;
    double nmse = bt_nmse_f32(got->logits, ref->logits, (size_t)V * (P + D));
    int agree = 0;
    for (int i = 0; i < P + D; i++)
        agree += argmax(got->logits + (size_t)V * i, V) == argmax(ref->logits + (size_t)V * i, V);
    const double frac = (double)agree / (P + D);
    printf("%-40s logits NMSE %.2e, top-1 agreement %d/%d\n", what, nmse, agree, P + D);
    if (!(nmse <= 1e-5) || frac < 0.99)
        fail_msg("%s: NMSE %.3g (limit 1e-5), top-1 agreement %.1f %% (limit 99 %%)", what, nmse,
                 100 * frac);
}

static void free_out(run_out *o) {
    free(o->logits);
    o->logits = NULL;
}

static bn_model *load(const char *type) {
    bn_model *m = NULL;
    bn_err e = {0};
    check_ok(bn_model_load(model_path(type), &m, &e), &e);
    return m;
}

static void direct_case(const char *type) {
    bn_model *m = load(type);
    bn_err e = {0};
    bn_backend *cpu = NULL, *vk = NULL;
    bn_backend_config cfg = {.n_threads = 2};
    check_ok(bn_backend_cpu()->open(0, &cfg, &cpu, &e), &e);
    check_ok(bn_backend_vulkan()->open(vk_device(), &cfg, &vk, &e), &e);
    run_out ref, got;
    run_direct(m, cpu, NULL, &ref);
    run_direct(m, vk, &ref, &got);
    char what[64];
    snprintf(what, sizeof what, "%s: forward graphs on vulkan:%d", type, vk_device());
    compare(&ref, &got, what);
    free_out(&ref);
    free_out(&got);
    vk->ops->close(vk);
    cpu->ops->close(cpu);
    bn_model_free(m);
    assert_int_equal(bn_vk_validation_messages(), 0);
}

static void test_direct_i2s(void **state) {
    (void)state;
    direct_case("i2_s");
}
static void test_direct_tq2(void **state) {
    (void)state;
    direct_case("tq2_0");
}
static void test_direct_tq1(void **state) {
    (void)state;
    direct_case("tq1_0");
}

static void test_sched_cuts(void **state) {
    (void)state;
    bn_model *m = load("i2_s");
    bn_err e = {0};
    bn_backend *be[2] = {NULL, NULL};
    bn_backend_config cfg = {.n_threads = 2};
    check_ok(bn_backend_cpu()->open(0, &cfg, &be[0], &e), &e);
    check_ok(bn_backend_vulkan()->open(vk_device(), &cfg, &be[1], &e), &e);
    run_out ref, got;
    run_direct(m, be[0], NULL, &ref);
    const char *names[2] = {"cpu", "vulkan"};
    char what[96];
    for (int first = 0; first < 2; first++)
        for (int cut = 1; cut <= m->hp.n_layer + 1; cut++) {
            int n_seg = 0;
            run_sched(m, be, first, cut, &ref, &got, &n_seg);
            snprintf(what, sizeof what, "sched: %s before unit %d, %s after (%d segments)",
                     names[first], cut, names[1 - first], n_seg);
            assert_true(n_seg >= 2);
            compare(&ref, &got, what);
            free_out(&got);
        }
    free_out(&ref);
    be[1]->ops->close(be[1]);
    be[0]->ops->close(be[0]);
    bn_model_free(m);
    assert_int_equal(bn_vk_validation_messages(), 0);
}

static void test_context_splits(void **state) {
    (void)state;
    bn_model *m = load("i2_s");
    run_out ref, got;
    bn_err e = {0};
    bn_backend *cpu = NULL;
    bn_backend_config cfg = {.n_threads = 2};
    check_ok(bn_backend_cpu()->open(0, &cfg, &cpu, &e), &e);
    run_direct(m, cpu, NULL, &ref);
    cpu->ops->close(cpu);

    char one[32], devs[2][64], split[32], what[256];
    snprintf(one, sizeof one, "vulkan:%d", vk_device());
    run_context(m, NULL, one, NULL, &ref, &got);
    snprintf(what, sizeof what, "context --devices %s", one);
    compare(&ref, &got, what);
    free_out(&got);
    /* a split between the two layers, both orders (test_sched_cuts covers every cut) */
    snprintf(devs[0], sizeof devs[0], "cpu:0,vulkan:%d", vk_device());
    snprintf(devs[1], sizeof devs[1], "vulkan:%d,cpu:0", vk_device());
    snprintf(split, sizeof split, "%d,%d", m->hp.n_layer / 2, m->hp.n_layer - m->hp.n_layer / 2);
    for (int order = 0; order < 2; order++) {
        run_context(m, NULL, devs[order], split, &ref, &got);
        snprintf(what, sizeof what, "context --devices %s --tensor-split %s", devs[order], split);
        compare(&ref, &got, what);
        free_out(&got);
    }
    free_out(&ref);
    bn_model_free(m);
    assert_int_equal(bn_vk_validation_messages(), 0);
}

int main(void) {
    setenv("BITNET_VK_VALIDATE", "1", 0);
    char why[256] = "";
    if (bn_backend_vulkan()->device_count(why, sizeof why) == 0) bt_skip("%s", why);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_i2s),     cmocka_unit_test(test_direct_tq2),
        cmocka_unit_test(test_direct_tq1),     cmocka_unit_test(test_sched_cuts),
        cmocka_unit_test(test_context_splits),
    };
    return cmocka_run_group_tests_name("vulkan graphs", tests, NULL, NULL);
}
#endif
