/* cl_memory.c - the device buffers that outlive graphs (backend.h data
 * contract): weights and KV caches, each kept in a table keyed by its host
 * pointer until close.
 *
 * Weights: on a device whose memory is the host's (CL_DEVICE_HOST_UNIFIED_MEMORY)
 * the buffer wraps the model mapping itself (CL_MEM_USE_HOST_PTR, read-only:
 * zero-copy, the driver may still copy if it needs other alignment);
 * otherwise the weight is copied to device memory once (CL_MEM_COPY_HOST_PTR).
 * KV caches: device memory, zero-filled when first seen, never synchronized
 * with the host copy. */
#include <stdlib.h>
#include <string.h>

#include "cl_internal.h"

static clb_shared_buf *find(clb_buf_table *t, const void *host, size_t bytes) {
    for (int i = 0; i < t->n; i++)
        if (t->v[i].host == host && t->v[i].bytes == bytes) return &t->v[i];
    return NULL;
}

static bn_status add(clb_buf_table *t, const void *host, size_t bytes, cl_mem mem, bn_err *err) {
    if (t->n == t->cap) {
        int nc = t->cap ? t->cap * 2 : 64;
        clb_shared_buf *v = realloc(t->v, (size_t)nc * sizeof *v);
        if (!v) {
            clReleaseMemObject(mem);
            return bn_fail(err, BN_ERR_OOM, "out of memory");
        }
        t->v = v;
        t->cap = nc;
    }
    t->v[t->n++] = (clb_shared_buf){host, bytes, mem};
    return BN_OK;
}

static bn_status check_size(clb_backend *be, size_t bytes, const char *what, bn_err *err) {
    if (bytes > be->caps.max_alloc)
        return bn_fail(err, BN_ERR_OOM,
                       "opencl:%d: %s of %zu bytes exceeds the device's largest allocation (%llu)",
                       be->base.device, what, bytes, (unsigned long long)be->caps.max_alloc);
    return BN_OK;
}

bn_status bn_cl_weight(clb_backend *be, const void *host, size_t bytes, cl_mem *out, bn_err *err) {
    clb_shared_buf *b = find(&be->weights, host, bytes);
    if (b) {
        *out = b->mem;
        return BN_OK;
    }
    if (check_size(be, bytes, "a weight", err) != BN_OK) return err->code;
    cl_int r;
    cl_mem_flags fl =
        CL_MEM_READ_ONLY | (be->caps.unified ? CL_MEM_USE_HOST_PTR : CL_MEM_COPY_HOST_PTR);
    /* the mapping is read-only and the buffer is never written */
    cl_mem m = clCreateBuffer(be->ctx, fl, bytes, (void *)host, &r);
    if (!m || r != CL_SUCCESS) return bn_cl_fail(be, err, r, "uploading a weight");
    *out = m;
    return add(&be->weights, host, bytes, m, err);
}

bn_status bn_cl_cache(clb_backend *be, void *host, size_t bytes, cl_mem *out, bn_err *err) {
    clb_shared_buf *b = find(&be->caches, host, bytes);
    if (b) {
        *out = b->mem;
        return BN_OK;
    }
    if (check_size(be, bytes, "a KV cache", err) != BN_OK) return err->code;
    cl_int r;
    cl_mem m = clCreateBuffer(be->ctx, CL_MEM_READ_WRITE, bytes, NULL, &r);
    if (!m || r != CL_SUCCESS) return bn_cl_fail(be, err, r, "allocating a KV cache");
    const cl_uchar zero = 0;
    r = clEnqueueFillBuffer(be->queue, m, &zero, 1, 0, bytes, 0, NULL, NULL);
    if (r != CL_SUCCESS) {
        clReleaseMemObject(m);
        return bn_cl_fail(be, err, r, "zero-filling a KV cache");
    }
    *out = m;
    return add(&be->caches, host, bytes, m, err);
}

void bn_cl_weight_forget(clb_backend *be, const void *host) {
    clb_buf_table *t = &be->weights;
    for (int i = 0; i < t->n; i++)
        if (t->v[i].host == host) {
            clReleaseMemObject(t->v[i].mem);
            t->v[i--] = t->v[--t->n];
        }
}

static void table_free(clb_buf_table *t) {
    for (int i = 0; i < t->n; i++) clReleaseMemObject(t->v[i].mem);
    free(t->v);
    memset(t, 0, sizeof *t);
}

void bn_cl_tables_free(clb_backend *be) {
    table_free(&be->weights);
    table_free(&be->caches);
}
