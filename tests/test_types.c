/* test_types.c - element types (core/types.c, core/quant.c): names, sizes, f16/bf16
 * conversion, the reference (de)quantizers, the ternary validator and
 * bn_ternary_row_codes. Expected bytes and values are worked out by hand here from
 * FORMATS.md, never produced by the code under test. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "types.h"

static void put_f16(uint8_t *p, uint16_t h) {
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Exact float comparison (the values in these tests are exactly representable). */
#define assert_float_exact(a, b)                                                                   \
    do {                                                                                           \
        float a_ = (a), b_ = (b);                                                                  \
        if (a_ != b_) fail_msg("%s = %.9g, expected %.9g", #a, (double)a_, (double)b_);            \
    } while (0)

/* ---- names ---- */

static void test_names(void **state) {
    (void)state;
    assert_string_equal(bn_type_name(BN_TYPE_I2_S), "I2_S");
    assert_string_equal(bn_type_name(BN_TYPE_TQ2_0), "TQ2_0");
    assert_string_equal(bn_type_name(BN_TYPE_TQ1_0), "TQ1_0");
    assert_string_equal(bn_type_name(BN_TYPE_F16), "F16");
    assert_string_equal(bn_type_name(BN_TYPE_BF16), "BF16");
    assert_string_equal(bn_type_name(BN_TYPE_Q4_K), "Q4_K");
    assert_string_equal(bn_type_name(BN_TYPE_Q6_K), "Q6_K");
    assert_null(bn_type_name(13));
    assert_null(bn_type_name(37));
    assert_int_equal(bn_type_from_name("i2_s"), 36);
    assert_int_equal(bn_type_from_name("tq2_0"), 35);
    assert_int_equal(bn_type_from_name("Tq1_0"), 34);
    assert_int_equal(bn_type_from_name("f16"), 1);
    assert_int_equal(bn_type_from_name("F32"), 0);
    assert_int_equal(bn_type_from_name("bf16"), 30);
    assert_int_equal(bn_type_from_name("q8_0"), 8);
    assert_int_equal(bn_type_from_name("q4_k"), 12);
    assert_int_equal(bn_type_from_name("f1"), -1);
    assert_int_equal(bn_type_from_name("f166"), -1);
    assert_int_equal(bn_type_from_name("q5_k"), -1);
    assert_int_equal(bn_type_from_name(""), -1);
    assert_int_equal(bn_type_from_name(NULL), -1);

    const uint32_t known[] = {0, 1, 2, 8, 12, 14, 30, 34, 35, 36};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        assert_true(bn_type_is_known(known[i]));
    const uint32_t unknown[] = {3, 10, 13, 26, 37, 38, 39, 40, 1000, BN_TYPE_I32, BN_TYPE_ACT_Q8};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_false(bn_type_is_known(unknown[i]));

    assert_true(bn_type_is_ternary(BN_TYPE_TQ1_0));
    assert_true(bn_type_is_ternary(BN_TYPE_TQ2_0));
    assert_true(bn_type_is_ternary(BN_TYPE_I2_S));
    assert_false(bn_type_is_ternary(BN_TYPE_F16));
    assert_false(bn_type_is_ternary(BN_TYPE_Q4_0));

    assert_int_equal(bn_type_block_elems(BN_TYPE_F32), 1);
    assert_int_equal(bn_type_block_elems(BN_TYPE_F16), 1);
    assert_int_equal(bn_type_block_elems(BN_TYPE_BF16), 1);
    assert_int_equal(bn_type_block_elems(BN_TYPE_I32), 1);
    assert_int_equal(bn_type_block_elems(BN_TYPE_Q4_0), 32);
    assert_int_equal(bn_type_block_elems(BN_TYPE_Q8_0), 32);
    assert_int_equal(bn_type_block_elems(BN_TYPE_Q4_K), 256);
    assert_int_equal(bn_type_block_elems(BN_TYPE_Q6_K), 256);
    assert_int_equal(bn_type_block_elems(BN_TYPE_TQ1_0), 256);
    assert_int_equal(bn_type_block_elems(BN_TYPE_TQ2_0), 256);
    assert_int_equal(bn_type_block_elems(BN_TYPE_I2_S), 128);
    assert_int_equal(bn_type_block_elems(13), 0);
}

static void test_unknown_reason(void **state) {
    (void)state;
    const char *r = bn_type_unknown_reason(37);
    assert_non_null(strstr(r, "I8_S"));
    assert_non_null(strstr(r, "upstream"));
    assert_non_null(strstr(r, "not supported"));
    r = bn_type_unknown_reason(38);
    assert_non_null(strstr(r, "TL1"));
    assert_non_null(strstr(r, "retired"));
    r = bn_type_unknown_reason(39);
    assert_non_null(strstr(r, "TL2"));
    assert_non_null(strstr(r, "MXFP4"));
    assert_string_equal(bn_type_unknown_reason(13), "type Q5_K (13) is not supported");
    assert_string_equal(bn_type_unknown_reason(10), "type Q2_K (10) is not supported");
    assert_string_equal(bn_type_unknown_reason(16), "type IQ2_XXS (16) is not supported");
    assert_string_equal(bn_type_unknown_reason(77), "unknown GGML type id 77");
    assert_string_equal(bn_type_unknown_reason(4000000000u), "unknown GGML type id 4000000000");
    assert_non_null(strstr(bn_type_unknown_reason(BN_TYPE_ACT_Q8), "internal"));
}

/* ---- sizes ---- */

static size_t row_bytes_ok(uint32_t type, int64_t n) {
    size_t out = 0;
    bn_err err = {0};
    assert_int_equal(bn_row_bytes(type, n, &out, &err), BN_OK);
    return out;
}

static size_t tensor_bytes_ok(uint32_t type, int64_t a, int64_t b, int64_t c, int64_t d) {
    const int64_t ne[4] = {a, b, c, d};
    size_t out = 0;
    bn_err err = {0};
    assert_int_equal(bn_tensor_bytes(type, ne, &out, &err), BN_OK);
    return out;
}

static void tensor_bytes_fails(uint32_t type, int64_t a, int64_t b, int64_t c, int64_t d,
                               bn_status want) {
    const int64_t ne[4] = {a, b, c, d};
    size_t out = 12345;
    bn_err err = {0};
    assert_int_equal(bn_tensor_bytes(type, ne, &out, &err), want);
    assert_int_equal(err.code, want);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(out, 12345);
}

static void row_bytes_fails(uint32_t type, int64_t n, bn_status want) {
    size_t out = 12345;
    bn_err err = {0};
    assert_int_equal(bn_row_bytes(type, n, &out, &err), want);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(out, 12345);
}

static void test_sizes(void **state) {
    (void)state;
    assert_int_equal(row_bytes_ok(BN_TYPE_F32, 10), 40);
    assert_int_equal(row_bytes_ok(BN_TYPE_F16, 10), 20);
    assert_int_equal(row_bytes_ok(BN_TYPE_BF16, 7), 14);
    assert_int_equal(row_bytes_ok(BN_TYPE_I32, 3), 12);
    assert_int_equal(row_bytes_ok(BN_TYPE_Q4_0, 64), 36);
    assert_int_equal(row_bytes_ok(BN_TYPE_Q8_0, 64), 68);
    assert_int_equal(row_bytes_ok(BN_TYPE_Q4_K, 512), 288);
    assert_int_equal(row_bytes_ok(BN_TYPE_Q6_K, 256), 210);
    assert_int_equal(row_bytes_ok(BN_TYPE_TQ1_0, 512), 108);
    assert_int_equal(row_bytes_ok(BN_TYPE_TQ2_0, 256), 66);
    assert_int_equal(row_bytes_ok(BN_TYPE_TQ2_0, 2560), 660);
    assert_int_equal(row_bytes_ok(BN_TYPE_I2_S, 128), 32);
    assert_int_equal(row_bytes_ok(BN_TYPE_I2_S, 2560), 640);
    assert_int_equal(row_bytes_ok(BN_TYPE_ACT_Q8, 5), 16);
    assert_int_equal(row_bytes_ok(BN_TYPE_ACT_Q8, 2560), 2568);

    assert_int_equal(tensor_bytes_ok(BN_TYPE_F32, 3, 5, 7, 2), 840);
    assert_int_equal(tensor_bytes_ok(BN_TYPE_F16, 4, 1, 1, 1), 8);
    assert_int_equal(tensor_bytes_ok(BN_TYPE_TQ2_0, 256, 4, 1, 1), 264);
    assert_int_equal(tensor_bytes_ok(BN_TYPE_TQ1_0, 512, 3, 1, 1), 324);
    assert_int_equal(tensor_bytes_ok(BN_TYPE_Q6_K, 256, 2, 1, 1), 420);
    assert_int_equal(tensor_bytes_ok(BN_TYPE_Q4_K, 256, 1, 1, 3), 432);
    /* I2_S: n/4 + 32 */
    assert_int_equal(tensor_bytes_ok(BN_TYPE_I2_S, 128, 1, 1, 1), 64);
    assert_int_equal(tensor_bytes_ok(BN_TYPE_I2_S, 256, 3, 2, 1), 256 * 6 / 4 + 32);
    assert_int_equal(tensor_bytes_ok(BN_TYPE_I2_S, 2560, 6912, 1, 1), 2560 * 6912 / 4 + 32);

    /* not multiples of the block */
    row_bytes_fails(BN_TYPE_Q8_0, 33, BN_ERR_FORMAT);
    row_bytes_fails(BN_TYPE_Q4_0, 16, BN_ERR_FORMAT);
    row_bytes_fails(BN_TYPE_Q4_K, 32, BN_ERR_FORMAT);
    row_bytes_fails(BN_TYPE_Q6_K, 384, BN_ERR_FORMAT);
    row_bytes_fails(BN_TYPE_TQ1_0, 128, BN_ERR_FORMAT);
    row_bytes_fails(BN_TYPE_TQ2_0, 300, BN_ERR_FORMAT);
    row_bytes_fails(BN_TYPE_I2_S, 64, BN_ERR_FORMAT);
    row_bytes_fails(BN_TYPE_I2_S, 200, BN_ERR_FORMAT);
    tensor_bytes_fails(BN_TYPE_I2_S, 64, 2, 1, 1, BN_ERR_FORMAT);
    /* ne < 1 */
    row_bytes_fails(BN_TYPE_F32, 0, BN_ERR_FORMAT);
    row_bytes_fails(BN_TYPE_F32, -4, BN_ERR_FORMAT);
    tensor_bytes_fails(BN_TYPE_F32, 4, 0, 1, 1, BN_ERR_FORMAT);
    tensor_bytes_fails(BN_TYPE_F32, 4, 1, -1, 1, BN_ERR_FORMAT);
    tensor_bytes_fails(BN_TYPE_F32, 4, 1, 1, 0, BN_ERR_FORMAT);
    tensor_bytes_fails(BN_TYPE_F32, 0, 1, 1, 1, BN_ERR_FORMAT);
    /* overflow */
    row_bytes_fails(BN_TYPE_F32, (int64_t)1 << 62, BN_ERR_FORMAT);
    tensor_bytes_fails(BN_TYPE_F32, (int64_t)1 << 62, 1, 1, 1, BN_ERR_FORMAT);
    tensor_bytes_fails(BN_TYPE_F32, (int64_t)1 << 40, (int64_t)1 << 40, 1, 1, BN_ERR_FORMAT);
    tensor_bytes_fails(BN_TYPE_I2_S, (int64_t)1 << 40, (int64_t)1 << 40, 1, 1, BN_ERR_FORMAT);
    tensor_bytes_fails(BN_TYPE_F16, 2, (int64_t)1 << 31, (int64_t)1 << 31, (int64_t)1 << 31,
                       BN_ERR_FORMAT);
    tensor_bytes_fails(BN_TYPE_F32, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, BN_ERR_FORMAT);
    /* a size that still fits */
    assert_int_equal(tensor_bytes_ok(BN_TYPE_F32, (int64_t)1 << 30, 4, 1, 1), (size_t)1 << 34);
    /* unsupported types */
    row_bytes_fails(13, 256, BN_ERR_UNSUPPORTED);
    tensor_bytes_fails(39, 256, 1, 1, 1, BN_ERR_UNSUPPORTED);
    /* NULL err is allowed */
    size_t out;
    assert_int_equal(bn_row_bytes(BN_TYPE_Q8_0, 31, &out, NULL), BN_ERR_FORMAT);
}

static void test_act_row_bytes(void **state) {
    (void)state;
    assert_int_equal(bn_act_row_bytes(0), 8);
    assert_int_equal(bn_act_row_bytes(1), 16);
    assert_int_equal(bn_act_row_bytes(7), 16);
    assert_int_equal(bn_act_row_bytes(8), 16);
    assert_int_equal(bn_act_row_bytes(9), 24);
    assert_int_equal(bn_act_row_bytes(2560), 2568);
    assert_int_equal(bn_act_row_bytes(6912), 6920);
    assert_int_equal(bn_act_row_bytes(6913), 6928);
    assert_int_equal(sizeof(bn_act_row), 8);
}

/* ---- f16 / bf16 ---- */

static void test_f16_known(void **state) {
    (void)state;
    assert_int_equal(bn_f32_to_f16(1.0f), 0x3C00);
    assert_int_equal(bn_f32_to_f16(-2.0f), 0xC000);
    assert_int_equal(bn_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(bn_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(bn_f32_to_f16(0.5f), 0x3800);
    assert_int_equal(bn_f32_to_f16(65504.0f), 0x7BFF);
    assert_int_equal(bn_f32_to_f16(65519.0f), 0x7BFF); /* below the halfway point 65520 */
    assert_int_equal(bn_f32_to_f16(65520.0f), 0x7C00); /* tie: 0x7BFF is odd, rounds to inf */
    assert_int_equal(bn_f32_to_f16(1e10f), 0x7C00);
    assert_int_equal(bn_f32_to_f16(-1e10f), 0xFC00);
    assert_int_equal(bn_f32_to_f16(ldexpf(1, -14)), 0x0400); /* smallest normal */
    assert_int_equal(bn_f32_to_f16(ldexpf(1, -24)), 0x0001); /* smallest subnormal */
    assert_int_equal(bn_f32_to_f16(ldexpf(1023, -24)), 0x03FF);
    assert_int_equal(bn_f32_to_f16(-ldexpf(1, -24)), 0x8001);
    assert_int_equal(bn_f32_to_f16(ldexpf(1, -25)), 0x0000);    /* tie with 0: even */
    assert_int_equal(bn_f32_to_f16(ldexpf(3, -26)), 0x0001);    /* 0.75 ulp: up */
    assert_int_equal(bn_f32_to_f16(ldexpf(3, -25)), 0x0002);    /* 1.5 ulp tie: to 2 */
    assert_int_equal(bn_f32_to_f16(ldexpf(5, -25)), 0x0002);    /* 2.5 ulp tie: to 2 */
    assert_int_equal(bn_f32_to_f16(ldexpf(2047, -25)), 0x0400); /* 1023.5 ulp: to normal */
    assert_int_equal(bn_f32_to_f16(ldexpf(1, -30)), 0x0000);
    assert_int_equal(bn_f32_to_f16(bits_f32(0x00000001)), 0x0000); /* f32 subnormal */
    /* round to nearest even among normals: 1 + 2^-11 is halfway between 0x3C00, 0x3C01 */
    assert_int_equal(bn_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3C00);
    assert_int_equal(bn_f32_to_f16(1.0f + ldexpf(3, -11)), 0x3C02);
    assert_int_equal(bn_f32_to_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3C01);
    assert_int_equal(bn_f32_to_f16(2047.0f + 0.5f), 0x6800); /* 2047.5 -> 2048 (even) */
    assert_int_equal(bn_f32_to_f16(1.0f / 3.0f), 0x3555);
    assert_int_equal(bn_f32_to_f16(INFINITY), 0x7C00);
    assert_int_equal(bn_f32_to_f16(-INFINITY), 0xFC00);
    uint16_t h = bn_f32_to_f16(NAN);
    assert_int_equal(h & 0x7C00, 0x7C00);
    assert_int_not_equal(h & 0x03FF, 0);
    h = bn_f32_to_f16(bits_f32(0x7F800001)); /* signalling NaN with a low payload */
    assert_int_equal(h & 0x7C00, 0x7C00);
    assert_int_not_equal(h & 0x03FF, 0);

    assert_float_exact(bn_f16_to_f32(0x3C00), 1.0f);
    assert_float_exact(bn_f16_to_f32(0xC000), -2.0f);
    assert_float_exact(bn_f16_to_f32(0x7BFF), 65504.0f);
    assert_float_exact(bn_f16_to_f32(0x0001), ldexpf(1, -24));
    assert_float_exact(bn_f16_to_f32(0x8001), -ldexpf(1, -24));
    assert_float_exact(bn_f16_to_f32(0x03FF), ldexpf(1023, -24));
    assert_float_exact(bn_f16_to_f32(0x0200), ldexpf(1, -15));
    assert_float_exact(bn_f16_to_f32(0x0400), ldexpf(1, -14));
    assert_float_exact(bn_f16_to_f32(0x3555), 0.333251953125f);
    assert_int_equal(f32_bits(bn_f16_to_f32(0x8000)), 0x80000000u);
    assert_true(isinf(bn_f16_to_f32(0x7C00)) && bn_f16_to_f32(0x7C00) > 0);
    assert_true(isinf(bn_f16_to_f32(0xFC00)) && bn_f16_to_f32(0xFC00) < 0);
    assert_true(isnan(bn_f16_to_f32(0x7E00)));
    assert_true(isnan(bn_f16_to_f32(0x7C01)));
    assert_true(isnan(bn_f16_to_f32(0xFFFF)));
}

/* Every f16 value survives f16 -> f32 -> f16; the f32 value equals the textbook
 * formula; f32 -> f16 of random floats is the nearest f16 (ties to even). */
static void test_f16_exhaustive(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bn_f16_to_f32((uint16_t)h);
        unsigned e = (h >> 10) & 31, m = h & 1023;
        if (e == 31) {
            if (m) {
                assert_true(isnan(f));
                uint16_t back = bn_f32_to_f16(f);
                assert_int_equal(back & 0x7C00, 0x7C00);
                assert_int_not_equal(back & 0x3FF, 0);
            } else {
                assert_true(isinf(f));
            }
            continue;
        }
        double want = e ? ldexp(1024 + m, (int)e - 25) : ldexp(m, -24);
        if (h & 0x8000) want = -want;
        assert_true((double)f == want);
        assert_int_equal(bn_f32_to_f16(f), h);
    }
    bt_rng rng;
    bt_rng_seed(&rng, 7);
    for (int i = 0; i < 200000; i++) {
        /* random bits with exponents around the f16 range */
        uint32_t bits = (uint32_t)bt_rng_u64(&rng);
        uint32_t exp = 127 - 28 + (uint32_t)bt_rng_int(&rng, 0, 45);
        bits = (bits & 0x807FFFFFu) | (exp << 23);
        float f = bits_f32(bits);
        uint16_t h = bn_f32_to_f16(f);
        double a = fabs((double)f);
        if (a >= 65520.0) {
            assert_int_equal(h & 0x7FFF, 0x7C00);
            continue;
        }
        uint16_t mag = h & 0x7FFF;
        assert_int_equal(h & 0x8000, (bits >> 16) & 0x8000);
        double v = fabs((double)bn_f16_to_f32(h));
        double err = fabs(v - a);
        if (mag < 0x7BFF) {
            double up = fabs((double)bn_f16_to_f32((uint16_t)(mag + 1)) - a);
            assert_true(err < up || (err == up && !(mag & 1)));
        }
        if (mag > 0) {
            double dn = fabs((double)bn_f16_to_f32((uint16_t)(mag - 1)) - a);
            assert_true(err < dn || (err == dn && !(mag & 1)));
        }
    }
}

static void test_bf16(void **state) {
    (void)state;
    assert_int_equal(bn_f32_to_bf16(1.0f), 0x3F80);
    assert_int_equal(bn_f32_to_bf16(-2.0f), 0xC000);
    assert_int_equal(bn_f32_to_bf16(0.0f), 0x0000);
    assert_int_equal(bn_f32_to_bf16(-0.0f), 0x8000);
    assert_int_equal(bn_f32_to_bf16(bits_f32(0x3F808000)), 0x3F80); /* tie, even stays */
    assert_int_equal(bn_f32_to_bf16(bits_f32(0x3F818000)), 0x3F82); /* tie, odd goes up */
    assert_int_equal(bn_f32_to_bf16(bits_f32(0x3F808001)), 0x3F81); /* above the tie */
    assert_int_equal(bn_f32_to_bf16(bits_f32(0x3F807FFF)), 0x3F80); /* below the tie */
    assert_int_equal(bn_f32_to_bf16(bits_f32(0x7F7FFFFF)), 0x7F80); /* max f32 -> inf */
    assert_int_equal(bn_f32_to_bf16(INFINITY), 0x7F80);
    assert_int_equal(bn_f32_to_bf16(-INFINITY), 0xFF80);
    assert_int_equal(bn_f32_to_bf16(bits_f32(0x00000001)), 0x0000); /* subnormal tie */
    assert_int_equal(bn_f32_to_bf16(bits_f32(0x00018000)), 0x0002);
    uint16_t h = bn_f32_to_bf16(NAN);
    assert_true(isnan(bn_bf16_to_f32(h)));
    h = bn_f32_to_bf16(bits_f32(0x7F800001)); /* would round to inf if not special-cased */
    assert_true(isnan(bn_bf16_to_f32(h)));
    h = bn_f32_to_bf16(bits_f32(0xFFFFFFFF));
    assert_true(isnan(bn_bf16_to_f32(h)));

    assert_float_exact(bn_bf16_to_f32(0x3F80), 1.0f);
    assert_float_exact(bn_bf16_to_f32(0xC000), -2.0f);
    assert_float_exact(bn_bf16_to_f32(0x4049), 3.140625f);
    assert_true(isinf(bn_bf16_to_f32(0x7F80)));
    for (uint32_t v = 0; v < 65536; v++) {
        float f = bn_bf16_to_f32((uint16_t)v);
        assert_int_equal(f32_bits(f), v << 16);
        if (!isnan(f)) assert_int_equal(bn_f32_to_bf16(f), v);
    }
}

/* ---- F32 / F16 / BF16 / I32 rows ---- */

static void test_float_rows(void **state) {
    (void)state;
    const float src[8] = {1.0f, -2.0f, 65504.0f, 0x1p-24f, 0.5f, -0.0f, 3.0f, 0.25f};
    const uint8_t want_f16[16] = {0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00,
                                  0x00, 0x38, 0x00, 0x80, 0x00, 0x42, 0x00, 0x34};
    const uint8_t want_bf16[16] = {0x80, 0x3F, 0x00, 0xC0, 0x80, 0x47, 0x80, 0x33,
                                   0x00, 0x3F, 0x00, 0x80, 0x40, 0x40, 0x80, 0x3E};
    uint8_t buf[64];
    float back[8];
    bn_err err = {0};

    assert_int_equal(bn_quantize(BN_TYPE_F16, src, 4, 2, buf, &err), BN_OK);
    assert_memory_equal(buf, want_f16, 16);
    bn_dequantize_row(BN_TYPE_F16, buf, 4, 2, 1, back);
    for (int i = 0; i < 4; i++) assert_float_exact(back[i], src[4 + i]);

    assert_int_equal(bn_quantize(BN_TYPE_BF16, src, 8, 1, buf, &err), BN_OK);
    assert_memory_equal(buf, want_bf16, 16);
    bn_dequantize_row(BN_TYPE_BF16, buf, 8, 1, 0, back);
    assert_float_exact(back[0], 1.0f);
    assert_float_exact(back[1], -2.0f);
    assert_float_exact(back[2], 65536.0f); /* 65504 = 0x477FE000 rounds up to 0x4780 */
    assert_float_exact(back[6], 3.0f);

    assert_int_equal(bn_quantize(BN_TYPE_F32, src, 2, 4, buf, &err), BN_OK);
    assert_memory_equal(buf, src, 32);
    bn_dequantize_row(BN_TYPE_F32, buf, 2, 4, 3, back);
    assert_float_exact(back[0], 3.0f);
    assert_float_exact(back[1], 0.25f);

    const int32_t ids[4] = {0, -7, 128255, 16777216};
    bn_dequantize_row(BN_TYPE_I32, ids, 2, 2, 1, back);
    assert_float_exact(back[0], 128255.0f);
    assert_float_exact(back[1], 16777216.0f);
    bn_dequantize_row(BN_TYPE_I32, ids, 2, 2, 0, back);
    assert_float_exact(back[1], -7.0f);
}

/* ---- Q8_0 ---- */

static void test_q8_0(void **state) {
    (void)state;
    float src[96];
    /* block 0: max |x| = 127, d = 1.0 exactly (f16 0x3C00) */
    for (int j = 0; j < 32; j++) src[j] = (float)(j - 20);
    src[0] = -127.0f;
    src[1] = 1.4f;   /* -> 1 */
    src[2] = 2.5f;   /* -> 3 (half away from zero) */
    src[3] = -2.5f;  /* -> -3 */
    src[4] = 0.49f;  /* -> 0 */
    src[5] = 126.6f; /* -> 127 */
    /* block 1: max |x| = 63.5, d = 0.5 (f16 0x3800) */
    for (int j = 0; j < 32; j++) src[32 + j] = 0.5f * (float)j;
    src[32] = 63.5f;  /* -> 127 */
    src[33] = 0.25f;  /* 0.5 -> 1 */
    src[34] = -0.75f; /* -1.5 -> -2 */
    src[35] = -63.5f; /* -> -127 */
    /* block 2: all zero: d = 0, q = 0 */
    for (int j = 0; j < 32; j++) src[64 + j] = 0.0f;

    uint8_t want[3 * 34];
    want[0] = 0x00, want[1] = 0x3C;
    for (int j = 0; j < 32; j++) want[2 + j] = (uint8_t)(int8_t)(j - 20);
    want[2] = (uint8_t)(int8_t)-127;
    want[3] = 1;
    want[4] = 3;
    want[5] = (uint8_t)(int8_t)-3;
    want[6] = 0;
    want[7] = 127;
    want[34] = 0x00, want[35] = 0x38;
    for (int j = 0; j < 32; j++) want[36 + j] = (uint8_t)j;
    want[36] = 127;
    want[37] = 1;
    want[38] = 0xFE;
    want[39] = 0x81;
    memset(want + 68, 0, 34);

    uint8_t buf[3 * 34];
    bn_err err = {0};
    assert_int_equal(bn_quantize(BN_TYPE_Q8_0, src, 96, 1, buf, &err), BN_OK);
    assert_memory_equal(buf, want, sizeof want);

    float back[96];
    bn_dequantize_row(BN_TYPE_Q8_0, buf, 96, 1, 0, back);
    assert_float_exact(back[0], -127.0f);
    assert_float_exact(back[4], 0.0f);
    assert_float_exact(back[5], 127.0f);
    assert_float_exact(back[32], 63.5f);
    assert_float_exact(back[33], 0.5f);
    assert_float_exact(back[34], -1.0f);
    assert_float_exact(back[40], 4.0f);
    for (int j = 64; j < 96; j++) assert_float_exact(back[j], 0.0f);

    /* random data: error at most half a step of the stored d (plus f16 rounding slack) */
    bt_rng rng;
    bt_rng_seed(&rng, 3);
    float x[2 * 128], y[128];
    for (int i = 0; i < 256; i++) x[i] = (float)bt_rng_normal(&rng) * 3.0f;
    uint8_t q[2 * 4 * 34];
    assert_int_equal(bn_quantize(BN_TYPE_Q8_0, x, 128, 2, q, &err), BN_OK);
    for (int r = 0; r < 2; r++) {
        bn_dequantize_row(BN_TYPE_Q8_0, q, 128, 2, r, y);
        for (int i = 0; i < 128; i++) {
            const uint8_t *blk = q + r * 4 * 34 + (i / 32) * 34;
            float d = bn_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
            assert_true(fabsf(y[i] - x[r * 128 + i]) <= 0.5f * d * 1.01f);
        }
    }
}

/* ---- Q4_0, Q4_K, Q6_K dequantization of hand-built blocks ---- */

static void test_q4_0(void **state) {
    (void)state;
    uint8_t blk[36];
    put_f16(blk, 0x3800); /* d = 0.5 */
    blk[2 + 0] = 0x1F;    /* element 0 = (15-8)*0.5 = 3.5, element 16 = (1-8)*0.5 = -3.5 */
    for (int j = 1; j < 15; j++) blk[2 + j] = (uint8_t)(j | (15 - j) << 4);
    blk[2 + 15] = 0x80;        /* element 15 = -4, element 31 = 0 */
    put_f16(blk + 18, 0xC000); /* block 1: d = -2 */
    for (int j = 0; j < 16; j++) blk[20 + j] = (uint8_t)(0x90 + j % 16); /* low j, high 9 */

    float y[64];
    bn_dequantize_row(BN_TYPE_Q4_0, blk, 64, 1, 0, y);
    assert_float_exact(y[0], 3.5f);
    assert_float_exact(y[16], -3.5f);
    assert_float_exact(y[15], -4.0f);
    assert_float_exact(y[31], 0.0f);
    assert_float_exact(y[3], -2.5f);   /* nibble 3 */
    assert_float_exact(y[19], 2.0f);   /* nibble 12 */
    assert_float_exact(y[32], 16.0f);  /* (0-8) * -2 */
    assert_float_exact(y[47], -14.0f); /* (15-8) * -2 */
    assert_float_exact(y[48], -2.0f);  /* (9-8) * -2 */
    for (int e = 0; e < 64; e++) {
        int b = e / 32, i = e % 32;
        uint8_t byte = blk[18 * b + 2 + i % 16];
        int nib = i < 16 ? byte & 15 : byte >> 4;
        float d = b == 0 ? 0.5f : -2.0f;
        assert_float_exact(y[e], (float)(nib - 8) * d);
    }
    /* the second row of a two-row tensor is the second block */
    float y2[32];
    bn_dequantize_row(BN_TYPE_Q4_0, blk, 32, 2, 1, y2);
    assert_memory_equal(y2, y + 32, sizeof y2);
}

static void test_q4_k(void **state) {
    (void)state;
    uint8_t blk[144];
    put_f16(blk, 0x3800);     /* d = 0.5 */
    put_f16(blk + 2, 0x3400); /* dmin = 0.25 */
    const uint8_t scales[12] = {0xC5, 0x4A, 0x03, 0x81, 0x87, 0x02,
                                0x41, 0xFF, 0x29, 0x13, 0x0E, 0xF0};
    memcpy(blk + 4, scales, 12);
    /* worked out by hand from the FORMATS.md rule:
     * sc0..3 = low 6 bits of scales[0..3] = 5, 10, 3, 1
     * m0..3  = low 6 bits of scales[4..7] = 7, 2, 1, 63
     * sc4 = 0x29&15 | (0xC5>>6)<<4 = 9|48 = 57   m4 = 0x29>>4 | (0x87>>6)<<4 = 2|32 = 34
     * sc5 = 0x13&15 | (0x4A>>6)<<4 = 3|16 = 19   m5 = 0x13>>4 | (0x02>>6)<<4 = 1
     * sc6 = 0x0E&15 | (0x03>>6)<<4 = 14          m6 = 0x0E>>4 | (0x41>>6)<<4 = 16
     * sc7 = 0xF0&15 | (0x81>>6)<<4 = 32          m7 = 0xF0>>4 | (0xFF>>6)<<4 = 15|48 = 63 */
    const int sc[8] = {5, 10, 3, 1, 57, 19, 14, 32};
    const int mn[8] = {7, 2, 1, 63, 34, 1, 16, 63};
    uint8_t *qs = blk + 16;
    for (int i = 0; i < 128; i++) qs[i] = (uint8_t)(i * 37 + 11);
    qs[0] = 0xA3;
    qs[31] = 0x0F;
    qs[32] = 0x70;
    qs[36] = 0x90;
    qs[84] = 0xB0;
    qs[86] = 0x02;
    qs[104] = 0x05;
    qs[127] = 0xE0;

    float y[256];
    bn_dequantize_row(BN_TYPE_Q4_K, blk, 256, 1, 0, y);
    assert_float_exact(y[0], 0.5f * 5 * 3 - 0.25f * 7);      /* 5.75 */
    assert_float_exact(y[32], 0.5f * 10 * 10 - 0.25f * 2);   /* 49.5 */
    assert_float_exact(y[31], 0.5f * 5 * 15 - 0.25f * 7);    /* 35.75 */
    assert_float_exact(y[63], -0.5f);                        /* q = 0, m1 = 2 */
    assert_float_exact(y[64], -0.25f);                       /* q = 0, m2 = 1 */
    assert_float_exact(y[100], 0.5f * 1 * 9 - 0.25f * 63);   /* -11.25 */
    assert_float_exact(y[150], 0.5f * 57 * 2 - 0.25f * 34);  /* 48.5 */
    assert_float_exact(y[180], 0.5f * 19 * 11 - 0.25f * 1);  /* 104.25 */
    assert_float_exact(y[200], 0.5f * 14 * 5 - 0.25f * 16);  /* 31 */
    assert_float_exact(y[255], 0.5f * 32 * 14 - 0.25f * 63); /* 208.25 */
    /* every element, per element from the bullet list */
    for (int e = 0; e < 256; e++) {
        int c = e / 64, l = e % 32, j = e / 32;
        uint8_t byte = qs[32 * c + l];
        int q = (e % 64) < 32 ? byte & 15 : byte >> 4;
        assert_float_exact(y[e], 0.5f * (float)(sc[j] * q) - 0.25f * (float)mn[j]);
    }
}

static void test_q6_k(void **state) {
    (void)state;
    uint8_t blk[210];
    bt_rng rng;
    bt_rng_seed(&rng, 11);
    for (int i = 0; i < 192; i++) blk[i] = (uint8_t)bt_rng_u64(&rng);
    uint8_t *ql = blk, *qh = blk + 128;
    int8_t scales[16];
    for (int k = 0; k < 16; k++) scales[k] = (int8_t)((k % 2 ? -1 : 1) * (k + 1));
    memcpy(blk + 192, scales, 16);
    put_f16(blk + 208, 0x3400); /* d = 0.25 */
    ql[0] = 0x5A;
    qh[0] = 0x9C; /* 2-bit fields from bit 0: 0, 3, 1, 2 */
    ql[32] = 0x3F;
    ql[31] = 0x00;
    qh[31] = 0x01;
    ql[63] = 0x07;
    ql[49] = 0xC0;
    qh[17] = 0xC0;
    ql[101] = 0x90;
    qh[37] = 0x40;
    ql[84] = 0x0E;
    qh[52] = 0x02;

    float y[256];
    bn_dequantize_row(BN_TYPE_Q6_K, blk, 256, 1, 0, y);
    assert_float_exact(y[0], -5.5f);     /* (10 | 0<<4) - 32 = -22, x scales[0]=1, x 0.25 */
    assert_float_exact(y[64], -13.75f);  /* (5 | 1<<4) - 32 = -11, x scales[4]=5 */
    assert_float_exact(y[32], 23.25f);   /* (15 | 3<<4) - 32 = 31, x scales[2]=3 */
    assert_float_exact(y[96], 5.25f);    /* (3 | 2<<4) - 32 = 3, x scales[6]=7 */
    assert_float_exact(y[31], 8.0f);     /* (0 | 1<<4) - 32 = -16, x scales[1]=-2 */
    assert_float_exact(y[63], 25.0f);    /* (7 | 0) - 32 = -25, x scales[3]=-4 */
    assert_float_exact(y[113], -56.0f);  /* (12 | 3<<4) - 32 = 28, x scales[7]=-8 */
    assert_float_exact(y[229], -26.25f); /* h=1 l=5: (9 | 1<<4) - 32 = -7, x scales[14]=15 */
    assert_float_exact(y[148], -35.0f);  /* h=1 l=20: (14 | 2<<4) - 32 = 14, x scales[9]=-10 */
    /* every element: group g = which quarter of the half, straight from the bullets */
    for (int e = 0; e < 256; e++) {
        int h = e / 128, g = (e % 128) / 32, l = e % 32;
        uint8_t L = ql[64 * h + 32 * (g & 1) + l];
        int lo = g < 2 ? L & 15 : L >> 4;
        int hi = (qh[32 * h + l] >> (2 * g)) & 3;
        int s = scales[8 * h + l / 16 + 2 * g];
        assert_float_exact(y[e], 0.25f * (float)(s * ((lo | hi << 4) - 32)));
    }
}

/* ---- ternary: I2_S vs TQ2_0 bit order ---- */

/* Codes of the 256-element test row: by 32-element group {2, 1, 0, 2} in each half,
 * with a few exceptions. */
static int pattern_code(int j) {
    static const int group[4] = {2, 1, 0, 2};
    switch (j) {
    case 5:
        return 0;
    case 39:
        return 2;
    case 95:
        return 1;
    case 96:
        return 0;
    case 138:
        return 1;
    case 255:
        return 0;
    }
    return group[(j % 128) / 32];
}

static void test_i2s_tq2_bit_order(void **state) {
    (void)state;
    float x[256], y[256];
    for (int j = 0; j < 256; j++) x[j] = (float)(pattern_code(j) - 1) * 0.75f;

    /* I2_S: byte b of a block = c[b]<<6 | c[b+32]<<4 | c[b+64]<<2 | c[b+96];
     * default 2<<6 | 1<<4 | 0<<2 | 2 = 0x92 */
    uint8_t want_i2s[64 + 32];
    memset(want_i2s, 0x92, 64);
    want_i2s[0] = 0x90;       /* c[96] = 0 */
    want_i2s[5] = 0x12;       /* c[5] = 0 */
    want_i2s[7] = 0xA2;       /* c[39] = 2 */
    want_i2s[31] = 0x96;      /* c[95] = 1 */
    want_i2s[32 + 10] = 0x52; /* c[138] = 1 */
    want_i2s[32 + 31] = 0x90; /* c[255] = 0 */
    memset(want_i2s + 64, 0, 32);
    want_i2s[64 + 2] = 0x40; /* f32 0.75 = 0x3F400000, little-endian */
    want_i2s[64 + 3] = 0x3F;

    /* TQ2_0: byte 32h+m = c[128h+m] | c[128h+32+m]<<2 | c[128h+64+m]<<4 | c[128h+96+m]<<6;
     * default 2 | 1<<2 | 0<<4 | 2<<6 = 0x86 */
    uint8_t want_tq2[66];
    memset(want_tq2, 0x86, 64);
    want_tq2[0] = 0x06;  /* c[96] = 0 */
    want_tq2[5] = 0x84;  /* c[5] = 0 */
    want_tq2[7] = 0x8A;  /* c[39] = 2 */
    want_tq2[31] = 0x96; /* c[95] = 1 */
    want_tq2[42] = 0x85; /* c[138] = 1 */
    want_tq2[63] = 0x06; /* c[255] = 0 */
    want_tq2[64] = 0x00; /* f16 0.75 = 0x3A00 */
    want_tq2[65] = 0x3A;

    uint8_t buf[96];
    bn_err err = {0};
    memset(buf, 0xEE, sizeof buf);
    assert_int_equal(bn_quantize(BN_TYPE_I2_S, x, 256, 1, buf, &err), BN_OK);
    assert_memory_equal(buf, want_i2s, 96);
    bn_dequantize_row(BN_TYPE_I2_S, want_i2s, 256, 1, 0, y);
    assert_memory_equal(y, x, sizeof x);
    /* the same row as two 128-element rows */
    bn_dequantize_row(BN_TYPE_I2_S, want_i2s, 128, 2, 1, y);
    assert_memory_equal(y, x + 128, 128 * sizeof(float));

    assert_int_equal(bn_quantize(BN_TYPE_TQ2_0, x, 256, 1, buf, &err), BN_OK);
    assert_memory_equal(buf, want_tq2, 66);
    bn_dequantize_row(BN_TYPE_TQ2_0, want_tq2, 256, 1, 0, y);
    assert_memory_equal(y, x, sizeof x);

    uint8_t codes[256];
    float sc[1];
    bn_ternary_row_codes(BN_TYPE_I2_S, want_i2s, 256, 1, 0, codes, sc);
    for (int j = 0; j < 256; j++) assert_int_equal(codes[j], pattern_code(j));
    assert_float_exact(sc[0], 0.75f);
    bn_ternary_row_codes(BN_TYPE_TQ2_0, want_tq2, 256, 1, 0, codes, sc);
    for (int j = 0; j < 256; j++) assert_int_equal(codes[j], pattern_code(j));
    assert_float_exact(sc[0], 0.75f);
}

/* I2_S code 3 reads as weight 0 (code 1); rows follow each other in the stream. */
static void test_i2s_rows_by_hand(void **state) {
    (void)state;
    /* ne0 = 384 (3 blocks), 2 rows: row 1 starts at byte 96 */
    uint8_t t[192 + 32];
    memset(t, 0x55, 192); /* every code 1 */
    memset(t + 192, 0, 32);
    const float s = 1.5f; /* 0x3FC00000 */
    t[192 + 2] = 0xC0;
    t[192 + 3] = 0x3F;
    t[96] = 0x40;  /* row 1 element 0 = 1; 32, 64, 96 = 0 */
    t[95] = 0xAB;  /* row 0 block 2 byte 31: elements 256+31, +63, +95 = 2, element 256+127 = 3 */
    t[100] = 0x9A; /* row 1 byte 4: element 4 = 2, 36 = 1, 68 = 2, 100 = 2 */
    t[191] = 0x01; /* row 1 block 2 byte 31: 287, 319, 351 = 0, element 383 = 1 */
    float y[384];
    uint8_t codes[384];
    float sc[2];

    bn_dequantize_row(BN_TYPE_I2_S, t, 384, 2, 0, y);
    for (int j = 0; j < 384; j++) {
        float want = 0.0f;
        if (j == 256 + 31 || j == 256 + 63 || j == 256 + 95) want = s;
        assert_float_exact(y[j], want); /* including code 3 at 383 -> 0 */
    }
    bn_ternary_row_codes(BN_TYPE_I2_S, t, 384, 2, 0, codes, sc);
    assert_int_equal(codes[256 + 31], 2);
    assert_int_equal(codes[256 + 127], 1); /* code 3 read as 1 */
    assert_int_equal(codes[0], 1);
    assert_float_exact(sc[0], s);
    assert_float_exact(sc[1], s);

    bn_dequantize_row(BN_TYPE_I2_S, t, 384, 2, 1, y);
    bn_ternary_row_codes(BN_TYPE_I2_S, t, 384, 2, 1, codes, sc);
    for (int j = 0; j < 384; j++) {
        int c = 1;
        if (j == 32 || j == 64 || j == 96) c = 0;
        if (j == 4 || j == 68 || j == 100) c = 2;
        if (j == 287 || j == 319 || j == 351) c = 0;
        assert_int_equal(codes[j], c);
        assert_float_exact(y[j], (float)(c - 1) * s);
    }

    /* validator: the code 3 is at row 0, block 2 */
    bn_err err = {0};
    assert_int_equal(bn_validate_ternary(BN_TYPE_I2_S, t, 384, 2, &err), BN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "row 0"));
    assert_non_null(strstr(err.msg, "block 2"));
    t[95] = 0xAA;
    assert_int_equal(bn_validate_ternary(BN_TYPE_I2_S, t, 384, 2, &err), BN_OK);
}

/* ---- TQ1_0 ---- */

static void test_tq1_by_hand(void **state) {
    (void)state;
    int c[256];
    for (int j = 0; j < 256; j++) c[j] = 1;
    /* qs[0] digits = elements 0, 32, 64, 96, 128 = (2,1,0,2,1):
     * v = 2*81 + 1*27 + 0*9 + 2*3 + 1 = 196, byte = ceil(196*256/243) = ceil(206.49) = 207 */
    c[0] = 2, c[32] = 1, c[64] = 0, c[96] = 2, c[128] = 1;
    /* qs[32] digits = elements 160, 176, 192, 208, 224 = (1,2,0,0,2):
     * v = 81 + 54 + 0 + 0 + 2 = 137, byte = ceil(35072/243) = ceil(144.33) = 145 */
    c[160] = 1, c[176] = 2, c[192] = 0, c[208] = 0, c[224] = 2;
    /* qh[0] digits = elements 240, 244, 248, 252 (+0) = (2,2,2,2):
     * v = 162 + 54 + 18 + 6 = 240, byte = ceil(61440/243) = ceil(252.84) = 253 */
    c[240] = 2, c[244] = 2, c[248] = 2, c[252] = 2;
    /* qh[3] digits = elements 243, 247, 251, 255 (+0) = (0,1,2,1):
     * v = 0 + 27 + 18 + 3 = 48, byte = ceil(12288/243) = ceil(50.57) = 51 */
    c[243] = 0, c[247] = 1, c[251] = 2, c[255] = 1;
    /* all-1 digits: qs v = 121 -> ceil(30976/243) = ceil(127.47) = 128;
     * qh v = 120 -> ceil(30720/243) = ceil(126.42) = 127 */
    uint8_t want[54];
    memset(want, 128, 48);
    want[0] = 207;
    want[32] = 145;
    want[48] = 253;
    want[49] = 127;
    want[50] = 127;
    want[51] = 51;
    want[52] = 0x00; /* d = 2.0 = f16 0x4000 */
    want[53] = 0x40;

    float x[256], y[256];
    for (int j = 0; j < 256; j++) x[j] = (float)(c[j] - 1) * 2.0f;
    uint8_t buf[54];
    bn_err err = {0};
    assert_int_equal(bn_quantize(BN_TYPE_TQ1_0, x, 256, 1, buf, &err), BN_OK);
    assert_memory_equal(buf, want, 54);
    bn_dequantize_row(BN_TYPE_TQ1_0, want, 256, 1, 0, y);
    assert_memory_equal(y, x, sizeof x);
    uint8_t codes[256];
    float sc;
    bn_ternary_row_codes(BN_TYPE_TQ1_0, want, 256, 1, 0, codes, &sc);
    for (int j = 0; j < 256; j++) assert_int_equal(codes[j], c[j]);
    assert_float_exact(sc, 2.0f);
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ1_0, want, 256, 1, &err), BN_OK);

    /* every 5-digit value in qs[0] (elements 0,32,64,96,128) and in qs[47] (elements
     * 175, 191, 207, 223, 239), every 4-digit value in qh[2] (242, 246, 250, 254) */
    for (int v = 0; v < 243; v++) {
        int t[5] = {v / 81, v / 27 % 3, v / 9 % 3, v / 3 % 3, v % 3};
        for (int j = 0; j < 256; j++) x[j] = 0.0f;
        x[1] = 1.0f; /* so that d = 1 even for v = 121 */
        for (int n = 0; n < 5; n++) {
            x[32 * n] = (float)(t[n] - 1);
            x[175 + 16 * n] = (float)(t[n] - 1);
            if (n < 4) x[242 + 4 * n] = (float)(t[n] - 1);
        }
        assert_int_equal(bn_quantize(BN_TYPE_TQ1_0, x, 256, 1, buf, &err), BN_OK);
        int qs_byte = (v * 256 + 242) / 243; /* ceil */
        int qh_v = t[0] * 81 + t[1] * 27 + t[2] * 9 + t[3] * 3;
        assert_int_equal(buf[0], qs_byte);
        assert_int_equal(buf[47], qs_byte);
        assert_int_equal(buf[50], (qh_v * 256 + 242) / 243);
        bn_dequantize_row(BN_TYPE_TQ1_0, buf, 256, 1, 0, y);
        assert_memory_equal(y, x, sizeof x);
        assert_int_equal(bn_validate_ternary(BN_TYPE_TQ1_0, buf, 256, 1, &err), BN_OK);
    }
}

