/* float_ops.c - the fast paths of the CPU backend's float ops, written once
 * over the row kernels of the selected table (float_kernels.h): QUANTIZE_ACT,
 * RMS_NORM, SILU, MATMUL_F and ATTENTION. Each returns false when no table is
 * selected or the node has a case it does not cover; the op file then runs
 * its plain-C reference (also RELU_SQR, bit-identical). Work is split between threads exactly as
 * the reference splits it (cpu_internal.h), so each thread writes only its part.
 *
 * MATMUL_F layout: weights [K, N] (row n = output n), x F32 [K, T], y F32
 * [N, T] (row t = token t). One token: each thread's rows go straight
 * through the table's mat-vec (F32/F16/BF16 read in place, Q6_K against x
 * prepared once). Several tokens: rows are taken 16 at a time, converted to
 * f32 once (any readable type, through the table or bn_dequantize_row) and
 * multiplied with every token while they sit in the cache; Q6_K rows are
 * used as they are against each token's prepared x. */
#include <math.h>

#include "cpu_internal.h"
#include "float_kernels.h"

#define MF_ROWS 16 /* weight rows per block when T > 1 */

/* ---- QUANTIZE_ACT: threads split the tokens ---- */
bool bn_cpu_quantize_act_fast(const bn_tensor *node, int ith, int nth) {
    const bn_cpu_float_ops *f = bn_cpu_float();
    if (!f || !f->quantize_row) return false;
    const bn_tensor *src = node->src[0];
    const int64_t K = src->ne[0];
    int64_t lo, hi;
    bn_cpu_split(bn_cpu_nrows(src), 1, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        bn_act_row *a = bn_cpu_row_mut(node, r);
        f->quantize_row(bn_cpu_row(src, r), K, a);
        size_t used = offsetof(bn_act_row, q) + (size_t)K;
        memset((char *)a + used, 0, node->nb[1] - used);
    }
    return true;
}

/* ---- RMS_NORM: y = x * (1 / sqrt(sum(x^2)/K + eps)), f in double ---- */
bool bn_cpu_rms_norm_fast(const bn_tensor *node, int ith, int nth) {
    const bn_cpu_float_ops *f = bn_cpu_float();
    if (!f || !f->sum_sq || !f->scale_row) return false;
    const bn_tensor *src = node->src[0];
    const int64_t K = src->ne[0];
    const double eps = node->fp[0];
    int64_t lo, hi;
    bn_cpu_split(bn_cpu_nrows(src), 1, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const float *x = bn_cpu_row(src, r);
        const double fac = 1.0 / sqrt(f->sum_sq(x, K) / (double)K + eps);
        f->scale_row(x, fac, bn_cpu_row_mut(node, r), K);
    }
    return true;
}

/* ---- SILU: threads split the flat elements (granule 16) ---- */
bool bn_cpu_silu_fast(const bn_tensor *node, int ith, int nth) {
    const bn_cpu_float_ops *f = bn_cpu_float();
    if (!f || !f->silu) return false;
    int64_t lo, hi;
    bn_cpu_split(bn_tensor_nelems(node), 16, ith, nth, &lo, &hi);
    if (lo < hi) f->silu((const float *)node->src[0]->data + lo, (float *)node->data + lo, hi - lo);
    return true;
}

/* ---- RELU_SQR: threads split the flat elements (granule 16) ---- */
bool bn_cpu_relu_sqr_fast(const bn_tensor *node, int ith, int nth) {
    const bn_cpu_float_ops *f = bn_cpu_float();
    if (!f || !f->relu_sqr) return false;
    int64_t lo, hi;
    bn_cpu_split(bn_tensor_nelems(node), 16, ith, nth, &lo, &hi);
    if (lo < hi)
        f->relu_sqr((const float *)node->src[0]->data + lo, (float *)node->data + lo, hi - lo);
    return true;
}

/* ---- MATMUL_F ---- */

static bool native_row_type(uint32_t t) {
    return t == BN_TYPE_F32 || t == BN_TYPE_F16 || t == BN_TYPE_BF16;
}

/* Bound on the table's q6k_prep_bytes(K), so scratch sizes do not depend on
 * which table is selected. */
