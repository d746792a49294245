/* vk_memory.c - device memory of the Vulkan backend.
 *
 * Memory types: on discrete GPUs device-local memory, filled through a host-visible
 * staging buffer; on unified-memory devices (integrated GPUs, lavapipe) memory that is
 * device-local and host-visible at once, persistently mapped and written with memcpy.
 * On unified devices with VK_EXT_external_memory_host the weights are not copied at all:
 * the pages of the model mapping that hold a tensor are imported as device memory.
 *
 * Persistent memory (weights, KV caches) is sub-allocated from 64 MiB blocks; a tensor
 * larger than a quarter block gets its own allocation. A weight larger than one storage
 * binding (maxStorageBufferRange, maxMemoryAllocationSize; lavapipe: 128 MiB) is split by
 * rows into chunks, each its own binding; ops dispatch once per chunk.
 *
 * Ternary weights on the device are 2-bit codes, K/4 bytes per row, in 128-element blocks:
 * I2_S as stored (one tensor scale, read on the host), TQ2_0 codes as stored with the block
 * scales d moved to an f32 array [rows][K/256], TQ1_0 decoded and packed into the TQ2_0
 * order (FORMATS.md) with the same scale array; when all blocks of a TQ tensor share one
 * d (BitNet models), it becomes a tensor scale as for I2_S and no array is kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define POOL_BLOCK ((VkDeviceSize)64 << 20)
#define STAGING_BYTES ((VkDeviceSize)32 << 20)

static int find_type(const vk_backend *be, uint32_t bits, VkMemoryPropertyFlags need,
                     VkMemoryPropertyFlags want) {
    const VkPhysicalDeviceMemoryProperties *m = &be->caps.mem;
    int found = -1;
    for (uint32_t i = 0; i < m->memoryTypeCount; i++) {
        if (!(bits & (1u << i))) continue;
        VkMemoryPropertyFlags f = m->memoryTypes[i].propertyFlags;
        if ((f & need) != need) continue;
        if ((f & want) == want) return (int)i;
        if (found < 0) found = (int)i;
    }
    return found;
}

static const VkBufferUsageFlags k_usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                          VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                          VK_BUFFER_USAGE_TRANSFER_DST_BIT;

bn_status vk_buffer_create(vk_backend *be, VkDeviceSize size, vk_mem_kind kind, vk_buffer *out,
                           bn_err *err) {
    memset(out, 0, sizeof *out);
    size = vk_align_up(size ? size : 16, 16);
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = k_usage,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(be->dev, &bi, NULL, &out->buf);
    if (r != VK_SUCCESS)
        return bn_fail(err, BN_ERR_DEVICE, "vulkan:%d: cannot create a buffer of %llu bytes: %s",
                       be->base.device, (unsigned long long)size, vk_result_name(r));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(be->dev, out->buf, &req);
    const VkMemoryPropertyFlags hv =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int type;
    if (kind == VK_MEM_HOST)
        type = find_type(be, req.memoryTypeBits, hv, VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    else if (be->caps.unified)
        type = find_type(be, req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    else
        type = find_type(be, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (type < 0) {
        vkDestroyBuffer(be->dev, out->buf, NULL);
        out->buf = VK_NULL_HANDLE;
        return bn_fail(err, BN_ERR_DEVICE, "vulkan:%d: no suitable memory type for a %s buffer",
                       be->base.device, kind == VK_MEM_HOST ? "host" : "device");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)type};
    r = vkAllocateMemory(be->dev, &ai, NULL, &out->mem);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(be->dev, out->buf, NULL);
        memset(out, 0, sizeof *out);
        return bn_fail(err, r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? BN_ERR_OOM : BN_ERR_DEVICE,
                       "vulkan:%d: cannot allocate %.1f MiB of device memory: %s", be->base.device,
                       (double)req.size / (1 << 20), vk_result_name(r));
    }
    vkBindBufferMemory(be->dev, out->buf, out->mem, 0);
    out->size = size;
    /* device memory is mapped only on unified devices (discrete GPUs stage) */
    if ((kind == VK_MEM_HOST || be->caps.unified) &&
        (be->caps.mem.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)) {
        void *p = NULL;
        if (vkMapMemory(be->dev, out->mem, 0, VK_WHOLE_SIZE, 0, &p) == VK_SUCCESS) out->map = p;
    }
    return BN_OK;
}

