/* test_safetensors.c - the safetensors reader (core/safetensors.h): tensors are found with
 * their dtype, shape and bytes; f16/bf16 convert to f32; headers that lie (lengths, offsets,
 * sizes that disagree with the shape, unknown dtypes, bad JSON) are refused with a message. */
#include <stdlib.h>
#include <string.h>

#include "../core/safetensors.h"
#include "../core/types.h"
#include "testutil.h"

/* Writes a safetensors file: the JSON header (padded with spaces) then data. */
static const char *write_st(const char *name, const char *json, const void *data, size_t n) {
    bt_buf b = {0};
    size_t hl = strlen(json);
    bt_put_u64(&b, hl);
    bt_put_bytes(&b, json, hl);
    if (n) bt_put_bytes(&b, data, n);
    const char *path = bt_tmp_path(name);
    assert_int_equal(bt_write_file(path, b.p, b.n), 0);
    free(b.p);
    return path;
}

static void test_read(void **state) {
    (void)state;
    uint8_t data[4 * 4 + 2 * 2 + 2 * 2 + 3];
    float f[4] = {1.5f, -2.0f, 0.25f, 3.0f};
    memcpy(data, f, 16);
    uint16_t h[2] = {bn_f32_to_f16(0.5f), bn_f32_to_f16(-7.0f)};
    memcpy(data + 16, h, 4);
    uint16_t bf[2] = {bn_f32_to_bf16(1.0f), bn_f32_to_bf16(-0.125f)};
    memcpy(data + 20, bf, 4);
    data[24] = 0x24, data[25] = 0x00, data[26] = 0x9a;
    const char *p = write_st("st_ok.safetensors",
                             "{\"__metadata__\":{\"format\":\"pt\"},"
                             "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                             "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[16,20]},"
                             "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[20,24]},"
                             "\"u\":{\"dtype\":\"U8\",\"shape\":[3,1],\"data_offsets\":[24,27]}}",
                             data, sizeof data);
    st_model m;
    bn_err err = {0};
    assert_int_equal(st_open_file(p, &m, &err), BN_OK);
    assert_int_equal(m.n_tensors, 4);
    const st_tensor *w = st_find(&m, "w");
    assert_non_null(w);
    assert_int_equal(w->dtype, ST_F32);
    assert_int_equal(w->n_dims, 2);
    assert_int_equal(w->shape[0], 2);
    assert_int_equal(w->n_elems, 4);
    float out[4];
    st_read_f32(w, 1, 3, out);
    assert_true(out[0] == -2.0f && out[1] == 0.25f && out[2] == 3.0f);
    st_read_f32(st_find(&m, "h"), 0, 2, out);
    assert_true(out[0] == 0.5f && out[1] == -7.0f);
    st_read_f32(st_find(&m, "b"), 0, 2, out);
    assert_true(out[0] == 1.0f && out[1] == -0.125f);
    const st_tensor *u = st_find(&m, "u");
    assert_int_equal(u->dtype, ST_U8);
    assert_int_equal(u->data[2], 0x9a);
    assert_null(st_find(&m, "none"));
    st_close(&m);
}

static void refuse(const char *json, size_t data_bytes, const char *want) {
    uint8_t data[64] = {0};
    const char *p = write_st("st_bad.safetensors", json, data, data_bytes);
    st_model m;
    bn_err err = {0};
    assert_int_not_equal(st_open_file(p, &m, &err), BN_OK);
    if (!strstr(err.msg, want)) fail_msg("message '%s' lacks '%s'", err.msg, want);
    assert_int_equal(m.n_tensors, 0);
}

static void test_hostile(void **state) {
    (void)state;
    refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "do not fit");
    refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, "do not fit");
    refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,4]}}", 16, "do not fit");
    refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16, "do not fit");
    refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}",
           16, "do not fit");
    refuse("{\"a\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,2]}}", 16, "dtype Q4");
    refuse("{\"a\":{\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "lacks dtype");
    refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 16,
           "5 dimensions");
    refuse("{\"a\": [", 0, "not a JSON object");
    refuse("[1, 2]", 0, "not a JSON object");
    /* a header length past the end of the file */
    bt_buf b = {0};
    bt_put_u64(&b, 1000);
    bt_put_bytes(&b, "{}", 2);
    const char *p = bt_tmp_path("st_len.safetensors");
    assert_int_equal(bt_write_file(p, b.p, b.n), 0);
    free(b.p);
    st_model m;
    bn_err err = {0};
    assert_int_not_equal(st_open_file(p, &m, &err), BN_OK);
    assert_non_null(strstr(err.msg, "header length"));
    assert_int_not_equal(st_open_file(bt_tmp_path("st_none.safetensors"), &m, &err), BN_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
