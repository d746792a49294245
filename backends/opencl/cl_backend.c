/* cl_backend.c - the OpenCL backend's registration: platforms and devices are
 * found through the ICD loader and described. Compute (kernels in
 * shaders/opencl) arrives with the OpenCL backend work; until then opening a
 * device says so and the caller stays on the CPU. */
#include <stdio.h>
#include <string.h>

#include <CL/cl.h>

#include "../backend.h"

/* All devices of all platforms, in order; returns the count. */
static int cl_devices(cl_device_id *devs, int cap, char *why, size_t why_len) {
    cl_platform_id plats[8];
    cl_uint np = 0;
    cl_int r = clGetPlatformIDs(8, plats, &np);
    if (r != CL_SUCCESS || np == 0) {
        if (why) snprintf(why, why_len, "no OpenCL platform found (clGetPlatformIDs: %d)", (int)r);
        return 0;
    }
    int n = 0;
    for (cl_uint p = 0; p < np && n < cap; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, (cl_uint)(cap - n), devs + n, &nd) ==
            CL_SUCCESS)
            n += (int)nd;
    }
    if (n == 0 && why) snprintf(why, why_len, "no OpenCL device found");
    return n;
}

static int cl_device_count(char *why, size_t why_len) {
    cl_device_id devs[16];
    return cl_devices(devs, 16, why, why_len);
}

static bn_status cl_describe(int device, bn_device_info *info, bn_err *err) {
    cl_device_id devs[16];
    int n = cl_devices(devs, 16, NULL, 0);
    if (device < 0 || device >= n)
        return bn_fail(err, BN_ERR_DEVICE, "opencl:%d: no such device (%d found)", device, n);
    memset(info, 0, sizeof *info);
    clGetDeviceInfo(devs[device], CL_DEVICE_NAME, sizeof info->name - 1, info->name, NULL);
    cl_device_type t = 0;
    cl_ulong mem = 0;
    cl_bool unified = CL_FALSE;
    clGetDeviceInfo(devs[device], CL_DEVICE_TYPE, sizeof t, &t, NULL);
    clGetDeviceInfo(devs[device], CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(devs[device], CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
    info->type = (t & CL_DEVICE_TYPE_CPU) ? BN_DEVICE_CPU
                 : unified                ? BN_DEVICE_IGPU
                                          : BN_DEVICE_DGPU;
    info->mem_total = info->mem_free = mem;
    info->unified = unified == CL_TRUE;
    return BN_OK;
}

static bn_status cl_open(int device, const bn_backend_config *cfg, bn_backend **out, bn_err *err) {
    (void)cfg;
    *out = NULL;
    return bn_fail(err, BN_ERR_UNSUPPORTED,
                   "opencl:%d: the OpenCL compute kernels are not part of this build yet", device);
}

const bn_backend_ops *bn_backend_opencl(void) {
    static const bn_backend_ops ops = {
        .name = "opencl",
        .device_count = cl_device_count,
        .device_info = cl_describe,
        .open = cl_open,
    };
    return &ops;
}
