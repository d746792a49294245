/* test_ternary_neon.c - the NEON ternary kernels (backends/cpu/ternary_neon.c)
 * against the scalar reference, cross-compiled for Arm64 and run under
 * qemu-user by ctest (cmake/arm64-tests.cmake). No cmocka: there is no Arm64
 * build of it here; a failure prints what differs and exits 1.
 *
 * usage: test_ternary_neon EXPECTED
 *   EXPECTED is the table the dispatch must choose on this CPU: "neon-dotprod"
 *   (qemu -cpu max) or "neon" (qemu -cpu cortex-a53, no dot product).
 * Then every table this CPU runs (scalar, neon, and neon-dotprod where it
 * exists) is checked: gemv (row and group mode), unpack and the GEMM
 * micro-kernel must give, as int32, the code sums computed here in int64 from
 * the reference decoder bn_ternary_row_codes (core/quant.c); random weights
 * and activations, all weights +1 or -1, every activation -128 or 127, the
 * codes no valid file has (I2_S 3, TQ2_0 3), K not a multiple of the
 * unrolling, odd N, one row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/cpu/ternary.h"
#include "../../core/os.h"
#include "../../core/types.h"
#include "../ternary_gemm_check.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (failures++ < 20) {                                                                 \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
                fprintf(stderr, __VA_ARGS__);                                                      \
                fprintf(stderr, "\n");                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static int rnd(int lo, int hi) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (int)((rng >> 11) % (uint64_t)(hi - lo + 1));
}

enum { W_RANDOM, W_PLUS, W_MINUS, W_CODE3, W_KINDS };

typedef struct wdata {
    uint32_t type;
    int64_t K, N;
    uint8_t *data;
} wdata;

/* Packs codes (0..3) by FORMATS.md; TQ1_0 through the reference quantizer. */
static wdata make_weight(uint32_t type, int64_t K, int64_t N, int kind) {
    wdata w = {type, K, N, NULL};
    const int64_t ne[4] = {K, N, 1, 1};
    size_t bytes;
    if (bn_tensor_bytes(type, ne, &bytes, NULL) != BN_OK) exit(2);
    w.data = calloc(1, bytes);
    uint8_t *codes = malloc((size_t)(K * N));
    if (!w.data || !codes) exit(2);
    for (int64_t e = 0; e < K * N; e++) {
        int c = rnd(0, 2);
        if (kind == W_PLUS) c = 2;
        if (kind == W_MINUS) c = 0;
        if (kind == W_CODE3 && rnd(0, 3) == 0) c = 3;
        codes[e] = (uint8_t)c;
    }
    if (type == BN_TYPE_I2_S) {
        for (int64_t e = 0; e < K * N; e++)
            w.data[(e / 128) * 32 + (e % 128) % 32] |=
                (uint8_t)(codes[e] << (6 - 2 * ((e % 128) / 32)));
        const float one = 1.0f;
        memcpy(w.data + K * N / 4, &one, 4);
    } else if (type == BN_TYPE_TQ2_0) {
        for (int64_t n = 0; n < N; n++)
            for (int64_t b = 0; b < K / 256; b++) {
                uint8_t *p = w.data + (n * (K / 256) + b) * 66;
                for (int e = 0; e < 256; e++)
                    p[32 * (e / 128) + e % 32] |=
                        (uint8_t)(codes[n * K + b * 256 + e] << (2 * ((e % 128) / 32)));
                const uint16_t d = bn_f32_to_f16((float)rnd(1, 100) / 64.0f);
                p[64] = (uint8_t)d;
                p[65] = (uint8_t)(d >> 8);
            }
    } else {
        float *x = malloc((size_t)(K * N) * sizeof(float));
        if (!x) exit(2);
        for (int64_t e = 0; e < K * N; e++) x[e] = (float)((int)(codes[e] > 2 ? 2 : codes[e]) - 1);
        if (bn_quantize(type, x, K, N, w.data, NULL) != BN_OK) exit(2);
        free(x);
    }
    free(codes);
    return w;
}

static void make_acts(int8_t *q, int64_t n, int fill) {
    for (int64_t i = 0; i < n; i++) q[i] = (int8_t)(fill ? fill : rnd(-128, 127));
}

static bn_tern_w kw(const wdata *w, bool clean) {
    bn_tern_w k = {.ti = bn_tern_type_index(w->type), .data = w->data, .K = w->K, .N = w->N};
    k.row_bytes = bn_tern_row_bytes(k.ti, w->K);
    k.clean = clean;
    return k;
}

/* Reference codes of row n (code 3 of I2_S read as 1, as every kernel must). */
static void ref_codes(const wdata *w, int64_t n, uint8_t *c) {
    float sc[64];
    bn_ternary_row_codes(w->type, w->data, w->K, w->N, n, c, sc);
}

