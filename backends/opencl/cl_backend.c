/* clb_backend.c - the OpenCL backend's entry in the backend table: devices
 * (cl_device.c), opening one (context, in-order command queue, build options
 * from its capabilities), supports / calibrate / graphs (cl_check.c,
 * cl_calibrate.c, cl_graph.c) and closing.
 *
 * Environment, for tests and diagnosis: BITNET_OPENCL_FP64=0 builds the
 * kernels as if the device had no cl_khr_fp64 (the f32 paths real GPUs
 * without fp64 take); BITNET_OPENCL_LPR=N sets the matmul kernels' lanes per
 * row (16 is what GPUs get; CPU devices get 1); BITNET_OPENCL_PROFILE=1 times
 * every node and prints the time per op at close. The program cache lives in
 * $XDG_CACHE_HOME/bitnet/opencl (or ~/.cache/bitnet/opencl). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_internal.h"

#define CL_WG 64 /* work-group size of the kernels (WG in shaders/opencl/common.cl) */

bn_status bn_cl_fail(const clb_backend *be, bn_err *err, cl_int code, const char *what) {
    const bool oom = code == CL_OUT_OF_HOST_MEMORY || code == CL_OUT_OF_RESOURCES ||
                     code == CL_MEM_OBJECT_ALLOCATION_FAILURE;
    return bn_fail(err, oom ? BN_ERR_OOM : BN_ERR_DEVICE, "opencl:%d: %s: %s (%d)",
                   be ? be->base.device : -1, what, bn_cl_errstr(code), (int)code);
}

static int clb_device_count(char *why, size_t why_len) {
    clb_caps devs[CL_MAX_DEVICES];
    return bn_cl_list_devices(devs, CL_MAX_DEVICES, why, why_len);
}

static bn_status find_device(int device, clb_caps *out, bn_err *err) {
    clb_caps devs[CL_MAX_DEVICES];
    char why[512] = "";
    int n = bn_cl_list_devices(devs, CL_MAX_DEVICES, why, sizeof why);
    if (n == 0) return bn_fail(err, BN_ERR_DEVICE, "opencl: %s", why);
    if (device < 0 || device >= n)
        return bn_fail(err, BN_ERR_DEVICE, "opencl:%d: no such device (%d found: opencl:0%s%d)",
                       device, n, n > 1 ? " .. opencl:" : "", n > 1 ? n - 1 : 0);
    *out = devs[device];
    return BN_OK;
}

static bn_status clb_device_info(int device, bn_device_info *info, bn_err *err) {
    clb_caps c;
    if (find_device(device, &c, err) != BN_OK) return err->code;
    bn_cl_describe(&c, info);
    return BN_OK;
}

void bn_cl_set_options(clb_backend *be) {
    /* the integer dot product built-ins are declared for OpenCL C 3.0 */
    int major = 0, minor = 0;
    sscanf(be->caps.version, "OpenCL %d.%d", &major, &minor);
    const bool cl3 = be->use_dot && major >= 3;
    snprintf(be->base_options, sizeof be->base_options, "-cl-std=CL%s -DWG=%d -DLPR=%d%s%s%s",
             cl3 ? "3.0" : "1.2", be->wg, be->lpr, be->use_fp64 ? " -DUSE_FP64" : "",
             be->use_dot ? " -DUSE_DOT" : "",
             be->caps.correct_div ? " -cl-fp32-correctly-rounded-divide-sqrt" : "");
}

/* Major * 10 + minor of "OpenCL C X.Y ...", 0 if unreadable. */
static int c_version(const char *s) {
    int major = 0, minor = 0;
    if (sscanf(s, "OpenCL C %d.%d", &major, &minor) != 2) return 0;
    return major * 10 + minor;
}

