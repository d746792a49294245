/* registry.c - the list of backends compiled into this build. */
#include "backend.h"

#include <string.h>

#ifndef BITNET_HAVE_VULKAN
const bn_backend_ops *bn_backend_vulkan(void) {
    return NULL;
}
#endif
#ifndef BITNET_HAVE_OPENCL
const bn_backend_ops *bn_backend_opencl(void) {
    return NULL;
}
#endif

const char *bn_device_type_name(bn_device_type t) {
    switch (t) {
    case BN_DEVICE_CPU:
        return "cpu";
    case BN_DEVICE_IGPU:
        return "igpu";
    case BN_DEVICE_DGPU:
        return "dgpu";
    case BN_DEVICE_NPU:
        return "npu";
    }
    return "?";
}

const bn_backend_ops *const *bn_backends(void) {
    static const bn_backend_ops *list[5];
    if (!list[0]) {
        int n = 0;
        list[n++] = bn_backend_cpu();
        if (bn_backend_vulkan()) list[n++] = bn_backend_vulkan();
        if (bn_backend_opencl()) list[n++] = bn_backend_opencl();
        list[n++] = bn_backend_npu();
        list[n] = NULL;
    }
    return list;
}

const bn_backend_ops *bn_backend_by_name(const char *name) {
    for (const bn_backend_ops *const *b = bn_backends(); *b; b++)
        if (strcmp((*b)->name, name) == 0) return *b;
    return NULL;
}
