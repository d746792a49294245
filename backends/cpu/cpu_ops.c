/* cpu_ops.c - the CPU backend's op dispatch, node check, scratch sizes and
 * the reference kernels of the small ops: GET_ROWS, RMS_NORM, MUL, ADD, ROPE,
 * KV_STORE, RELU_SQR, SILU, SCALE, CPY (semantics: graph/ir.h). The matmuls
 * and QUANTIZE_ACT live in cpu_matmul.c, ATTENTION in cpu_attention.c.
 *
 * bn_cpu_check_node validates a node once (graph/ir_check.c: types, shapes,
 * parameters, row strides); bn_cpu_compute then assumes a checked node. Every kernel writes
 * only its thread's share of the output (see cpu_internal.h for the split). */
#include "cpu_ops.h"

#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "float_kernels.h"

/* The CPU runs every node the IR defines: its checks are the IR's. */
bn_status bn_cpu_check_node(const bn_tensor *node, bn_err *err) {
    return bn_ir_check_node(node, NULL, err);
}

/* ======================================================================
 * Scratch
 * ====================================================================== */

size_t bn_cpu_scratch_bytes(const bn_tensor *node) {
    switch (node->op) {
    case BN_OP_MATMUL_TERNARY:
        return bn_cpu_matmul_scratch(node);
    case BN_OP_MATMUL_F: { /* room for the reference and for the fast path */
        size_t a = bn_cpu_matmul_scratch(node), b = bn_cpu_matmul_f_fast_scratch(node);
        return a > b ? a : b;
    }
    case BN_OP_ATTENTION:
        return bn_cpu_attention_scratch(node);
    case BN_OP_ROPE: /* cos and sin of each rotated pair */
        return bn_cpu_round_up((size_t)(node->ip[1] > 0 ? node->ip[1] : 0) * sizeof(double));
    default:
        return 0;
    }
}

/* ======================================================================
 * Kernels
 * ====================================================================== */

/* GET_ROWS: table [K, R] of any readable type, ids I32 [T] -> F32 [K, T];
 * row t = dequantized table row ids[t]. An id outside 0..R-1 (it comes from
 * the input data, which the check cannot see) gives a row of zeros instead of
 * reading out of bounds. Threads split the tokens. */
static void op_get_rows(const bn_tensor *node, int ith, int nth) {
    const bn_tensor *tab = node->src[0], *ids = node->src[1];
    const int64_t K = tab->ne[0], R = tab->ne[1];
    const int32_t *id = ids->data;
    int64_t lo, hi;
    bn_cpu_split(ids->ne[0], 1, ith, nth, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        float *y = bn_cpu_row_mut(node, t);
        if (id[t] < 0 || id[t] >= R)
            memset(y, 0, (size_t)K * sizeof(float));
        else
            bn_dequantize_row(tab->type, tab->data, K, R, id[t], y);
    }
}

/* RMS_NORM: x F32 [K, rows] -> y = x / sqrt(mean(x^2) + eps) per row, the mean
 * accumulated in double. Threads split the rows. */
static void op_rms_norm(const bn_tensor *node, int ith, int nth) {
    if (bn_cpu_rms_norm_fast(node, ith, nth)) return; /* float_ops.c */
    const bn_tensor *src = node->src[0];
    const int64_t K = src->ne[0];
    const double eps = node->fp[0];
    int64_t lo, hi;
    bn_cpu_split(bn_cpu_nrows(src), 1, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const float *x = bn_cpu_row(src, r);
        float *y = bn_cpu_row_mut(node, r);
        double ss = 0.0;
        for (int64_t i = 0; i < K; i++) ss += (double)x[i] * x[i];
        const double f = 1.0 / sqrt(ss / (double)K + eps);
        for (int64_t i = 0; i < K; i++) y[i] = (float)(x[i] * f);
    }
}

/* MUL / ADD: a F32 [K, T], b F32 [K, T], [K, 1] or [1, 1] (broadcast over
 * tokens, or over everything) -> y[i, t] = a[i, t] op b[i or 0, t or 0].
 * Threads split the flat element range (so a single token still uses all). */
static void op_binary(const bn_tensor *node, int ith, int nth) {
    const bn_tensor *sa = node->src[0], *sb = node->src[1];
    const int64_t K = sa->ne[0];
    const float *a = sa->data, *b = sb->data;
    float *y = node->data;
    const bool b_one_row = sb->ne[1] == 1, b_one_col = sb->ne[0] == 1;
    const bool mul = node->op == BN_OP_MUL;
    int64_t lo, hi;
    bn_cpu_split(bn_tensor_nelems(sa), 16, ith, nth, &lo, &hi);
    for (int64_t e = lo; e < hi;) {
        const int64_t r = e / K, end = (r + 1) * K < hi ? (r + 1) * K : hi;
        const float *br = b_one_row ? b : b + r * K;
        for (; e < end; e++) {
            const float bv = b_one_col ? br[0] : br[e - r * K];
            y[e] = mul ? a[e] * bv : a[e] + bv;
        }
    }
}

