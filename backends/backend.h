/* backend.h - the interface every compute backend implements, and the only
 * header backends share with the scheduler (DESIGN.md "Backends").
 *
 * A backend is one small table of functions: enumerate its devices (saying
 * why when there are none), describe a device, open it, prepare a graph
 * (check every node is supported, place intermediates) and run it. Devices,
 * buffers, transfers and throughput profiles for multi-device plans extend
 * this table in the planner work. */
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

typedef struct bn_device_info {
    char name[128];
    bn_device_type type;
    uint64_t mem_total, mem_free; /* bytes; 0 if unknown */
    bool unified;                 /* memory shared with the host */
} bn_device_info;

typedef struct bn_backend_config {
    int n_threads; /* CPU: worker threads (0: the number of physical cores) */
} bn_backend_config;

typedef struct bn_backend bn_backend;

typedef struct bn_backend_ops {
    const char *name;
    /* Number of usable devices; when 0, why[] says why (e.g. "no Vulkan loader found"). */
    int (*device_count)(char *why, size_t why_len);
    bn_status (*device_info)(int device, bn_device_info *info, bn_err *err);
    bn_status (*open)(int device, const bn_backend_config *cfg, bn_backend **out, bn_err *err);
    /* Checks every node and allocates what the graph needs on this device. */
    bn_status (*graph_prepare)(bn_backend *be, bn_graph *g, bn_err *err);
    bn_status (*graph_compute)(bn_backend *be, bn_graph *g, bn_err *err);
    /* Releases what graph_prepare allocated for g. */
    void (*graph_release)(bn_backend *be, bn_graph *g);
    void (*close)(bn_backend *be);
} bn_backend_ops;

/* Every opened backend starts with its ops table. */
struct bn_backend {
    const bn_backend_ops *ops;
};

const bn_backend_ops *bn_backend_cpu(void);
const bn_backend_ops *bn_backend_vulkan(void); /* NULL when built without Vulkan */
const bn_backend_ops *bn_backend_opencl(void); /* NULL when built without OpenCL */
const bn_backend_ops *bn_backend_npu(void);

/* Every backend compiled in, CPU first; NULL-terminated. */
const bn_backend_ops *const *bn_backends(void);
const bn_backend_ops *bn_backend_by_name(const char *name);

#endif
