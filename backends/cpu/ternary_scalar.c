/* ternary_scalar.c - the portable C table of ternary kernels (ternary.h):
 * what runs where no SIMD table does, and the fallback for the optional
 * entries (column and lookup-table layouts) of the other tables. Written for
 * clarity; the compiler vectorizes the inner loops where it can.
 *
 * Block layouts (FORMATS.md), decoded into codes c (0..3) here:
 *   I2_S  32 bytes / 128 elements: element j is the field of byte j % 32 at
 *         bit shift 6 - 2 * (j / 32); code 3 is read as 1.
 *   TQ2_0 66 bytes / 256 elements: element 128h + 32l + m is the field of
 *         qs[32h + m] at shift 2l; f16 d at byte 64.
 *   TQ1_0 54 bytes / 256 elements: base-3 digits, digit n of byte b is
 *         ((b * 3^n mod 256) * 3) >> 8; qs[m] (m < 32) digit n is element
 *         32n + m, qs[32 + m] (m < 16) digit n is element 160 + 16n + m, qh[j]
 *         digit n (n < 4) is element 240 + 4n + j; f16 d at byte 52. */
#include <string.h>

#include "ternary.h"

size_t bn_tern_row_bytes(int ti, int64_t K) {
    if (ti == BN_TK_I2S) return (size_t)K / 4;
    return (size_t)(K / 256) * (ti == BN_TK_TQ2 ? 66 : 54);
}

static void i2s_block(const uint8_t *p, uint8_t c[128]) {
    for (int j = 0; j < 128; j++) {
        uint8_t v = (p[j % 32] >> (6 - 2 * (j / 32))) & 3;
        c[j] = v == 3 ? 1 : v;
    }
}

static void tq2_block(const uint8_t *p, uint8_t c[256]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 4; l++)
            for (int m = 0; m < 32; m++) c[128 * h + 32 * l + m] = (p[32 * h + m] >> (2 * l)) & 3;
}

static uint8_t tq1_digit(uint8_t b, int n) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    return (uint8_t)(((uint8_t)(b * pow3[n]) * 3u) >> 8);
}

static void tq1_block(const uint8_t *p, uint8_t c[256]) {
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 32; m++) c[32 * n + m] = tq1_digit(p[m], n);
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 16; m++) c[160 + 16 * n + m] = tq1_digit(p[32 + m], n);
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++) c[240 + 4 * n + j] = tq1_digit(p[48 + j], n);
}

/* Codes of block b (128 elements for I2_S, 256 otherwise) of row r. */
static void block_codes(const bn_tern_w *w, int64_t r, int64_t b, uint8_t *c) {
    const uint8_t *row = w->data + (size_t)r * w->row_bytes;
    if (w->ti == BN_TK_I2S)
        i2s_block(row + 32 * b, c);
    else if (w->ti == BN_TK_TQ2)
        tq2_block(row + 66 * b, c);
    else
        tq1_block(row + 54 * b, c);
}

static int32_t dot_u8_i8(const uint8_t *c, const int8_t *q, int n) {
    int32_t s = 0;
    for (int i = 0; i < n; i++) s += (int32_t)c[i] * q[i];
    return s;
}

static void gemv(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q, int32_t *out,
                 bool group) {
    const int bl = w->ti == BN_TK_I2S ? 128 : 256;
    const int64_t nb = w->K / bl, G = w->K / 256;
    uint8_t c[256];
    for (int64_t r = r0; r < r1; r++) {
        uint32_t acc = 0;
        for (int64_t b = 0; b < nb; b++) {
            block_codes(w, r, b, c);
            int32_t s = dot_u8_i8(c, q + b * bl, bl);
            if (group)
                out[(r - r0) * G + b] = s;
            else
                acc += (uint32_t)s;
        }
        if (!group) out[r - r0] = (int32_t)acc;
    }
}

static void unpack(const bn_tern_w *w, int64_t r0, int64_t r1, int64_t k0, int64_t kn,
                   uint8_t *codes, size_t ldc) {
    const int bl = w->ti == BN_TK_I2S ? 128 : 256;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t b = 0; b < kn / bl; b++)
            block_codes(w, r, k0 / bl + b, codes + (size_t)(r - r0) * ldc + b * bl);
}

static void gemm(const uint8_t *codes, size_t ldc, int nr, const int8_t *const *q, int nt,
                 int64_t kn, int32_t *out, size_t ldo, bool group) {
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const uint8_t *c = codes + (size_t)r * ldc;
            if (group) {
                for (int64_t g = 0; g < kn / 256; g++)
                    out[(t * nr + r) * (kn / 256) + g] =
                        dot_u8_i8(c + 256 * g, q[t] + 256 * g, 256);
            } else {
                uint32_t acc = 0;
                for (int64_t i = 0; i < kn; i += 256) {
                    int n = kn - i < 256 ? (int)(kn - i) : 256;
                    acc += (uint32_t)dot_u8_i8(c + i, q[t] + i, n);
                }
                out[t * ldo + r] = (int32_t)((uint32_t)out[t * ldo + r] + acc);
            }
        }
}

/* ---- column layout ---- */

static inline uint8_t col_code(const uint8_t *col, int64_t r) {
    return (col[(r / 128) * 32 + r % 32] >> (6 - 2 * ((r % 128) / 32))) & 3;
}

size_t bn_tern_cols_scratch(int64_t K, int64_t rows) {
    /* the list of non-zero inputs, int16 and int32 accumulators */
    return ((size_t)K * 4 + 63) / 64 * 64 + ((size_t)rows * 2 + 63) / 64 * 64 + (size_t)rows * 4;
}

static void cols_gemv(const bn_tern_cols *w, int64_t r0, int64_t r1, const int8_t *q, int32_t *out,
                      void *scratch) {
    (void)scratch;
    for (int64_t r = r0; r < r1; r++) out[r - r0] = 0;
    for (int64_t k = 0; k < w->K; k++) {
        if (!q[k]) continue;
        const uint8_t *col = w->data + (size_t)k * w->col_bytes;
        for (int64_t r = r0; r < r1; r++) out[r - r0] += (int32_t)col_code(col, r) * q[k];
    }
}

static void cols_unpack(const bn_tern_cols *w, int64_t r0, int64_t k0, int64_t kn, uint8_t *codes,
                        size_t ldc) {
    for (int64_t k = k0; k < k0 + kn; k++) {
        const uint8_t *col = w->data + (size_t)k * w->col_bytes;
        for (int r = 0; r < 16; r++) codes[(size_t)r * ldc + (k - k0)] = col_code(col, r0 + r);
    }
}

const bn_tern_kernels bn_tern_scalar = {
    .name = "scalar",
    .gemv = {gemv, gemv, gemv},
    .unpack = {unpack, unpack, unpack},
    .gemm = gemm,
    .cols_gemv = cols_gemv,
    .cols_unpack = cols_unpack,
    .lut_tables = bn_tern_lut_tables_c,
    .lut_gemv = bn_tern_lut_gemv_c,
    .lut_unpack = bn_tern_lut_unpack_c,
};
