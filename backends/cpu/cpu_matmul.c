/* cpu_matmul.c - the CPU backend's reference kernels for the projections:
 * QUANTIZE_ACT (per-token absmax int8), MATMUL_TERNARY (int8 activations x
 * ternary weights, exact int32 sums, rescaled) and MATMUL_F (float weights x
 * f32 activations). Semantics: graph/ir.h; byte layouts: FORMATS.md.
 *
 * Plain C; faster kernels (AVX2, NEON, LUT) are tested against these.
 *
 * Rounding choices (all backends should agree on them; see the report in
 * the tests): the activation product x*s is formed in f32 and rounded half
 * to even with nearbyintf under the default rounding mode. The int32 group
 * sums of MATMUL_TERNARY are exact; they are combined with their scales in
 * double and the result is rounded to f32 once: y = (float)(sum_g d_g * S_g / s).
 * Float-weight dot products (MATMUL_TERNARY with F32/F16/BF16 weights and
 * MATMUL_F) accumulate products in double, so a F16 tensor holding ternary
 * values times an f16 scale d gives bit-identical outputs to its TQ2_0,
 * TQ1_0 and I2_S encodings (every partial sum is an exact multiple of d). */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "float_kernels.h"
#include "ternary.h"

/* ---- QUANTIZE_ACT ----
 * src0 F32 [K, T] -> ACT_Q8 [K, T]. For each token row x:
 *   m = max(max_i |x_i|, 1e-5), s = 127 / m (f32),
 *   q_i = clamp(round_half_even(x_i * s), -128, 127), sum = sum_i q_i,
 * stored as bn_act_row {s, sum, q[K]} with the padding bytes zeroed; row t
 * starts at node->data + t * node->nb[1] (= bn_act_row_bytes(K)).
 * Threads split the tokens. NaN inputs give q = 0 (no undefined conversion). */
void bn_cpu_quantize_act(const bn_tensor *node, int ith, int nth) {
    if (bn_cpu_quantize_act_fast(node, ith, nth)) return; /* float_ops.c: same bytes */
    const bn_tensor *src = node->src[0];
    const int64_t K = src->ne[0];
    int64_t lo, hi;
    bn_cpu_split(bn_cpu_nrows(src), 1, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const float *x = bn_cpu_row(src, r);
        bn_act_row *a = bn_cpu_row_mut(node, r);
        float m = 0.0f;
        for (int64_t i = 0; i < K; i++) {
            float v = fabsf(x[i]);
            if (v > m) m = v;
        }
        if (m < 1e-5f) m = 1e-5f;
        const float s = 127.0f / m;
        int32_t sum = 0;
        for (int64_t i = 0; i < K; i++) {
            float v = nearbyintf(x[i] * s);
            int32_t q;
            if (v >= 127.0f)
                q = 127;
            else if (v <= -128.0f)
                q = -128;
            else if (v == v)
                q = (int32_t)v;
            else
                q = 0;
            a->q[i] = (int8_t)q;
            sum += q;
        }
        a->s = s;
        a->sum = sum;
        size_t used = offsetof(bn_act_row, q) + (size_t)K;
        memset((char *)a + used, 0, node->nb[1] - used);
    }
}

/* ---- dot products ---- */

/* sum_i w_i * q_i with w_i in {-1, 0, 1}: exact in int32 for n <= 2^23. */
static int32_t dot_i8(const int8_t *w, const int8_t *q, int64_t n) {
    int32_t s = 0;
    for (int64_t i = 0; i < n; i++) s += (int32_t)w[i] * (int32_t)q[i];
    return s;
}

/* sum_i w_i * q_i in double, four partial sums (for instruction-level
 * parallelism; exact whenever the products are multiples of one f16 scale). */
static double dot_f_i8(const float *w, const int8_t *q, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)w[i + 0] * q[i + 0];
        s1 += (double)w[i + 1] * q[i + 1];
        s2 += (double)w[i + 2] * q[i + 2];
        s3 += (double)w[i + 3] * q[i + 3];
    }
    for (; i < n; i++) s0 += (double)w[i] * q[i];
    return (s0 + s1) + (s2 + s3);
}