/* ---- round trips and row codes of random ternary tensors ---- */

static float random_f16_scale(bt_rng *rng) {
    /* an f16-exact positive scale between 2^-6 and 2^4 */
    uint16_t h = (uint16_t)((bt_rng_int(rng, 9, 19) << 10) | bt_rng_int(rng, 0, 1023));
    return bn_f16_to_f32(h);
}

static void check_ternary_tensor(uint32_t type, int64_t ne0, int64_t nrows, uint64_t seed) {
    bt_rng rng;
    bt_rng_seed(&rng, seed);
    size_t n = (size_t)(ne0 * nrows);
    uint8_t *c = malloc(n);
    float *x = malloc(n * sizeof(float)), *y = malloc((size_t)ne0 * sizeof(float));
    int64_t ngroups = (ne0 + 255) / 256;
    float *blk_d = malloc((size_t)(nrows * ngroups) * sizeof(float));
    float *sc = malloc((size_t)ngroups * sizeof(float));
    uint8_t *codes = malloc((size_t)ne0);
    float tensor_scale = 0.3f;
    for (int64_t r = 0; r < nrows; r++)
        for (int64_t g = 0; g < ngroups; g++) blk_d[r * ngroups + g] = random_f16_scale(&rng);
    for (size_t i = 0; i < n; i++) c[i] = (uint8_t)bt_rng_int(&rng, 0, 2);
    for (size_t i = 0; i < n; i += 256) c[i] = 2; /* each block reaches its d */
    for (size_t i = 0; i < n; i++) {
        int64_t r = (int64_t)(i / (size_t)ne0), g = (int64_t)(i % (size_t)ne0) / 256;
        float d = type == BN_TYPE_I2_S ? tensor_scale : blk_d[r * ngroups + g];
        x[i] = (float)(c[i] - 1) * d;
    }
    const int64_t ne[4] = {ne0, nrows, 1, 1};
    size_t bytes;
    bn_err err = {0};
    assert_int_equal(bn_tensor_bytes(type, ne, &bytes, &err), BN_OK);
    uint8_t *q = malloc(bytes);
    assert_int_equal(bn_quantize(type, x, ne0, nrows, q, &err), BN_OK);
    assert_int_equal(bn_validate_ternary(type, q, ne0, nrows, &err), BN_OK);
    for (int64_t r = 0; r < nrows; r++) {
        bn_dequantize_row(type, q, ne0, nrows, r, y);
        assert_memory_equal(y, x + r * ne0, (size_t)ne0 * sizeof(float));
        bn_ternary_row_codes(type, q, ne0, nrows, r, codes, sc);
        assert_memory_equal(codes, c + r * ne0, (size_t)ne0);
        for (int64_t g = 0; g < ngroups; g++)
            assert_float_exact(sc[g], type == BN_TYPE_I2_S ? tensor_scale : blk_d[r * ngroups + g]);
    }
    if (type == BN_TYPE_I2_S) {
        float s;
        memcpy(&s, q + n / 4, 4);
        assert_float_exact(s, tensor_scale);
        for (int i = 4; i < 32; i++) assert_int_equal(q[n / 4 + (size_t)i], 0);
    }
    free(c), free(x), free(y), free(blk_d), free(sc), free(codes), free(q);
}

