/* ternary_x86.h - what the AVX2 and AVX-512 tables of ternary kernels
 * (ternary_avx2.c, ternary_avx512.c) share: load/store macros, the int32
 * horizontal sum, the 2-bit field helpers, the TQ1_0 base-3 decode, and the
 * unpacking of I2_S, TQ2_0 and TQ1_0 rows into byte codes (0, 1, 2) for the
 * GEMM. Include it after the file's target pragma (AVX2 at least), so these
 * compile for that target. The including file defines digit() (declared
 * below), which each table computes with its own instructions. */
#ifndef BN_CPU_TERNARY_X86_H
#define BN_CPU_TERNARY_X86_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "ternary.h"

#define LD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define ST(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), v)
#define INLINE static inline __attribute__((always_inline))

INLINE int32_t hsum256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* (w >> s) & 3 per byte: 16-bit shifts, the bits shifted in from the
 * neighbouring byte masked off. */
INLINE __m256i field(__m256i w, int s) {
    return _mm256_and_si256(s ? _mm256_srli_epi16(w, s) : w, _mm256_set1_epi8(3));
}

/* I2_S code 3 -> 1 in every field of w: clear the high bit where the low one is set. */
INLINE __m256i i2s_fix(__m256i w) {
    const __m256i hi = _mm256_set1_epi8((char)0xaa);
    return _mm256_andnot_si256(_mm256_and_si256(_mm256_slli_epi16(w, 1), hi), w);
}

/* ---- TQ1_0: 54 bytes per 256 elements, base-3 digits ----
 * Digit n of byte b is ((b * 3^n mod 256) * 3) >> 8 = [v >= 86] + [v >= 171]
 * with v = b * 3^n mod 256 (the products are formed by bytewise adds, which
 * wrap mod 256). The 8 vectors hold elements 32j .. 32j + 31 in order: j < 5
 * are digit j of qs[0..32); j = 5: digits 0 | 1 of qs[32..48) (elements
 * 160..191); j = 6: digits 2 | 3 (192..223); j = 7: digit 4 of qs[32..48) |
 * the four digits of qh[0..4) (224..255, element 240 + 4n + j' being digit n
 * of qh[j']). */

/* [v >= 86] + [v >= 171] per unsigned byte: defined by the including file. */
INLINE __m256i digit(__m256i v);

INLINE __m256i mul3(__m256i v) {
    return _mm256_add_epi8(v, _mm256_add_epi8(v, v));
}

INLINE void tq1_codes(const uint8_t *p, __m256i c[8]) {
    __m256i v = LD(p);
    for (int n = 0; n < 5; n++) {
        c[n] = digit(v);
        if (n < 4) v = mul3(v);
    }
    __m256i x =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(p + 32)));
    x = _mm256_blend_epi32(x, mul3(x), 0xf0); /* b | 3b */
    c[5] = digit(x);
    x = mul3(mul3(x)); /* 9b | 27b */
    c[6] = digit(x);
    x = mul3(mul3(x)); /* 81b | (unused) */
    uint32_t h;
    memcpy(&h, p + 48, 4);
    /* byte 4n + j = qh[j] * 3^n mod 256: multiply 16-bit lanes, even and odd bytes apart */
    const __m128i hv = _mm_set1_epi32((int)h), mul = _mm_setr_epi16(1, 1, 3, 3, 9, 9, 27, 27);
    __m128i ev = _mm_and_si128(_mm_mullo_epi16(hv, mul), _mm_set1_epi16(0xff));
    __m128i od = _mm_slli_epi16(_mm_mullo_epi16(_mm_srli_epi16(hv, 8), mul), 8);
    c[7] = digit(_mm256_inserti128_si256(x, _mm_or_si128(ev, od), 1));
}

/* ---- Unpacking for the GEMM: rows r0 .. r1 - 1, elements k0 .. k0 + kn - 1
 * (kn a multiple of 256), as byte codes; row r - r0 at codes + (r - r0) * ldc.
 * I2_S: element 32j + b of a 128-element block in byte b at shift 6 - 2j, code 3
 * read as 1. TQ2_0: element 128h + 32l + m of a block in qs[32h + m] at shift 2l. */

static inline void unpack_i2s(const bn_tern_w *w, int64_t r0, int64_t r1, int64_t k0, int64_t kn,
                              uint8_t *codes, size_t ldc) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *p = w->data + (size_t)r * w->row_bytes + k0 / 4;
        uint8_t *c = codes + (size_t)(r - r0) * ldc;
        for (int64_t b = 0; b < kn / 128; b++) {
            __m256i v = i2s_fix(LD(p + 32 * b));
            for (int j = 0; j < 4; j++) ST(c + 128 * b + 32 * j, field(v, 6 - 2 * j));
        }
    }
}

static inline void unpack_tq2(const bn_tern_w *w, int64_t r0, int64_t r1, int64_t k0, int64_t kn,
                              uint8_t *codes, size_t ldc) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *p = w->data + (size_t)r * w->row_bytes + (size_t)(k0 / 256) * 66;
        uint8_t *c = codes + (size_t)(r - r0) * ldc;
        for (int64_t b = 0; b < kn / 256; b++)
            for (int h = 0; h < 2; h++) {
                __m256i v = LD(p + 66 * b + 32 * h);
                for (int l = 0; l < 4; l++) ST(c + 256 * b + 128 * h + 32 * l, field(v, 2 * l));
            }
    }
}

static inline void unpack_tq1(const bn_tern_w *w, int64_t r0, int64_t r1, int64_t k0, int64_t kn,
                              uint8_t *codes, size_t ldc) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *p = w->data + (size_t)r * w->row_bytes + (size_t)(k0 / 256) * 54;
        uint8_t *c = codes + (size_t)(r - r0) * ldc;
        for (int64_t b = 0; b < kn / 256; b++) {
            __m256i v[8];
            tq1_codes(p + 54 * b, v);
            for (int j = 0; j < 8; j++) ST(c + 256 * b + 32 * j, v[j]);
        }
    }
}

#endif
