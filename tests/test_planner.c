/* test_planner.c - the planner on synthetic device profiles (graph/planner.h):
 * the cost formula checked by hand; everything on the GPU when it fits; the
 * 100b shape on an 8 GB GPU with 64 GB of host memory (GPU filled when it is
 * faster, empty when it is a weak integrated GPU); the NPU only with a
 * profile; budgets never exceeded; the dynamic program against a brute-force
 * search over every contiguous split; constraints; unsupported ops; model
 * costs from a graph against sizes computed here; profile files, the device
 * options and the profile cache. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../graph/alloc.h"
#include "../graph/devices.h"
#include "../graph/planner.h"
#include "../graph/profile.h"
#include "../graph/shape_model.h"

static const uint64_t GB = 1000000000ull, GiB = 1ull << 30;

static bn_plan_device device(const char *id, bn_device_type type, uint64_t budget, double tern,
                             double flops, double h2d, double lat, double disp) {
    bn_plan_device d;
    memset(&d, 0, sizeof d);
    snprintf(d.id, sizeof d.id, "%s", id);
    snprintf(d.name, sizeof d.name, "synthetic %s", id);
    d.type = type;
    d.allowed = true;
    d.mem_total = d.mem_budget = budget;
    d.unified = type != BN_DEVICE_DGPU;
    d.has_profile = tern > 0;
    d.prof = (bn_device_profile){tern, flops, h2d, h2d, lat, disp};
    return d;
}

/* The host most tests plan against: 64 GiB, 40 GB/s ternary, 300 GFLOP/s. */
static bn_plan_device host_cpu(void) {
    return device("cpu:0", BN_DEVICE_CPU, 64 * GiB, 40, 300, 20, 1, 1);
}

/* bn_plan_make of m on devs[0..1] (cpu:0 the fallback) under c (NULL: the
 * defaults), which must succeed; the plan is printed. */
static void plan_two(const bn_plan_model *m, const bn_plan_device devs[2],
                     const bn_plan_constraints *c, bn_plan *p) {
    bn_plan_constraints defaults;
    if (!c) {
        bn_plan_constraints_default(&defaults);
        c = &defaults;
    }
    bn_err err = {0};
    bn_status st = bn_plan_make(m, devs, 2, 0, c, p, &err);
    if (st != BN_OK) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(st, BN_OK);
    bn_plan_print(p, m, stdout);
}

/* A model from a shape through the real graph builder. */
static void shape_plan_model(const char *arch, int E, int F, int L, int H, int HKV, int V, int ctx,
                             bool untied, bn_plan_model *pm) {
    bn_shape_params sp = {arch, "test", E, F, L, H, HKV, V, ctx, 10000.0f, untied, BN_TYPE_I2_S};
    bn_model *m = NULL;
    bn_err err = {0};
    assert_int_equal(bn_shape_model_new(&sp, &m, &err), BN_OK);
    bn_kv_cache kv;
    assert_int_equal(bn_shape_kv(m, ctx, BN_TYPE_F16, &kv, &err), BN_OK);
    bn_forward f;
    assert_int_equal(bn_build_forward(m, &kv, 1, false, &f, &err), BN_OK);
    assert_int_equal(bn_plan_model_from_graph(f.g, L, ctx, 64, 64u << 20, "test", pm, &err), BN_OK);
    bn_forward_free(&f);
    bn_shape_kv_free(&kv);
    bn_shape_model_free(m);
}

/* The plan's per-device layer count, and checks every device's memory. */
static int layers_on(const bn_plan *p, int d) {
    return p->use[d].first_layer < 0 ? 0 : p->use[d].last_layer - p->use[d].first_layer + 1;
}

static void assert_within_budgets(const bn_plan *p) {
    for (int d = 0; d < p->n_devices; d++) {
        if (p->use[d].mem_bytes > bn_plan_usable(p->dev[d].mem_budget))
            fprintf(stderr, "%s: %llu > %llu\n", p->dev[d].id,
                    (unsigned long long)p->use[d].mem_bytes,
                    (unsigned long long)bn_plan_usable(p->dev[d].mem_budget));
        assert_true(p->use[d].mem_bytes <= bn_plan_usable(p->dev[d].mem_budget));
    }
    /* every device holds one contiguous range */
    for (int d = 0; d < p->n_devices; d++) {
        int first = -1, last = -1, count = 0;
        for (int u = 0; u < p->n_units; u++)
            if (p->unit_device[u] == d) {
                if (first < 0) first = u;
                last = u;
                count++;
            }
        if (count) assert_int_equal(last - first + 1, count);
    }
}

