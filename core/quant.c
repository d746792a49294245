/* quant.c - the scalar reference (de)quantizers of every element type, the
 * ternary validator and bn_ternary_row_codes (see types.h). Every faster kernel is
 * tested against these, so they are written for clarity, straight from the byte
 * layouts in FORMATS.md "Element types", which each routine repeats.
 *
 * Multi-byte fields are little-endian; f16 fields are read byte by byte, f32/i32
 * fields with memcpy (the engine targets little-endian hosts, checked below). */
#include "types.h"

#include <math.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "quant.c reads f32/i32 fields with memcpy and needs a little-endian host"
#endif

/* ---- small helpers ---- */

static float rd_f16(const uint8_t *p) {
    return bn_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

/* an f16 at p is inf or NaN: all exponent bits set */
static bool f16_not_finite(const uint8_t *p) {
    return (p[1] & 0x7c) == 0x7c;
}

static void wr_f16(uint8_t *p, uint16_t h) {
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

static float rd_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* Bytes of one row of a block type (the caller has checked the shape). */
static size_t row_size(uint32_t type, int64_t ne0) {
    size_t n = 0;
    bn_row_bytes(type, ne0, &n, NULL);
    return n;
}

/* Scale of an I2_S tensor: the f32 at byte ne0*nrows/4, right after all codes. */
static float i2s_scale(const void *tensor, int64_t ne0, int64_t nrows) {
    return rd_f32((const uint8_t *)tensor + (size_t)ne0 * (size_t)nrows / 4);
}

/* TQ1_0 base-3 fixed-point bytes. Five digits t0..t4 (t0 most significant) form
 * v = t0*81 + t1*27 + t2*9 + t3*3 + t4 in 0..242, stored as ceil(v * 256 / 243).
 * Digit n comes back as ((b * 3^n mod 256) * 3) >> 8. A qh byte holds four digits
 * and a fifth, least significant, digit 0. */
static uint8_t tq1_pack(const uint8_t t[5]) {
    unsigned v = (((t[0] * 3u + t[1]) * 3u + t[2]) * 3u + t[3]) * 3u + t[4];
    return (uint8_t)((v * 256u + 242u) / 243u);
}

static uint8_t tq1_digit(uint8_t b, int n) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    uint8_t q = (uint8_t)(b * pow3[n]); /* mod 256 */
    return (uint8_t)((q * 3u) >> 8);
}

/* ---- codes of the ternary types (c in 0..2, weight c - 1) ---- */

/* TQ2_0 block (66 bytes): u8 qs[64], f16 d. Element e = 128h + 32l + m is the
 * 2-bit field at shift 2l of qs[32h + m]. Returns d. */
static float tq2_block_codes(const uint8_t *blk, uint8_t c[BN_QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 4; l++)
            for (int m = 0; m < 32; m++) c[128 * h + 32 * l + m] = (blk[32 * h + m] >> (2 * l)) & 3;
    return rd_f16(blk + 64);
}

/* TQ1_0 block (54 bytes): u8 qs[48], u8 qh[4], f16 d. qs[m] (m < 32) digit n is
 * element 32n + m; qs[32 + m] (m < 16) digit n is element 160 + 16n + m; qh[j]
 * digit n (n < 4) is element 240 + 4n + j. Returns d. */
static float tq1_block_codes(const uint8_t *blk, uint8_t c[BN_QK_K]) {
    for (int m = 0; m < 32; m++)
        for (int n = 0; n < 5; n++) c[32 * n + m] = tq1_digit(blk[m], n);
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 5; n++) c[160 + 16 * n + m] = tq1_digit(blk[32 + m], n);
    for (int j = 0; j < 4; j++)
        for (int n = 0; n < 4; n++) c[240 + 4 * n + j] = tq1_digit(blk[48 + j], n);
    return rd_f16(blk + 52);
}

/* I2_S block (32 bytes, 128 elements): element j is the 2-bit field of byte
 * j mod 32 at shift 6 - 2 (j div 32); byte b holds b, b+32, b+64, b+96, the first
 * in bits 7..6. Code 3 is returned as is. */
static void i2s_block_codes(const uint8_t *blk, uint8_t c[BN_I2S_BLOCK]) {
    for (int q = 0; q < 4; q++) /* quarter q: elements 32q .. 32q+31, shift 6 - 2q */
        for (int b = 0; b < 32; b++) c[32 * q + b] = (uint8_t)((blk[b] >> (6 - 2 * q)) & 3);
}

