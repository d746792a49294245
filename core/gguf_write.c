/* gguf_write.c - the GGUF writer (FORMATS.md "GGUF"; interface in gguf.h).
 *
 * Metadata values are encoded into byte blobs as they are set; tensors are
 * declared with their type and shape. gguf_writer_begin lays the tensors out
 * (each at an aligned offset computed from its declared size) and writes the
 * header, metadata, tensor infos and padding; then each tensor's bytes are
 * streamed in declaration order, each padded to the alignment. Always version 3,
 * little-endian.
 *
 * The void setters cannot fail loudly: the first problem (out of memory, a bad
 * argument) is recorded and returned by gguf_writer_begin. Setting a key again
 * replaces its value in place. Any error after gguf_writer_begin closes and
 * removes the partial file; the writer then only accepts gguf_writer_free. */
#include "gguf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "types.h"

#define MAX_TENSOR_NAME 127

typedef struct wkv {
    char *key;
    size_t key_len;
    gguf_vtype type;
    uint8_t *val; /* the encoded value, as it follows the type field in the file */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char name[MAX_TENSOR_NAME + 1];
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t nbytes;
    uint64_t offset;
} wtensor;

enum { DECLARING, WRITING, FINISHED, FAILED };

#define WRITE_BUF ((size_t)4 << 20) /* stdio buffer of the output file */

struct gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    bn_err deferred; /* first error of a void setter; code BN_OK when none */
    int state;
    FILE *fp;
    char *iobuf; /* fp's buffer, WRITE_BUF bytes */
    char *path;
    uint32_t alignment;
    size_t next;      /* index of the next tensor to write */
    uint64_t partial; /* bytes of tensor `next` written so far by gguf_writer_write_data */
};

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t fixed_size(gguf_vtype t) {
    static const uint8_t sizes[GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < GGUF_VTYPE_COUNT ? sizes[t] : 0;
}

gguf_writer *gguf_writer_new(void) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    if (w->fp) {
        fclose(w->fp);
        remove(w->path);
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val);
    }
    free(w->kvs);
    free(w->tensors);
    free(w->path);
    free(w->iobuf);
    free(w);
}

/* ---- metadata ---- */

static bool ok_to_set(gguf_writer *w, const char *key) {
    if (!w || w->deferred.code) return false;
    if (w->state != DECLARING) {
        bn_fail(&w->deferred, BN_ERR_INVALID_ARG, "key '%s' set after gguf_writer_begin",
                key ? key : "(null)");
        return false;
    }
    if (!key) {
        bn_fail(&w->deferred, BN_ERR_INVALID_ARG, "a metadata key is NULL");
        return false;
    }
    return true;
}

/* Takes ownership of val (malloc'd, val_len bytes; NULL means the allocation failed). */
static void set_value(gguf_writer *w, const char *key, gguf_vtype type, uint8_t *val,
                      size_t val_len) {
    if (!val) {
        bn_fail(&w->deferred, BN_ERR_OOM, "out of memory for the value of key '%s'", key);
        return;
    }
    size_t key_len = strlen(key);
    for (size_t i = 0; i < w->n_kv; i++) {
        wkv *kv = &w->kvs[i];
        if (kv->key_len == key_len && memcmp(kv->key, key, key_len) == 0) {
            free(kv->val);
            kv->type = type;
            kv->val = val;
            kv->val_len = val_len;
            return;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *p = realloc(w->kvs, cap * sizeof *p);
        if (!p) {
            free(val);
            bn_fail(&w->deferred, BN_ERR_OOM, "out of memory adding key '%s'", key);
            return;
        }
        w->kvs = p;
        w->cap_kv = cap;
    }
    char *k = malloc(key_len + 1);
    if (!k) {
        free(val);
        bn_fail(&w->deferred, BN_ERR_OOM, "out of memory adding key '%s'", key);
        return;
    }
    memcpy(k, key, key_len + 1);
    w->kvs[w->n_kv++] = (wkv){k, key_len, type, val, val_len};
}

void gguf_writer_set_scalar(gguf_writer *w, const char *key, gguf_vtype type, const void *bytes) {
    if (!ok_to_set(w, key)) return;
    size_t n = fixed_size(type);
    if (!n || !bytes) {
        bn_fail(&w->deferred, BN_ERR_INVALID_ARG, "key '%s': %s is not a scalar value", key,
                bytes ? gguf_vtype_name(type) : "NULL");
        return;
    }
    uint8_t *val = malloc(n);
    if (val) memcpy(val, bytes, n);
    set_value(w, key, type, val, n);
}

void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    uint8_t b[4];
    put_u32(b, v);
    gguf_writer_set_scalar(w, key, GGUF_U32, b);
}