/* ---- the cost formula, by hand ---- */

static void test_evaluate_by_hand(void **state) {
    (void)state;
    bn_plan_model m = {0};
    snprintf(m.name, sizeof m.name, "hand");
    m.n_layer = 2;
    m.n_units = 4;
    m.n_ctx = 100;
    m.n_batch = 10;
    m.in_bytes = 4;
    m.logits_bytes = 4000;
    m.scratch_bytes = 1000;
    bn_plan_unit u[4];
    memset(u, 0, sizeof u);
    u[0].kind = BN_UNIT_EMBD;
    u[0].n_items = 1;
    u[0].items[0] = (bn_plan_item){.op = BN_OP_GET_ROWS,
                                   .type = BN_TYPE_F16,
                                   .n_nodes = 1,
                                   .bytes = 2000,
                                   .weight_bytes = 50000};
    for (int l = 1; l <= 2; l++) {
        u[l].kind = BN_UNIT_LAYER;
        u[l].layer = l - 1;
        u[l].n_items = 2;
        u[l].items[0] = (bn_plan_item){.op = BN_OP_MATMUL_TERNARY,
                                       .type = BN_TYPE_I2_S,
                                       .n_nodes = 7,
                                       .bytes = 1e6,
                                       .flops = 8e6,
                                       .weight_bytes = 1000000};
        u[l].items[1] = (bn_plan_item){.op = BN_OP_ATTENTION,
                                       .type = BN_TYPE_F16,
                                       .n_nodes = 1,
                                       .kv = true,
                                       .bytes = 3e4,
                                       .flops = 1e9,
                                       .kv_bytes = 60000};
        u[l].out_bytes = 512;
    }
    u[3].kind = BN_UNIT_HEAD;
    u[3].n_items = 1;
    u[3].items[0] = (bn_plan_item){.op = BN_OP_MATMUL_F,
                                   .type = BN_TYPE_F16,
                                   .n_nodes = 1,
                                   .bytes = 50000,
                                   .flops = 50000,
                                   .weight_bytes = 50000};
    for (int i = 0; i < 4; i++) u[i].weight_bytes = u[i].items[0].weight_bytes;
    m.units = u;
    m.shared_bytes = 50000; /* tied: the embedding table is the head's */
    bn_plan_device devs[2] = {
        device("cpu:0", BN_DEVICE_CPU, 10 * GB, 10, 100, 5, 1, 2),
        device("vulkan:0", BN_DEVICE_DGPU, 10 * GB, 100, 1000, 10, 20, 10),
    };
    int assign[4] = {0, 0, 1, 1};
    bn_plan p;
    bn_err err = {0};
    assert_int_equal(bn_plan_evaluate(&m, devs, 2, 0, assign, &p, &err), BN_OK);
    /* decode, written out: GET_ROWS on cpu:0, layer 0 on cpu:0, copy, layer 1 and head on vulkan:0
     */
    double cpu_bw = 10e9, cpu_fl = 100e9, gpu_bw = 100e9, gpu_fl = 1000e9;
    double t = 4 / 5e9 + 1e-6;                         /* token id to cpu:0 */
    t += fmax(2000 / cpu_bw, 0) + 2e-6;                /* embedding */
    t += 1e6 / cpu_bw + 7 * 2e-6;                      /* layer 0 ternary */
    t += fmax(3e4 / cpu_bw, 1e9 / cpu_fl) + 2e-6;      /* layer 0 attention */
    t += 512 / 5e9 + 1e-6 + 512 / 10e9 + 20e-6;        /* cpu:0 -> vulkan:0 */
    t += 1e6 / gpu_bw + 7 * 10e-6;                     /* layer 1 ternary */
    t += fmax(3e4 / gpu_bw, 1e9 / gpu_fl) + 10e-6;     /* layer 1 attention */
    t += fmax(50000 / gpu_bw, 50000 / gpu_fl) + 10e-6; /* head */
    t += 4000 / 10e9 + 20e-6;                          /* logits back */
    printf("decode %.9g s, by hand %.9g s\n", p.decode_s, t);
    assert_true(fabs(p.decode_s - t) <= 1e-12 + 1e-9 * t);
    /* memory: the table on both devices (not shared), KV with its layer, scratch on both */
    assert_int_equal(p.use[0].weight_bytes, 50000 + 1000000);
    assert_int_equal(p.use[1].weight_bytes, 1000000 + 50000);
    assert_int_equal(p.use[0].kv_bytes, 60000);
    assert_int_equal(p.use[1].mem_bytes, 1000000 + 50000 + 60000 + 1000);
    bn_plan_free(&p);
    /* everything on one device: the tied table counts once */
    int one[4] = {1, 1, 1, 1};
    assert_int_equal(bn_plan_evaluate(&m, devs, 2, 0, one, &p, &err), BN_OK);
    assert_int_equal(p.use[1].weight_bytes, 50000 + 2 * 1000000);
    bn_plan_free(&p);
}

