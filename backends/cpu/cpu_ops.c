/* cpu_ops.c - the CPU backend's op dispatch, node checks, scratch sizes and
 * the reference kernels of the small ops: GET_ROWS, RMS_NORM, MUL, ADD, ROPE,
 * KV_STORE, RELU_SQR, SILU, SCALE, CPY (semantics: graph/ir.h). The matmuls
 * and QUANTIZE_ACT live in cpu_matmul.c, ATTENTION in cpu_attention.c.
 *
 * bn_cpu_check_node validates a node once (types, shapes, parameters, row
 * strides); bn_cpu_compute then assumes a checked node. Every kernel writes
 * only its thread's share of the output (see cpu_internal.h for the split). */
#include "cpu_ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cpu_internal.h"
#include "float_kernels.h"

/* ======================================================================
 * Checks
 * ====================================================================== */

static const char *tname(uint32_t type) {
    const char *n = bn_type_name(type);
    if (n) return n;
    if (type == BN_TYPE_I32) return "I32";
    if (type == BN_TYPE_ACT_Q8) return "ACT_Q8";
    return "unknown";
}

/* Fills err with "node 'NAME' (OP): <message>" and returns code. */
static bn_status node_fail(bn_err *err, const bn_tensor *node, bn_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bn_status node_fail(bn_err *err, const bn_tensor *node, bn_status code, const char *fmt,
                           ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bn_fail(err, code, "node '%s' (%s): %s", node->name, bn_op_name(node->op), msg);
}

#define FAIL(code, ...) return node_fail(err, node, code, __VA_ARGS__)
#define SHAPE(t)                                                                                   \
    (long long)(t)->ne[0], (long long)(t)->ne[1], (long long)(t)->ne[2], (long long)(t)->ne[3]
#define SHAPE_FMT "[%lld, %lld, %lld, %lld]"

static bool is_2d(const bn_tensor *t) {
    return t->ne[2] == 1 && t->ne[3] == 1;
}

static bool same_shape(const bn_tensor *a, const bn_tensor *b) {
    for (int i = 0; i < 4; i++)
        if (a->ne[i] != b->ne[i]) return false;
    return true;
}

/* A type whose rows bn_dequantize_row can read. */
static bool is_readable(uint32_t type) {
    return type == BN_TYPE_I32 || bn_type_is_known(type);
}

static bool is_float(uint32_t type) {
    return type == BN_TYPE_F32 || type == BN_TYPE_F16 || type == BN_TYPE_BF16;
}

/* The tensor's strides are those of a contiguous layout of its type. */
static bn_status check_layout(const bn_tensor *node, const bn_tensor *t, const char *what,
                              bn_err *err) {
    for (int i = 0; i < 4; i++)
        if (t->ne[i] < 1)
            FAIL(BN_ERR_INVALID_ARG, "%s '%s' has dimension %d = %lld", what, t->name, i,
                 (long long)t->ne[i]);
    size_t row;
    if (t->type == BN_TYPE_ACT_Q8) {
        row = bn_act_row_bytes(t->ne[0]);
    } else {
        bn_err e = {0};
        if (bn_row_bytes(t->type, t->ne[0], &row, &e) != BN_OK)
            FAIL(BN_ERR_INVALID_ARG, "%s '%s': %s", what, t->name, e.msg);
    }
    if (t->nb[1] != row || t->nb[2] != row * (size_t)t->ne[1] ||
        t->nb[3] != t->nb[2] * (size_t)t->ne[2])
        FAIL(BN_ERR_INVALID_ARG, "%s '%s' is not contiguous (row stride %zu, expected %zu)", what,
             t->name, t->nb[1], row);
    return BN_OK;
}

static bn_status check_type(const bn_tensor *node, const bn_tensor *t, const char *what,
                            uint32_t want, bn_err *err) {
    if (t->type != want)
        FAIL(BN_ERR_UNSUPPORTED, "%s '%s' has type %s, expected %s", what, t->name, tname(t->type),
             tname(want));
    return BN_OK;
}

static bn_status check_f32_like(const bn_tensor *node, const bn_tensor *src, bn_err *err) {
    bn_status st = check_type(node, src, "source", BN_TYPE_F32, err);
    if (st == BN_OK) st = check_type(node, node, "result", BN_TYPE_F32, err);
    if (st == BN_OK && !same_shape(src, node))
        FAIL(BN_ERR_INVALID_ARG, "result shape " SHAPE_FMT " differs from source " SHAPE_FMT,
             SHAPE(node), SHAPE(src));
    return st;
}

static int n_srcs(bn_op op) {
    switch (op) {
    case BN_OP_ATTENTION:
        return 3;
    case BN_OP_GET_ROWS:
    case BN_OP_MUL:
    case BN_OP_ADD:
    case BN_OP_MATMUL_TERNARY:
    case BN_OP_MATMUL_F:
    case BN_OP_ROPE:
    case BN_OP_KV_STORE:
        return 2;
    default:
        return 1;
    }
}

static bn_status check_matmul(const bn_tensor *node, bn_err *err) {
    const bn_tensor *w = node->src[0], *x = node->src[1];
    const bool ternary = node->op == BN_OP_MATMUL_TERNARY;
    if (ternary) {
        if (!bn_type_is_ternary(w->type) && !is_float(w->type))
            FAIL(BN_ERR_UNSUPPORTED,
                 "weight '%s' has type %s; MATMUL_TERNARY takes TQ1_0, TQ2_0, I2_S, F32, F16 or "
                 "BF16",
                 w->name, tname(w->type));
        if (x->type != BN_TYPE_ACT_Q8)
            FAIL(BN_ERR_UNSUPPORTED, "activations '%s' have type %s, expected ACT_Q8", x->name,
                 tname(x->type));
        if (w->ne[0] > (int64_t)1 << 23)
            FAIL(BN_ERR_UNSUPPORTED, "K = %lld exceeds 2^23 (int32 sums could overflow)",
                 (long long)w->ne[0]);
    } else {
        if (!is_readable(w->type) || w->type == BN_TYPE_ACT_Q8)
            FAIL(BN_ERR_UNSUPPORTED, "weight '%s' has type %s, which MATMUL_F cannot read", w->name,
                 tname(w->type));
        if (x->type != BN_TYPE_F32)
            FAIL(BN_ERR_UNSUPPORTED, "activations '%s' have type %s, expected F32", x->name,
                 tname(x->type));
    }
    if (!is_2d(w) || !is_2d(x))
        FAIL(BN_ERR_INVALID_ARG, "weight " SHAPE_FMT " and activations " SHAPE_FMT " must be 2-D",
             SHAPE(w), SHAPE(x));
    if (w->ne[0] != x->ne[0])
        FAIL(BN_ERR_INVALID_ARG, "weight '%s' has K = %lld but activations '%s' have %lld", w->name,
             (long long)w->ne[0], x->name, (long long)x->ne[0]);
    bn_status st = check_layout(node, w, "weight", err);
    if (st == BN_OK) st = check_layout(node, x, "activations", err);
    if (st != BN_OK) return st;
    if (node->type != BN_TYPE_F32 || node->ne[0] != w->ne[1] || node->ne[1] != x->ne[1] ||
        !is_2d(node))
        FAIL(BN_ERR_INVALID_ARG, "result %s " SHAPE_FMT " should be F32 [%lld, %lld]",
             tname(node->type), SHAPE(node), (long long)w->ne[1], (long long)x->ne[1]);
    return BN_OK;
}

static bn_status check_kv_cache(const bn_tensor *node, const bn_tensor *c, const char *what,
                                bn_err *err) {
    if (c->type != BN_TYPE_F16 && c->type != BN_TYPE_F32)
        FAIL(BN_ERR_UNSUPPORTED, "%s '%s' has type %s, expected F16 or F32", what, c->name,
             tname(c->type));
    if (!is_2d(c))
        FAIL(BN_ERR_INVALID_ARG, "%s '%s' " SHAPE_FMT " must be 2-D", what, c->name, SHAPE(c));
    return check_layout(node, c, what, err);
}

static bn_status check_attention(const bn_tensor *node, bn_err *err) {
    const bn_tensor *q = node->src[0], *k = node->src[1], *v = node->src[2];
    const int n_past = node->ip[0], n_head = node->ip[1], n_kv = node->ip[2], hd = node->ip[3];
    bn_status st = check_type(node, q, "query", BN_TYPE_F32, err);
    if (st == BN_OK) st = check_kv_cache(node, k, "K cache", err);
    if (st == BN_OK) st = check_kv_cache(node, v, "V cache", err);
    if (st == BN_OK) st = check_layout(node, q, "query", err);
    if (st != BN_OK) return st;
    if (n_head < 1 || n_kv < 1 || hd < 1 || n_past < 0)
        FAIL(BN_ERR_INVALID_ARG, "bad parameters n_head %d, n_kv %d, head_dim %d, n_past %d",
             n_head, n_kv, hd, n_past);
    if (n_head % n_kv != 0)
        FAIL(BN_ERR_INVALID_ARG, "n_head %d is not a multiple of n_kv %d", n_head, n_kv);
    if (!is_2d(q) || q->ne[0] != (int64_t)n_head * hd)
        FAIL(BN_ERR_INVALID_ARG, "query " SHAPE_FMT " should be [n_head * head_dim = %lld, T]",
             SHAPE(q), (long long)n_head * hd);
    if (k->ne[0] != (int64_t)n_kv * hd || !same_shape(k, v))
        FAIL(BN_ERR_INVALID_ARG,
             "K cache " SHAPE_FMT " and V cache " SHAPE_FMT " should both be [n_kv * head_dim = "
             "%lld, n_ctx]",
             SHAPE(k), SHAPE(v), (long long)n_kv * hd);
    if (n_past + q->ne[1] > k->ne[1])
        FAIL(BN_ERR_INVALID_ARG, "n_past %d + T %lld exceeds the cache's n_ctx %lld", n_past,
             (long long)q->ne[1], (long long)k->ne[1]);
    if (node->type != BN_TYPE_F32 || !same_shape(node, q))
        FAIL(BN_ERR_INVALID_ARG, "result %s " SHAPE_FMT " should be F32 shaped like the query",
             tname(node->type), SHAPE(node));
    return BN_OK;
}

static bn_status check_op(const bn_tensor *node, bn_err *err) {
    const bn_tensor *a = node->src[0], *b = node->src[1];
    bn_status st;
    switch (node->op) {
    case BN_OP_GET_ROWS:
        if (!is_readable(a->type) || a->type == BN_TYPE_ACT_Q8)
            FAIL(BN_ERR_UNSUPPORTED, "table '%s' has type %s, which cannot be read", a->name,
                 tname(a->type));
        if ((st = check_type(node, b, "ids", BN_TYPE_I32, err)) != BN_OK) return st;
        if (!is_2d(a) || b->ne[1] != 1 || !is_2d(b))
            FAIL(BN_ERR_INVALID_ARG, "table " SHAPE_FMT " must be 2-D and ids " SHAPE_FMT " 1-D",
                 SHAPE(a), SHAPE(b));
        if ((st = check_layout(node, a, "table", err)) != BN_OK) return st;
        if (node->type != BN_TYPE_F32 || node->ne[0] != a->ne[0] || node->ne[1] != b->ne[0] ||
            !is_2d(node))
            FAIL(BN_ERR_INVALID_ARG, "result %s " SHAPE_FMT " should be F32 [%lld, %lld]",
                 tname(node->type), SHAPE(node), (long long)a->ne[0], (long long)b->ne[0]);
        return BN_OK;
    case BN_OP_RMS_NORM:
        if ((st = check_f32_like(node, a, err)) != BN_OK) return st;
        if (!(node->fp[0] >= 0.0f) || isinf(node->fp[0]))
            FAIL(BN_ERR_INVALID_ARG, "eps %g must be finite and >= 0", (double)node->fp[0]);
        return BN_OK;
    case BN_OP_MUL:
    case BN_OP_ADD:
        if ((st = check_f32_like(node, a, err)) != BN_OK) return st;
        if ((st = check_type(node, b, "second source", BN_TYPE_F32, err)) != BN_OK) return st;
        if (!is_2d(b) || !(same_shape(a, b) || (b->ne[0] == a->ne[0] && b->ne[1] == 1) ||
                           (b->ne[0] == 1 && b->ne[1] == 1)))
            FAIL(BN_ERR_INVALID_ARG,
                 "second source '%s' " SHAPE_FMT " must be [%lld, %lld], [%lld, 1] or [1, 1]",
                 b->name, SHAPE(b), (long long)a->ne[0], (long long)a->ne[1], (long long)a->ne[0]);
        return BN_OK;
    case BN_OP_QUANTIZE_ACT:
        if ((st = check_type(node, a, "source", BN_TYPE_F32, err)) != BN_OK) return st;
        if ((st = check_type(node, node, "result", BN_TYPE_ACT_Q8, err)) != BN_OK) return st;
        if (!same_shape(a, node))
            FAIL(BN_ERR_INVALID_ARG, "result shape " SHAPE_FMT " differs from source " SHAPE_FMT,
                 SHAPE(node), SHAPE(a));
        return BN_OK;
    case BN_OP_MATMUL_TERNARY:
    case BN_OP_MATMUL_F:
        return check_matmul(node, err);
    case BN_OP_ROPE: {
        const int mode = node->ip[0], n_rot = node->ip[1], hd = node->ip[2];
        if ((st = check_f32_like(node, a, err)) != BN_OK) return st;
        if ((st = check_type(node, b, "positions", BN_TYPE_I32, err)) != BN_OK) return st;
        if (mode != BN_ROPE_NORMAL && mode != BN_ROPE_NEOX)
            FAIL(BN_ERR_UNSUPPORTED, "unknown rope mode %d", mode);
        if (hd < 1 || a->ne[0] % hd != 0)
            FAIL(BN_ERR_INVALID_ARG, "head_dim %d does not divide the row length %lld", hd,
                 (long long)a->ne[0]);
        if (n_rot < 2 || n_rot % 2 != 0 || n_rot > hd)
            FAIL(BN_ERR_INVALID_ARG, "n_rot %d must be even, >= 2 and <= head_dim %d", n_rot, hd);
        if (!(node->fp[0] > 0.0f) || isinf(node->fp[0]))
            FAIL(BN_ERR_INVALID_ARG, "freq_base %g must be finite and > 0", (double)node->fp[0]);
        if (!is_2d(a) || !is_2d(b) || b->ne[1] != 1 || b->ne[0] != a->ne[1])
            FAIL(BN_ERR_INVALID_ARG, "positions " SHAPE_FMT " should be [%lld] for x " SHAPE_FMT,
                 SHAPE(b), (long long)a->ne[1], SHAPE(a));
        return BN_OK;
    }
    case BN_OP_KV_STORE: {
        const int n_past = node->ip[0];
        if ((st = check_kv_cache(node, a, "cache", err)) != BN_OK) return st;
        if ((st = check_type(node, b, "source", BN_TYPE_F32, err)) != BN_OK) return st;
        if (!is_2d(b) || b->ne[0] != a->ne[0])
            FAIL(BN_ERR_INVALID_ARG, "source " SHAPE_FMT " rows do not match cache rows of %lld",
                 SHAPE(b), (long long)a->ne[0]);
        if (n_past < 0 || n_past + b->ne[1] > a->ne[1])
            FAIL(BN_ERR_INVALID_ARG, "n_past %d + T %lld exceeds the cache's n_ctx %lld", n_past,
                 (long long)b->ne[1], (long long)a->ne[1]);
        if (node->type != a->type || !same_shape(node, a))
            FAIL(BN_ERR_INVALID_ARG, "result must have the cache's type and shape");
        if (node->data != a->data)
            FAIL(BN_ERR_INVALID_ARG,
                 "result data %p is not the cache's data %p (a KV_STORE node is a view of its "
                 "cache: set the cache's data before building the node)",
                 node->data, a->data);
        return BN_OK;
    }
    case BN_OP_ATTENTION:
        return check_attention(node, err);
    case BN_OP_RELU_SQR:
    case BN_OP_SILU:
    case BN_OP_SCALE:
        return check_f32_like(node, a, err);
    case BN_OP_CPY:
        if (a->type != BN_TYPE_F32 && a->type != BN_TYPE_F16)
            FAIL(BN_ERR_UNSUPPORTED, "source '%s' has type %s, expected F32 or F16", a->name,
                 tname(a->type));
        if (node->type != BN_TYPE_F32 && node->type != BN_TYPE_F16)
            FAIL(BN_ERR_UNSUPPORTED, "result type %s, expected F32 or F16", tname(node->type));
        if (!same_shape(a, node))
            FAIL(BN_ERR_INVALID_ARG, "result shape " SHAPE_FMT " differs from source " SHAPE_FMT,
                 SHAPE(node), SHAPE(a));
        return BN_OK;
    default:
        FAIL(BN_ERR_UNSUPPORTED, "unknown op id %d (not an op of graph/ir.h)", (int)node->op);
    }
}

bn_status bn_cpu_check_node(const bn_tensor *node, bn_err *err) {
    if (!node) return bn_fail(err, BN_ERR_INVALID_ARG, "NULL node");
    if (node->op <= BN_OP_NONE || node->op >= BN_OP_COUNT)
        FAIL(BN_ERR_UNSUPPORTED, "op %d is not computed by the CPU backend", (int)node->op);
    const int ns = n_srcs(node->op);
    for (int i = 0; i < ns; i++)
        if (!node->src[i]) FAIL(BN_ERR_INVALID_ARG, "source %d is missing", i);
    for (int i = 0; i < ns; i++) {
        const bn_tensor *s = node->src[i];
        /* caches and weights have their layouts checked by the op */
        if (s->type == BN_TYPE_F32 || s->type == BN_TYPE_I32) {
            bn_status st = check_layout(node, s, "source", err);
            if (st != BN_OK) return st;
        }
    }
    bn_status st = check_op(node, err);
    if (st != BN_OK) return st;
    return check_layout(node, node, "result", err);
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