/* ROPE: x F32 [n_head * head_dim, T], pos I32 [T]. For each token t and head,
 * pair j = 0 .. n_rot/2 - 1 with theta = pos[t] * freq_base^(-2j / n_rot)
 * (computed in double) rotates the elements (i0, i1) = (2j, 2j+1) (NORMAL) or
 * (j, j + n_rot/2) (NEOX): (a, b) -> (a cos - b sin, a sin + b cos); elements
 * n_rot .. head_dim-1 are copied. Safe in place. Threads split the (token,
 * head) pairs; cos/sin of the current token come from the thread's cache
 * below (scratch when n_rot > 2 * ROPE_CACHE_PAIRS).
 *
 * The cos/sin of the last position a thread rotated, kept across nodes: all
 * ROPE nodes of a step rotate the same positions with the same parameters,
 * so a decode step computes them once per thread instead of once per node.
 * Same values as computing them afresh (same formula, same inputs). */
#define ROPE_CACHE_PAIRS 256
static _Thread_local struct rope_cache {
    int valid, n_rot;
    int32_t pos;
    double base;
    double cs[ROPE_CACHE_PAIRS], sn[ROPE_CACHE_PAIRS];
} rope_cache;

static void rope_angles(int32_t pos, int n_rot, double base, double *cs, double *sn) {
    for (int j = 0; j < n_rot / 2; j++) {
        const double theta = (double)pos * pow(base, -2.0 * j / n_rot);
        cs[j] = cos(theta);
        sn[j] = sin(theta);
    }
}

static void op_rope(const bn_tensor *node, int ith, int nth, void *scratch) {
    const bn_tensor *src = node->src[0];
    const int mode = node->ip[0], n_rot = node->ip[1], hd = node->ip[2], half = n_rot / 2;
    const double base = node->fp[0];
    const int64_t nh = src->ne[0] / hd;
    const int32_t *pos = node->src[1]->data;
    const bool use_cache = half <= ROPE_CACHE_PAIRS;
    struct rope_cache *rc = &rope_cache;
    double *cs = use_cache ? rc->cs : scratch, *sn = use_cache ? rc->sn : (double *)scratch + half;
    int64_t lo, hi, cached_t = -1;
    bn_cpu_split(src->ne[1] * nh, 1, ith, nth, &lo, &hi);
    for (int64_t p = lo; p < hi; p++) {
        const int64_t t = p / nh, h = p % nh;
        if (t != cached_t) {
            if (!use_cache) {
                rope_angles(pos[t], n_rot, base, cs, sn);
            } else if (!rc->valid || rc->pos != pos[t] || rc->n_rot != n_rot || rc->base != base) {
                rope_angles(pos[t], n_rot, base, cs, sn);
                rc->valid = 1;
                rc->pos = pos[t];
                rc->n_rot = n_rot;
                rc->base = base;
            }
            cached_t = t;
        }
        const float *x = (const float *)bn_cpu_row(src, t) + h * hd;
        float *y = (float *)bn_cpu_row_mut(node, t) + h * hd;
        for (int j = 0; j < half; j++) {
            const int i0 = mode == BN_ROPE_NEOX ? j : 2 * j;
            const int i1 = mode == BN_ROPE_NEOX ? j + half : 2 * j + 1;
            const double a = x[i0], b = x[i1];
            y[i0] = (float)(a * cs[j] - b * sn[j]);
            y[i1] = (float)(a * sn[j] + b * cs[j]);
        }
        for (int i = n_rot; i < hd; i++) y[i] = x[i];
    }
}

/* KV_STORE: cache [kv_dim, n_ctx] (F16 or F32), x F32 [kv_dim, T]: cache row
 * n_past + t = x row t, converted (f16: round to nearest even). Written into
 * the cache's own memory (src0->data, which the node aliases). Threads split
 * the tokens. Rows past n_ctx are dropped (the graph's n_past is changed
 * between runs without a new check; this keeps a bad n_past from writing out
 * of bounds). */
