/* ternary_avx2.c - the AVX2 table of ternary kernels (ternary.h). Every
 * function here is compiled for AVX2 (the pragma below), so nothing in this
 * file may run before ternary_dispatch.c has checked the CPU.
 *
 * The product. _mm256_maddubs_epi16(c, q) multiplies 32 unsigned bytes c (the
 * 2-bit codes, 0..3) by 32 signed bytes q (activations) and adds adjacent
 * pairs into 16 int16: |c0 q0 + c1 q1| <= 2 * 3 * 128 = 768, so no pair
 * saturates, and up to 42 such results add in int16 without overflow. The
 * kernels add the 4 or 8 products of one block in int16, then widen with
 * _mm256_madd_epi16(x, 1) (adjacent int16 pairs into int32) and accumulate
 * int32. The sum of activations is subtracted by the driver (C - Q).
 *
 * Unpacking 2-bit fields: (w >> s) & 3 on 16-bit lanes; bits shifted in from
 * the neighbouring byte are masked off. I2_S code 3 (weight 0) becomes 1 by
 * clearing a field's high bit when its low bit is set; weights whose
 * preparation found no code 3 skip that (w->clean). The several-token kernel
 * (gemv_multi) unpacks each 32 weight bytes once for up to four tokens. */
#include "ternary.h"
#include "cpu_target.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <string.h>

BN_TARGET_PUSH(BN_TARGET_AVX2)

#include "ternary_x86.h"

/* ---- I2_S: 32 bytes per 128 elements; element 32j + b in byte b at shift 6 - 2j ---- */

/* One block times q[0..128): int16 pair sums, |x| <= 4 * 512. */
INLINE __m256i i2s_block(const uint8_t *p, const int8_t *q, bool fix) {
    __m256i w = LD(p);
    if (fix) w = i2s_fix(w);
    __m256i s0 = _mm256_maddubs_epi16(field(w, 6), LD(q));
    __m256i s1 = _mm256_maddubs_epi16(field(w, 4), LD(q + 32));
    __m256i s2 = _mm256_maddubs_epi16(field(w, 2), LD(q + 64));
    __m256i s3 = _mm256_maddubs_epi16(field(w, 0), LD(q + 96));
    return _mm256_add_epi16(_mm256_add_epi16(s0, s1), _mm256_add_epi16(s2, s3));
}

INLINE int32_t i2s_row(const uint8_t *p, const int8_t *q, int64_t nb, bool fix) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) { /* two blocks per int16 sum: |x| <= 4096 */
        __m256i s = _mm256_add_epi16(i2s_block(p + 32 * b, q + 128 * b, fix),
                                     i2s_block(p + 32 * b + 32, q + 128 * b + 128, fix));
        __m256i t = _mm256_add_epi16(i2s_block(p + 32 * b + 64, q + 128 * b + 256, fix),
                                     i2s_block(p + 32 * b + 96, q + 128 * b + 384, fix));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(s, ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(t, ones));
    }
    for (; b < nb; b++)
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(i2s_block(p + 32 * b, q + 128 * b, fix), ones));
    return hsum256(_mm256_add_epi32(a0, a1));
}

/* Two rows p and p1 at once, sharing the activation loads: the int16 sums of
 * one block each (as i2s_block). */
INLINE void i2s_block2(const uint8_t *p, const uint8_t *p1, const int8_t *q, bool fix, __m256i *sp,
                       __m256i *sp1) {
    __m256i w = LD(p), v = LD(p1);
    if (fix) w = i2s_fix(w), v = i2s_fix(v);
    const __m256i x0 = LD(q), x1 = LD(q + 32), x2 = LD(q + 64), x3 = LD(q + 96);
    *sp = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(field(w, 6), x0),
                                            _mm256_maddubs_epi16(field(w, 4), x1)),
                           _mm256_add_epi16(_mm256_maddubs_epi16(field(w, 2), x2),
                                            _mm256_maddubs_epi16(field(w, 0), x3)));
    *sp1 = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(field(v, 6), x0),
                                             _mm256_maddubs_epi16(field(v, 4), x1)),
                            _mm256_add_epi16(_mm256_maddubs_epi16(field(v, 2), x2),
                                             _mm256_maddubs_epi16(field(v, 0), x3)));
}

