/* vk_internal.h - what the Vulkan backend's files share; not part of the backend interface
 * (backends/backend.h is). The backend is split by responsibility:
 *   vk_instance.c  the loader (volk), the instance, the validation layer, device listing
 *   vk_device.c    device capabilities, logical device and queue, one-shot command buffers
 *   vk_memory.c    buffers, memory types, the persistent pool, uploads, weights and caches
 *   vk_pipeline.c  embedded SPIR-V, pipeline layout, pipelines with specialization constants
 *   vk_check.c     which nodes the device runs (types, shapes, limits)
 *   vk_ops.c       per-op dispatches: pipeline, bindings, push constants, group counts
 *   vk_graph.c     graph prepare/compute: placement, descriptor sets, recorded command buffers
 *   vk_backend.c   the ops table: devices, open/close, supports, calibrate, op profiles
 *
 * Data contract (backends/backend.h): weights are uploaded once per host pointer
 * (vk_weight), KV caches live on the device keyed by host pointer (vk_cache), inputs and
 * outputs are host memory (mapped device memory on unified devices). */
#ifndef BN_VK_INTERNAL_H
#define BN_VK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <volk.h>

#include "../backend.h"

/* ---- embedded shaders (generated vk_shaders.c, cmake/vulkan_shaders.cmake) ---- */
enum {
    VK_SHADER_SUBGROUP = 1,
    VK_SHADER_INT_DOT = 2,
    VK_SHADER_FP64 = 4,
    VK_SHADER_INT_DOT_EMULATED = 8, /* the integer-dot code with the built-in written out */
};
typedef struct bn_vk_shader_blob {
    const char *name; /* file name without .comp */
    int flags;        /* VK_SHADER_* defines it was compiled with */
    const uint32_t *code;
    size_t size; /* bytes */
} bn_vk_shader_blob;
extern const bn_vk_shader_blob bn_vk_shader_table[]; /* ends with a NULL name */

/* ---- instance (vk_instance.c) ---- */
#define VK_MAX_DEVICES 16
/* The shared instance, created on first use (with the validation layer when
 * BITNET_VK_VALIDATE=1), with a reference taken; NULL with why filled when there is no
 * loader or driver (no reference then). */
VkInstance vk_instance_acquire(char *why, size_t why_len);
/* Drops a reference; open backends release with destroy_when_unused, so the instance goes
 * with the last of them (enumeration keeps it for the next call). */
void vk_instance_release(bool destroy_when_unused);
/* Physical devices of the instance (at most VK_MAX_DEVICES); 0 when none. The caller
 * holds a reference. */
int vk_physical_devices(VkPhysicalDevice *devs, char *why, size_t why_len);

/* ---- device capabilities (vk_device.c) ---- */
typedef struct vk_caps {
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    uint32_t queue_family;       /* one with compute */
    uint32_t subgroup_size;      /* 0 if subgroups are not usable in compute shaders */
    bool subgroup_arith;         /* subgroupAdd/Max in compute shaders */
    bool int_dot, int_dot_accel; /* VK_KHR_shader_integer_dot_product; 4x8 packed accelerated */
    bool fp64;                   /* shaderFloat64 */
    bool ext_mem_host;           /* VK_EXT_external_memory_host */
    VkDeviceSize import_align;   /* minImportedHostPointerAlignment */
    bool memory_budget;          /* VK_EXT_memory_budget */
    bool unified;                /* not discrete, with device-local host-visible coherent memory */
    bool timestamps;
    double ts_period_ns;
    VkDeviceSize max_binding;  /* bytes one storage binding may cover (and one allocation hold) */
    VkDeviceSize offset_align; /* minStorageBufferOffsetAlignment */
} vk_caps;

bn_status vk_query_caps(VkPhysicalDevice pd, vk_caps *c, bn_err *err);
/* One line: API version, subgroup, integer dot, memory heaps, import (for bn_device_info). */
void vk_caps_details(const vk_caps *c, char *buf, size_t len);

/* ---- buffers and spans ---- */
typedef struct vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    uint8_t *map; /* persistently mapped, or NULL */
} vk_buffer;

