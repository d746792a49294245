/* gguf.c - the GGUF reader (FORMATS.md "GGUF"; interface in gguf.h).
 *
 * Parses and validates a whole file held in memory (an mmap or a caller's
 * buffer) once, at open: the header, every metadata value (arrays of arrays are
 * walked and skipped), every tensor info, then the placement of tensor data.
 * Nothing read from the file is trusted: each count, length, dimension and
 * offset is compared with the bytes that remain, and products are checked for
 * overflow, before anything is allocated or read. Allocations are bounded by a
 * small multiple of the file size. Every error names the key or tensor and the
 * byte in the file where the problem is.
 *
 * Choices: a BOOL value may be any byte; nonzero reads as true. A file without
 * tensors may end before the padding of the data section (vocabulary files
 * written by llama.cpp's tools do). Tensor names must not contain NUL bytes. */
#include "gguf.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "types.h"

#define MAX_ARRAY_DEPTH 8        /* levels of array nesting accepted */
#define MIN_KV_BYTES 13          /* key length (8) + value type (4) + a 1-byte value */
#define MIN_TENSOR_INFO_BYTES 32 /* name length 8, n_dims 4, one dimension 8, type 4, offset 8 */
#define MIN_ARRAY_BYTES 12       /* element type (4) + count (8) */
#define HEADER_BYTES 24
#define MAX_TENSOR_NAME 127

struct gguf_file {
    bn_mapping map; /* set by gguf_open (unmapped at close); empty for gguf_open_memory */
    const uint8_t *data;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    uint64_t n_kv;
    gguf_kv *kvs;
    const gguf_kv **kv_by_key; /* sorted by key, for lookups */
    uint64_t n_tensors;
    gguf_tensor_info *tensors;
    const gguf_tensor_info **tensor_by_name; /* sorted by name */
};

/* ---- small helpers ---- */

static uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t load_u64(const uint8_t *p) {
    return (uint64_t)load_u32(p) | (uint64_t)load_u32(p + 4) << 32;
}

const char *gguf_vtype_name(gguf_vtype t) {
    static const char *const names[GGUF_VTYPE_COUNT] = {
        "u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
        "bool", "string", "array", "u64", "i64", "f64",
    };
    return (unsigned)t < GGUF_VTYPE_COUNT ? names[t] : "unknown";
}

