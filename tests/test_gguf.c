/* test_gguf.c - the GGUF reader and writer: a round trip of every value type
 * and a few tensor types, a v2 file built byte by byte, the typed getters,
 * writer misuse, and the shared llama-spm vocabulary file. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "types.h"

/* ---- a little-endian byte builder for hand-made files ---- */

static void put_pad(bt_buf *b, size_t align) {
    while (b->n % align) bt_put_u8(b, 0);
}

static bool str_is(gguf_str s, const char *c, size_t n) {
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

/* ---- round trip ---- */

#define UTF8_TEXT "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe7\xbb\x99 \xf0\x9f\x98\x80"

static const uint8_t k_u8s[] = {0, 1, 200, 255};
static const int8_t k_i8s[] = {-128, -1, 0, 127};
static const uint16_t k_u16s[] = {0, 1, 65535};
static const int16_t k_i16s[] = {-32768, -2, 32767};
static const uint32_t k_u32s[] = {0, 7, 4294967295u};
static const int32_t k_i32s[] = {INT32_MIN, -5, 0, INT32_MAX};
static const float k_f32s[] = {0.0f, -1.5f, 3.25e-7f, 1e30f};
static const uint8_t k_bools[] = {1, 0, 1};
static const uint64_t k_u64s[] = {0, UINT64_MAX, 1ull << 40};
static const int64_t k_i64s[] = {INT64_MIN, -3, INT64_MAX};
static const double k_f64s[] = {0.1, -2.0, 1e300};
static const char *const k_strs[] = {"<unk>", "", UTF8_TEXT, "last"};
static const char k_nul_str[] = {'a', '\0', 'b'};

typedef struct tdesc {
    const char *name;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[4];
} tdesc;

static const tdesc k_tensors[] = {
    {"token_embd.weight", BN_TYPE_F16, 2, {8, 3, 1, 1}},
    {"blk.0.attn_q.weight", BN_TYPE_TQ2_0, 2, {256, 2, 1, 1}},
    {"blk.0.ffn_up.weight", BN_TYPE_I2_S, 2, {128, 3, 1, 1}},
    {"output_norm.weight", BN_TYPE_F32, 1, {5, 1, 1, 1}},
    {"blk.0.x.weight", BN_TYPE_F32, 4, {2, 3, 1, 2}},
};
#define N_TENSORS (sizeof k_tensors / sizeof k_tensors[0])
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Deterministic bytes for tensor i. */
static uint8_t *tensor_bytes(size_t i, size_t n) {
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t j = 0; j < n; j++) p[j] = (uint8_t)(j * 31 + i * 17 + (j >> 8));
    return p;
}

static size_t expected_nbytes(const tdesc *t) {
    size_t n;
    bn_err e = {0};
    assert_int_equal(bn_tensor_bytes(t->type, t->ne, &n, &e), BN_OK);
    return n;
}

