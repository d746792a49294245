/* ternary_kernels.c - bench_ternary_kernels: speed of the CPU backend's
 * ternary kernels (backends/cpu/ternary.h) against this machine's memory read
 * bandwidth, measured in the same run.
 *
 * Decode: a mat-vec of a K x N weight (default 2560 x 6912, the 2B-4T
 * feed-forward gate/up shape; ffn_down is N x K) with one token, through
 * MATMUL_TERNARY and bn_cpu_compute on a thread pool, as the engine runs it.
 * The weight is stored in many copies in one file mapping (a model's weights
 * are a file mapping too), prepared like model weights; the copies are used
 * in turn, so each mat-vec reads its weight from memory, not from the caches.
 * Figure: GB/s of weight bytes = file-layout bytes of one weight / time per
 * mat-vec (for repacked layouts too, so figures compare as tokens per
 * second), and the ratio to the read bandwidth: the bytes of one copy OR-ed
 * into vector registers by the same threads (as bench_bandwidth does).
 *
 * Every variant (kernel table x layout) and the read baseline own a share of
 * the copies and are timed interleaved, copy by copy, so that all see the
 * same load from other processes; each figure is the best (shortest) of its
 * samples, the read baseline's too. On a quiet machine best and typical
 * agree; on a busy one the best is what the code does when it has the core.
 *
 * Prefill: the same weights with 128 tokens (the blocked GEMM), as multiply-
 * adds per second and as the speed-up over 128 separate mat-vecs; on CPUs
 * with AVX-512 VNNI its first row is the dot-product instruction's own issue
 * rate (dot_peak), the ceiling of the VNNI GEMM.
 *
 * ReLU^2 sparsity: the ffn_down shape (6912 inputs), its activations a given
 * share of exact zeros, in the file's row layout and in the column layout
 * that skips the columns of zero inputs.
 *
 * usage: bench_ternary_kernels [-t 1,2] [-m MIB] [-r REPS] [-k K] [-n N] [-s SECTIONS] [-q]
 *   -m  total size of the weight copies per type (default 512 MiB)
 *   -r  timed passes over the copies (default 5)
 *   -s  sections to run, comma-separated: decode, sparse, prefill (default all)
 *   -q  quick: fewer repetitions (a smoke test) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "cpu/cpu_ops.h"
#include "cpu/ternary.h"
#include "cpu/threadpool.h"
#include "ir.h"
#include "os.h"

#define MAX_COPIES 1024

typedef struct bench {
    int64_t K, N;
    uint32_t type;
    size_t wbytes; /* bytes of one weight in its file layout */
    int copies;
    bn_mapping map;
    char path[512];
    bn_graph *g;
    bn_tensor *y[MAX_COPIES]; /* one MATMUL_TERNARY node per copy (T tokens) */
    uint8_t *acts;
    int64_t T;
} bench;

typedef struct run_ctx {
    bn_tensor *const *nodes;
    int n;
    void **scratch;
} run_ctx;

static void run_nodes(void *p, int ith, int nth) {
    run_ctx *c = p;
    for (int i = 0; i < c->n; i++) bn_cpu_compute(c->nodes[i], ith, nth, c->scratch[ith]);
}

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* One weight of random ternary values (one scale) in the type's layout, via the reference
 * quantizer. */
static uint8_t *make_weight(uint32_t type, int64_t K, int64_t N, size_t *bytes) {
    const int64_t ne[4] = {K, N, 1, 1};
    bn_tensor_bytes(type, ne, bytes, NULL);
    float *x = malloc((size_t)(K * N) * sizeof(float));
    uint8_t *w = malloc(*bytes);
    if (!x || !w) exit(1);
    for (int64_t i = 0; i < K * N; i++) x[i] = (float)((int)(rnd() % 3) - 1) * 0.5f;
    for (int64_t n = 0; n < N; n++) x[n * K] = 0.5f; /* every block has max |x| = 0.5 */
    for (int64_t n = 0; n < N; n++)
        for (int64_t b = 0; b < K / 256; b++) x[n * K + 256 * b] = 0.5f;
    bn_err err;
    if (bn_quantize(type, x, K, N, w, &err) != BN_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        exit(1);
    }
    free(x);
    return w;
}

