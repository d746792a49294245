/* npu_backend.c - the NPU slot: a backend that exists so the planner, the CLI
 * and the API treat an NPU like any other device. No NPU runtime is supported
 * yet, so it enumerates no device and says so. A profile file (--profile,
 * graph/profile.h) may still describe one ("id": "npu:0", "type": "npu"):
 * `bitnet plan` then plans with it, and a run falls back to the CPU for its
 * layers with "npu:0: not on this machine (no NPU runtime found ...)". */
#include <stdio.h>

#include "../backend.h"

static int npu_device_count(char *why, size_t why_len) {
    if (why) snprintf(why, why_len, "no NPU runtime found (none is supported in this build)");
    return 0;
}

static bn_status npu_device_info(int device, bn_device_info *info, bn_err *err) {
    (void)info;
    return bn_fail(err, BN_ERR_DEVICE, "npu:%d: no NPU runtime found", device);
}

static bn_status npu_open(int device, const bn_backend_config *cfg, bn_backend **out, bn_err *err) {
    (void)cfg;
    *out = NULL;
    return bn_fail(err, BN_ERR_DEVICE, "npu:%d: no NPU runtime found", device);
}

const bn_backend_ops *bn_backend_npu(void) {
    static const bn_backend_ops ops = {
        .name = "npu",
        .device_count = npu_device_count,
        .device_info = npu_device_info,
        .open = npu_open,
    };
    return &ops;
}