void bn_ternary_row_codes(uint32_t type, const void *tensor, int64_t ne0, int64_t nrows,
                          int64_t row, uint8_t *codes, float *scales) {
    const uint8_t *base = tensor;
    if (type == BN_TYPE_I2_S) {
        /* rows are consecutive in the code stream: row r starts at byte r * ne0 / 4 */
        const uint8_t *p = base + (size_t)row * (size_t)ne0 / 4;
        for (int64_t b = 0; b < ne0 / BN_I2S_BLOCK; b++) {
            uint8_t *c = codes + b * BN_I2S_BLOCK;
            i2s_block_codes(p + 32 * b, c);
            for (int j = 0; j < BN_I2S_BLOCK; j++) /* kernel rule: code 3 is weight 0 */
                c[j] = (uint8_t)(c[j] - ((c[j] == 3) << 1));
        }
        float s = i2s_scale(tensor, ne0, nrows);
        for (int64_t g = 0; g < (ne0 + BN_QK_K - 1) / BN_QK_K; g++) scales[g] = s;
        return;
    }
    if (type != BN_TYPE_TQ1_0 && type != BN_TYPE_TQ2_0) return;
    size_t bb = type == BN_TYPE_TQ1_0 ? 54 : 66;
    const uint8_t *p = base + (size_t)row * row_size(type, ne0);
    for (int64_t b = 0; b < ne0 / BN_QK_K; b++) {
        uint8_t *c = codes + b * BN_QK_K;
        scales[b] =
            type == BN_TYPE_TQ1_0 ? tq1_block_codes(p + bb * b, c) : tq2_block_codes(p + bb * b, c);
    }
}

/* ---- dequantization ---- */

/* Q4_0 block (18 bytes): f16 d, u8 qs[16]; qs[j] low nibble is element j, high
 * nibble element j + 16; value = (nibble - 8) * d. */
static void deq_q4_0(const uint8_t *p, int64_t nb, float *y) {
    for (int64_t b = 0; b < nb; b++, p += 18, y += 32) {
        float d = rd_f16(p);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((p[2 + j] & 15) - 8) * d;
            y[j + 16] = (float)((p[2 + j] >> 4) - 8) * d;
        }
    }
}

/* Q8_0 block (34 bytes): f16 d, i8 q[32]; value = q * d. */
static void deq_q8_0(const uint8_t *p, int64_t nb, float *y) {
    for (int64_t b = 0; b < nb; b++, p += 34, y += 32) {
        float d = rd_f16(p);
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)p[2 + j] * d;
    }
}

/* Q4_K block (144 bytes): f16 d, f16 dmin, u8 scales[12], u8 qs[128]. Sub-block j
 * (32 elements) has 6-bit sc_j, m_j: j < 4: sc = scales[j] & 63, m = scales[j+4] & 63;
 * j >= 4: sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,
 *         m = (scales[j+4] >> 4) | (scales[j] >> 6) << 4.
 * Chunk c (0..3), l (0..31): element 64c + l = low nibble of qs[32c + l] (sub-block
 * 2c), element 64c + 32 + l = its high nibble (sub-block 2c+1). Value = d*sc*q - dmin*m. */
static void deq_q4_k(const uint8_t *p, int64_t nb, float *y) {
    for (int64_t b = 0; b < nb; b++, p += 144, y += BN_QK_K) {
        float d = rd_f16(p), dmin = rd_f16(p + 2);
        const uint8_t *sc = p + 4, *qs = p + 16;
        float mul[8], sub[8];
        for (int j = 0; j < 8; j++) {
            int s, m;
            if (j < 4) {
                s = sc[j] & 63;
                m = sc[j + 4] & 63;
            } else {
                s = (sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4);
                m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
            }
            mul[j] = d * (float)s;
            sub[j] = dmin * (float)m;
        }
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                uint8_t q = qs[32 * c + l];
                y[64 * c + l] = mul[2 * c] * (float)(q & 15) - sub[2 * c];
                y[64 * c + 32 + l] = mul[2 * c + 1] * (float)(q >> 4) - sub[2 * c + 1];
            }
    }
}

