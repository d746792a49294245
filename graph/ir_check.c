/* ir_check.c - whether a node is well formed by the op semantics of ir.h:
 * its sources are present, every tensor it touches has positive dimensions
 * and the contiguous layout of its type, and its types, shapes and
 * parameters are those its op defines. The CPU backend runs every node that
 * passes; the GPU backends call bn_ir_check_node first and then check their
 * own limits (types their shaders read, 2-D only, index widths), reporting
 * them with bn_node_fail so every message reads the same way. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "ir.h"

#define FAIL(code, ...) return bn_node_fail(err, NULL, node, code, __VA_ARGS__)
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
        FAIL(BN_ERR_UNSUPPORTED, "%s '%s' has type %s, expected %s", what, t->name,
             bn_ir_type_name(t->type), bn_ir_type_name(want));
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

int bn_op_n_srcs(bn_op op) {
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
                 w->name, bn_ir_type_name(w->type));
        if (x->type != BN_TYPE_ACT_Q8)
            FAIL(BN_ERR_UNSUPPORTED, "activations '%s' have type %s, expected ACT_Q8", x->name,
                 bn_ir_type_name(x->type));
        if (w->ne[0] > (int64_t)1 << 23)
            FAIL(BN_ERR_UNSUPPORTED, "K = %lld exceeds 2^23 (int32 sums could overflow)",
                 (long long)w->ne[0]);
    } else {
        if (!is_readable(w->type) || w->type == BN_TYPE_ACT_Q8)
            FAIL(BN_ERR_UNSUPPORTED, "weight '%s' has type %s, which MATMUL_F cannot read", w->name,
                 bn_ir_type_name(w->type));
        if (x->type != BN_TYPE_F32)
            FAIL(BN_ERR_UNSUPPORTED, "activations '%s' have type %s, expected F32", x->name,
                 bn_ir_type_name(x->type));
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
             bn_ir_type_name(node->type), SHAPE(node), (long long)w->ne[1], (long long)x->ne[1]);
    return BN_OK;
}

static bn_status check_kv_cache(const bn_tensor *node, const bn_tensor *c, const char *what,
                                bn_err *err) {
    if (c->type != BN_TYPE_F16 && c->type != BN_TYPE_F32)
        FAIL(BN_ERR_UNSUPPORTED, "%s '%s' has type %s, expected F16 or F32", what, c->name,
             bn_ir_type_name(c->type));
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
             bn_ir_type_name(node->type), SHAPE(node));
    return BN_OK;
}

static bn_status check_op(const bn_tensor *node, bn_err *err) {
    const bn_tensor *a = node->src[0], *b = node->src[1];
    bn_status st;
    switch (node->op) {
    case BN_OP_GET_ROWS:
        if (!is_readable(a->type) || a->type == BN_TYPE_ACT_Q8)
            FAIL(BN_ERR_UNSUPPORTED, "table '%s' has type %s, which cannot be read", a->name,
                 bn_ir_type_name(a->type));
        if ((st = check_type(node, b, "ids", BN_TYPE_I32, err)) != BN_OK) return st;
        if (!is_2d(a) || b->ne[1] != 1 || !is_2d(b))
            FAIL(BN_ERR_INVALID_ARG, "table " SHAPE_FMT " must be 2-D and ids " SHAPE_FMT " 1-D",
                 SHAPE(a), SHAPE(b));
        if ((st = check_layout(node, a, "table", err)) != BN_OK) return st;
        if (node->type != BN_TYPE_F32 || node->ne[0] != a->ne[0] || node->ne[1] != b->ne[0] ||
            !is_2d(node))
            FAIL(BN_ERR_INVALID_ARG, "result %s " SHAPE_FMT " should be F32 [%lld, %lld]",
                 bn_ir_type_name(node->type), SHAPE(node), (long long)a->ne[0],
                 (long long)b->ne[0]);
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
                 bn_ir_type_name(a->type));
        if (node->type != BN_TYPE_F32 && node->type != BN_TYPE_F16)
            FAIL(BN_ERR_UNSUPPORTED, "result type %s, expected F32 or F16",
                 bn_ir_type_name(node->type));
        if (!same_shape(a, node))
            FAIL(BN_ERR_INVALID_ARG, "result shape " SHAPE_FMT " differs from source " SHAPE_FMT,
                 SHAPE(node), SHAPE(a));
        return BN_OK;
    default:
        FAIL(BN_ERR_UNSUPPORTED, "unknown op id %d (not an op of graph/ir.h)", (int)node->op);
    }
}

static bn_status check_node(const bn_tensor *node, bn_err *err) {
    if (!node) return bn_fail(err, BN_ERR_INVALID_ARG, "NULL node");
    if (node->op <= BN_OP_NONE || node->op >= BN_OP_COUNT)
        FAIL(BN_ERR_UNSUPPORTED, "op %d is not an op of graph/ir.h", (int)node->op);
    const int ns = bn_op_n_srcs(node->op);
    for (int i = 0; i < ns; i++)
        if (!node->src[i]) FAIL(BN_ERR_INVALID_ARG, "source %d is missing", i);
    for (int i = 0; i < ns; i++) {
        const bn_tensor *s = node->src[i];
        /* first the F32 and I32 sources; the others after the op has checked their types */
        if (s->type == BN_TYPE_F32 || s->type == BN_TYPE_I32) {
            bn_status st = check_layout(node, s, "source", err);
            if (st != BN_OK) return st;
        }
    }
    bn_status st = check_op(node, err);
    for (int i = 0; i < ns && st == BN_OK; i++)
        st = check_layout(node, node->src[i], "source", err);
    if (st != BN_OK) return st;
    return check_layout(node, node, "result", err);
}

bn_status bn_ir_check_node(const bn_tensor *node, const char *who, bn_err *err) {
    const bn_status st = check_node(node, err);
    if (st != BN_OK && err && who) bn_err_prefix(err, "%s", who);
    return st;
}

bn_status bn_node_fail(bn_err *err, const char *who, const bn_tensor *node, bn_status code,
                       const char *fmt, ...) {
    if (!err) return code;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (who)
        return bn_fail(err, code, "%s: node '%s' (%s): %s", who, node->name, bn_op_name(node->op),
                       msg);
    return bn_fail(err, code, "node '%s' (%s): %s", node->name, bn_op_name(node->op), msg);
}