static uint8_t *make_acts(int64_t K, int64_t T, double zeros) {
    const size_t rb = bn_act_row_bytes(K);
    uint8_t *a = calloc((size_t)T, rb);
    if (!a) exit(1);
    for (int64_t t = 0; t < T; t++) {
        bn_act_row *r = (bn_act_row *)(a + t * rb);
        int32_t s = 0;
        for (int64_t i = 0; i < K; i++) {
            int q = (int)(rnd() % 255) - 127;
            if ((double)(rnd() % 1000000) < zeros * 1e6) q = 0;
            r->q[i] = (int8_t)q;
            s += q;
        }
        r->s = 1.0f;
        r->sum = s;
    }
    return a;
}

/* Writes `copies` copies of the weight into a file and maps it. */
static void bench_open(bench *b, uint32_t type, int64_t K, int64_t N, size_t total, int64_t T,
                       double zeros, bool relu) {
    memset(b, 0, sizeof *b);
    b->type = type;
    b->K = K;
    b->N = N;
    b->T = T;
    uint8_t *w = make_weight(type, K, N, &b->wbytes);
    b->copies = (int)(total / b->wbytes);
    if (b->copies < 1) b->copies = 1;
    if (b->copies > MAX_COPIES) b->copies = MAX_COPIES;
    static int serial; /* one file per bench: several are open at once */
    snprintf(b->path, sizeof b->path, "%s/bench_ternary_%d_%d.bin",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid(), serial++);
    FILE *f = fopen(b->path, "wb");
    if (!f) {
        perror(b->path);
        exit(1);
    }
    for (int c = 0; c < b->copies; c++)
        if (fwrite(w, 1, b->wbytes, f) != b->wbytes) exit(1);
    fclose(f);
    free(w);
    bn_err err;
    if (bn_map_file(b->path, &b->map, &err) != BN_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        exit(1);
    }
    b->acts = make_acts(K, T, zeros);
    b->g = bn_graph_new();
    bn_tensor *xq;
    if (relu) { /* marks the input as ReLU^2 output, like ffn_down's */
        bn_tensor *x = bn_new_tensor(b->g, BN_TYPE_F32, K, T, "x");
        xq = bn_quantize_act(b->g, bn_relu_sqr(b->g, x));
    } else {
        xq = bn_new_tensor(b->g, BN_TYPE_ACT_Q8, K, T, "xq");
    }
    xq->data = b->acts;
    for (int c = 0; c < b->copies; c++) {
        bn_tensor *wt = bn_new_tensor(b->g, type, K, N, "w");
        wt->data = (void *)(b->map.data + (size_t)c * b->wbytes);
        wt->flags |= BN_TENSOR_WEIGHT;
        b->y[c] = bn_matmul_ternary(b->g, wt, xq);
        b->y[c]->data = malloc(bn_tensor_nbytes(b->y[c]));
    }
}

static const int owner;

static void bench_close(bench *b) {
    bn_tern_release(&owner);
    for (int c = 0; c < b->copies; c++) free(b->y[c]->data);
    bn_graph_free(b->g);
    free(b->acts);
    bn_unmap_file(&b->map);
    unlink(b->path);
}

/* ---- read bandwidth of the mapping: each thread ORs its share into vector registers ---- */

typedef struct bw_ctx {
    const uint8_t *p;
    size_t n;
    uint64_t sink[64];
} bw_ctx;

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n) {
    __m256i a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_si256();
    for (size_t i = 0; i + 256 <= n; i += 256)
        for (int j = 0; j < 8; j++)
            a[j] = _mm256_or_si256(
                a[j], _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 32 * j)));
    for (int j = 1; j < 8; j++) a[0] = _mm256_or_si256(a[0], a[j]);
    return (uint64_t)_mm256_extract_epi64(a[0], 0);
}
#endif

static uint64_t read_plain(const uint8_t *p, size_t n) {
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 64 <= n; i += 64)
        for (int j = 0; j < 8; j++) {
            uint64_t v;
            memcpy(&v, p + i + 8 * j, 8);
            a[j] |= v;
        }
    return a[0] | a[1] | a[2] | a[3] | a[4] | a[5] | a[6] | a[7];
}

static void bw_run(void *p, int ith, int nth) {
    bw_ctx *c = p;
    size_t per = c->n / (size_t)nth / 256 * 256;
#if defined(__x86_64__) || defined(__i386__)
    if (bn_cpu_features() & BN_CPU_AVX2) {
        c->sink[ith] += read_avx2(c->p + per * (size_t)ith, per);
        return;
    }
#endif
    c->sink[ith] += read_plain(c->p + per * (size_t)ith, per);
}

/* The issue rate of the VNNI dot product on this core: twelve independent
 * 256-bit vpdpbusd accumulators (32 byte multiply-adds each) that never leave
 * their registers, no loads, no other work. No GEMM built on the instruction
 * can beat it; the prefill table gives it as its first row. (x86-64 only; the
 * caller checks that the CPU has AVX-512 VNNI.) */