void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    uint8_t b[4];
    put_u32(b, (uint32_t)v);
    gguf_writer_set_scalar(w, key, GGUF_I32, b);
}

void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) {
    uint8_t b[8];
    put_u64(b, v);
    gguf_writer_set_scalar(w, key, GGUF_U64, b);
}

void gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    uint8_t b[4];
    put_u32(b, bits);
    gguf_writer_set_scalar(w, key, GGUF_F32, b);
}

void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    gguf_writer_set_scalar(w, key, GGUF_BOOL, &b);
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!ok_to_set(w, key)) return;
    if (!v) {
        bn_fail(&w->deferred, BN_ERR_INVALID_ARG, "key '%s': NULL string", key);
        return;
    }
    size_t n = strlen(v);
    uint8_t *val = malloc(8 + n);
    if (val) {
        put_u64(val, n);
        memcpy(val + 8, v, n);
    }
    set_value(w, key, GGUF_STRING, val, 8 + n);
}

void gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem_type, const void *data,
                         uint64_t count) {
    if (!ok_to_set(w, key)) return;
    size_t es = fixed_size(elem_type);
    if (!es || (count && !data)) {
        bn_fail(&w->deferred, BN_ERR_INVALID_ARG,
                "key '%s': array of %s needs fixed-size elements and data", key,
                gguf_vtype_name(elem_type));
        return;
    }
    if (count > (SIZE_MAX - 12) / es) {
        bn_fail(&w->deferred, BN_ERR_INVALID_ARG, "key '%s': array of %" PRIu64 " is too large",
                key, count);
        return;
    }
    size_t n = (size_t)count * es;
    uint8_t *val = malloc(12 + n);
    if (val) {
        put_u32(val, (uint32_t)elem_type);
        put_u64(val + 4, count);
        if (n) memcpy(val + 12, data, n);
    }
    set_value(w, key, GGUF_ARRAY, val, 12 + n);
}

void gguf_writer_set_arr_strn(gguf_writer *w, const char *key, const char *const *strs,
                              const uint64_t *lens, uint64_t count) {
    if (!ok_to_set(w, key)) return;
    if (count && !strs) {
        bn_fail(&w->deferred, BN_ERR_INVALID_ARG, "key '%s': NULL string array", key);
        return;
    }
    size_t total = 12;
    for (uint64_t i = 0; i < count; i++) {
        if (!strs[i]) {
            bn_fail(&w->deferred, BN_ERR_INVALID_ARG, "key '%s': string %" PRIu64 " is NULL", key,
                    i);
            return;
        }
        uint64_t len = lens ? lens[i] : strlen(strs[i]);
        if (len > SIZE_MAX - 8 - total) {
            bn_fail(&w->deferred, BN_ERR_INVALID_ARG, "key '%s': string array is too large", key);
            return;
        }
        total += 8 + (size_t)len;
    }
    uint8_t *val = malloc(total);
    if (val) {
        put_u32(val, GGUF_STRING);
        put_u64(val + 4, count);
        size_t pos = 12;
        for (uint64_t i = 0; i < count; i++) {
            size_t len = lens ? (size_t)lens[i] : strlen(strs[i]);
            put_u64(val + pos, len);
            if (len) memcpy(val + pos + 8, strs[i], len);
            pos += 8 + len;
        }
    }
    set_value(w, key, GGUF_ARRAY, val, total);
}

