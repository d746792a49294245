/* test_gguf_hostile.c - the GGUF reader against malformed and malicious files.
 *
 * A small valid file is built byte by byte (with the offset of every field
 * recorded), then truncated at every length, patched with huge counts and
 * lengths, bad offsets, shapes, types, nesting, alignment and duplicates, and
 * randomly mutated. Every case must fail cleanly with a message that says where
 * (the tests also run under ASan+UBSan); each buffer is a fresh allocation of
 * exactly its size so that any read past the end is caught. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "types.h"

#define P63 (1ull << 63)

/* Levels of nested arrays; the innermost holds one u8. */
static void put_nested(bt_buf *b, int levels) {
    if (levels <= 1) {
        bt_put_u32(b, GGUF_U8);
        bt_put_u64(b, 1);
        bt_put_u8(b, 7);
        return;
    }
    bt_put_u32(b, GGUF_ARRAY);
    bt_put_u64(b, 1);
    put_nested(b, levels - 1);
}

typedef struct opts {
    int nest_depth;    /* > 0: add a key "test.nested" with that many levels */
    bool dup_key;      /* repeat general.architecture at the end */
    bool dup_tensor;   /* name tensor 1 like tensor 0 */
    bool align_as_u64; /* write general.alignment with the wrong type */
    bool nul_in_name;  /* tensor 1 named "out\0put" */
} opts;

/* Offsets of the fields the tests patch. */
typedef struct layout {
    size_t tensor_count, kv_count;
    size_t arch_key_len, arch_val_len, arch_type;
    size_t align_val;
    size_t tokens_elem_type, tokens_count, tokens_str0;
    size_t scores_count;
    size_t t0_name_len, t0_ndims, t0_ne0, t0_ne1, t0_type, t0_offset;
    size_t t1_name_len, t1_ndims, t1_ne0, t1_type, t1_offset;
    size_t data;
} layout;

/* header; 4 keys (+ options); tensors token_embd.weight F32 [4, 2] at 0 and
 * output.weight F32 [8] at 32; alignment 32; the file ends with tensor data. */
static bt_buf build(const opts *o, layout *l) {
    bt_buf b = {0};
    bt_put_bytes(&b, "GGUF", 4);
    bt_put_u32(&b, 3);
    l->tensor_count = b.n;
    bt_put_u64(&b, 2);
    l->kv_count = b.n;
    bt_put_u64(&b, 4 + (o->nest_depth > 0) + o->dup_key);

    l->arch_key_len = b.n;
    bt_put_str(&b, "general.architecture");
    l->arch_type = b.n;
    bt_put_u32(&b, GGUF_STRING);
    l->arch_val_len = b.n;
    bt_put_str(&b, "llama");

    bt_put_str(&b, "general.alignment");
    bt_put_u32(&b, o->align_as_u64 ? GGUF_U64 : GGUF_U32);
    l->align_val = b.n;
    if (o->align_as_u64)
        bt_put_u64(&b, 32);
    else
        bt_put_u32(&b, 32);

    bt_put_str(&b, "tokenizer.ggml.tokens");
    bt_put_u32(&b, GGUF_ARRAY);
    l->tokens_elem_type = b.n;
    bt_put_u32(&b, GGUF_STRING);
    l->tokens_count = b.n;
    bt_put_u64(&b, 3);
    l->tokens_str0 = b.n;
    bt_put_str(&b, "a");
    bt_put_str(&b, "bc");
    bt_put_str(&b, "def");

    bt_put_str(&b, "tokenizer.ggml.scores");
    bt_put_u32(&b, GGUF_ARRAY);
    bt_put_u32(&b, GGUF_F32);
    l->scores_count = b.n;
    bt_put_u64(&b, 3);
    for (int i = 0; i < 3; i++) bt_put_u32(&b, 0x3f800000u);

    if (o->nest_depth > 0) {
        bt_put_str(&b, "test.nested");
        bt_put_u32(&b, GGUF_ARRAY);
        put_nested(&b, o->nest_depth);
    }
    if (o->dup_key) {
        bt_put_str(&b, "general.architecture");
        bt_put_u32(&b, GGUF_STRING);
        bt_put_str(&b, "bitnet");
    }

    l->t0_name_len = b.n;
    bt_put_str(&b, "token_embd.weight");
    l->t0_ndims = b.n;
    bt_put_u32(&b, 2);
    l->t0_ne0 = b.n;
    bt_put_u64(&b, 4);
    l->t0_ne1 = b.n;
    bt_put_u64(&b, 2);
    l->t0_type = b.n;
    bt_put_u32(&b, BN_TYPE_F32);
    l->t0_offset = b.n;
    bt_put_u64(&b, 0);

    l->t1_name_len = b.n;
    if (o->dup_tensor)
        bt_put_str(&b, "token_embd.weight");
    else if (o->nul_in_name)
        bt_put_u64(&b, 7), bt_put_bytes(&b, "out\0put", 7);
    else
        bt_put_str(&b, "output.weight");
    l->t1_ndims = b.n;
    bt_put_u32(&b, 1);
    l->t1_ne0 = b.n;
    bt_put_u64(&b, 8);
    l->t1_type = b.n;
    bt_put_u32(&b, BN_TYPE_F32);
    l->t1_offset = b.n;
    bt_put_u64(&b, 32);

    while (b.n % 32) bt_put_u8(&b, 0);
    l->data = b.n;
    for (int i = 0; i < 64; i++) bt_put_u8(&b, (uint8_t)(i * 7 + 1));
    return b;
}

