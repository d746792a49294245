/* test_opencl_graph.c - whole forward passes of a generated tiny model
 * (`bitnet gen --shape tiny`) on the OpenCL backend, alone and split with the
 * CPU (and Vulkan, when it has a device) by the scheduler (graph/sched.h),
 * against the CPU backend: over a sequence of a 40-token prefill (every
 * position's logits), 20 single-token decode steps (the last token's logits,
 * one prepared graph reused with a new n_past) and a second 40-token prefill
 * at n_past = 60, 100 positions in all, logits NMSE <= 1e-5 and top-1
 * agreement >= 99 % of positions. Encodings I2_S, TQ2_0, TQ1_0 and F16; f16
 * and f32 KV caches; also with the kernels built without fp64.
 *
 * Also the backend's own contract: one device copy per weight however many
 * graphs name it, one device cache per KV cache, and the on-disk program
 * cache (a second backend loads what the first built; a damaged file is
 * rebuilt). Skips (77) when no OpenCL platform exists. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#ifndef BITNET_HAVE_OPENCL
int main(void) {
    bt_skip("built without OpenCL");
}
#else

#include "../core/model.h"
#include "backend.h"
#include "build.h"
#include "opencl/cl_internal.h"
#include "scheduler.h"

#define TEST(name) static void name(void **state __attribute__((unused)))

enum { N_CTX = 128, P1 = 40, N_DEC = 20, P2 = 40, N_POS = P1 + N_DEC + P2 };

static bn_backend *cpu, *ocl;

static const char *model_path(const char *type) {
    static char path[4][600];
    static int next;
    char *p = path[next++ & 3];
    char name[64];
    snprintf(name, sizeof name, "opencl_tiny_%s.gguf", type);
    snprintf(p, 600, "%s", bt_tmp_path(name));
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s gen -o %s.tmp --shape tiny --type %s --seed 5 >/dev/null 2>&1 && mv %s.tmp %s",
             BITNET_BIN, p, type, p, p);
    assert_int_equal(system(cmd), 0);
    return p;
}

/* How a sequence runs: one backend for the whole graph, or a split. OCL in
 * whole or be[] stands for a fresh OpenCL backend opened for the sequence (a
 * backend keeps weights and caches keyed by host pointer until it closes, and
 * each sequence has its own model mapping and caches). */
#define OCL ((bn_backend *)1)
typedef struct runner {
    bn_backend *whole; /* non-NULL: every node here */
    bn_backend *be[3]; /* split: devices by index, be[0] = CPU (the fallback) */
    int n_be;
    const int *unit_device; /* embedding, layers..., head */
} runner;

typedef struct step_graph {
    bn_forward f;
    bn_sched *s;
} step_graph;

static void step_prepare(const runner *r, const bn_model *m, const bn_kv_cache *kv, int n, bool all,
                         step_graph *sg) {
    bn_err err = {0};
    memset(sg, 0, sizeof *sg);
    assert_int_equal(bn_build_forward(m, kv, n, all, &sg->f, &err), BN_OK);
    bn_status st;
    if (r->whole)
        st = r->whole->ops->graph_prepare(r->whole, sg->f.g, &err);
    else
        st = bn_sched_new(sg->f.g, r->unit_device, m->hp.n_layer + 2, r->be, r->n_be, 0, NULL,
                          &sg->s, NULL, &err);
    if (st != BN_OK) fail_msg("prepare: %s", err.msg);
}

static void step_run(const runner *r, step_graph *sg, const int32_t *tok, int n_past, float *out,
                     int n_vocab) {
    bn_forward *f = &sg->f;
    int32_t *ids = f->tokens->data, *pos = f->positions->data;
    for (int i = 0; i < f->n_tokens; i++) ids[i] = tok[i], pos[i] = n_past + i;
    if (f->out_ids) *(int32_t *)f->out_ids->data = f->n_tokens - 1;
    bn_forward_set_n_past(f, n_past);
    bn_err err = {0};
    bn_status st = r->whole ? r->whole->ops->graph_compute(r->whole, f->g, &err)
                            : bn_sched_compute(sg->s, &err);
    if (st != BN_OK) fail_msg("compute: %s", err.msg);
    const int rows = f->all_logits ? f->n_tokens : 1;
    memcpy(out, f->logits->data, sizeof(float) * (size_t)rows * (size_t)n_vocab);
}

static void step_free(const runner *r, step_graph *sg) {
    if (r->whole)
        r->whole->ops->graph_release(r->whole, sg->f.g);
    else
        bn_sched_free(sg->s);
    bn_forward_free(&sg->f);
}