static void op_kv_store(const bn_tensor *node, int ith, int nth) {
    const bn_tensor *cache = node->src[0], *x = node->src[1];
    const int64_t D = x->ne[0], n_past = node->ip[0];
    const bn_cpu_float_ops *f = bn_cpu_float();
    int64_t lo, hi;
    bn_cpu_split(x->ne[1], 1, ith, nth, &lo, &hi);
    /* n_past is updated between runs without a new check: stay inside the cache */
    if (n_past < 0) return;
    if (hi > cache->ne[1] - n_past) hi = cache->ne[1] - n_past;
    for (int64_t t = lo; t < hi; t++) {
        const float *xr = bn_cpu_row(x, t);
        void *dst = bn_cpu_row_mut(cache, n_past + t);
        if (cache->type == BN_TYPE_F32) {
            memcpy(dst, xr, (size_t)D * sizeof(float));
        } else if (f && f->f32_to_f16) { /* fast table: the same bits */
            f->f32_to_f16(xr, dst, D);
        } else {
            uint16_t *h = dst;
            for (int64_t i = 0; i < D; i++) h[i] = bn_f32_to_f16(xr[i]);
        }
    }
}

/* RELU_SQR max(x,0)^2, SILU x / (1 + exp(-x)), SCALE x * f[0]: F32 -> F32,
 * elementwise in f32 (SILU's exp in f32). Threads split the flat elements. */
static void op_unary(const bn_tensor *node, int ith, int nth) {
    const float *x = node->src[0]->data;
    float *y = node->data;
    const float s = node->fp[0];
    int64_t lo, hi;
    bn_cpu_split(bn_tensor_nelems(node), 16, ith, nth, &lo, &hi);
    switch (node->op) {
    case BN_OP_RELU_SQR:
        if (bn_cpu_relu_sqr_fast(node, ith, nth)) break; /* float_ops.c: same bytes */
        for (int64_t i = lo; i < hi; i++) {
            const float v = x[i] > 0.0f ? x[i] : 0.0f;
            y[i] = v * v;
        }
        break;
    case BN_OP_SILU:
        if (bn_cpu_silu_fast(node, ith, nth)) break; /* float_ops.c */
        for (int64_t i = lo; i < hi; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    default:
        for (int64_t i = lo; i < hi; i++) y[i] = x[i] * s;
        break;
    }
}

/* CPY: F32 or F16 -> F32 or F16, same shape; f32 -> f16 rounds to nearest
 * even. Threads split the flat elements (granule 32 = 64 bytes of f16). */
static void op_cpy(const bn_tensor *node, int ith, int nth) {
    const bn_tensor *src = node->src[0];
    int64_t lo, hi;
    bn_cpu_split(bn_tensor_nelems(node), 32, ith, nth, &lo, &hi);
    if (lo >= hi) return;
    if (src->type == node->type) {
        const size_t es = src->type == BN_TYPE_F16 ? 2 : 4;
        memcpy((char *)node->data + (size_t)lo * es, (const char *)src->data + (size_t)lo * es,
               (size_t)(hi - lo) * es);
    } else if (node->type == BN_TYPE_F16) {
        const float *x = src->data;
        uint16_t *y = node->data;
        for (int64_t i = lo; i < hi; i++) y[i] = bn_f32_to_f16(x[i]);
    } else {
        const uint16_t *x = src->data;
        float *y = node->data;
        for (int64_t i = lo; i < hi; i++) y[i] = bn_f16_to_f32(x[i]);
    }
}

void bn_cpu_compute(const bn_tensor *node, int ith, int nth, void *scratch) {
    switch (node->op) {
    case BN_OP_GET_ROWS:
        op_get_rows(node, ith, nth);
        break;
    case BN_OP_RMS_NORM:
        op_rms_norm(node, ith, nth);
        break;
    case BN_OP_MUL:
    case BN_OP_ADD:
        op_binary(node, ith, nth);
        break;
    case BN_OP_QUANTIZE_ACT:
        bn_cpu_quantize_act(node, ith, nth);
        break;
    case BN_OP_MATMUL_TERNARY:
        bn_cpu_matmul_ternary(node, ith, nth, scratch);
        break;
    case BN_OP_MATMUL_F:
        bn_cpu_matmul_f(node, ith, nth, scratch);
        break;
    case BN_OP_ROPE:
        op_rope(node, ith, nth, scratch);
        break;
    case BN_OP_KV_STORE:
        op_kv_store(node, ith, nth);
        break;
    case BN_OP_ATTENTION:
        bn_cpu_attention(node, ith, nth, scratch);
        break;
    case BN_OP_RELU_SQR:
    case BN_OP_SILU:
    case BN_OP_SCALE:
        op_unary(node, ith, nth);
        break;
    case BN_OP_CPY:
        op_cpy(node, ith, nth);
        break;
    default:
        break;
    }
}