static bt_buf build_default(layout *l) {
    opts o = {0};
    return build(&o, l);
}

/* Opens an exact-size copy of p[0..n); returns the status, message in *e. */
static bn_status open_copy(const uint8_t *p, size_t n, bn_err *e) {
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n) memcpy(copy, p, n);
    gguf_file *f = (gguf_file *)(uintptr_t)1;
    memset(e, 0, sizeof *e);
    bn_status st = gguf_open_memory(copy, n, &f, e);
    if (st == BN_OK) {
        assert_non_null(f);
        gguf_close(f);
    } else {
        assert_null(f);
    }
    free(copy);
    return st;
}

/* Expects a failure (with status want unless want is BN_OK) whose message is
 * non-empty, names a byte offset and contains need (if not NULL). */
static void expect_fail_at(const char *what, const uint8_t *p, size_t n, bn_status want,
                           const char *need) {
    bn_err e;
    bn_status st = open_copy(p, n, &e);
    if (st == BN_OK) fail_msg("%s: accepted", what);
    if (getenv("BT_VERBOSE")) print_message("%s -> %s\n", what, e.msg); /* to review messages */
    if (want != BN_OK && st != want)
        fail_msg("%s: status %d (%s), expected %d: %s", what, st, bn_status_str(st), want, e.msg);
    assert_int_equal(e.code, st);
    if (!e.msg[0]) fail_msg("%s: empty message", what);
    if (!strstr(e.msg, "at byte ")) fail_msg("%s: message without a byte offset: %s", what, e.msg);
    if (need && !strstr(e.msg, need)) fail_msg("%s: '%s' not in: %s", what, need, e.msg);
}

static void patch_u32(bt_buf *b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; i++) b->p[at + i] = (uint8_t)(v >> (8 * i));
}
static void patch_u64(bt_buf *b, size_t at, uint64_t v) {
    for (int i = 0; i < 8; i++) b->p[at + i] = (uint8_t)(v >> (8 * i));
}

/* Builds the default file, patches one field and expects a failure. */
static void case_u64(const char *what, size_t layout_field_offset, uint64_t v, bn_status want,
                     const char *need) {
    layout l;
    bt_buf b = build_default(&l);
    size_t at = *(const size_t *)((const char *)&l + layout_field_offset);
    patch_u64(&b, at, v);
    expect_fail_at(what, b.p, b.n, want, need);
    free(b.p);
}
static void case_u32(const char *what, size_t layout_field_offset, uint32_t v, bn_status want,
                     const char *need) {
    layout l;
    bt_buf b = build_default(&l);
    size_t at = *(const size_t *)((const char *)&l + layout_field_offset);
    patch_u32(&b, at, v);
    expect_fail_at(what, b.p, b.n, want, need);
    free(b.p);
}
#define U64(field, v, want, need) case_u64(#field " = " #v, offsetof(layout, field), v, want, need)
#define U32(field, v, want, need) case_u32(#field " = " #v, offsetof(layout, field), v, want, need)

/* ---- tests ---- */