static void write_roundtrip_file(const char *path, uint32_t alignment) {
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    bn_err e = {0};
    gguf_writer_set_str(w, "general.architecture", "bitnet");
    uint8_t u8 = 250;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    double f64 = -1.25e-200;
    int64_t i64 = INT64_MIN + 5;
    gguf_writer_set_scalar(w, "t.u8", GGUF_U8, &u8);
    gguf_writer_set_scalar(w, "t.i8", GGUF_I8, &i8);
    gguf_writer_set_scalar(w, "t.u16", GGUF_U16, &u16);
    gguf_writer_set_scalar(w, "t.i16", GGUF_I16, &i16);
    gguf_writer_set_u32(w, "t.u32", 4000000000u);
    gguf_writer_set_i32(w, "t.i32", -2000000000);
    gguf_writer_set_f32(w, "t.f32", 0.15625f);
    gguf_writer_set_bool(w, "t.bool", true);
    gguf_writer_set_bool(w, "t.bool_false", false);
    gguf_writer_set_str(w, "t.str", UTF8_TEXT);
    gguf_writer_set_str(w, "t.empty", "");
    gguf_writer_set_u64(w, "t.u64", UINT64_MAX - 1);
    gguf_writer_set_scalar(w, "t.i64", GGUF_I64, &i64);
    gguf_writer_set_scalar(w, "t.f64", GGUF_F64, &f64);
    gguf_writer_set_arr(w, "a.u8", GGUF_U8, k_u8s, COUNT(k_u8s));
    gguf_writer_set_arr(w, "a.i8", GGUF_I8, k_i8s, COUNT(k_i8s));
    gguf_writer_set_arr(w, "a.u16", GGUF_U16, k_u16s, COUNT(k_u16s));
    gguf_writer_set_arr(w, "a.i16", GGUF_I16, k_i16s, COUNT(k_i16s));
    gguf_writer_set_arr(w, "a.u32", GGUF_U32, k_u32s, COUNT(k_u32s));
    gguf_writer_set_arr(w, "a.i32", GGUF_I32, k_i32s, COUNT(k_i32s));
    gguf_writer_set_arr(w, "a.f32", GGUF_F32, k_f32s, COUNT(k_f32s));
    gguf_writer_set_arr(w, "a.bool", GGUF_BOOL, k_bools, COUNT(k_bools));
    gguf_writer_set_arr(w, "a.u64", GGUF_U64, k_u64s, COUNT(k_u64s));
    gguf_writer_set_arr(w, "a.i64", GGUF_I64, k_i64s, COUNT(k_i64s));
    gguf_writer_set_arr(w, "a.f64", GGUF_F64, k_f64s, COUNT(k_f64s));
    gguf_writer_set_arr(w, "a.empty", GGUF_U32, NULL, 0);
    gguf_writer_set_arr_str(w, "a.str", k_strs, COUNT(k_strs));
    const char *nul_strs[] = {k_nul_str, "xy"};
    const uint64_t nul_lens[] = {3, 2};
    gguf_writer_set_arr_strn(w, "a.strn", nul_strs, nul_lens, 2);
    /* setting a key again replaces its value in place */
    gguf_writer_set_u32(w, "t.replaced", 1);
    gguf_writer_set_u32(w, "t.replaced", 2);
    if (alignment) gguf_writer_set_u32(w, "general.alignment", alignment);
    for (size_t i = 0; i < N_TENSORS; i++) {
        const tdesc *t = &k_tensors[i];
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, &e), BN_OK);
    }
    assert_int_equal(gguf_writer_begin(w, path, &e), BN_OK);
    for (size_t i = 0; i < N_TENSORS; i++) {
        size_t n = expected_nbytes(&k_tensors[i]);
        uint8_t *d = tensor_bytes(i, n);
        assert_int_equal(gguf_writer_write_tensor(w, d, n, &e), BN_OK);
        free(d);
    }
    assert_int_equal(gguf_writer_finish(w, &e), BN_OK);
    gguf_writer_free(w);
}

static const gguf_kv *kv_of(const gguf_file *f, const char *key, gguf_vtype type) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    assert_non_null(kv);
    assert_true(gguf_str_eq(kv->key, key));
    assert_int_equal(kv->value.type, type);
    return kv;
}

static const gguf_array *arr_of(const gguf_file *f, const char *key, gguf_vtype et, uint64_t n) {
    const gguf_kv *kv = kv_of(f, key, GGUF_ARRAY);
    assert_int_equal(kv->value.v.arr.elem_type, et);
    assert_int_equal(kv->value.v.arr.count, n);
    return &kv->value.v.arr;
}

