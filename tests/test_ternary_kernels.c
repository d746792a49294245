/* test_ternary_kernels.c - the fast ternary kernels (backends/cpu/ternary.h)
 * against the scalar reference.
 *
 * Kernel level, for every table this CPU runs (scalar, avx2, avx512vnni):
 * the code sums of gemv (row and group mode), unpack and the GEMM
 * micro-kernel must equal, as int32, sums computed here from the reference
 * decoder bn_ternary_row_codes (core/quant.c) in int64; on random data and on
 * edges: all weights +1, all -1, every activation -128 (|q| = 128) or 127, K
 * not a multiple of the unrolling (I2_S K = 384, 640), odd N, one row, the
 * codes no valid file has (I2_S 3 = weight 0, TQ2_0 3 = weight 2) and TQ1_0
 * bytes no packer writes.
 * Node level: MATMUL_TERNARY through bn_cpu_compute with each table must give
 * the same bytes as the reference (BITNET_CPU_TERNARY=reference), for one
 * token (mat-vec) and several (GEMM, crossing the 64-token and 8192-element
 * tiles), split among 1 or 3 threads, with the weights unprepared and
 * prepared (file-mapped weights: the I2_S clean check, the TQ shared-scale
 * check, the column layout for ReLU^2 inputs with 0 .. 100 % zero
 * activations, the lookup-table layout). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../core/os.h"
#include "cpu/cpu_ops.h"
#include "cpu/ternary.h"
#include "ir.h"
#include "ternary_gemm_check.h"

#define TEST(name) static void name(void **state __attribute__((unused)))

static const char *const table_names[] = {"scalar", "avx2", "avx512vnni", "neon", "neon-dotprod"};
#define N_TABLES (int)(sizeof table_names / sizeof table_names[0])

/* ---- weights: packed by hand from codes (FORMATS.md), so any code can be stored ---- */

enum { W_RANDOM, W_PLUS, W_MINUS, W_CODE3, W_RAWBYTES, W_ALL3 };

typedef struct wdata {
    uint32_t type;
    int64_t K, N;
    size_t bytes;
    uint8_t *data;
} wdata;

static uint16_t f16_bits(float x) {
    return bn_f32_to_f16(x);
}

/* codes[n * K + i] in 0..3. d: one f16 per block (TQ) or the tensor scale (I2_S). */
static wdata pack(uint32_t type, const uint8_t *codes, int64_t K, int64_t N, const float *d) {
    wdata w = {type, K, N, 0, NULL};
    const int64_t ne[4] = {K, N, 1, 1};
    assert_int_equal(bn_tensor_bytes(type, ne, &w.bytes, NULL), BN_OK);
    w.data = calloc(1, w.bytes);
    assert_non_null(w.data);
    if (type == BN_TYPE_I2_S) {
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < K; i++) {
                const int64_t e = n * K + i, blk = e / 128, j = e % 128;
                w.data[blk * 32 + j % 32] |= (uint8_t)(codes[e] << (6 - 2 * (j / 32)));
            }
        memcpy(w.data + K * N / 4, &d[0], 4);
    } else if (type == BN_TYPE_TQ2_0) {
        for (int64_t n = 0; n < N; n++)
            for (int64_t b = 0; b < K / 256; b++) {
                uint8_t *p = w.data + (n * (K / 256) + b) * 66;
                for (int e = 0; e < 256; e++) {
                    const int h = e / 128, l = (e % 128) / 32, m = e % 32;
                    p[32 * h + m] |= (uint8_t)(codes[n * K + b * 256 + e] << (2 * l));
                }
                const uint16_t db = f16_bits(d[n * (K / 256) + b]);
                p[64] = (uint8_t)db;
                p[65] = (uint8_t)(db >> 8);
            }
    } else { /* TQ1_0 through the reference quantizer: codes 0..2 only */
        float *x = malloc((size_t)(K * N) * sizeof(float));
        assert_non_null(x);
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < K; i++)
                x[n * K + i] = (float)((int)codes[n * K + i] - 1) * d[n * (K / 256) + i / 256];
        assert_int_equal(bn_quantize(type, x, K, N, w.data, NULL), BN_OK);
        free(x);
    }
    return w;
}

