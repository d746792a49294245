/* vk_ops.c - how each IR op becomes dispatches: which shader (shaders/vulkan/NAME.comp) with
 * which specialization constants, which tensors at which binding slots, the push
 * constants and the workgroup counts. The shaders' headers document the layouts they
 * expect; the push-constant structs below mirror their `push_constant` blocks field by
 * field (all 32-bit scalars, so C and std430 agree).
 *
 * A matmul or GET_ROWS whose weight is split into chunks (vk_memory.c) gets one dispatch
 * per chunk, each writing its own rows of the output. Matmuls with fewer than
 * be->tiled_min_tokens tokens run the mat-vec kernels (one workgroup per few rows and
 * token), larger batches the tiled kernels (64 rows x 32 tokens per workgroup). */
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define WG_ELEM 256u /* elementwise ops */
#define WG_ROW 128u  /* row reductions: RMS_NORM, QUANTIZE_ACT */
#define WG_ATTN 64u  /* attention: positions per tile */

static vk_dispatch *add(vk_dispatch_list *l, const bn_tensor *node, bn_err *err) {
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 256;
        vk_dispatch *p = realloc(l->d, (size_t)nc * sizeof *p);
        if (!p) {
            bn_fail(err, BN_ERR_OOM, "out of memory");
            return NULL;
        }
        l->d = p;
        l->cap = nc;
    }
    vk_dispatch *d = &l->d[l->n++];
    memset(d, 0, sizeof *d);
    d->node = node;
    return d;
}

static void set_push(vk_dispatch *d, const void *p, size_t n) {
    memcpy(d->push, p, n);
    d->push_size = (uint32_t)((n + 3) & ~(size_t)3);
}

static uint32_t ceil_div(uint64_t a, uint64_t b) {
    return (uint32_t)((a + b - 1) / b);
}

/* Workgroup counts for n invocations in groups of wg, folded into 2-D past 65535. */
static void groups_1d(vk_dispatch *d, uint64_t n, uint32_t wg) {
    uint32_t g = ceil_div(n ? n : 1, wg);
    d->groups[0] = g < 65535 ? g : 65535;
    d->groups[1] = ceil_div(g, d->groups[0]);
    d->groups[2] = 1;
}

/* The span of a source that must be in one binding (weights of elementwise ops). */
static bn_status one_span(const vk_resolver *r, const bn_tensor *t, vk_span *out, bn_err *err) {
    const vk_weight *w = r->weight(r->ctx, t);
    if (w) {
        if (w->n_chunks != 1)
            return bn_fail(err, BN_ERR_UNSUPPORTED,
                           "vulkan: weight '%s' is too large for one binding in this op", t->name);
        *out = w->chunks[0].data;
        return BN_OK;
    }
    *out = r->span(r->ctx, t);
    return BN_OK;
}

static uint32_t wtype_code(uint32_t type) {
    return type == BN_TYPE_F32 ? 0u : type == BN_TYPE_F16 ? 1u : 2u;
}

