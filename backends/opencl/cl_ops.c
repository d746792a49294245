/* cl_ops.c - per op: which kernel (and program variant) runs a node, and how
 * it is launched (arguments, global and local sizes). Kernels live in
 * shaders/opencl/NAME.cl; their comments give the layouts they expect.
 *
 * Variants: matmul_ternary.cl is built per weight format (-DWT_I2S, -DWT_TQ2,
 * -DWT_TQ1), matmul_float.cl per float weight type (-DWT_F32/F16/BF16, plus
 * -DXQ8 for MATMUL_TERNARY with float weights), attention.cl per cache type
 * (-DK_F16, -DV_F16; -DATT_FP64 on CPU devices). Matmuls with at most
 * MV_MAX_T tokens use the decode kernels (mm_*_1: one token per item), larger
 * batches the prefill ones (mm_*_8: each weight chunk unpacked once for 8
 * tokens).
 *
 * Arguments are set at every enqueue from the node's current parameters:
 * n_past changes between runs of one prepared graph. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_internal.h"

#define TT 8       /* tokens per item of the prefill kernels (mm_*_8) */
#define MV_MAX_T 4 /* the decode kernels (mm_*_1) up to this many tokens */

enum { V_MV = 0, V_MM = 1 };

static const char *wt_option(uint32_t type) {
    switch (type) {
    case BN_TYPE_I2_S:
        return "-DWT_I2S";
    case BN_TYPE_TQ2_0:
        return "-DWT_TQ2";
    case BN_TYPE_TQ1_0:
        return "-DWT_TQ1";
    case BN_TYPE_F32:
        return "-DWT_F32";
    case BN_TYPE_F16:
        return "-DWT_F16";
    case BN_TYPE_BF16:
        return "-DWT_BF16";
    default:
        return "-DWT_UNSUPPORTED"; /* bn_cl_check_node refuses these before */
    }
}

bn_status bn_cl_op_prepare(clb_backend *be, const bn_tensor *node, clb_exec *ex, bn_err *err) {
    const char *file = "elementwise", *kname = NULL;
    char opts[96] = "";
    ex->variant = 0;
    switch (node->op) {
    case BN_OP_GET_ROWS:
        file = "matmul_float";
        snprintf(opts, sizeof opts, "%s", wt_option(node->src[0]->type));
        kname = "get_rows";
        break;
    case BN_OP_RMS_NORM:
        kname = "rms_norm";
        break;
    case BN_OP_MUL:
    case BN_OP_ADD:
        kname = "binary";
        break;
    case BN_OP_RELU_SQR:
    case BN_OP_SILU:
    case BN_OP_SCALE:
        kname = "unary";
        break;
    case BN_OP_ROPE: {
        /* inv_freq[j] = base^(-2j / n_rot) as the reference computes it, in double:
         * doubles for the fp64 kernel, else pairs of floats (hi, lo) */
        const int half = node->ip[1] / 2;
        const size_t bytes = (be->use_fp64 ? sizeof(double) : 2 * sizeof(float)) * (size_t)half;
        void *tab = malloc(bytes);
        if (!tab) return bn_fail(err, BN_ERR_OOM, "out of memory");
        for (int j = 0; j < half; j++) {
            const double v = pow((double)node->fp[0], -2.0 * j / node->ip[1]);
            if (be->use_fp64) {
                ((double *)tab)[j] = v;
            } else {
                ((float *)tab)[2 * j] = (float)v;
                ((float *)tab)[2 * j + 1] = (float)(v - (double)(float)v);
            }
        }
        cl_int r;
        ex->aux = clCreateBuffer(be->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, tab, &r);
        free(tab);
        if (!ex->aux || r != CL_SUCCESS) return bn_cl_fail(be, err, r, "the RoPE table");
        kname = "rope";
        break;
    }
    case BN_OP_KV_STORE:
        kname = "kv_store";
        break;
    case BN_OP_CPY:
        kname = "cpy";
        break;
    case BN_OP_QUANTIZE_ACT:
        kname = "quantize_act";
        break;
    case BN_OP_MATMUL_TERNARY:
    case BN_OP_MATMUL_F: {
        const uint32_t wt = node->src[0]->type;
        const bool ternary = bn_type_is_ternary(wt);
        ex->variant = node->src[1]->ne[1] <= MV_MAX_T ? V_MV : V_MM;
        file = ternary ? "matmul_ternary" : "matmul_float";
        snprintf(opts, sizeof opts, "%s%s", wt_option(wt),
                 node->op == BN_OP_MATMUL_TERNARY && !ternary ? " -DXQ8" : "");
        if (ternary)
            kname = ex->variant == V_MV ? "mm_ternary_1" : "mm_ternary_8";
        else
            kname = ex->variant == V_MV ? "mm_f_1" : "mm_f_8";
        break;
    }
    case BN_OP_ATTENTION:
        file = "attention";
        /* on CPU devices double is cheap: accumulate like the reference */
        snprintf(opts, sizeof opts, "%s%s%s", node->src[1]->type == BN_TYPE_F16 ? "-DK_F16" : "",
                 node->src[2]->type == BN_TYPE_F16 ? " -DV_F16" : "",
                 (be->caps.type & CL_DEVICE_TYPE_CPU) ? " -DATT_FP64" : "");
        kname = "attention";
        break;
    default:
        return bn_fail(err, BN_ERR_UNSUPPORTED, "opencl: op %s has no kernel",
                       bn_op_name(node->op));
    }
    return bn_cl_kernel(be, file, opts, kname, &ex->k, err);
}