/* Q6_K block (210 bytes): u8 ql[128], u8 qh[64], i8 scales[16], f16 d. Half h
 * (128 elements) uses ql[64h..], qh[32h..], scales[8h..]. For l in 0..31, with
 * L = ql[64h+l], L' = ql[64h+32+l], H = qh[32h+l], s = 8h + l/16:
 *   128h + l      = (L & 15  | (H >> 0 & 3) << 4) - 32, times scales[s]
 *   128h + 32 + l = (L' & 15 | (H >> 2 & 3) << 4) - 32, times scales[s + 2]
 *   128h + 64 + l = (L >> 4  | (H >> 4 & 3) << 4) - 32, times scales[s + 4]
 *   128h + 96 + l = (L' >> 4 | (H >> 6 & 3) << 4) - 32, times scales[s + 6]
 * all times d. */
static void deq_q6_k(const uint8_t *p, int64_t nb, float *y) {
    for (int64_t b = 0; b < nb; b++, p += 210, y += BN_QK_K) {
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *scales = (const int8_t *)(p + 192);
        float d = rd_f16(p + 208);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                int L = ql[64 * h + l], L2 = ql[64 * h + 32 + l], H = qh[32 * h + l];
                int s = 8 * h + l / 16;
                int q0 = ((L & 15) | ((H >> 0) & 3) << 4) - 32;
                int q1 = ((L2 & 15) | ((H >> 2) & 3) << 4) - 32;
                int q2 = ((L >> 4) | ((H >> 4) & 3) << 4) - 32;
                int q3 = ((L2 >> 4) | ((H >> 6) & 3) << 4) - 32;
                float *o = y + 128 * h + l;
                o[0] = d * (float)(scales[s + 0] * q0);
                o[32] = d * (float)(scales[s + 2] * q1);
                o[64] = d * (float)(scales[s + 4] * q2);
                o[96] = d * (float)(scales[s + 6] * q3);
            }
    }
}

void bn_dequantize_row(uint32_t type, const void *tensor, int64_t ne0, int64_t nrows, int64_t row,
                       float *dst) {
    const uint8_t *p = (const uint8_t *)tensor;
    switch (type) {
    case BN_TYPE_F32: /* f32 per element */
        memcpy(dst, p + (size_t)row * (size_t)ne0 * 4, (size_t)ne0 * 4);
        return;
    case BN_TYPE_I32: /* i32 per element, converted to float */
        p += (size_t)row * (size_t)ne0 * 4;
        for (int64_t i = 0; i < ne0; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = (float)v;
        }
        return;
    case BN_TYPE_F16: /* f16 per element */
        p += (size_t)row * (size_t)ne0 * 2;
        for (int64_t i = 0; i < ne0; i++) dst[i] = rd_f16(p + 2 * i);
        return;
    case BN_TYPE_BF16: /* bf16 (upper half of an f32) per element */
        p += (size_t)row * (size_t)ne0 * 2;
        for (int64_t i = 0; i < ne0; i++)
            dst[i] = bn_bf16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return;
    case BN_TYPE_Q4_0:
        deq_q4_0(p + (size_t)row * row_size(type, ne0), ne0 / 32, dst);
        return;
    case BN_TYPE_Q8_0:
        deq_q8_0(p + (size_t)row * row_size(type, ne0), ne0 / 32, dst);
        return;
    case BN_TYPE_Q4_K:
        deq_q4_k(p + (size_t)row * row_size(type, ne0), ne0 / BN_QK_K, dst);
        return;
    case BN_TYPE_Q6_K:
        deq_q6_k(p + (size_t)row * row_size(type, ne0), ne0 / BN_QK_K, dst);
        return;
    case BN_TYPE_TQ1_0:
    case BN_TYPE_TQ2_0: {
        /* value = (c - 1) * d of the element's block */
        size_t bb = type == BN_TYPE_TQ1_0 ? 54 : 66;
        p += (size_t)row * row_size(type, ne0);
        uint8_t c[BN_QK_K];
        for (int64_t b = 0; b < ne0 / BN_QK_K; b++) {
            float d = type == BN_TYPE_TQ1_0 ? tq1_block_codes(p + bb * b, c)
                                            : tq2_block_codes(p + bb * b, c);
            for (int j = 0; j < BN_QK_K; j++) dst[b * BN_QK_K + j] = (float)(c[j] - 1) * d;
        }
        return;
    }
    case BN_TYPE_I2_S: {
        /* value = (c - 1) * scale, code 3 read as weight 0 */
        float s = i2s_scale(tensor, ne0, nrows);
        p += (size_t)row * (size_t)ne0 / 4;
        uint8_t c[BN_I2S_BLOCK];
        for (int64_t b = 0; b < ne0 / BN_I2S_BLOCK; b++) {
            i2s_block_codes(p + 32 * b, c);
            for (int j = 0; j < BN_I2S_BLOCK; j++)
                dst[b * BN_I2S_BLOCK + j] = c[j] == 3 ? 0.0f : (float)(c[j] - 1) * s;
        }
        return;
    }
    }
    /* ACT_Q8 and ids this engine does not read: callers check the type first; make a
     * misuse visible rather than leaving dst undefined */
    for (int64_t i = 0; i < ne0; i++) dst[i] = NAN;
}

