/* ir.c - building graphs: tensor creation, shapes and the op constructors
 * (semantics in ir.h). Building never fails loudly: an allocation failure sets
 * g->oom and returns a static dummy, and bn_graph_check reports it. */
#include "ir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[BN_OP_COUNT] = {
    [BN_OP_NONE] = "NONE",
    [BN_OP_GET_ROWS] = "GET_ROWS",
    [BN_OP_RMS_NORM] = "RMS_NORM",
    [BN_OP_MUL] = "MUL",
    [BN_OP_ADD] = "ADD",
    [BN_OP_QUANTIZE_ACT] = "QUANTIZE_ACT",
    [BN_OP_MATMUL_TERNARY] = "MATMUL_TERNARY",
    [BN_OP_MATMUL_F] = "MATMUL_F",
    [BN_OP_ROPE] = "ROPE",
    [BN_OP_KV_STORE] = "KV_STORE",
    [BN_OP_ATTENTION] = "ATTENTION",
    [BN_OP_RELU_SQR] = "RELU_SQR",
    [BN_OP_SILU] = "SILU",
    [BN_OP_SCALE] = "SCALE",
    [BN_OP_CPY] = "CPY",
};

const char *bn_op_name(bn_op op) {
    return (op >= 0 && op < BN_OP_COUNT) ? op_names[op] : "?";
}

const char *bn_ir_type_name(uint32_t type) {
    const char *n = bn_type_name(type);
    if (n) return n;
    if (type == BN_TYPE_I32) return "I32";
    if (type == BN_TYPE_ACT_Q8) return "ACT_Q8";
    return "unknown";
}

bn_graph *bn_graph_new(void) {
    return calloc(1, sizeof(bn_graph));
}

void bn_graph_free(bn_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_tensors; i++) free(g->tensors[i]);
    free(g->tensors);
    free(g->nodes);
    free(g);
}

bn_status bn_graph_check(const bn_graph *g, bn_err *err) {
    if (!g || g->oom) return bn_fail(err, BN_ERR_OOM, "out of memory while building the graph");
    return BN_OK;
}