static void check_roundtrip_file(const char *path, uint32_t alignment) {
    gguf_file *f = NULL;
    bn_err e = {0};
    bn_status st = gguf_open(path, &f, &e);
    if (st) fail_msg("gguf_open: %s", e.msg);
    assert_int_equal(gguf_version(f), 3);
    uint32_t align = alignment ? alignment : GGUF_DEFAULT_ALIGNMENT;
    assert_int_equal(gguf_alignment(f), align);
    assert_int_equal(gguf_data_offset(f) % align, 0);
    assert_int_equal(gguf_kv_count(f), 30 + (alignment ? 1 : 0));
    /* order of insertion is kept; the replaced key stays where it was first set */
    assert_true(gguf_str_eq(gguf_kv_at(f, 0)->key, "general.architecture"));
    assert_true(gguf_str_eq(gguf_kv_at(f, 1)->key, "t.u8"));
    assert_true(gguf_str_eq(gguf_kv_at(f, 29)->key, "t.replaced"));
    assert_null(gguf_kv_at(f, 1000));

    assert_int_equal(kv_of(f, "t.u8", GGUF_U8)->value.v.u, 250);
    assert_int_equal(kv_of(f, "t.i8", GGUF_I8)->value.v.i, -100);
    assert_int_equal(kv_of(f, "t.u16", GGUF_U16)->value.v.u, 60000);
    assert_int_equal(kv_of(f, "t.i16", GGUF_I16)->value.v.i, -30000);
    assert_int_equal(kv_of(f, "t.u32", GGUF_U32)->value.v.u, 4000000000u);
    assert_int_equal(kv_of(f, "t.i32", GGUF_I32)->value.v.i, -2000000000);
    assert_true(kv_of(f, "t.f32", GGUF_F32)->value.v.f == 0.15625);
    assert_int_equal(kv_of(f, "t.bool", GGUF_BOOL)->value.v.u, 1);
    assert_int_equal(kv_of(f, "t.bool_false", GGUF_BOOL)->value.v.u, 0);
    assert_true(kv_of(f, "t.u64", GGUF_U64)->value.v.u == UINT64_MAX - 1);
    assert_true(kv_of(f, "t.i64", GGUF_I64)->value.v.i == INT64_MIN + 5);
    assert_true(kv_of(f, "t.f64", GGUF_F64)->value.v.f == -1.25e-200);
    assert_int_equal(kv_of(f, "t.replaced", GGUF_U32)->value.v.u, 2);
    gguf_str s = kv_of(f, "t.str", GGUF_STRING)->value.v.str;
    assert_true(str_is(s, UTF8_TEXT, strlen(UTF8_TEXT)));
    assert_int_equal(kv_of(f, "t.empty", GGUF_STRING)->value.v.str.len, 0);
    assert_true(gguf_str_eq(kv_of(f, "general.architecture", GGUF_STRING)->value.v.str, "bitnet"));

    const gguf_array *a;
    a = arr_of(f, "a.u8", GGUF_U8, COUNT(k_u8s));
    for (size_t i = 0; i < COUNT(k_u8s); i++) assert_int_equal(gguf_array_int(a, i), k_u8s[i]);
    a = arr_of(f, "a.i8", GGUF_I8, COUNT(k_i8s));
    for (size_t i = 0; i < COUNT(k_i8s); i++) assert_int_equal(gguf_array_int(a, i), k_i8s[i]);
    a = arr_of(f, "a.u16", GGUF_U16, COUNT(k_u16s));
    for (size_t i = 0; i < COUNT(k_u16s); i++) assert_int_equal(gguf_array_int(a, i), k_u16s[i]);
    a = arr_of(f, "a.i16", GGUF_I16, COUNT(k_i16s));
    for (size_t i = 0; i < COUNT(k_i16s); i++) assert_int_equal(gguf_array_int(a, i), k_i16s[i]);
    a = arr_of(f, "a.u32", GGUF_U32, COUNT(k_u32s));
    for (size_t i = 0; i < COUNT(k_u32s); i++) assert_int_equal(gguf_array_int(a, i), k_u32s[i]);
    a = arr_of(f, "a.i32", GGUF_I32, COUNT(k_i32s));
    for (size_t i = 0; i < COUNT(k_i32s); i++) {
        assert_int_equal(gguf_array_int(a, i), k_i32s[i]);
        assert_int_equal(gguf_array_i32(a, i), k_i32s[i]);
    }
    a = arr_of(f, "a.f32", GGUF_F32, COUNT(k_f32s));
    for (size_t i = 0; i < COUNT(k_f32s); i++) assert_true(gguf_array_f32(a, i) == k_f32s[i]);
    a = arr_of(f, "a.bool", GGUF_BOOL, COUNT(k_bools));
    for (size_t i = 0; i < COUNT(k_bools); i++) assert_int_equal(gguf_array_int(a, i), k_bools[i]);
    a = arr_of(f, "a.u64", GGUF_U64, COUNT(k_u64s));
    for (size_t i = 0; i < COUNT(k_u64s); i++) {
        uint64_t v;
        memcpy(&v, a->data + 8 * i, 8);
        assert_true(v == k_u64s[i]);
    }
    assert_int_equal(gguf_array_int(a, 2), 1ll << 40);
    a = arr_of(f, "a.i64", GGUF_I64, COUNT(k_i64s));
    for (size_t i = 0; i < COUNT(k_i64s); i++) assert_true(gguf_array_int(a, i) == k_i64s[i]);
    a = arr_of(f, "a.f64", GGUF_F64, COUNT(k_f64s));
    for (size_t i = 0; i < COUNT(k_f64s); i++) {
        double v;
        memcpy(&v, a->data + 8 * i, 8);
        assert_true(v == k_f64s[i]);
    }
    arr_of(f, "a.empty", GGUF_U32, 0);
    a = arr_of(f, "a.str", GGUF_STRING, COUNT(k_strs));
    for (size_t i = 0; i < COUNT(k_strs); i++)
        assert_true(gguf_str_eq(gguf_array_str(a, i), k_strs[i]));
    a = arr_of(f, "a.strn", GGUF_STRING, 2);
    assert_true(str_is(gguf_array_str(a, 0), k_nul_str, 3));
    assert_true(str_is(gguf_array_str(a, 1), "xy", 2));

    assert_int_equal(gguf_tensor_count(f), N_TENSORS);
    uint64_t prev_end = 0;
    for (size_t i = 0; i < N_TENSORS; i++) {
        const tdesc *d = &k_tensors[i];
        const gguf_tensor_info *t = gguf_tensor_at(f, i);
        assert_non_null(t);
        assert_ptr_equal(gguf_find_tensor(f, d->name), t);
        assert_string_equal(t->name, d->name);
        assert_int_equal(t->n_dims, d->n_dims);
        for (int k = 0; k < 4; k++) assert_int_equal(t->ne[k], d->ne[k]);
        assert_int_equal(t->type, d->type);
        size_t n = expected_nbytes(d);
        assert_int_equal(t->nbytes, n);
        assert_int_equal(t->offset % align, 0);
        assert_true(t->offset >= prev_end);
        prev_end = t->offset + t->nbytes;
        assert_ptr_equal(t->data, gguf_file_data(f) + gguf_data_offset(f) + t->offset);
        uint8_t *want = tensor_bytes(i, n);
        assert_memory_equal(t->data, want, n);
        free(want);
    }
    assert_null(gguf_tensor_at(f, N_TENSORS));
    assert_null(gguf_find_tensor(f, "nope"));
    assert_null(gguf_find_kv(f, "nope"));
    /* the writer pads the last tensor too: the file ends on the alignment */
    assert_int_equal(gguf_file_size(f) % align, 0);
    gguf_close(f);
}