void vk_buffer_destroy(vk_backend *be, vk_buffer *b) {
    if (b->buf) vkDestroyBuffer(be->dev, b->buf, NULL);
    if (b->mem) {
        if (b->map) vkUnmapMemory(be->dev, b->mem);
        vkFreeMemory(be->dev, b->mem, NULL);
    }
    memset(b, 0, sizeof *b);
}

static bn_status push_alloc(vk_backend *be, const vk_buffer *b, bn_err *err) {
    if (be->n_allocs == be->cap_allocs) {
        int nc = be->cap_allocs ? be->cap_allocs * 2 : 64;
        vk_buffer *p = realloc(be->allocs, (size_t)nc * sizeof *p);
        if (!p) return bn_fail(err, BN_ERR_OOM, "out of memory");
        be->allocs = p;
        be->cap_allocs = nc;
    }
    be->allocs[be->n_allocs++] = *b;
    return BN_OK;
}

bn_status vk_persist_alloc(vk_backend *be, VkDeviceSize size, vk_span *out, bn_err *err) {
    const VkDeviceSize align = be->caps.offset_align > 64 ? be->caps.offset_align : 64;
    const VkDeviceSize asize = vk_align_up(size ? size : 4, align);
    VkDeviceSize block = POOL_BLOCK < be->caps.max_binding ? POOL_BLOCK : be->caps.max_binding;
    vk_buffer b;
    if (asize > block / 4) {
        if (vk_buffer_create(be, asize, VK_MEM_DEVICE, &b, err) != BN_OK) return err->code;
        if (push_alloc(be, &b, err) != BN_OK) {
            vk_buffer_destroy(be, &b);
            return err->code;
        }
        *out = (vk_span){b.buf, 0, vk_align_up(size, 4), b.map};
        return BN_OK;
    }
    if (be->pool_block < 0 || be->pool_used + asize > be->allocs[be->pool_block].size) {
        if (vk_buffer_create(be, block, VK_MEM_DEVICE, &b, err) != BN_OK) return err->code;
        if (push_alloc(be, &b, err) != BN_OK) {
            vk_buffer_destroy(be, &b);
            return err->code;
        }
        be->pool_block = be->n_allocs - 1;
        be->pool_used = 0;
    }
    const vk_buffer *pb = &be->allocs[be->pool_block];
    *out = (vk_span){pb->buf, be->pool_used, vk_align_up(size, 4),
                     pb->map ? pb->map + be->pool_used : NULL};
    be->pool_used += asize;
    return BN_OK;
}

bn_status vk_upload(vk_backend *be, const vk_span *dst, const void *src, size_t n, bn_err *err) {
    if (dst->map) {
        memcpy(dst->map, src, n);
        return BN_OK;
    }
    if (!be->staging.buf &&
        vk_buffer_create(be, STAGING_BYTES, VK_MEM_HOST, &be->staging, err) != BN_OK)
        return err->code;
    for (size_t done = 0; done < n;) {
        size_t piece = n - done < STAGING_BYTES ? n - done : (size_t)STAGING_BYTES;
        memcpy(be->staging.map, (const uint8_t *)src + done, piece);
        VkCommandBuffer cb;
        if (vk_oneshot_begin(be, &cb, err) != BN_OK) return err->code;
        VkBufferCopy c = {.srcOffset = 0, .dstOffset = dst->off + done, .size = piece};
        vkCmdCopyBuffer(cb, be->staging.buf, dst->buf, 1, &c);
        if (vk_oneshot_submit(be, cb, err) != BN_OK) return err->code;
        done += piece;
    }
    be->uploaded_bytes += n;
    return BN_OK;
}