#define PEAK_STEPS 20000000L /* loop iterations per thread: 240 M instructions */
#if defined(__x86_64__)
#define DP(r) "vpdpbusd %%ymm14, %%ymm15, %%ymm" #r "\n"
static void dot_peak_run(void *p, int ith, int nth) {
    (void)p;
    (void)ith;
    (void)nth;
    __asm__ volatile("mov %0, %%rcx\n"
                     "1:\n" DP(0) DP(1) DP(2) DP(3) DP(4) DP(5) DP(6) DP(7) DP(8) DP(9) DP(10)
                         DP(11) "dec %%rcx\n"
                                "jnz 1b\n"
                     :
                     : "r"(PEAK_STEPS)
                     : "rcx", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
                       "xmm8", "xmm9", "xmm10", "xmm11", "xmm14", "xmm15");
}
#undef DP
#endif

static bool dot_peak_runs(void) {
#if defined(__x86_64__)
    return bn_cpu_ternary_table("avx512vnni") != NULL;
#else
    return false;
#endif
}

/* GMAC/s of dot_peak_run on every thread of pool (best of 3); dot_peak_runs() first. */
static double dot_peak(bn_pool *pool) {
#if defined(__x86_64__)
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        const double t0 = bn_time_sec();
        bn_pool_run(pool, dot_peak_run, NULL);
        const double dt = bn_time_sec() - t0;
        if (dt < best) best = dt;
    }
    return (double)bn_pool_size(pool) * PEAK_STEPS * 12 * 32 / best / 1e9;
#else
    (void)pool;
    return 0;
#endif
}

/* ---- the runs ---- */

static const char *tname(uint32_t t) {
    return bn_type_name(t);
}

/* ---- interleaved timing ----
 * A variant is a kernel table (or "read": the bandwidth baseline) and a
 * preparation; copy c of a bench belongs to variant c % nv. */
typedef struct variant {
    const char *table; /* NULL: read the copy's bytes */
    int prep;          /* 0 unprepared, 1 prepared (file layout), 2 lookup tables, 3 columns */
    double best;       /* seconds */
    int max_samples;   /* 0: no limit */
    int samples;
} variant;

static void prepare_copies(bench *b, variant *v, int nv) {
    bn_err err;
    for (int c = 0; c < b->copies; c++) {
        const variant *x = &v[c % nv];
        if (!x->table || x->prep == 0) continue;
        bn_tern_set_layouts(x->prep == 3, x->prep == 2 ? 2 : 0);
        if (bn_tern_prepare(b->y[c], &owner, &err) != BN_OK) {
            fprintf(stderr, "error: %s\n", err.msg);
            exit(1);
        }
    }
    bn_tern_set_layouts(-1, -1);
}

/* reps passes over all copies with pool; fills v[].best. */
static void time_variants(bench *b, variant *v, int nv, bn_pool *pool, int passes) {
    const int nth = bn_pool_size(pool);
    size_t sb = bn_cpu_scratch_bytes(b->y[0]);
    void *scratch[64];
    for (int i = 0; i < nth; i++) scratch[i] = aligned_alloc(64, (sb + 63) / 64 * 64 + 64);
    for (int i = 0; i < nv; i++) {
        v[i].best = 1e30;
        v[i].samples = 0;
    }
    for (int p = 0; p <= passes; p++) /* pass 0 warms up (page faults, first touch) */
        for (int c = 0; c < b->copies; c++) {
            variant *x = &v[c % nv];
            if (p > 0 && x->max_samples && x->samples >= x->max_samples) continue;
            double dt;
            if (!x->table) {
                bw_ctx bc = {b->map.data + (size_t)c * b->wbytes, b->wbytes, {0}};
                double t0 = bn_time_sec();
                bn_pool_run(pool, bw_run, &bc);
                dt = bn_time_sec() - t0;
            } else {
                bn_cpu_ternary_select(x->table, NULL);
                run_ctx rc = {&b->y[c], 1, scratch};
                double t0 = bn_time_sec();
                bn_pool_run(pool, run_nodes, &rc);
                dt = bn_time_sec() - t0;
            }
            if (p > 0) {
                x->samples++;
                if (dt < x->best) x->best = dt;
            }
        }
    for (int i = 0; i < nth; i++) free(scratch[i]);
    bn_cpu_ternary_select("auto", NULL);
}

static int n_threads[8] = {1, 2}, n_nt = 2, passes = 5;
static size_t total_bytes = (size_t)512 << 20;

