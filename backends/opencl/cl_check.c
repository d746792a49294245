/* cl_check.c - which nodes the OpenCL backend runs (ops->supports, and the
 * check graph_prepare does on every node): the op with its sources' types and
 * shapes (graph/ir.h), within what the kernels handle and the device allows.
 *
 * Declared unsupported (the planner keeps these on the CPU):
 *  - GET_ROWS tables and MATMUL_F weights other than F32, F16, BF16 (the
 *    Q4_0/Q8_0/Q4_K/Q6_K/ternary embeddings some files carry);
 *  - ATTENTION with head_dim > 256;
 *  - tensors of 2^31 elements or more, or larger than the device's largest
 *    allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE);
 *  - tensors that are not 2-D and contiguous. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "cl_internal.h"

static const char *tname(uint32_t type) {
    const char *n = bn_type_name(type);
    if (n) return n;
    if (type == BN_TYPE_I32) return "I32";
    if (type == BN_TYPE_ACT_Q8) return "ACT_Q8";
    return "unknown";
}

static bn_status node_fail(bn_err *err, const clb_backend *be, const bn_tensor *node,
                           bn_status code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static bn_status node_fail(bn_err *err, const clb_backend *be, const bn_tensor *node,
                           bn_status code, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bn_fail(err, code, "opencl:%d: node '%s' (%s): %s", be->base.device, node->name,
                   bn_op_name(node->op), msg);
}

#define FAIL(code, ...) return node_fail(err, be, node, code, __VA_ARGS__)
#define UNSUP(...) FAIL(BN_ERR_UNSUPPORTED, __VA_ARGS__)
#define BAD(...) FAIL(BN_ERR_INVALID_ARG, __VA_ARGS__)

static bool is_float_w(uint32_t t) {
    return t == BN_TYPE_F32 || t == BN_TYPE_F16 || t == BN_TYPE_BF16;
}

static bool is_kv(uint32_t t) {
    return t == BN_TYPE_F32 || t == BN_TYPE_F16;
}

static bool same2(const bn_tensor *a, const bn_tensor *b) {
    return a->ne[0] == b->ne[0] && a->ne[1] == b->ne[1];
}

/* 2-D, contiguous for its type, small enough for int indices and one allocation. */
static bn_status check_tensor(const clb_backend *be, const bn_tensor *node, const bn_tensor *t,
                              const char *what, bn_err *err) {
    if (t->ne[0] < 1 || t->ne[1] < 1 || t->ne[2] != 1 || t->ne[3] != 1)
        BAD("%s '%s' must be 2-D with positive dimensions, not [%lld, %lld, %lld, %lld]", what,
            t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
            (long long)t->ne[3]);
    size_t row;
    if (t->type == BN_TYPE_ACT_Q8) {
        row = bn_act_row_bytes(t->ne[0]);
    } else {
        bn_err e = {0};
        if (bn_row_bytes(t->type, t->ne[0], &row, &e) != BN_OK)
            BAD("%s '%s': %s", what, t->name, e.msg);
    }
    if (t->nb[1] != row || t->nb[2] != row * (size_t)t->ne[1] || t->nb[3] != t->nb[2])
        BAD("%s '%s' is not contiguous (row stride %zu, expected %zu)", what, t->name, t->nb[1],
            row);
    if (bn_tensor_nelems(t) >= ((int64_t)1 << 31))
        UNSUP("%s '%s' has 2^31 elements or more", what, t->name);
    if (bn_tensor_nbytes(t) > be->caps.max_alloc)
        UNSUP("%s '%s' (%zu bytes) exceeds the device's largest allocation (%llu bytes)", what,
              t->name, bn_tensor_nbytes(t), (unsigned long long)be->caps.max_alloc);
    return BN_OK;
}

static bn_status want_type(const clb_backend *be, const bn_tensor *node, const bn_tensor *t,
                           const char *what, uint32_t type, bn_err *err) {
    if (t->type != type)
        UNSUP("%s '%s' has type %s, expected %s", what, t->name, tname(t->type), tname(type));
    return BN_OK;
}

/* Same-shape F32 in and out (RMS_NORM, unary ops, first source of MUL/ADD). */
static bn_status f32_like(const clb_backend *be, const bn_tensor *node, bn_err *err) {
    const bn_tensor *a = node->src[0];
    if (want_type(be, node, a, "source", BN_TYPE_F32, err)) return err->code;
    if (want_type(be, node, node, "result", BN_TYPE_F32, err)) return err->code;
    if (!same2(a, node)) BAD("result shape differs from the source's");
    return BN_OK;
}