INLINE void i2s_row2(const uint8_t *p, const uint8_t *p1, const int8_t *q, int64_t nb, bool fix,
                     int32_t *o, int32_t *o1) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a = _mm256_setzero_si256(), a1 = a;
    for (int64_t b = 0; b < nb; b++) {
        __m256i s, s1;
        i2s_block2(p + 32 * b, p1 + 32 * b, q + 128 * b, fix, &s, &s1);
        a = _mm256_add_epi32(a, _mm256_madd_epi16(s, ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, ones));
    }
    *o = hsum256(a);
    *o1 = hsum256(a1);
}

void bn_tern_avx2_gemv_i2s(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q,
                           int32_t *out, bool group) {
    (void)group; /* one scale: always row mode */
    if (w->clean)
        bn_tern_gemv_paired(w, r0, r1, q, out, w->K / 128, false, i2s_row2, i2s_row);
    else
        bn_tern_gemv_paired(w, r0, r1, q, out, w->K / 128, true, i2s_row2, i2s_row);
}

/* ---- TQ2_0: 66 bytes per 256 elements; element 128h + 32l + m in qs[32h + m] at shift 2l ---- */

/* One block times q[0..256): int16, |x| <= 8 * 768. */
INLINE __m256i tq2_block(const uint8_t *p, const int8_t *q) {
    __m256i s = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
        __m256i w = LD(p + 32 * h);
        __m256i s0 = _mm256_maddubs_epi16(field(w, 0), LD(q + 128 * h));
        __m256i s1 = _mm256_maddubs_epi16(field(w, 2), LD(q + 128 * h + 32));
        __m256i s2 = _mm256_maddubs_epi16(field(w, 4), LD(q + 128 * h + 64));
        __m256i s3 = _mm256_maddubs_epi16(field(w, 6), LD(q + 128 * h + 96));
        s = _mm256_add_epi16(s,
                             _mm256_add_epi16(_mm256_add_epi16(s0, s1), _mm256_add_epi16(s2, s3)));
    }
    return s;
}

/* ---- TQ1_0: 54 bytes per 256 elements, base-3 digits (tq1_codes in ternary_x86.h) ----
 * digit = [v >= 86] + [v >= 171] per byte: unsigned compares by flipping the top bit. */

INLINE __m256i digit(__m256i v) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const __m256i t1 = _mm256_set1_epi8(85 - 128), t2 = _mm256_set1_epi8(170 - 128);
    __m256i x = _mm256_xor_si256(v, flip);
    __m256i m = _mm256_add_epi8(_mm256_cmpgt_epi8(x, t1), _mm256_cmpgt_epi8(x, t2));
    return _mm256_sub_epi8(_mm256_setzero_si256(), m);
}

/* One block times q[0..256): int16, |x| <= 8 * 512. */
INLINE __m256i tq1_block(const uint8_t *p, const int8_t *q) {
    __m256i c[8];
    tq1_codes(p, c);
    __m256i s = _mm256_setzero_si256();
    for (int j = 0; j < 8; j += 2)
        s = _mm256_add_epi16(s,
                             _mm256_add_epi16(_mm256_maddubs_epi16(c[j], LD(q + 32 * j)),
                                              _mm256_maddubs_epi16(c[j + 1], LD(q + 32 * j + 32))));
    return s;
}