static void test_base_is_valid(void **state) {
    (void)state;
    layout l;
    bt_buf b = build_default(&l);
    gguf_file *f = NULL;
    bn_err e = {0};
    bn_status st = gguf_open_memory(b.p, b.n, &f, &e);
    if (st) fail_msg("base file: %s", e.msg);
    assert_int_equal(gguf_kv_count(f), 4);
    assert_int_equal(gguf_tensor_count(f), 2);
    assert_int_equal(gguf_data_offset(f), l.data);
    const gguf_tensor_info *t = gguf_find_tensor(f, "output.weight");
    assert_non_null(t);
    assert_int_equal(t->offset + t->nbytes + l.data, b.n); /* ends with tensor data */
    gguf_close(f);
    free(b.p);
}

static void test_truncation(void **state) {
    (void)state;
    layout l;
    bt_buf b = build_default(&l);
    for (size_t n = 0; n < b.n; n++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", n, b.n);
        expect_fail_at(what, b.p, n, BN_OK, NULL);
    }
    bn_err e;
    assert_int_equal(open_copy(b.p, b.n, &e), BN_OK);
    /* the same for a file with nested arrays */
    opts o = {.nest_depth = 8};
    bt_buf c = build(&o, &l);
    assert_int_equal(open_copy(c.p, c.n, &e), BN_OK);
    for (size_t n = 0; n < c.n; n++) expect_fail_at("nested, truncated", c.p, n, BN_OK, NULL);
    free(c.p);
    free(b.p);
}

static void test_header(void **state) {
    (void)state;
    layout l;
    bt_buf b = build_default(&l);
    expect_fail_at("NULL, 0", NULL, 0, BN_ERR_FORMAT, NULL);
    b.p[0] = 'g';
    expect_fail_at("bad magic", b.p, b.n, BN_ERR_FORMAT, "magic");
    b.p[0] = 'G';
    uint32_t versions[] = {0, 1, 4, 0x03000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        char need[16];
        snprintf(need, sizeof need, "%u", versions[i]);
        patch_u32(&b, 4, versions[i]);
        expect_fail_at("version", b.p, b.n, BN_ERR_UNSUPPORTED, need);
    }
    free(b.p);

    U64(tensor_count, P63, BN_ERR_FORMAT, "tensor count 9223372036854775808");
    U64(tensor_count, UINT64_MAX, BN_ERR_FORMAT, "tensor count");
    U64(tensor_count, 3, BN_ERR_FORMAT, NULL);
    U64(tensor_count, 1000, BN_ERR_FORMAT, NULL);
    U64(kv_count, P63, BN_ERR_FORMAT, "metadata count 9223372036854775808");
    U64(kv_count, UINT64_MAX, BN_ERR_FORMAT, "at byte 16");
    U64(kv_count, 1ull << 32, BN_ERR_FORMAT, NULL);
}

static void test_metadata(void **state) {
    (void)state;
    /* keys */
    U64(arch_key_len, P63, BN_ERR_FORMAT, "at byte 24");
    U64(arch_key_len, UINT64_MAX, BN_ERR_FORMAT, "key");
    U64(arch_key_len, 100000, BN_ERR_FORMAT, "does not fit");
    U32(arch_type, 13, BN_ERR_FORMAT, "general.architecture");
    U32(arch_type, 0xffffffffu, BN_ERR_FORMAT, "value type");
    /* strings */
    U64(arch_val_len, P63, BN_ERR_FORMAT, "general.architecture");
    U64(arch_val_len, UINT64_MAX, BN_ERR_FORMAT, "general.architecture");
    U64(arch_val_len, 5000, BN_ERR_FORMAT, "does not fit");
    /* arrays */
    U64(tokens_count, P63, BN_ERR_FORMAT,
        "key 'tokenizer.ggml.tokens' at byte 139: array of 9223372036854775808 strings does not "
        "fit");
    U64(tokens_count, UINT64_MAX, BN_ERR_FORMAT, "tokenizer.ggml.tokens");
    U64(tokens_count, 1000, BN_ERR_FORMAT, "tokenizer.ggml.tokens");
    U64(tokens_count, 4, BN_ERR_FORMAT, NULL);
    U64(tokens_str0, P63, BN_ERR_FORMAT, "tokenizer.ggml.tokens");
    U64(tokens_str0, 300, BN_ERR_FORMAT, "string 0 of 3");
    U64(tokens_str0, UINT64_MAX - 7, BN_ERR_FORMAT, "tokenizer.ggml.tokens");
    U32(tokens_elem_type, 13, BN_ERR_FORMAT, "element type 13");
    U32(tokens_elem_type, 0xffffffffu, BN_ERR_FORMAT, "tokenizer.ggml.tokens");
    U64(scores_count, P63, BN_ERR_FORMAT, "tokenizer.ggml.scores");
    U64(scores_count, 1ull << 62, BN_ERR_FORMAT, "tokenizer.ggml.scores"); /* * 4 wraps */
    U64(scores_count, UINT64_MAX, BN_ERR_FORMAT, "tokenizer.ggml.scores");
    U64(scores_count, 100, BN_ERR_FORMAT, "tokenizer.ggml.scores");
}