/* ---- the shapes ---- */

static void test_all_on_gpu_when_it_fits(void **state) {
    (void)state;
    bn_plan_model m;
    shape_plan_model("bitnet-b1.58", 2560, 6912, 30, 20, 5, 128256, 4096, false, &m); /* 2b4t */
    bn_plan_device devs[2] = {
        host_cpu(),
        device("vulkan:0", BN_DEVICE_DGPU, 8 * GiB, 250, 10000, 20, 10, 4),
    };
    bn_plan p;
    plan_two(&m, devs, NULL, &p);
    for (int u = 0; u < p.n_units; u++) assert_int_equal(p.unit_device[u], 1);
    assert_within_budgets(&p);
    bn_plan_free(&p);
    bn_plan_model_free(&m);
}

/* Memory of one 100b layer, from the shape: 4 E x E + 3 E x F ternary weights
 * at 2 bits plus 7 I2_S tails, 3 E + F norm floats, K and V of ctx rows in f16. */
static uint64_t layer_bytes_100b(int ctx) {
    uint64_t E = 8192, F = 45568;
    return (4 * E * E + 3 * E * F) / 4 + 7 * 32 + 4 * (3 * E + F) + 2ull * ctx * E * 2;
}

static void test_100b_on_8gb(void **state) {
    (void)state;
    bn_plan_model m;
    shape_plan_model("bitnet", 8192, 45568, 72, 64, 64, 32002, 2048, false, &m);
    bn_plan_device devs[2] = {
        host_cpu(),
        device("vulkan:0", BN_DEVICE_DGPU, 8 * GiB, 250, 10000, 20, 10, 4),
    };
    bn_plan p;
    plan_two(&m, devs, NULL, &p);
    assert_within_budgets(&p);
    uint64_t layer = layer_bytes_100b(2048);
    int gpu = layers_on(&p, 1);
    printf("faster GPU: %d layers on it; one layer %.3f GB\n", gpu, (double)layer / 1e9);
    /* filled: no further layer fits on it */
    assert_true(p.use[1].usable_bytes - p.use[1].mem_bytes < layer);
    assert_true(gpu >= 15);
    assert_int_equal(layers_on(&p, 0), 72 - gpu);
    bn_plan_free(&p);

    /* a weak integrated GPU, slower than the CPU: nothing on it */
    devs[1] = device("vulkan:0", BN_DEVICE_IGPU, 8 * GiB, 8, 200, 15, 10, 10);
    plan_two(&m, devs, NULL, &p);
    assert_int_equal(layers_on(&p, 1), 0);
    assert_false(p.use[1].head || p.use[1].embd);
    assert_non_null(strstr(p.reason, "nothing on vulkan:0: slower"));
    assert_within_budgets(&p);
    bn_plan_free(&p);
    bn_plan_model_free(&m);
}

static void test_npu_only_with_profile(void **state) {
    (void)state;
    bn_plan_model m;
    shape_plan_model("llama", 4096, 14336, 32, 32, 8, 128256, 4096, true, &m); /* 8b */
    bn_plan_device devs[2] = {
        host_cpu(),
        device("npu:0", BN_DEVICE_NPU, 16 * GiB, 120, 2000, 20, 20, 10),
    };
    bn_plan p;
    plan_two(&m, devs, NULL, &p);
    assert_true(layers_on(&p, 1) == 32);
    assert_within_budgets(&p);
    bn_plan_free(&p);
    devs[1].has_profile = false; /* the NPU slot without a profile */
    memset(&devs[1].prof, 0, sizeof devs[1].prof);
    plan_two(&m, devs, NULL, &p);
    assert_int_equal(layers_on(&p, 1), 0);
    assert_non_null(strstr(p.reason, "no profile"));
    bn_plan_free(&p);
    bn_plan_model_free(&m);
}

/* ---- the dynamic program against every contiguous split ---- */