bn_status vk_fill_zero(vk_backend *be, const vk_span *dst, bn_err *err) {
    if (dst->map) {
        memset(dst->map, 0, dst->size);
        return BN_OK;
    }
    VkCommandBuffer cb;
    if (vk_oneshot_begin(be, &cb, err) != BN_OK) return err->code;
    vkCmdFillBuffer(cb, dst->buf, dst->off, vk_align_up(dst->size, 4), 0);
    return vk_oneshot_submit(be, cb, err);
}

/* ---- weights ---- */

static size_t elem_bytes(uint32_t type) {
    return type == BN_TYPE_F16 || type == BN_TYPE_BF16 ? 2 : 4;
}

/* Bytes of one row as stored on the device. */
static size_t device_row_bytes(uint32_t type, int64_t ne0) {
    if (bn_type_is_ternary(type)) return (size_t)ne0 / 4;
    return (size_t)ne0 * elem_bytes(type);
}

int64_t vk_rows_per_chunk(const vk_backend *be, uint32_t type, int64_t ne0) {
    long lim = vk_env_long("BITNET_VK_MAX_CHUNK", 0); /* tests force splitting with this */
    VkDeviceSize limit = be->caps.max_binding;
    if (lim > 0 && (VkDeviceSize)lim < limit) limit = (VkDeviceSize)lim;
    size_t rb = device_row_bytes(type, ne0);
    return rb ? (int64_t)(limit / rb) : 0;
}

/* Imports the host pages under [p, p + n) as device memory; false when not possible. */
static bool try_import(vk_backend *be, const void *p, size_t n, vk_span *out) {
    const VkDeviceSize pa = be->caps.import_align ? be->caps.import_align : 4096;
    const uintptr_t addr = (uintptr_t)p, base = addr / pa * pa;
    const VkDeviceSize off = addr - base, size = vk_align_up(off + n, pa);
    if (off % be->caps.offset_align) return false;
    VkMemoryHostPointerPropertiesEXT hp = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
    if (vkGetMemoryHostPointerPropertiesEXT(be->dev,
                                            VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
                                            (void *)base, &hp) != VK_SUCCESS)
        return false;
    VkExternalMemoryBufferCreateInfo eb = {
        .sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
        .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT};
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .pNext = &eb,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    vk_buffer b = {0};
    if (vkCreateBuffer(be->dev, &bi, NULL, &b.buf) != VK_SUCCESS) return false;
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(be->dev, b.buf, &req);
    int type = find_type(be, req.memoryTypeBits & hp.memoryTypeBits, 0, 0);
    if (type < 0 || req.size > size) {
        vkDestroyBuffer(be->dev, b.buf, NULL);
        return false;
    }
    VkImportMemoryHostPointerInfoEXT ii = {
        .sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
        .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
        .pHostPointer = (void *)base};
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .pNext = &ii,
                               .allocationSize = size,
                               .memoryTypeIndex = (uint32_t)type};
    if (vkAllocateMemory(be->dev, &ai, NULL, &b.mem) != VK_SUCCESS) {
        vkDestroyBuffer(be->dev, b.buf, NULL);
        return false;
    }
    vkBindBufferMemory(be->dev, b.buf, b.mem, 0);
    b.size = size;
    if (push_alloc(be, &b, NULL) != BN_OK) {
        vk_buffer_destroy(be, &b);
        return false;
    }
    *out = (vk_span){b.buf, off, vk_align_up(n, 4), NULL};
    return true;
}

