/* ir.h - the compute-graph IR: tensors, ops, graphs (DESIGN.md "The graph IR").
 *
 * A tensor has an element type (core/types.h), up to 4 dimensions (ne[0] is
 * innermost: the features of one token; ne[1] counts tokens or weight rows),
 * byte strides nb[] of a contiguous layout, the op that produces it and its
 * sources, op parameters, a name and a data pointer. Tensors are contiguous:
 * row r of a 2-D tensor starts at data + r * nb[1]. A graph is a list of nodes
 * in topological order, built once per shape and reused across steps.
 *
 * Op semantics (every backend implements these exactly; K = src0->ne[0],
 * T = tokens = ne[1] of activations):
 *   GET_ROWS      src0 table [K, R] (any type of core/types.h), src1 ids I32 [T]
 *                 -> F32 [K, T]: column t = dequantized row ids[t] of src0.
 *   RMS_NORM      src0 F32 [K, T], f[0] = eps -> F32 [K, T]: x / sqrt(mean(x^2) + eps).
 *   MUL, ADD      src0 F32 [K, T], src1 F32 [K, T] or [K, 1] or [1, 1] (broadcast)
 *                 -> F32 [K, T], elementwise.
 *   QUANTIZE_ACT  src0 F32 [K, T] -> ACT_Q8 [K, T]: per-token int8 (FORMATS.md),
 *                 rows laid out as bn_act_row (types.h), nb[1] = bn_act_row_bytes(K).
 *   MATMUL_TERNARY src0 weights [K, N] (TQ1_0, TQ2_0, I2_S; or F32/F16/BF16 holding
 *                 ternary values), src1 ACT_Q8 [K, T] -> F32 [N, T]:
 *                 ternary: y[n,t] = sum_g d_g * (sum_{i in g} (c_ni - 1) * q_ti) / s_t,
 *                 g = 256-element groups (one tensor scale for I2_S), exact int32 sums;
 *                 float weights: y[n,t] = (sum_i w_ni * q_ti) / s_t.
 *   MATMUL_F      src0 weights [K, N] (any type of core/types.h), src1 F32 [K, T]
 *                 -> F32 [N, T]: y[n,t] = sum_i w_ni * x_ti.
 *   ROPE          src0 F32 [n_head * head_dim, T], src1 positions I32 [T];
 *                 i[0] = mode (BN_ROPE_NORMAL: pairs (2j, 2j+1); BN_ROPE_NEOX: pairs
 *                 (j, j + n_rot/2)), i[1] = n_rot (rotated dims per head, even, <= head_dim),
 *                 i[2] = head_dim, f[0] = freq_base. For pair j in 0..n_rot/2-1 of each
 *                 head: theta = pos * freq_base^(-2j/n_rot); (a, b) -> (a cos - b sin,
 *                 a sin + b cos). Dims >= n_rot pass through. -> F32 same shape.
 *   KV_STORE      src0 cache [kv_dim, n_ctx] (F16 or F32), src1 F32 [kv_dim, T],
 *                 i[0] = n_past: rows n_past .. n_past+T-1 of the cache = src1 (converted).
 *                 The node's data is the cache's (no new memory); later readers of the
 *                 cache name this node as their source so they run after the store.
 *   ATTENTION     src0 q F32 [n_head * head_dim, T], src1 K cache [n_kv * head_dim, n_ctx],
 *                 src2 V cache (same shape; F16 or F32), i[0] = n_past, i[1] = n_head,
 *                 i[2] = n_kv, i[3] = head_dim, f[0] = scale -> F32 [n_head * head_dim, T].
 *                 Query t (position n_past + t), head h, uses kv head h / (n_head / n_kv):
 *                 p_j = softmax_j(scale * q . k_j) over j = 0 .. n_past + t (causal),
 *                 out = sum_j p_j v_j.
 *   RELU_SQR      F32 -> F32: max(x, 0)^2.      SILU  F32 -> F32: x / (1 + exp(-x)).
 *   SCALE         F32 -> F32: x * f[0].
 *   CPY           src0 F32 or F16 -> the node's type (F32 or F16), same shape.
 */
#ifndef BN_IR_H
#define BN_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/types.h"

#define BN_MAX_SRC 4
#define BN_MAX_PARAMS 8

typedef enum bn_op {
    BN_OP_NONE = 0, /* a leaf: input, weight or cache; data set by its owner */
    BN_OP_GET_ROWS,
    BN_OP_RMS_NORM,
    BN_OP_MUL,
    BN_OP_ADD,
    BN_OP_QUANTIZE_ACT,
    BN_OP_MATMUL_TERNARY,
    BN_OP_MATMUL_F,
    BN_OP_ROPE,
    BN_OP_KV_STORE,
    BN_OP_ATTENTION,
    BN_OP_RELU_SQR,
    BN_OP_SILU,
    BN_OP_SCALE,
    BN_OP_CPY,
    BN_OP_COUNT
} bn_op;