static void test_roundtrip(void **state) {
    (void)state;
    const char *path = bt_tmp_path("gguf_roundtrip.gguf");
    write_roundtrip_file(path, 0);
    check_roundtrip_file(path, 0);
}

static void test_roundtrip_alignment(void **state) {
    (void)state;
    const char *path = bt_tmp_path("gguf_roundtrip_a64.gguf");
    write_roundtrip_file(path, 64);
    check_roundtrip_file(path, 64);
    path = bt_tmp_path("gguf_roundtrip_a1.gguf");
    write_roundtrip_file(path, 1);
    check_roundtrip_file(path, 1);
}

/* The typed getters and their conversions. */
static void test_getters(void **state) {
    (void)state;
    const char *path = bt_tmp_path("gguf_getters.gguf");
    write_roundtrip_file(path, 0);
    gguf_file *f = NULL;
    bn_err e = {0};
    assert_int_equal(gguf_open(path, &f, &e), BN_OK);
    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    gguf_str s;
    gguf_array a;
    assert_int_equal(gguf_get_u64(f, "t.u8", &u, &e), BN_OK);
    assert_int_equal(u, 250);
    assert_int_equal(gguf_get_u64(f, "t.u32", &u, &e), BN_OK);
    assert_int_equal(u, 4000000000u);
    assert_int_equal(gguf_get_i64(f, "t.u16", &i, &e), BN_OK);
    assert_int_equal(i, 60000);
    assert_int_equal(gguf_get_i64(f, "t.i8", &i, &e), BN_OK);
    assert_int_equal(i, -100);
    assert_int_equal(gguf_get_u64(f, "t.i8", &u, &e), BN_ERR_FORMAT); /* negative */
    assert_non_null(strstr(e.msg, "t.i8"));
    assert_int_equal(gguf_get_i64(f, "t.u64", &i, &e), BN_ERR_FORMAT); /* too large */
    assert_non_null(strstr(e.msg, "t.u64"));
    assert_int_equal(gguf_get_f64(f, "t.f32", &d, &e), BN_OK);
    assert_true(d == 0.15625);
    assert_int_equal(gguf_get_f64(f, "t.f64", &d, &e), BN_OK);
    assert_true(d == -1.25e-200);
    assert_int_equal(gguf_get_f64(f, "t.u32", &d, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_bool(f, "t.bool", &b, &e), BN_OK);
    assert_true(b);
    assert_int_equal(gguf_get_bool(f, "t.u8", &b, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_u64(f, "t.bool", &u, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_u64(f, "t.f32", &u, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_u64(f, "t.str", &u, &e), BN_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "t.str"));
    assert_int_equal(gguf_get_str(f, "t.str", &s, &e), BN_OK);
    assert_true(gguf_str_eq(s, UTF8_TEXT));
    assert_int_equal(gguf_get_str(f, "a.str", &s, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_arr(f, "a.str", &a, &e), BN_OK);
    assert_int_equal(a.count, COUNT(k_strs));
    assert_int_equal(gguf_get_arr(f, "t.str", &a, &e), BN_ERR_FORMAT);

    /* absent keys: an error naming the key; the _opt forms leave the output alone */
    memset(&e, 0, sizeof e);
    assert_int_equal(gguf_get_u64(f, "bitnet.block_count", &u, &e), BN_ERR_FORMAT);
    assert_int_equal(e.code, BN_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "bitnet.block_count"));
    assert_int_equal(gguf_get_str(f, "x.missing", &s, &e), BN_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "x.missing"));
    u = 77;
    d = 1.5;
    b = true;
    assert_int_equal(gguf_get_u64_opt(f, "x.missing", &u, &e), BN_OK);
    assert_int_equal(gguf_get_f64_opt(f, "x.missing", &d, &e), BN_OK);
    assert_int_equal(gguf_get_bool_opt(f, "x.missing", &b, &e), BN_OK);
    assert_int_equal(u, 77);
    assert_true(d == 1.5 && b);
    assert_int_equal(gguf_get_u64_opt(f, "t.u16", &u, &e), BN_OK);
    assert_int_equal(u, 60000);
    assert_int_equal(gguf_get_u64_opt(f, "t.str", &u, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_f64_opt(f, "t.u8", &d, &e), BN_ERR_FORMAT);
    assert_int_equal(gguf_get_bool_opt(f, "t.bool_false", &b, &e), BN_OK);
    assert_false(b);
    gguf_close(f);
}

/* A version 2 file built byte by byte, with an array of arrays and alignment 16. */
static void test_handmade_v2(void **state) {
    (void)state;
    bt_buf b = {0};
    bt_put_bytes(&b, "GGUF", 4);
    bt_put_u32(&b, 2);
    bt_put_u64(&b, 2); /* tensors */
    bt_put_u64(&b, 5); /* kvs */
    bt_put_str(&b, "general.architecture");
    bt_put_u32(&b, GGUF_STRING);
    bt_put_str(&b, "llama");
    bt_put_str(&b, "general.alignment");
    bt_put_u32(&b, GGUF_U32);
    bt_put_u32(&b, 16);
    bt_put_str(&b, "test.nested"); /* [[1, 2, 3], ["a", "bc"], [[]]] */
    bt_put_u32(&b, GGUF_ARRAY);
    bt_put_u32(&b, GGUF_ARRAY);
    bt_put_u64(&b, 3);
    bt_put_u32(&b, GGUF_U16);
    bt_put_u64(&b, 3);
    for (int i = 1; i <= 3; i++) bt_put_u8(&b, (uint8_t)i), bt_put_u8(&b, 0);
    bt_put_u32(&b, GGUF_STRING);
    bt_put_u64(&b, 2);
    bt_put_str(&b, "a");
    bt_put_str(&b, "bc");
    bt_put_u32(&b, GGUF_ARRAY);
    bt_put_u64(&b, 1);
    bt_put_u32(&b, GGUF_F64);
    bt_put_u64(&b, 0);
    bt_put_str(&b, "test.after");
    bt_put_u32(&b, GGUF_I32);
    bt_put_u32(&b, (uint32_t)-42);
    bt_put_str(&b, "test.flag");
    bt_put_u32(&b, GGUF_BOOL);
    bt_put_u8(&b, 2); /* any nonzero byte reads as true */
    bt_put_str(&b, "w");
    bt_put_u32(&b, 2);
    bt_put_u64(&b, 2);
    bt_put_u64(&b, 2);
    bt_put_u32(&b, BN_TYPE_F32);
    bt_put_u64(&b, 0);
    bt_put_str(&b, "v");
    bt_put_u32(&b, 1);
    bt_put_u64(&b, 3);
    bt_put_u32(&b, BN_TYPE_F16);
    bt_put_u64(&b, 16);
    size_t info_end = b.n;
    put_pad(&b, 16);
    size_t data_start = b.n;
    float wv[4] = {1.0f, -2.0f, 0.5f, 4.0f};
    for (int i = 0; i < 4; i++) {
        uint32_t bits;
        memcpy(&bits, &wv[i], 4);
        bt_put_u32(&b, bits);
    }
    bt_put_u8(&b, 0x00), bt_put_u8(&b, 0x3c); /* f16 1.0 */
    bt_put_u8(&b, 0x00), bt_put_u8(&b, 0xc0); /* f16 -2.0 */
    bt_put_u8(&b, 0x00), bt_put_u8(&b, 0x38); /* f16 0.5 */

    gguf_file *f = NULL;
    bn_err e = {0};
    bn_status st = gguf_open_memory(b.p, b.n, &f, &e);
    if (st) fail_msg("gguf_open_memory: %s", e.msg);
    assert_int_equal(gguf_version(f), 2);
    assert_int_equal(gguf_alignment(f), 16);
    assert_true(info_end % 16 != 0); /* padding is really exercised */
    assert_int_equal(gguf_data_offset(f), data_start);
    assert_int_equal(gguf_file_size(f), b.n);
    assert_ptr_equal(gguf_file_data(f), b.p);
    assert_int_equal(gguf_kv_count(f), 5);
    gguf_str s;
    assert_int_equal(gguf_get_str(f, "general.architecture", &s, &e), BN_OK);
    assert_true(gguf_str_eq(s, "llama"));
    const gguf_array *a = arr_of(f, "test.nested", GGUF_ARRAY, 3);
    assert_null(a->str_offs);
    int64_t i64;
    assert_int_equal(gguf_get_i64(f, "test.after", &i64, &e), BN_OK);
    assert_int_equal(i64, -42);
    bool flag = false;
    assert_int_equal(gguf_get_bool(f, "test.flag", &flag, &e), BN_OK);
    assert_true(flag);
    assert_int_equal(gguf_kv_at(f, 3)->file_offset, 24 + 8 + 20 + 4 + 8 + 5 + 8 + 17 + 4 + 4 + 8 +
                                                        11 + 4 + 4 + 8 + (4 + 8 + 6) +
                                                        (4 + 8 + 9 + 10) + (4 + 8 + 4 + 8));
    assert_int_equal(gguf_tensor_count(f), 2);
    const gguf_tensor_info *t = gguf_find_tensor(f, "w");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 2);
    assert_int_equal(t->ne[1], 2);
    assert_int_equal(t->ne[2], 1);
    assert_int_equal(t->nbytes, 16);
    assert_ptr_equal(t->data, b.p + data_start);
    float x;
    memcpy(&x, t->data + 12, 4);
    assert_true(x == 4.0f);
    t = gguf_find_tensor(f, "v");
    assert_non_null(t);
    assert_int_equal(t->type, BN_TYPE_F16);
    assert_int_equal(t->nbytes, 6);
    assert_int_equal(t->offset, 16);
    assert_true(bn_f16_to_f32((uint16_t)(t->data[2] | t->data[3] << 8)) == -2.0f);
    gguf_close(f);
    free(b.p);
}

/* The OOM test below asks for 2^60 bytes; under ASan that must return NULL, not abort. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
    return "allocator_may_return_null=1";
}

/* Allocation failures in the void setters are reported by gguf_writer_begin. */
static void test_writer_oom(void **state) {
    (void)state;
    bn_err e = {0};
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    uint8_t small[16] = {0};
    gguf_writer_set_u32(w, "before", 1);
    gguf_writer_set_arr(w, "huge", GGUF_U8, small, 1ull << 60); /* malloc fails; never read */
    gguf_writer_set_u32(w, "after", 2);
    assert_int_equal(gguf_writer_begin(w, bt_tmp_path("gguf_oom.gguf"), &e), BN_ERR_OOM);
    assert_non_null(strstr(e.msg, "huge"));
    gguf_writer_free(w);
    /* a NULL writer (gguf_writer_new failed) is accepted everywhere */
    gguf_writer_set_u32(NULL, "k", 1);
    gguf_writer_set_str(NULL, "k", "v");
    int64_t ne[4] = {4, 1, 1, 1};
    assert_int_equal(gguf_writer_add_tensor(NULL, "t", BN_TYPE_F32, 1, ne, &e), BN_ERR_OOM);
    assert_int_equal(gguf_writer_begin(NULL, bt_tmp_path("gguf_oom.gguf"), &e), BN_ERR_OOM);
    assert_int_not_equal(gguf_writer_write_tensor(NULL, ne, 16, &e), BN_OK);
    assert_int_not_equal(gguf_writer_finish(NULL, &e), BN_OK);
    gguf_writer_free(NULL);
}

/* Writer misuse: every mistake is an error, never a crash or a broken file. */
static void test_writer_errors(void **state) {
    (void)state;
    const char *path = bt_tmp_path("gguf_writer_err.gguf");
    bn_err e = {0};
    int64_t ne[4] = {32, 1, 1, 1};
    struct stat st;

    /* a bad value recorded by a void setter is reported by begin */
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_arr(w, "bad", GGUF_STRING, "x", 1);
    assert_int_equal(gguf_writer_begin(w, path, &e), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "bad"));
    gguf_writer_free(w);

    w = gguf_writer_new();
    gguf_writer_set_scalar(w, "k", GGUF_ARRAY, &ne);
    assert_int_equal(gguf_writer_begin(w, path, &e), BN_ERR_INVALID_ARG);
    gguf_writer_free(w);

    /* alignment must be a power of two, as a u32 */
    uint32_t bad_align[] = {0, 3, 48};
    for (size_t i = 0; i < COUNT(bad_align); i++) {
        w = gguf_writer_new();
        gguf_writer_set_u32(w, "general.alignment", bad_align[i]);
        assert_int_equal(gguf_writer_begin(w, path, &e), BN_ERR_INVALID_ARG);
        assert_non_null(strstr(e.msg, "general.alignment"));
        gguf_writer_free(w);
    }
    w = gguf_writer_new();
    gguf_writer_set_u64(w, "general.alignment", 32);
    assert_int_equal(gguf_writer_begin(w, path, &e), BN_ERR_INVALID_ARG);
    gguf_writer_free(w);

    /* bad tensors */
    w = gguf_writer_new();
    assert_int_equal(gguf_writer_add_tensor(w, "t", 37, 1, ne, &e), BN_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "37"));
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_I32, 1, ne, &e), BN_ERR_UNSUPPORTED);
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_F32, 0, ne, &e), BN_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_F32, 5, ne, &e), BN_ERR_INVALID_ARG);
    int64_t zero[4] = {0, 1, 1, 1};
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_F32, 1, zero, &e), BN_ERR_INVALID_ARG);
    int64_t odd[4] = {100, 1, 1, 1};
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_TQ2_0, 1, odd, &e), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "'t'"));
    int64_t huge[4] = {1ll << 62, 1ll << 62, 1, 1};
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_F32, 2, huge, &e), BN_ERR_INVALID_ARG);
    char long_name[200];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(gguf_writer_add_tensor(w, long_name, BN_TYPE_F32, 1, ne, &e),
                     BN_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_F32, 1, ne, &e), BN_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_F32, 1, ne, &e), BN_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_add_tensor(w, "u", BN_TYPE_F32, 1, ne, &e), BN_OK);

    /* a wrong size fails and removes the partial file */
    float data[32] = {0};
    assert_int_equal(gguf_writer_begin(w, path, &e), BN_OK);
    assert_int_equal(gguf_writer_begin(w, path, &e), BN_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_write_tensor(w, data, 64, &e), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "'t'"));
    assert_int_not_equal(stat(path, &st), 0);
    assert_int_equal(gguf_writer_write_tensor(w, data, 128, &e), BN_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_finish(w, &e), BN_ERR_INVALID_ARG);
    gguf_writer_free(w);

    /* finishing early fails; freeing an unfinished writer removes its file */
    w = gguf_writer_new();
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_F32, 1, ne, &e), BN_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "u", BN_TYPE_F32, 1, ne, &e), BN_OK);
    assert_int_equal(gguf_writer_begin(w, path, &e), BN_OK);
    assert_int_equal(gguf_writer_write_tensor(w, data, 128, &e), BN_OK);
    assert_int_equal(gguf_writer_finish(w, &e), BN_ERR_INVALID_ARG);
    assert_int_not_equal(stat(path, &st), 0);
    gguf_writer_free(w);
    w = gguf_writer_new();
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_F32, 1, ne, &e), BN_OK);
    assert_int_equal(gguf_writer_begin(w, path, &e), BN_OK);
    assert_int_equal(stat(path, &st), 0);
    gguf_writer_free(w);
    assert_int_not_equal(stat(path, &st), 0);

    /* too many tensors; keys after begin */
    w = gguf_writer_new();
    assert_int_equal(gguf_writer_add_tensor(w, "t", BN_TYPE_F32, 1, ne, &e), BN_OK);
    assert_int_equal(gguf_writer_begin(w, path, &e), BN_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "v", BN_TYPE_F32, 1, ne, &e), BN_ERR_INVALID_ARG);
    assert_int_equal(gguf_writer_write_tensor(w, data, 128, &e), BN_OK);
    assert_int_equal(gguf_writer_write_tensor(w, data, 128, &e), BN_ERR_INVALID_ARG);
    gguf_writer_free(w);

    /* an unwritable path */
    w = gguf_writer_new();
    assert_int_equal(gguf_writer_begin(w, "/nonexistent-dir/x/y.gguf", &e), BN_ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent-dir/x/y.gguf"));
    gguf_writer_free(w);

    /* a metadata-only file: header, metadata, padding */
    w = gguf_writer_new();
    gguf_writer_set_str(w, "general.name", "empty");
    assert_int_equal(gguf_writer_begin(w, path, &e), BN_OK);
    assert_int_equal(gguf_writer_finish(w, &e), BN_OK);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(path, &f, &e), BN_OK);
    assert_int_equal(gguf_tensor_count(f), 0);
    assert_int_equal(gguf_kv_count(f), 1);
    assert_int_equal(gguf_file_size(f), 64); /* 24 + 8 + 12 + 4 + 8 + 5 = 61, padded to 64 */
    gguf_close(f);

    /* gguf_open on missing files and non-GGUF files names the path */
    assert_int_not_equal(gguf_open(bt_tmp_path("does-not-exist.gguf"), &f, &e), BN_OK);
    assert_null(f);
    assert_non_null(strstr(e.msg, "does-not-exist.gguf"));
    const char *junk = bt_tmp_path("gguf_junk.gguf");
    assert_int_equal(bt_write_file(junk, "GGUFjunk-not-a-file-at-all-xxxxxxxxxxx", 38), 0);
    assert_int_equal(gguf_open(junk, &f, &e), BN_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "gguf_junk.gguf"));
    assert_null(f);
}