static const char *prep_name(int prep) {
    static const char *n[] = {"file, unprepared", "file, prepared", "lookup table", "columns"};
    return n[prep];
}

/* Decode: each type x table x layout, at each thread count. */
static void decode(int64_t K, int64_t N) {
    const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    const char *tables[] = {"reference", "scalar", "avx2", "avx512vnni", "neon", "neon-dotprod"};
    printf("\n## decode: %lld x %lld mat-vec, 1 token (GB/s of file-layout weight bytes; ratio to "
           "the read bandwidth of the same threads)\n\n",
           (long long)K, (long long)N);
    printf("| type | kernels | layout |");
    for (int i = 0; i < n_nt; i++) printf(" %d thr GB/s | ratio |", n_threads[i]);
    printf("\n|---|---|---|");
    for (int i = 0; i < n_nt; i++) printf("---|---|");
    printf("\n");
    for (int y = 0; y < 3; y++) {
        variant v[32];
        int nv = 0;
        v[nv++] = (variant){NULL, 0, 0, 0, 0};
        for (int t = 0; t < 6; t++) {
            if (t > 0 && !bn_cpu_ternary_table(tables[t])) continue;
            for (int prep = 0; prep < 3; prep++) {
                if (t == 0 && prep > 0) continue; /* the reference ignores preparations */
                /* the reference and plain C are ~50x slower: a few samples */
                v[nv++] = (variant){tables[t], prep, 0, t < 2 ? 3 : 0, 0};
            }
        }
        bench b;
        bench_open(&b, types[y], K, N, total_bytes, 1, 0, false);
        prepare_copies(&b, v, nv);
        double res[8][32];
        for (int i = 0; i < n_nt; i++) {
            bn_pool *pool = bn_pool_new(n_threads[i]);
            time_variants(&b, v, nv, pool, passes);
            for (int j = 0; j < nv; j++) res[i][j] = v[j].best;
            bn_pool_free(pool);
        }
        for (int j = 0; j < nv; j++) {
            printf("| %s | %s | %s |", tname(types[y]), v[j].table ? v[j].table : "memory read",
                   v[j].table ? prep_name(v[j].prep) : "");
            for (int i = 0; i < n_nt; i++) {
                double gbps = (double)b.wbytes / res[i][j] / 1e9,
                       bw = (double)b.wbytes / res[i][0] / 1e9;
                printf(" %.1f | %.2f |", gbps, gbps / bw);
            }
            printf("\n");
        }
        fflush(stdout);
        bench_close(&b);
    }
}

/* ReLU^2 inputs: rows vs columns at several shares of zero activations. */
static void sparse(int64_t K, int64_t N) {
    const uint32_t types[2] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0};
    const double zeros[] = {0.0, 0.25, 0.5, 0.75};
    const char *best = bn_cpu_ternary_table("auto")->name;
    printf("\n## ReLU^2 sparsity: %lld x %lld mat-vec (ffn_down), share of zero activations; %s "
           "kernels; GB/s of file-layout bytes (ratio to the read bandwidth)\n\n",
           (long long)K, (long long)N, best);
    printf("| type | zeros | layout |");
    for (int i = 0; i < n_nt; i++) printf(" %d thr GB/s | ratio |", n_threads[i]);
    printf("\n|---|---|---|");
    for (int i = 0; i < n_nt; i++) printf("---|---|");
    printf("\n");
    for (int y = 0; y < 2; y++)
        for (int z = 0; z < 4; z++) {
            variant v[3] = {{NULL, 0, 0, 0, 0}, {best, 1, 0, 0, 0}, {best, 3, 0, 0, 0}};
            bench b;
            bench_open(&b, types[y], K, N, total_bytes, 1, zeros[z], true);
            prepare_copies(&b, v, 3);
            double res[8][3];
            for (int i = 0; i < n_nt; i++) {
                bn_pool *pool = bn_pool_new(n_threads[i]);
                time_variants(&b, v, 3, pool, passes);
                for (int j = 0; j < 3; j++) res[i][j] = v[j].best;
                bn_pool_free(pool);
            }
            for (int j = 1; j < 3; j++) {
                printf("| %s | %.0f %% | %s |", tname(types[y]), zeros[z] * 100,
                       j == 1 ? "file rows" : "columns (skips zeros)");
                for (int i = 0; i < n_nt; i++) {
                    double gbps = (double)b.wbytes / res[i][j] / 1e9,
                           bw = (double)b.wbytes / res[i][0] / 1e9;
                    printf(" %.1f | %.2f |", gbps, gbps / bw);
                }
                printf("\n");
            }
            fflush(stdout);
            bench_close(&b);
        }
}