/* ---- argument setting ---- */

typedef struct args {
    cl_kernel k;
    cl_uint i, bad; /* next argument index; the first one that failed */
    cl_int r;
} args;

static void a_raw(args *a, size_t size, const void *v) {
    if (a->r == CL_SUCCESS) {
        a->r = clSetKernelArg(a->k, a->i, size, v);
        a->bad = a->i;
    }
    a->i++;
}

/* A tensor: its buffer, then its byte offset (ulong). */
static void a_t(args *a, const clb_graph_state *st, const bn_tensor *t) {
    const clb_loc *l = &st->loc[t->id];
    a_raw(a, sizeof(cl_mem), &l->mem);
    cl_ulong off = l->off;
    a_raw(a, sizeof off, &off);
}

static void a_i(args *a, int64_t v) {
    cl_int x = (cl_int)v;
    a_raw(a, sizeof x, &x);
}

static void a_f(args *a, float v) {
    cl_float x = v;
    a_raw(a, sizeof x, &x);
}

static size_t round_up(size_t n, size_t m) {
    return (n + m - 1) / m * m;
}

bn_status bn_cl_op_enqueue(clb_backend *be, const clb_graph_state *st, const bn_tensor *node,
                           const clb_exec *ex, bn_err *err) {
    const bn_tensor *a = node->src[0], *b = node->src[1];
    const size_t wg = (size_t)be->wg;
    args A = {ex->k, 0, 0, CL_SUCCESS};
    size_t gws[2] = {1, 1}, lws[2] = {wg, 1};
    cl_uint dims = 1;
    switch (node->op) {
    case BN_OP_GET_ROWS: /* (tab, ids, y, K, R) */
        a_t(&A, st, a), a_t(&A, st, b), a_t(&A, st, node);
        a_i(&A, a->ne[0]), a_i(&A, a->ne[1]);
        gws[0] = round_up((size_t)a->ne[0], wg), gws[1] = (size_t)b->ne[0], dims = 2;
        break;
    case BN_OP_RMS_NORM: /* (x, y, K, eps) */
        a_t(&A, st, a), a_t(&A, st, node), a_i(&A, a->ne[0]), a_f(&A, node->fp[0]);
        gws[0] = (size_t)a->ne[1] * wg;
        break;
    case BN_OP_QUANTIZE_ACT: /* (x, y, K) */
        a_t(&A, st, a), a_t(&A, st, node), a_i(&A, a->ne[0]);
        gws[0] = (size_t)a->ne[1] * wg;
        break;
    case BN_OP_MUL:
    case BN_OP_ADD: { /* (a, b, y, n, K, b_one_row, b_one_col, op) */
        const int64_t n = bn_tensor_nelems(a);
        a_t(&A, st, a), a_t(&A, st, b), a_t(&A, st, node);
        a_i(&A, n), a_i(&A, a->ne[0]), a_i(&A, b->ne[1] == 1), a_i(&A, b->ne[0] == 1);
        a_i(&A, node->op == BN_OP_MUL);
        gws[0] = round_up((size_t)n, wg);
        break;
    }
    case BN_OP_RELU_SQR:
    case BN_OP_SILU:
    case BN_OP_SCALE: { /* (x, y, n, op, s) */
        const int64_t n = bn_tensor_nelems(a);
        a_t(&A, st, a), a_t(&A, st, node), a_i(&A, n);
        a_i(&A, node->op == BN_OP_RELU_SQR ? 0 : node->op == BN_OP_SILU ? 1 : 2);
        a_f(&A, node->fp[0]);
        gws[0] = round_up((size_t)n, wg);
        break;
    }
    case BN_OP_ROPE: /* (x, pos, y, ne0, hd, n_rot, neox, inv_freq) */
        a_t(&A, st, a), a_t(&A, st, b), a_t(&A, st, node);
        a_i(&A, a->ne[0]), a_i(&A, node->ip[2]), a_i(&A, node->ip[1]);
        a_i(&A, node->ip[0] == BN_ROPE_NEOX), a_raw(&A, sizeof(cl_mem), &ex->aux);
        gws[0] = round_up((size_t)a->ne[0], wg), gws[1] = (size_t)a->ne[1], dims = 2;
        break;
    case BN_OP_KV_STORE: /* (cache, x, D, T, n_past, n_ctx, f16) */
        a_t(&A, st, node), a_t(&A, st, b);
        a_i(&A, b->ne[0]), a_i(&A, b->ne[1]), a_i(&A, node->ip[0]), a_i(&A, a->ne[1]);
        a_i(&A, a->type == BN_TYPE_F16);
        gws[0] = round_up((size_t)b->ne[0], wg), gws[1] = (size_t)b->ne[1], dims = 2;
        break;
    case BN_OP_CPY: { /* (x, y, n, src_f16, dst_f16) */
        const int64_t n = bn_tensor_nelems(a);
        a_t(&A, st, a), a_t(&A, st, node), a_i(&A, n);
        a_i(&A, a->type == BN_TYPE_F16), a_i(&A, node->type == BN_TYPE_F16);
        gws[0] = round_up((size_t)n, wg);
        break;
    }
    case BN_OP_MATMUL_TERNARY:
    case BN_OP_MATMUL_F: { /* (w, x, y, K, N, T) */
        const int64_t K = a->ne[0], N = a->ne[1], T = b->ne[1];
        const size_t rows_per_group = wg / (size_t)be->lpr;
        a_t(&A, st, a), a_t(&A, st, b), a_t(&A, st, node), a_i(&A, K), a_i(&A, N), a_i(&A, T);
        gws[0] = ((size_t)N + rows_per_group - 1) / rows_per_group * wg;
        gws[1] = ex->variant == V_MV ? (size_t)T : ((size_t)T + TT - 1) / TT;
        dims = 2;
        break;
    }
    case BN_OP_ATTENTION: { /* (q, k, v, y, n_past, n_head, n_kv, hd, scale, n_ctx) */
        const bn_tensor *k = node->src[1];
        a_t(&A, st, a), a_t(&A, st, k), a_t(&A, st, node->src[2]), a_t(&A, st, node);
        a_i(&A, node->ip[0]), a_i(&A, node->ip[1]), a_i(&A, node->ip[2]), a_i(&A, node->ip[3]);
        a_f(&A, node->fp[0]), a_i(&A, k->ne[1]);
        gws[0] = (size_t)node->ip[1] * wg, gws[1] = (size_t)a->ne[1], dims = 2;
        break;
    }
    default:
        return bn_fail(err, BN_ERR_INTERNAL, "opencl: op %s has no kernel", bn_op_name(node->op));
    }
    if (A.r != CL_SUCCESS) {
        char what[128];
        snprintf(what, sizeof what, "setting argument %u of node '%.60s'", A.bad, node->name);
        return bn_cl_fail(be, err, A.r, what);
    }
    cl_int r = clEnqueueNDRangeKernel(be->queue, ex->k, dims, NULL, gws, lws, 0, NULL, NULL);
    if (r != CL_SUCCESS) {
        char what[128];
        snprintf(what, sizeof what, "running node '%.60s' (%s)", node->name, bn_op_name(node->op));
        return bn_cl_fail(be, err, r, what);
    }
    return BN_OK;
}