/* Bytes of one value of a fixed-size type; 0 for strings, arrays and invalid ids. */
static size_t fixed_size(uint32_t t) {
    static const uint8_t sizes[GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < GGUF_VTYPE_COUNT ? sizes[t] : 0;
}

static bool is_unsigned(gguf_vtype t) {
    return t == GGUF_U8 || t == GGUF_U16 || t == GGUF_U32 || t == GGUF_U64;
}
static bool is_signed(gguf_vtype t) {
    return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64;
}

/* An n-byte little-endian integer (n = 1, 2, 4 or 8), zero- or sign-extended. */
static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static int64_t load_le_signed(const uint8_t *p, size_t n) {
    uint64_t v = load_le(p, n), sign = 1ull << (8 * n - 1);
    return v & sign ? -(int64_t)(~v & (sign - 1)) - 1 : (int64_t)v;
}

/* Copies a name from the file into dst for a message: at most 80 bytes, control
 * characters replaced by '?', "..." appended when cut. */
static void quote_name(char *dst, size_t cap, const char *s, uint64_t len) {
    size_t max = cap - 4 < 80 ? cap - 4 : 80;
    size_t n = len < max ? (size_t)len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (n < len) memcpy(dst + n, "...", 3), n += 3;
    dst[n] = '\0';
}

/* "<what> at byte <pos>: <message>" */
static bn_status fail_at(bn_err *err, bn_status code, const char *what, uint64_t pos,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static bn_status fail_at(bn_err *err, bn_status code, const char *what, uint64_t pos,
                         const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bn_fail(err, code, "%s at byte %" PRIu64 ": %s", what, pos, msg);
}

/* ---- the cursor over the file ---- */

typedef struct reader {
    const uint8_t *base;
    size_t size;
    size_t pos;
    bn_err *err;
} reader;

static size_t left(const reader *r) {
    return r->size - r->pos;
}

static bn_status read_u32(reader *r, const char *what, const char *field, uint32_t *out) {
    if (left(r) < 4)
        return fail_at(r->err, BN_ERR_FORMAT, what, r->pos,
                       "the file ends inside the %s (4 bytes needed, %zu remain)", field, left(r));
    *out = load_u32(r->base + r->pos);
    r->pos += 4;
    return BN_OK;
}

static bn_status read_u64(reader *r, const char *what, const char *field, uint64_t *out) {
    if (left(r) < 8)
        return fail_at(r->err, BN_ERR_FORMAT, what, r->pos,
                       "the file ends inside the %s (8 bytes needed, %zu remain)", field, left(r));
    *out = load_u64(r->base + r->pos);
    r->pos += 8;
    return BN_OK;
}

/* A string: u64 length, then that many bytes. */
static bn_status read_str(reader *r, const char *what, const char *field, gguf_str *out) {
    size_t at = r->pos;
    uint64_t len = 0;
    char lenfield[64];
    snprintf(lenfield, sizeof lenfield, "length of the %s", field);
    bn_status st = read_u64(r, what, lenfield, &len);
    if (st) return st;
    if (len > left(r))
        return fail_at(r->err, BN_ERR_FORMAT, what, at,
                       "%s of %" PRIu64 " bytes does not fit in the %zu remaining bytes", field,
                       len, left(r));
    out->len = len;
    out->ptr = (const char *)r->base + r->pos;
    r->pos += (size_t)len;
    return BN_OK;
}

/* An array value after its type field. out == NULL validates and skips (nested
 * arrays); otherwise string arrays get their offsets index. depth counts the
 * arrays this one is inside of, itself included. */
static bn_status read_array(reader *r, const char *what, int depth, gguf_array *out) {
    size_t at = r->pos;
    uint32_t et = 0;
    uint64_t count = 0;
    bn_status st = read_u32(r, what, "array element type", &et);
    if (st) return st;
    if (et >= GGUF_VTYPE_COUNT)
        return fail_at(r->err, BN_ERR_FORMAT, what, at,
                       "array element type %" PRIu32 " is not a GGUF value type (0..12)", et);
    size_t count_at = r->pos;
    if ((st = read_u64(r, what, "array count", &count))) return st;
    size_t start = r->pos;
    uint64_t *offs = NULL;
    size_t es = fixed_size(et);
    if (es) {
        if (count > left(r) / es)
            return fail_at(r->err, BN_ERR_FORMAT, what, count_at,
                           "array of %" PRIu64 " %s values does not fit in the %zu remaining bytes",
                           count, gguf_vtype_name((gguf_vtype)et), left(r));
        r->pos += (size_t)count * es;
    } else if (et == GGUF_STRING) {
        if (count > left(r) / 8)
            return fail_at(r->err, BN_ERR_FORMAT, what, count_at,
                           "array of %" PRIu64 " strings does not fit in the %zu remaining bytes",
                           count, left(r));
        if (out && count) {
            offs = malloc((size_t)count * sizeof *offs);
            if (!offs)
                return fail_at(r->err, BN_ERR_OOM, what, count_at,
                               "out of memory indexing %" PRIu64 " strings", count);
        }
        for (uint64_t i = 0; i < count; i++) {
            size_t spos = r->pos;
            uint64_t len = 0;
            if (left(r) < 8 || (len = load_u64(r->base + spos)) > left(r) - 8) {
                free(offs);
                if (left(r) < 8)
                    return fail_at(r->err, BN_ERR_FORMAT, what, spos,
                                   "the file ends inside the length of string %" PRIu64
                                   " of %" PRIu64 " in the array",
                                   i, count);
                return fail_at(r->err, BN_ERR_FORMAT, what, spos,
                               "string %" PRIu64 " of %" PRIu64 " in the array: length %" PRIu64
                               " does not fit in the %zu remaining bytes",
                               i, count, len, left(r) - 8);
            }
            if (offs) offs[i] = spos - start;
            r->pos += 8 + (size_t)len;
        }
    } else { /* arrays of arrays */
        if (depth >= MAX_ARRAY_DEPTH)
            return fail_at(r->err, BN_ERR_FORMAT, what, at, "arrays nested more than %d deep",
                           MAX_ARRAY_DEPTH);
        if (count > left(r) / MIN_ARRAY_BYTES)
            return fail_at(r->err, BN_ERR_FORMAT, what, count_at,
                           "array of %" PRIu64 " arrays does not fit in the %zu remaining bytes",
                           count, left(r));
        for (uint64_t i = 0; i < count; i++)
            if ((st = read_array(r, what, depth + 1, NULL))) return st;
    }
    if (out) {
        out->elem_type = (gguf_vtype)et;
        out->count = count;
        out->data = r->base + start;
        out->str_offs = offs;
    }
    return BN_OK;
}

static bn_status read_kv(reader *r, uint64_t index, gguf_kv *kv) {
    char what[128];
    snprintf(what, sizeof what, "metadata entry %" PRIu64, index);
    kv->file_offset = r->pos;
    bn_status st = read_str(r, what, "key", &kv->key);
    if (st) return st;
    char name[96];
    quote_name(name, sizeof name, kv->key.ptr, kv->key.len);
    snprintf(what, sizeof what, "key '%s'", name);

    size_t type_at = r->pos;
    uint32_t type = 0;
    if ((st = read_u32(r, what, "value type", &type))) return st;
    if (type >= GGUF_VTYPE_COUNT)
        return fail_at(r->err, BN_ERR_FORMAT, what, type_at,
                       "value type %" PRIu32 " is not a GGUF value type (0..12)", type);
    gguf_value *v = &kv->value;
    v->type = (gguf_vtype)type;
    if (type == GGUF_STRING) return read_str(r, what, "string value", &v->v.str);
    if (type == GGUF_ARRAY) return read_array(r, what, 1, &v->v.arr);

    size_t es = fixed_size(type);
    if (left(r) < es)
        return fail_at(r->err, BN_ERR_FORMAT, what, r->pos,
                       "the file ends inside the %s value (%zu bytes needed, %zu remain)",
                       gguf_vtype_name(v->type), es, left(r));
    const uint8_t *p = r->base + r->pos;
    r->pos += es;
    if (type == GGUF_BOOL)
        v->v.u = p[0] != 0;
    else if (is_unsigned(v->type))
        v->v.u = load_le(p, es);
    else if (is_signed(v->type))
        v->v.i = load_le_signed(p, es);
    else if (type == GGUF_F32) {
        uint32_t bits = load_u32(p);
        float x;
        memcpy(&x, &bits, 4);
        v->v.f = x;
    } else {
        uint64_t bits = load_u64(p);
        memcpy(&v->v.f, &bits, 8);
    }
    return BN_OK;
}

static void format_shape(char *dst, size_t cap, uint32_t n_dims, const int64_t *ne) {
    size_t n = (size_t)snprintf(dst, cap, "[");
    for (uint32_t d = 0; d < n_dims && n < cap; d++)
        n += (size_t)snprintf(dst + n, cap - n, "%s%" PRId64, d ? ", " : "", ne[d]);
    if (n < cap) snprintf(dst + n, cap - n, "]");
}

/* One tensor info. *offset_at receives the byte of its offset field. */
static bn_status read_tensor_info(reader *r, uint64_t index, gguf_tensor_info *t,
                                  size_t *offset_at) {
    char what[192];
    snprintf(what, sizeof what, "tensor %" PRIu64, index);
    size_t at = r->pos;
    uint64_t len = 0;
    bn_status st = read_u64(r, what, "length of the name", &len);
    if (st) return st;
    if (len > MAX_TENSOR_NAME)
        return fail_at(r->err, BN_ERR_FORMAT, what, at,
                       "name length %" PRIu64 " is over the limit of %d bytes", len,
                       MAX_TENSOR_NAME);
    if (len > left(r))
        return fail_at(r->err, BN_ERR_FORMAT, what, at,
                       "name of %" PRIu64 " bytes does not fit in the %zu remaining bytes", len,
                       left(r));
    memcpy(t->name, r->base + r->pos, (size_t)len);
    t->name[len] = '\0';
    r->pos += (size_t)len;
    if (strlen(t->name) != len)
        return fail_at(r->err, BN_ERR_FORMAT, what, at, "the name contains a NUL byte");
    char name[96];
    quote_name(name, sizeof name, t->name, len);
    snprintf(what, sizeof what, "tensor '%s'", name);

    size_t shape_at = r->pos;
    if ((st = read_u32(r, what, "number of dimensions", &t->n_dims))) return st;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return fail_at(r->err, BN_ERR_FORMAT, what, shape_at,
                       "n_dims is %" PRIu32 ", expected 1..%d", t->n_dims, GGUF_MAX_DIMS);
    uint64_t elems = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        size_t ne_at = r->pos;
        uint64_t ne = 0;
        if ((st = read_u64(r, what, "shape", &ne))) return st;
        if (ne == 0)
            return fail_at(r->err, BN_ERR_FORMAT, what, ne_at,
                           "dimension %" PRIu32 " is 0 (a tensor without elements is not valid)",
                           d);
        if (ne > (uint64_t)INT64_MAX || elems > (uint64_t)INT64_MAX / ne)
            return fail_at(r->err, BN_ERR_FORMAT, what, ne_at,
                           "dimension %" PRIu32 " is %" PRIu64
                           ": the tensor would have more than 2^63-1 elements",
                           d, ne);
        elems *= ne;
        t->ne[d] = (int64_t)ne;
    }
    size_t type_at = r->pos;
    if ((st = read_u32(r, what, "type", &t->type))) return st;
    *offset_at = r->pos;
    if ((st = read_u64(r, what, "data offset", &t->offset))) return st;

    if (!bn_type_is_known(t->type)) {
        const char *why = bn_type_unknown_reason(t->type);
        if (why) return fail_at(r->err, BN_ERR_UNSUPPORTED, what, type_at, "%s", why);
        return fail_at(r->err, BN_ERR_UNSUPPORTED, what, type_at,
                       "tensor type id %" PRIu32 " is not supported", t->type);
    }
    size_t nbytes = 0;
    bn_err e2 = {0};
    if (bn_tensor_bytes(t->type, t->ne, &nbytes, &e2)) {
        char shape[128];
        format_shape(shape, sizeof shape, t->n_dims, t->ne);
        const char *tn = bn_type_name(t->type);
        return fail_at(r->err, BN_ERR_FORMAT, what, shape_at, "shape %s of type %s: %s", shape,
                       tn ? tn : "?", e2.msg);
    }
    t->nbytes = nbytes;
    return BN_OK;
}

/* ---- sorting for duplicate checks and lookups ---- */

static int cmp_bytes(const char *a, uint64_t la, const char *b, uint64_t lb) {
    uint64_t n = la < lb ? la : lb;
    int c = n ? memcmp(a, b, (size_t)n) : 0;
    if (c) return c;
    return la < lb ? -1 : la > lb;
}

static int cmp_kv_key(const void *a, const void *b) {
    const gguf_kv *x = *(const gguf_kv *const *)a, *y = *(const gguf_kv *const *)b;
    int c = cmp_bytes(x->key.ptr, x->key.len, y->key.ptr, y->key.len);
    if (c) return c;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

static int cmp_tensor_name(const void *a, const void *b) {
    const gguf_tensor_info *x = *(const gguf_tensor_info *const *)a;
    const gguf_tensor_info *y = *(const gguf_tensor_info *const *)b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x < y ? -1 : x > y;
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const gguf_tensor_info *x = *(const gguf_tensor_info *const *)a;
    const gguf_tensor_info *y = *(const gguf_tensor_info *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* ---- open ---- */

static bn_status read_header(reader *r, gguf_file *f, uint64_t *n_tensors) {
    if (r->size < 4)
        return fail_at(r->err, BN_ERR_FORMAT, "header", 0,
                       "the file is %zu bytes, too short for a GGUF header (%d bytes)", r->size,
                       HEADER_BYTES);
    const uint8_t *m = r->base;
    if (memcmp(m, "GGUF", 4) != 0)
        return fail_at(r->err, BN_ERR_FORMAT, "header", 0,
                       "bad magic %02x %02x %02x %02x (expected \"GGUF\"): not a GGUF file", m[0],
                       m[1], m[2], m[3]);
    r->pos = 4;
    bn_status st = read_u32(r, "header", "version", &f->version);
    if (st) return st;
    if (f->version != 2 && f->version != 3) {
        uint32_t v = f->version;
        uint32_t swapped = v >> 24 | (v >> 8 & 0xff00) | (v << 8 & 0xff0000) | v << 24;
        return fail_at(r->err, BN_ERR_UNSUPPORTED, "header", 4,
                       "GGUF version %" PRIu32 " is not supported (only versions 2 and 3)%s", v,
                       swapped == 2 || swapped == 3 ? "; this looks like a big-endian file" : "");
    }
    if ((st = read_u64(r, "header", "tensor count", n_tensors))) return st;
    if ((st = read_u64(r, "header", "metadata count", &f->n_kv))) return st;
    if (*n_tensors > left(r) / MIN_TENSOR_INFO_BYTES)
        return fail_at(r->err, BN_ERR_FORMAT, "header", 8,
                       "tensor count %" PRIu64 " does not fit in the %zu remaining bytes",
                       *n_tensors, left(r));
    if (f->n_kv > left(r) / MIN_KV_BYTES)
        return fail_at(r->err, BN_ERR_FORMAT, "header", 16,
                       "metadata count %" PRIu64 " does not fit in the %zu remaining bytes",
                       f->n_kv, left(r));
    return BN_OK;
}

static bn_status read_metadata(reader *r, gguf_file *f) {
    f->kvs = calloc(f->n_kv ? (size_t)f->n_kv : 1, sizeof *f->kvs);
    f->kv_by_key = malloc((f->n_kv ? (size_t)f->n_kv : 1) * sizeof *f->kv_by_key);
    if (!f->kvs || !f->kv_by_key)
        return bn_fail(r->err, BN_ERR_OOM, "out of memory for %" PRIu64 " metadata entries",
                       f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kvs[i];
        bn_status st = read_kv(r, i, kv);
        if (st) return st;
        f->kv_by_key[i] = kv;
        if (!gguf_str_eq(kv->key, "general.alignment")) continue;
        if (kv->value.type != GGUF_U32)
            return fail_at(r->err, BN_ERR_FORMAT, "key 'general.alignment'", kv->file_offset,
                           "type is %s, expected u32", gguf_vtype_name(kv->value.type));
        uint64_t a = kv->value.v.u;
        if (a == 0 || (a & (a - 1)) != 0)
            return fail_at(r->err, BN_ERR_FORMAT, "key 'general.alignment'", kv->file_offset,
                           "alignment %" PRIu64 " is not a nonzero power of two", a);
        f->alignment = (uint32_t)a;
    }
    if (f->n_kv > 1) qsort(f->kv_by_key, (size_t)f->n_kv, sizeof *f->kv_by_key, cmp_kv_key);
    for (uint64_t i = 1; i < f->n_kv; i++) {
        const gguf_kv *a = f->kv_by_key[i - 1], *b = f->kv_by_key[i];
        if (cmp_bytes(a->key.ptr, a->key.len, b->key.ptr, b->key.len) == 0) {
            char name[96], what[128];
            quote_name(name, sizeof name, b->key.ptr, b->key.len);
            snprintf(what, sizeof what, "key '%s'", name);
            return fail_at(r->err, BN_ERR_FORMAT, what, b->file_offset,
                           "duplicate key (first defined at byte %" PRIu64 ")", a->file_offset);
        }
    }
    return BN_OK;
}

/* Where each tensor's data lies: aligned, inside the file, no overlaps, unique names. */
static bn_status place_tensors(reader *r, gguf_file *f, const size_t *offset_at) {
    uint64_t n = f->n_tensors;
    uint64_t pad = (f->alignment - r->pos % f->alignment) % f->alignment;
    f->data_offset = (uint64_t)r->pos + pad;
    if (n == 0) return BN_OK;
    if (f->data_offset > r->size)
        return fail_at(r->err, BN_ERR_FORMAT, "data section", r->pos,
                       "padded to the alignment of %" PRIu32 " it would start at byte %" PRIu64
                       ", past the end of the file (%zu bytes)",
                       f->alignment, f->data_offset, r->size);
    uint64_t avail = r->size - f->data_offset;
    char what[192], name[96];
    for (uint64_t i = 0; i < n; i++) {
        gguf_tensor_info *t = &f->tensors[i];
        quote_name(name, sizeof name, t->name, strlen(t->name));
        snprintf(what, sizeof what, "tensor '%s'", name);
        if (t->offset % f->alignment)
            return fail_at(r->err, BN_ERR_FORMAT, what, offset_at[i],
                           "data offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                           t->offset, f->alignment);
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return fail_at(r->err, BN_ERR_FORMAT, what, offset_at[i],
                           "data of %" PRIu64 " bytes at offset %" PRIu64
                           " of the data section (which starts at byte %" PRIu64
                           ") runs past the end of the file (%zu bytes)",
                           t->nbytes, t->offset, f->data_offset, r->size);
        t->data = r->base + f->data_offset + t->offset;
    }

    const gguf_tensor_info **order = malloc((size_t)n * sizeof *order);
    if (!order) return bn_fail(r->err, BN_ERR_OOM, "out of memory for %" PRIu64 " tensors", n);
    for (uint64_t i = 0; i < n; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)n, sizeof *order, cmp_tensor_offset);
    for (uint64_t i = 1; i < n; i++) {
        const gguf_tensor_info *a = order[i - 1], *b = order[i];
        if (a->offset + a->nbytes > b->offset) {
            size_t bi = (size_t)(b - f->tensors);
            quote_name(name, sizeof name, b->name, strlen(b->name));
            snprintf(what, sizeof what, "tensor '%s'", name);
            char other[96];
            quote_name(other, sizeof other, a->name, strlen(a->name));
            bn_status st = fail_at(r->err, BN_ERR_FORMAT, what, offset_at[bi],
                                   "data at offset %" PRIu64 " overlaps tensor '%s' (%" PRIu64
                                   " bytes at offset %" PRIu64 ")",
                                   b->offset, other, a->nbytes, a->offset);
            free(order);
            return st;
        }
    }
    free(order);

    for (uint64_t i = 0; i < n; i++) f->tensor_by_name[i] = &f->tensors[i];
    qsort(f->tensor_by_name, (size_t)n, sizeof *f->tensor_by_name, cmp_tensor_name);
    for (uint64_t i = 1; i < n; i++) {
        const gguf_tensor_info *a = f->tensor_by_name[i - 1], *b = f->tensor_by_name[i];
        if (strcmp(a->name, b->name) == 0) {
            quote_name(name, sizeof name, b->name, strlen(b->name));
            snprintf(what, sizeof what, "tensor '%s'", name);
            return fail_at(r->err, BN_ERR_FORMAT, what, offset_at[b - f->tensors],
                           "duplicate tensor name (also tensor %td)", a - f->tensors);
        }
    }
    return BN_OK;
}

static bn_status parse(gguf_file *f, bn_err *err) {
    reader r = {.base = f->data, .size = f->size, .pos = 0, .err = err};
    uint64_t n_tensors = 0;
    bn_status st = read_header(&r, f, &n_tensors);
    if (st) return st;
    if ((st = read_metadata(&r, f))) return st;

    if (n_tensors > left(&r) / MIN_TENSOR_INFO_BYTES)
        return fail_at(err, BN_ERR_FORMAT, "header", 8,
                       "tensor count %" PRIu64 " does not fit in the %zu bytes after the metadata",
                       n_tensors, left(&r));
    size_t n = n_tensors ? (size_t)n_tensors : 1;
    f->tensors = calloc(n, sizeof *f->tensors);
    f->tensor_by_name = malloc(n * sizeof *f->tensor_by_name);
    size_t *offset_at = malloc(n * sizeof *offset_at);
    if (!f->tensors || !f->tensor_by_name || !offset_at) {
        free(offset_at);
        return bn_fail(err, BN_ERR_OOM, "out of memory for %" PRIu64 " tensor infos", n_tensors);
    }
    for (uint64_t i = 0; i < n_tensors && !st; i++) {
        st = read_tensor_info(&r, i, &f->tensors[i], &offset_at[i]);
        if (!st) f->n_tensors = i + 1;
    }
    if (!st) st = place_tensors(&r, f, offset_at);
    free(offset_at);
    return st;
}

bn_status gguf_open_memory(const void *mem, size_t size, gguf_file **out, bn_err *err) {
    *out = NULL;
    if (!mem && size) return bn_fail(err, BN_ERR_INVALID_ARG, "gguf_open_memory: NULL buffer");
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) return bn_fail(err, BN_ERR_OOM, "out of memory opening a GGUF file");
    static const uint8_t empty[1];
    f->data = mem ? mem : empty;
    f->size = size;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    bn_status st = parse(f, err);
    if (st) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return BN_OK;
}

bn_status gguf_open(const char *path, gguf_file **out, bn_err *err) {
    *out = NULL;
    bn_mapping m;
    bn_status st = bn_map_file(path, &m, err);
    if (st) return st;
    st = gguf_open_memory(m.data, m.size, out, err);
    if (st) {
        bn_unmap_file(&m);
        bn_err_prefix(err, "%s", path);
        return st;
    }
    (*out)->map = m;
    return BN_OK;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kvs) {
        for (uint64_t i = 0; i < f->n_kv; i++) {
            const gguf_value *v = &f->kvs[i].value;
            if (v->type == GGUF_ARRAY) free((void *)v->v.arr.str_offs);
        }
    }
    free(f->kvs);
    free(f->kv_by_key);
    free(f->tensors);
    free(f->tensor_by_name);
    bn_unmap_file(&f->map);
    free(f);
}

/* ---- queries ---- */

uint32_t gguf_version(const gguf_file *f) {
    return f->version;
}
uint32_t gguf_alignment(const gguf_file *f) {
    return f->alignment;
}
uint64_t gguf_data_offset(const gguf_file *f) {
    return f->data_offset;
}
size_t gguf_file_size(const gguf_file *f) {
    return f->size;
}
const uint8_t *gguf_file_data(const gguf_file *f) {
    return f->data;
}
uint64_t gguf_kv_count(const gguf_file *f) {
    return f->n_kv;
}
uint64_t gguf_tensor_count(const gguf_file *f) {
    return f->n_tensors;
}

const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i) {
    return i < f->n_kv ? &f->kvs[i] : NULL;
}

const gguf_tensor_info *gguf_tensor_at(const gguf_file *f, uint64_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    size_t klen = strlen(key), lo = 0, hi = (size_t)f->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const gguf_kv *kv = f->kv_by_key[mid];
        int c = cmp_bytes(kv->key.ptr, kv->key.len, key, klen);
        if (c == 0) return kv;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const gguf_tensor_info *gguf_find_tensor(const gguf_file *f, const char *name) {
    size_t lo = 0, hi = (size_t)f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const gguf_tensor_info *t = f->tensor_by_name[mid];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

/* ---- typed getters ---- */

static bn_status wrong_type(const gguf_kv *kv, const char *key, const char *want, bn_err *err) {
    return bn_fail(err, BN_ERR_FORMAT,
                   "key '%s' at byte %" PRIu64 ": value of type %s, expected %s", key,
                   kv->file_offset, gguf_vtype_name(kv->value.type), want);
}

static bn_status need(const gguf_file *f, const char *key, const gguf_kv **kv, bn_err *err) {
    *kv = gguf_find_kv(f, key);
    if (!*kv) return bn_fail(err, BN_ERR_FORMAT, "key '%s' is missing", key);
    return BN_OK;
}

static bn_status to_u64(const gguf_kv *kv, const char *key, uint64_t *out, bn_err *err) {
    const gguf_value *v = &kv->value;
    if (is_unsigned(v->type)) {
        *out = v->v.u;
        return BN_OK;
    }
    if (is_signed(v->type)) {
        if (v->v.i < 0)
            return bn_fail(err, BN_ERR_FORMAT,
                           "key '%s' at byte %" PRIu64 ": value %" PRId64 " is negative", key,
                           kv->file_offset, v->v.i);
        *out = (uint64_t)v->v.i;
        return BN_OK;
    }
    return wrong_type(kv, key, "an integer", err);
}

static bn_status to_f64(const gguf_kv *kv, const char *key, double *out, bn_err *err) {
    if (kv->value.type != GGUF_F32 && kv->value.type != GGUF_F64)
        return wrong_type(kv, key, "f32 or f64", err);
    *out = kv->value.v.f;
    return BN_OK;
}

static bn_status to_bool(const gguf_kv *kv, const char *key, bool *out, bn_err *err) {
    if (kv->value.type != GGUF_BOOL) return wrong_type(kv, key, "bool", err);
    *out = kv->value.v.u != 0;
    return BN_OK;
}

bn_status gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, bn_err *err) {
    const gguf_kv *kv;
    bn_status st = need(f, key, &kv, err);
    return st ? st : to_u64(kv, key, out, err);
}

bn_status gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, bn_err *err) {
    const gguf_kv *kv;
    bn_status st = need(f, key, &kv, err);
    if (st) return st;
    const gguf_value *v = &kv->value;
    if (is_signed(v->type)) {
        *out = v->v.i;
        return BN_OK;
    }
    if (is_unsigned(v->type)) {
        if (v->v.u > (uint64_t)INT64_MAX)
            return bn_fail(err, BN_ERR_FORMAT,
                           "key '%s' at byte %" PRIu64 ": value %" PRIu64 " does not fit in i64",
                           key, kv->file_offset, v->v.u);
        *out = (int64_t)v->v.u;
        return BN_OK;
    }
    return wrong_type(kv, key, "an integer", err);
}

bn_status gguf_get_f64(const gguf_file *f, const char *key, double *out, bn_err *err) {
    const gguf_kv *kv;
    bn_status st = need(f, key, &kv, err);
    return st ? st : to_f64(kv, key, out, err);
}

bn_status gguf_get_bool(const gguf_file *f, const char *key, bool *out, bn_err *err) {
    const gguf_kv *kv;
    bn_status st = need(f, key, &kv, err);
    return st ? st : to_bool(kv, key, out, err);
}

bn_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, bn_err *err) {
    const gguf_kv *kv;
    bn_status st = need(f, key, &kv, err);
    if (st) return st;
    if (kv->value.type != GGUF_STRING) return wrong_type(kv, key, "string", err);
    *out = kv->value.v.str;
    return BN_OK;
}