/* Prefill: T tokens per call against T separate mat-vecs (the latter from memory). */
static void prefill(int64_t K, int64_t N, int64_t T) {
    const uint32_t types[3] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    const char *tables[] = {"avx2", "avx512vnni", "neon", "neon-dotprod", "scalar"};
    printf("\n## prefill: %lld x %lld, %lld tokens per call (GMAC/s = 1e9 multiply-adds per "
           "second; speed-up = time of %lld one-token mat-vecs / time of one call)\n\n",
           (long long)K, (long long)N, (long long)T, (long long)T);
    printf("| type | kernels | layout |");
    for (int i = 0; i < n_nt; i++) printf(" %d thr GMAC/s | speed-up |", n_threads[i]);
    printf("\n|---|---|---|");
    for (int i = 0; i < n_nt; i++) printf("---|---|");
    printf("\n");
    if (dot_peak_runs()) {
        printf("| - | vpdpbusd issue rate | registers only |");
        for (int i = 0; i < n_nt; i++) {
            bn_pool *pool = bn_pool_new(n_threads[i]);
            printf(" %.0f | - |", dot_peak(pool));
            bn_pool_free(pool);
        }
        printf("\n");
    }
    for (int y = 0; y < 3; y++)
        for (int ti = 0; ti < 5; ti++) {
            const char *tab = tables[ti];
            /* the plain C table only where no SIMD table exists */
            if (!bn_cpu_ternary_table(tab) ||
                (ti == 4 && bn_cpu_ternary_table("auto") != &bn_tern_scalar))
                continue;
            for (int lay = 0; lay < 2; lay++) {
                const int prep = lay ? 2 : 1;
                variant v1[1] = {{tab, prep, 0, 0, 0}}, vT[1] = {{tab, prep, 0, 0, 0}};
                bench one, many;
                bench_open(&one, types[y], K, N, total_bytes / 4, 1, 0, false);
                prepare_copies(&one, v1, 1);
                bench_open(&many, types[y], K, N, 4 * one.wbytes, T, 0, false);
                prepare_copies(&many, vT, 1);
                printf("| %s | %s | %s |", tname(types[y]), tab, lay ? "lookup table" : "file");
                for (int i = 0; i < n_nt; i++) {
                    bn_pool *pool = bn_pool_new(n_threads[i]);
                    time_variants(&one, v1, 1, pool, passes);
                    time_variants(&many, vT, 1, pool, passes);
                    printf(" %.0f | %.1f |", (double)(K * N * T) / vT[0].best / 1e9,
                           v1[0].best * (double)T / vT[0].best);
                    bn_pool_free(pool);
                }
                printf("\n");
                fflush(stdout);
                bench_close(&one);
                bench_close(&many);
            }
        }
}

int main(int argc, char **argv) {
    int64_t K = 2560, N = 6912;
    const char *sections = "decode,sparse,prefill";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            n_nt = 0;
            for (char *s = strtok(argv[++i], ","); s && n_nt < 8; s = strtok(NULL, ","))
                n_threads[n_nt++] = atoi(s) > 0 ? atoi(s) : 1;
        } else if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            total_bytes = (size_t)atol(argv[++i]) << 20;
        } else if (!strcmp(argv[i], "-r") && i + 1 < argc) {
            passes = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        } else if (!strcmp(argv[i], "-k") && i + 1 < argc) {
            K = atol(argv[++i]);
        } else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            N = atol(argv[++i]);
        } else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
            sections = argv[++i];
        } else if (!strcmp(argv[i], "-q")) {
            passes = 1;
            total_bytes = (size_t)64 << 20;
        } else {
            fprintf(stderr,
                    "usage: bench_ternary_kernels [-t 1,2] [-m MIB] [-r REPS] [-k K] [-n N] [-s "
                    "decode,sparse,prefill] [-q]\n");
            return 2;
        }
    }
    if (K % 256 || K <= 0 || N <= 0) {
        fprintf(stderr, "error: K must be a positive multiple of 256, N positive\n");
        return 2;
    }
    char feats[256];
    bn_cpu_features_string(bn_cpu_features(), feats, sizeof feats);
    printf("# bench_ternary_kernels: CPU features: %s; best kernels: %s\n", feats,
           bn_cpu_ternary_table("auto")->name);
    if (strstr(sections, "decode")) decode(K, N);
    if (strstr(sections, "sparse")) sparse(N, K);
    if (strstr(sections, "prefill")) prefill(K, N, 128);
    return 0;
}