/* A device span holding n host bytes: imported when allowed, else allocated and copied. */
static bn_status place_bytes(vk_backend *be, const void *p, size_t n, bool may_import, vk_span *out,
                             bool *imported, bn_err *err) {
    if (may_import && be->allow_import && try_import(be, p, n, out)) {
        *imported = true;
        be->imported_bytes += n;
        return BN_OK;
    }
    if (vk_persist_alloc(be, n, out, err) != BN_OK) return err->code;
    return vk_upload(be, out, p, n, err);
}

/* TQ2_0 / TQ1_0 rows [r0, r0 + rows) as 2-bit codes in the TQ2_0 order plus f32 block
 * scales, into codes[rows * K/4] and scales[rows * K/256]. */
static void repack_tq(const vk_weight *w, int64_t r0, int64_t rows, uint8_t *codes, float *scales,
                      uint8_t *tmp_codes) {
    const int64_t K = w->ne0, nb = K / BN_QK_K;
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *dst = codes + (size_t)r * (size_t)(K / 4);
        float *sc = scales + (size_t)r * (size_t)nb;
        if (w->type == BN_TYPE_TQ2_0) {
            const uint8_t *src = (const uint8_t *)w->host + (size_t)(r0 + r) * (size_t)nb * 66;
            for (int64_t b = 0; b < nb; b++) {
                memcpy(dst + b * 64, src + b * 66, 64);
                uint16_t d;
                memcpy(&d, src + b * 66 + 64, 2);
                sc[b] = bn_f16_to_f32(d);
            }
        } else {
            bn_ternary_row_codes(w->type, w->host, K, w->ne1, r0 + r, tmp_codes, sc);
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *c = tmp_codes + b * BN_QK_K;
                for (int h = 0; h < 2; h++)
                    for (int m = 0; m < 32; m++) {
                        const uint8_t *e = c + 128 * h + m;
                        dst[b * 64 + 32 * h + m] =
                            (uint8_t)(e[0] | (e[32] << 2) | (e[64] << 4) | (e[96] << 6));
                    }
            }
        }
    }
}

/* Whether every block of a TQ tensor has the same scale d (true of BitNet models); *d gets
 * it. Then sum_g d * S_g = d * sum_g S_g exactly (in double, as the CPU computes it: every
 * partial sum is d times an integer below 2^31), and the kernels keep one int32 sum per
 * row like I2_S instead of folding every group into floats. */
static bool uniform_scale(const vk_weight *w, float *d) {
    const size_t bsize = w->type == BN_TYPE_TQ2_0 ? 66 : 54, doff = bsize - 2;
    const size_t nblocks = (size_t)(w->ne0 / BN_QK_K) * (size_t)w->ne1;
    const uint8_t *p = w->host;
    uint16_t first, h;
    memcpy(&first, p + doff, 2);
    for (size_t b = 1; b < nblocks; b++) {
        memcpy(&h, p + b * bsize + doff, 2);
        if (h != first) return false;
    }
    *d = bn_f16_to_f32(first);
    return true;
}