static void test_ternary_roundtrip(void **state) {
    (void)state;
    check_ternary_tensor(BN_TYPE_TQ2_0, 256, 1, 1);
    check_ternary_tensor(BN_TYPE_TQ2_0, 768, 5, 2);
    check_ternary_tensor(BN_TYPE_TQ1_0, 256, 1, 3);
    check_ternary_tensor(BN_TYPE_TQ1_0, 1024, 4, 4);
    check_ternary_tensor(BN_TYPE_I2_S, 128, 5, 5);
    check_ternary_tensor(BN_TYPE_I2_S, 384, 3, 6);
    check_ternary_tensor(BN_TYPE_I2_S, 2560, 3, 7);
}

/* Rounding of the ternary quantizers: half away from zero; d is the f16-rounded max. */
static void test_ternary_rounding(void **state) {
    (void)state;
    float x[256] = {0};
    x[0] = 1.0002f; /* f16(1.0002) = 1.0 (0x3C00); x / d = 1.0002 -> code 2 */
    x[1] = 0.5f;    /* 0.5 -> rounds away from zero: code 2 */
    x[2] = -0.5f;   /* code 0 */
    x[3] = 0.49f;   /* code 1 */
    x[4] = -1.0f;   /* code 0 */
    uint8_t buf[66];
    bn_err err = {0};
    assert_int_equal(bn_quantize(BN_TYPE_TQ2_0, x, 256, 1, buf, &err), BN_OK);
    /* byte 0: c[0]=2 | c[32]=1<<2 | c[64]=1<<4 | c[96]=1<<6 = 0x56; byte 1: 2 | 0x54 = 0x56;
     * byte 2: 0 | 0x54 = 0x54; byte 3: 1 | 0x54 = 0x55; byte 4: 0x54; others 0x55 */
    assert_int_equal(buf[0], 0x56);
    assert_int_equal(buf[1], 0x56);
    assert_int_equal(buf[2], 0x54);
    assert_int_equal(buf[3], 0x55);
    assert_int_equal(buf[4], 0x54);
    assert_int_equal(buf[5], 0x55);
    assert_int_equal(buf[64], 0x00);
    assert_int_equal(buf[65], 0x3C);

    /* all-zero block: d = 0, every code 1 */
    memset(x, 0, sizeof x);
    assert_int_equal(bn_quantize(BN_TYPE_TQ1_0, x, 256, 1, buf, &err), BN_OK);
    for (int i = 0; i < 48; i++) assert_int_equal(buf[i], 128);
    for (int i = 48; i < 52; i++) assert_int_equal(buf[i], 127);
    assert_int_equal(buf[52], 0);
    assert_int_equal(buf[53], 0);
    uint8_t i2s[64 + 32];
    assert_int_equal(bn_quantize(BN_TYPE_I2_S, x, 128, 2, i2s, &err), BN_OK);
    for (int i = 0; i < 64; i++) assert_int_equal(i2s[i], 0x55);
    for (int i = 64; i < 96; i++) assert_int_equal(i2s[i], 0);

    /* I2_S: one scale for the tensor, not per block: rows with smaller values still
     * use the global max */
    float t[256];
    for (int i = 0; i < 256; i++) t[i] = 0.0f;
    t[0] = 4.0f;    /* row 0 */
    t[128] = 1.9f;  /* row 1: 1.9 / 4 = 0.475 -> code 1 */
    t[129] = 2.0f;  /* 0.5 -> code 2 */
    t[130] = -3.0f; /* -0.75 -> code 0 */
    assert_int_equal(bn_quantize(BN_TYPE_I2_S, t, 128, 2, i2s, &err), BN_OK);
    assert_int_equal(i2s[0], 0x95);      /* c[0]=2 in bits 7..6, rest 1 */
    assert_int_equal(i2s[32], 0x55);     /* row 1 element 0: code 1 */
    assert_int_equal(i2s[33], 0x95);     /* element 1: code 2 */
    assert_int_equal(i2s[34], 0x15);     /* element 2: code 0 */
    assert_int_equal(i2s[64 + 3], 0x40); /* 4.0f = 0x40800000 */
    assert_int_equal(i2s[64 + 2], 0x80);
}

