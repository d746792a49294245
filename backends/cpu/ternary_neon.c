/* ternary_neon.c - the NEON tables of ternary kernels (ternary.h) for Arm64:
 * "neon" (Armv8-A, every Arm64 CPU) and "neon-dotprod" (the SDOT instruction
 * of Armv8.2-A, compiled for it by the pragma around its functions; chosen
 * only where the CPU reports it, ternary_dispatch.c).
 *
 * Products of unsigned codes c (0..3, stored as bytes that are also valid
 * signed bytes) and signed activations q:
 *   neon          vmull_s8 / vmlal_high_s8: 16 products into 8 int16 lanes
 *                 (each lane the sum of two products, |x| <= 768), then
 *                 vpadalq_s16 adds adjacent lanes into 4 int32 lanes;
 *   neon-dotprod  vdotq_s32: 16 products, four per int32 lane, in one
 *                 instruction.
 * Unpacking 2-bit fields: (w >> s) & 3 on bytes (NEON shifts bytes, so
 * nothing leaks from a neighbour). I2_S code 3 (weight 0) becomes 1 by clearing
 * a field's high bit where its low bit is set, unless the weight's
 * preparation found no code 3 (w->clean). TQ1_0 base-3 digits: v = b * 3^n
 * mod 256 (vmulq_u8 wraps), digit = [v >= 86] + [v >= 171].
 * The column and lookup-table layouts use the portable kernels. */
#include "ternary.h"
#include "cpu_target.h"

#if defined(__aarch64__)

#include <arm_neon.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

/* (w >> S) & 3 per byte; S a constant. */
#define FLD(w, S) vandq_u8((S) ? vshrq_n_u8(w, (S) ? (S) : 1) : (w), vdupq_n_u8(3))

INLINE uint8x16_t i2s_fix(uint8x16_t w) {
    return vbicq_u8(w, vandq_u8(vshlq_n_u8(w, 1), vdupq_n_u8(0xaa)));
}

/* The 16 codes of elements 16i .. 16i + 15 of one block (I2_S: 128, TQ: 256
 * elements), c[i]. */
INLINE void i2s_codes(const uint8_t *p, bool fix, uint8x16_t c[8]) {
    uint8x16_t w0 = vld1q_u8(p), w1 = vld1q_u8(p + 16);
    if (fix) {
        w0 = i2s_fix(w0);
        w1 = i2s_fix(w1);
    }
    /* element 32j + b: byte b at shift 6 - 2j */
    c[0] = FLD(w0, 6);
    c[1] = FLD(w1, 6);
    c[2] = FLD(w0, 4);
    c[3] = FLD(w1, 4);
    c[4] = FLD(w0, 2);
    c[5] = FLD(w1, 2);
    c[6] = FLD(w0, 0);
    c[7] = FLD(w1, 0);
}

INLINE void tq2_codes(const uint8_t *p, uint8x16_t c[16]) {
    /* element 128h + 32l + m: qs[32h + m] at shift 2l */
    for (int h = 0; h < 2; h++) {
        const uint8x16_t w0 = vld1q_u8(p + 32 * h), w1 = vld1q_u8(p + 32 * h + 16);
        c[8 * h + 0] = FLD(w0, 0);
        c[8 * h + 1] = FLD(w1, 0);
        c[8 * h + 2] = FLD(w0, 2);
        c[8 * h + 3] = FLD(w1, 2);
        c[8 * h + 4] = FLD(w0, 4);
        c[8 * h + 5] = FLD(w1, 4);
        c[8 * h + 6] = FLD(w0, 6);
        c[8 * h + 7] = FLD(w1, 6);
    }
}

INLINE uint8x16_t digit(uint8x16_t v) {
    const uint8x16_t a = vcgeq_u8(v, vdupq_n_u8(86)), b = vcgeq_u8(v, vdupq_n_u8(171));
    return vsubq_u8(vsubq_u8(vdupq_n_u8(0), a), b);
}