enum bn_tensor_flags {
    BN_TENSOR_INPUT = 1 << 0,  /* filled by the caller before each run (ids, positions) */
    BN_TENSOR_OUTPUT = 1 << 1, /* read by the caller after a run (logits) */
    BN_TENSOR_WEIGHT = 1 << 2, /* model weight: data points into the model mapping */
    BN_TENSOR_CACHE = 1 << 3,  /* KV cache: persistent across runs */
};

typedef struct bn_tensor {
    uint32_t type; /* enum bn_type */
    int64_t ne[4];
    size_t nb[4];
    bn_op op;
    struct bn_tensor *src[BN_MAX_SRC];
    int32_t ip[BN_MAX_PARAMS]; /* integer parameters, per op (see above) */
    float fp[BN_MAX_PARAMS];   /* float parameters, per op */
    uint32_t flags;
    char name[64];
    void *data;
    int id;    /* index in the graph's tensor list */
    int layer; /* transformer layer this tensor belongs to; -1: embedding or output head */
} bn_tensor;

typedef struct bn_graph {
    bn_tensor **tensors; /* every tensor, leaves included, in creation order */
    int n_tensors, cap_tensors;
    bn_tensor **nodes; /* tensors with an op, in execution (topological) order */
    int n_nodes, cap_nodes;
    bool oom; /* an allocation failed while building; bn_graph_check reports it */
} bn_graph;

const char *bn_op_name(bn_op op);
/* The number of sources op reads: src[0 .. n-1]. */
int bn_op_n_srcs(bn_op op);
/* A type's name (core/types.h), including the IR's I32 and ACT_Q8; "unknown" otherwise. */
const char *bn_ir_type_name(uint32_t type);

/* Whether node is well formed by the op semantics above: its sources are
 * present; every tensor has positive dimensions and the contiguous layout of
 * its type; types, shapes and parameters are those its op defines (MATMUL_TERNARY
 * also needs K <= 2^23 so its int32 sums are exact). Returns BN_ERR_UNSUPPORTED
 * for a type the op does not take, BN_ERR_INVALID_ARG for anything else, with
 * "WHO: node 'NAME' (OP): what is wrong" in err (no "WHO: " when who is NULL).
 * (graph/ir_check.c) */
bn_status bn_ir_check_node(const bn_tensor *node, const char *who, bn_err *err);
/* Fills err (may be NULL) with that same form of message and returns code: for
 * a backend's own limits beyond the IR's. */
bn_status bn_node_fail(bn_err *err, const char *who, const bn_tensor *node, bn_status code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

bn_graph *bn_graph_new(void);
void bn_graph_free(bn_graph *g); /* frees tensors, not their data */
/* BN_ERR_OOM if any allocation during building failed. */
bn_status bn_graph_check(const bn_graph *g, bn_err *err);

/* Number of elements and bytes of a tensor (contiguous). */
int64_t bn_tensor_nelems(const bn_tensor *t);
size_t bn_tensor_nbytes(const bn_tensor *t);
/* Bytes of one row (nb[1]). */
size_t bn_tensor_row_bytes(const bn_tensor *t);

/* A leaf tensor with the given type and shape (unused dims = 1). */
bn_tensor *bn_new_tensor(bn_graph *g, uint32_t type, int64_t ne0, int64_t ne1, const char *name);

/* Op constructors: each creates the result tensor with its shape and type, links
 * the sources, sets parameters and appends the node. A printf-style name follows. */
bn_tensor *bn_get_rows(bn_graph *g, bn_tensor *table, bn_tensor *ids);
bn_tensor *bn_rms_norm(bn_graph *g, bn_tensor *x, float eps);
bn_tensor *bn_mul(bn_graph *g, bn_tensor *a, bn_tensor *b);
bn_tensor *bn_add(bn_graph *g, bn_tensor *a, bn_tensor *b);
bn_tensor *bn_quantize_act(bn_graph *g, bn_tensor *x);
bn_tensor *bn_matmul_ternary(bn_graph *g, bn_tensor *w, bn_tensor *xq);
bn_tensor *bn_matmul_f(bn_graph *g, bn_tensor *w, bn_tensor *x);
bn_tensor *bn_rope(bn_graph *g, bn_tensor *x, bn_tensor *pos, int mode, int n_rot, int head_dim,
                   float freq_base);
bn_tensor *bn_kv_store(bn_graph *g, bn_tensor *cache, bn_tensor *x, int n_past);
bn_tensor *bn_attention(bn_graph *g, bn_tensor *q, bn_tensor *k, bn_tensor *v, int n_past,
                        int n_head, int n_kv, int head_dim, float scale);
bn_tensor *bn_relu_sqr(bn_graph *g, bn_tensor *x);
bn_tensor *bn_silu(bn_graph *g, bn_tensor *x);
bn_tensor *bn_scale(bn_graph *g, bn_tensor *x, float s);
bn_tensor *bn_cpy(bn_graph *g, bn_tensor *x, uint32_t type);

/* Sets the name of t (printf-style) and returns t. */
bn_tensor *bn_set_name(bn_tensor *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