static void random_model(bt_rng *g, int L, bn_plan_model *m, bn_plan_unit *u) {
    memset(m, 0, sizeof *m);
    m->n_layer = L;
    m->n_units = L + 2;
    m->n_ctx = 256;
    m->n_batch = 1 + bt_rng_int(g, 0, 63);
    m->in_bytes = 4;
    m->logits_bytes = bt_rng_int(g, 1000, 500000);
    m->scratch_bytes = (uint64_t)bt_rng_int(g, 0, 50) << 20;
    m->units = u;
    for (int i = 0; i < L + 2; i++) {
        bn_plan_unit *x = &u[i];
        memset(x, 0, sizeof *x);
        x->kind = i == 0 ? BN_UNIT_EMBD : i == L + 1 ? BN_UNIT_HEAD : BN_UNIT_LAYER;
        x->layer = i - 1;
        x->out_bytes = bt_rng_int(g, 1000, 100000);
        x->n_items = i == 0 || i == L + 1 ? 1 : 2;
        double w = (double)bt_rng_int(g, 1, 2000) * 1e6;
        x->items[0] = (bn_plan_item){.op = i == 0       ? BN_OP_GET_ROWS
                                           : i == L + 1 ? BN_OP_MATMUL_F
                                                        : BN_OP_MATMUL_TERNARY,
                                     .type = i == 0 || i == L + 1 ? BN_TYPE_F16 : BN_TYPE_I2_S,
                                     .n_nodes = bt_rng_int(g, 1, 10),
                                     .bytes = i == 0 ? 1e4 : w,
                                     .flops = w * bt_rng_int(g, 1, 8),
                                     .prefill_flops = w * bt_rng_int(g, 1, 8),
                                     .weight_bytes = (uint64_t)w};
        x->weight_bytes = (uint64_t)w;
        if (x->n_items == 2) {
            uint64_t kv = (uint64_t)bt_rng_int(g, 0, 500) << 20;
            x->items[1] = (bn_plan_item){.op = BN_OP_ATTENTION,
                                         .type = BN_TYPE_F16,
                                         .kv = true,
                                         .n_nodes = 1,
                                         .bytes = (double)kv / 2,
                                         .flops = (double)kv,
                                         .prefill_flops = (double)kv,
                                         .kv_bytes = kv};
            x->kv_bytes = kv;
        }
    }
    if (bt_rng_int(g, 0, 1)) { /* tied: one table for the embedding and the head */
        u[L + 1].items[0].weight_bytes = u[0].items[0].weight_bytes;
        u[L + 1].weight_bytes = u[0].weight_bytes;
        m->shared_bytes = u[0].weight_bytes;
    }
}

/* The best assignment by trying all of them: n_dev^n_units, contiguous ranges only. */
static bool brute_force(const bn_plan_model *m, const bn_plan_device *devs, int n, int fb,
                        int gpu_layers, bool soft, double *dec, double *pre) {
    int U = m->n_units, assign[16];
    long total = 1;
    for (int u = 0; u < U; u++) total *= n;
    bool found = false;
    for (long code = 0; code < total; code++) {
        long x = code;
        for (int u = 0; u < U; u++, x /= n) assign[u] = (int)(x % n);
        bool ok = true;
        for (int d = 0; d < n && ok; d++) { /* one contiguous range per device */
            int first = -1, last = -1, cnt = 0;
            for (int u = 0; u < U; u++)
                if (assign[u] == d) {
                    if (first < 0) first = u;
                    last = u;
                    cnt++;
                }
            if (cnt && last - first + 1 != cnt) ok = false;
        }
        if (!ok) continue;
        if (gpu_layers >= 0) {
            int off = 0;
            for (int u = 1; u <= m->n_layer; u++) off += assign[u] != fb;
            if (off != gpu_layers) continue;
        }
        bn_plan p;
        bn_err err = {0};
        assert_int_equal(bn_plan_evaluate(m, devs, n, fb, assign, &p, &err), BN_OK);
        for (int d = 0; d < n; d++)
            if (p.use[d].mem_bytes > bn_plan_usable(devs[d].mem_budget) && !(soft && d == fb))
                ok = false;
        if (ok) {
            double tol = 1e-9 * (found ? fmax(*dec, p.decode_s) : 1);
            if (!found || p.decode_s < *dec - tol ||
                (fabs(p.decode_s - *dec) <= tol && p.prefill_s < *pre)) {
                *dec = p.decode_s;
                *pre = p.prefill_s;
                found = true;
            }
        }
        bn_plan_free(&p);
    }
    return found;
}