static void test_quantize_errors(void **state) {
    (void)state;
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = 1.0f;
    uint8_t buf[1024];
    bn_err err = {0};
    assert_int_equal(bn_quantize(BN_TYPE_Q4_K, x, 256, 1, buf, &err), BN_ERR_UNSUPPORTED);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 256, 1, buf, &err), BN_OK); /* test_quant_q6k.c */
    assert_int_equal(bn_quantize(BN_TYPE_Q4_0, x, 32, 1, buf, &err), BN_ERR_UNSUPPORTED);
    assert_int_equal(bn_quantize(13, x, 256, 1, buf, &err), BN_ERR_UNSUPPORTED);
    assert_int_equal(bn_quantize(BN_TYPE_TQ2_0, x, 128, 1, buf, &err), BN_ERR_FORMAT);
    assert_int_equal(bn_quantize(BN_TYPE_I2_S, x, 64, 1, buf, &err), BN_ERR_FORMAT);
    x[7] = NAN;
    assert_int_equal(bn_quantize(BN_TYPE_TQ2_0, x, 256, 1, buf, &err), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "element 7"));
    assert_int_equal(bn_quantize(BN_TYPE_I2_S, x, 128, 2, buf, &err), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_quantize(BN_TYPE_Q8_0, x, 32, 8, buf, &err), BN_ERR_INVALID_ARG);
    x[7] = 1e6f; /* d = 1e6 does not fit f16 */
    assert_int_equal(bn_quantize(BN_TYPE_TQ1_0, x, 256, 1, buf, &err), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_quantize(BN_TYPE_Q8_0, x, 256, 1, buf, &err), BN_OK); /* 1e6/127 fits */
    x[7] = 1e7f;
    assert_int_equal(bn_quantize(BN_TYPE_Q8_0, x, 256, 1, buf, &err), BN_ERR_INVALID_ARG);
    x[7] = 1e30f; /* I2_S keeps an f32 scale */
    assert_int_equal(bn_quantize(BN_TYPE_I2_S, x, 256, 1, buf, &err), BN_OK);
}

