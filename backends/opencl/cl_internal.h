/* cl_internal.h - what the OpenCL backend's files share (not part of the
 * backend interface; backends/backend.h is).
 *
 * Files: clb_backend.c (the ops table, open/close), cl_device.c (platforms,
 * devices, capabilities, bn_device_info), cl_program.c (building the embedded
 * kernels once per device, binary cache on disk), cl_memory.c (weights and
 * KV caches keyed by host pointer, buffers), cl_check.c (which nodes this
 * backend runs: supports), cl_ops.c (kernel choice and dispatch per op),
 * cl_graph.c (graph_prepare / graph_compute / graph_release), cl_calibrate.c
 * (the throughput profile). */
#ifndef BN_CL_INTERNAL_H
#define BN_CL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <CL/cl.h>

#include "../backend.h"

/* ---- devices (cl_device.c) ---- */

#define CL_MAX_DEVICES 16

typedef struct clb_caps {
    cl_platform_id platform;
    cl_device_id device;
    char name[128], vendor[128], version[128], driver[128], platform_name[128],
        platform_version[256], c_version[64];
    cl_device_type type;
    cl_ulong global_mem, max_alloc, local_mem;
    size_t max_wg;
    cl_uint compute_units, base_align_bits;
    bool unified;     /* CL_DEVICE_HOST_UNIFIED_MEMORY */
    bool fp64;        /* cl_khr_fp64 */
    bool int_dot;     /* cl_khr_integer_dot_product with 4x8-bit inputs */
    bool fp16;        /* cl_khr_fp16 (not needed: f16 goes through vload_half) */
    bool correct_div; /* CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT */
} clb_caps;

/* Every device of every platform, in order (device ids opencl:0, opencl:1, ...);
 * returns the count, 0 with why[] filled when there is none. */
int bn_cl_list_devices(clb_caps *out, int cap, char *why, size_t why_len);
/* bn_device_info for one device: type, memory (free is estimated), details. */
void bn_cl_describe(const clb_caps *c, bn_device_info *info);
/* "CL_OUT_OF_RESOURCES" style name of an OpenCL error code. */
const char *bn_cl_errstr(cl_int e);

/* ---- programs (cl_program.c) ---- */

typedef struct clb_prog {
    char file[32];     /* shaders/opencl/<file>.cl */
    char options[160]; /* the -D options of this variant */
    cl_program prog;
    int n_kernels;
    struct {
        char name[32];
        cl_kernel k;
    } kernels[8];
    struct clb_prog *next;
} clb_prog;

/* ---- memory (cl_memory.c) ---- */

typedef struct clb_shared_buf {
    const void *host; /* identity: the host pointer */
    size_t bytes;
    cl_mem mem;
} clb_shared_buf;

typedef struct clb_buf_table {
    clb_shared_buf *v;
    int n, cap;
} clb_buf_table;

/* ---- the backend ---- */

typedef struct clb_graph_state clb_graph_state;

typedef struct clb_backend {
    bn_backend base;
    clb_caps caps;
    cl_context ctx;
    cl_command_queue queue;
    int wg;        /* work-group size of the kernels */
    int lpr;       /* lanes per row of the matmul kernels (1 on CPU devices) */
    bool use_fp64; /* -DUSE_FP64 */
    bool use_dot;  /* -DUSE_DOT (cleared if the compiler refuses the built-ins) */
    char base_options[160];
    clb_prog *progs;
    int n_built, n_loaded; /* programs compiled from source / loaded from the disk cache */
    bool profile;          /* BITNET_OPENCL_PROFILE: time every node (serializes the queue) */
    double op_sec[BN_OP_COUNT];
    long op_count[BN_OP_COUNT];
    char cache_dir[512]; /* "" when there is none */
    clb_buf_table weights, caches;
    clb_graph_state *graphs;
} clb_backend;

/* Sets base_options from wg, lpr, use_fp64, use_dot and the device. */
void bn_cl_set_options(clb_backend *be);

/* Fills err with "opencl:N: what: CL_ERROR_NAME (code)" and returns BN_ERR_DEVICE
 * (BN_ERR_OOM for the out-of-memory codes). */
bn_status bn_cl_fail(const clb_backend *be, bn_err *err, cl_int code, const char *what);

/* The kernel `name` of program `file` built with `options` (plus the base
 * options), compiled or loaded on first use and kept until close. */
bn_status bn_cl_kernel(clb_backend *be, const char *file, const char *options, const char *name,
                       cl_kernel *out, bn_err *err);
void bn_cl_programs_free(clb_backend *be);
/* Where binaries are cached: $XDG_CACHE_HOME/bitnet/opencl or
 * ~/.cache/bitnet/opencl ("" when neither is set). */
void bn_cl_cache_dir(char *out, size_t len);

/* The device buffer of a weight (uploaded, or wrapping the host memory on a
 * unified device, on first use) or of a KV cache (zero-filled on first use). */
bn_status bn_cl_weight(clb_backend *be, const void *host, size_t bytes, cl_mem *out, bn_err *err);
bn_status bn_cl_cache(clb_backend *be, void *host, size_t bytes, cl_mem *out, bn_err *err);
/* Drops a weight's device buffer (for host memory about to be freed: calibration). */
void bn_cl_weight_forget(clb_backend *be, const void *host);
void bn_cl_tables_free(clb_backend *be);

/* ---- node checks (cl_check.c) ---- */

/* BN_OK if this device runs node; otherwise why, naming the node. */
bn_status bn_cl_check_node(const clb_backend *be, const bn_tensor *node, bn_err *err);

/* ---- graphs (cl_graph.c) and op dispatch (cl_ops.c) ---- */

/* Where a tensor lives on the device. */
typedef struct clb_loc {
    cl_mem mem;
    cl_ulong off;
} clb_loc;

/* One node's prepared dispatch: the kernel and its launch shape. */
typedef struct clb_exec {
    cl_kernel k;
    int variant; /* op-specific (e.g. decode or prefill kernel) */
    cl_mem aux;  /* op-specific constants (ROPE: inv_freq as float pairs), or NULL */
} clb_exec;

struct clb_graph_state {
    bn_graph *g;
    cl_mem arena;
    clb_loc *loc;      /* per tensor id */
    clb_exec *exec;    /* per node index */
    void **owned_host; /* per tensor id: host memory this backend allocated */
    cl_mem *input_mem; /* per tensor id: device copy of an input leaf, or NULL */
    clb_graph_state *next;
};

bn_status bn_cl_graph_prepare(bn_backend *b, bn_graph *g, bn_err *err);
bn_status bn_cl_graph_compute(bn_backend *b, bn_graph *g, bn_err *err);
void bn_cl_graph_release(bn_backend *b, bn_graph *g);

/* Chooses (and builds) the node's kernel. */
bn_status bn_cl_op_prepare(clb_backend *be, const bn_tensor *node, clb_exec *ex, bn_err *err);
/* Sets the arguments from the node's current parameters and enqueues it. */
bn_status bn_cl_op_enqueue(clb_backend *be, const clb_graph_state *st, const bn_tensor *node,
                           const clb_exec *ex, bn_err *err);

/* The profile (cl_calibrate.c). */
bn_status bn_cl_calibrate(bn_backend *b, bn_device_profile *out, bn_err *err);

#endif