/* ---- quantization ---- */

/* Ternary code of x for scale d: round(x / d) + 1 clamped to 0..2, rounding half
 * away from zero (roundf); d = 0 gives 1. x and d are finite. */
static uint8_t ternary_code(float x, float d) {
    if (d == 0.0f) return 1;
    float r = roundf(x / d);
    return r <= -1.0f ? 0 : r >= 1.0f ? 2 : 1;
}

static float block_amax(const float *x, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* A TQ block's d: f16(max|x|); codes are computed against the f16-rounded value. */
static bn_status tq_block_scale(const char *name, const float *x, int64_t row, int64_t b,
                                uint16_t *dh, float *d, bn_err *err) {
    float amax = block_amax(x, BN_QK_K);
    *dh = bn_f32_to_f16(amax);
    *d = bn_f16_to_f32(*dh);
    if (isinf(*d))
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "%s quantization: row %lld block %lld: scale %g does not fit f16", name,
                       (long long)row, (long long)b, (double)amax);
    return BN_OK;
}

/* TQ2_0 block: u8 qs[64] (element 128h + 32l + m at shift 2l of qs[32h + m]), f16 d. */
static void quant_tq2_block(const float *x, float d, uint16_t dh, uint8_t *blk) {
    memset(blk, 0, 64);
    for (int e = 0; e < BN_QK_K; e++) {
        int h = e / 128, l = (e % 128) / 32, m = e % 32;
        blk[32 * h + m] |= (uint8_t)(ternary_code(x[e], d) << (2 * l));
    }
    wr_f16(blk + 64, dh);
}

/* TQ1_0 block: u8 qs[48], u8 qh[4], f16 d, element order as in tq1_block_codes. */
static void quant_tq1_block(const float *x, float d, uint16_t dh, uint8_t *blk) {
    uint8_t c[BN_QK_K], t[5];
    for (int e = 0; e < BN_QK_K; e++) c[e] = ternary_code(x[e], d);
    for (int m = 0; m < 32; m++) {
        for (int n = 0; n < 5; n++) t[n] = c[32 * n + m];
        blk[m] = tq1_pack(t);
    }
    for (int m = 0; m < 16; m++) {
        for (int n = 0; n < 5; n++) t[n] = c[160 + 16 * n + m];
        blk[32 + m] = tq1_pack(t);
    }
    for (int j = 0; j < 4; j++) {
        for (int n = 0; n < 4; n++) t[n] = c[240 + 4 * n + j];
        t[4] = 0;
        blk[48 + j] = tq1_pack(t);
    }
    wr_f16(blk + 52, dh);
}

/* Q8_0 block: f16 d = f16(max|x| / 127), q = round(x / d) (half away from zero,
 * against the f16-rounded d, clamped to -127..127; d = 0 gives q = 0). */
static bn_status quant_q8_0_block(const float *x, int64_t row, int64_t b, uint8_t *blk,
                                  bn_err *err) {
    float amax = block_amax(x, 32);
    uint16_t dh = bn_f32_to_f16(amax / 127.0f);
    float d = bn_f16_to_f32(dh);
    if (isinf(d))
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "Q8_0 quantization: row %lld block %lld: scale %g does not fit f16",
                       (long long)row, (long long)b, (double)(amax / 127.0f));
    wr_f16(blk, dh);
    for (int j = 0; j < 32; j++) {
        float r = d == 0.0f ? 0.0f : roundf(x[j] / d);
        r = fminf(fmaxf(r, -127.0f), 127.0f);
        blk[2 + j] = (uint8_t)(int8_t)r;
    }
    return BN_OK;
}