/* The 100 positions' logits of the sequence, into out[N_POS * n_vocab]. */
static void run_sequence(const runner *r, const bn_model *m, uint32_t kv_type, float *out) {
    const int V = m->hp.n_vocab;
    bn_kv_cache kv;
    bn_err err = {0};
    assert_int_equal(bn_kv_cache_init(&kv, &m->hp, N_CTX, kv_type, &err), BN_OK);
    int32_t tok[N_POS];
    for (int i = 0; i < N_POS; i++) tok[i] = (i * 37 + 11) % V;
    step_graph pre, dec;
    step_prepare(r, m, &kv, P1, true, &pre);
    step_prepare(r, m, &kv, 1, false, &dec);
    step_run(r, &pre, tok, 0, out, V);
    for (int i = 0; i < N_DEC; i++)
        step_run(r, &dec, tok + P1 + i, P1 + i, out + (size_t)(P1 + i) * V, V);
    step_run(r, &pre, tok + P1 + N_DEC, P1 + N_DEC, out + (size_t)(P1 + N_DEC) * V, V);
    if (r->whole == ocl) { /* one device copy per weight and per cache */
        int n_w = 0;
        bn_graph *g = pre.f.g;
        for (int i = 0; i < g->n_tensors; i++) {
            const bn_tensor *t = g->tensors[i];
            if (!(t->flags & BN_TENSOR_WEIGHT)) continue;
            bool seen = false;
            for (int j = 0; j < i; j++) seen |= g->tensors[j]->data == t->data;
            n_w += !seen;
        }
        const clb_backend *cb = (const clb_backend *)ocl;
        assert_int_equal(cb->weights.n, n_w);
        assert_int_equal(cb->caches.n, 2 * m->hp.n_layer);
    }
    step_free(r, &dec);
    step_free(r, &pre);
    bn_kv_cache_free(&kv);
}

static void compare(const char *what, const float *got, const float *want, int V) {
    double nmse = bt_nmse_f32(got, want, (size_t)N_POS * V);
    int agree = 0;
    for (int p = 0; p < N_POS; p++) {
        const float *a = got + (size_t)p * V, *b = want + (size_t)p * V;
        int ia = 0, ib = 0;
        for (int i = 1; i < V; i++) {
            if (a[i] > a[ia]) ia = i;
            if (b[i] > b[ib]) ib = i;
        }
        agree += ia == ib;
    }
    printf("%-40s NMSE %.3g, top-1 agreement %d/%d\n", what, nmse, agree, N_POS);
    if (!(nmse <= 1e-5)) fail_msg("%s: logits NMSE %.3g > 1e-5", what, nmse);
    if (agree * 100 < 99 * N_POS) fail_msg("%s: top-1 agreement %d of %d", what, agree, N_POS);
}

static void check_backend_vs_cpu(const char *type, uint32_t kv_type, const runner *rr,
                                 const char *label) {
    runner r1 = *rr, *r = &r1;
    bn_err e = {0};
    assert_int_equal(bn_backend_opencl()->open(0, NULL, &ocl, &e), BN_OK);
    if (r->whole == OCL) r->whole = ocl;
    for (int i = 0; i < r->n_be; i++)
        if (r->be[i] == OCL) r->be[i] = ocl;
    bn_model *m = NULL;
    bn_err err = {0};
    assert_int_equal(bn_model_load(model_path(type), &m, &err), BN_OK);
    const size_t n = (size_t)N_POS * m->hp.n_vocab;
    float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
    assert_true(want && got);
    runner ref = {.whole = cpu};
    run_sequence(&ref, m, kv_type, want);
    run_sequence(r, m, kv_type, got);
    char what[128];
    snprintf(what, sizeof what, "%s, %s KV, %s", type, kv_type == BN_TYPE_F16 ? "f16" : "f32",
             label);
    compare(what, got, want, m->hp.n_vocab);
    ocl->ops->close(ocl);
    ocl = NULL;
    free(want);
    free(got);
    bn_model_free(m);
}

TEST(test_whole_graph_encodings) {
    const runner r = {.whole = OCL};
    const char *types[4] = {"i2_s", "tq2_0", "tq1_0", "f16"};
    for (int i = 0; i < 4; i++) check_backend_vs_cpu(types[i], BN_TYPE_F16, &r, "opencl");
    check_backend_vs_cpu("i2_s", BN_TYPE_F32, &r, "opencl");
    /* the f32 paths of GPUs without fp64 */
    setenv("BITNET_OPENCL_FP64", "0", 1);
    check_backend_vs_cpu("i2_s", BN_TYPE_F16, &r, "opencl without fp64");
    check_backend_vs_cpu("tq2_0", BN_TYPE_F16, &r, "opencl without fp64");
    unsetenv("BITNET_OPENCL_FP64");
}