/* The llama SentencePiece vocabulary shared with llama.cpp's tests. Expected
 * values were read from the file with a separate Python/struct script. */
static void test_vocab_llama_spm(void **state) {
    (void)state;
    const char *path = bt_shared_path("tokenizers/ggml-vocab-llama-spm.gguf");
    if (!path) {
        /* cmocka's skip() rather than bt_skip(): the other tests of this program still count */
        print_message("SKIP: shared data tokenizers/ggml-vocab-llama-spm.gguf is absent\n");
        skip();
    }
    gguf_file *f = NULL;
    bn_err e = {0};
    bn_status st = gguf_open(path, &f, &e);
    if (st) fail_msg("gguf_open: %s", e.msg);
    assert_int_equal(gguf_version(f), 3);
    assert_int_equal(gguf_kv_count(f), 22);
    assert_int_equal(gguf_tensor_count(f), 0);
    assert_int_equal(gguf_file_size(f), 723869);
    assert_int_equal(gguf_alignment(f), 32);

    gguf_str s;
    assert_int_equal(gguf_get_str(f, "tokenizer.ggml.model", &s, &e), BN_OK);
    assert_true(gguf_str_eq(s, "llama"));
    assert_int_equal(gguf_get_str(f, "general.architecture", &s, &e), BN_OK);
    assert_true(gguf_str_eq(s, "llama"));
    assert_int_equal(gguf_get_str(f, "tokenizer.ggml.pre", &s, &e), BN_OK);
    assert_true(gguf_str_eq(s, "default"));

    const gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.tokens");
    assert_non_null(kv);
    assert_int_equal(kv->file_offset, 596);
    gguf_array a;
    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens", &a, &e), BN_OK);
    assert_int_equal(a.elem_type, GGUF_STRING);
    assert_int_equal(a.count, 32000);
    assert_true(gguf_str_eq(gguf_array_str(&a, 0), "<unk>"));
    assert_true(gguf_str_eq(gguf_array_str(&a, 1), "<s>"));
    assert_true(gguf_str_eq(gguf_array_str(&a, 2), "</s>"));
    assert_true(gguf_str_eq(gguf_array_str(&a, 31999), "\xe7\xbb\x99"));

    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.scores", &a, &e), BN_OK);
    assert_int_equal(a.elem_type, GGUF_F32);
    assert_int_equal(a.count, 32000);
    assert_true(gguf_array_f32(&a, 0) == 0.0f);
    assert_true(gguf_array_f32(&a, 31999) == -31740.0f);
    assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.token_type", &a, &e), BN_OK);
    assert_int_equal(a.elem_type, GGUF_I32);
    assert_int_equal(a.count, 32000);
    assert_int_equal(gguf_array_i32(&a, 0), 2);
    assert_int_equal(gguf_array_i32(&a, 1), 3);
    assert_int_equal(gguf_array_i32(&a, 31999), 1);

    uint64_t u;
    assert_int_equal(gguf_get_u64(f, "llama.vocab_size", &u, &e), BN_OK);
    assert_int_equal(u, 32000);
    assert_int_equal(gguf_get_u64(f, "tokenizer.ggml.bos_token_id", &u, &e), BN_OK);
    assert_int_equal(u, 1);
    assert_int_equal(gguf_get_u64(f, "tokenizer.ggml.eos_token_id", &u, &e), BN_OK);
    assert_int_equal(u, 2);
    assert_int_equal(gguf_get_u64(f, "llama.context_length", &u, &e), BN_OK);
    assert_int_equal(u, 4096);
    double eps;
    assert_int_equal(gguf_get_f64(f, "llama.attention.layer_norm_rms_epsilon", &eps, &e), BN_OK);
    assert_true(eps == (double)9.999999747378752e-06);
    bool b;
    assert_int_equal(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b, &e), BN_OK);
    assert_true(b);
    assert_int_equal(gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b, &e), BN_OK);
    assert_false(b);
    assert_true(gguf_str_eq(gguf_kv_at(f, 21)->key, "tokenizer.ggml.add_eos_token"));
    gguf_close(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_roundtrip_alignment),
        cmocka_unit_test(test_getters),         cmocka_unit_test(test_handmade_v2),
        cmocka_unit_test(test_writer_errors),   cmocka_unit_test(test_writer_oom),
        cmocka_unit_test(test_vocab_llama_spm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