static size_t q6k_prep_bound(int64_t K) {
    return bn_cpu_round_up((size_t)K * 3);
}

size_t bn_cpu_matmul_f_fast_scratch(const bn_tensor *node) {
    const bn_tensor *w = node->src[0], *x = node->src[1];
    const int64_t K = w->ne[0], T = x->ne[1];
    if (w->type == BN_TYPE_Q6_K) return (size_t)T * q6k_prep_bound(K);
    if (T == 1 && native_row_type(w->type)) return 0;
    return bn_cpu_round_up((size_t)MF_ROWS * (size_t)K * sizeof(float));
}

/* Rows [n0, n0 + R) as f32 into buf (R * K floats). */
static void rows_to_f32(const bn_cpu_float_ops *f, const bn_tensor *w, int64_t n0, int64_t R,
                        float *buf) {
    const int64_t K = w->ne[0], N = w->ne[1];
    for (int64_t r = 0; r < R; r++) {
        float *dst = buf + r * K;
        const void *src = bn_cpu_row(w, n0 + r);
        if (w->type == BN_TYPE_F32)
            memcpy(dst, src, (size_t)K * sizeof(float));
        else if (w->type == BN_TYPE_F16 && f->f16_to_f32)
            f->f16_to_f32(src, dst, K);
        else if (w->type == BN_TYPE_BF16 && f->bf16_to_f32)
            f->bf16_to_f32(src, dst, K);
        else
            bn_dequantize_row(w->type, w->data, K, N, n0 + r, dst);
    }
}

bool bn_cpu_matmul_f_fast(const bn_tensor *node, int ith, int nth, void *scratch) {
    const bn_cpu_float_ops *f = bn_cpu_float();
    if (!f || !f->matvec) return false;
    const bn_tensor *w = node->src[0], *x = node->src[1];
    const int64_t K = w->ne[0], N = w->ne[1], T = x->ne[1];
    const bool q6k = w->type == BN_TYPE_Q6_K && f->q6k_prepare && f->q6k_matvec &&
                     f->q6k_prep_bytes && f->q6k_prep_bytes(K) <= q6k_prep_bound(K);
    if (w->type == BN_TYPE_Q6_K && !q6k) return false;
    /* rows in multiples of 16 per thread: whole cache lines of y */
    int64_t lo, hi;
    bn_cpu_split(N, 16, ith, nth, &lo, &hi);
    if (lo >= hi) return true;
    const size_t rb = w->nb[1];

    if (q6k) {
        const size_t ps = q6k_prep_bound(K);
        for (int64_t t = 0; t < T; t++)
            f->q6k_prepare(bn_cpu_row(x, t), K, (char *)scratch + (size_t)t * ps);
        if (T == 1) {
            f->q6k_matvec(bn_cpu_row(w, lo), rb, K, hi - lo, scratch, (float *)node->data + lo);
            return true;
        }
        for (int64_t n = lo; n < hi; n += MF_ROWS) {
            const int64_t R = hi - n < MF_ROWS ? hi - n : MF_ROWS;
            for (int64_t t = 0; t < T; t++)
                f->q6k_matvec(bn_cpu_row(w, n), rb, K, R, (char *)scratch + (size_t)t * ps,
                              (float *)bn_cpu_row_mut(node, t) + n);
        }
        return true;
    }
    if (T == 1 && native_row_type(w->type)) {
        f->matvec(w->type, bn_cpu_row(w, lo), rb, K, hi - lo, x->data, (float *)node->data + lo);
        return true;
    }
    float *buf = scratch;
    for (int64_t n = lo; n < hi; n += MF_ROWS) {
        const int64_t R = hi - n < MF_ROWS ? hi - n : MF_ROWS;
        rows_to_f32(f, w, n, R, buf);
        for (int64_t t = 0; t < T; t++)
            f->matvec(BN_TYPE_F32, buf, (size_t)K * sizeof(float), K, R, bn_cpu_row(x, t),
                      (float *)bn_cpu_row_mut(node, t) + n);
    }
    return true;
}