/* Weights of a kind: codes and scales (one per block; shared when `shared`). */
static wdata make_weight(uint32_t type, int64_t K, int64_t N, int kind, bool shared, bt_rng *r) {
    const int64_t G = K / 256 > 0 ? K / 256 : 1;
    uint8_t *codes = malloc((size_t)(K * N));
    float *d = malloc((size_t)(N * G) * sizeof(float));
    assert_non_null(codes);
    assert_non_null(d);
    for (int64_t e = 0; e < K * N; e++) {
        int c = bt_rng_int(r, 0, 2);
        if (kind == W_PLUS) c = 2;
        if (kind == W_MINUS) c = 0;
        if (kind == W_CODE3 && type != BN_TYPE_TQ1_0 && bt_rng_int(r, 0, 3) == 0) c = 3;
        if (kind == W_ALL3) c = 3; /* the largest products: int16 stages at their bounds */
        codes[e] = (uint8_t)c;
    }
    /* f16-exact scales; one value for all blocks when shared */
    const float base = (float)bt_rng_int(r, 1, 64) / 32.0f;
    for (int64_t i = 0; i < N * G; i++)
        d[i] =
            shared ? base : (float)bt_rng_int(r, 1, 255) / 64.0f * (bt_rng_int(r, 0, 1) ? 1 : -1);
    wdata w = pack(type, codes, K, N, d);
    if (kind == W_RAWBYTES && type == BN_TYPE_TQ1_0) /* bytes no packer writes; keep d */
        for (int64_t b = 0; b < K / 256 * N; b++)
            for (int i = 0; i < 52; i++) w.data[b * 54 + i] = (uint8_t)bt_rng_int(r, 0, 255);
    free(codes);
    free(d);
    return w;
}

/* Activation rows (bn_act_row) of T tokens: random q, or all q = v. zeros: share of q = 0. */
static uint8_t *make_acts(int64_t K, int64_t T, int fill, double zeros, bt_rng *r) {
    const size_t rb = bn_act_row_bytes(K);
    uint8_t *a = calloc((size_t)T, rb);
    assert_non_null(a);
    for (int64_t t = 0; t < T; t++) {
        bn_act_row *row = (bn_act_row *)(a + t * rb);
        int32_t sum = 0;
        for (int64_t i = 0; i < K; i++) {
            int q = fill ? fill : bt_rng_int(r, -128, 127);
            if (zeros > 0 && bt_rng_uniform(r) < zeros) q = 0;
            row->q[i] = (int8_t)q;
            sum += q;
        }
        row->s = (float)(0.5 + bt_rng_uniform(r));
        row->sum = sum;
    }
    return a;
}

static const bn_act_row *arow(const uint8_t *a, int64_t K, int64_t t) {
    return (const bn_act_row *)(a + t * bn_act_row_bytes(K));
}

/* Expected code sums from the reference decoder, in int64. */
static void expect_sums(const wdata *w, int64_t n, const int8_t *q, int64_t *row, int64_t *groups) {
    uint8_t *c = malloc((size_t)w->K);
    float *sc = malloc((size_t)(w->K / 256 + 1) * sizeof(float));
    assert_non_null(c);
    assert_non_null(sc);
    bn_ternary_row_codes(w->type, w->data, w->K, w->N, n, c, sc);
    *row = 0;
    for (int64_t i = 0; i < w->K; i++) {
        *row += (int64_t)c[i] * q[i];
        if (groups && i % 256 == 0) groups[i / 256] = 0;
        if (groups) groups[i / 256] += (int64_t)c[i] * q[i];
    }
    free(c);
    free(sc);
}

static bn_tern_w kw(const wdata *w, bool clean) {
    bn_tern_w k = {.ti = bn_tern_type_index(w->type), .data = w->data, .K = w->K, .N = w->N};
    k.row_bytes = bn_tern_row_bytes(k.ti, w->K);
    k.clean = clean;
    return k;
}

/* ---- kernel level ---- */