static bn_status encode_matmul(vk_backend *be, const bn_tensor *node, const vk_resolver *r,
                               vk_dispatch_list *out, bn_err *err) {
    const bn_tensor *wt = node->src[0], *x = node->src[1];
    const vk_weight *w = r->weight(r->ctx, wt);
    if (!w) return bn_fail(err, BN_ERR_INVALID_ARG, "vulkan: '%s' is not a weight", wt->name);
    const uint32_t K = (uint32_t)wt->ne[0], N = (uint32_t)wt->ne[1], T = (uint32_t)x->ne[1];
    const uint32_t x_words = (uint32_t)(x->nb[1] / 4);
    const bool tiled = (int)T >= be->tiled_min_tokens;
    const bool ternary = bn_type_is_ternary(wt->type);
    const bool actq = node->op == BN_OP_MATMUL_TERNARY;
    const vk_span xs = r->span(r->ctx, x), ys = r->span(r->ctx, node);
    for (int c = 0; c < w->n_chunks; c++) {
        const vk_chunk *ch = &w->chunks[c];
        vk_dispatch *d = add(out, node, err);
        if (!d) return err->code;
        const uint32_t rows = (uint32_t)ch->rows, row0 = (uint32_t)ch->row0;
        uint32_t spec[4];
        const char *shader;
        if (ternary) {
            spec[2] = (uint32_t)w->layout;
            spec[3] = w->per_group ? 1u : 0u;
            if (tiled) {
                shader = "matmul_ternary";
                spec[0] = 256;
                spec[1] = 0;
                struct {
                    uint32_t K, nrows, row0, N, act_words, T;
                    float tscale;
                } p = {K, rows, row0, N, x_words, T, w->tscale};
                set_push(d, &p, sizeof p);
                d->groups[0] = ceil_div(rows, 64);
                d->groups[1] = ceil_div(T, 32);
            } else {
                shader = "matvec_ternary";
                spec[0] = be->wg_matvec;
                spec[1] = be->rows_matvec;
                struct {
                    uint32_t K, nrows, row0, N, act_words;
                    float tscale;
                } p = {K, rows, row0, N, x_words, w->tscale};
                set_push(d, &p, sizeof p);
                d->groups[0] = ceil_div(rows, be->rows_matvec);
                d->groups[1] = T;
            }
            d->bind[0] = ch->data;
            if (w->per_group) d->bind[1] = ch->scales;
        } else {
            spec[2] = wtype_code(wt->type);
            spec[3] = actq ? 1u : 0u;
            if (tiled) {
                shader = "matmul_f";
                spec[0] = 256;
                spec[1] = 0;
                struct {
                    uint32_t K, nrows, row0, N, x_words, T;
                } p = {K, rows, row0, N, x_words, T};
                set_push(d, &p, sizeof p);
                d->groups[0] = ceil_div(rows, 64);
                d->groups[1] = ceil_div(T, 32);
            } else {
                shader = "matvec_f";
                spec[0] = be->wg_matvec;
                spec[1] = be->rows_matvec;
                struct {
                    uint32_t K, nrows, row0, N, x_words;
                } p = {K, rows, row0, N, x_words};
                set_push(d, &p, sizeof p);
                d->groups[0] = ceil_div(rows, be->rows_matvec);
                d->groups[1] = T;
            }
            d->bind[0] = ch->data;
        }
        d->groups[2] = 1;
        d->bind[2] = xs;
        d->bind[3] = ys;
        d->writes[3] = true;
        if (vk_pipeline_get(be, shader, spec, 4, &d->pipe, err) != BN_OK) return err->code;
    }
    return BN_OK;
}

static bn_status encode_get_rows(vk_backend *be, const bn_tensor *node, const vk_resolver *r,
                                 vk_dispatch_list *out, bn_err *err) {
    const bn_tensor *tab = node->src[0], *ids = node->src[1];
    const vk_weight *w = r->weight(r->ctx, tab);
    const uint32_t K = (uint32_t)tab->ne[0], T = (uint32_t)ids->ne[0], R = (uint32_t)tab->ne[1];
    const uint32_t type = tab->type == BN_TYPE_F32    ? 0u
                          : tab->type == BN_TYPE_F16  ? 1u
                          : tab->type == BN_TYPE_BF16 ? 2u
                                                      : 3u;
    const int n = w ? w->n_chunks : 1;
    for (int c = 0; c < n; c++) {
        vk_dispatch *d = add(out, node, err);
        if (!d) return err->code;
        uint32_t row0 = 0, rows = R;
        if (w) {
            row0 = (uint32_t)w->chunks[c].row0;
            rows = (uint32_t)w->chunks[c].rows;
            d->bind[0] = w->chunks[c].data;
        } else {
            d->bind[0] = r->span(r->ctx, tab);
        }
        struct {
            uint32_t K, T, row0, rows, R, first_chunk;
        } p = {K, T, row0, rows, R, c == 0};
        set_push(d, &p, sizeof p);
        d->bind[1] = r->span(r->ctx, ids);
        d->bind[2] = r->span(r->ctx, node);
        d->writes[2] = true;
        d->groups[0] = ceil_div(K, WG_ELEM);
        d->groups[1] = T;
        d->groups[2] = 1;
        const uint32_t spec[2] = {WG_ELEM, type};
        if (vk_pipeline_get(be, "get_rows", spec, 2, &d->pipe, err) != BN_OK) return err->code;
    }
    return BN_OK;
}