static bn_status check_matmul(const clb_backend *be, const bn_tensor *node, bn_err *err) {
    const bn_tensor *w = node->src[0], *x = node->src[1];
    if (node->op == BN_OP_MATMUL_TERNARY) {
        if (!bn_type_is_ternary(w->type) && !is_float_w(w->type))
            UNSUP("weight '%s' has type %s; MATMUL_TERNARY takes TQ1_0, TQ2_0, I2_S, F32, F16 "
                  "or BF16",
                  w->name, tname(w->type));
        if (want_type(be, node, x, "activations", BN_TYPE_ACT_Q8, err)) return err->code;
        if (w->ne[0] > ((int64_t)1 << 23)) UNSUP("K = %lld exceeds 2^23", (long long)w->ne[0]);
    } else {
        if (!is_float_w(w->type))
            UNSUP("weight '%s' has type %s; the OpenCL backend's MATMUL_F takes F32, F16 or BF16",
                  w->name, tname(w->type));
        if (want_type(be, node, x, "activations", BN_TYPE_F32, err)) return err->code;
    }
    if (w->ne[0] != x->ne[0])
        BAD("weight '%s' has K = %lld but activations '%s' have %lld", w->name, (long long)w->ne[0],
            x->name, (long long)x->ne[0]);
    if (node->type != BN_TYPE_F32 || node->ne[0] != w->ne[1] || node->ne[1] != x->ne[1])
        BAD("result should be F32 [%lld, %lld]", (long long)w->ne[1], (long long)x->ne[1]);
    return BN_OK;
}

static bn_status check_attention(const clb_backend *be, const bn_tensor *node, bn_err *err) {
    const bn_tensor *q = node->src[0], *k = node->src[1], *v = node->src[2];
    const int n_past = node->ip[0], n_head = node->ip[1], n_kv = node->ip[2], hd = node->ip[3];
    if (want_type(be, node, q, "query", BN_TYPE_F32, err)) return err->code;
    if (!is_kv(k->type) || !is_kv(v->type))
        UNSUP("caches have types %s and %s, expected F16 or F32", tname(k->type), tname(v->type));
    if (n_head < 1 || n_kv < 1 || hd < 1 || n_past < 0 || n_head % n_kv != 0)
        BAD("bad parameters n_head %d, n_kv %d, head_dim %d, n_past %d", n_head, n_kv, hd, n_past);
    if (hd > 256) UNSUP("head_dim %d exceeds the kernel's 256", hd);
    if (q->ne[0] != (int64_t)n_head * hd) BAD("query rows are not n_head * head_dim");
    if (k->ne[0] != (int64_t)n_kv * hd || !same2(k, v))
        BAD("K and V caches should both be [n_kv * head_dim = %lld, n_ctx]", (long long)n_kv * hd);
    if (n_past + q->ne[1] > k->ne[1])
        BAD("n_past %d + T %lld exceeds the cache's n_ctx %lld", n_past, (long long)q->ne[1],
            (long long)k->ne[1]);
    if (node->type != BN_TYPE_F32 || !same2(node, q)) BAD("result should be F32 shaped like q");
    return BN_OK;
}