INLINE void tq1_codes(const uint8_t *p, uint8x16_t c[16]) {
    const uint8x16_t three = vdupq_n_u8(3);
    /* qs[m], m < 32: digit n is element 32n + m */
    uint8x16_t v0 = vld1q_u8(p), v1 = vld1q_u8(p + 16);
    for (int n = 0; n < 5; n++) {
        c[2 * n] = digit(v0);
        c[2 * n + 1] = digit(v1);
        v0 = vmulq_u8(v0, three);
        v1 = vmulq_u8(v1, three);
    }
    /* qs[32 + m], m < 16: digit n is element 160 + 16n + m */
    uint8x16_t v = vld1q_u8(p + 32);
    for (int n = 0; n < 5; n++) {
        c[10 + n] = digit(v);
        v = vmulq_u8(v, three);
    }
    /* qh[j]: digit n (n < 4) is element 240 + 4n + j; lane 4n + j = qh[j] * 3^n */
    uint32_t h;
    memcpy(&h, p + 48, 4);
    static const uint8_t pw[16] = {1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27};
    c[15] = digit(vmulq_u8(vreinterpretq_u8_u32(vdupq_n_u32(h)), vld1q_u8(pw)));
}

/* ---- products, plain NEON ---- */

INLINE int32x4_t dot16(int32x4_t acc, uint8x16_t c, const int8_t *q) {
    const int8x16_t cs = vreinterpretq_s8_u8(c), qv = vld1q_s8(q);
    int16x8_t p = vmull_s8(vget_low_s8(cs), vget_low_s8(qv));
    p = vmlal_high_s8(p, cs, qv);
    return vpadalq_s16(acc, p);
}

/* A block's n16 vectors of codes times q: int32 lanes. */
INLINE int32x4_t dot_block(int32x4_t acc, const uint8x16_t *c, int n16, const int8_t *q) {
    for (int i = 0; i < n16; i++) acc = dot16(acc, c[i], q + 16 * i);
    return acc;
}

#define GEMV_FNS(SUFFIX, DOT_BLOCK)                                                                \
    static void gemv_i2s_##SUFFIX(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q,     \
                                  int32_t *out, bool group) {                                      \
        (void)group;                                                                               \
        const int64_t nb = w->K / 128;                                                             \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const uint8_t *p = w->data + (size_t)r * w->row_bytes;                                 \
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0;                                                \
            for (int64_t b = 0; b < nb; b++) {                                                     \
                uint8x16_t c[8];                                                                   \
                i2s_codes(p + 32 * b, !w->clean, c);                                               \
                if (b & 1)                                                                         \
                    a1 = DOT_BLOCK(a1, c, 8, q + 128 * b);                                         \
                else                                                                               \
                    a0 = DOT_BLOCK(a0, c, 8, q + 128 * b);                                         \
            }                                                                                      \
            out[r - r0] = vaddvq_s32(vaddq_s32(a0, a1));                                           \
        }                                                                                          \
    }                                                                                              \
    static void gemv_tq_##SUFFIX(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q,      \
                                 int32_t *out, bool group) {                                       \
        const int64_t nb = w->K / 256;                                                             \
        const size_t bb = w->ti == BN_TK_TQ2 ? 66 : 54;                                            \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const uint8_t *p = w->data + (size_t)r * w->row_bytes;                                 \
            int32x4_t acc = vdupq_n_s32(0);                                                        \
            for (int64_t b = 0; b < nb; b++) {                                                     \
                uint8x16_t c[16];                                                                  \
                if (w->ti == BN_TK_TQ2)                                                            \
                    tq2_codes(p + bb * b, c);                                                      \
                else                                                                               \
                    tq1_codes(p + bb * b, c);                                                      \
                if (group) {                                                                       \
                    out[(r - r0) * nb + b] =                                                       \
                        vaddvq_s32(DOT_BLOCK(vdupq_n_s32(0), c, 16, q + 256 * b));                 \
                } else {                                                                           \
                    acc = DOT_BLOCK(acc, c, 16, q + 256 * b);                                      \
                }                                                                                  \
            }                                                                                      \
            if (!group) out[r - r0] = vaddvq_s32(acc);                                             \
        }                                                                                          \
    }

