/* vk_backend.c - the Vulkan backend's entry in the backend table (backends/backend.h):
 * device listing and description, open/close, which nodes it runs, calibration, and the
 * per-op GPU time profile.
 *
 * Run-time settings (environment):
 *   BITNET_VK_VALIDATE=1     Khronos validation layer (vk_instance.c)
 *   BITNET_PROFILE_OPS=1     GPU timestamps per dispatch; a per-op table on stderr at close
 *   BITNET_VK_SUBGROUP=0     shared-memory reductions even where subgroups exist
 *   BITNET_VK_INT_DOT=0      packed-integer shaders even where integer dot products exist
 *   BITNET_VK_INT_DOT_EMULATE=1  the integer-dot shaders with the built-in written out (tests)
 *   BITNET_VK_FP64=0         f32 shaders even where the device has doubles
 *   BITNET_VK_IMPORT=0       copy weights instead of importing host memory
 *   BITNET_VK_MATVEC_WG=N, BITNET_VK_MATVEC_ROWS=N   decode mat-vec shape (powers of two)
 *   BITNET_VK_TILED_MIN=N    tokens from which matmuls use the tiled kernels (default 8)
 *   BITNET_VK_MAX_CHUNK=N    split weights into bindings of at most N bytes (tests)
 *   BITNET_VK_FORCE_DISCRETE=1  treat a unified device as discrete: staging uploads,
 *                            host mirrors and copies (tests the discrete path on lavapipe) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/os.h"
#include "vk_internal.h"

static int vk_device_count(char *why, size_t why_len) {
    VkPhysicalDevice devs[VK_MAX_DEVICES];
    if (!vk_instance_acquire(why, why_len)) return 0;
    int n = vk_physical_devices(devs, why, why_len);
    vk_instance_release(false);
    return n;
}

/* Physical device `device`, with an instance reference the caller releases on success. */
static bn_status get_pd(int device, VkPhysicalDevice *pd, bn_err *err) {
    VkPhysicalDevice devs[VK_MAX_DEVICES];
    *pd = VK_NULL_HANDLE;
    char why[256] = "";
    if (!vk_instance_acquire(why, sizeof why))
        return bn_fail(err, BN_ERR_DEVICE, "vulkan:%d: %s", device, why);
    int n = vk_physical_devices(devs, why, sizeof why);
    if (n == 0 || device < 0 || device >= n) {
        vk_instance_release(false);
        if (n == 0) return bn_fail(err, BN_ERR_DEVICE, "vulkan:%d: %s", device, why);
        return bn_fail(err, BN_ERR_DEVICE, "vulkan:%d: no such device (%d found)", device, n);
    }
    *pd = devs[device];
    return BN_OK;
}

