/* testutil.h - small helpers shared by the cmocka tests: paths to the shared
 * data and the build's scratch folder, skipping, a deterministic RNG and NMSE,
 * buffers freed in teardown, files built by hand. */
#ifndef BN_TESTUTIL_H
#define BN_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* Path of a file in ../shared/data (static buffer), or NULL if it does not exist. */
const char *bt_shared_path(const char *rel);
/* Path of a scratch file in the build's test folder (static rotating buffers). */
const char *bt_tmp_path(const char *name);
/* Prints "SKIP: why" and exits with 77 (ctest reports the test as skipped). */
void bt_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The start of the OpenCL tests' main (test_opencl_ops, test_opencl_graph):
 * skips (77) when there is no OpenCL device; makes the CPU backend, their
 * reference, run its plain-C kernels (not its fast paths); points
 * XDG_CACHE_HOME at one program cache in the scratch folder, shared by both. */
void bt_opencl_prelude(void);

/* Deterministic xorshift64* generator. */
typedef struct bt_rng {
    uint64_t s;
} bt_rng;
void bt_rng_seed(bt_rng *r, uint64_t seed);
bt_rng bt_rng_new(uint64_t seed); /* a generator seeded with bt_rng_seed */
uint64_t bt_rng_u64(bt_rng *r);
double bt_rng_uniform(bt_rng *r);          /* [0, 1) */
double bt_rng_normal(bt_rng *r);           /* N(0, 1) */
int bt_rng_int(bt_rng *r, int lo, int hi); /* [lo, hi] */
/* x[i] = sd * N(0, 1), i < n. */
void bt_fill_normal(float *x, int64_t n, double sd, bt_rng *r);

/* sum (a-b)^2 / sum b^2 (0 when both are zero). */
double bt_nmse_f32(const float *a, const float *b, size_t n);
double bt_nmse_f32_f64(const float *a, const double *b, size_t n);

/* Keeps p (which must not be NULL) for bt_free_tracked and returns it: a
 * test's buffers, freed together in its teardown. */
void *bt_track(void *p);
/* Frees every buffer bt_track kept since the last call. */
void bt_free_tracked(void);

/* Reads a whole file into malloc'd memory (NUL-terminated); NULL on error. */
char *bt_read_file(const char *path, size_t *size);
/* Writes bytes to a file; 0 on success. */
int bt_write_file(const char *path, const void *data, size_t size);

/* A growing little-endian byte buffer, for building files by hand. */
typedef struct bt_buf {
    uint8_t *p;
    size_t n, cap;
} bt_buf;
void bt_put_bytes(bt_buf *b, const void *src, size_t n);
void bt_put_u8(bt_buf *b, uint8_t v);
void bt_put_u32(bt_buf *b, uint32_t v);
void bt_put_u64(bt_buf *b, uint64_t v);
void bt_put_str(bt_buf *b, const char *s); /* GGUF string: u64 length + bytes */

/* The shape of a bitnet-b1.58 model written by hand with the GGUF writer. */
typedef struct bt_bitnet_shape {
    int n_layer, n_ctx, n_embd, n_ff, n_head, n_head_kv, n_vocab;
    float eps, rope_base; /* RMS-norm epsilon, RoPE frequency base */
} bt_bitnet_shape;
struct gguf_writer;
/* Sets the metadata of such a model on w (core/gguf.h): the architecture, the
 * shape, and a llama-type vocabulary of n_vocab tokens "t0", "t1", ... */
void bt_gguf_bitnet_meta(struct gguf_writer *w, const bt_bitnet_shape *s);

#endif