/* Rows of a TQ type: block sums widened to int32, then a row sum or one sum per block. */
#define TQ_GEMV(storage, name, BLOCK, BB)                                                          \
    storage void name(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q, int32_t *out,   \
                      bool group) {                                                                \
        const __m256i ones = _mm256_set1_epi16(1);                                                 \
        const int64_t nb = w->K / 256;                                                             \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const uint8_t *p = w->data + (size_t)r * w->row_bytes;                                 \
            if (group) {                                                                           \
                for (int64_t b = 0; b < nb; b++)                                                   \
                    out[(r - r0) * nb + b] =                                                       \
                        hsum256(_mm256_madd_epi16(BLOCK(p + BB * b, q + 256 * b), ones));          \
                continue;                                                                          \
            }                                                                                      \
            __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();                      \
            int64_t b = 0;                                                                         \
            for (; b + 2 <= nb; b += 2) {                                                          \
                a0 =                                                                               \
                    _mm256_add_epi32(a0, _mm256_madd_epi16(BLOCK(p + BB * b, q + 256 * b), ones)); \
                a1 = _mm256_add_epi32(                                                             \
                    a1, _mm256_madd_epi16(BLOCK(p + BB * b + BB, q + 256 * b + 256), ones));       \
            }                                                                                      \
            if (b < nb)                                                                            \
                a0 =                                                                               \
                    _mm256_add_epi32(a0, _mm256_madd_epi16(BLOCK(p + BB * b, q + 256 * b), ones)); \
            out[r - r0] = hsum256(_mm256_add_epi32(a0, a1));                                       \
        }                                                                                          \
    }

TQ_GEMV(static, tq2_gemv_rows, tq2_block, 66)
TQ_GEMV(, bn_tern_avx2_gemv_tq1, tq1_block, 54)

/* Two TQ2_0 rows at once (row mode), sharing the activation loads: per half
 * block, the four activation vectors serve both rows (tq2_block's sums). */
INLINE void tq2_row2(const uint8_t *p, const uint8_t *p1, const int8_t *q, int64_t nb, int32_t *o,
                     int32_t *o1) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a = _mm256_setzero_si256(), a1 = a;
    for (int64_t b = 0; b < nb; b++) {
        __m256i s = _mm256_setzero_si256(), s1 = s;
        for (int h = 0; h < 2; h++) {
            const __m256i w = LD(p + 66 * b + 32 * h), v = LD(p1 + 66 * b + 32 * h);
            const int8_t *x = q + 256 * b + 128 * h;
            for (int l = 0; l < 4; l++) {
                const __m256i xl = LD(x + 32 * l);
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(field(w, 2 * l), xl));
                s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(field(v, 2 * l), xl));
            }
        }
        a = _mm256_add_epi32(a, _mm256_madd_epi16(s, ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, ones));
    }
    *o = hsum256(a);
    *o1 = hsum256(a1);
}

void bn_tern_avx2_gemv_tq2(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q,
                           int32_t *out, bool group) {
    if (group) {
        tq2_gemv_rows(w, r0, r1, q, out, group);
        return;
    }
    const int64_t nb = w->K / 256;
    const size_t rb = w->row_bytes;
#define ROW(r) (w->data + (size_t)(r)*rb)
#define PAIR(ra, rb_, ia, ib) tq2_row2(ROW(ra), ROW(rb_), q, nb, &out[ia], &out[ib])
#define ONE(r, i) tq2_gemv_rows(w, r0 + (i), r0 + (i) + 1, q, &out[i], false)
    BN_TERN_PAIRED_ROWS(r0, r1, PAIR, ONE);
#undef ONE
#undef PAIR
#undef ROW
}

/* ---- several tokens at once on the packed rows (row mode) ----
 * Each 32 weight bytes become their four code vectors once (field), shared
 * by up to four tokens: per 128 weights and token 4 maddubs, 3 int16 adds
 * (|sum| <= 4 * 768) and one widening into int32, which wraps like the
 * driver's uint32 sums. One row at a time (4 codes, 4 accumulators, the
 * constant: 9 of the 16 registers), the weights prefetched 8 KiB ahead. NT is
 * 2 or 4 (a constant once inlined); with NT 4 and three tokens the fourth
 * repeats the first and is dropped. */
#define MT_PREFETCH 8192
/* acc += widened sum of the four codes c0..c3 times x + o0 .. x + o3 */
#define MT_TOKEN(acc, x, o0, o1, o2, o3)                                                           \
    acc = _mm256_add_epi32(                                                                        \
        acc, _mm256_madd_epi16(                                                                    \
                 _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(c0, LD((x) + (o0))),       \
                                                   _mm256_maddubs_epi16(c1, LD((x) + (o1)))),      \
                                  _mm256_add_epi16(_mm256_maddubs_epi16(c2, LD((x) + (o2))),       \
                                                   _mm256_maddubs_epi16(c3, LD((x) + (o3))))),     \
                 ones))