static void test_matches_brute_force(void **state) {
    (void)state;
    bt_rng g;
    bt_rng_seed(&g, 12345);
    int checked = 0, infeasible = 0, soft = 0;
    for (int round = 0; round < 250; round++) {
        int L = bt_rng_int(&g, 1, 5), n = bt_rng_int(&g, 1, 3);
        bn_plan_model m;
        bn_plan_unit u[8];
        random_model(&g, L, &m, u);
        bn_plan_device devs[3];
        for (int d = 0; d < n; d++) {
            char id[16];
            snprintf(id, sizeof id, d == 0 ? "cpu:0" : "gpu:%d", d);
            devs[d] = device(id, d ? BN_DEVICE_DGPU : BN_DEVICE_CPU,
                             (uint64_t)bt_rng_int(&g, 100, 8000) << 20, bt_rng_int(&g, 5, 300),
                             bt_rng_int(&g, 50, 5000), bt_rng_int(&g, 1, 30), bt_rng_int(&g, 0, 50),
                             bt_rng_int(&g, 0, 20));
        }
        bn_plan_constraints c;
        bn_plan_constraints_default(&c);
        if (n > 1 && bt_rng_int(&g, 0, 3) == 0) c.gpu_layers = bt_rng_int(&g, 0, L);
        double bd = 0, bp = 0;
        bool found = brute_force(&m, devs, n, 0, c.gpu_layers, false, &bd, &bp);
        bool soft_found = false;
        if (!found) soft_found = brute_force(&m, devs, n, 0, c.gpu_layers, true, &bd, &bp);
        bn_plan p;
        bn_err err = {0};
        bn_status st = bn_plan_make(&m, devs, n, 0, &c, &p, &err);
        if (!found && !soft_found) {
            assert_int_equal(st, BN_ERR_OOM);
            infeasible++;
            continue;
        }
        if (st != BN_OK) fprintf(stderr, "round %d: %s\n", round, err.msg);
        assert_int_equal(st, BN_OK);
        if (found) assert_within_budgets(&p);
        soft += !found;
        double tol = 1e-9 * bd;
        if (fabs(p.decode_s - bd) > tol || p.prefill_s > bp + 1e-9 * bp)
            fprintf(stderr, "round %d: plan %.12g/%.12g, brute force %.12g/%.12g\n", round,
                    p.decode_s, p.prefill_s, bd, bp);
        assert_true(fabs(p.decode_s - bd) <= tol);
        assert_true(p.prefill_s <= bp + 1e-9 * bp);
        if (c.gpu_layers >= 0) {
            int off = 0;
            for (int k = 1; k <= L; k++) off += p.unit_device[k] != 0;
            assert_int_equal(off, c.gpu_layers);
        }
        checked++;
        bn_plan_free(&p);
    }
    printf("%d plans equal the brute-force optimum (%d over host memory), %d cases infeasible\n",
           checked, soft, infeasible);
    assert_true(checked > 150);
}

/* ---- constraints, fallbacks ---- */