bn_status gguf_get_arr(const gguf_file *f, const char *key, gguf_array *out, bn_err *err) {
    const gguf_kv *kv;
    bn_status st = need(f, key, &kv, err);
    if (st) return st;
    if (kv->value.type != GGUF_ARRAY) return wrong_type(kv, key, "array", err);
    *out = kv->value.v.arr;
    return BN_OK;
}

bn_status gguf_get_u64_opt(const gguf_file *f, const char *key, uint64_t *out, bn_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    return kv ? to_u64(kv, key, out, err) : BN_OK;
}

bn_status gguf_get_f64_opt(const gguf_file *f, const char *key, double *out, bn_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    return kv ? to_f64(kv, key, out, err) : BN_OK;
}

bn_status gguf_get_bool_opt(const gguf_file *f, const char *key, bool *out, bn_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    return kv ? to_bool(kv, key, out, err) : BN_OK;
}

/* ---- array elements (the caller's index and type are asserted; release builds
 * return an empty value instead of reading out of bounds) ---- */

gguf_str gguf_array_str(const gguf_array *a, uint64_t i) {
    gguf_str s = {0, ""};
    assert(a->elem_type == GGUF_STRING && i < a->count && a->str_offs);
    if (a->elem_type != GGUF_STRING || i >= a->count || !a->str_offs) return s;
    const uint8_t *p = a->data + a->str_offs[i];
    s.len = load_u64(p);
    s.ptr = (const char *)p + 8;
    return s;
}

float gguf_array_f32(const gguf_array *a, uint64_t i) {
    assert(a->elem_type == GGUF_F32 && i < a->count);
    if (a->elem_type != GGUF_F32 || i >= a->count) return 0.0f;
    uint32_t bits = load_u32(a->data + 4 * i);
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

int32_t gguf_array_i32(const gguf_array *a, uint64_t i) {
    assert(a->elem_type == GGUF_I32 && i < a->count);
    if (a->elem_type != GGUF_I32 || i >= a->count) return 0;
    return (int32_t)load_u32(a->data + 4 * i);
}

int64_t gguf_array_int(const gguf_array *a, uint64_t i) {
    size_t es = fixed_size(a->elem_type);
    bool ok = i < a->count &&
              (is_unsigned(a->elem_type) || is_signed(a->elem_type) || a->elem_type == GGUF_BOOL);
    assert(ok && "gguf_array_int: index out of range or not an integer array");
    if (!ok) return 0;
    const uint8_t *p = a->data + es * i;
    if (a->elem_type == GGUF_BOOL) return p[0] != 0;
    if (is_signed(a->elem_type)) return load_le_signed(p, es);
    return (int64_t)load_le(p, es); /* U64 values over 2^63-1 wrap */
}