/* ---- ATTENTION ----
 * Threads split the (token, head) pairs as the reference does. With GQA, a
 * thread takes the pairs of its share that use one kv head in batches of up
 * to ATT_JOBS: the query heads of that kv head, for several tokens (a
 * prompt's tokens all read the same cache rows), so each f16 K and V row is
 * converted to f32 once for the whole batch. Positions go in tiles of
 * ATT_TILE rows, converted into scratch (f32 caches are read in place), and
 * every pair of the batch takes its scores (then, after its softmax, its
 * share of the weighted sum of V) from the tile while it is in L1; a pair
 * whose token sees fewer positions uses the first rows of the tile. A pair's
 * result does not depend on which pairs share its batch or thread: the tile
 * boundaries are the same for all. Without GQA a head reads the caches
 * directly, converting in registers, one pair at a time. Scratch: ATT_JOBS
 * rows of n_ctx f32 scores, then one tile of ATT_TILE x head_dim floats. */
#define ATT_TILE 32
#define ATT_JOBS 16

static size_t att_score_stride(const bn_tensor *node) { /* floats per pair's scores */
    return bn_cpu_round_up((size_t)node->src[1]->ne[1] * sizeof(float)) / sizeof(float);
}

size_t bn_cpu_attention_fast_scratch(const bn_tensor *node) {
    const size_t hd = node->ip[3] > 0 ? (size_t)node->ip[3] : 0;
    return ATT_JOBS * att_score_stride(node) * sizeof(float) +
           bn_cpu_round_up(ATT_TILE * hd * sizeof(float));
}

/* Rows [j0, j0 + n) of a cache's kv-head slice (hd elements from base) as f32:
 * either in place (F32) or converted into buf; returns the rows and their stride. */
static const void *att_tile(const bn_cpu_float_ops *f, const bn_tensor *c, const char *base,
                            int64_t j0, int64_t n, int64_t hd, float *buf, size_t *rb) {
    if (c->type != BN_TYPE_F16) {
        *rb = c->nb[1];
        return base + (size_t)j0 * c->nb[1];
    }
    for (int64_t r = 0; r < n; r++)
        f->f16_to_f32((const uint16_t *)(base + (size_t)(j0 + r) * c->nb[1]), buf + r * hd, hd);
    *rb = (size_t)hd * sizeof(float);
    return buf;
}

/* One (token, head) pair: its query, its output and the positions it sees. */
typedef struct att_job {
    const float *q;
    float *out;
    int64_t len;
} att_job;

static att_job att_pair(const bn_tensor *node, int64_t t, int64_t h) {
    const int64_t hd = node->ip[3], n_past = node->ip[0], cap = node->src[1]->ne[1];
    /* n_past may change between runs without a new check: stay inside the cache */
    const int64_t len = n_past + t + 1 < cap ? n_past + t + 1 : cap;
    return (att_job){(const float *)bn_cpu_row(node->src[0], t) + h * hd,
                     (float *)bn_cpu_row_mut(node, t) + h * hd, len};
}

/* Start of kv head g's hd elements in row 0 of cache c (F16 or F32). */
static const char *kv_slice(const bn_tensor *c, int64_t g, int64_t hd) {
    return (const char *)c->data + (size_t)(g * hd) * (c->type == BN_TYPE_F16 ? 2 : 4);
}

/* Without GQA: one pair, reading the caches directly. */
static void attend_one(const bn_cpu_float_ops *f, const bn_tensor *node, att_job j, int64_t g,
                       float *score) {
    const bn_tensor *kc = node->src[1], *vc = node->src[2];
    const int64_t hd = node->ip[3];
    const char *kbase = kv_slice(kc, g, hd), *vbase = kv_slice(vc, g, hd);
    const float m1 = f->attn_scores(j.q, kbase, kc->nb[1], kc->type, j.len, hd, node->fp[0], score);
    const float inv = 1.0f / f->exp_sub_sum(score, j.len, m1);
    memset(j.out, 0, (size_t)hd * sizeof(float));
    f->attn_wsum(score, vbase, vc->nb[1], vc->type, j.len, hd, j.out);
    for (int64_t i = 0; i < hd; i++) j.out[i] *= inv;
}