static void test_constraints(void **state) {
    (void)state;
    bn_plan_model m;
    shape_plan_model("bitnet-b1.58", 256, 512, 4, 4, 2, 1024, 256, false, &m); /* tiny, 4 layers */
    bn_plan_device devs[2] = {
        host_cpu(),
        device("cpu:1", BN_DEVICE_CPU, 64 * GiB, 40, 300, 20, 1, 1),
    };
    bn_plan_constraints c;
    bn_plan_constraints_default(&c);
    bn_err err = {0};
    bn_plan p;
    assert_int_equal(bn_plan_parse_split("1,1", &c, &err), BN_OK);
    assert_int_equal(bn_plan_make(&m, devs, 2, 0, &c, &p, &err), BN_OK);
    const int want[6] = {0, 0, 0, 1, 1, 1};
    for (int u = 0; u < 6; u++) assert_int_equal(p.unit_device[u], want[u]);
    bn_plan_free(&p);
    assert_int_equal(bn_plan_parse_split("3,1", &c, &err), BN_OK);
    assert_int_equal(bn_plan_make(&m, devs, 2, 0, &c, &p, &err), BN_OK);
    assert_int_equal(layers_on(&p, 0), 3);
    bn_plan_free(&p);
    assert_int_not_equal(bn_plan_parse_split("1,x", &c, &err), BN_OK);
    assert_int_not_equal(bn_plan_parse_split("0,0", &c, &err), BN_OK);
    assert_int_equal(bn_plan_parse_split("1,1,1", &c, &err), BN_OK);
    assert_int_equal(bn_plan_make(&m, devs, 2, 0, &c, &p, &err), BN_ERR_INVALID_ARG);
    printf("%s\n", err.msg);

    bn_plan_constraints_default(&c);
    c.gpu_layers = 3;
    assert_int_equal(bn_plan_make(&m, devs, 2, 0, &c, &p, &err), BN_OK);
    assert_int_equal(layers_on(&p, 1), 3);
    bn_plan_free(&p);

    /* the split does not fit: an error naming the device */
    bn_plan_constraints_default(&c);
    assert_int_equal(bn_plan_parse_split("1,1", &c, &err), BN_OK);
    devs[1].mem_budget = 1 << 20;
    assert_int_equal(bn_plan_make(&m, devs, 2, 0, &c, &p, &err), BN_ERR_OOM);
    printf("%s\n", err.msg);
    assert_non_null(strstr(err.msg, "cpu:1"));
    /* nothing fits anywhere but the host: every unit on cpu:0 */
    bn_plan_constraints_default(&c);
    assert_int_equal(bn_plan_make(&m, devs, 2, 0, &c, &p, &err), BN_OK);
    for (int u = 0; u < 6; u++) assert_int_equal(p.unit_device[u], 0);
    bn_plan_free(&p);
    bn_plan_model_free(&m);
}

static void test_unsupported_goes_to_cpu(void **state) {
    (void)state;
    bn_plan_model m;
    shape_plan_model("bitnet-b1.58", 256, 512, 4, 4, 2, 1024, 256, false, &m);
    bn_plan_device devs[2] = {
        host_cpu(),
        device("npu:0", BN_DEVICE_NPU, 64 * GiB, 400, 3000, 20, 1, 1),
    };
    bn_plan_device_unsupport(&devs[1], BN_OP_ATTENTION, BN_TYPE_F16);
    bn_plan_constraints c;
    bn_plan_constraints_default(&c);
    c.gpu_layers = 4;
    bn_plan p;
    plan_two(&m, devs, &c, &p);
    assert_int_equal(layers_on(&p, 1), 4);
    assert_non_null(strstr(p.fallbacks, "ATTENTION"));
    /* the KV caches went with the attention to the CPU */
    assert_int_equal(p.use[1].kv_bytes, 0);
    assert_true(p.use[0].kv_bytes > 0);
    bn_plan_free(&p);
    bn_plan_model_free(&m);
}

/* ---- model costs from the graph ---- */

static void test_costs_from_graph(void **state) {
    (void)state;
    const int E = 4096, F = 14336, L = 32, H = 32, HKV = 8, V = 128256, CTX = 1024;
    bn_plan_model m;
    shape_plan_model("llama", E, F, L, H, HKV, V, CTX, true, &m); /* 8b: untied, no sub-norms */
    uint64_t KV = (uint64_t)E / H * HKV;
    uint64_t layer_w = ((uint64_t)E * E * 2 + 2 * E * KV + 3ull * E * F) / 4 + 7 * 32 + 2 * 4 * E;
    uint64_t w = 0, kv = 0;
    for (int u = 0; u < m.n_units; u++) w += m.units[u].weight_bytes, kv += m.units[u].kv_bytes;
    uint64_t want = (uint64_t)L * layer_w + 2ull * V * E * 2 + 4ull * E;
    printf("weights %llu (want %llu), KV %llu\n", (unsigned long long)w, (unsigned long long)want,
           (unsigned long long)kv);
    assert_int_equal(w, want);
    assert_int_equal(m.shared_bytes, 0);
    assert_int_equal(kv, 2ull * L * CTX * KV * 2);
    assert_int_equal(m.units[1].weight_bytes, layer_w);
    assert_true(m.units[1].out_bytes == 4.0 * E);
    assert_true(m.logits_bytes == 4.0 * V);
    bn_plan_model_free(&m);
    /* tied (bitnet): the table is shared by the embedding and the head */
    shape_plan_model("bitnet", 1536, 4096, 24, 16, 16, 32002, 2048, false, &m);
    assert_int_equal(m.shared_bytes, 32002ull * 1536 * 2);
    bn_plan_model_free(&m);
}

/* ---- profile files, device options, the cache ---- */