static void check_gemv(const bn_tern_kernels *ks, const wdata *w, const uint8_t *acts, bool clean,
                       const char *what) {
    const bn_tern_w k = kw(w, clean);
    const int64_t G = w->K / 256, N = w->N;
    const bn_act_row *a = arow(acts, w->K, 0);
    int32_t *out = malloc((size_t)(N * (G + 1)) * sizeof(int32_t));
    int64_t *eg = malloc((size_t)(G + 1) * sizeof(int64_t));
    assert_non_null(out);
    assert_non_null(eg);
    for (int group = 0; group < 2; group++) {
        if (group && w->type == BN_TYPE_I2_S) continue;
        /* rows [1, N) in one call and row 0 alone: offsets and single rows */
        ks->gemv[k.ti](&k, 0, 1, a->q, out, group);
        if (N > 1) ks->gemv[k.ti](&k, 1, N, a->q, out + (group ? G : 1), group);
        for (int64_t n = 0; n < N; n++) {
            int64_t e;
            expect_sums(w, n, a->q, &e, eg);
            if (!group) {
                if ((int64_t)out[n] != e)
                    fail_msg("%s gemv %s %s row %lld: %d, want %lld", ks->name,
                             bn_type_name(w->type), what, (long long)n, out[n], (long long)e);
            } else {
                for (int64_t g = 0; g < G; g++)
                    if ((int64_t)out[n * G + g] != eg[g])
                        fail_msg("%s gemv(group) %s %s row %lld block %lld: %d, want %lld",
                                 ks->name, bn_type_name(w->type), what, (long long)n, (long long)g,
                                 out[n * G + g], (long long)eg[g]);
            }
        }
    }
    free(out);
    free(eg);
}

static void check_unpack(const bn_tern_kernels *ks, const wdata *w, const char *what) {
    const bn_tern_w k = kw(w, false);
    const int64_t K = w->K, N = w->N, step = w->type == BN_TYPE_I2_S ? 128 : 256;
    uint8_t *ref = malloc((size_t)K), *got = malloc((size_t)(K * N));
    float *sc = malloc((size_t)(K / 256 + 1) * sizeof(float));
    assert_non_null(ref);
    assert_non_null(got);
    assert_non_null(sc);
    /* all rows from element `step` on (an offset), then the first block alone */
    const int64_t k0 = K > step ? step : 0;
    ks->unpack[k.ti](&k, 0, N, k0, K - k0, got, (size_t)K);
    if (k0) ks->unpack[k.ti](&k, 0, N, 0, k0, got + (K - k0), (size_t)K);
    for (int64_t n = 0; n < N; n++) {
        bn_ternary_row_codes(w->type, w->data, K, N, n, ref, sc);
        const uint8_t *g = got + n * K;
        for (int64_t i = 0; i < K; i++) {
            const uint8_t want = ref[(i < K - k0) ? i + k0 : i - (K - k0)];
            if (g[i] != want)
                fail_msg("%s unpack %s %s row %lld element %lld: %d, want %d", ks->name,
                         bn_type_name(w->type), what, (long long)n, (long long)i, g[i], want);
        }
    }
    free(ref);
    free(got);
    free(sc);
}

/* The micro-kernel on random codes 0..3 and activations (random or all -128). */
static void check_gemm(const bn_tern_kernels *ks, int64_t kn, int fill, int cfill, bt_rng *r) {
    const size_t ldc = (size_t)kn + 32;
    uint8_t *codes = malloc(ldc * BN_TERN_MR);
    int8_t *q[BN_TERN_NT];
    assert_non_null(codes);
    for (size_t i = 0; i < ldc * BN_TERN_MR; i++)
        codes[i] = (uint8_t)(cfill ? cfill : bt_rng_int(r, 0, 3));
    for (int t = 0; t < BN_TERN_NT; t++) {
        q[t] = malloc((size_t)kn);
        assert_non_null(q[t]);
        for (int64_t i = 0; i < kn; i++) q[t][i] = (int8_t)(fill ? fill : bt_rng_int(r, -128, 127));
    }
    char why[256];
    const int bad = bt_gemm_mismatches(ks, codes, ldc, q, kn, why, sizeof why);
    if (bad) fail_msg("%s (%d outputs differ)", why, bad);
    for (int t = 0; t < BN_TERN_NT; t++) free(q[t]);
    free(codes);
}