static void clb_close(bn_backend *b) {
    clb_backend *be = (clb_backend *)b;
    if (!be) return;
    while (be->graphs) bn_cl_graph_release(b, be->graphs->g);
    if (be->profile) {
        double total = 0;
        for (int op = 0; op < BN_OP_COUNT; op++) total += be->op_sec[op];
        fprintf(stderr, "opencl:%d: time per op (BITNET_OPENCL_PROFILE):\n", be->base.device);
        for (int op = 0; op < BN_OP_COUNT; op++)
            if (be->op_count[op])
                fprintf(stderr, "  %-15s %8ld runs %10.3f ms %5.1f %%\n", bn_op_name(op),
                        be->op_count[op], be->op_sec[op] * 1e3,
                        total > 0 ? 100 * be->op_sec[op] / total : 0.0);
    }
    if (be->queue) clFinish(be->queue);
    bn_cl_programs_free(be);
    bn_cl_tables_free(be);
    if (be->queue) clReleaseCommandQueue(be->queue);
    if (be->ctx) clReleaseContext(be->ctx);
    free(be);
}

static bn_status clb_open(int device, const bn_backend_config *cfg, bn_backend **out, bn_err *err) {
    (void)cfg;
    *out = NULL;
    clb_backend *be = calloc(1, sizeof *be);
    if (!be) return bn_fail(err, BN_ERR_OOM, "out of memory");
    be->base.ops = bn_backend_opencl();
    be->base.device = device;
    if (find_device(device, &be->caps, err) != BN_OK) {
        free(be);
        return err->code;
    }
    const clb_caps *c = &be->caps;
    bn_status st = BN_OK;
    if (c_version(c->c_version) < 12)
        st = bn_fail(err, BN_ERR_UNSUPPORTED,
                     "opencl:%d: %s supports '%s'; the kernels need OpenCL C 1.2", device, c->name,
                     c->c_version);
    else if (c->max_wg < CL_WG)
        st = bn_fail(err, BN_ERR_UNSUPPORTED,
                     "opencl:%d: %s runs work-groups of at most %zu items; the kernels need %d",
                     device, c->name, c->max_wg, CL_WG);
    if (st != BN_OK) {
        free(be);
        return st;
    }
    be->wg = CL_WG;
    cl_int r;
    cl_context_properties props[3] = {CL_CONTEXT_PLATFORM, (cl_context_properties)c->platform, 0};
    be->ctx = clCreateContext(props, 1, &c->device, NULL, NULL, &r);
    if (!be->ctx || r != CL_SUCCESS) {
        bn_cl_fail(be, err, r, "clCreateContext");
        clb_close(&be->base);
        return err->code;
    }
    be->queue = clCreateCommandQueue(be->ctx, c->device, 0, &r);
    if (!be->queue || r != CL_SUCCESS) {
        bn_cl_fail(be, err, r, "clCreateCommandQueue");
        clb_close(&be->base);
        return err->code;
    }
    const char *env = getenv("BITNET_OPENCL_FP64");
    be->use_fp64 = c->fp64 && !(env && !strcmp(env, "0"));
    be->use_dot = c->int_dot;
    /* a CPU device walks whole rows per work-item; GPU lanes share a row */
    be->lpr = (c->type & CL_DEVICE_TYPE_CPU) ? 1 : 16;
    if ((env = getenv("BITNET_OPENCL_LPR")) != NULL) {
        int v = atoi(env);
        if (v >= 1 && v <= CL_WG && (v & (v - 1)) == 0) be->lpr = v;
    }
    bn_cl_set_options(be);
    be->profile = (env = getenv("BITNET_OPENCL_PROFILE")) != NULL && strcmp(env, "0") != 0;
    bn_cl_cache_dir(be->cache_dir, sizeof be->cache_dir);
    *out = &be->base;
    return BN_OK;
}

static bool clb_supports(bn_backend *b, const bn_tensor *node) {
    bn_err e = {0};
    return bn_cl_check_node((const clb_backend *)b, node, &e) == BN_OK;
}

const bn_backend_ops *bn_backend_opencl(void) {
    static const bn_backend_ops ops = {
        .name = "opencl",
        .device_count = clb_device_count,
        .device_info = clb_device_info,
        .open = clb_open,
        .supports = clb_supports,
        .calibrate = bn_cl_calibrate,
        .graph_prepare = bn_cl_graph_prepare,
        .graph_compute = bn_cl_graph_compute,
        .graph_release = bn_cl_graph_release,
        .close = clb_close,
    };
    return &ops;
}
