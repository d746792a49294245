/* vk_check.c - which nodes the Vulkan backend runs: every IR op, for the types and shapes
 * its shaders handle (graph/ir.h gives the semantics). A node outside them is refused
 * with BN_ERR_UNSUPPORTED and a message; through ops->supports the planner sends such
 * nodes to the CPU. Refused on purpose:
 *   - GET_ROWS / MATMUL_F over quantized tables (Q4_0, Q8_0, Q4_K, Q6_K, ternary): only
 *     F32, F16, BF16 (and I32 for GET_ROWS) are read by the float shaders;
 *   - an F16 KV cache with an odd row length (KV_STORE writes whole 32-bit words);
 *   - head_dim above 256 (ATTENTION stages one query head in shared memory);
 *   - ROPE whose positions are not a graph input (the cos/sin table is made on the host).
 * Shapes are also checked for what the shaders index (contiguous rows, 2-D tensors). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "vk_internal.h"

static const char *tname(uint32_t type) {
    const char *n = bn_type_name(type);
    if (n) return n;
    if (type == BN_TYPE_I32) return "I32";
    if (type == BN_TYPE_ACT_Q8) return "ACT_Q8";
    return "unknown";
}

static bn_status node_fail(bn_err *err, const bn_tensor *node, bn_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bn_status node_fail(bn_err *err, const bn_tensor *node, bn_status code, const char *fmt,
                           ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bn_fail(err, code, "vulkan: node '%s' (%s): %s", node->name, bn_op_name(node->op), msg);
}

#define FAIL(code, ...) return node_fail(err, node, code, __VA_ARGS__)

static bool same_shape(const bn_tensor *a, const bn_tensor *b) {
    for (int i = 0; i < 4; i++)
        if (a->ne[i] != b->ne[i]) return false;
    return true;
}

static bool is_float_w(uint32_t t) {
    return t == BN_TYPE_F32 || t == BN_TYPE_F16 || t == BN_TYPE_BF16;
}

/* 2-D, positive dimensions, contiguous rows of its type. */
static bn_status check_layout(const bn_tensor *node, const bn_tensor *t, bn_err *err) {
    if (t->ne[0] < 1 || t->ne[1] < 1 || t->ne[2] != 1 || t->ne[3] != 1)
        FAIL(BN_ERR_UNSUPPORTED, "tensor '%s' [%lld, %lld, %lld, %lld] is not a 2-D tensor",
             t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
             (long long)t->ne[3]);
    size_t row;
    if (t->type == BN_TYPE_ACT_Q8) {
        row = bn_act_row_bytes(t->ne[0]);
    } else {
        bn_err e = {0};
        if (bn_row_bytes(t->type, t->ne[0], &row, &e) != BN_OK)
            FAIL(BN_ERR_INVALID_ARG, "tensor '%s': %s", t->name, e.msg);
    }
    if (t->nb[1] != row || t->nb[2] != row * (size_t)t->ne[1])
        FAIL(BN_ERR_INVALID_ARG, "tensor '%s' is not contiguous", t->name);
    if (t->ne[0] > ((int64_t)1 << 28) || t->ne[1] > ((int64_t)1 << 28))
        FAIL(BN_ERR_UNSUPPORTED, "tensor '%s' is too large for 32-bit indexing", t->name);
    return BN_OK;
}

static bn_status want(const bn_tensor *node, const bn_tensor *t, uint32_t type, bn_err *err) {
    if (t->type != type)
        FAIL(BN_ERR_UNSUPPORTED, "'%s' has type %s, expected %s", t->name, tname(t->type),
             tname(type));
    return BN_OK;
}

static bn_status check_cache(const bn_tensor *node, const bn_tensor *c, bn_err *err) {
    if (c->type != BN_TYPE_F16 && c->type != BN_TYPE_F32)
        FAIL(BN_ERR_UNSUPPORTED, "cache '%s' has type %s, expected F16 or F32", c->name,
             tname(c->type));
    return BN_OK;
}