/* the tokens' steps for the 32 weight bytes at pw, elements e .. e + 127 */
#define MT_VECTOR(pw, e)                                                                           \
    do {                                                                                           \
        _mm_prefetch((const char *)(pw) + MT_PREFETCH, _MM_HINT_T0);                               \
        __m256i w = LD(pw);                                                                        \
        if (fix) w = i2s_fix(w);                                                                   \
        /* I2_S: the field at shift 6 meets x + 0; TQ2_0: the one at shift 0 */                    \
        const __m256i c0 = field(w, tq2 ? 0 : 6), c1 = field(w, tq2 ? 2 : 4),                      \
                      c2 = field(w, tq2 ? 4 : 2), c3 = field(w, tq2 ? 6 : 0);                      \
        MT_TOKEN(ta, qa + (e), 0, 32, 64, 96);                                                     \
        MT_TOKEN(tb, qb + (e), 0, 32, 64, 96);                                                     \
        if (NT > 2) {                                                                              \
            MT_TOKEN(tc, qc + (e), 0, 32, 64, 96);                                                 \
            MT_TOKEN(td, qd + (e), 0, 32, 64, 96);                                                 \
        }                                                                                          \
    } while (0)

/* C of one row p (K elements) for tokens q[0..NT): s[t] = the sums. tq2:
 * TQ2_0 blocks (66 bytes: two 32-byte halves of 128 elements, then d), else
 * I2_S (32 bytes per 128 elements). */
INLINE void multi_row(const uint8_t *p, const int8_t *const *q, int64_t K, const bool tq2,
                      const bool fix, const int NT, uint32_t *s) {
    const __m256i ones = _mm256_set1_epi16(1);
    const int8_t *qa = q[0], *qb = q[1], *qc = q[NT > 2 ? 2 : 0], *qd = q[NT > 2 ? 3 : 0];
    __m256i ta = _mm256_setzero_si256(), tb = ta, tc = ta, td = ta;
    if (tq2)
        for (int64_t b = 0; b < K / 256; b++) {
            MT_VECTOR(p + 66 * b, 256 * b);
            MT_VECTOR(p + 66 * b + 32, 256 * b + 128);
        }
    else
        for (int64_t b = 0; b < K / 128; b++) MT_VECTOR(p + 32 * b, 128 * b);
    s[0] = (uint32_t)hsum256(ta);
    s[1] = (uint32_t)hsum256(tb);
    if (NT > 2) {
        s[2] = (uint32_t)hsum256(tc);
        s[3] = (uint32_t)hsum256(td);
    }
}
#undef MT_VECTOR
#undef MT_TOKEN

BN_TERN_MULTI_ENTRIES(multi_row)

/* ---- GEMM micro-kernel: nr rows of byte codes x nt tokens ----
 * Per 32 elements: nr code loads, nt activation loads, nr * nt maddubs into
 * int16 accumulators, widened to int32 every 1024 elements (32 products of
 * at most 768: no overflow) or every 256 in group mode. */
INLINE void gemm_tile(const uint8_t *c, size_t ldc, const int nr, const int8_t *const *q,
                      const int nt, int64_t kn, int32_t *out, size_t ldo, bool group) {
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t step = group ? 256 : 1024;
    __m256i acc32[BN_TERN_MR][BN_TERN_NT];
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) acc32[r][t] = _mm256_setzero_si256();
    for (int64_t k = 0; k < kn; k += step) {
        const int64_t end = kn - k < step ? kn : k + step;
        __m256i acc[BN_TERN_MR][BN_TERN_NT];
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++) acc[r][t] = _mm256_setzero_si256();
        for (int64_t j = k; j < end; j += 32) {
            __m256i c0 = LD(c + j), c1 = nr > 1 ? LD(c + ldc + j) : c0;
            for (int t = 0; t < nt; t++) {
                __m256i a = LD(q[t] + j);
                acc[0][t] = _mm256_add_epi16(acc[0][t], _mm256_maddubs_epi16(c0, a));
                if (nr > 1) acc[1][t] = _mm256_add_epi16(acc[1][t], _mm256_maddubs_epi16(c1, a));
            }
        }
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++) {
                __m256i s = _mm256_madd_epi16(acc[r][t], ones);
                if (group)
                    out[(t * nr + r) * (kn / 256) + k / 256] = hsum256(s);
                else
                    acc32[r][t] = _mm256_add_epi32(acc32[r][t], s);
            }
    }
    if (!group)
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++)
                out[t * ldo + r] =
                    (int32_t)((uint32_t)out[t * ldo + r] + (uint32_t)hsum256(acc32[r][t]));
}