static void test_alignment(void **state) {
    (void)state;
    U32(align_val, 0, BN_ERR_FORMAT, "general.alignment");
    U32(align_val, 3, BN_ERR_FORMAT, "general.alignment");
    U32(align_val, 48, BN_ERR_FORMAT, "power of two");
    U32(align_val, 0x80000001u, BN_ERR_FORMAT, "general.alignment");
    /* valid, but then the tensor at 32 is misaligned */
    U32(align_val, 64, BN_ERR_FORMAT, "output.weight");
    layout l;
    opts o = {.align_as_u64 = true};
    bt_buf b = build(&o, &l);
    expect_fail_at("alignment as u64", b.p, b.n, BN_ERR_FORMAT, "general.alignment");
    free(b.p);
}

static void test_nesting(void **state) {
    (void)state;
    layout l;
    bn_err e;
    for (int depth = 1; depth <= 8; depth++) {
        opts o = {.nest_depth = depth};
        bt_buf b = build(&o, &l);
        bn_status st = open_copy(b.p, b.n, &e);
        if (st) fail_msg("depth %d: %s", depth, e.msg);
        free(b.p);
    }
    int deep[] = {9, 10, 100, 5000};
    for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
        opts o = {.nest_depth = deep[i]};
        bt_buf b = build(&o, &l);
        expect_fail_at("nested too deep", b.p, b.n, BN_ERR_FORMAT, "test.nested");
        free(b.p);
    }
    /* a huge count of inner arrays */
    opts o = {.nest_depth = 2};
    bt_buf b = build(&o, &l);
    size_t at = l.t0_name_len - (4 + 8 + 1) - 8; /* count of the outer array */
    patch_u64(&b, at, P63);
    expect_fail_at("array of 2^63 arrays", b.p, b.n, BN_ERR_FORMAT, "arrays does not fit");
    patch_u64(&b, at, 2);
    expect_fail_at("array of 2 arrays, 1 present", b.p, b.n, BN_ERR_FORMAT, "test.nested");
    free(b.p);
}

static void test_duplicates(void **state) {
    (void)state;
    layout l;
    opts o = {.dup_key = true};
    bt_buf b = build(&o, &l);
    expect_fail_at("duplicate key", b.p, b.n, BN_ERR_FORMAT, "'general.architecture'");
    expect_fail_at("duplicate key", b.p, b.n, BN_ERR_FORMAT, "duplicate");
    free(b.p);
    opts o2 = {.dup_tensor = true};
    b = build(&o2, &l);
    expect_fail_at("duplicate tensor", b.p, b.n, BN_ERR_FORMAT, "'token_embd.weight'");
    expect_fail_at("duplicate tensor", b.p, b.n, BN_ERR_FORMAT, "duplicate");
    free(b.p);
    opts o3 = {.nul_in_name = true};
    b = build(&o3, &l);
    expect_fail_at("NUL in a tensor name", b.p, b.n, BN_ERR_FORMAT, "NUL");
    free(b.p);
}