static bn_status check_op(const vk_backend *be, const bn_tensor *node, bn_err *err) {
    const bn_tensor *a = node->src[0], *b = node->src[1], *c = node->src[2];
    bn_status st;
    (void)be;
    switch (node->op) {
    case BN_OP_GET_ROWS:
        if (!is_float_w(a->type) && a->type != BN_TYPE_I32)
            FAIL(BN_ERR_UNSUPPORTED, "table '%s' of type %s is not read by the Vulkan backend",
                 a->name, tname(a->type));
        if ((st = want(node, b, BN_TYPE_I32, err)) != BN_OK) return st;
        if (b->ne[1] != 1 || node->ne[0] != a->ne[0] || node->ne[1] != b->ne[0])
            FAIL(BN_ERR_INVALID_ARG, "ids must be [T] and the result [K, T]");
        if (a->ne[1] > INT32_MAX) FAIL(BN_ERR_UNSUPPORTED, "table has too many rows");
        return want(node, node, BN_TYPE_F32, err);
    case BN_OP_RMS_NORM:
    case BN_OP_RELU_SQR:
    case BN_OP_SILU:
    case BN_OP_SCALE:
        if ((st = want(node, a, BN_TYPE_F32, err)) != BN_OK) return st;
        if (!same_shape(a, node)) FAIL(BN_ERR_INVALID_ARG, "result shape differs from source");
        if (node->op == BN_OP_RMS_NORM && (!(node->fp[0] >= 0.0f) || isinf(node->fp[0])))
            FAIL(BN_ERR_INVALID_ARG, "eps %g must be finite and >= 0", (double)node->fp[0]);
        return want(node, node, BN_TYPE_F32, err);
    case BN_OP_MUL:
    case BN_OP_ADD:
        if ((st = want(node, a, BN_TYPE_F32, err)) != BN_OK) return st;
        if ((st = want(node, b, BN_TYPE_F32, err)) != BN_OK) return st;
        if (!same_shape(a, node)) FAIL(BN_ERR_INVALID_ARG, "result shape differs from source");
        if (!(same_shape(a, b) || (b->ne[0] == a->ne[0] && b->ne[1] == 1) ||
              (b->ne[0] == 1 && b->ne[1] == 1)))
            FAIL(BN_ERR_INVALID_ARG, "second source '%s' does not broadcast", b->name);
        return want(node, node, BN_TYPE_F32, err);
    case BN_OP_QUANTIZE_ACT:
        if ((st = want(node, a, BN_TYPE_F32, err)) != BN_OK) return st;
        if (!same_shape(a, node)) FAIL(BN_ERR_INVALID_ARG, "result shape differs from source");
        return want(node, node, BN_TYPE_ACT_Q8, err);
    case BN_OP_MATMUL_TERNARY:
    case BN_OP_MATMUL_F: {
        const bool tern = node->op == BN_OP_MATMUL_TERNARY;
        if (tern ? !(bn_type_is_ternary(a->type) || is_float_w(a->type)) : !is_float_w(a->type))
            FAIL(BN_ERR_UNSUPPORTED, "weight '%s' of type %s is not supported by the Vulkan %s",
                 a->name, tname(a->type), tern ? "ternary matmul" : "float matmul");
        if ((st = want(node, b, tern ? BN_TYPE_ACT_Q8 : BN_TYPE_F32, err)) != BN_OK) return st;
        if (a->ne[0] != b->ne[0] || node->ne[0] != a->ne[1] || node->ne[1] != b->ne[1])
            FAIL(BN_ERR_INVALID_ARG, "shapes do not match: W [%lld, %lld], x [%lld, %lld]",
                 (long long)a->ne[0], (long long)a->ne[1], (long long)b->ne[0],
                 (long long)b->ne[1]);
        if (tern && a->ne[0] > ((int64_t)1 << 23))
            FAIL(BN_ERR_UNSUPPORTED, "K exceeds 2^23 (int32 sums could overflow)");
        if (a->op != BN_OP_NONE || !(a->flags & BN_TENSOR_WEIGHT))
            FAIL(BN_ERR_UNSUPPORTED, "the weight '%s' must be a weight leaf", a->name);
        return want(node, node, BN_TYPE_F32, err);
    }
    case BN_OP_ROPE: {
        const int mode = node->ip[0], n_rot = node->ip[1], hd = node->ip[2];
        if ((st = want(node, a, BN_TYPE_F32, err)) != BN_OK) return st;
        if ((st = want(node, b, BN_TYPE_I32, err)) != BN_OK) return st;
        if (mode != BN_ROPE_NORMAL && mode != BN_ROPE_NEOX)
            FAIL(BN_ERR_UNSUPPORTED, "unknown rope mode %d", mode);
        if (hd < 2 || hd % 2 || a->ne[0] % hd)
            FAIL(BN_ERR_UNSUPPORTED, "head_dim %d must be even and divide %lld", hd,
                 (long long)a->ne[0]);
        if (n_rot < 2 || n_rot % 2 || n_rot > hd)
            FAIL(BN_ERR_INVALID_ARG, "n_rot %d must be even, >= 2 and <= head_dim", n_rot);
        if (!(node->fp[0] > 0.0f) || isinf(node->fp[0]))
            FAIL(BN_ERR_INVALID_ARG, "freq_base must be finite and > 0");
        if (b->ne[0] != a->ne[1] || b->ne[1] != 1)
            FAIL(BN_ERR_INVALID_ARG, "positions must be [T]");
        if (b->op != BN_OP_NONE)
            FAIL(BN_ERR_UNSUPPORTED, "positions '%s' must be a graph input", b->name);
        if (!same_shape(a, node)) FAIL(BN_ERR_INVALID_ARG, "result shape differs from source");
        return want(node, node, BN_TYPE_F32, err);
    }
    case BN_OP_KV_STORE:
        if ((st = check_cache(node, a, err)) != BN_OK) return st;
        if (a->op != BN_OP_NONE) FAIL(BN_ERR_UNSUPPORTED, "the cache must be a leaf");
        if ((st = want(node, b, BN_TYPE_F32, err)) != BN_OK) return st;
        if (b->ne[0] != a->ne[0]) FAIL(BN_ERR_INVALID_ARG, "row lengths differ");
        if (a->type == BN_TYPE_F16 && a->ne[0] % 2)
            FAIL(BN_ERR_UNSUPPORTED, "an F16 cache needs an even row length, not %lld",
                 (long long)a->ne[0]);
        if (node->ip[0] < 0 || node->ip[0] + b->ne[1] > a->ne[1])
            FAIL(BN_ERR_INVALID_ARG, "n_past %d + T %lld exceeds the cache's n_ctx %lld",
                 node->ip[0], (long long)b->ne[1], (long long)a->ne[1]);
        if (node->type != a->type || !same_shape(node, a) || node->data != a->data)
            FAIL(BN_ERR_INVALID_ARG, "a KV_STORE node must be a view of its cache");
        return BN_OK;
    case BN_OP_ATTENTION: {
        const int n_past = node->ip[0], nh = node->ip[1], nkv = node->ip[2], hd = node->ip[3];
        if ((st = want(node, a, BN_TYPE_F32, err)) != BN_OK) return st;
        if ((st = check_cache(node, b, err)) != BN_OK) return st;
        if ((st = check_cache(node, c, err)) != BN_OK) return st;
        if (nh < 1 || nkv < 1 || hd < 1 || n_past < 0 || nh % nkv)
            FAIL(BN_ERR_INVALID_ARG, "bad parameters n_head %d, n_kv %d, head_dim %d", nh, nkv, hd);
        if (hd > 256) FAIL(BN_ERR_UNSUPPORTED, "head_dim %d exceeds 256", hd);
        if (a->ne[0] != (int64_t)nh * hd || b->ne[0] != (int64_t)nkv * hd || !same_shape(b, c))
            FAIL(BN_ERR_INVALID_ARG, "query or cache shapes do not match the head counts");
        if (n_past + a->ne[1] > b->ne[1])
            FAIL(BN_ERR_INVALID_ARG, "n_past %d + T %lld exceeds the cache's n_ctx %lld", n_past,
                 (long long)a->ne[1], (long long)b->ne[1]);
        if (!same_shape(a, node)) FAIL(BN_ERR_INVALID_ARG, "result shape differs from query");
        return want(node, node, BN_TYPE_F32, err);
    }
    case BN_OP_CPY:
        if (a->type != BN_TYPE_F32 && a->type != BN_TYPE_F16)
            FAIL(BN_ERR_UNSUPPORTED, "source type %s, expected F32 or F16", tname(a->type));
        if (node->type != BN_TYPE_F32 && node->type != BN_TYPE_F16)
            FAIL(BN_ERR_UNSUPPORTED, "result type %s, expected F32 or F16", tname(node->type));
        if (!same_shape(a, node)) FAIL(BN_ERR_INVALID_ARG, "result shape differs from source");
        return BN_OK;
    default:
        FAIL(BN_ERR_UNSUPPORTED, "unknown op id %d (not an op of graph/ir.h)", (int)node->op);
    }
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

bn_status vk_check_node(const vk_backend *be, const bn_tensor *node, bn_err *err) {
    if (!node) return bn_fail(err, BN_ERR_INVALID_ARG, "NULL node");
    if (node->op <= BN_OP_NONE || node->op >= BN_OP_COUNT)
        FAIL(BN_ERR_UNSUPPORTED, "op %d is not computed by the Vulkan backend", (int)node->op);
    const int ns = n_srcs(node->op);
    for (int i = 0; i < ns; i++) {
        if (!node->src[i]) FAIL(BN_ERR_INVALID_ARG, "source %d is missing", i);
        bn_status st = check_layout(node, node->src[i], err);
        if (st != BN_OK) return st;
    }
    bn_status st = check_layout(node, node, err);
    if (st != BN_OK) return st;
    return check_op(be, node, err);
}