TEST(test_split_cpu_opencl) {
    /* tiny has 2 layers: units are embedding, layer 0, layer 1, head */
    static const int a[4] = {0, 1, 0, 1}, b[4] = {1, 0, 1, 0};
    runner r = {.be = {cpu, OCL}, .n_be = 2, .unit_device = a};
    check_backend_vs_cpu("i2_s", BN_TYPE_F16, &r, "split cpu/opencl/cpu/opencl");
    r.unit_device = b;
    check_backend_vs_cpu("tq2_0", BN_TYPE_F16, &r, "split opencl/cpu/opencl/cpu");
}

TEST(test_split_cpu_opencl_vulkan) {
    const bn_backend_ops *vk = bn_backend_vulkan();
    char why[512] = "";
    if (!vk || vk->device_count(why, sizeof why) == 0) {
        printf("SKIP: no Vulkan device (%s)\n", vk ? why : "built without Vulkan");
        skip();
    }
    bn_backend *vb = NULL;
    bn_err err = {0};
    if (vk->open(0, NULL, &vb, &err) != BN_OK) {
        printf("SKIP: vulkan:0 does not open: %s\n", err.msg);
        skip();
    }
    static const int u[4] = {0, 1, 2, 1};
    runner r = {.be = {cpu, OCL, vb}, .n_be = 3, .unit_device = u};
    check_backend_vs_cpu("i2_s", BN_TYPE_F16, &r, "split cpu/opencl/vulkan/opencl");
    vb->ops->close(vb);
}

/* A graph that needs one program (elementwise.cl): y = 2 x. */
static float run_scale(bn_backend *b) {
    bn_graph *g = bn_graph_new();
    float x[3] = {1.0f, -2.0f, 3.5f};
    bn_tensor *in = bn_new_tensor(g, BN_TYPE_F32, 3, 1, "x");
    in->flags |= BN_TENSOR_INPUT;
    in->data = x;
    bn_tensor *y = bn_scale(g, in, 2.0f);
    y->flags |= BN_TENSOR_OUTPUT;
    bn_err err = {0};
    if (b->ops->graph_prepare(b, g, &err) != BN_OK || b->ops->graph_compute(b, g, &err) != BN_OK)
        fail_msg("%s", err.msg);
    float r = ((float *)y->data)[2];
    b->ops->graph_release(b, g);
    bn_graph_free(g);
    return r;
}

TEST(test_program_cache) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s", bt_tmp_path("opencl_cache_test_XXXXXX"));
    assert_non_null(mkdtemp(dir));
    char *old = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    setenv("XDG_CACHE_HOME", dir, 1);
    int built[3], loaded[3];
    for (int round = 0; round < 3; round++) {
        bn_backend *b = NULL;
        bn_err err = {0};
        assert_int_equal(bn_backend_opencl()->open(0, NULL, &b, &err), BN_OK);
        assert_true(run_scale(b) == 7.0f);
        built[round] = ((clb_backend *)b)->n_built;
        loaded[round] = ((clb_backend *)b)->n_loaded;
        char cdir[700];
        snprintf(cdir, sizeof cdir, "%s", ((clb_backend *)b)->cache_dir);
        b->ops->close(b);
        if (round == 1) { /* damage the cached binary: the next open rebuilds it */
            char cmd[900];
            snprintf(
                cmd, sizeof cmd,
                "for f in %s/*.bin; do head -c 40 \"$f\" > \"$f.x\" && mv \"$f.x\" \"$f\"; done",
                cdir);
            assert_int_equal(system(cmd), 0);
        }
    }
    printf("programs built/loaded: %d/%d, %d/%d, %d/%d\n", built[0], loaded[0], built[1], loaded[1],
           built[2], loaded[2]);
    assert_true(built[0] == 1 && loaded[0] == 0);
    assert_true(built[1] == 0 && loaded[1] == 1);
    assert_true(built[2] == 1 && loaded[2] == 0);
    if (old) {
        setenv("XDG_CACHE_HOME", old, 1);
        free(old);
    }
}

static int open_backends(void **state __attribute__((unused))) {
    bn_err err = {0};
    return bn_backend_cpu()->open(0, NULL, &cpu, &err) == BN_OK ? 0 : -1;
}

static int close_backends(void **state __attribute__((unused))) {
    cpu->ops->close(cpu);
    return 0;
}

int main(void) {
    bt_opencl_prelude(); /* or skip; the CPU reference; the program cache */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_graph_encodings),
        cmocka_unit_test(test_split_cpu_opencl),
        cmocka_unit_test(test_split_cpu_opencl_vulkan),
        cmocka_unit_test(test_program_cache),
    };
    return cmocka_run_group_tests_name("opencl graphs", tests, open_backends, close_backends);
}
#endif