/* Q6_K block (210 bytes, layout as in deq_q6_k): 16 runs of 16 elements, run m
 * (elements 16m .. 16m+15) with int8 scale scales[m]; value = d * scales[m] * q,
 * q in -32..31 stored as u = q + 32 (low 4 bits in ql, high 2 bits in qh).
 * Scales: run m's float scale is r_m = max|x| over the run / 31; d = f16(max_m r_m /
 * 127) and scales[m] = ceil(r_m / d) capped at 127, against the f16-rounded d, so
 * the step d * scales[m] is >= r_m (and at most 1/127 below it when capped): then
 * q = round(x / step) stays in -31..31 and every value is within half a step
 * (q is clamped to -32..31 all the same; q = 0 when the step is 0). Element e = 128h + 32j + l
 * (h in 0..1, j in 0..3, l in 0..31) goes to the low nibble (j = 0, 1) or high
 * nibble (j = 2, 3) of ql[64h + 32 (j & 1) + l] and to bits 2j..2j+1 of
 * qh[32h + l]. */
static bn_status quant_q6_k_block(const float *x, int64_t row, int64_t b, uint8_t *blk,
                                  bn_err *err) {
    float r[16], rmax = 0.0f;
    for (int m = 0; m < 16; m++) {
        r[m] = block_amax(x + 16 * m, 16) / 31.0f;
        rmax = fmaxf(rmax, r[m]);
    }
    uint16_t dh = bn_f32_to_f16(rmax / 127.0f);
    float d = bn_f16_to_f32(dh);
    if (isinf(d))
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "Q6_K quantization: row %lld block %lld: scale %g does not fit f16",
                       (long long)row, (long long)b, (double)(rmax / 127.0f));
    uint8_t *ql = blk, *qh = blk + 128;
    int8_t *scales = (int8_t *)(blk + 192);
    memset(blk, 0, 192);
    for (int m = 0; m < 16; m++) {
        float sc = d == 0.0f ? 0.0f : fminf(ceilf(r[m] / d), 127.0f);
        scales[m] = (int8_t)sc;
        float step = d * sc;
        for (int i = 0; i < 16; i++) {
            int e = 16 * m + i, h = e / 128, j = (e % 128) / 32, l = e % 32;
            float q = step == 0.0f ? 0.0f : fminf(fmaxf(roundf(x[e] / step), -32.0f), 31.0f);
            int u = (int)q + 32;
            ql[64 * h + 32 * (j & 1) + l] |= (uint8_t)((u & 15) << (j < 2 ? 0 : 4));
            qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * j));
        }
    }
    wr_f16(blk + 208, dh);
    return BN_OK;
}