static void test_tensor_infos(void **state) {
    (void)state;
    /* names */
    U64(t0_name_len, P63, BN_ERR_FORMAT, "tensor 0");
    U64(t0_name_len, 128, BN_ERR_FORMAT, "127");
    {
        layout l;
        bt_buf b = build_default(&l);
        patch_u64(&b, l.t1_name_len, 120);
        expect_fail_at("name past the end", b.p, l.t1_name_len + 8 + 50, BN_ERR_FORMAT,
                       "name of 120 bytes does not fit in the 50 remaining bytes");
        free(b.p);
    }
    /* dimensions */
    U32(t0_ndims, 0, BN_ERR_FORMAT, "token_embd.weight");
    U32(t0_ndims, 5, BN_ERR_FORMAT, "n_dims is 5");
    U32(t0_ndims, 0xffffffffu, BN_ERR_FORMAT, "token_embd.weight");
    U64(t0_ne0, 0, BN_ERR_FORMAT, "token_embd.weight");
    U64(t1_ne0, 0, BN_ERR_FORMAT, "output.weight");
    U64(t0_ne0, P63, BN_ERR_FORMAT, "token_embd.weight");
    U64(t0_ne0, UINT64_MAX, BN_ERR_FORMAT, "token_embd.weight");
    U64(t0_ne0, 1ull << 62, BN_ERR_FORMAT, "token_embd.weight"); /* 2^63 elements */
    U64(t1_ne0, 1ull << 62, BN_ERR_FORMAT, "output.weight");     /* 2^64 bytes */
    U64(t1_ne0, 1ull << 40, BN_ERR_FORMAT, "output.weight");     /* past the end */
    U64(t1_ne0, 9, BN_ERR_FORMAT, "output.weight");              /* one float too many */
    U64(t0_ne1, 4, BN_ERR_FORMAT, "overlaps");                   /* 64 bytes at 0 */
    {
        layout l;
        bt_buf b = build_default(&l);
        patch_u64(&b, l.t0_ne0, 1ull << 62);
        patch_u64(&b, l.t0_ne1, 1ull << 62);
        expect_fail_at("2^62 x 2^62", b.p, b.n, BN_ERR_FORMAT, "token_embd.weight");
        free(b.p);
    }
    /* types */
    uint32_t bad_types[] = {37, 38, 39, 1000, 4, 13, 100, 101, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        char need[16];
        snprintf(need, sizeof need, "%u", bad_types[i]);
        case_u32("unknown type", offsetof(layout, t0_type), bad_types[i], BN_ERR_UNSUPPORTED, need);
        case_u32("unknown type", offsetof(layout, t1_type), bad_types[i], BN_ERR_UNSUPPORTED,
                 "output.weight");
    }
    U32(t0_type, BN_TYPE_TQ2_0, BN_ERR_FORMAT, "token_embd.weight"); /* 4 is not a block */
    U32(t0_type, BN_TYPE_I2_S, BN_ERR_FORMAT, "token_embd.weight");
    /* offsets */
    U64(t1_offset, 64, BN_ERR_FORMAT, "output.weight");
    U64(t1_offset, 1ull << 40, BN_ERR_FORMAT, "past the end");
    U64(t1_offset, UINT64_MAX - 31, BN_ERR_FORMAT, "output.weight"); /* aligned, wraps */
    U64(t1_offset, 33, BN_ERR_FORMAT, "not a multiple of the alignment");
    U64(t1_offset, 16, BN_ERR_FORMAT, "output.weight");
    U64(t1_offset, 0, BN_ERR_FORMAT, "overlaps tensor 'token_embd.weight'");
    U64(t0_offset, 32, BN_ERR_FORMAT, "overlaps");
}

/* The path is named when a file on disk is refused. */
static void test_open_path(void **state) {
    (void)state;
    layout l;
    bt_buf b = build_default(&l);
    patch_u64(&b, l.tokens_count, P63);
    const char *path = bt_tmp_path("hostile_tokens.gguf");
    assert_int_equal(bt_write_file(path, b.p, b.n), 0);
    gguf_file *f = NULL;
    bn_err e = {0};
    assert_int_equal(gguf_open(path, &f, &e), BN_ERR_FORMAT);
    assert_null(f);
    assert_non_null(strstr(e.msg, "hostile_tokens.gguf"));
    assert_non_null(strstr(e.msg, "tokenizer.ggml.tokens"));
    free(b.p);
}