/* Tiles of at most 2 rows (16 registers: 8 int16 + 8 int32 accumulators would
 * not fit with more); group mode writes the rows' blocks at their place in
 * the caller's layout, out[(t * nr + r) * (kn / 256) + g]. */
static void gemm2(const uint8_t *codes, size_t ldc, int nr, const int8_t *const *q, int nt,
                  int64_t kn, int32_t *out, size_t ldo, bool group) {
    /* constant tile shapes, so the accumulators stay in registers */
#define TILE(R, T) gemm_tile(codes, ldc, R, q, T, kn, out, ldo, group)
    if (nr == 2) {
        if (nt == 4)
            TILE(2, 4);
        else if (nt == 3)
            TILE(2, 3);
        else if (nt == 2)
            TILE(2, 2);
        else
            TILE(2, 1);
    } else {
        if (nt == 4)
            TILE(1, 4);
        else if (nt == 3)
            TILE(1, 3);
        else if (nt == 2)
            TILE(1, 2);
        else
            TILE(1, 1);
    }
#undef TILE
}

static void gemm(const uint8_t *codes, size_t ldc, int nr, const int8_t *const *q, int nt,
                 int64_t kn, int32_t *out, size_t ldo, bool group) {
    if (!group) {
        for (int r = 0; r < nr; r += 2)
            gemm2(codes + (size_t)r * ldc, ldc, nr - r < 2 ? nr - r : 2, q, nt, kn, out + r, ldo,
                  false);
        return;
    }
    /* group mode: one row at a time into a small buffer, then to its place */
    const int64_t ng = kn / 256;
    int32_t tmp[BN_TERN_NT * 64];
    for (int r = 0; r < nr; r++)
        for (int64_t g0 = 0; g0 < ng; g0 += 64) { /* 64 blocks per call */
            const int64_t gn = ng - g0 < 64 ? ng - g0 : 64;
            const int8_t *qq[BN_TERN_NT];
            for (int t = 0; t < nt; t++) qq[t] = q[t] + 256 * g0;
            gemm2(codes + (size_t)r * ldc + 256 * g0, ldc, 1, qq, nt, 256 * gn, tmp, 0, true);
            for (int t = 0; t < nt; t++)
                for (int64_t g = 0; g < gn; g++) out[(t * nr + r) * ng + g0 + g] = tmp[t * gn + g];
        }
}

const bn_tern_kernels bn_tern_avx2 = {
    .name = "avx2",
    .lut_for_tq1 = true, /* 9.2 against 7.3 GB/s (bench/RESULTS.md) */
    .gemv = {bn_tern_avx2_gemv_i2s, bn_tern_avx2_gemv_tq2, bn_tern_avx2_gemv_tq1},
    .gemv_multi = {gemv_multi_i2s, gemv_multi_tq2, NULL},
    .unpack = {unpack_i2s, unpack_tq2, unpack_tq1},
    .gemm = gemm,
    .cols_gemv = bn_tern_avx2_cols_gemv,
    .cols_unpack = bn_tern_avx2_cols_unpack,
    .lut_tables = bn_tern_avx2_lut_tables,
    .lut_gemv = bn_tern_avx2_lut_gemv,
    .lut_unpack = bn_tern_lut_unpack_c,
};

BN_TARGET_POP

#endif
