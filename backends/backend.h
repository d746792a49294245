/* backend.h - the interface every compute backend implements, and the only
 * header backends share with the scheduler (DESIGN.md "Backends").
 *
 * A backend is one small table of functions. It enumerates its devices
 * (saying why when there are none), describes and opens a device, says which
 * nodes it can run, measures its throughput profile, and prepares and runs
 * graphs (or the per-device segments the scheduler cuts from a graph).
 *
 * The data contract, for every backend:
 *  - Every tensor's `data` is a HOST pointer. Weights (BN_TENSOR_WEIGHT) point
 *    into the model mapping; a device backend copies them to device memory
 *    once (or imports/maps them on unified memory) and keeps them keyed by
 *    that host pointer, so every graph that names the same weight shares one
 *    device copy, until close.
 *  - KV caches (BN_TENSOR_CACHE leaves) are persistent state. Their host
 *    pointer is their identity: a device backend allocates device memory for
 *    a cache the first time it sees that pointer (zero-filled), keeps it for
 *    every later graph, and never synchronizes it with the host. The KV_STORE
 *    node's data equals its cache's data.
 *  - graph_prepare makes every BN_TENSOR_INPUT leaf's `data` point to host
 *    memory of bn_tensor_nbytes() bytes (allocating it if NULL); the caller
 *    fills it before each graph_compute. It also makes every
 *    BN_TENSOR_OUTPUT node's `data` host memory that holds the result when
 *    graph_compute returns. Intermediates are the backend's business.
 *  - graph_compute is synchronous: it reads the inputs, runs every node in
 *    order, and leaves the outputs in host memory.
 * Graphs may be prepared on several backends at once (one segment each).
 * DESIGN.md's buffers, uploads/downloads and synchronization are this
 * contract: a backend owns its device memory, keyed by host pointers;
 * graph_prepare uploads (or maps, on unified memory); OUTPUT nodes are the
 * downloads; graph_compute returning is the synchronization. The scheduler
 * (graph/sched.h) moves values between devices through host memory. */
#ifndef BN_BACKEND_H
#define BN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../graph/ir.h"

typedef enum bn_device_type {
    BN_DEVICE_CPU,
    BN_DEVICE_IGPU,
    BN_DEVICE_DGPU,
    BN_DEVICE_NPU,
} bn_device_type;

const char *bn_device_type_name(bn_device_type t); /* "cpu", "igpu", "dgpu", "npu" */

/* What the planner knows of a device's speed (measured by calibrate, cached on
 * disk, or given in a profile file). Zero means unknown. */
typedef struct bn_device_profile {
    double ternary_gbps; /* ternary mat-vec (decode): weight bytes read per second, GB/s */
    double float_gflops; /* f32/f16 matmul throughput, GFLOP/s */
    double h2d_gbps;     /* host -> device copy bandwidth, GB/s (unified: memcpy speed) */
    double d2h_gbps;     /* device -> host copy bandwidth, GB/s */
    double latency_us;   /* fixed cost of one transfer, microseconds */
    double dispatch_us;  /* fixed cost of one op dispatch, microseconds */
} bn_device_profile;

typedef struct bn_device_info {
    char name[128];    /* e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" */
    char details[256]; /* free text: driver, subgroup size, integer dot product, ... */
    bn_device_type type;
    uint64_t mem_total, mem_free; /* bytes; 0 if unknown */
    bool mem_free_estimated;      /* mem_free is total minus a margin, not measured */
    bool unified;                 /* memory shared with the host */
    bool hidden; /* not offered by --backend auto (cpu:1: a second CPU device for tests) */
} bn_device_info;

typedef struct bn_backend_config {
    int n_threads; /* CPU: worker threads (0: the number of physical cores) */
} bn_backend_config;

typedef struct bn_backend bn_backend;

typedef struct bn_backend_ops {
    const char *name; /* "cpu", "vulkan", "opencl", "npu": used in device ids like vulkan:0 */
    /* Number of usable devices; when 0, why[] says why (e.g. "no Vulkan loader found"). */
    int (*device_count)(char *why, size_t why_len);
    bn_status (*device_info)(int device, bn_device_info *info, bn_err *err);
    bn_status (*open)(int device, const bn_backend_config *cfg, bn_backend **out, bn_err *err);
    /* Whether this device runs the node (its op with its sources' types and
     * shapes). The planner sends nodes a device cannot run to the CPU. */
    bool (*supports)(bn_backend *be, const bn_tensor *node);
    /* Measures the profile with a short run (well under 2 s), on an instance
     * opened for that alone: its synthetic weights are freed afterwards, so
     * their host pointers may come back as other tensors. NULL: the generic
     * measurement (bn_backend_calibrate_generic). */
    bn_status (*calibrate)(bn_backend *be, bn_device_profile *out, bn_err *err);
    /* Checks every node, uploads weights not yet on the device, allocates caches,
     * inputs, outputs and intermediates (see the data contract above). */
    bn_status (*graph_prepare)(bn_backend *be, bn_graph *g, bn_err *err);
    bn_status (*graph_compute)(bn_backend *be, bn_graph *g, bn_err *err);
    /* Releases what graph_prepare allocated for g (not shared weights or caches). */
    void (*graph_release)(bn_backend *be, bn_graph *g);
    /* Releases everything, weights and caches included. */
    void (*close)(bn_backend *be);
} bn_backend_ops;

/* Every opened backend starts with its ops table. */
struct bn_backend {
    const bn_backend_ops *ops;
    int device;
};

const bn_backend_ops *bn_backend_cpu(void);
const bn_backend_ops *bn_backend_vulkan(void); /* NULL when built without Vulkan */
const bn_backend_ops *bn_backend_opencl(void); /* NULL when built without OpenCL */
const bn_backend_ops *bn_backend_npu(void);

/* A profile measured through the interface alone (graph_prepare/graph_compute on
 * small synthetic graphs, well under 2 s): any backend's calibrate may be this. */
bn_status bn_backend_calibrate_generic(bn_backend *be, bn_device_profile *out, bn_err *err);

/* Every backend compiled in, CPU first; NULL-terminated. */
const bn_backend_ops *const *bn_backends(void);
const bn_backend_ops *bn_backend_by_name(const char *name);

#endif