/* Reads everything a successfully opened file exposes (ASan checks the bounds). */
static unsigned touch_all(const gguf_file *f) {
    unsigned sum = 0;
    const uint8_t *lo = gguf_file_data(f), *hi = lo + gguf_file_size(f);
    for (uint64_t i = 0; i < gguf_kv_count(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        assert_true((const uint8_t *)kv->key.ptr >= lo &&
                    (const uint8_t *)kv->key.ptr + kv->key.len <= hi);
        const gguf_value *v = &kv->value;
        if (v->type == GGUF_STRING) {
            for (uint64_t j = 0; j < v->v.str.len; j++) sum += (unsigned char)v->v.str.ptr[j];
        } else if (v->type == GGUF_ARRAY && v->v.arr.elem_type == GGUF_STRING) {
            for (uint64_t j = 0; j < v->v.arr.count; j++) {
                gguf_str s = gguf_array_str(&v->v.arr, j);
                assert_true((const uint8_t *)s.ptr + s.len <= hi);
                for (uint64_t k = 0; k < s.len; k++) sum += (unsigned char)s.ptr[k];
            }
        } else if (v->type == GGUF_ARRAY && v->v.arr.elem_type == GGUF_F32) {
            for (uint64_t j = 0; j < v->v.arr.count; j++) sum += gguf_array_f32(&v->v.arr, j) > 0;
        }
    }
    for (uint64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor_info *t = gguf_tensor_at(f, i);
        assert_ptr_equal(gguf_find_tensor(f, t->name), t);
        assert_true(t->data >= lo && t->data + t->nbytes <= hi);
        for (uint64_t j = 0; j < t->nbytes; j++) sum += t->data[j];
    }
    return sum;
}

/* Random mutations of the base file: whatever the outcome, no crash and no
 * read out of bounds; failures carry a message. */
static void test_random_mutations(void **state) {
    (void)state;
    layout l;
    opts o = {.nest_depth = 3};
    bt_buf b = build(&o, &l);
    bt_rng rng;
    bt_rng_seed(&rng, 1234);
    static const uint64_t interesting[] = {
        0, 1, 2, 31, 32, 33, 127, 128, 255, 0xffffffffu, 1ull << 32, P63 - 1, P63, UINT64_MAX};
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t *m = malloc(b.n);
        assert_non_null(m);
        memcpy(m, b.p, b.n);
        int edits = bt_rng_int(&rng, 1, 4);
        for (int k = 0; k < edits; k++) {
            size_t at = (size_t)bt_rng_int(&rng, 0, (int)b.n - 1);
            if (bt_rng_int(&rng, 0, 2) == 0 && at + 8 <= b.n) {
                uint64_t v = interesting[bt_rng_int(&rng, 0, 13)];
                for (int i = 0; i < 8; i++) m[at + i] = (uint8_t)(v >> (8 * i));
            } else {
                m[at] = (uint8_t)bt_rng_u64(&rng);
            }
        }
        size_t n = bt_rng_int(&rng, 0, 9) == 0 ? (size_t)bt_rng_int(&rng, 0, (int)b.n) : b.n;
        gguf_file *f = NULL;
        bn_err e = {0};
        bn_status st = gguf_open_memory(m, n, &f, &e);
        if (st == BN_OK) {
            accepted++;
            (void)touch_all(f);
            gguf_close(f);
        } else {
            assert_null(f);
            assert_int_equal(e.code, st);
            assert_true(e.msg[0] != '\0');
        }
        free(m);
    }
    print_message("random mutations: %d of 20000 still valid\n", accepted);
    free(b.p);
}

/* A missing hyperparameter and wrong conversions, through the getters. */
static void test_getters(void **state) {
    (void)state;
    layout l;
    bt_buf b = build_default(&l);
    gguf_file *f = NULL;
    bn_err e = {0};
    assert_int_equal(gguf_open_memory(b.p, b.n, &f, &e), BN_OK);
    uint64_t u = 5;
    double d;
    bool flag;
    gguf_str s;
    gguf_array a;
    assert_int_equal(gguf_get_u64(f, "llama.block_count", &u, &e), BN_ERR_FORMAT);
    assert_int_equal(e.code, BN_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "llama.block_count"));
    assert_int_equal(u, 5);
    assert_int_equal(gguf_get_u64(f, "general.architecture", &u, &e), BN_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "general.architecture"));
    assert_int_equal(gguf_get_f64(f, "general.alignment", &d, &e), BN_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "general.alignment"));
    assert_int_equal(gguf_get_bool(f, "general.alignment", &flag, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_str(f, "tokenizer.ggml.tokens", &s, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_arr(f, "general.architecture", &a, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_u64_opt(f, "general.architecture", &u, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_u64(f, "general.alignment", &u, &e), BN_OK);
    assert_int_equal(u, 32);
    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens", &a, &e), BN_OK);
    assert_true(gguf_str_eq(gguf_array_str(&a, 2), "def"));
    gguf_close(f);
    free(b.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_is_valid), cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_header),        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_alignment),     cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_duplicates),    cmocka_unit_test(test_tensor_infos),
        cmocka_unit_test(test_open_path),     cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_getters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