bn_status bn_quantize(uint32_t type, const float *src, int64_t ne0, int64_t nrows, void *dst,
                      bn_err *err) {
    const int64_t ne[4] = {ne0, nrows, 1, 1};
    size_t total;
    bn_status st = bn_tensor_bytes(type, ne, &total, err);
    if (st != BN_OK) return st;
    const char *name = bn_type_name(type);
    uint8_t *out = dst;
    size_t n = (size_t)ne0 * (size_t)nrows;

    switch (type) {
    case BN_TYPE_F32:
        memcpy(out, src, n * 4);
        return BN_OK;
    case BN_TYPE_F16: /* f16 per element, little-endian */
        for (size_t i = 0; i < n; i++) wr_f16(out + 2 * i, bn_f32_to_f16(src[i]));
        return BN_OK;
    case BN_TYPE_BF16: /* bf16 per element, little-endian */
        for (size_t i = 0; i < n; i++) wr_f16(out + 2 * i, bn_f32_to_bf16(src[i]));
        return BN_OK;
    case BN_TYPE_Q8_0:
    case BN_TYPE_Q6_K:
    case BN_TYPE_TQ1_0:
    case BN_TYPE_TQ2_0:
    case BN_TYPE_I2_S:
        break;
    default:
        return bn_fail(err, BN_ERR_UNSUPPORTED, "quantization to %s is not implemented",
                       name ? name : "this type");
    }

    /* the remaining quantizers compute scales: refuse inf/NaN input */
    for (size_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            return bn_fail(err, BN_ERR_INVALID_ARG,
                           "%s quantization: row %lld element %lld is not finite", name,
                           (long long)(i / (size_t)ne0), (long long)(i % (size_t)ne0));

    if (type == BN_TYPE_I2_S) {
        /* codes of all rows in 128-element blocks of 32 bytes (byte b: elements b, b+32,
         * b+64, b+96 from bit 7 down), then a 32-byte tail: f32 scale, 28 zero bytes */
        float s = block_amax(src, (int64_t)n);
        for (size_t b = 0; b < n / BN_I2S_BLOCK; b++) {
            const float *x = src + b * BN_I2S_BLOCK;
            uint8_t *o = out + b * 32;
            for (int i = 0; i < 32; i++)
                o[i] = (uint8_t)(ternary_code(x[i], s) << 6 | ternary_code(x[i + 32], s) << 4 |
                                 ternary_code(x[i + 64], s) << 2 | ternary_code(x[i + 96], s));
        }
        memset(out + n / 4, 0, BN_I2S_TAIL);
        memcpy(out + n / 4, &s, 4);
        return BN_OK;
    }

    size_t rb = row_size(type, ne0);
    for (int64_t r = 0; r < nrows; r++) {
        const float *x = src + (size_t)r * (size_t)ne0;
        uint8_t *o = out + (size_t)r * rb;
        if (type == BN_TYPE_Q8_0) {
            for (int64_t b = 0; b < ne0 / 32; b++)
                if ((st = quant_q8_0_block(x + 32 * b, r, b, o + 34 * b, err)) != BN_OK) return st;
            continue;
        }
        if (type == BN_TYPE_Q6_K) {
            for (int64_t b = 0; b < ne0 / BN_QK_K; b++)
                if ((st = quant_q6_k_block(x + BN_QK_K * b, r, b, o + 210 * b, err)) != BN_OK)
                    return st;
            continue;
        }
        size_t bb = type == BN_TYPE_TQ1_0 ? 54 : 66;
        for (int64_t b = 0; b < ne0 / BN_QK_K; b++) {
            uint16_t dh;
            float d;
            if ((st = tq_block_scale(name, x + BN_QK_K * b, r, b, &dh, &d, err)) != BN_OK)
                return st;
            if (type == BN_TYPE_TQ1_0)
                quant_tq1_block(x + BN_QK_K * b, d, dh, o + bb * b);
            else
                quant_tq2_block(x + BN_QK_K * b, d, dh, o + bb * b);
        }
    }
    return BN_OK;
}

bool bn_codes2_have_3(const void *data, size_t n) {
    const uint8_t *p = data;
    /* x & (x >> 1) has bit 2j of a byte set when field j is 3; the bit that
     * crosses into bit 7 from the next byte is masked off with the odd bits */
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w0, w1, w2, w3; /* four loads, not an array (GCC copies one via the stack) */
        memcpy(&w0, p + i, 8);
        memcpy(&w1, p + i + 8, 8);
        memcpy(&w2, p + i + 16, 8);
        memcpy(&w3, p + i + 24, 8);
        a |= w0 & (w0 >> 1);
        b |= w1 & (w1 >> 1);
        c |= w2 & (w2 >> 1);
        d |= w3 & (w3 >> 1);
    }
    uint64_t bad = (a | b | c | d) & 0x5555555555555555ull;
    for (; i < n; i++) bad |= (uint64_t)(p[i] & (p[i] >> 1) & 0x55);
    return bad != 0;
}

/* ---- validation of ternary data ----
 * I2_S: every 2-bit code must be 0..2 (code 3 is a format error here, weight 0 in
 *       kernels); the tensor scale must be finite and >= 0.
 * TQ2_0: every code 0..2; every block's d finite.
 * TQ1_0: every block's d finite; digits always decode to 0..2, so instead each byte
 *       must be one the packer produces: a qs byte b must equal ceil(v*256/243) for
 *       v rebuilt from its 5 decoded digits, a qh byte likewise from its 4 decoded
 *       digits and a fifth digit 0 (13 of the 256 qs byte values, and more qh
 *       values, are not produced by any packing). */