TEST(test_kernels) {
    bt_rng r = bt_rng_new(1);
    int tested = 0;
    for (int ti = 0; ti < N_TABLES; ti++) {
        const bn_tern_kernels *ks = bn_cpu_ternary_table(table_names[ti]);
        if (!ks) continue;
        tested++;
        const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
        for (int y = 0; y < 3; y++) {
            const uint32_t type = types[y];
            const int64_t Ks[] = {256, 512, 768, 2560, 384, 640, 128};
            for (int a = 0; a < 7; a++) {
                const int64_t K = Ks[a];
                if (type != BN_TYPE_I2_S && K % 256) continue;
                const int64_t Ns[] = {1, 4, 5, 33}; /* rows 1.. : 3, 4, 32 */
                for (int b = 0; b < 4; b++)
                    for (int kind = W_RANDOM; kind <= W_RAWBYTES; kind++) {
                        if (kind == W_RAWBYTES && type != BN_TYPE_TQ1_0) continue;
                        if (kind == W_CODE3 && type == BN_TYPE_TQ1_0) continue;
                        wdata w = make_weight(type, K, Ns[b], kind, kind != W_RANDOM, &r);
                        const int fills[3] = {0, -128, 127};
                        for (int f = 0; f < 3; f++) {
                            uint8_t *acts = make_acts(K, 1, fills[f], 0, &r);
                            char what[64];
                            snprintf(what, sizeof what, "K %lld N %lld kind %d fill %d",
                                     (long long)K, (long long)Ns[b], kind, fills[f]);
                            check_gemv(ks, &w, acts, false, what);
                            if (kind != W_CODE3) check_gemv(ks, &w, acts, true, what);
                            free(acts);
                        }
                        check_unpack(ks, &w, "");
                        free(w.data);
                    }
            }
        }
        const int64_t kns[] = {32, 96, 256, 1024 + 256, 2048 + 32, 4096};
        for (int i = 0; i < 6; i++) {
            check_gemm(ks, kns[i], 0, 0, &r);
            check_gemm(ks, kns[i], -128, 0, &r);
            check_gemm(ks, kns[i], -128, 3, &r);
        }
    }
    assert_true(tested >= 1);
}

/* ---- node level ---- */

typedef struct mapped {
    bn_mapping map;
    char path[4096];
} mapped;

/* The weight's bytes in a file mapping (as model weights are), so it can be prepared. */
static const uint8_t *map_weight(const wdata *w, mapped *m, const char *name) {
    snprintf(m->path, sizeof m->path, "%s", bt_tmp_path(name));
    assert_int_equal(bt_write_file(m->path, w->data, w->bytes), 0);
    bn_err err;
    assert_int_equal(bn_map_file(m->path, &m->map, &err), BN_OK);
    return m->map.data;
}

static void unmap_weight(mapped *m) {
    bn_unmap_file(&m->map);
    remove(m->path);
}

/* Runs node with the current table, as nth threads one after another. */
static void run(bn_tensor *y, int nth) {
    size_t sb = bn_cpu_scratch_bytes(y);
    void *scratch = aligned_alloc(64, (sb + 63) / 64 * 64 + 64);
    assert_non_null(scratch);
    memset(y->data, 0xff, bn_tensor_nbytes(y)); /* NaNs: every output must be written */
    for (int i = 0; i < nth; i++) bn_cpu_compute(y, i, nth, scratch);
    free(scratch);
}

static const int owner_tag; /* the owner of the preparations made here */

/* A MATMUL_TERNARY node on w (file-mapped) and acts; relu: its input is RELU_SQR -> QUANTIZE. */
typedef struct mm_graph {
    bn_graph *g;
    bn_tensor *y;
    mapped m;
} mm_graph;

static mm_graph make_mm(const wdata *w, uint8_t *acts, int64_t T, bool relu, const char *name) {
    mm_graph mg = {0};
    mg.g = bn_graph_new();
    assert_non_null(mg.g);
    bn_tensor *wt = bn_new_tensor(mg.g, w->type, w->K, w->N, "w");
    wt->data = (void *)map_weight(w, &mg.m, name);
    wt->flags |= BN_TENSOR_WEIGHT;
    bn_tensor *xq;
    if (relu) {
        bn_tensor *x = bn_new_tensor(mg.g, BN_TYPE_F32, w->K, T, "x");
        xq = bn_quantize_act(mg.g, bn_relu_sqr(mg.g, x));
    } else {
        xq = bn_new_tensor(mg.g, BN_TYPE_ACT_Q8, w->K, T, "xq");
    }
    xq->data = acts; /* filled by hand: the chain above only marks where it comes from */
    mg.y = bn_matmul_ternary(mg.g, wt, xq);
    mg.y->data = malloc(bn_tensor_nbytes(mg.y));
    assert_non_null(mg.y->data);
    bn_err err;
    assert_int_equal(bn_cpu_check_node(mg.y, &err), BN_OK);
    return mg;
}

static void free_mm(mm_graph *mg) {
    free(mg->y->data);
    unmap_weight(&mg->m);
    bn_graph_free(mg->g);
}

/* The node with every table (unprepared, then prepared) must match the reference byte for byte.
 * Returns the layout the preparation chose. */