void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                             uint64_t count) {
    gguf_writer_set_arr_strn(w, key, strs, NULL, count);
}

/* ---- tensors ---- */

bn_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                 const int64_t *ne, bn_err *err) {
    if (!w) return bn_fail(err, BN_ERR_OOM, "out of memory creating the GGUF writer");
    if (w->state != DECLARING)
        return bn_fail(err, BN_ERR_INVALID_ARG, "tensor '%s' added after gguf_writer_begin",
                       name ? name : "(null)");
    if (!name || !ne) return bn_fail(err, BN_ERR_INVALID_ARG, "tensor name or shape is NULL");
    size_t len = strlen(name);
    if (len > MAX_TENSOR_NAME)
        return bn_fail(err, BN_ERR_INVALID_ARG, "tensor '%.60s...': name over %d bytes", name,
                       MAX_TENSOR_NAME);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return bn_fail(err, BN_ERR_INVALID_ARG, "tensor '%s': n_dims %" PRIu32 " is not 1..%d",
                       name, n_dims, GGUF_MAX_DIMS);
    if (!bn_type_is_known(type)) {
        const char *why = bn_type_unknown_reason(type);
        if (why) return bn_fail(err, BN_ERR_UNSUPPORTED, "tensor '%s': %s", name, why);
        return bn_fail(err, BN_ERR_UNSUPPORTED, "tensor '%s': type id %" PRIu32 " is not supported",
                       name, type);
    }
    wtensor t = {.n_dims = n_dims, .type = type};
    memcpy(t.name, name, len + 1);
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 1)
            return bn_fail(err, BN_ERR_INVALID_ARG,
                           "tensor '%s': dimension %" PRIu32 " is %" PRId64 ", must be >= 1", name,
                           d, ne[d]);
        t.ne[d] = ne[d];
    }
    size_t nbytes = 0;
    bn_err e2 = {0};
    if (bn_tensor_bytes(type, t.ne, &nbytes, &e2))
        return bn_fail(err, BN_ERR_INVALID_ARG, "tensor '%s': %s", name, e2.msg);
    t.nbytes = nbytes;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return bn_fail(err, BN_ERR_INVALID_ARG, "tensor '%s' declared twice", name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        wtensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) return bn_fail(err, BN_ERR_OOM, "out of memory adding tensor '%s'", name);
        w->tensors = p;
        w->cap_tensors = cap;
    }
    w->tensors[w->n_tensors++] = t;
    return BN_OK;
}

/* ---- writing ---- */

/* Closes and removes the partial file; the writer is unusable afterwards. */
static bn_status abandon(gguf_writer *w, bn_status code) {
    if (w->fp) {
        fclose(w->fp);
        w->fp = NULL;
        remove(w->path);
    }
    w->state = FAILED;
    return code;
}

static bn_status put(gguf_writer *w, const void *p, size_t n, bn_err *err) {
    if (n && fwrite(p, 1, n, w->fp) != n) {
        bn_fail(err, BN_ERR_IO, "cannot write '%s': %s", w->path, strerror(errno));
        return abandon(w, BN_ERR_IO);
    }
    return BN_OK;
}

static uint64_t pad_len(const gguf_writer *w, uint64_t pos) {
    return (w->alignment - pos % w->alignment) % w->alignment;
}

/* Zeros from pos up to the next multiple of the alignment. */
static bn_status write_padding(gguf_writer *w, uint64_t pos, bn_err *err) {
    static const uint8_t zeros[256];
    for (uint64_t n = pad_len(w, pos); n;) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        bn_status st = put(w, zeros, k, err);
        if (st) return st;
        n -= k;
    }
    return BN_OK;
}

static bn_status put_str(gguf_writer *w, const char *s, size_t len, bn_err *err) {
    uint8_t b[8];
    put_u64(b, len);
    bn_status st = put(w, b, 8, err);
    return st ? st : put(w, s, len, err);
}