GEMV_FNS(neon, dot_block)

/* ---- unpacking (shared by both tables) ---- */

static void unpack_i2s(const bn_tern_w *w, int64_t r0, int64_t r1, int64_t k0, int64_t kn,
                       uint8_t *codes, size_t ldc) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *p = w->data + (size_t)r * w->row_bytes + k0 / 4;
        uint8_t *o = codes + (size_t)(r - r0) * ldc;
        for (int64_t b = 0; b < kn / 128; b++) {
            uint8x16_t c[8];
            i2s_codes(p + 32 * b, true, c);
            for (int i = 0; i < 8; i++) vst1q_u8(o + 128 * b + 16 * i, c[i]);
        }
    }
}

static void unpack_tq(const bn_tern_w *w, int64_t r0, int64_t r1, int64_t k0, int64_t kn,
                      uint8_t *codes, size_t ldc) {
    const size_t bb = w->ti == BN_TK_TQ2 ? 66 : 54;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *p = w->data + (size_t)r * w->row_bytes + (size_t)(k0 / 256) * bb;
        uint8_t *o = codes + (size_t)(r - r0) * ldc;
        for (int64_t b = 0; b < kn / 256; b++) {
            uint8x16_t c[16];
            if (w->ti == BN_TK_TQ2)
                tq2_codes(p + bb * b, c);
            else
                tq1_codes(p + bb * b, c);
            for (int i = 0; i < 16; i++) vst1q_u8(o + 256 * b + 16 * i, c[i]);
        }
    }
}

/* ---- GEMM micro-kernel: nr rows of byte codes x nt tokens ----
 * 16 elements a step; row mode sums the whole kn, group mode each 256. */
