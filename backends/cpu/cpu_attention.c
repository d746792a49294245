/* cpu_attention.c - the CPU backend's reference ATTENTION kernel: causal
 * softmax attention of the new tokens' queries over a KV cache, with grouped
 * query heads (GQA). Semantics: graph/ir.h.
 *
 * Layout: q is F32 [n_head * head_dim, T], head h of token t at elements
 * h*head_dim .. of row t. The K and V caches are [n_kv * head_dim, n_ctx]
 * (F16 or F32, each independently); row j holds position j, kv head g at
 * elements g*head_dim .. . The output has q's shape and layout.
 *
 * Numerics: dot products, the softmax and the weighted sum are computed in
 * double from the f32 (or f16-converted) inputs; the result is rounded to f32
 * once. This is the reference the faster kernels are compared with. */
#include <math.h>

#include "cpu_internal.h"
#include "float_kernels.h"

/* Scratch: n_ctx doubles of scores, then head_dim doubles of the output
 * accumulator (each rounded to 64 bytes); or what the fast path needs, if more. */
size_t bn_cpu_attention_scratch(const bn_tensor *node) {
    const size_t n_ctx = (size_t)node->src[1]->ne[1];
    const size_t head_dim = (size_t)node->ip[3];
    const size_t ref =
        bn_cpu_round_up(n_ctx * sizeof(double)) + bn_cpu_round_up(head_dim * sizeof(double));
    const size_t fast = bn_cpu_attention_fast_scratch(node); /* float_ops.c */
    return ref > fast ? ref : fast;
}

/* For every (token t, head h) pair in this thread's chunk (pairs numbered
 * t * n_head + h), with g = h / (n_head / n_kv) and L = n_past + t + 1:
 *   s_j = scale * sum_d q[t, h, d] * K[j, g, d]      for j = 0 .. L-1
 *   p_j = exp(s_j - max_j s_j) / sum_j exp(s_j - max_j s_j)
 *   out[t, h, d] = sum_j p_j * V[j, g, d]. */
void bn_cpu_attention(const bn_tensor *node, int ith, int nth, void *scratch) {
    if (bn_cpu_attention_fast(node, ith, nth, scratch)) return; /* float_ops.c */
    const bn_tensor *q = node->src[0], *kc = node->src[1], *vc = node->src[2];
    const int64_t n_past = node->ip[0], n_head = node->ip[1], n_kv = node->ip[2];
    const int64_t hd = node->ip[3];
    const int64_t T = q->ne[1], group = n_head / n_kv;
    const double scale = node->fp[0];
    double *score = scratch;
    double *acc = (double *)((char *)scratch + bn_cpu_round_up((size_t)kc->ne[1] * sizeof(double)));

    int64_t lo, hi;
    bn_cpu_split(T * n_head, 1, ith, nth, &lo, &hi);
    for (int64_t p = lo; p < hi; p++) {
        const int64_t t = p / n_head, h = p % n_head, g = h / group;
        /* n_past may change between runs without a new check: stay inside the cache */
        const int64_t len = n_past + t + 1 < kc->ne[1] ? n_past + t + 1 : kc->ne[1];
        const float *qh = (const float *)bn_cpu_row(q, t) + h * hd;

        double smax = -INFINITY;
        for (int64_t j = 0; j < len; j++) {
            const void *kr = bn_cpu_row(kc, j);
            double d = 0.0;
            for (int64_t i = 0; i < hd; i++)
                d += (double)qh[i] * (double)bn_cpu_load_f(kc->type, kr, g * hd + i);
            score[j] = scale * d;
            if (score[j] > smax) smax = score[j];
        }
        double sum = 0.0;
        for (int64_t j = 0; j < len; j++) {
            score[j] = exp(score[j] - smax);
            sum += score[j];
        }

        for (int64_t i = 0; i < hd; i++) acc[i] = 0.0;
        for (int64_t j = 0; j < len; j++) {
            const void *vr = bn_cpu_row(vc, j);
            const double pj = score[j];
            for (int64_t i = 0; i < hd; i++)
                acc[i] += pj * (double)bn_cpu_load_f(vc->type, vr, g * hd + i);
        }
        float *out = (float *)bn_cpu_row_mut(node, t) + h * hd;
        for (int64_t i = 0; i < hd; i++) out[i] = (float)(acc[i] / sum);
    }
}
