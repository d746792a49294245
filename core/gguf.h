/* gguf.h - reading and writing GGUF files (versions 2 and 3; FORMATS.md).
 *
 * The reader works on an mmapped file (or any memory range) and never trusts
 * a size from it: every count, length and offset is checked against the bytes
 * that remain and for overflow before use; tensor data must lie inside the data
 * section, aligned, without overlaps. Strings and tensor data returned by the
 * reader point into the mapping and live as long as the gguf_file.
 *
 * The writer streams: metadata and tensor infos are declared first, the header
 * is written once, then each tensor's bytes are written in declaration order,
 * so a file larger than memory can be produced tensor by tensor. */
#ifndef BN_GGUF_H
#define BN_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "os.h"

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef enum gguf_vtype {
    GGUF_U8 = 0,
    GGUF_I8 = 1,
    GGUF_U16 = 2,
    GGUF_I16 = 3,
    GGUF_U32 = 4,
    GGUF_I32 = 5,
    GGUF_F32 = 6,
    GGUF_BOOL = 7,
    GGUF_STRING = 8,
    GGUF_ARRAY = 9,
    GGUF_U64 = 10,
    GGUF_I64 = 11,
    GGUF_F64 = 12,
    GGUF_VTYPE_COUNT
} gguf_vtype;

const char *gguf_vtype_name(gguf_vtype t);

/* A string inside the file: not NUL-terminated. */
typedef struct gguf_str {
    uint64_t len;
    const char *ptr;
} gguf_str;

/* An array value. Elements of fixed-size types are read with gguf_array_* below;
 * string arrays are indexed at open time so element i is O(1). Arrays of arrays
 * are validated and skipped; their elements are not accessible (count is). */
typedef struct gguf_array {
    gguf_vtype elem_type;
    uint64_t count;
    const uint8_t *data;      /* first element, inside the mapping */
    const uint64_t *str_offs; /* string arrays: byte offset of each element from data */
} gguf_array;

/* One metadata value. Scalars are widened into the union members. */
typedef struct gguf_value {
    gguf_vtype type;
    union {
        uint64_t u; /* U8, U16, U32, U64, BOOL (any nonzero byte in the file reads as 1) */
        int64_t i;  /* I8, I16, I32, I64 */
        double f;   /* F32, F64 */
        gguf_str str;
        gguf_array arr;
    } v;
} gguf_value;

typedef struct gguf_kv {
    gguf_str key;
    gguf_value value;
    uint64_t file_offset; /* where the key starts, for messages */
} gguf_kv;

typedef struct gguf_tensor_info {
    char name[128];            /* NUL-terminated copy (names longer than 127 bytes are an error) */
    uint32_t n_dims;           /* 1..4 */
    int64_t ne[GGUF_MAX_DIMS]; /* unused dimensions are 1 */
    uint32_t type;             /* GGML type id; known to core/types.h (checked at open) */
    uint64_t offset;           /* relative to the data section */
    uint64_t nbytes;           /* from type and shape (core/types.h) */
    const uint8_t *data;       /* inside the mapping */
} gguf_tensor_info;

typedef struct gguf_file gguf_file;

/* Opens and validates a file (maps it). On error *out is NULL and err says what
 * and where ("tensor 'blk.0.attn_q.weight' at byte 1234: offset past end of file"). */
bn_status gguf_open(const char *path, gguf_file **out, bn_err *err);
/* The same over a caller-owned memory range (tests, fuzzing); mem must outlive the result. */
bn_status gguf_open_memory(const void *mem, size_t size, gguf_file **out, bn_err *err);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); /* start of the data section in the file */
size_t gguf_file_size(const gguf_file *f);
const uint8_t *gguf_file_data(const gguf_file *f); /* the whole mapping */

uint64_t gguf_kv_count(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i);
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key); /* NULL if absent */