static int check_node_fill(const wdata *w, int64_t T, int fill, double zeros, bool relu, bt_rng *r,
                           const char *what) {
    uint8_t *acts = make_acts(w->K, T, fill, zeros, r);
    mm_graph mg = make_mm(w, acts, T, relu, "tk_weight.bin");
    const size_t ob = bn_tensor_nbytes(mg.y);
    float *ref = malloc(ob);
    assert_non_null(ref);
    bn_cpu_ternary_select("reference", NULL);
    run(mg.y, 1);
    memcpy(ref, mg.y->data, ob);
    int layout = -1;
    for (int prepared = 0; prepared < 2; prepared++) {
        if (prepared) {
            bn_err err;
            assert_int_equal(bn_tern_prepare(mg.y, &owner_tag, &err), BN_OK);
            const bn_tern_prep *p = bn_tern_lookup(mg.y->src[0]);
            assert_non_null(p);
            layout = p->layout;
        }
        for (int ti = 0; ti < N_TABLES; ti++) {
            if (!bn_cpu_ternary_table(table_names[ti])) continue;
            bool ok;
            bn_cpu_ternary_select(table_names[ti], &ok);
            assert_true(ok);
            for (int nth = 1; nth <= 3; nth += 2) {
                run(mg.y, nth);
                if (memcmp(mg.y->data, ref, ob)) {
                    const float *y = mg.y->data;
                    for (size_t i = 0; i < ob / 4; i++)
                        if (memcmp(&y[i], &ref[i], 4))
                            fail_msg("%s %s T %lld prepared %d (layout %d) nth %d: y[%zu] = %.9g, "
                                     "reference %.9g",
                                     table_names[ti], what, (long long)T, prepared, layout, nth, i,
                                     (double)y[i], (double)ref[i]);
                }
            }
        }
    }
    bn_tern_release(&owner_tag);
    assert_null(bn_tern_lookup(mg.y->src[0]));
    bn_cpu_ternary_select("auto", NULL);
    free(ref);
    free(acts);
    free_mm(&mg);
    return layout;
}

static int check_node(const wdata *w, int64_t T, double zeros, bool relu, bt_rng *r,
                      const char *what) {
    return check_node_fill(w, T, 0, zeros, relu, r, what);
}

/* Rows as long as FORMATS.md allows (K = 2^23): lanes of the kernels'
 * accumulators near and past their int32 range. I2_S +1 weights against
 * q = -128 give C = -2^31 exactly. TQ2_0 code 3 against q = 127 gives a C
 * that wraps in int32 (S = C - Q still fits, which is what the driver uses),
 * so it is compared modulo 2^32; in a kernel that keeps the field shifted up
 * (ternary_avx512.c) one lane would pass 2^31 without its chunking. Then a
 * random row past one chunk of 2^20 elements. */
