/* cl_device.c - OpenCL platforms and devices through the ICD loader: the list
 * of every device of every platform (device ids opencl:0, opencl:1, ... in
 * that order), what each can do (capabilities the kernels' build options
 * depend on) and how it is described to the planner and `bitnet devices`.
 *
 * OpenCL cannot report free memory, so mem_free is the total minus a margin
 * and mem_free_estimated says so. */
#include <stdio.h>
#include <string.h>

#include <CL/cl_ext.h>

#include "cl_internal.h"

const char *bn_cl_errstr(cl_int e) {
    switch (e) {
#define E(x)                                                                                       \
    case x:                                                                                        \
        return #x;
        E(CL_SUCCESS)
        E(CL_DEVICE_NOT_FOUND)
        E(CL_DEVICE_NOT_AVAILABLE)
        E(CL_COMPILER_NOT_AVAILABLE)
        E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        E(CL_OUT_OF_RESOURCES)
        E(CL_OUT_OF_HOST_MEMORY)
        E(CL_BUILD_PROGRAM_FAILURE)
        E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        E(CL_INVALID_VALUE)
        E(CL_INVALID_DEVICE)
        E(CL_INVALID_CONTEXT)
        E(CL_INVALID_COMMAND_QUEUE)
        E(CL_INVALID_HOST_PTR)
        E(CL_INVALID_MEM_OBJECT)
        E(CL_INVALID_BINARY)
        E(CL_INVALID_BUILD_OPTIONS)
        E(CL_INVALID_PROGRAM)
        E(CL_INVALID_PROGRAM_EXECUTABLE)
        E(CL_INVALID_KERNEL_NAME)
        E(CL_INVALID_KERNEL)
        E(CL_INVALID_ARG_INDEX)
        E(CL_INVALID_ARG_VALUE)
        E(CL_INVALID_ARG_SIZE)
        E(CL_INVALID_KERNEL_ARGS)
        E(CL_INVALID_WORK_DIMENSION)
        E(CL_INVALID_WORK_GROUP_SIZE)
        E(CL_INVALID_WORK_ITEM_SIZE)
        E(CL_INVALID_GLOBAL_OFFSET)
        E(CL_INVALID_EVENT_WAIT_LIST)
        E(CL_INVALID_EVENT)
        E(CL_INVALID_OPERATION)
        E(CL_INVALID_BUFFER_SIZE)
        E(CL_INVALID_GLOBAL_WORK_SIZE)
#undef E
    case -1001:
        return "CL_PLATFORM_NOT_FOUND_KHR";
    default:
        return "unknown OpenCL error";
    }
}

static void str_info(cl_device_id d, cl_device_info what, char *out, size_t len) {
    out[0] = 0;
    if (clGetDeviceInfo(d, what, len - 1, out, NULL) != CL_SUCCESS) out[0] = 0;
    out[len - 1] = 0;
}

/* Whether the space-separated extension list names ext. */
static bool has_ext(const char *list, const char *ext) {
    size_t n = strlen(ext);
    for (const char *p = list; (p = strstr(p, ext)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == 0 || p[n] == ' ')) return true;
    return false;
}