/* ---- validator ---- */

static void test_validate(void **state) {
    (void)state;
    bt_rng rng;
    bt_rng_seed(&rng, 99);
    float x[512];
    for (int i = 0; i < 512; i++) x[i] = (float)(bt_rng_int(&rng, 0, 2) - 1) * 0.5f;
    x[0] = 0.5f;
    bn_err err = {0};

    /* I2_S, 2 rows of 256: element 300 = row 1 element 44 = block 0 of the row (global
     * block 2), j = 44 -> byte 2*32 + 12 = 76 at shift 6 - 2*1 = 4 */
    uint8_t i2s[128 + 32];
    assert_int_equal(bn_quantize(BN_TYPE_I2_S, x, 256, 2, i2s, &err), BN_OK);
    assert_int_equal(bn_validate_ternary(BN_TYPE_I2_S, i2s, 256, 2, &err), BN_OK);
    uint8_t saved = i2s[76];
    i2s[76] |= 3 << 4;
    memset(&err, 0, sizeof err);
    assert_int_equal(bn_validate_ternary(BN_TYPE_I2_S, i2s, 256, 2, &err), BN_ERR_FORMAT);
    assert_true(strlen(err.msg) > 0);
    assert_non_null(strstr(err.msg, "row 1"));
    assert_non_null(strstr(err.msg, "block 0"));
    assert_non_null(strstr(err.msg, "element 44"));
    i2s[76] = saved;
    float bad[3] = {NAN, INFINITY, -0.5f};
    for (int k = 0; k < 3; k++) {
        memcpy(i2s + 128, &bad[k], 4);
        memset(&err, 0, sizeof err);
        assert_int_equal(bn_validate_ternary(BN_TYPE_I2_S, i2s, 256, 2, &err), BN_ERR_FORMAT);
        assert_true(strlen(err.msg) > 0);
    }
    float zero = 0.0f;
    memcpy(i2s + 128, &zero, 4);
    assert_int_equal(bn_validate_ternary(BN_TYPE_I2_S, i2s, 256, 2, &err), BN_OK);

    /* TQ2_0 2 rows x 256 */
    uint8_t tq2[132];
    assert_int_equal(bn_quantize(BN_TYPE_TQ2_0, x, 256, 2, tq2, &err), BN_OK);
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ2_0, tq2, 256, 2, &err), BN_OK);
    saved = tq2[66 + 33];
    tq2[66 + 33] |= 3 << 6; /* row 1 element 128 + 96 + 1 = 225 */
    memset(&err, 0, sizeof err);
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ2_0, tq2, 256, 2, &err), BN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "row 1"));
    assert_non_null(strstr(err.msg, "element 225"));
    tq2[66 + 33] = saved;
    put_f16(tq2 + 64, 0x7E00); /* NaN d in row 0 */
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ2_0, tq2, 256, 2, &err), BN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "row 0"));
    put_f16(tq2 + 64, 0x7C00); /* inf */
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ2_0, tq2, 256, 2, &err), BN_ERR_FORMAT);
    put_f16(tq2 + 64, 0x3800);
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ2_0, tq2, 256, 2, &err), BN_OK);

    /* TQ1_0: byte 1 decodes to digits 0,0,0,0,0 (1*3^n*3 < 256), whose packing is 0;
     * as a qh byte, 2 decodes to 0,0,0,0 (+0) whose packing is 0, although 2 is the
     * valid qs packing of v = 1 */
    uint8_t tq1[108];
    assert_int_equal(bn_quantize(BN_TYPE_TQ1_0, x, 256, 2, tq1, &err), BN_OK);
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ1_0, tq1, 256, 2, &err), BN_OK);
    saved = tq1[54 + 5];
    tq1[54 + 5] = 1;
    memset(&err, 0, sizeof err);
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ1_0, tq1, 256, 2, &err), BN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "row 1"));
    assert_non_null(strstr(err.msg, "qs[5]"));
    tq1[54 + 5] = 2; /* v = 1 */
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ1_0, tq1, 256, 2, &err), BN_OK);
    tq1[54 + 5] = saved;
    saved = tq1[49];
    tq1[49] = 2;
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ1_0, tq1, 256, 2, &err), BN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "qh[1]"));
    tq1[49] = 3; /* a valid qs byte (digits 0,0,0,0,2); as qh (0,0,0,0,+0) it packs to 0 */
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ1_0, tq1, 256, 2, &err), BN_ERR_FORMAT);
    tq1[49] = 4; /* v = 3 (digits 0,0,0,1,0) -> ceil(768/243) = 4: valid qh byte */
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ1_0, tq1, 256, 2, &err), BN_OK);
    tq1[49] = saved;
    put_f16(tq1 + 54 + 52, 0xFC00); /* -inf d, row 1 */
    assert_int_equal(bn_validate_ternary(BN_TYPE_TQ1_0, tq1, 256, 2, &err), BN_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "row 1"));

    /* count the byte values the TQ1_0 validator accepts in qs: exactly the 243 packings */
    int accepted = 0;
    uint8_t blk[54];
    memset(blk, 128, 48);
    memset(blk + 48, 127, 4);
    put_f16(blk + 52, 0x3C00);
    for (int b = 0; b < 256; b++) {
        blk[10] = (uint8_t)b;
        if (bn_validate_ternary(BN_TYPE_TQ1_0, blk, 256, 1, NULL) == BN_OK) accepted++;
    }
    assert_int_equal(accepted, 243);
    blk[10] = 128;
    accepted = 0;
    for (int b = 0; b < 256; b++) {
        blk[50] = (uint8_t)b;
        if (bn_validate_ternary(BN_TYPE_TQ1_0, blk, 256, 1, NULL) == BN_OK) accepted++;
    }
    assert_int_equal(accepted, 81);

    /* other types pass */
    assert_int_equal(bn_validate_ternary(BN_TYPE_F32, x, 256, 2, &err), BN_OK);
    /* a bad shape */
    assert_int_equal(bn_validate_ternary(BN_TYPE_I2_S, i2s, 100, 1, &err), BN_ERR_FORMAT);
}