#define GEMM_FNS(SUFFIX, DOT16)                                                                    \
    INLINE void gemm_tile_##SUFFIX(const uint8_t *c, size_t ldc, const int nr,                     \
                                   const int8_t *const *q, const int nt, int64_t kn, int32_t *out, \
                                   size_t ldo, bool group) {                                       \
        const int64_t step = group ? 256 : kn;                                                     \
        for (int64_t k = 0; k < kn; k += step) {                                                   \
            int32x4_t acc[BN_TERN_MR][BN_TERN_NT];                                                 \
            for (int r = 0; r < nr; r++)                                                           \
                for (int t = 0; t < nt; t++) acc[r][t] = vdupq_n_s32(0);                           \
            for (int64_t j = k; j < k + step; j += 16) {                                           \
                uint8x16_t cv[BN_TERN_MR];                                                         \
                for (int r = 0; r < nr; r++) cv[r] = vld1q_u8(c + (size_t)r * ldc + j);            \
                for (int t = 0; t < nt; t++)                                                       \
                    for (int r = 0; r < nr; r++) acc[r][t] = DOT16(acc[r][t], cv[r], q[t] + j);    \
            }                                                                                      \
            for (int r = 0; r < nr; r++)                                                           \
                for (int t = 0; t < nt; t++) {                                                     \
                    const int32_t s = vaddvq_s32(acc[r][t]);                                       \
                    if (group)                                                                     \
                        out[(t * nr + r) * (kn / 256) + k / 256] = s;                              \
                    else                                                                           \
                        out[t * ldo + r] = (int32_t)((uint32_t)out[t * ldo + r] + (uint32_t)s);    \
                }                                                                                  \
        }                                                                                          \
    }                                                                                              \
    static void gemm_##SUFFIX(const uint8_t *codes, size_t ldc, int nr, const int8_t *const *q,    \
                              int nt, int64_t kn, int32_t *out, size_t ldo, bool group) {          \
        /* constant tile shapes, so the accumulators stay in registers */                          \
        for (int r = 0; r < nr; r += 2) {                                                          \
            const int n2 = nr - r < 2 ? nr - r : 2;                                                \
            const uint8_t *cr = codes + (size_t)r * ldc;                                           \
            int32_t tmp[BN_TERN_NT * 2 * 64], *o = group ? tmp : out + r;                          \
            const int64_t ng = kn / 256;                                                           \
            for (int64_t g0 = 0; g0 < (group ? ng : 1); g0 += 64) {                                \
                const int64_t gn = group ? (ng - g0 < 64 ? ng - g0 : 64) : 0;                      \
                const int64_t len = group ? 256 * gn : kn;                                         \
                const int8_t *qq[BN_TERN_NT];                                                      \
                for (int t = 0; t < nt; t++) qq[t] = q[t] + 256 * g0;                              \
                const uint8_t *cc = cr + 256 * g0;                                                 \
                if (n2 == 2) {                                                                     \
                    if (nt == 4)                                                                   \
                        gemm_tile_##SUFFIX(cc, ldc, 2, qq, 4, len, o, ldo, group);                 \
                    else if (nt == 3)                                                              \
                        gemm_tile_##SUFFIX(cc, ldc, 2, qq, 3, len, o, ldo, group);                 \
                    else if (nt == 2)                                                              \
                        gemm_tile_##SUFFIX(cc, ldc, 2, qq, 2, len, o, ldo, group);                 \
                    else                                                                           \
                        gemm_tile_##SUFFIX(cc, ldc, 2, qq, 1, len, o, ldo, group);                 \
                } else {                                                                           \
                    if (nt == 4)                                                                   \
                        gemm_tile_##SUFFIX(cc, ldc, 1, qq, 4, len, o, ldo, group);                 \
                    else if (nt == 3)                                                              \
                        gemm_tile_##SUFFIX(cc, ldc, 1, qq, 3, len, o, ldo, group);                 \
                    else if (nt == 2)                                                              \
                        gemm_tile_##SUFFIX(cc, ldc, 1, qq, 2, len, o, ldo, group);                 \
                    else                                                                           \
                        gemm_tile_##SUFFIX(cc, ldc, 1, qq, 1, len, o, ldo, group);                 \
                }                                                                                  \
                if (group)                                                                         \
                    for (int t = 0; t < nt; t++)                                                   \
                        for (int i = 0; i < n2; i++)                                               \
                            for (int64_t g = 0; g < gn; g++)                                       \
                                out[(t * nr + r + i) * ng + g0 + g] = tmp[(t * n2 + i) * gn + g];  \
            }                                                                                      \
        }                                                                                          \
    }

GEMM_FNS(neon, dot16)

const bn_tern_kernels bn_tern_neon = {
    .name = "neon",
    .gemv = {gemv_i2s_neon, gemv_tq_neon, gemv_tq_neon},
    .unpack = {unpack_i2s, unpack_tq, unpack_tq},
    .gemm = gemm_neon,
};

/* ---- the dot-product table ---- */

BN_TARGET_PUSH(BN_TARGET_ARM_DOTPROD)

INLINE int32x4_t dot16_dp(int32x4_t acc, uint8x16_t c, const int8_t *q) {
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
    /* Clang's arm_neon.h (15 and older) declares vdotq_s32 only when the whole
     * file targets dotprod; the instruction itself is accepted here. */
    const int8x16_t x = vld1q_s8(q);
    __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(vreinterpretq_s8_u8(c)), "w"(x));
    return acc;
#else
    return vdotq_s32(acc, vreinterpretq_s8_u8(c), vld1q_s8(q));
#endif
}

INLINE int32x4_t dot_block_dp(int32x4_t acc, const uint8x16_t *c, int n16, const int8_t *q) {
    for (int i = 0; i < n16; i++) acc = dot16_dp(acc, c[i], q + 16 * i);
    return acc;
}

GEMV_FNS(dot, dot_block_dp)
GEMM_FNS(dot, dot16_dp)

const bn_tern_kernels bn_tern_neon_dot = {
    .name = "neon-dotprod",
    .gemv = {gemv_i2s_dot, gemv_tq_dot, gemv_tq_dot},
    .unpack = {unpack_i2s, unpack_tq, unpack_tq},
    .gemm = gemm_dot,
};

BN_TARGET_POP

#endif