/* Reads general.alignment if set and lays out the tensors. */
static bn_status layout(gguf_writer *w, bn_err *err) {
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kvs[i];
        if (strcmp(kv->key, "general.alignment") != 0) continue;
        if (kv->type != GGUF_U32)
            return bn_fail(err, BN_ERR_INVALID_ARG, "key 'general.alignment' must be u32, not %s",
                           gguf_vtype_name(kv->type));
        uint32_t a = (uint32_t)kv->val[0] | (uint32_t)kv->val[1] << 8 | (uint32_t)kv->val[2] << 16 |
                     (uint32_t)kv->val[3] << 24;
        if (a == 0 || (a & (a - 1)) != 0)
            return bn_fail(err, BN_ERR_INVALID_ARG,
                           "key 'general.alignment': %" PRIu32 " is not a nonzero power of two", a);
        w->alignment = a;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        uint64_t pad = pad_len(w, t->nbytes);
        if (t->nbytes + pad < t->nbytes || off > UINT64_MAX - (t->nbytes + pad))
            return bn_fail(err, BN_ERR_INVALID_ARG, "tensor '%s': the file would exceed 2^64 bytes",
                           t->name);
        t->offset = off;
        off += t->nbytes + pad;
    }
    return BN_OK;
}

bn_status gguf_writer_begin(gguf_writer *w, const char *path, bn_err *err) {
    if (!w) return bn_fail(err, BN_ERR_OOM, "out of memory creating the GGUF writer");
    if (w->deferred.code) return bn_fail(err, w->deferred.code, "%s", w->deferred.msg);
    if (w->state != DECLARING)
        return bn_fail(err, BN_ERR_INVALID_ARG, "gguf_writer_begin called twice");
    bn_status st = layout(w, err);
    if (st) return st;
    size_t plen = strlen(path);
    w->path = malloc(plen + 1);
    if (!w->path) return bn_fail(err, BN_ERR_OOM, "out of memory");
    memcpy(w->path, path, plen + 1);
    w->fp = fopen(path, "wb");
    if (!w->fp) {
        bn_fail(err, BN_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
        w->state = FAILED;
        return BN_ERR_IO;
    }
    /* Writes go out in WRITE_BUF pieces at multiples of WRITE_BUF in the file
     * (stdio flushes a full buffer; larger fwrites pass straight through in
     * whole buffers). Linux then caches the file in large folios, which a
     * model mapping uses as 2 MiB pages: decode reads the weights about 10 %
     * faster than from 4 KiB pages (bench/RESULTS.md). Without the buffer
     * the default one (4 KiB) is used. */
    w->iobuf = malloc(WRITE_BUF);
    if (w->iobuf) setvbuf(w->fp, w->iobuf, _IOFBF, WRITE_BUF);
    w->state = WRITING;

    uint8_t hdr[24];
    memcpy(hdr, "GGUF", 4);
    put_u32(hdr + 4, 3);
    put_u64(hdr + 8, w->n_tensors);
    put_u64(hdr + 16, w->n_kv);
    if ((st = put(w, hdr, sizeof hdr, err))) return st;
    uint64_t pos = sizeof hdr;
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kvs[i];
        uint8_t tb[4];
        put_u32(tb, (uint32_t)kv->type);
        if ((st = put_str(w, kv->key, kv->key_len, err))) return st;
        if ((st = put(w, tb, 4, err))) return st;
        if ((st = put(w, kv->val, kv->val_len, err))) return st;
        pos += 8 + kv->key_len + 4 + kv->val_len;
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        uint8_t b[8 * GGUF_MAX_DIMS + 16];
        size_t n = 0, len = strlen(t->name);
        if ((st = put_str(w, t->name, len, err))) return st;
        put_u32(b, t->n_dims);
        n = 4;
        for (uint32_t d = 0; d < t->n_dims; d++, n += 8) put_u64(b + n, (uint64_t)t->ne[d]);
        put_u32(b + n, t->type);
        put_u64(b + n + 4, t->offset);
        n += 12;
        if ((st = put(w, b, n, err))) return st;
        pos += 8 + len + n;
    }
    return write_padding(w, pos, err);
}