static bn_status build_weight(vk_backend *be, vk_weight *w, bn_err *err) {
    const int64_t K = w->ne0, N = w->ne1;
    const bool repack = w->type == BN_TYPE_TQ2_0 || w->type == BN_TYPE_TQ1_0;
    if (w->type == BN_TYPE_I2_S) {
        memcpy(&w->tscale, (const uint8_t *)w->host + (size_t)(N * K / 4), 4);
        w->layout = 0;
    } else if (repack) {
        w->layout = 1;
        w->per_group = !uniform_scale(w, &w->tscale);
    }
    const int64_t per = vk_rows_per_chunk(be, w->type, K);
    if (per < 1)
        return bn_fail(err, BN_ERR_UNSUPPORTED,
                       "vulkan:%d: one row of %lld elements is larger than a storage binding",
                       be->base.device, (long long)K);
    w->n_chunks = (int)((N + per - 1) / per);
    w->chunks = calloc((size_t)w->n_chunks, sizeof *w->chunks);
    if (!w->chunks) return bn_fail(err, BN_ERR_OOM, "out of memory");
    const size_t rb = device_row_bytes(w->type, K);
    uint8_t *codes = NULL, *tmp = NULL;
    float *scales = NULL;
    if (repack) {
        const int64_t rows = per < N ? per : N;
        codes = malloc((size_t)rows * rb);
        scales = malloc((size_t)rows * (size_t)(K / BN_QK_K) * sizeof(float));
        tmp = malloc((size_t)K);
        if (!codes || !scales || !tmp) {
            free(codes);
            free(scales);
            free(tmp);
            return bn_fail(err, BN_ERR_OOM, "out of memory repacking a weight");
        }
    }
    bn_status st = BN_OK;
    for (int c = 0; c < w->n_chunks && st == BN_OK; c++) {
        vk_chunk *ch = &w->chunks[c];
        ch->row0 = (int64_t)c * per;
        ch->rows = N - ch->row0 < per ? N - ch->row0 : per;
        const size_t bytes = (size_t)ch->rows * rb;
        bool imp = false;
        if (repack) {
            repack_tq(w, ch->row0, ch->rows, codes, scales, tmp);
            st = place_bytes(be, codes, bytes, false, &ch->data, &imp, err);
            if (st == BN_OK && w->per_group)
                st = place_bytes(be, scales,
                                 (size_t)ch->rows * (size_t)(K / BN_QK_K) * sizeof(float), false,
                                 &ch->scales, &imp, err);
        } else {
            const uint8_t *src = (const uint8_t *)w->host + (size_t)ch->row0 * rb;
            st = place_bytes(be, src, bytes, true, &ch->data, &imp, err);
            w->imported |= imp;
        }
    }
    free(codes);
    free(scales);
    free(tmp);
    return st;
}

static size_t hash_ptr(const void *p, int cap) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)(x & (uint64_t)(cap - 1));
}

static bn_status table_insert(vk_backend *be, vk_weight *w, bn_err *err) {
    if ((be->n_weights + 1) * 2 > be->cap_weights) {
        int nc = be->cap_weights ? be->cap_weights * 2 : 256;
        vk_weight **t = calloc((size_t)nc, sizeof *t);
        if (!t) return bn_fail(err, BN_ERR_OOM, "out of memory");
        for (int i = 0; i < be->cap_weights; i++) {
            vk_weight *o = be->weights[i];
            if (!o) continue;
            size_t h = hash_ptr(o->host, nc);
            while (t[h]) h = (h + 1) & (size_t)(nc - 1);
            t[h] = o;
        }
        free(be->weights);
        be->weights = t;
        be->cap_weights = nc;
    }
    size_t h = hash_ptr(w->host, be->cap_weights);
    while (be->weights[h]) h = (h + 1) & (size_t)(be->cap_weights - 1);
    be->weights[h] = w;
    be->n_weights++;
    return BN_OK;
}

bn_status vk_weight_get(vk_backend *be, const bn_tensor *t, const vk_weight **out, bn_err *err) {
    const size_t nbytes = bn_tensor_nbytes(t);
    const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    if (be->cap_weights) {
        size_t h = hash_ptr(t->data, be->cap_weights);
        for (vk_weight *w; (w = be->weights[h]); h = (h + 1) & (size_t)(be->cap_weights - 1))
            if (w->host == t->data && w->type == t->type && w->nbytes == nbytes &&
                w->ne0 == t->ne[0] && w->ne1 == rows) {
                *out = w;
                return BN_OK;
            }
    }
    if (!t->data) return bn_fail(err, BN_ERR_INVALID_ARG, "weight '%s' has no data", t->name);
    vk_weight *w = calloc(1, sizeof *w);
    if (!w) return bn_fail(err, BN_ERR_OOM, "out of memory");
    w->host = t->data;
    w->nbytes = nbytes;
    w->type = t->type;
    w->ne0 = t->ne[0];
    w->ne1 = rows;
    bn_status st = build_weight(be, w, err);
    if (st == BN_OK) st = table_insert(be, w, err);
    if (st != BN_OK) {
        bn_err_prefix(err, "uploading weight '%s'", t->name);
        free(w->chunks);
        free(w);
        return st;
    }
    *out = w;
    return BN_OK;
}