/* bn_codes2_have_3 against a field-by-field scan written here: every length up
 * to 72 bytes (the word loop, its tail and both), a 3 in every field of every
 * byte, and the neighbour patterns where a shift by one bit crosses bytes. */
static bool has3_by_fields(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < 4; f++)
            if (((p[i] >> (2 * f)) & 3) == 3) return true;
    return false;
}

static void test_codes2_have_3(void **state) {
    (void)state;
    uint8_t buf[72];
    bt_rng r = bt_rng_new(7), *rng = &r;
    for (size_t n = 0; n <= sizeof buf; n++) {
        /* valid codes 0..2 everywhere */
        for (size_t i = 0; i < n; i++) {
            buf[i] = 0;
            for (int f = 0; f < 4; f++) buf[i] |= (uint8_t)(bt_rng_int(rng, 0, 2) << (2 * f));
        }
        assert_false(bn_codes2_have_3(buf, n));
        for (size_t i = 0; i < n; i++)
            for (int f = 0; f < 4; f++) {
                const uint8_t saved = buf[i];
                buf[i] |= (uint8_t)(3 << (2 * f));
                assert_true(bn_codes2_have_3(buf, n));
                assert_false(bn_codes2_have_3(buf, i)); /* the bytes before it */
                buf[i] = saved;
            }
        /* 0xAA (codes 2) next to 0x55 (codes 1): the bits a one-bit shift brings
         * together across a byte boundary must not count */
        for (size_t i = 0; i < n; i++) buf[i] = i % 2 ? 0x55 : 0xAA;
        assert_false(bn_codes2_have_3(buf, n));
        for (size_t i = 0; i < n; i++) buf[i] = i % 2 ? 0xAA : 0x55;
        assert_false(bn_codes2_have_3(buf, n));
        /* random codes, a 3 in about one field of 100: the field scan's answer */
        for (int k = 0; k < 8; k++) {
            for (size_t i = 0; i < n; i++) {
                buf[i] = 0;
                for (int f = 0; f < 4; f++) {
                    const int c = bt_rng_int(rng, 0, 99);
                    buf[i] |= (uint8_t)((c == 99 ? 3 : c % 3) << (2 * f));
                }
            }
            assert_int_equal(bn_codes2_have_3(buf, n), has3_by_fields(buf, n));
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_unknown_reason),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_act_row_bytes),
        cmocka_unit_test(test_f16_known),
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_float_rows),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_q4_k),
        cmocka_unit_test(test_q6_k),
        cmocka_unit_test(test_i2s_tq2_bit_order),
        cmocka_unit_test(test_i2s_rows_by_hand),
        cmocka_unit_test(test_tq1_by_hand),
        cmocka_unit_test(test_ternary_roundtrip),
        cmocka_unit_test(test_ternary_rounding),
        cmocka_unit_test(test_quantize_errors),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_codes2_have_3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