static void check_gemv(const bn_tern_kernels *ks, const wdata *w, const int8_t *q, bool clean,
                       const char *what) {
    const bn_tern_w k = kw(w, clean);
    const int64_t K = w->K, N = w->N, G = K / 256;
    int32_t *out = malloc((size_t)(N * (G + 1)) * sizeof(int32_t));
    uint8_t *c = malloc((size_t)K);
    if (!out || !c) exit(2);
    for (int group = 0; group < 2; group++) {
        if (group && w->type == BN_TYPE_I2_S) continue;
        ks->gemv[k.ti](&k, 0, 1, q, out, group);
        if (N > 1) ks->gemv[k.ti](&k, 1, N, q, out + (group ? G : 1), group);
        for (int64_t n = 0; n < N; n++) {
            ref_codes(w, n, c);
            int64_t row = 0;
            for (int64_t g = 0; g < (K + 255) / 256; g++) {
                int64_t s = 0;
                for (int64_t i = 256 * g; i < K && i < 256 * g + 256; i++)
                    s += (int64_t)c[i] * q[i];
                row += s;
                if (group)
                    CHECK(out[n * G + g] == s,
                          "%s gemv(group) %s %s row %lld block %lld: %d, want %lld", ks->name,
                          bn_type_name(w->type), what, (long long)n, (long long)g, out[n * G + g],
                          (long long)s);
            }
            if (!group)
                CHECK(out[n] == row, "%s gemv %s %s row %lld: %d, want %lld", ks->name,
                      bn_type_name(w->type), what, (long long)n, out[n], (long long)row);
        }
    }
    free(out);
    free(c);
}

static void check_unpack(const bn_tern_kernels *ks, const wdata *w) {
    const bn_tern_w k = kw(w, false);
    const int64_t K = w->K, N = w->N, step = w->type == BN_TYPE_I2_S ? 128 : 256;
    const int64_t k0 = K > step ? step : 0;
    uint8_t *got = malloc((size_t)(K * N)), *c = malloc((size_t)K);
    if (!got || !c) exit(2);
    ks->unpack[k.ti](&k, 0, N, k0, K - k0, got, (size_t)K);
    for (int64_t n = 0; n < N; n++) {
        ref_codes(w, n, c);
        for (int64_t i = 0; i < K - k0; i++)
            CHECK(got[n * K + i] == c[k0 + i], "%s unpack %s row %lld element %lld: %d, want %d",
                  ks->name, bn_type_name(w->type), (long long)n, (long long)(k0 + i),
                  got[n * K + i], c[k0 + i]);
    }
    free(got);
    free(c);
}

static void check_gemm(const bn_tern_kernels *ks, int64_t kn, int fill, int cfill) {
    const size_t ldc = (size_t)kn + 16;
    uint8_t *codes = malloc(ldc * BN_TERN_MR);
    int8_t *q[BN_TERN_NT];
    if (!codes) exit(2);
    for (size_t i = 0; i < ldc * BN_TERN_MR; i++) codes[i] = (uint8_t)(cfill ? cfill : rnd(0, 3));
    for (int t = 0; t < BN_TERN_NT; t++) {
        q[t] = malloc((size_t)kn);
        if (!q[t]) exit(2);
        make_acts(q[t], kn, fill);
    }
    char why[256];
    const int bad = bt_gemm_mismatches(ks, codes, ldc, q, kn, why, sizeof why);
    CHECK(!bad, "%s (%d outputs differ)", why, bad);
    for (int t = 0; t < BN_TERN_NT; t++) free(q[t]);
    free(codes);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_ternary_neon neon|neon-dotprod\n");
        return 2;
    }
    char feats[256];
    bn_cpu_features_string(bn_cpu_features(), feats, sizeof feats);
    const bn_tern_kernels *best = bn_cpu_ternary_table("auto");
    printf("CPU features: %s; dispatch chose %s (expected %s)\n", feats, best->name, argv[1]);
    CHECK(!strcmp(best->name, argv[1]), "dispatch chose %s, expected %s", best->name, argv[1]);
    const bool dot = !strcmp(argv[1], "neon-dotprod");
    CHECK(!bn_cpu_ternary_table("neon-dotprod") == !dot, "neon-dotprod %s on this CPU",
          dot ? "missing" : "offered");

    const char *names[] = {"scalar", "neon", "neon-dotprod"};
    int tables = 0;
    for (int ti = 0; ti < 3; ti++) {
        const bn_tern_kernels *ks = bn_cpu_ternary_table(names[ti]);
        if (!ks) continue;
        tables++;
        const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
        for (int y = 0; y < 3; y++) {
            const int64_t Ks[] = {256, 512, 2560, 384, 128};
            const int64_t Ns[] = {1, 3, 17};
            for (int a = 0; a < 5; a++) {
                if (types[y] != BN_TYPE_I2_S && Ks[a] % 256) continue;
                for (int b = 0; b < 3; b++)
                    for (int kind = 0; kind < W_KINDS; kind++) {
                        if (kind == W_CODE3 && types[y] == BN_TYPE_TQ1_0) continue;
                        wdata w = make_weight(types[y], Ks[a], Ns[b], kind);
                        int8_t *q = malloc((size_t)Ks[a]);
                        if (!q) exit(2);
                        const int fills[3] = {0, -128, 127};
                        for (int f = 0; f < 3; f++) {
                            make_acts(q, Ks[a], fills[f]);
                            char what[64];
                            snprintf(what, sizeof what, "K %lld N %lld kind %d fill %d",
                                     (long long)Ks[a], (long long)Ns[b], kind, fills[f]);
                            check_gemv(ks, &w, q, false, what);
                            if (kind != W_CODE3) check_gemv(ks, &w, q, true, what);
                        }
                        check_unpack(ks, &w);
                        free(q);
                        free(w.data);
                    }
            }
        }
        const int64_t kns[] = {16, 48, 256, 1024 + 256, 2048 + 16};
        for (int i = 0; i < 5; i++) {
            check_gemm(ks, kns[i], 0, 0);
            check_gemm(ks, kns[i], -128, 3);
        }
        printf("%s: checked\n", ks->name);
    }
    CHECK(tables == (dot ? 3 : 2), "%d tables", tables);
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("all passed\n");
    return 0;
}