/* A binding: a range of a buffer; map is the host address of off when mapped. */
typedef struct vk_span {
    VkBuffer buf;
    VkDeviceSize off, size;
    uint8_t *map;
} vk_span;

/* A weight on the device, split by rows into chunks that each fit one binding.
 * Ternary weights are 2-bit codes (I2_S as stored; TQ2_0 codes as stored with the block
 * scales moved to a separate f32 array; TQ1_0 repacked into the TQ2_0 code order). */
typedef struct vk_chunk {
    vk_span data;   /* codes or float rows */
    vk_span scales; /* TQ: f32 [rows][K/256] */
    int64_t row0, rows;
} vk_chunk;

typedef struct vk_weight {
    const void *host;
    size_t nbytes;
    uint32_t type;
    int64_t ne0, ne1;
    float tscale; /* I2_S tensor scale */
    int layout;   /* ternary code order: 0 I2_S, 1 TQ2_0 */
    bool per_group;
    bool imported;
    int n_chunks;
    vk_chunk *chunks;
} vk_weight;

typedef struct vk_cache {
    const void *host;
    size_t nbytes;
    vk_span span;
} vk_cache;

typedef struct vk_pipeline {
    char name[32];
    uint32_t spec[8];
    int n_spec;
    VkPipeline pipe;
} vk_pipeline;

/* Per-op time from GPU timestamps (--profile-ops / BITNET_PROFILE_OPS=1). */
typedef struct vk_op_stat {
    double ns;
    long count;
} vk_op_stat;

struct vk_graph;

typedef struct vk_backend {
    bn_backend base;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkQueue queue;
    vk_caps caps;
    VkCommandPool cmd_pool;
    VkFence fence;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipelineCache pcache;
    vk_pipeline *pipes;
    int n_pipes, cap_pipes;
    /* persistent device memory: weights, caches, pool blocks */
    vk_buffer *allocs;
    int n_allocs, cap_allocs;
    int pool_block;         /* index in allocs of the current pool block, -1 if none */
    VkDeviceSize pool_used; /* bytes used in it */
    vk_weight **weights;    /* open-addressing table by host pointer */
    int n_weights, cap_weights;
    vk_cache *caches;
    int n_caches, cap_caches;
    vk_buffer staging; /* discrete devices: host-visible bounce buffer for uploads */
    vk_buffer dummy;   /* bound to unused binding slots */
    struct vk_graph *graphs;
    /* choices */
    bool use_subgroup, use_int_dot, use_fp64, allow_import;
    bool int_dot_emulated;           /* BITNET_VK_INT_DOT_EMULATE=1 (tests) */
    bool holds_instance;             /* a reference on the shared VkInstance, released at close */
    uint32_t wg_matvec, rows_matvec; /* decode mat-vec: invocations per row group, rows */
    int tiled_min_tokens;            /* T at which matmuls switch to the tiled kernels */
    bool profile;
    vk_op_stat stats[BN_OP_COUNT];
    uint64_t uploaded_bytes, imported_bytes;
} vk_backend;

/* ---- device (vk_device.c) ---- */
bn_status vk_device_create(vk_backend *be, bn_err *err);
void vk_device_destroy(vk_backend *be);
bn_status vk_oneshot_begin(vk_backend *be, VkCommandBuffer *cb, bn_err *err);
/* Ends, submits and waits for cb, then frees it. */
bn_status vk_oneshot_submit(vk_backend *be, VkCommandBuffer cb, bn_err *err);
/* Submits a recorded command buffer and waits for it. */
bn_status vk_submit_wait(vk_backend *be, VkCommandBuffer cb, bn_err *err);
const char *vk_result_name(VkResult r);

/* ---- memory (vk_memory.c) ---- */
typedef enum vk_mem_kind {
    VK_MEM_DEVICE, /* device-local (mapped too on unified devices) */
    VK_MEM_HOST,   /* host-visible coherent, cached when possible, mapped */
} vk_mem_kind;

bn_status vk_buffer_create(vk_backend *be, VkDeviceSize size, vk_mem_kind kind, vk_buffer *out,
                           bn_err *err);