TEST(test_long_rows) {
    bt_rng r = bt_rng_new(7);
    const int64_t K = (int64_t)1 << 23;
    wdata i2s = make_weight(BN_TYPE_I2_S, K, 1, W_PLUS, true, &r);
    wdata tq2 = make_weight(BN_TYPE_TQ2_0, K, 1, W_ALL3, true, &r);
    int8_t *qm = malloc((size_t)K), *qp = malloc((size_t)K);
    assert_non_null(qm);
    assert_non_null(qp);
    memset(qm, -128, (size_t)K);
    memset(qp, 127, (size_t)K);
    const int64_t Kr = ((int64_t)1 << 21) + 384;
    wdata rnd = make_weight(BN_TYPE_I2_S, Kr, 3, W_RANDOM, true, &r);
    uint8_t *acts = make_acts(Kr, 1, 0, 0, &r);
    for (int ti = 0; ti < N_TABLES; ti++) {
        const bn_tern_kernels *ks = bn_cpu_ternary_table(table_names[ti]);
        if (!ks) continue;
        int32_t out = 0;
        const bn_tern_w ki = kw(&i2s, true), kt = kw(&tq2, true);
        ks->gemv[BN_TK_I2S](&ki, 0, 1, qm, &out, false);
        if ((int64_t)out != 2 * -128 * K)
            fail_msg("%s gemv I2_S K 2^23: %d, want %lld", ks->name, out,
                     (long long)(2 * -128 * K));
        ks->gemv[BN_TK_TQ2](&kt, 0, 1, qp, &out, false);
        const uint32_t want = (uint32_t)(3 * 127 * K); /* C mod 2^32 */
        if ((uint32_t)out != want)
            fail_msg("%s gemv TQ2_0 K 2^23 code 3: %u, want %u mod 2^32", ks->name, (uint32_t)out,
                     want);
        check_gemv(ks, &rnd, acts, true, "K 2^21 + 384");
        /* the several-token kernels, every group size, with the same rows */
        for (int nt = 1; ks->gemv_multi[BN_TK_I2S] && nt <= BN_TERN_NT; nt++) {
            const int8_t *qs[BN_TERN_NT] = {qm, qm, qm, qm}, *ps[BN_TERN_NT] = {qp, qp, qp, qp};
            int32_t o[BN_TERN_NT];
            ks->gemv_multi[BN_TK_I2S](&ki, 0, 1, qs, nt, o, 1);
            for (int t = 0; t < nt; t++)
                if ((int64_t)o[t] != 2 * -128 * K)
                    fail_msg("%s gemv_multi I2_S K 2^23 nt %d token %d: %d", ks->name, nt, t, o[t]);
            if (!ks->gemv_multi[BN_TK_TQ2]) continue;
            ks->gemv_multi[BN_TK_TQ2](&kt, 0, 1, ps, nt, o, 1);
            for (int t = 0; t < nt; t++)
                if ((uint32_t)o[t] != want)
                    fail_msg("%s gemv_multi TQ2_0 K 2^23 code 3 nt %d token %d: %u", ks->name, nt,
                             t, (uint32_t)o[t]);
        }
    }
    free(acts);
    free(rnd.data);
    free(qm);
    free(qp);
    free(i2s.data);
    free(tq2.data);
}

TEST(test_nodes) {
    bt_rng r = bt_rng_new(2);
    bn_tern_set_layouts(0, 0); /* the file's own layout here */
    const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    for (int y = 0; y < 3; y++)
        for (int shared = 0; shared < 2; shared++) {
            if (!shared && types[y] == BN_TYPE_I2_S) continue;
            const int64_t shapes[][2] = {{256, 1}, {512, 37}, {2560, 130}, {8448, 5}, {384, 17}};
            for (int s = 0; s < 5; s++) {
                const int64_t K = shapes[s][0], N = shapes[s][1];
                if (types[y] != BN_TYPE_I2_S && K % 256) continue;
                wdata w = make_weight(types[y], K, N, W_RANDOM, shared, &r);
                /* one token, a few (several-token kernels or mat-vecs), then the GEMM */
                const int64_t Ts[] = {1, 2, 5, 13, 70};
                for (int t = 0; t < 5; t++) {
                    char what[64];
                    snprintf(what, sizeof what, "%s K %lld N %lld shared %d",
                             bn_type_name(types[y]), (long long)K, (long long)N, shared);
                    check_node(&w, Ts[t], 0, false, &r, what);
                }
                free(w.data);
            }
        }
    /* the largest products everywhere (all codes 3 / +1, every q = -128) */
    for (int y = 0; y < 3; y++) {
        wdata w = make_weight(types[y], 2560, 40, y == 1 ? W_ALL3 : W_PLUS, true, &r);
        check_node_fill(&w, 1, -128, 0, false, &r, "at the bound");
        check_node_fill(&w, 9, -128, 0, false, &r, "at the bound");
        free(w.data);
    }
    /* weights with I2_S code 3 and TQ2_0 code 3, prepared and not */
    for (int y = 0; y < 2; y++) {
        wdata w = make_weight(types[y], 512, 9, W_CODE3, true, &r);
        check_node(&w, 1, 0, false, &r, "code 3");
        check_node(&w, 3, 0, false, &r, "code 3");
        check_node(&w, 8, 0, false, &r, "code 3");  /* several tokens at once, or mat-vecs */
        check_node(&w, 16, 0, false, &r, "code 3"); /* the same, or the GEMM (AVX2) */
        check_node(&w, 36, 0, false, &r, "code 3"); /* full 4 x 4 GEMM tiles */
        free(w.data);
    }
    bn_tern_set_layouts(-1, -1);
}