uint64_t gguf_tensor_count(const gguf_file *f);
const gguf_tensor_info *gguf_tensor_at(const gguf_file *f, uint64_t i);
const gguf_tensor_info *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters. Each returns BN_ERR_FORMAT with the key named if the key is absent
 * (or, for the _opt forms, leaves *out untouched and returns BN_OK), or if the value's
 * type does not convert: any integer type converts to the integer getters when the
 * value fits; F32/F64 convert to gguf_get_f64; BOOL converts to gguf_get_bool. */
bn_status gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, bn_err *err);
bn_status gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, bn_err *err);
bn_status gguf_get_f64(const gguf_file *f, const char *key, double *out, bn_err *err);
bn_status gguf_get_bool(const gguf_file *f, const char *key, bool *out, bn_err *err);
bn_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, bn_err *err);
bn_status gguf_get_arr(const gguf_file *f, const char *key, gguf_array *out, bn_err *err);
bn_status gguf_get_u64_opt(const gguf_file *f, const char *key, uint64_t *out, bn_err *err);
bn_status gguf_get_f64_opt(const gguf_file *f, const char *key, double *out, bn_err *err);
bn_status gguf_get_bool_opt(const gguf_file *f, const char *key, bool *out, bn_err *err);

/* Array element access; i < a->count and the element type must match (asserted). */
gguf_str gguf_array_str(const gguf_array *a, uint64_t i);
float gguf_array_f32(const gguf_array *a, uint64_t i);
int32_t gguf_array_i32(const gguf_array *a, uint64_t i);
/* Any integer element type, widened (U8..I64, BOOL). */
int64_t gguf_array_int(const gguf_array *a, uint64_t i);
/* True if s equals the NUL-terminated c string. */
bool gguf_str_eq(gguf_str s, const char *c);

/* ---- writer ---- */

typedef struct gguf_writer gguf_writer;

/* Version 3, alignment 32 (set general.alignment to change). NULL when out of memory; every
 * writer function accepts that NULL (gguf_writer_begin then reports BN_ERR_OOM). */
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);

/* Metadata, in the order added. Strings and arrays are copied. Setting a key again
 * replaces its value in place. A failure (out of memory, bad argument) is recorded and
 * returned by gguf_writer_begin. Arrays of arrays cannot be written. */
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* A generic value of any fixed-size scalar type (not STRING or ARRAY): bytes hold the
 * little-endian encoding. */
void gguf_writer_set_scalar(gguf_writer *w, const char *key, gguf_vtype type, const void *bytes);
/* An array of fixed-size elements (count elements of elem_type, little-endian). */
void gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem_type, const void *data,
                         uint64_t count);
/* An array of NUL-terminated strings. */
void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                             uint64_t count);
/* An array of strings with explicit lengths (may contain NUL bytes). */
void gguf_writer_set_arr_strn(gguf_writer *w, const char *key, const char *const *strs,
                              const uint64_t *lens, uint64_t count);

/* Declares a tensor; its byte size follows from type and shape. Tensors are written in
 * declaration order. Fails on an unknown type, bad shape, long or duplicate name. */
bn_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                 const int64_t *ne, bn_err *err);

/* Writes header, metadata, tensor infos and padding to path. After an error from
 * begin, write_tensor or finish the partial file is removed and the writer can only be
 * freed; freeing a writer before finish also removes its file. */
bn_status gguf_writer_begin(gguf_writer *w, const char *path, bn_err *err);
/* Writes the next tensor's data (in declaration order; nbytes must equal its size),
 * followed by padding to the alignment. */
bn_status gguf_writer_write_tensor(gguf_writer *w, const void *data, uint64_t nbytes, bn_err *err);
/* Streams the next tensor's data in pieces: the tensor is complete (and padded)
 * when the pieces add up to its size. Do not mix with gguf_writer_write_tensor
 * within one tensor. */
bn_status gguf_writer_write_data(gguf_writer *w, const void *data, uint64_t nbytes, bn_err *err);
/* Checks every tensor was written, flushes and closes the file. */
bn_status gguf_writer_finish(gguf_writer *w, bn_err *err);

#endif