bn_status vk_encode_node(vk_backend *be, const bn_tensor *node, const vk_resolver *r,
                         vk_dispatch_list *out, bn_err *err) {
    const bn_tensor *a = node->src[0], *b = node->src[1];
    if (node->op == BN_OP_MATMUL_TERNARY || node->op == BN_OP_MATMUL_F)
        return encode_matmul(be, node, r, out, err);
    if (node->op == BN_OP_GET_ROWS) return encode_get_rows(be, node, r, out, err);

    vk_dispatch *d = add(out, node, err);
    if (!d) return err->code;
    const uint64_t n = (uint64_t)bn_tensor_nelems(node);
    const uint32_t rows = (uint32_t)(node->ne[1] * node->ne[2] * node->ne[3]);
    uint32_t spec[3] = {0};
    int n_spec = 0;
    const char *shader = NULL;
    vk_span ys = r->span(r->ctx, node);
    switch (node->op) {
    case BN_OP_RMS_NORM: {
        struct {
            uint32_t K;
            float eps;
        } p = {(uint32_t)a->ne[0], node->fp[0]};
        set_push(d, &p, sizeof p);
        shader = "rms_norm";
        spec[0] = WG_ROW;
        n_spec = 1;
        d->bind[0] = r->span(r->ctx, a);
        d->bind[1] = ys;
        d->writes[1] = true;
        d->groups[0] = rows;
        d->groups[1] = d->groups[2] = 1;
        break;
    }
    case BN_OP_MUL:
    case BN_OP_ADD: {
        const uint32_t bmode = (b->ne[0] == a->ne[0] && b->ne[1] == a->ne[1]) ? 0u
                               : b->ne[0] == a->ne[0]                         ? 1u
                                                                              : 2u;
        struct {
            uint32_t n, K, bmode;
        } p = {(uint32_t)n, (uint32_t)a->ne[0], bmode};
        set_push(d, &p, sizeof p);
        shader = "binary";
        spec[0] = WG_ELEM;
        spec[1] = node->op == BN_OP_MUL;
        n_spec = 2;
        if (one_span(r, a, &d->bind[0], err) != BN_OK || one_span(r, b, &d->bind[1], err) != BN_OK)
            return err->code;
        d->bind[2] = ys;
        d->writes[2] = true;
        groups_1d(d, n, WG_ELEM);
        break;
    }
    case BN_OP_QUANTIZE_ACT: {
        struct {
            uint32_t K, row_words;
        } p = {(uint32_t)a->ne[0], (uint32_t)(node->nb[1] / 4)};
        set_push(d, &p, sizeof p);
        shader = "quantize_act";
        spec[0] = WG_ROW;
        n_spec = 1;
        d->bind[0] = r->span(r->ctx, a);
        d->bind[1] = ys;
        d->writes[1] = true;
        d->groups[0] = rows;
        d->groups[1] = d->groups[2] = 1;
        break;
    }
    case BN_OP_ROPE: {
        uint32_t ts = 0;
        vk_span tab = r->rope_table(r->ctx, node, &ts);
        struct {
            uint32_t E, hd, n_rot, mode, TS;
        } p = {(uint32_t)a->ne[0], (uint32_t)node->ip[2], (uint32_t)node->ip[1],
               (uint32_t)node->ip[0], ts};
        set_push(d, &p, sizeof p);
        shader = "rope";
        spec[0] = 128;
        n_spec = 1;
        d->bind[0] = r->span(r->ctx, a);
        d->bind[1] = ys;
        d->bind[2] = tab;
        d->writes[1] = true;
        d->groups[0] = ceil_div((uint64_t)a->ne[0] / 2, 128);
        d->groups[1] = (uint32_t)a->ne[1];
        d->groups[2] = 1;
        break;
    }
    case BN_OP_KV_STORE: {
        struct {
            uint32_t D, n_ctx, slot;
        } p = {(uint32_t)a->ne[0], (uint32_t)a->ne[1], (uint32_t)r->slot(r->ctx, node)};
        set_push(d, &p, sizeof p);
        shader = "kv_store";
        spec[0] = 128;
        spec[1] = a->type == BN_TYPE_F16;
        n_spec = 2;
        d->bind[0] = r->span(r->ctx, b);
        d->bind[1] = ys; /* the cache */
        d->bind[2] = r->params(r->ctx);
        d->writes[1] = true;
        d->groups[0] = ceil_div(((uint64_t)a->ne[0] + 1) / 2, 128);
        d->groups[1] = (uint32_t)b->ne[1];
        d->groups[2] = 1;
        break;
    }
    case BN_OP_ATTENTION: {
        const bn_tensor *kc = node->src[1], *vc = node->src[2];
        struct {
            uint32_t n_head, n_kv, hd, n_ctx, slot, kv_row;
            float scale;
        } p = {(uint32_t)node->ip[1],
               (uint32_t)node->ip[2],
               (uint32_t)node->ip[3],
               (uint32_t)kc->ne[1],
               (uint32_t)r->slot(r->ctx, node),
               (uint32_t)kc->ne[0],
               node->fp[0]};
        set_push(d, &p, sizeof p);
        shader = "attention";
        spec[0] = WG_ATTN;
        spec[1] = kc->type == BN_TYPE_F16;
        spec[2] = vc->type == BN_TYPE_F16;
        n_spec = 3;
        d->bind[0] = r->span(r->ctx, a);
        d->bind[1] = r->span(r->ctx, kc);
        d->bind[2] = r->span(r->ctx, vc);
        d->bind[3] = ys;
        d->bind[4] = r->params(r->ctx);
        d->writes[3] = true;
        d->groups[0] = (uint32_t)node->ip[1];
        d->groups[1] = (uint32_t)a->ne[1];
        d->groups[2] = 1;
        break;
    }
    case BN_OP_RELU_SQR:
    case BN_OP_SILU:
    case BN_OP_SCALE: {
        struct {
            uint32_t n;
            float s;
        } p = {(uint32_t)n, node->fp[0]};
        set_push(d, &p, sizeof p);
        shader = "unary";
        spec[0] = WG_ELEM;
        spec[1] = node->op == BN_OP_RELU_SQR ? 0u : node->op == BN_OP_SILU ? 1u : 2u;
        n_spec = 2;
        d->bind[0] = r->span(r->ctx, a);
        d->bind[1] = ys;
        d->writes[1] = true;
        groups_1d(d, n, WG_ELEM);
        break;
    }
    case BN_OP_CPY: {
        struct {
            uint32_t n;
        } p = {(uint32_t)n};
        set_push(d, &p, sizeof p);
        shader = "cpy";
        spec[0] = WG_ELEM;
        spec[1] = a->type == BN_TYPE_F16;
        spec[2] = node->type == BN_TYPE_F16;
        n_spec = 3;
        if (one_span(r, a, &d->bind[0], err) != BN_OK) return err->code;
        d->bind[1] = ys;
        d->writes[1] = true;
        groups_1d(d, (n + 1) / 2, WG_ELEM);
        break;
    }
    default:
        return bn_fail(err, BN_ERR_UNSUPPORTED, "vulkan: op %s has no shader",
                       bn_op_name(node->op));
    }
    return vk_pipeline_get(be, shader, spec, n_spec, &d->pipe, err);
}