int64_t bn_tensor_nelems(const bn_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

size_t bn_tensor_row_bytes(const bn_tensor *t) {
    return t->nb[1];
}

size_t bn_tensor_nbytes(const bn_tensor *t) {
    if (t->type == BN_TYPE_I2_S) return (size_t)(bn_tensor_nelems(t) / 4) + BN_I2S_TAIL;
    return t->nb[3] * (size_t)t->ne[3];
}

/* Strides of a contiguous tensor: rows of nb[1] bytes. Block types are only used
 * for weights, whose shapes were validated when the file was opened. */
static void set_strides(bn_tensor *t) {
    size_t row;
    if (t->type == BN_TYPE_ACT_Q8)
        row = bn_act_row_bytes(t->ne[0]);
    else if (bn_row_bytes(t->type, t->ne[0], &row, NULL) != BN_OK)
        row = 0;
    t->nb[0] = row / (size_t)(t->ne[0] > 0 ? t->ne[0] : 1);
    t->nb[1] = row;
    t->nb[2] = row * (size_t)t->ne[1];
    t->nb[3] = t->nb[2] * (size_t)t->ne[2];
}

static bn_tensor oom_dummy;

static bool grow(void ***arr, int *cap, int n) {
    if (n < *cap) return true;
    int nc = *cap ? *cap * 2 : 256;
    void **p = realloc(*arr, (size_t)nc * sizeof **arr);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

static bn_tensor *new_tensor4(bn_graph *g, uint32_t type, const int64_t ne[4]) {
    if (g->oom) return &oom_dummy;
    bn_tensor *t = calloc(1, sizeof *t);
    if (!t || !grow((void ***)&g->tensors, &g->cap_tensors, g->n_tensors)) {
        free(t);
        g->oom = true;
        return &oom_dummy;
    }
    t->type = type;
    for (int i = 0; i < 4; i++) t->ne[i] = ne[i] > 0 ? ne[i] : 1;
    set_strides(t);
    t->id = g->n_tensors;
    g->tensors[g->n_tensors++] = t;
    return t;
}

bn_tensor *bn_new_tensor(bn_graph *g, uint32_t type, int64_t ne0, int64_t ne1, const char *name) {
    int64_t ne[4] = {ne0, ne1, 1, 1};
    bn_tensor *t = new_tensor4(g, type, ne);
    if (t != &oom_dummy && name) snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

bn_tensor *bn_set_name(bn_tensor *t, const char *fmt, ...) {
    if (t == &oom_dummy) return t;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    return t;
}

/* Creates the result of op with sources a, b, c and appends it to the nodes. */
static bn_tensor *new_node(bn_graph *g, bn_op op, uint32_t type, int64_t ne0, int64_t ne1,
                           bn_tensor *a, bn_tensor *b, bn_tensor *c) {
    int64_t ne[4] = {ne0, ne1, 1, 1};
    bn_tensor *t = new_tensor4(g, type, ne);
    if (t == &oom_dummy) return t;
    if (!grow((void ***)&g->nodes, &g->cap_nodes, g->n_nodes)) {
        g->oom = true;
        return &oom_dummy;
    }
    t->op = op;
    t->src[0] = a;
    t->src[1] = b;
    t->src[2] = c;
    snprintf(t->name, sizeof t->name, "%s", bn_op_name(op));
    g->nodes[g->n_nodes++] = t;
    return t;
}

bn_tensor *bn_get_rows(bn_graph *g, bn_tensor *table, bn_tensor *ids) {
    return new_node(g, BN_OP_GET_ROWS, BN_TYPE_F32, table->ne[0], ids->ne[0], table, ids, NULL);
}

bn_tensor *bn_rms_norm(bn_graph *g, bn_tensor *x, float eps) {
    bn_tensor *t = new_node(g, BN_OP_RMS_NORM, BN_TYPE_F32, x->ne[0], x->ne[1], x, NULL, NULL);
    t->fp[0] = eps;
    return t;
}

bn_tensor *bn_mul(bn_graph *g, bn_tensor *a, bn_tensor *b) {
    return new_node(g, BN_OP_MUL, BN_TYPE_F32, a->ne[0], a->ne[1], a, b, NULL);
}

bn_tensor *bn_add(bn_graph *g, bn_tensor *a, bn_tensor *b) {
    return new_node(g, BN_OP_ADD, BN_TYPE_F32, a->ne[0], a->ne[1], a, b, NULL);
}

bn_tensor *bn_quantize_act(bn_graph *g, bn_tensor *x) {
    return new_node(g, BN_OP_QUANTIZE_ACT, BN_TYPE_ACT_Q8, x->ne[0], x->ne[1], x, NULL, NULL);
}

bn_tensor *bn_matmul_ternary(bn_graph *g, bn_tensor *w, bn_tensor *xq) {
    return new_node(g, BN_OP_MATMUL_TERNARY, BN_TYPE_F32, w->ne[1], xq->ne[1], w, xq, NULL);
}

bn_tensor *bn_matmul_f(bn_graph *g, bn_tensor *w, bn_tensor *x) {
    return new_node(g, BN_OP_MATMUL_F, BN_TYPE_F32, w->ne[1], x->ne[1], w, x, NULL);
}

bn_tensor *bn_rope(bn_graph *g, bn_tensor *x, bn_tensor *pos, int mode, int n_rot, int head_dim,
                   float freq_base) {
    bn_tensor *t = new_node(g, BN_OP_ROPE, BN_TYPE_F32, x->ne[0], x->ne[1], x, pos, NULL);
    t->ip[0] = mode;
    t->ip[1] = n_rot;
    t->ip[2] = head_dim;
    t->fp[0] = freq_base;
    return t;
}

bn_tensor *bn_kv_store(bn_graph *g, bn_tensor *cache, bn_tensor *x, int n_past) {
    bn_tensor *t =
        new_node(g, BN_OP_KV_STORE, cache->type, cache->ne[0], cache->ne[1], cache, x, NULL);
    t->ip[0] = n_past;
    t->flags |= BN_TENSOR_CACHE;
    t->data = cache->data;
    return t;
}

bn_tensor *bn_attention(bn_graph *g, bn_tensor *q, bn_tensor *k, bn_tensor *v, int n_past,
                        int n_head, int n_kv, int head_dim, float scale) {
    bn_tensor *t = new_node(g, BN_OP_ATTENTION, BN_TYPE_F32, q->ne[0], q->ne[1], q, k, v);
    t->ip[0] = n_past;
    t->ip[1] = n_head;
    t->ip[2] = n_kv;
    t->ip[3] = head_dim;
    t->fp[0] = scale;
    return t;
}

bn_tensor *bn_relu_sqr(bn_graph *g, bn_tensor *x) {
    return new_node(g, BN_OP_RELU_SQR, BN_TYPE_F32, x->ne[0], x->ne[1], x, NULL, NULL);
}

bn_tensor *bn_silu(bn_graph *g, bn_tensor *x) {
    return new_node(g, BN_OP_SILU, BN_TYPE_F32, x->ne[0], x->ne[1], x, NULL, NULL);
}

bn_tensor *bn_scale(bn_graph *g, bn_tensor *x, float s) {
    bn_tensor *t = new_node(g, BN_OP_SCALE, BN_TYPE_F32, x->ne[0], x->ne[1], x, NULL, NULL);
    t->fp[0] = s;
    return t;
}

bn_tensor *bn_cpy(bn_graph *g, bn_tensor *x, uint32_t type) {
    return new_node(g, BN_OP_CPY, type, x->ne[0], x->ne[1], x, NULL, NULL);
}
