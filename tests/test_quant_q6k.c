/* test_quant_q6k.c - the Q6_K quantizer of bn_quantize (core/quant.c): bytes
 * checked by hand against FORMATS.md's layout, round trips through
 * bn_dequantize_row with the error bound the scheme promises, zero runs and
 * the errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "types.h"

#define TEST(name) static void name(void **state __attribute__((unused)))

/* Every 16-run starts with 31, so every run's scale r = 31/31 = 1, d = f16(1/127)
 * = 0x2008 (0.00787353515625), every int8 scale round(1/d) = 127 and the step
 * d * 127 = 0.99993896484375: integer inputs in -31..31 quantize to themselves. */
TEST(test_hand_checked_block) {
    float x[256];
    for (int e = 0; e < 256; e++) x[e] = (float)((e * 7) % 61 - 30); /* -30..30 */
    for (int m = 0; m < 16; m++) x[16 * m] = 31.0f;
    x[1] = -31.0f;       /* h 0, j 0, l 1 */
    x[33] = 0.0f;        /* h 0, j 1, l 1 */
    x[65] = 5.0f;        /* h 0, j 2, l 1 */
    x[97] = -20.0f;      /* h 0, j 3, l 1 */
    x[128 + 40] = -7.0f; /* h 1, j 1, l 8 */
    uint8_t blk[210];
    bn_err err = {0};
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 256, 1, blk, &err), BN_OK);
    const uint8_t *ql = blk, *qh = blk + 128;
    const int8_t *sc = (const int8_t *)(blk + 192);
    assert_int_equal(blk[208], 0x08);
    assert_int_equal(blk[209], 0x20);
    for (int m = 0; m < 16; m++) assert_int_equal(sc[m], 127);
    /* elements 0, 32, 64, 96 are all 31 (u = 63): nibbles 15, high bits 3 */
    assert_int_equal(ql[0], 0xFF);
    assert_int_equal(ql[32], 0xFF);
    assert_int_equal(qh[0], 0xFF);
    /* l = 1: u = 1 (low nibble of ql[1]), 32 (ql[33] low), 37 (ql[1] high), 12 (ql[33] high);
     * high bits 0, 2, 2, 0 at shifts 0, 2, 4, 6 of qh[1] */
    assert_int_equal(ql[1], 0x51);
    assert_int_equal(ql[33], 0xC0);
    assert_int_equal(qh[1], 0x28);
    /* element 168 = 128 + 32*1 + 8: u = 25 = 0b01 1001 -> low nibble of ql[64+32+8], bits 2..3 of
     * qh[32+8] */
    assert_int_equal(ql[104] & 15, 9);
    assert_int_equal((qh[40] >> 2) & 3, 1);
    float y[256];
    bn_dequantize_row(BN_TYPE_Q6_K, blk, 256, 1, 0, y);
    for (int e = 0; e < 256; e++)
        if (y[e] != 0.00787353515625f * (float)(127 * (int)x[e]))
            fail_msg("element %d: %g, want %g * step", e, (double)y[e], (double)x[e]);
}

/* Random rows: each value within half a step of its run (the step is the run's
 * d * scale) and the NMSE of a 6-bit code. */
TEST(test_round_trip) {
    bt_rng r;
    bt_rng_seed(&r, 7);
    const int64_t K = 1024, N = 5;
    float *x = malloc(sizeof(float) * K * N), *y = malloc(sizeof(float) * K);
    uint8_t *q = malloc(210 * (K / 256) * N);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(q);
    for (int64_t i = 0; i < K * N; i++) x[i] = (float)(bt_rng_normal(&r) * (1 + i % 3));
    for (int64_t i = 0; i < 16; i++) x[K + 16 + i] = 0.0f; /* row 1: one all-zero run */
    for (int64_t i = 0; i < 256; i++) x[2 * K + i] = 0.0f; /* row 2: an all-zero block */
    bn_err err = {0};
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, K, N, q, &err), BN_OK);
    double num = 0, den = 0;
    for (int64_t n = 0; n < N; n++) {
        bn_dequantize_row(BN_TYPE_Q6_K, q, K, N, n, y);
        const float *xr = x + n * K;
        for (int64_t b = 0; b < K / 256; b++) {
            const uint8_t *blk = q + (n * (K / 256) + b) * 210;
            float d = bn_f16_to_f32((uint16_t)(blk[208] | blk[209] << 8));
            for (int m = 0; m < 16; m++) {
                float step = d * (float)((const int8_t *)blk)[192 + m];
                for (int i = 0; i < 16; i++) {
                    int64_t e = b * 256 + 16 * m + i;
                    double err_e = fabs((double)y[e] - xr[e]);
                    if (err_e > 0.5 * step * 1.0001 + 1e-12)
                        fail_msg("row %lld element %lld: %g vs %g, step %g", (long long)n,
                                 (long long)e, (double)y[e], (double)xr[e], (double)step);
                    num += err_e * err_e;
                    den += (double)xr[e] * xr[e];
                }
            }
        }
    }
    /* uniform rounding error of a 6-bit code over Gaussian runs: about 1e-3 */
    assert_true(num / den < 3e-3);
    bn_dequantize_row(BN_TYPE_Q6_K, q, K, N, 2, y);
    for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
    bn_dequantize_row(BN_TYPE_Q6_K, q, K, N, 1, y);
    for (int i = 16; i < 32; i++) assert_true(y[i] == 0.0f);
    assert_int_equal(((const int8_t *)q)[210 * 4 + 192 + 1], 0); /* row 1, block 0, run 1 */
    free(x);
    free(y);
    free(q);
}

TEST(test_errors) {
    float x[256];
    uint8_t buf[512];
    bn_err err = {0};
    for (int i = 0; i < 256; i++) x[i] = 0.5f;
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 128, 1, buf, &err), BN_ERR_FORMAT);
    x[9] = NAN;
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 256, 1, buf, &err), BN_ERR_INVALID_ARG);
    x[9] = 1e9f; /* d = 1e9 / 31 / 127 does not fit f16 */
    assert_int_equal(bn_quantize(BN_TYPE_Q6_K, x, 256, 1, buf, &err), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "Q6_K"));
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hand_checked_block),
                                       cmocka_unit_test(test_round_trip),
                                       cmocka_unit_test(test_errors)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