void vk_buffer_destroy(vk_backend *be, vk_buffer *b);
/* Persistent device memory (freed at close), aligned for a storage binding. */
bn_status vk_persist_alloc(vk_backend *be, VkDeviceSize size, vk_span *out, bn_err *err);
/* Copies host bytes into a device span (mapped: memcpy; else through the staging buffer). */
bn_status vk_upload(vk_backend *be, const vk_span *dst, const void *src, size_t n, bn_err *err);
bn_status vk_fill_zero(vk_backend *be, const vk_span *dst, bn_err *err);
/* The device copy of a weight tensor, uploaded (or imported) on first use. */
bn_status vk_weight_get(vk_backend *be, const bn_tensor *t, const vk_weight **out, bn_err *err);
/* The device copy of a KV cache, allocated zero-filled on first use. */
bn_status vk_cache_get(vk_backend *be, const bn_tensor *t, vk_span *out, bn_err *err);
/* Drops every weight entry except those in keep (their device memory stays until close). */
void vk_weights_keep_only(vk_backend *be, vk_weight *const *keep, int n_keep);
void vk_memory_release_all(vk_backend *be);
/* Rows of a tensor of this type and row length that fit in one binding. */
int64_t vk_rows_per_chunk(const vk_backend *be, uint32_t type, int64_t ne0);

/* ---- pipelines (vk_pipeline.c) ---- */
#define VK_MAX_BINDINGS 6
#define VK_PUSH_BYTES 128
bn_status vk_pipelines_init(vk_backend *be, bn_err *err);
void vk_pipelines_destroy(vk_backend *be);
/* The pipeline of shader `name` with specialization constants 0..n_spec-1, created on
 * first use and kept for the backend's lifetime. */
bn_status vk_pipeline_get(vk_backend *be, const char *name, const uint32_t *spec, int n_spec,
                          VkPipeline *out, bn_err *err);
bool vk_shader_has(const char *name, int flags);

/* ---- node checks (vk_check.c) ---- */
bn_status vk_check_node(const vk_backend *be, const bn_tensor *node, bn_err *err);

/* ---- dispatches (vk_ops.c) ---- */
typedef struct vk_dispatch {
    const bn_tensor *node;
    VkPipeline pipe;
    vk_span bind[VK_MAX_BINDINGS]; /* buf VK_NULL_HANDLE: unused (the dummy buffer is bound) */
    bool writes[VK_MAX_BINDINGS];  /* bindings the shader writes */
    uint8_t push[VK_PUSH_BYTES];
    uint32_t push_size;
    uint32_t groups[3];
    VkDescriptorSet set;
} vk_dispatch;

typedef struct vk_dispatch_list {
    vk_dispatch *d;
    int n, cap;
} vk_dispatch_list;

/* How the graph code tells the encoder where a tensor is. */
typedef struct vk_resolver {
    void *ctx;
    vk_span (*span)(void *ctx, const bn_tensor *t);            /* non-weight tensors */
    const vk_weight *(*weight)(void *ctx, const bn_tensor *t); /* weights (NULL if not one) */
    vk_span (*params)(void *ctx);                              /* the n_past slots */
    int (*slot)(void *ctx, const bn_tensor *node);             /* a node's n_past slot */
    vk_span (*rope_table)(void *ctx, const bn_tensor *node, uint32_t *stride_pairs);
} vk_resolver;

/* Appends the dispatches of one node (several when its weight is split in chunks). */
bn_status vk_encode_node(vk_backend *be, const bn_tensor *node, const vk_resolver *r,
                         vk_dispatch_list *out, bn_err *err);

/* ---- graphs (vk_graph.c) ---- */
bn_status vk_graph_prepare(bn_backend *b, bn_graph *g, bn_err *err);
bn_status vk_graph_compute(bn_backend *b, bn_graph *g, bn_err *err);
void vk_graph_release(bn_backend *b, bn_graph *g);
void vk_graph_release_all(vk_backend *be);

/* ---- helpers ---- */
static inline VkDeviceSize vk_align_up(VkDeviceSize x, VkDeviceSize a) {
    return (x + a - 1) / a * a;
}
/* Environment integer, or def when unset or malformed. */
long vk_env_long(const char *name, long def);

#endif