/* sum_i w_i * x_i in double, four partial sums. */
static double dot_f_f(const float *w, const float *x, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)w[i + 0] * x[i + 0];
        s1 += (double)w[i + 1] * x[i + 1];
        s2 += (double)w[i + 2] * x[i + 2];
        s3 += (double)w[i + 3] * x[i + 3];
    }
    for (; i < n; i++) s0 += (double)w[i] * x[i];
    return (s0 + s1) + (s2 + s3);
}

/* Row n of a weight tensor [K, N] as K floats: F32 rows are used in place,
 * F16 and BF16 are converted inline, other types go through bn_dequantize_row;
 * the latter two write into buf (K floats). */
static const float *weight_row_f32(const bn_tensor *w, int64_t K, int64_t N, int64_t n,
                                   float *buf) {
    if (w->type == BN_TYPE_F32) return bn_cpu_row(w, n);
    if (w->type == BN_TYPE_F16) {
        const uint16_t *h = bn_cpu_row(w, n);
        for (int64_t i = 0; i < K; i++) buf[i] = bn_cpu_f16_to_f32(h[i]);
    } else if (w->type == BN_TYPE_BF16) {
        const uint16_t *h = bn_cpu_row(w, n);
        for (int64_t i = 0; i < K; i++) buf[i] = bn_cpu_bf16_to_f32(h[i]);
    } else {
        bn_dequantize_row(w->type, w->data, K, N, n, buf);
    }
    return buf;
}

/* ---- MATMUL_TERNARY ----
 * src0 weights [K, N], src1 ACT_Q8 [K, T] -> F32 [N, T]; y row t, element n.
 * Ternary weights (TQ1_0, TQ2_0, I2_S): row n is decoded once per call by
 * bn_ternary_row_codes into codes c (turned into w = c - 1 as int8, in place)
 * and one scale d_g per 256-element group g; then for each token t:
 *   y[n,t] = (sum_g d_g * S_g) / s_t,  S_g = sum_{i in g} w_i * q_ti (int32),
 * with I2_S (one tensor scale) summed over the whole row: d * S / s_t.
 * Float weights (F32, F16, BF16): row n is dequantized to f32 (F32 is used in
 * place) and y[n,t] = (sum_i w_i * q_ti) / s_t.
 * The sum is accumulated in double and "/ s_t" is computed as "* (1 / s_t)"
 * (in double, then rounded to float once), so the fast driver can hoist the
 * reciprocal out of its loops and still match these outputs bit for bit.
 * Threads split the output rows N into contiguous chunks.
 * Scratch: ternary: K bytes of codes, then ceil(K/256) floats of scales
 * (each part rounded to 64 bytes); float: K floats.
 * With a fast kernel table in use (backends/cpu/ternary.h: AVX2, AVX-512
 * VNNI, NEON), ternary weights go to bn_tern_matmul instead, which gives the
 * same outputs bit for bit; this code stays the reference its tests compare
 * with (BITNET_CPU_TERNARY=reference selects it). */
size_t bn_cpu_matmul_scratch(const bn_tensor *node) {
    const bn_tensor *w = node->src[0];
    const size_t K = (size_t)w->ne[0];
    if (node->op == BN_OP_MATMUL_TERNARY && bn_type_is_ternary(w->type)) {
        size_t ref =
            bn_cpu_round_up(K) + bn_cpu_round_up((K + BN_QK_K - 1) / BN_QK_K * sizeof(float));
        size_t fast = bn_tern_scratch(node); /* ternary_matmul.c */
        return fast > ref ? fast : ref;
    }
    if (w->type == BN_TYPE_F32) return 0;
    return bn_cpu_round_up(K * sizeof(float));
}