bn_status bn_validate_ternary(uint32_t type, const void *tensor, int64_t ne0, int64_t nrows,
                              bn_err *err) {
    if (!bn_type_is_ternary(type)) return BN_OK;
    const int64_t ne[4] = {ne0, nrows, 1, 1};
    size_t total;
    bn_status st = bn_tensor_bytes(type, ne, &total, err);
    if (st != BN_OK) return st;
    const uint8_t *p = tensor;

    if (type == BN_TYPE_I2_S) {
        size_t nbytes = (size_t)ne0 * (size_t)nrows / 4;
        /* the byte loop only finds and reports the first code 3 */
        const bool any3 = bn_codes2_have_3(p, nbytes);
        for (size_t i = 0; any3 && i < nbytes; i++) {
            uint8_t b = p[i];
            if (!((b & (b >> 1)) & 0x55)) continue; /* no field with both bits set */
            int k = 0;
            while (((b >> (6 - 2 * k)) & 3) != 3) k++;
            size_t e = (i / 32) * BN_I2S_BLOCK + (i % 32) + 32 * (size_t)k; /* flat element */
            return bn_fail(
                err, BN_ERR_FORMAT, "I2_S: code 3 at row %lld, block %lld, element %lld (byte %zu)",
                (long long)(e / (size_t)ne0), (long long)(e % (size_t)ne0 / BN_I2S_BLOCK),
                (long long)(e % (size_t)ne0), i);
        }
        float s = i2s_scale(tensor, ne0, nrows);
        if (!isfinite(s) || s < 0.0f)
            return bn_fail(err, BN_ERR_FORMAT, "I2_S: tensor scale %g is %s", (double)s,
                           isfinite(s) ? "negative" : "not finite");
        return BN_OK;
    }

    /* TQ1_0: which byte values the packer produces, as qs (5 digits) and as qh
     * (4 digits and a fifth 0): 512 packings here instead of 52 per block */
    bool packs[2][256] = {{false}};
    if (type == BN_TYPE_TQ1_0)
        for (int v = 0; v < 256; v++)
            for (int q = 0; q < 2; q++) {
                uint8_t t[5];
                for (int n = 0; n < 5; n++) t[n] = n < 5 - q ? tq1_digit((uint8_t)v, n) : 0;
                packs[q][v] = tq1_pack(t) == v;
            }
    size_t rb = row_size(type, ne0);
    for (int64_t r = 0; r < nrows; r++)
        for (int64_t b = 0; b < ne0 / BN_QK_K; b++) {
            if (type == BN_TYPE_TQ2_0) {
                const uint8_t *blk = p + (size_t)r * rb + 66 * (size_t)b;
                if (f16_not_finite(blk + 64))
                    return bn_fail(err, BN_ERR_FORMAT, "TQ2_0: row %lld block %lld: d is %g",
                                   (long long)r, (long long)b, (double)rd_f16(blk + 64));
                if (!bn_codes2_have_3(blk, 64)) continue;
                for (int i = 0; i < 64; i++) {
                    uint8_t v = blk[i];
                    if (!((v & (v >> 1)) & 0x55)) continue;
                    int l = 0;
                    while (((v >> (2 * l)) & 3) != 3) l++;
                    return bn_fail(err, BN_ERR_FORMAT,
                                   "TQ2_0: code 3 at row %lld block %lld element %d", (long long)r,
                                   (long long)b, 128 * (i / 32) + 32 * l + i % 32);
                }
                continue;
            }
            const uint8_t *blk = p + (size_t)r * rb + 54 * (size_t)b;
            if (f16_not_finite(blk + 52))
                return bn_fail(err, BN_ERR_FORMAT, "TQ1_0: row %lld block %lld: d is %g",
                               (long long)r, (long long)b, (double)rd_f16(blk + 52));
            for (int i = 0; i < 52; i++) {
                if (!packs[i >= 48][blk[i]])
                    return bn_fail(err, BN_ERR_FORMAT,
                                   "TQ1_0: row %lld block %lld: %s[%d] = %u is not a valid "
                                   "base-3 packing",
                                   (long long)r, (long long)b, i < 48 ? "qs" : "qh",
                                   i < 48 ? i : i - 48, (unsigned)blk[i]);
            }
        }
    return BN_OK;
}