bn_status gguf_writer_write_tensor(gguf_writer *w, const void *data, uint64_t nbytes, bn_err *err) {
    if (!w || w->state != WRITING)
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "gguf_writer_write_tensor: the writer is not writing (begin not called, "
                       "finished or failed)");
    if (w->next >= w->n_tensors) {
        bn_fail(err, BN_ERR_INVALID_ARG, "'%s': more tensors written than the %zu declared",
                w->path, w->n_tensors);
        return abandon(w, BN_ERR_INVALID_ARG);
    }
    const wtensor *t = &w->tensors[w->next];
    if (w->partial) {
        bn_fail(err, BN_ERR_INVALID_ARG,
                "tensor '%s': already partly written with gguf_writer_write_data", t->name);
        return abandon(w, BN_ERR_INVALID_ARG);
    }
    if (nbytes != t->nbytes || (nbytes && !data)) {
        bn_fail(err, BN_ERR_INVALID_ARG,
                "tensor '%s': %" PRIu64 " bytes given, its type and shape take %" PRIu64, t->name,
                nbytes, t->nbytes);
        return abandon(w, BN_ERR_INVALID_ARG);
    }
    bn_status st = put(w, data, (size_t)nbytes, err);
    if (st) return st;
    if ((st = write_padding(w, nbytes, err))) return st;
    w->next++;
    return BN_OK;
}

bn_status gguf_writer_write_data(gguf_writer *w, const void *data, uint64_t nbytes, bn_err *err) {
    if (w->state != WRITING)
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "gguf_writer_write_data: the writer is not writing (begin not called, "
                       "finished or failed)");
    if (w->next >= w->n_tensors) {
        bn_fail(err, BN_ERR_INVALID_ARG,
                "'%s': more tensor data written than the %zu tensors declared", w->path,
                w->n_tensors);
        return abandon(w, BN_ERR_INVALID_ARG);
    }
    const wtensor *t = &w->tensors[w->next];
    if (nbytes > t->nbytes - w->partial || (nbytes && !data)) {
        bn_fail(err, BN_ERR_INVALID_ARG,
                "tensor '%s': %" PRIu64 " more bytes given after %" PRIu64 ", it takes %" PRIu64,
                t->name, nbytes, w->partial, t->nbytes);
        return abandon(w, BN_ERR_INVALID_ARG);
    }
    bn_status st = put(w, data, (size_t)nbytes, err);
    if (st) return st;
    w->partial += nbytes;
    if (w->partial == t->nbytes) {
        if ((st = write_padding(w, t->nbytes, err))) return st;
        w->partial = 0;
        w->next++;
    }
    return BN_OK;
}

bn_status gguf_writer_finish(gguf_writer *w, bn_err *err) {
    if (!w || w->state != WRITING)
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "gguf_writer_finish: the writer is not writing (begin not called, "
                       "finished or failed)");
    if (w->next != w->n_tensors || w->partial) {
        bn_fail(err, BN_ERR_INVALID_ARG, "'%s': only %zu of the %zu declared tensors were written",
                w->path, w->next, w->n_tensors);
        return abandon(w, BN_ERR_INVALID_ARG);
    }
    FILE *fp = w->fp;
    w->fp = NULL;
    int flush_failed = fflush(fp) != 0 || ferror(fp);
    int e = errno;
    if (fclose(fp) != 0 && !flush_failed) flush_failed = 1, e = errno;
    if (flush_failed) {
        remove(w->path);
        w->state = FAILED;
        return bn_fail(err, BN_ERR_IO, "cannot write '%s': %s", w->path, strerror(e));
    }
    w->state = FINISHED;
    return BN_OK;
}
