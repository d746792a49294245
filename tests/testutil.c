/* testutil.c - see testutil.h. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../backends/backend.h"
#include "../core/gguf.h"

const char *bt_shared_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("BITNET_SHARED_DATA");
    if (!root) root = BITNET_SHARED_DATA;
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

const char *bt_tmp_path(const char *name) {
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ & 3];
    mkdir(BITNET_TEST_TMP, 0755);
    snprintf(b, 4096, "%s/%s", BITNET_TEST_TMP, name);
    return b;
}

void bt_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "SKIP: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(77);
}

void bt_opencl_prelude(void) {
    char why[512] = "";
    if (!bn_backend_opencl()) bt_skip("built without OpenCL");
    if (bn_backend_opencl()->device_count(why, sizeof why) == 0) bt_skip("%s", why);
    setenv("BITNET_CPU_FLOAT", "scalar", 1);
    setenv("BITNET_CPU_TERNARY", "reference", 1);
    setenv("XDG_CACHE_HOME", bt_tmp_path("opencl_cache"), 1);
}

void bt_rng_seed(bt_rng *r, uint64_t seed) {
    r->s = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    if (!r->s) r->s = 1;
}

bt_rng bt_rng_new(uint64_t seed) {
    bt_rng r;
    bt_rng_seed(&r, seed);
    return r;
}

uint64_t bt_rng_u64(bt_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double bt_rng_uniform(bt_rng *r) {
    return (double)(bt_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double bt_rng_normal(bt_rng *r) {
    double u1 = bt_rng_uniform(r), u2 = bt_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int bt_rng_int(bt_rng *r, int lo, int hi) {
    return lo + (int)(bt_rng_u64(r) % (uint64_t)(hi - lo + 1));
}

void bt_fill_normal(float *x, int64_t n, double sd, bt_rng *r) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(sd * bt_rng_normal(r));
}

double bt_nmse_f32(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return num / den;
}

double bt_nmse_f32_f64(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return num / den;
}

static void **tracked;
static size_t n_tracked, cap_tracked;

void *bt_track(void *p) {
    assert_non_null(p);
    if (n_tracked == cap_tracked) {
        cap_tracked = cap_tracked ? 2 * cap_tracked : 256;
        tracked = realloc(tracked, sizeof *tracked * cap_tracked);
        assert_non_null(tracked);
    }
    tracked[n_tracked++] = p;
    return p;
}

void bt_free_tracked(void) {
    for (size_t i = 0; i < n_tracked; i++) free(tracked[i]);
    free(tracked);
    tracked = NULL;
    n_tracked = cap_tracked = 0;
}

char *bt_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (size) *size = (size_t)n;
    }
    return buf;
}

int bt_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, size, f);
    return (fclose(f) == 0 && w == size) ? 0 : -1;
}

void bt_put_bytes(bt_buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

void bt_put_u8(bt_buf *b, uint8_t v) {
    bt_put_bytes(b, &v, 1);
}

void bt_put_u32(bt_buf *b, uint32_t v) {
    for (int i = 0; i < 4; i++) bt_put_u8(b, (uint8_t)(v >> (8 * i)));
}

void bt_put_u64(bt_buf *b, uint64_t v) {
    for (int i = 0; i < 8; i++) bt_put_u8(b, (uint8_t)(v >> (8 * i)));
}

void bt_put_str(bt_buf *b, const char *s) {
    bt_put_u64(b, strlen(s));
    bt_put_bytes(b, s, strlen(s));
}

void bt_gguf_bitnet_meta(gguf_writer *w, const bt_bitnet_shape *s) {
    gguf_writer_set_str(w, "general.architecture", "bitnet-b1.58");
    gguf_writer_set_u32(w, "bitnet-b1.58.block_count", (uint32_t)s->n_layer);
    gguf_writer_set_u32(w, "bitnet-b1.58.context_length", (uint32_t)s->n_ctx);
    gguf_writer_set_u32(w, "bitnet-b1.58.embedding_length", (uint32_t)s->n_embd);
    gguf_writer_set_u32(w, "bitnet-b1.58.feed_forward_length", (uint32_t)s->n_ff);
    gguf_writer_set_u32(w, "bitnet-b1.58.attention.head_count", (uint32_t)s->n_head);
    gguf_writer_set_u32(w, "bitnet-b1.58.attention.head_count_kv", (uint32_t)s->n_head_kv);
    gguf_writer_set_f32(w, "bitnet-b1.58.attention.layer_norm_rms_epsilon", s->eps);
    gguf_writer_set_f32(w, "bitnet-b1.58.rope.freq_base", s->rope_base);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    char(*names)[16] = malloc(sizeof *names * (size_t)s->n_vocab);
    const char **toks = malloc(sizeof *toks * (size_t)s->n_vocab);
    assert_non_null(names);
    assert_non_null(toks);
    for (int i = 0; i < s->n_vocab; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        toks[i] = names[i];
    }
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)s->n_vocab);
    free(toks);
    free(names);
}