static bn_status check_op(const clb_backend *be, const bn_tensor *node, bn_err *err) {
    const bn_tensor *a = node->src[0], *b = node->src[1];
    switch (node->op) {
    case BN_OP_GET_ROWS:
        if (!is_float_w(a->type))
            UNSUP("table '%s' has type %s; the OpenCL backend reads F32, F16 or BF16 tables",
                  a->name, tname(a->type));
        if (want_type(be, node, b, "ids", BN_TYPE_I32, err)) return err->code;
        if (b->ne[1] != 1) BAD("ids must be 1-D");
        if (node->type != BN_TYPE_F32 || node->ne[0] != a->ne[0] || node->ne[1] != b->ne[0])
            BAD("result should be F32 [%lld, %lld]", (long long)a->ne[0], (long long)b->ne[0]);
        return BN_OK;
    case BN_OP_RMS_NORM:
        if (f32_like(be, node, err)) return err->code;
        if (!(node->fp[0] >= 0.0f) || isinf(node->fp[0])) BAD("eps must be finite and >= 0");
        return BN_OK;
    case BN_OP_MUL:
    case BN_OP_ADD:
        if (f32_like(be, node, err)) return err->code;
        if (want_type(be, node, b, "second source", BN_TYPE_F32, err)) return err->code;
        if (!(same2(a, b) || (b->ne[0] == a->ne[0] && b->ne[1] == 1) ||
              (b->ne[0] == 1 && b->ne[1] == 1)))
            BAD("second source '%s' must be [%lld, %lld], [%lld, 1] or [1, 1]", b->name,
                (long long)a->ne[0], (long long)a->ne[1], (long long)a->ne[0]);
        return BN_OK;
    case BN_OP_QUANTIZE_ACT:
        if (want_type(be, node, a, "source", BN_TYPE_F32, err)) return err->code;
        if (want_type(be, node, node, "result", BN_TYPE_ACT_Q8, err)) return err->code;
        if (!same2(a, node)) BAD("result shape differs from the source's");
        return BN_OK;
    case BN_OP_MATMUL_TERNARY:
    case BN_OP_MATMUL_F:
        return check_matmul(be, node, err);
    case BN_OP_ROPE: {
        const int mode = node->ip[0], n_rot = node->ip[1], hd = node->ip[2];
        if (f32_like(be, node, err)) return err->code;
        if (want_type(be, node, b, "positions", BN_TYPE_I32, err)) return err->code;
        if (mode != BN_ROPE_NORMAL && mode != BN_ROPE_NEOX) UNSUP("unknown rope mode %d", mode);
        if (hd < 1 || a->ne[0] % hd != 0) BAD("head_dim %d does not divide the row length", hd);
        if (n_rot < 2 || n_rot % 2 != 0 || n_rot > hd)
            BAD("n_rot %d must be even, >= 2 and <= head_dim %d", n_rot, hd);
        if (!(node->fp[0] > 0.0f) || isinf(node->fp[0])) BAD("freq_base must be finite and > 0");
        if (b->ne[1] != 1 || b->ne[0] != a->ne[1])
            BAD("positions should be [%lld]", (long long)a->ne[1]);
        return BN_OK;
    }
    case BN_OP_KV_STORE:
        if (!is_kv(a->type))
            UNSUP("cache '%s' has type %s, expected F16 or F32", a->name, tname(a->type));
        if (want_type(be, node, b, "source", BN_TYPE_F32, err)) return err->code;
        if (b->ne[0] != a->ne[0]) BAD("source rows do not match the cache rows");
        if (node->ip[0] < 0 || node->ip[0] + b->ne[1] > a->ne[1])
            BAD("n_past %d + T %lld exceeds the cache's n_ctx %lld", node->ip[0],
                (long long)b->ne[1], (long long)a->ne[1]);
        if (node->type != a->type || !same2(node, a) || node->data != a->data)
            BAD("a KV_STORE node must be a view of its cache (type, shape and data)");
        if (!(a->flags & BN_TENSOR_CACHE) && a->op == BN_OP_NONE)
            BAD("cache '%s' is not marked BN_TENSOR_CACHE", a->name);
        return BN_OK;
    case BN_OP_ATTENTION:
        return check_attention(be, node, err);
    case BN_OP_RELU_SQR:
    case BN_OP_SILU:
    case BN_OP_SCALE:
        return f32_like(be, node, err);
    case BN_OP_CPY:
        if (!is_kv(a->type) || !is_kv(node->type))
            UNSUP("copies F32/F16 to F32/F16, not %s to %s", tname(a->type), tname(node->type));
        if (!same2(a, node)) BAD("result shape differs from the source's");
        return BN_OK;
    default:
        UNSUP("unknown op id %d (not an op of graph/ir.h)", (int)node->op);
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

bn_status bn_cl_check_node(const clb_backend *be, const bn_tensor *node, bn_err *err) {
    if (!node) return bn_fail(err, BN_ERR_INVALID_ARG, "NULL node");
    if (node->op <= BN_OP_NONE || node->op >= BN_OP_COUNT)
        UNSUP("op %d is not computed by the OpenCL backend", (int)node->op);
    for (int i = 0; i < n_srcs(node->op); i++) {
        if (!node->src[i]) BAD("source %d is missing", i);
        if (check_tensor(be, node, node->src[i], "source", err)) return err->code;
    }
    if (check_tensor(be, node, node, "result", err)) return err->code;
    return check_op(be, node, err);
}