static bn_status device_info_of(VkPhysicalDevice pd, bn_device_info *info, bn_err *err) {
    vk_caps c;
    if (vk_query_caps(pd, &c, err) != BN_OK) return err->code;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%.127s", c.props.deviceName);
    vk_caps_details(&c, info->details, sizeof info->details);
    info->type = c.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ? BN_DEVICE_DGPU
                 : c.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU        ? BN_DEVICE_CPU
                                                                            : BN_DEVICE_IGPU;
    for (uint32_t i = 0; i < c.mem.memoryHeapCount; i++)
        if (c.mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            info->mem_total += c.mem.memoryHeaps[i].size;
    info->unified = c.unified || c.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    if (c.memory_budget) {
        VkPhysicalDeviceMemoryBudgetPropertiesEXT bp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
        VkPhysicalDeviceMemoryProperties2 mp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &bp};
        vkGetPhysicalDeviceMemoryProperties2(pd, &mp);
        for (uint32_t i = 0; i < c.mem.memoryHeapCount; i++)
            if ((c.mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
                bp.heapBudget[i] > bp.heapUsage[i])
                info->mem_free += bp.heapBudget[i] - bp.heapUsage[i];
    } else {
        uint64_t margin = info->mem_total / 10;
        if (margin < ((uint64_t)256 << 20)) margin = (uint64_t)256 << 20;
        info->mem_free = info->mem_total > margin ? info->mem_total - margin : 0;
        info->mem_free_estimated = true;
    }
    return BN_OK;
}

static bn_status vk_device_info(int device, bn_device_info *info, bn_err *err) {
    VkPhysicalDevice pd;
    if (get_pd(device, &pd, err) != BN_OK) return err->code;
    bn_status st = device_info_of(pd, info, err);
    vk_instance_release(false);
    return st;
}

static bool pow2_in(long v, long lo, long hi) {
    return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

static void vk_close(bn_backend *b);

static bn_status vk_open(int device, const bn_backend_config *cfg, bn_backend **out, bn_err *err) {
    (void)cfg;
    *out = NULL;
    VkPhysicalDevice pd;
    if (get_pd(device, &pd, err) != BN_OK) return err->code;
    vk_backend *be = calloc(1, sizeof *be);
    if (!be) {
        vk_instance_release(true);
        return bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    be->base.ops = bn_backend_vulkan();
    be->base.device = device;
    be->pd = pd;
    be->pool_block = -1;
    be->holds_instance = true; /* get_pd's reference, released at close */
    if (vk_query_caps(pd, &be->caps, err) != BN_OK) {
        bn_err_prefix(err, "vulkan:%d", device);
        vk_close(&be->base);
        return err->code;
    }
    if (vk_env_long("BITNET_VK_FORCE_DISCRETE", 0)) be->caps.unified = false; /* tests */
    be->use_subgroup = be->caps.subgroup_arith && vk_env_long("BITNET_VK_SUBGROUP", 1) != 0;
#ifdef BITNET_VK_INT_DOT_BUILT
    be->use_int_dot = be->caps.int_dot && vk_env_long("BITNET_VK_INT_DOT", 1) != 0;
#endif
    be->int_dot_emulated = vk_env_long("BITNET_VK_INT_DOT_EMULATE", 0) != 0;
    be->use_fp64 = be->caps.fp64 && vk_env_long("BITNET_VK_FP64", 1) != 0;
    be->allow_import =
        be->caps.unified && be->caps.ext_mem_host && vk_env_long("BITNET_VK_IMPORT", 1) != 0;
    long wg = vk_env_long("BITNET_VK_MATVEC_WG", 64),
         rows = vk_env_long("BITNET_VK_MATVEC_ROWS", 4);
    be->wg_matvec = pow2_in(wg, 1, 1024) ? (uint32_t)wg : 64;
    be->rows_matvec = rows >= 1 && rows <= 16 ? (uint32_t)rows : 4;
    long tmin = vk_env_long("BITNET_VK_TILED_MIN", 8);
    be->tiled_min_tokens = tmin >= 1 ? (int)tmin : 8;
    be->profile = vk_env_long("BITNET_PROFILE_OPS", 0) != 0;
    bn_status st = vk_device_create(be, err);
    if (st == BN_OK) st = vk_pipelines_init(be, err);
    if (st == BN_OK) st = vk_buffer_create(be, 256, VK_MEM_DEVICE, &be->dummy, err);
    if (st == BN_OK) {
        vk_span s = {be->dummy.buf, 0, 256, be->dummy.map};
        st = vk_fill_zero(be, &s, err);
    }
    if (st != BN_OK) {
        vk_close(&be->base);
        return st;
    }
    *out = &be->base;
    return BN_OK;
}

static void print_profile(const vk_backend *be) {
    double total = 0;
    for (int i = 0; i < BN_OP_COUNT; i++) total += be->stats[i].ns;
    if (total <= 0) return;
    fprintf(stderr, "vulkan:%d op profile (GPU timestamps, %s):\n", be->base.device,
            be->caps.props.deviceName);
    fprintf(stderr, "  %-16s %8s %12s %10s %6s\n", "op", "calls", "total ms", "avg us", "share");
    for (int i = 0; i < BN_OP_COUNT; i++) {
        const vk_op_stat *s = &be->stats[i];
        if (!s->count) continue;
        fprintf(stderr, "  %-16s %8ld %12.3f %10.2f %5.1f%%\n", bn_op_name((bn_op)i), s->count,
                s->ns / 1e6, s->ns / 1e3 / (double)s->count, 100.0 * s->ns / total);
    }
    fprintf(stderr, "  %-16s %8s %12.3f\n", "total", "", total / 1e6);
    fprintf(stderr,
            "  weights: %.1f MiB copied to the device, %.1f MiB imported from host memory\n",
            (double)be->uploaded_bytes / (1 << 20), (double)be->imported_bytes / (1 << 20));
}

static void vk_close(bn_backend *b) {
    vk_backend *be = (vk_backend *)b;
    if (!be) return;
    if (be->dev) {
        vk_graph_release_all(be);
        if (be->profile) print_profile(be);
        vk_memory_release_all(be);
        vk_pipelines_destroy(be);
        vk_device_destroy(be);
    }
    if (be->holds_instance) vk_instance_release(true);
    free(be);
}

static bool vk_supports(bn_backend *b, const bn_tensor *node) {
    return vk_check_node((vk_backend *)b, node, NULL) == BN_OK;
}

/* Transfers as graphs see them, replacing the generic figures (which time a whole graph
 * around the copy): on unified memory a memcpy into / out of mapped device memory, on
 * discrete GPUs a copy between a host-visible and a device-local buffer. 16 MiB, best of
 * three. Failures leave the generic figures. */
static void measure_transfers(vk_backend *be, bn_device_profile *out) {
    const size_t n = (size_t)16 << 20;
    vk_buffer host = {0}, dev = {0};
    uint8_t *tmp = malloc(n);
    bn_err e = {0};
    if (!tmp || vk_buffer_create(be, n, VK_MEM_HOST, &host, &e) != BN_OK ||
        vk_buffer_create(be, n, VK_MEM_DEVICE, &dev, &e) != BN_OK)
        goto done;
    memset(tmp, 1, n);
    double best[2] = {1e30, 1e30};
    for (int rep = 0; rep < 3; rep++)
        for (int dir = 0; dir < 2; dir++) {
            double t0 = bn_time_sec();
            if (dev.map) {
                if (dir == 0)
                    memcpy(dev.map, tmp, n);
                else
                    memcpy(tmp, dev.map, n);
            } else {
                VkCommandBuffer cb;
                if (vk_oneshot_begin(be, &cb, &e) != BN_OK) goto done;
                VkBufferCopy c = {0, 0, n};
                if (dir == 0)
                    vkCmdCopyBuffer(cb, host.buf, dev.buf, 1, &c);
                else
                    vkCmdCopyBuffer(cb, dev.buf, host.buf, 1, &c);
                if (vk_oneshot_submit(be, cb, &e) != BN_OK) goto done;
            }
            double dt = bn_time_sec() - t0;
            if (dt < best[dir]) best[dir] = dt;
        }
    if (best[0] > 0 && best[0] < 1e30) out->h2d_gbps = (double)n / best[0] / 1e9;
    if (best[1] > 0 && best[1] < 1e30) out->d2h_gbps = (double)n / best[1] / 1e9;
done:
    vk_buffer_destroy(be, &host);
    vk_buffer_destroy(be, &dev);
    free(tmp);
}

/* The generic calibration (backends/calibrate.c) frees the host memory of its weights
 * after each measurement; the device copies keyed by those pointers are dropped here
 * so that a later tensor at a recycled address is not mistaken for them. */
static bn_status vk_calibrate(bn_backend *b, bn_device_profile *out, bn_err *err) {
    vk_backend *be = (vk_backend *)b;
    vk_weight **saved = NULL;
    int n_saved = 0;
    if (be->n_weights) {
        saved = malloc(sizeof *saved * (size_t)be->n_weights);
        if (!saved) return bn_fail(err, BN_ERR_OOM, "out of memory");
        for (int i = 0; i < be->cap_weights; i++)
            if (be->weights[i]) saved[n_saved++] = be->weights[i];
    }
    const int n_caches = be->n_caches;
    bn_status st = bn_backend_calibrate_generic(b, out, err);
    if (st == BN_OK) measure_transfers(be, out);
    vk_weights_keep_only(be, saved, n_saved); /* device memory stays until close */
    be->n_caches = n_caches;
    free(saved);
    return st;
}

const bn_backend_ops *bn_backend_vulkan(void) {
    static const bn_backend_ops ops = {
        .name = "vulkan",
        .device_count = vk_device_count,
        .device_info = vk_device_info,
        .open = vk_open,
        .supports = vk_supports,
        .calibrate = vk_calibrate,
        .graph_prepare = vk_graph_prepare,
        .graph_compute = vk_graph_compute,
        .graph_release = vk_graph_release,
        .close = vk_close,
    };
    return &ops;
}