static void test_profile_files(void **state) {
    (void)state;
    uint64_t b;
    assert_true(bn_parse_bytes("8G", &b) && b == 8 * GiB);
    assert_true(bn_parse_bytes("1.5GiB", &b) && b == 3 * GiB / 2);
    assert_true(bn_parse_bytes("512M", &b) && b == 512ull << 20);
    assert_true(bn_parse_bytes("4096", &b) && b == 4096);
    assert_false(bn_parse_bytes("8X", &b));
    assert_false(bn_parse_bytes("-1G", &b));
    assert_false(bn_parse_bytes("", &b));
    const char *path = bt_tmp_path("planner_profile.json");
    const char *json =
        "{\"about\": \"test machine\", \"devices\": ["
        "{\"id\": \"cpu:0\", \"type\": \"cpu\", \"memory\": \"64G\", \"free\": \"60G\","
        " \"profile\": {\"ternary_gbps\": 40, \"float_gflops\": 300, \"h2d_gbps\": 20,"
        " \"d2h_gbps\": 20, \"latency_us\": 1, \"dispatch_us\": 1}},"
        "{\"id\": \"npu:0\", \"type\": \"npu\", \"memory\": 17179869184,"
        " \"unsupported\": [\"MATMUL_TERNARY:TQ1_0\"]}]}";
    assert_int_equal(bt_write_file(path, json, strlen(json)), 0);
    bn_profile_file f;
    bn_err err = {0};
    assert_int_equal(bn_profile_file_load(path, &f, &err), BN_OK);
    assert_int_equal(f.n, 2);
    assert_string_equal(f.about, "test machine");
    assert_int_equal(f.dev[0].dev.mem_budget, 60 * GiB);
    assert_true(f.dev[0].dev.has_profile);
    assert_true(f.dev[0].dev.prof.float_gflops == 300);
    assert_int_equal(f.dev[1].dev.type, BN_DEVICE_NPU);
    assert_false(f.dev[1].dev.has_profile);
    assert_false(bn_plan_device_runs(&f.dev[1].dev, BN_OP_MATMUL_TERNARY, BN_TYPE_TQ1_0));
    assert_true(bn_plan_device_runs(&f.dev[1].dev, BN_OP_MATMUL_TERNARY, BN_TYPE_I2_S));
    /* written and read back */
    const char *path2 = bt_tmp_path("planner_profile2.json");
    FILE *o = fopen(path2, "w");
    assert_non_null(o);
    assert_int_equal(bn_profile_file_write(o, f.dev, f.n, "again", &err), BN_OK);
    fclose(o);
    bn_profile_file f2;
    assert_int_equal(bn_profile_file_load(path2, &f2, &err), BN_OK);
    assert_int_equal(f2.n, 2);
    assert_int_equal(f2.dev[1].dev.mem_total, 16 * GiB);
    assert_false(bn_plan_device_runs(&f2.dev[1].dev, BN_OP_MATMUL_TERNARY, BN_TYPE_TQ1_0));
    /* malformed files: clear errors */
    const char *bad[] = {
        "{",
        "{\"devices\": []}",
        "{\"devices\": [{\"id\": \"cpu\"}]}",
        "{\"devices\": [{\"id\": \"cpu:0\"}]}",
        "{\"devices\": [{\"id\": \"cpu:0\", \"memory\": \"1G\", \"type\": \"x\"}]}",
        ("{\"devices\": [{\"id\": \"cpu:0\", \"memory\": \"1G\", \"profile\": "
         "{\"ternary_gbps\": \"fast\"}}]}")};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(bt_write_file(path2, bad[i], strlen(bad[i])), 0);
        assert_int_equal(bn_profile_file_load(path2, &f2, &err), BN_ERR_FORMAT);
        printf("bad file %zu: %s\n", i, err.msg);
    }
    assert_int_equal(bn_profile_file_load(bt_tmp_path("no-such.json"), &f2, &err), BN_ERR_IO);

    /* device sets from the file */
    bn_devset ds;
    bn_device_request r = {.profile = path};
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_OK);
    assert_true(ds.dev[0].allowed && ds.dev[1].allowed);
    r.backend = "npu";
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_OK);
    assert_true(ds.dev[1].prefer);
    r.backend = NULL;
    r.devices = "npu:0";
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_OK);
    assert_true(ds.dev[0].allowed && !strcmp(ds.dev[0].id, "npu:0"));
    assert_false(ds.dev[ds.fallback].allowed);
    r.devices = "npu:3";
    assert_int_not_equal(bn_devset_resolve(&r, &ds, &err), BN_OK);
    printf("%s\n", err.msg);
}

