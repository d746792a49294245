/* cpu_ops.h - the CPU backend's plain-C implementation of every IR op
 * (graph/ir.h gives the exact semantics). This is the numerical reference
 * that every other backend and every faster kernel is compared with.
 *
 * An op is computed by nth threads together: thread ith computes its share
 * (rows, tokens or heads) and writes only its own part of the output, so the
 * caller runs bn_cpu_compute(node, ith, nth, ...) on every thread and waits
 * for all of them before the next node. */
#ifndef BN_CPU_OPS_H
#define BN_CPU_OPS_H

#include <stddef.h>

#include "../../graph/ir.h"

/* Bytes of per-thread scratch memory the node needs (decoded weight rows,
 * attention scores, ...); 0 if none. */
size_t bn_cpu_scratch_bytes(const bn_tensor *node);

/* Checks that the node's sources have types and shapes this backend handles
 * (BN_ERR_UNSUPPORTED / BN_ERR_INVALID_ARG with the node's name otherwise). */
bn_status bn_cpu_check_node(const bn_tensor *node, bn_err *err);

/* Computes thread ith's share (0 <= ith < nth) of node. scratch holds
 * bn_cpu_scratch_bytes(node) bytes private to this thread, 64-byte aligned. */
void bn_cpu_compute(const bn_tensor *node, int ith, int nth, void *scratch);

#endif
