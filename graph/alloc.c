/* alloc.c - liveness-based placement of intermediate tensors (see alloc.h):
 * a first-fit free list over offsets in one arena. */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct span {
    size_t off, size;
} span;

typedef struct free_list {
    span *s;
    int n, cap;
    size_t end; /* arena high-water mark */
} free_list;

static size_t align_up(size_t x) {
    return (x + BN_TENSOR_ALIGN - 1) & ~(size_t)(BN_TENSOR_ALIGN - 1);
}

static size_t fl_alloc(free_list *fl, size_t size) {
    int best = -1;
    for (int i = 0; i < fl->n; i++)
        if (fl->s[i].size >= size && (best < 0 || fl->s[i].size < fl->s[best].size)) best = i;
    if (best < 0) {
        /* grow: a free span touching the end is extended rather than wasted */
        for (int i = 0; i < fl->n; i++)
            if (fl->s[i].off + fl->s[i].size == fl->end) {
                size_t off = fl->s[i].off;
                fl->end = off + size;
                fl->s[i] = fl->s[--fl->n];
                return off;
            }
        size_t off = fl->end;
        fl->end += size;
        return off;
    }
    size_t off = fl->s[best].off;
    fl->s[best].off += size;
    fl->s[best].size -= size;
    if (fl->s[best].size == 0) fl->s[best] = fl->s[--fl->n];
    return off;
}

static int fl_free(free_list *fl, size_t off, size_t size) {
    /* merge with neighbours */
    for (int i = 0; i < fl->n; i++) {
        if (fl->s[i].off + fl->s[i].size == off) {
            off = fl->s[i].off;
            size += fl->s[i].size;
            fl->s[i--] = fl->s[--fl->n];
        } else if (off + size == fl->s[i].off) {
            size += fl->s[i].size;
            fl->s[i--] = fl->s[--fl->n];
        }
    }
    if (fl->n == fl->cap) {
        int nc = fl->cap ? fl->cap * 2 : 64;
        span *p = realloc(fl->s, (size_t)nc * sizeof *p);
        if (!p) return -1;
        fl->s = p;
        fl->cap = nc;
    }
    fl->s[fl->n++] = (span){off, size};
    return 0;
}

static bool planned(const bn_tensor *t) {
    if (t->op == BN_OP_NONE) return (t->flags & BN_TENSOR_INPUT) && !t->data;
    return t->op != BN_OP_KV_STORE;
}

size_t bn_graph_plan_memory(const bn_graph *g, size_t *offs, bn_err *err) {
    int n = g->n_tensors;
    int *last_use = malloc(sizeof(int) * (size_t)(n ? n : 1));
    free_list fl = {0};
    if (!last_use) {
        bn_fail(err, BN_ERR_OOM, "out of memory planning the graph");
        return 0;
    }
    for (int i = 0; i < n; i++) {
        offs[i] = SIZE_MAX;
        last_use[i] = -1;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int s = 0; s < BN_MAX_SRC; s++)
            if (g->nodes[i]->src[s]) last_use[g->nodes[i]->src[s]->id] = i;
    /* inputs live for the whole run */
    for (int i = 0; i < n; i++) {
        const bn_tensor *t = g->tensors[i];
        if (t->op == BN_OP_NONE && planned(t))
            offs[i] = fl_alloc(&fl, align_up(bn_tensor_nbytes(t)));
    }
    int fail = 0;
    for (int i = 0; i < g->n_nodes && !fail; i++) {
        const bn_tensor *t = g->nodes[i];
        if (planned(t)) offs[t->id] = fl_alloc(&fl, align_up(bn_tensor_nbytes(t)));
        for (int s = 0; s < BN_MAX_SRC; s++) {
            const bn_tensor *src = t->src[s];
            if (!src || src->op == BN_OP_NONE || !planned(src) || last_use[src->id] != i) continue;
            if (src->flags & BN_TENSOR_OUTPUT) continue;
            bool dup = false; /* the same source twice (x * x) */
            for (int r = 0; r < s; r++) dup |= t->src[r] == src;
            if (!dup) fail |= fl_free(&fl, offs[src->id], align_up(bn_tensor_nbytes(src)));
        }
        /* a node nobody reads (and not an output) is freed at once */
        if (planned(t) && last_use[t->id] < 0 && !(t->flags & BN_TENSOR_OUTPUT))
            fail |= fl_free(&fl, offs[t->id], align_up(bn_tensor_nbytes(t)));
    }
    size_t end = fl.end;
    free(fl.s);
    free(last_use);
    if (fail) {
        bn_fail(err, BN_ERR_OOM, "out of memory planning the graph");
        return 0;
    }
    return end ? end : BN_TENSOR_ALIGN;
}

bn_status bn_graph_alloc(bn_graph *g, void **arena, size_t *arena_bytes, bn_err *err) {
    *arena = NULL;
    size_t *offs = malloc(sizeof(size_t) * (size_t)(g->n_tensors ? g->n_tensors : 1));
    if (!offs) return bn_fail(err, BN_ERR_OOM, "out of memory planning the graph");
    size_t bytes = bn_graph_plan_memory(g, offs, err);
    if (!bytes) {
        free(offs);
        return err->code;
    }
    uint8_t *mem = aligned_alloc(BN_TENSOR_ALIGN, align_up(bytes));
    if (!mem) {
        free(offs);
        return bn_fail(err, BN_ERR_OOM, "out of memory for %zu bytes of activations", bytes);
    }
    for (int i = 0; i < g->n_tensors; i++)
        if (offs[i] != SIZE_MAX) g->tensors[i]->data = mem + offs[i];
    free(offs);
    *arena = mem;
    *arena_bytes = bytes;
    return BN_OK;
}
