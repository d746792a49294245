/* cl_check.c - which nodes the OpenCL backend runs (ops->supports, and the
 * check graph_prepare does on every node): every node that is well formed by
 * the IR (bn_ir_check_node, graph/ir_check.c) and within what the kernels
 * handle and the device allows.
 *
 * Declared unsupported (the planner keeps these on the CPU):
 *  - GET_ROWS tables and MATMUL_F weights other than F32, F16, BF16 (the
 *    Q4_0/Q8_0/Q4_K/Q6_K/ternary embeddings some files carry);
 *  - ATTENTION with head_dim > 256;
 *  - tensors that are not 2-D, of 2^31 elements or more, or larger than the
 *    device's largest allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE);
 *  - a KV_STORE into a leaf that is not marked BN_TENSOR_CACHE. */
#include <stdio.h>

#include "cl_internal.h"

#define FAIL(code, ...) return bn_node_fail(err, who, node, code, __VA_ARGS__)
#define UNSUP(...) FAIL(BN_ERR_UNSUPPORTED, __VA_ARGS__)

static bool is_float_w(uint32_t t) {
    return t == BN_TYPE_F32 || t == BN_TYPE_F16 || t == BN_TYPE_BF16;
}

/* 2-D, small enough for int indices and one allocation. */
static bn_status check_size(const clb_backend *be, const char *who, const bn_tensor *node,
                            const bn_tensor *t, bn_err *err) {
    if (t->ne[2] != 1 || t->ne[3] != 1)
        UNSUP("'%s' must be 2-D, not [%lld, %lld, %lld, %lld]", t->name, (long long)t->ne[0],
              (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
    if (bn_tensor_nelems(t) >= ((int64_t)1 << 31)) UNSUP("'%s' has 2^31 elements or more", t->name);
    if (bn_tensor_nbytes(t) > be->caps.max_alloc)
        UNSUP("'%s' (%zu bytes) exceeds the device's largest allocation (%llu bytes)", t->name,
              bn_tensor_nbytes(t), (unsigned long long)be->caps.max_alloc);
    return BN_OK;
}

static bn_status check_limits(const char *who, const bn_tensor *node, bn_err *err) {
    const bn_tensor *a = node->src[0];
    switch (node->op) {
    case BN_OP_GET_ROWS:
        if (!is_float_w(a->type))
            UNSUP("table '%s' has type %s; the OpenCL backend reads F32, F16 or BF16 tables",
                  a->name, bn_ir_type_name(a->type));
        return BN_OK;
    case BN_OP_MATMUL_F:
        if (!is_float_w(a->type))
            UNSUP("weight '%s' has type %s; the OpenCL backend's MATMUL_F takes F32, F16 or BF16",
                  a->name, bn_ir_type_name(a->type));
        return BN_OK;
    case BN_OP_KV_STORE:
        if (!(a->flags & BN_TENSOR_CACHE) && a->op == BN_OP_NONE)
            FAIL(BN_ERR_INVALID_ARG, "cache '%s' is not marked BN_TENSOR_CACHE", a->name);
        return BN_OK;
    case BN_OP_ATTENTION:
        if (node->ip[3] > 256) UNSUP("head_dim %d exceeds the kernel's 256", node->ip[3]);
        return BN_OK;
    default:
        return BN_OK;
    }
}

bn_status bn_cl_check_node(const clb_backend *be, const bn_tensor *node, bn_err *err) {
    char who[32];
    snprintf(who, sizeof who, "opencl:%d", be->base.device);
    bn_status st = bn_ir_check_node(node, who, err);
    if (st != BN_OK) return st;
    for (int i = 0; i < bn_op_n_srcs(node->op); i++)
        if ((st = check_size(be, who, node, node->src[i], err)) != BN_OK) return st;
    if ((st = check_size(be, who, node, node, err)) != BN_OK) return st;
    return check_limits(who, node, err);
}
