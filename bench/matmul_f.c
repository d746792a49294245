/* matmul_f.c - bench_matmul_f: speed of the CPU backend's MATMUL_F (the
 * float output head) alone, in GB/s of weights read, to compare with
 * bench_bandwidth. The default shape is BitNet-b1.58-2B-4T's head
 * (K = 2560, N = 128256), one token.
 *
 * usage: bench_matmul_f [--type f16|bf16|f32|q6_k] [-k K] [-N N] [-T T]
 *                       [-t 1,2] [-r REPS] [--scalar]
 * Weights are random; the figure is the best of REPS runs per thread count. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/cpu/cpu_ops.h"
#include "../backends/cpu/float_kernels.h"
#include "../backends/cpu/threadpool.h"
#include "../core/os.h"
#include "../core/types.h"
#include "../graph/ir.h"

typedef struct job {
    const bn_tensor *node;
    void *scratch[64];
} job;

static void run_fn(void *ctx, int ith, int nth) {
    job *j = ctx;
    bn_cpu_compute(j->node, ith, nth, j->scratch[ith]);
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

int main(int argc, char **argv) {
    const char *tname = "f16", *threads = "1,2";
    long long K = 2560, N = 128256, T = 1, reps = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--scalar")) {
            bn_cpu_float_select("scalar");
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help") || i + 1 >= argc) {
            printf("usage: bench_matmul_f [--type f16|bf16|f32|q6_k] [-k K] [-N N] [-T T] "
                   "[-t 1,2] [-r REPS] [--scalar]\n");
            return !strcmp(a, "-h") || !strcmp(a, "--help") ? 0 : 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--type"))
            tname = v;
        else if (!strcmp(a, "-k"))
            K = atoll(v);
        else if (!strcmp(a, "-N"))
            N = atoll(v);
        else if (!strcmp(a, "-T"))
            T = atoll(v);
        else if (!strcmp(a, "-t"))
            threads = v;
        else if (!strcmp(a, "-r"))
            reps = atoll(v);
        else {
            fprintf(stderr, "error: unknown option '%s'\n", a);
            return 2;
        }
    }
    int type = bn_type_from_name(tname);
    if (type < 0 || K < 1 || N < 1 || T < 1 || reps < 1) {
        fprintf(stderr, "error: bad type or shape\n");
        return 2;
    }
    int64_t ne[4] = {K, N, 1, 1};
    size_t wbytes;
    bn_err err = {0};
    if (bn_tensor_bytes((uint32_t)type, ne, &wbytes, &err) != BN_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 2;
    }
    bn_graph *g = bn_graph_new();
    bn_tensor *w = bn_new_tensor(g, (uint32_t)type, K, N, "w");
    bn_tensor *x = bn_new_tensor(g, BN_TYPE_F32, K, T, "x");
    bn_tensor *y = bn_matmul_f(g, w, x);
    w->data = malloc(wbytes);
    x->data = malloc(bn_tensor_nbytes(x));
    y->data = malloc(bn_tensor_nbytes(y));
    /* fill the weights in slices of rows (quantizing needs f32 input) */
    const int64_t rows_per = 256;
    float *tmp = malloc(sizeof(float) * (size_t)(K * rows_per));
    size_t rb;
    bn_row_bytes((uint32_t)type, K, &rb, NULL);
    for (int64_t r = 0; r < N; r += rows_per) {
        int64_t nr = N - r < rows_per ? N - r : rows_per;
        for (int64_t i = 0; i < K * nr; i++) tmp[i] = 0.05f * frand();
        if (type == BN_TYPE_Q6_K) { /* no quantizer needed: random bytes are valid Q6_K */
            uint8_t *p = (uint8_t *)w->data + (size_t)r * rb;
            for (size_t i = 0; i < rb * (size_t)nr; i++) p[i] = (uint8_t)(frand() * 127);
            for (int64_t b = 0; b < nr * (K / 256); b++) {
                uint16_t d = bn_f32_to_f16(1e-3f);
                memcpy(p + 210 * b + 208, &d, 2);
            }
        } else if (bn_quantize((uint32_t)type, tmp, K, nr, (uint8_t *)w->data + (size_t)r * rb,
                               &err) != BN_OK) {
            fprintf(stderr, "error: %s\n", err.msg);
            return 1;
        }
    }
    for (int64_t i = 0; i < K * T; i++) ((float *)x->data)[i] = frand();
    bn_err e2 = {0};
    if (bn_cpu_check_node(y, &e2) != BN_OK) {
        fprintf(stderr, "error: %s\n", e2.msg);
        return 1;
    }
    printf("# bench_matmul_f: %s [%lld x %lld], T = %lld, %.1f MB of weights, kernels %s\n", tname,
           K, N, T, (double)wbytes / 1e6, bn_cpu_float_name());
    printf("threads     ms      GB/s\n");
    for (const char *s = threads; *s;) {
        int nt = atoi(s);
        if (nt < 1 || nt > 64) break;
        bn_pool *pool = bn_pool_new(nt);
        job j = {.node = y};
        size_t sb = bn_cpu_scratch_bytes(y);
        for (int i = 0; i < nt; i++)
            j.scratch[i] = aligned_alloc(64, sb ? (sb + 63) / 64 * 64 : 64);
        bn_pool_run(pool, run_fn, &j); /* warm-up */
        double best = 1e30;
        for (long long r = 0; r < reps; r++) {
            double t0 = bn_time_sec();
            bn_pool_run(pool, run_fn, &j);
            double dt = bn_time_sec() - t0;
            if (dt < best) best = dt;
        }
        printf("%7d  %7.3f  %7.2f\n", nt, best * 1e3, (double)wbytes / best / 1e9);
        for (int i = 0; i < nt; i++) free(j.scratch[i]);
        bn_pool_free(pool);
        const char *c = strchr(s, ',');
        s = c ? c + 1 : s + strlen(s);
    }
    free(tmp);
    free(w->data);
    free(x->data);
    free(y->data);
    bn_graph_free(g);
    return 0;
}
