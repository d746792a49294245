/* devices.h - the devices a run may use: --backend, --devices and --profile
 * turned into the planner's device list, what each device can run and how
 * fast it is (measured only when the choice depends on it), the plan, and
 * the opened backends.
 *
 *   --backend auto (default): every device except hidden ones (cpu:1) and
 *       devices of type CPU behind another API (lavapipe, PoCL: never faster
 *       than the native CPU backend); GPUs of one API only (Vulkan if it has
 *       one, else OpenCL), so one GPU is not counted twice.
 *   --backend cpu: cpu:0 alone.
 *   --backend X: X's devices, as many layers on them as fit; the rest, and
 *       every node X cannot run, on cpu:0. Fails when X has no device.
 *   --devices LIST: exactly these devices (cpu:1 included).
 *   --profile FILE: the devices and profiles of FILE instead of enumeration
 *       and measurement (a device not present here cannot be opened: its
 *       layers fall back to the CPU when running).
 * cpu:0 is always the fallback: it runs what no other device can, and the
 * layers of a device that fails to open ("vulkan:0: ...; running on the CPU"). */
#ifndef BN_DEVICES_H
#define BN_DEVICES_H

#include "../core/model.h"
#include "build.h"
#include "planner.h"

typedef struct bn_device_request {
    const char *backend; /* NULL or "auto", "cpu", "vulkan", "opencl", "npu" */
    const char *devices; /* NULL, or "vulkan:0,cpu:0" */
    const char *profile; /* NULL, or a profile file (graph/profile.h) */
    uint64_t gpu_mem;    /* cap on each non-CPU device's budget; 0: none */
} bn_device_request;

typedef struct bn_devset {
    int n;
    bn_plan_device dev[BN_PLAN_MAX_DEVICES];
    const bn_backend_ops *ops[BN_PLAN_MAX_DEVICES]; /* NULL: backend not in this build */
    int index[BN_PLAN_MAX_DEVICES];                 /* device number within its backend */
    bool present[BN_PLAN_MAX_DEVICES];              /* enumerated on this machine */
    bool hidden[BN_PLAN_MAX_DEVICES];
    char details[BN_PLAN_MAX_DEVICES][256];
    bn_backend *be[BN_PLAN_MAX_DEVICES]; /* opened, or NULL */
    int fallback;                        /* index of cpu:0 */
    bool from_file;                      /* devices and profiles from --profile */
    char note[2048];                     /* what was chosen and why, failures */
} bn_devset;

/* Builds the device list (nothing is opened). Usage-type errors
 * (BN_ERR_INVALID_ARG, BN_ERR_DEVICE) name the option at fault. */
bn_status bn_devset_resolve(const bn_device_request *r, bn_devset *ds, bn_err *err);

/* Plans model m on the set. run: the plan is for running, so every device
 * with work is opened (a device that fails to open is dropped, with a note,
 * and the plan is made again) and devices left without work are closed.
 * Without run, present devices are opened only to ask what they support and
 * closed again. Profiles are measured (or read from the cache) when more
 * than one device is allowed and no constraint fixes the split. pm and plan
 * are filled for the caller to free. */
bn_status bn_devset_plan(bn_devset *ds, const bn_model *m, const bn_kv_cache *kv, int n_batch,
                         const bn_plan_constraints *c, const bn_backend_config *cfg, bool run,
                         bn_plan_model *pm, bn_plan *plan, bn_err *err);

/* Fills the profile of device i from the cache or by measuring it. */
bn_status bn_devset_measure(bn_devset *ds, int i, const bn_backend_config *cfg, bool *measured,
                            bn_err *err);

/* Drops device i after a failure (e says what): a note "ID: ...; running on
 * the CPU", no more units for it, its backend closed. */
void bn_devset_drop(bn_devset *ds, int i, const bn_err *e);

void bn_devset_close(bn_devset *ds);

#endif