static void test_device_options(void **state) {
    (void)state;
    bn_devset ds;
    bn_err err = {0};
    bn_device_request r = {0};
    /* auto: no hidden device, no CPU-type device behind another API */
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_OK);
    printf("%s\n", ds.note);
    assert_true(ds.dev[ds.fallback].allowed);
    for (int i = 0; i < ds.n; i++) {
        if (!ds.dev[i].allowed || i == ds.fallback) continue;
        assert_int_not_equal(ds.dev[i].type, BN_DEVICE_CPU);
        assert_false(ds.hidden[i]);
    }
    r.backend = "npu";
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_ERR_DEVICE);
    printf("%s\n", err.msg);
    assert_non_null(strstr(err.msg, "no NPU runtime found"));
    r.backend = "cpu";
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_OK);
    for (int i = 0; i < ds.n; i++) assert_true(ds.dev[i].allowed == (i == ds.fallback));
    /* only the CPU backend is asked (its drivers alone are loaded) */
    for (int i = 0; i < ds.n; i++) assert_int_equal(strncmp(ds.dev[i].id, "cpu:", 4), 0);
    r.backend = NULL;
    r.devices = "cpu:0,cpu:1";
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_OK);
    for (int i = 0; i < ds.n; i++) assert_int_equal(strncmp(ds.dev[i].id, "cpu:", 4), 0);
    assert_string_equal(ds.dev[0].id, "cpu:0");
    assert_string_equal(ds.dev[1].id, "cpu:1");
    assert_true(ds.dev[0].allowed && ds.dev[1].allowed);
    r.devices = "cpu:1,cpu:0";
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_OK);
    assert_string_equal(ds.dev[0].id, "cpu:1");
    assert_int_equal(ds.fallback, 1);
    r.devices = "cpu:9";
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_ERR_DEVICE);
    r.devices = "cpu:0,cpu:0";
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_ERR_INVALID_ARG);
    r.devices = "gpu";
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_ERR_INVALID_ARG);
    r.devices = NULL;
    r.backend = "tpu";
    assert_int_equal(bn_devset_resolve(&r, &ds, &err), BN_ERR_INVALID_ARG);
}

static void test_profile_cache(void **state) {
    (void)state;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", bt_tmp_path("profile-cache"));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    setenv("BITNET_CACHE_DIR", dir, 1);
    bn_backend_config cfg = {.n_threads = 2};
    bn_device_profile p1, p2;
    bool measured;
    bn_err err = {0};
    assert_int_equal(bn_profile_get(bn_backend_cpu(), 0, NULL, &cfg, &p1, &measured, &err), BN_OK);
    assert_true(measured);
    printf("cpu:0: ternary %.2f GB/s, float %.2f GFLOP/s, h2d %.2f GB/s, d2h %.2f GB/s, latency "
           "%.2f us, dispatch %.2f us\n",
           p1.ternary_gbps, p1.float_gflops, p1.h2d_gbps, p1.d2h_gbps, p1.latency_us,
           p1.dispatch_us);
    assert_true(p1.ternary_gbps > 0 && p1.float_gflops > 0 && p1.h2d_gbps > 0);
    assert_int_equal(bn_profile_get(bn_backend_cpu(), 0, NULL, &cfg, &p2, &measured, &err), BN_OK);
    assert_false(measured);
    printf("cached: ternary %.17g vs %.17g, dispatch %.17g vs %.17g\n", p1.ternary_gbps,
           p2.ternary_gbps, p1.dispatch_us, p2.dispatch_us);
    assert_true(fabs(p1.ternary_gbps - p2.ternary_gbps) <= 1e-9 * p1.ternary_gbps &&
                fabs(p1.dispatch_us - p2.dispatch_us) <= 1e-9 * p1.dispatch_us);
    unsetenv("BITNET_CACHE_DIR");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evaluate_by_hand),
        cmocka_unit_test(test_all_on_gpu_when_it_fits),
        cmocka_unit_test(test_100b_on_8gb),
        cmocka_unit_test(test_npu_only_with_profile),
        cmocka_unit_test(test_matches_brute_force),
        cmocka_unit_test(test_constraints),
        cmocka_unit_test(test_unsupported_goes_to_cpu),
        cmocka_unit_test(test_costs_from_graph),
        cmocka_unit_test(test_profile_files),
        cmocka_unit_test(test_device_options),
        cmocka_unit_test(test_profile_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
