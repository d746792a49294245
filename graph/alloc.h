/* alloc.h - planning the memory of a graph's intermediate tensors.
 *
 * Every node except KV stores gets a region of one arena; a region is reused
 * once the last node reading it has run, so a layer's temporaries do not add
 * up over the layers. Leaves (weights, inputs, caches) are not planned. */
#ifndef BN_ALLOC_H
#define BN_ALLOC_H

#include <stddef.h>

#include "ir.h"

#define BN_TENSOR_ALIGN 64

/* Computes offs[t->id] for every planned tensor (SIZE_MAX for the others) and
 * returns the arena size in bytes; 0 with err filled on failure. offs has
 * g->n_tensors entries. Inputs (BN_TENSOR_INPUT leaves) are planned too, and
 * outputs are never reused. Inputs whose data is already set are left alone. */
size_t bn_graph_plan_memory(const bn_graph *g, size_t *offs, bn_err *err);

/* Plans, allocates one arena and points every planned tensor's data into it.
 * The arena is returned for the caller to free. */
bn_status bn_graph_alloc(bn_graph *g, void **arena, size_t *arena_bytes, bn_err *err);

#endif