TEST(test_sparse_columns) {
    bt_rng r = bt_rng_new(3);
    bn_tern_set_layouts(1, 0);
    const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    const double zeros[] = {0.0, 0.5, 0.9, 1.0};
    for (int y = 0; y < 3; y++) {
        const int64_t shapes[][2] = {{512, 130}, {1024, 256}, {768, 1}};
        for (int s = 0; s < 3; s++) {
            wdata w = make_weight(types[y], shapes[s][0], shapes[s][1], W_RANDOM, true, &r);
            for (int z = 0; z < 4; z++)
                for (int64_t T = 1; T <= 19; T += 18) {
                    char what[64];
                    snprintf(what, sizeof what, "columns %s K %lld N %lld zeros %.1f",
                             bn_type_name(types[y]), (long long)shapes[s][0],
                             (long long)shapes[s][1], zeros[z]);
                    assert_int_equal(check_node(&w, T, zeros[z], true, &r, what), BN_TERN_COLS);
                }
            free(w.data);
        }
    }
    /* the int16 accumulators at their bound: every product 3 * -128 (TQ2_0) or 2 * -128 */
    for (int y = 0; y < 2; y++) {
        wdata w = make_weight(types[y], 2048, 256, y ? W_ALL3 : W_PLUS, true, &r);
        assert_int_equal(check_node_fill(&w, 1, -128, 0, true, &r, "columns at the bound"),
                         BN_TERN_COLS);
        free(w.data);
    }
    /* TQ2_0 code 3 (weight 2) is kept by the column layout too */
    wdata w = make_weight(BN_TYPE_TQ2_0, 512, 40, W_CODE3, true, &r);
    assert_int_equal(check_node(&w, 1, 0.5, true, &r, "columns code 3"), BN_TERN_COLS);
    free(w.data);
    /* not after a ReLU^2, or with per-block scales: the file's layout */
    w = make_weight(BN_TYPE_TQ2_0, 512, 40, W_RANDOM, false, &r);
    assert_int_equal(check_node(&w, 1, 0.5, true, &r, "per-block scales"), BN_TERN_ROWS);
    free(w.data);
    w = make_weight(BN_TYPE_I2_S, 512, 40, W_RANDOM, true, &r);
    assert_int_equal(check_node(&w, 1, 0.5, false, &r, "no relu"), BN_TERN_ROWS);
    free(w.data);
    bn_tern_set_layouts(-1, -1);
}

TEST(test_lookup_tables) {
    bt_rng r = bt_rng_new(4);
    bn_tern_set_layouts(0, 2); /* every type */
    const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    for (int y = 0; y < 3; y++) {
        const int64_t shapes[][2] = {{256, 1}, {512, 33}, {2560, 64}, {384, 70}, {8448, 3}};
        for (int s = 0; s < 5; s++) {
            if (types[y] != BN_TYPE_I2_S && shapes[s][0] % 256) continue;
            for (int kind = W_RANDOM; kind <= W_MINUS; kind++) {
                wdata w = make_weight(types[y], shapes[s][0], shapes[s][1], kind, true, &r);
                for (int64_t T = 1; T <= 7; T += 6) {
                    char what[64];
                    snprintf(what, sizeof what, "lut %s K %lld N %lld kind %d",
                             bn_type_name(types[y]), (long long)shapes[s][0],
                             (long long)shapes[s][1], kind);
                    assert_int_equal(check_node(&w, T, 0, false, &r, what), BN_TERN_LUT);
                }
                free(w.data);
            }
        }
    }
    /* the int16 accumulators at their bound: every group 3 * -128 */
    for (int y = 0; y < 3; y++) {
        wdata w = make_weight(types[y], 8448, 40, W_PLUS, true, &r);
        assert_int_equal(check_node_fill(&w, 1, -128, 0, false, &r, "lut at the bound"),
                         BN_TERN_LUT);
        free(w.data);
    }
    /* I2_S code 3 is weight 0 in the tables; TQ2_0 code 3 cannot be stored: rows layout */
    wdata w = make_weight(BN_TYPE_I2_S, 512, 40, W_CODE3, true, &r);
    assert_int_equal(check_node(&w, 1, 0, false, &r, "lut i2s code 3"), BN_TERN_LUT);
    free(w.data);
    w = make_weight(BN_TYPE_TQ2_0, 512, 40, W_CODE3, true, &r);
    assert_int_equal(check_node(&w, 1, 0, false, &r, "lut tq2 code 3"), BN_TERN_ROWS);
    free(w.data);
    /* default: TQ1_0 where the table in use prefers it (AVX2) */
    bn_tern_set_layouts(0, 1);
    w = make_weight(BN_TYPE_TQ1_0, 512, 40, W_RANDOM, true, &r);
    const bn_tern_kernels *use = bn_cpu_ternary();
    assert_int_equal(check_node(&w, 1, 0, false, &r, "lut default tq1"),
                     use && use->lut_for_tq1 ? BN_TERN_LUT : BN_TERN_ROWS);
    if (bn_cpu_ternary_table("avx2")) { /* and with AVX2 in use, it does */
        bn_cpu_ternary_select("avx2", NULL);
        bn_tern_set_layouts(0, 1);
        uint8_t *acts = make_acts(512, 1, 0, 0, &r);
        mm_graph mg = make_mm(&w, acts, 1, false, "tk_lutdefault.bin");
        bn_err err;
        assert_int_equal(bn_tern_prepare(mg.y, &owner_tag, &err), BN_OK);
        assert_int_equal(bn_tern_lookup(mg.y->src[0])->layout, BN_TERN_LUT);
        bn_tern_release(&owner_tag);
        free_mm(&mg);
        free(acts);
        bn_cpu_ternary_select("auto", NULL);
    }
    free(w.data);
    w = make_weight(BN_TYPE_I2_S, 512, 40, W_RANDOM, true, &r);
    assert_int_equal(check_node(&w, 1, 0, false, &r, "lut default i2s"), BN_TERN_ROWS);
    free(w.data);
    bn_tern_set_layouts(-1, -1);
}

