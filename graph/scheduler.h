/* scheduler.h - running one graph on several devices (DESIGN.md data flow).
 *
 * The scheduler cuts a forward graph into segments by a plan: every node
 * goes to the device of its unit (embedding, layer by the node's `layer`
 * field, output head), except nodes that device cannot run (its backend's
 * supports says no), which go to the fallback device (cpu:0), and a layer's
 * KV stores and attention, which stay together (the cache is device-resident
 * state). A segment is a maximal run of consecutive nodes on one device,
 * built as a graph of its own:
 *  - a source produced by another segment becomes an INPUT leaf, filled
 *    before each run by a host memcpy from the producer's node, which is
 *    marked OUTPUT in its segment (so its data is host memory, backend.h);
 *  - the full graph's INPUT leaves (token ids, positions) get host buffers
 *    owned by the scheduler, copied into every segment that reads them;
 *  - weight and cache leaves keep their host pointers (their identity);
 *  - the full graph's OUTPUT nodes point at their segment's output memory.
 * The split is made once per graph and reused for every run; op parameters
 * (n_past) are copied from the full graph's nodes before each run. */
#ifndef BN_SCHED_H
#define BN_SCHED_H

#include "../backends/backend.h"

typedef struct bn_sched bn_sched;

/* Splits and prepares g. unit_device[u] is the device of unit u (0: the
 * embedding, 1 + l: layer l, n_units - 1: the head); be[d] must be open for
 * every device that gets nodes, be[fallback] always. kv_home (n_units - 2
 * entries, -1 at first; may be NULL) records the device of each layer's KV
 * cache across the graphs of one cache, so a graph of another size never
 * reads a cache another device holds. When a device fails to prepare its
 * segment, *failed_device (if not NULL) says which (else -1). */
bn_status bn_sched_new(bn_graph *g, const int *unit_device, int n_units, bn_backend *const *be,
                       int n_be, int fallback, int *kv_home, bn_sched **out, int *failed_device,
                       bn_err *err);
/* Runs every segment in order, copying values across the boundaries. */
bn_status bn_sched_compute(bn_sched *s, bn_err *err);
/* Releases the segments on their backends and frees them. */
void bn_sched_free(bn_sched *s);

int bn_sched_n_segments(const bn_sched *s);
/* Segment i's device, node count and number of values copied into it per run. */
void bn_sched_segment(const bn_sched *s, int i, int *device, int *n_nodes, int *n_copies);
/* Nodes that run on the fallback device instead of their unit's device. */
int bn_sched_n_fallback(const bn_sched *s);

#endif
