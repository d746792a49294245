/* vk_check.c - which nodes the Vulkan backend runs: every node that is well formed by the IR
 * (bn_ir_check_node, graph/ir_check.c) and within what its shaders handle. A node outside
 * them is refused with BN_ERR_UNSUPPORTED and a message; through ops->supports the planner
 * sends such nodes to the CPU. Refused on purpose:
 *   - GET_ROWS / MATMUL_F over quantized tables (Q4_0, Q8_0, Q4_K, Q6_K, ternary): only
 *     F32, F16, BF16 (and I32 for GET_ROWS) are read by the float shaders;
 *   - tensors that are not 2-D, or with more than 2^28 elements in a dimension (the
 *     shaders index with 32-bit integers);
 *   - matmul weights that are not weight leaves (they are uploaded once, keyed by pointer);
 *   - an F16 KV cache with an odd row length (KV_STORE writes whole 32-bit words), or a
 *     cache that is not a leaf;
 *   - head_dim above 256 (ATTENTION stages one query head in shared memory);
 *   - ROPE with an odd head_dim, or whose positions are not a graph input (the cos/sin
 *     table is made on the host). */
#include "vk_internal.h"

#define FAIL(code, ...) return bn_node_fail(err, "vulkan", node, code, __VA_ARGS__)
#define UNSUP(...) FAIL(BN_ERR_UNSUPPORTED, __VA_ARGS__)

static bool is_float_w(uint32_t t) {
    return t == BN_TYPE_F32 || t == BN_TYPE_F16 || t == BN_TYPE_BF16;
}

/* 2-D and small enough for the shaders' 32-bit indexing. */
static bn_status check_size(const bn_tensor *node, const bn_tensor *t, bn_err *err) {
    if (t->ne[2] != 1 || t->ne[3] != 1)
        UNSUP("tensor '%s' [%lld, %lld, %lld, %lld] is not a 2-D tensor", t->name,
              (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
    if (t->ne[0] > ((int64_t)1 << 28) || t->ne[1] > ((int64_t)1 << 28))
        UNSUP("tensor '%s' is too large for 32-bit indexing", t->name);
    return BN_OK;
}

static bn_status check_limits(const bn_tensor *node, bn_err *err) {
    const bn_tensor *a = node->src[0], *b = node->src[1];
    switch (node->op) {
    case BN_OP_GET_ROWS:
        if (!is_float_w(a->type) && a->type != BN_TYPE_I32)
            UNSUP("table '%s' of type %s is not read by the Vulkan backend", a->name,
                  bn_ir_type_name(a->type));
        return BN_OK;
    case BN_OP_MATMUL_TERNARY:
    case BN_OP_MATMUL_F: {
        const bool tern = node->op == BN_OP_MATMUL_TERNARY;
        if (!tern && !is_float_w(a->type))
            UNSUP("weight '%s' of type %s is not supported by the Vulkan float matmul", a->name,
                  bn_ir_type_name(a->type));
        if (a->op != BN_OP_NONE || !(a->flags & BN_TENSOR_WEIGHT))
            UNSUP("the weight '%s' must be a weight leaf", a->name);
        return BN_OK;
    }
    case BN_OP_ROPE:
        if (node->ip[2] % 2) UNSUP("head_dim %d must be even", node->ip[2]);
        if (b->op != BN_OP_NONE) UNSUP("positions '%s' must be a graph input", b->name);
        return BN_OK;
    case BN_OP_KV_STORE:
        if (a->op != BN_OP_NONE) UNSUP("the cache must be a leaf");
        if (a->type == BN_TYPE_F16 && a->ne[0] % 2)
            UNSUP("an F16 cache needs an even row length, not %lld", (long long)a->ne[0]);
        return BN_OK;
    case BN_OP_ATTENTION:
        if (node->ip[3] > 256) UNSUP("head_dim %d exceeds 256", node->ip[3]);
        return BN_OK;
    default:
        return BN_OK;
    }
}

bn_status vk_check_node(const vk_backend *be, const bn_tensor *node, bn_err *err) {
    (void)be;
    bn_status st = bn_ir_check_node(node, "vulkan", err);
    if (st != BN_OK) return st;
    for (int i = 0; i < bn_op_n_srcs(node->op); i++)
        if ((st = check_size(node, node->src[i], err)) != BN_OK) return st;
    if ((st = check_size(node, node, err)) != BN_OK) return st;
    return check_limits(node, err);
}