/* Preparation is per owner and shared; heap weights are not prepared. */
TEST(test_prepare_owners) {
    bt_rng r = bt_rng_new(5);
    wdata w = make_weight(BN_TYPE_TQ2_0, 512, 8, W_RANDOM, true, &r);
    uint8_t *acts = make_acts(512, 1, 0, 0, &r);
    mm_graph mg = make_mm(&w, acts, 1, false, "tk_owner.bin");
    static const int a, b;
    bn_err err;
    assert_int_equal(bn_tern_prepare(mg.y, &a, &err), BN_OK);
    const bn_tern_prep *p = bn_tern_lookup(mg.y->src[0]);
    assert_non_null(p);
    assert_true(p->uniform);
    assert_int_equal(bn_tern_prepare(mg.y, &b, &err), BN_OK);
    assert_ptr_equal(bn_tern_lookup(mg.y->src[0]), p); /* one preparation for both */
    bn_tern_release(&a);
    assert_ptr_equal(bn_tern_lookup(mg.y->src[0]), p);
    bn_tern_release(&b);
    assert_null(bn_tern_lookup(mg.y->src[0]));
    /* the same weight in heap memory: not prepared */
    void *file = mg.y->src[0]->data;
    mg.y->src[0]->data = w.data;
    assert_int_equal(bn_tern_prepare(mg.y, &a, &err), BN_OK);
    assert_null(bn_tern_lookup(mg.y->src[0]));
    mg.y->src[0]->data = file;
    bn_tern_release(&a);
    free(acts);
    free_mm(&mg);
    free(w.data);
}

TEST(test_dispatch) {
    const unsigned f = bn_cpu_features();
    const bn_tern_kernels *best = bn_cpu_ternary_table("auto");
    assert_non_null(best);
    assert_non_null(bn_cpu_ternary_table("scalar"));
    assert_null(bn_cpu_ternary_table("no-such-table"));
#if defined(__x86_64__)
    const unsigned vnni =
        BN_CPU_AVX2 | BN_CPU_AVX512F | BN_CPU_AVX512BW | BN_CPU_AVX512VL | BN_CPU_AVX512VNNI;
    const char *want = (f & vnni) == vnni ? "avx512vnni" : (f & BN_CPU_AVX2) ? "avx2" : "scalar";
    assert_string_equal(best->name, want);
    assert_true(!bn_cpu_ternary_table("avx2") == !(f & BN_CPU_AVX2));
    printf("CPU features %#x: ternary kernels %s\n", f, best->name);
#else
    (void)f;
#endif
    bool ok;
    assert_null(bn_cpu_ternary_select("reference", &ok));
    assert_true(ok);
    assert_string_equal(bn_cpu_ternary_name(), "reference");
    assert_null(bn_cpu_ternary_select("no-such-table", &ok));
    assert_false(ok);
    assert_ptr_equal(bn_cpu_ternary_select("auto", &ok), best);
    assert_true(ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),      cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_nodes),         cmocka_unit_test(test_sparse_columns),
        cmocka_unit_test(test_lookup_tables), cmocka_unit_test(test_prepare_owners),
        cmocka_unit_test(test_long_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