static void matmul_ternary_codes(const bn_tensor *node, int64_t lo, int64_t hi, void *scratch) {
    const bn_tensor *w = node->src[0], *xq = node->src[1];
    const int64_t K = w->ne[0], N = w->ne[1], T = xq->ne[1];
    const int64_t ngroups = (K + BN_QK_K - 1) / BN_QK_K;
    uint8_t *codes = scratch;
    int8_t *wi = (int8_t *)codes;
    float *scales = (float *)((char *)scratch + bn_cpu_round_up((size_t)K));
    const int per_tensor = w->type == BN_TYPE_I2_S;

    for (int64_t n = lo; n < hi; n++) {
        bn_ternary_row_codes(w->type, w->data, K, N, n, codes, scales);
        for (int64_t i = 0; i < K; i++) wi[i] = (int8_t)((int)codes[i] - 1);
        for (int64_t t = 0; t < T; t++) {
            const bn_act_row *a = bn_cpu_row(xq, t);
            double acc;
            if (per_tensor) {
                acc = (double)scales[0] * dot_i8(wi, a->q, K);
            } else {
                acc = 0.0;
                for (int64_t g = 0; g < ngroups; g++) {
                    int64_t i0 = g * BN_QK_K, len = K - i0 < BN_QK_K ? K - i0 : BN_QK_K;
                    acc += (double)scales[g] * dot_i8(wi + i0, a->q + i0, len);
                }
            }
            ((float *)bn_cpu_row_mut(node, t))[n] = (float)(acc * (1.0 / (double)a->s));
        }
    }
}

static void matmul_ternary_float(const bn_tensor *node, int64_t lo, int64_t hi, void *scratch) {
    const bn_tensor *w = node->src[0], *xq = node->src[1];
    const int64_t K = w->ne[0], N = w->ne[1], T = xq->ne[1];
    for (int64_t n = lo; n < hi; n++) {
        const float *wr = weight_row_f32(w, K, N, n, scratch);
        for (int64_t t = 0; t < T; t++) {
            const bn_act_row *a = bn_cpu_row(xq, t);
            double acc = dot_f_i8(wr, a->q, K);
            ((float *)bn_cpu_row_mut(node, t))[n] = (float)(acc * (1.0 / (double)a->s));
        }
    }
}

void bn_cpu_matmul_ternary(const bn_tensor *node, int ith, int nth, void *scratch) {
    /* the fast kernels (ternary.h) when a table is in use: the same outputs, bit for bit */
    if (bn_type_is_ternary(node->src[0]->type) && bn_tern_matmul(node, ith, nth, scratch)) return;
    int64_t lo, hi;
    bn_cpu_split(node->src[0]->ne[1], 1, ith, nth, &lo, &hi);
    if (lo >= hi) return;
    if (bn_type_is_ternary(node->src[0]->type))
        matmul_ternary_codes(node, lo, hi, scratch);
    else
        matmul_ternary_float(node, lo, hi, scratch);
}

/* ---- MATMUL_F ----
 * src0 weights [K, N] (any type bn_dequantize_row reads), src1 F32 [K, T]
 * -> F32 [N, T]: y[n,t] = sum_i w_ni * x_ti, accumulated in double and rounded
 * to f32 once. Row n is dequantized once per call into scratch (K floats; F32
 * weights are read in place), then dotted with every token. Threads split N. */
void bn_cpu_matmul_f(const bn_tensor *node, int ith, int nth, void *scratch) {
    if (bn_cpu_matmul_f_fast(node, ith, nth, scratch)) return; /* float_ops.c */
    const bn_tensor *w = node->src[0], *x = node->src[1];
    const int64_t K = w->ne[0], N = w->ne[1], T = x->ne[1];
    int64_t lo, hi;
    bn_cpu_split(N, 1, ith, nth, &lo, &hi);
    for (int64_t n = lo; n < hi; n++) {
        const float *wr = weight_row_f32(w, K, N, n, scratch);
        for (int64_t t = 0; t < T; t++) {
            const float *xr = bn_cpu_row(x, t);
            ((float *)bn_cpu_row_mut(node, t))[n] = (float)dot_f_f(wr, xr, K);
        }
    }
}