/* A batch of nj pairs on kv head g, through shared f32 tiles. */
static void attend_batch(const bn_cpu_float_ops *f, const bn_tensor *node, const att_job *jobs,
                         int nj, int64_t g, void *scratch) {
    const bn_tensor *kc = node->src[1], *vc = node->src[2];
    const int64_t hd = node->ip[3];
    const float scale = node->fp[0];
    const size_t ss = att_score_stride(node);
    float *score = scratch, *buf = score + ATT_JOBS * ss;
    const char *kbase = kv_slice(kc, g, hd), *vbase = kv_slice(vc, g, hd);
    float m[ATT_JOBS], sum[ATT_JOBS];
    int64_t len = 0;
    for (int k = 0; k < nj; k++) {
        m[k] = -INFINITY;
        if (jobs[k].len > len) len = jobs[k].len;
    }
    for (int64_t j0 = 0; j0 < len; j0 += ATT_TILE) {
        const int64_t n = len - j0 < ATT_TILE ? len - j0 : ATT_TILE;
        size_t rb;
        const void *rows = att_tile(f, kc, kbase, j0, n, hd, buf, &rb);
        for (int k = 0; k < nj; k++) {
            const int64_t nk = jobs[k].len - j0 < n ? jobs[k].len - j0 : n;
            if (nk <= 0) continue;
            float mk = f->attn_scores(jobs[k].q, rows, rb, BN_TYPE_F32, nk, hd, scale,
                                      score + k * ss + j0);
            if (mk > m[k]) m[k] = mk;
        }
    }
    for (int k = 0; k < nj; k++) {
        sum[k] = f->exp_sub_sum(score + k * ss, jobs[k].len, m[k]);
        memset(jobs[k].out, 0, (size_t)hd * sizeof(float));
    }
    for (int64_t j0 = 0; j0 < len; j0 += ATT_TILE) {
        const int64_t n = len - j0 < ATT_TILE ? len - j0 : ATT_TILE;
        size_t rb;
        const void *rows = att_tile(f, vc, vbase, j0, n, hd, buf, &rb);
        for (int k = 0; k < nj; k++) {
            const int64_t nk = jobs[k].len - j0 < n ? jobs[k].len - j0 : n;
            if (nk > 0)
                f->attn_wsum(score + k * ss + j0, rows, rb, BN_TYPE_F32, nk, hd, jobs[k].out);
        }
    }
    for (int k = 0; k < nj; k++) {
        const float inv = 1.0f / sum[k];
        for (int64_t i = 0; i < hd; i++) jobs[k].out[i] *= inv;
    }
}

bool bn_cpu_attention_fast(const bn_tensor *node, int ith, int nth, void *scratch) {
    const bn_cpu_float_ops *f = bn_cpu_float();
    if (!f || !f->attn_scores || !f->attn_wsum || !f->exp_sub_sum || !f->f16_to_f32) return false;
    const bn_tensor *q = node->src[0];
    const int64_t n_head = node->ip[1], n_kv = node->ip[2];
    const int64_t T = q->ne[1], group = n_head / n_kv;
    int64_t lo, hi;
    bn_cpu_split(T * n_head, 1, ith, nth, &lo, &hi);
    if (lo >= hi) return true;
    if (group == 1) {
        for (int64_t p = lo; p < hi; p++)
            attend_one(f, node, att_pair(node, p / n_head, p % n_head), p % n_head, scratch);
        return true;
    }
    /* the share's pairs by kv head, tokens in order, in batches of ATT_JOBS */
    const int64_t t_first = lo / n_head, t_last = (hi - 1) / n_head;
    for (int64_t g = 0; g < n_kv; g++) {
        att_job jobs[ATT_JOBS];
        int nj = 0;
        for (int64_t t = t_first; t <= t_last; t++)
            for (int64_t h = g * group; h < (g + 1) * group; h++) {
                const int64_t p = t * n_head + h;
                if (p < lo || p >= hi) continue;
                jobs[nj++] = att_pair(node, t, h);
                if (nj == ATT_JOBS) {
                    attend_batch(f, node, jobs, nj, g, scratch);
                    nj = 0;
                }
            }
        if (nj) attend_batch(f, node, jobs, nj, g, scratch);
    }
    return true;
}