static void read_caps(cl_platform_id plat, cl_device_id dev, clb_caps *c) {
    memset(c, 0, sizeof *c);
    c->platform = plat;
    c->device = dev;
    str_info(dev, CL_DEVICE_NAME, c->name, sizeof c->name);
    str_info(dev, CL_DEVICE_VENDOR, c->vendor, sizeof c->vendor);
    str_info(dev, CL_DEVICE_VERSION, c->version, sizeof c->version);
    str_info(dev, CL_DRIVER_VERSION, c->driver, sizeof c->driver);
    str_info(dev, CL_DEVICE_OPENCL_C_VERSION, c->c_version, sizeof c->c_version);
    clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof c->platform_name - 1, c->platform_name, NULL);
    clGetPlatformInfo(plat, CL_PLATFORM_VERSION, sizeof c->platform_version - 1,
                      c->platform_version, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof c->type, &c->type, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof c->global_mem, &c->global_mem, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof c->max_alloc, &c->max_alloc, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof c->local_mem, &c->local_mem, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof c->max_wg, &c->max_wg, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof c->compute_units, &c->compute_units,
                    NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof c->base_align_bits,
                    &c->base_align_bits, NULL);
    cl_bool unified = CL_FALSE;
    clGetDeviceInfo(dev, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
    c->unified = unified == CL_TRUE;
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    c->correct_div = (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;

    size_t n = 0;
    if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, 0, NULL, &n) == CL_SUCCESS && n < 65536) {
        char ext[65536];
        if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, n, ext, NULL) == CL_SUCCESS) {
            ext[n] = 0;
            c->fp64 = has_ext(ext, "cl_khr_fp64");
            c->fp16 = has_ext(ext, "cl_khr_fp16");
            if (has_ext(ext, "cl_khr_integer_dot_product")) {
#ifdef CL_DEVICE_INTEGER_DOT_PRODUCT_CAPABILITIES_KHR
                cl_device_integer_dot_product_capabilities_khr cap = 0;
                clGetDeviceInfo(dev, CL_DEVICE_INTEGER_DOT_PRODUCT_CAPABILITIES_KHR, sizeof cap,
                                &cap, NULL);
                c->int_dot = (cap & CL_DEVICE_INTEGER_DOT_PRODUCT_INPUT_4x8BIT_KHR) != 0;
#endif
            }
        }
    }
}

int bn_cl_list_devices(clb_caps *out, int cap, char *why, size_t why_len) {
    cl_platform_id plats[8];
    cl_uint np = 0;
    cl_int r = clGetPlatformIDs(8, plats, &np);
    if (r != CL_SUCCESS || np == 0) {
        if (why)
            snprintf(why, why_len,
                     "no OpenCL platform found (clGetPlatformIDs: %s): install an OpenCL driver "
                     "(ICD), e.g. your GPU vendor's or pocl-opencl-icd",
                     r == CL_SUCCESS ? "0 platforms" : bn_cl_errstr(r));
        return 0;
    }
    int n = 0;
    for (cl_uint p = 0; p < np && p < 8 && n < cap; p++) {
        cl_device_id devs[CL_MAX_DEVICES];
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, CL_MAX_DEVICES, devs, &nd) != CL_SUCCESS)
            continue;
        for (cl_uint d = 0; d < nd && d < CL_MAX_DEVICES && n < cap; d++)
            read_caps(plats[p], devs[d], &out[n++]);
    }
    if (n == 0 && why)
        snprintf(why, why_len, "%u OpenCL platform%s but no device", (unsigned)np,
                 np == 1 ? "" : "s");
    return n;
}

void bn_cl_describe(const clb_caps *c, bn_device_info *info) {
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", c->name);
    if (c->type & CL_DEVICE_TYPE_CPU)
        info->type = BN_DEVICE_CPU;
    else if (c->unified)
        info->type = BN_DEVICE_IGPU;
    else
        info->type = BN_DEVICE_DGPU;
    info->unified = c->unified;
    info->mem_total = c->global_mem;
    /* no OpenCL query gives free memory: keep a tenth (at least 256 MiB) back */
    uint64_t margin = c->global_mem / 10;
    if (margin < (256ull << 20)) margin = 256ull << 20;
    info->mem_free = c->global_mem > margin ? c->global_mem - margin : 0;
    info->mem_free_estimated = true;
    snprintf(info->details, sizeof info->details,
             "%.40s %.24s (%.20s), %u CU, local %llu KiB, max alloc %llu MiB, %s, %s, %s; free "
             "memory estimated",
             c->platform_name, c->driver, c->c_version, c->compute_units,
             (unsigned long long)(c->local_mem >> 10), (unsigned long long)(c->max_alloc >> 20),
             c->fp64 ? "fp64" : "no fp64", c->int_dot ? "int dot product" : "no int dot product",
             c->unified ? "unified memory" : "device memory");
}
