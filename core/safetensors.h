/* safetensors.h - reading Hugging Face safetensors checkpoints (FORMATS.md "Hugging Face
 * checkpoints"): one model.safetensors or shards listed by model.safetensors.index.json.
 *
 * A file is an 8-byte little-endian header length, a JSON header (name -> dtype, shape,
 * data_offsets relative to the end of the header), then the raw little-endian data. Files
 * are mmapped, so a tensor's bytes are read from the page cache when used and a model larger
 * than memory can be converted tensor by tensor. Nothing in the header is trusted: every
 * offset must lie inside the file and match the dtype and shape. */
#ifndef BN_SAFETENSORS_H
#define BN_SAFETENSORS_H

#include <stdint.h>

#include "error.h"
#include "os.h"

typedef enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_U8, ST_I8 } st_dtype;

#define ST_MAX_DIMS 4

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS]; /* outermost first, as in the file (PyTorch order) */
    int64_t n_elems;
    const uint8_t *data; /* inside the mapping of its file */
    uint64_t nbytes;
    int file; /* index of the shard */
} st_tensor;

typedef struct st_model {
    bn_mapping *files;
    int n_files;
    st_tensor *tensors;
    int n_tensors;
} st_model;

/* Opens every safetensors file of a checkpoint directory: model.safetensors.index.json's
 * shards if that file exists, else model.safetensors, else the single *.safetensors file. */
bn_status st_open_dir(const char *dir, st_model *out, bn_err *err);
/* Opens one file (tests). */
bn_status st_open_file(const char *path, st_model *out, bn_err *err);
void st_close(st_model *m);

const st_tensor *st_find(const st_model *m, const char *name);
const char *st_dtype_name(st_dtype t);

/* Converts elements [first, first + n) of a float tensor (F32, F16, BF16) to f32. */
void st_read_f32(const st_tensor *t, int64_t first, int64_t n, float *dst);

#endif