bn_status vk_cache_get(vk_backend *be, const bn_tensor *t, vk_span *out, bn_err *err) {
    const size_t nbytes = bn_tensor_nbytes(t);
    for (int i = 0; i < be->n_caches; i++)
        if (be->caches[i].host == t->data) {
            if (be->caches[i].nbytes != nbytes)
                return bn_fail(err, BN_ERR_INVALID_ARG,
                               "cache '%s' (%zu bytes) reuses the host pointer of a cache of %zu "
                               "bytes",
                               t->name, nbytes, be->caches[i].nbytes);
            *out = be->caches[i].span;
            return BN_OK;
        }
    if (!t->data) return bn_fail(err, BN_ERR_INVALID_ARG, "cache '%s' has no data", t->name);
    if (nbytes > be->caps.max_binding)
        return bn_fail(err, BN_ERR_UNSUPPORTED,
                       "vulkan:%d: cache '%s' is %.1f MiB, more than one storage binding "
                       "(%.1f MiB); use a smaller context",
                       be->base.device, t->name, (double)nbytes / (1 << 20),
                       (double)be->caps.max_binding / (1 << 20));
    if (be->n_caches == be->cap_caches) {
        int nc = be->cap_caches ? be->cap_caches * 2 : 64;
        vk_cache *p = realloc(be->caches, (size_t)nc * sizeof *p);
        if (!p) return bn_fail(err, BN_ERR_OOM, "out of memory");
        be->caches = p;
        be->cap_caches = nc;
    }
    vk_cache *c = &be->caches[be->n_caches];
    c->host = t->data;
    c->nbytes = nbytes;
    if (vk_persist_alloc(be, nbytes, &c->span, err) != BN_OK) return err->code;
    if (vk_fill_zero(be, &c->span, err) != BN_OK) return err->code;
    be->n_caches++;
    *out = c->span;
    return BN_OK;
}

void vk_weights_keep_only(vk_backend *be, vk_weight *const *keep, int n_keep) {
    vk_weight **old = be->weights;
    const int cap = be->cap_weights;
    if (!cap) return;
    vk_weight **t = calloc((size_t)cap, sizeof *t);
    if (!t) return; /* keep everything: stale entries are only a risk, not an error */
    be->weights = t;
    be->n_weights = 0;
    for (int i = 0; i < cap; i++) {
        vk_weight *w = old[i];
        if (!w) continue;
        bool kept = false;
        for (int k = 0; k < n_keep && !kept; k++) kept = keep[k] == w;
        if (kept) {
            table_insert(be, w, NULL);
        } else {
            free(w->chunks);
            free(w);
        }
    }
    free(old);
}

void vk_memory_release_all(vk_backend *be) {
    for (int i = 0; i < be->cap_weights; i++)
        if (be->weights[i]) {
            free(be->weights[i]->chunks);
            free(be->weights[i]);
        }
    free(be->weights);
    be->weights = NULL;
    be->n_weights = be->cap_weights = 0;
    free(be->caches);
    be->caches = NULL;
    be->n_caches = be->cap_caches = 0;
    for (int i = 0; i < be->n_allocs; i++) vk_buffer_destroy(be, &be->allocs[i]);
    free(be->allocs);
    be->allocs = NULL;
    be->n_allocs = be->cap_allocs = 0;
    be->pool_block = -1;
    vk_buffer_destroy(be, &be->staging);
    vk_buffer_destroy(be, &be->dummy);
}
