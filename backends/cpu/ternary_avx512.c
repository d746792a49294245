/* ternary_avx512.c - the AVX-512 VNNI table of ternary kernels (ternary.h).
 * Every function here is compiled for AVX-512 F/BW/VL/VNNI (the pragma
 * below), so nothing in this file may run before ternary_dispatch.c has
 * checked the CPU.
 *
 * vpdpbusd(acc, c, q) multiplies unsigned bytes (codes 0..3) by signed bytes
 * (activations) and adds each group of four products into an int32 lane: no
 * int16 stage, nothing saturates. The kernels use its 256-bit form (AVX512-VL):
 * on Zen 4 the 512-bit form issues at a quarter of the rate (about 0.5 per
 * cycle against 2), half the multiply-adds per cycle.
 *
 * The GEMM unpacks into byte codes (shifts and masks) and runs 16 dot products
 * per 32 elements of a 4-row x 4-token tile; 187 GMAC/s on one Zen 4 core
 * against 113 for AVX2 (bench/RESULTS.md). TQ1_0 decodes with the AVX2
 * file's steps (tq1_codes, ternary_x86.h), its digits from unsigned compares
 * into masks: its mat-vec is 1.4x the AVX2 one.
 * The I2_S and TQ2_0 mat-vecs use each 2-bit field in place (4 ANDs and 4
 * dot products per 128 weights, see below), and so does their several-token
 * kernel (gemv_multi: the ANDs shared by up to four tokens). The column and
 * lookup-table entries are the AVX2 ones. */
#include "ternary.h"
#include "cpu_target.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <string.h>

BN_TARGET_PUSH(BN_TARGET_AVX512VNNI)

#include "ternary_x86.h"

/* acc += dot products of unsigned a and signed b bytes, in place. GCC 12 does
 * not tie the intrinsic's accumulator to its result and copies every
 * accumulator out and back around each instruction; the asm form keeps it in
 * its register. b may be a memory operand (DPBUSD) or not (DPBUSD_REG). */
#if defined(__GNUC__) && !defined(__clang__)
#define DPBUSD(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "vm"(b))
#define DPBUSD_REG(acc, a, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#else
#define DPBUSD(acc, a, b) ((acc) = _mm256_dpbusd_epi32(acc, a, b))
#define DPBUSD_REG(acc, a, b) ((acc) = _mm256_dpbusd_epi32(acc, a, b))
#endif

/* {sum of a's lanes, of b's, of c's, of d's}: three horizontal adds and one
 * add instead of four hsum256 (the 4 x 4 GEMM tile's epilogue). */
INLINE __m128i hsum4x256(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* ---- I2_S: element 32j + b of a block in byte b at shift 6 - 2j ---- */

/* ---- TQ2_0: element 128h + 32l + m of a block in qs[32h + m] at shift 2l ---- */

/* ---- I2_S and TQ2_0 mat-vecs: each 2-bit field used in place ----
 * w & (3 << s) is c * 2^s for the field at shift s, so vpdpbusd of the masked
 * bytes against the activations adds 2^s times that field's code sums. Each
 * shift has its own accumulators; at the end every lane, a multiple of 2^s,
 * is shifted down exactly and the four are added. Per 128 weights: one
 * weight load, 4 ANDs, 4 dot products (with their activation loads), against
 * AVX2's 3 shifts, 4 ANDs, 4 maddubs and the int16 adds and widening: 1.3x
 * the AVX2 mat-vec from memory on Zen 4 (bench/RESULTS.md).
 *
 * Range: a lane adds 4 products per 32-byte vector, each at most 192 * 128
 * (I2_S code 3 at shift 6 before the fix below; 128 * 128 after it), so a
 * lane stays below 2^31 for 2^20 elements: longer rows go in chunks of that
 * many, added in wrapping uint32 arithmetic like the driver's sums. */
#define INPLACE_CHUNK ((int64_t)1 << 20) /* elements */

/* Keeps v in a register. Without it GCC folds the weight load into each of
 * the four ANDs: four loads of the same 32 bytes, and loads bound this loop. */
#define IN_REG(v) __asm__("" : "+v"(v))

/* a6 += (w & 0xc0) . q6, a4 += (w & 0x30) . q4, a2 += (w & 0x0c) . q2,
 * a0 += (w & 0x03) . q0 (m6..m0: those masks in every byte). */
#define FIELDS(a6, a4, a2, a0, w, q6, q4, q2, q0)                                                  \
    do {                                                                                           \
        DPBUSD(a6, _mm256_and_si256(w, m6), LD(q6));                                               \
        DPBUSD(a4, _mm256_and_si256(w, m4), LD(q4));                                               \
        DPBUSD(a2, _mm256_and_si256(w, m2), LD(q2));                                               \
        DPBUSD(a0, _mm256_and_si256(w, m0), LD(q0));                                               \
    } while (0)

#define INPLACE_MASKS                                                                              \
    const __m256i m6 = _mm256_set1_epi8((char)0xc0), m4 = _mm256_set1_epi8(0x30),                  \
                  m2 = _mm256_set1_epi8(0x0c), m0 = _mm256_set1_epi8(0x03)

/* sum over lanes of a6 / 64 + a4 / 16 + a2 / 4 + a0 (exact shifts) */
INLINE uint32_t fields_sum(__m256i a6, __m256i a4, __m256i a2, __m256i a0) {
    __m256i s =
        _mm256_add_epi32(_mm256_add_epi32(_mm256_srai_epi32(a6, 6), _mm256_srai_epi32(a4, 4)),
                         _mm256_add_epi32(_mm256_srai_epi32(a2, 2), a0));
    return (uint32_t)hsum256(s);
}

/* The same with activations already in registers (two rows share them). */
#define FIELDS_R(a6, a4, a2, a0, w, x6, x4, x2, x0)                                                \
    do {                                                                                           \
        DPBUSD_REG(a6, _mm256_and_si256(w, m6), x6);                                               \
        DPBUSD_REG(a4, _mm256_and_si256(w, m4), x4);                                               \
        DPBUSD_REG(a2, _mm256_and_si256(w, m2), x2);                                               \
        DPBUSD_REG(a0, _mm256_and_si256(w, m0), x0);                                               \
    } while (0)

/* I2_S: element 32j + b of a block in byte b at shift 6 - 2j, so field shift
 * 6 - 2j meets q + 32j. One row (two blocks a step, 8 accumulators). */
INLINE int32_t i2s_row_inplace(const uint8_t *p, const int8_t *q, int64_t nb, bool fix) {
    INPLACE_MASKS;
    uint32_t total = 0;
    for (int64_t c0 = 0; c0 < nb; c0 += INPLACE_CHUNK / 128) {
        const int64_t c1 = nb - c0 < INPLACE_CHUNK / 128 ? nb : c0 + INPLACE_CHUNK / 128;
        __m256i a6 = _mm256_setzero_si256(), a4 = a6, a2 = a6, a0 = a6, b6 = a6, b4 = a6, b2 = a6,
                b0 = a6;
        int64_t b = c0;
        for (; b + 2 <= c1; b += 2) {
            __m256i w = LD(p + 32 * b), v = LD(p + 32 * b + 32);
            if (fix) w = i2s_fix(w), v = i2s_fix(v);
            IN_REG(w);
            IN_REG(v);
            const int8_t *x = q + 128 * b;
            FIELDS(a6, a4, a2, a0, w, x, x + 32, x + 64, x + 96);
            FIELDS(b6, b4, b2, b0, v, x + 128, x + 160, x + 192, x + 224);
        }
        if (b < c1) {
            __m256i w = LD(p + 32 * b);
            if (fix) w = i2s_fix(w);
            IN_REG(w);
            const int8_t *x = q + 128 * b;
            FIELDS(a6, a4, a2, a0, w, x, x + 32, x + 64, x + 96);
        }
        total += fields_sum(_mm256_add_epi32(a6, b6), _mm256_add_epi32(a4, b4),
                            _mm256_add_epi32(a2, b2), _mm256_add_epi32(a0, b0));
    }
    return (int32_t)total;
}

/* Two I2_S rows p and p1 in lockstep, one block a step (8 accumulators). */
INLINE void i2s_pair_inplace(const uint8_t *p, const uint8_t *p1, const int8_t *q, int64_t nb,
                             bool fix, int32_t *o, int32_t *o1) {
    INPLACE_MASKS;
    uint32_t t = 0, t1 = 0;
    for (int64_t c0 = 0; c0 < nb; c0 += INPLACE_CHUNK / 128) {
        const int64_t c1 = nb - c0 < INPLACE_CHUNK / 128 ? nb : c0 + INPLACE_CHUNK / 128;
        __m256i a6 = _mm256_setzero_si256(), a4 = a6, a2 = a6, a0 = a6, b6 = a6, b4 = a6, b2 = a6,
                b0 = a6;
        for (int64_t b = c0; b < c1; b++) {
            __m256i w = LD(p + 32 * b), v = LD(p1 + 32 * b);
            if (fix) w = i2s_fix(w), v = i2s_fix(v);
            IN_REG(w);
            IN_REG(v);
            const int8_t *x = q + 128 * b;
            const __m256i x0 = LD(x), x1 = LD(x + 32), x2 = LD(x + 64), x3 = LD(x + 96);
            FIELDS_R(a6, a4, a2, a0, w, x0, x1, x2, x3);
            FIELDS_R(b6, b4, b2, b0, v, x0, x1, x2, x3);
        }
        t += fields_sum(a6, a4, a2, a0);
        t1 += fields_sum(b6, b4, b2, b0);
    }
    *o = (int32_t)t;
    *o1 = (int32_t)t1;
}

static void gemv_i2s(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q, int32_t *out,
                     bool group) {
    (void)group; /* one scale: always row mode */
    if (w->clean)
        bn_tern_gemv_paired(w, r0, r1, q, out, w->K / 128, false, i2s_pair_inplace,
                            i2s_row_inplace);
    else
        bn_tern_gemv_paired(w, r0, r1, q, out, w->K / 128, true, i2s_pair_inplace, i2s_row_inplace);
}

/* TQ2_0 (row mode): element 128h + 32l + m of a block in qs[32h + m] at shift
 * 2l, so field shift 2l of half h meets q + 128h + 32l. One row: a block (two
 * halves, 8 accumulators) a step. */
INLINE int32_t tq2_row_inplace(const uint8_t *p, const int8_t *q, int64_t nb, bool fix) {
    (void)fix; /* TQ2_0 has no code to fix */
    INPLACE_MASKS;
    uint32_t total = 0;
    for (int64_t c0 = 0; c0 < nb; c0 += INPLACE_CHUNK / 256) {
        const int64_t c1 = nb - c0 < INPLACE_CHUNK / 256 ? nb : c0 + INPLACE_CHUNK / 256;
        __m256i a6 = _mm256_setzero_si256(), a4 = a6, a2 = a6, a0 = a6, b6 = a6, b4 = a6, b2 = a6,
                b0 = a6;
        for (int64_t b = c0; b < c1; b++) {
            __m256i lo = LD(p + 66 * b), hi = LD(p + 66 * b + 32);
            IN_REG(lo);
            IN_REG(hi);
            const int8_t *x = q + 256 * b;
            FIELDS(a6, a4, a2, a0, lo, x + 96, x + 64, x + 32, x);
            FIELDS(b6, b4, b2, b0, hi, x + 224, x + 192, x + 160, x + 128);
        }
        total += fields_sum(_mm256_add_epi32(a6, b6), _mm256_add_epi32(a4, b4),
                            _mm256_add_epi32(a2, b2), _mm256_add_epi32(a0, b0));
    }
    return (int32_t)total;
}

/* Two TQ2_0 rows in lockstep: per half block, the four activation vectors
 * are loaded once for both rows (16 accumulators, 4 activations, 4 weights
 * and 4 masks: 28 of the 32 registers). */
INLINE void tq2_pair_inplace(const uint8_t *p, const uint8_t *p1, const int8_t *q, int64_t nb,
                             bool fix, int32_t *o, int32_t *o1) {
    (void)fix; /* TQ2_0 has no code to fix */
    INPLACE_MASKS;
    uint32_t t = 0, t1 = 0;
    for (int64_t c0 = 0; c0 < nb; c0 += INPLACE_CHUNK / 256) {
        const int64_t c1 = nb - c0 < INPLACE_CHUNK / 256 ? nb : c0 + INPLACE_CHUNK / 256;
        __m256i a6 = _mm256_setzero_si256(), a4 = a6, a2 = a6, a0 = a6, b6 = a6, b4 = a6, b2 = a6,
                b0 = a6, c6 = a6, c4 = a6, c2 = a6, cc0 = a6, d6 = a6, d4 = a6, d2 = a6, d0 = a6;
        for (int64_t b = c0; b < c1; b++) {
            __m256i wl = LD(p + 66 * b), wh = LD(p + 66 * b + 32), vl = LD(p1 + 66 * b),
                    vh = LD(p1 + 66 * b + 32);
            IN_REG(wl);
            IN_REG(wh);
            IN_REG(vl);
            IN_REG(vh);
            const int8_t *x = q + 256 * b;
            __m256i x0 = LD(x), x1 = LD(x + 32), x2 = LD(x + 64), x3 = LD(x + 96);
            FIELDS_R(a6, a4, a2, a0, wl, x3, x2, x1, x0);
            FIELDS_R(c6, c4, c2, cc0, vl, x3, x2, x1, x0);
            x0 = LD(x + 128), x1 = LD(x + 160), x2 = LD(x + 192), x3 = LD(x + 224);
            FIELDS_R(b6, b4, b2, b0, wh, x3, x2, x1, x0);
            FIELDS_R(d6, d4, d2, d0, vh, x3, x2, x1, x0);
        }
        t += fields_sum(_mm256_add_epi32(a6, b6), _mm256_add_epi32(a4, b4),
                        _mm256_add_epi32(a2, b2), _mm256_add_epi32(a0, b0));
        t1 += fields_sum(_mm256_add_epi32(c6, d6), _mm256_add_epi32(c4, d4),
                         _mm256_add_epi32(c2, d2), _mm256_add_epi32(cc0, d0));
    }
    *o = (int32_t)t;
    *o1 = (int32_t)t1;
}

/* ---- several tokens at once on the packed rows (row mode) ----
 * The same fields in place as the mat-vecs, the four masked copies of each
 * 32 weight bytes shared by up to four tokens: per 128 weights 4 ANDs and 4
 * dot products per token. One row at a time; each token has its own four
 * accumulators (with four tokens: 16, 4 fields, 4 masks, the weights: 25 of
 * the 32 registers). NT is 2 or 4 (a constant once inlined); with NT 4 and
 * three tokens the fourth repeats the first and is dropped. */

/* Bytes ahead of the weights that the several-token loop prefetches: it
 * reads one row stream at a time, slowly enough for its loads to wait on
 * memory without it (about half its time, perf); 8 KiB ahead gave 1.1-1.3x. */
#define MT_PREFETCH 8192
#define MT_DECL(a) __m256i a##6 = _mm256_setzero_si256(), a##4 = a##6, a##2 = a##6, a##0 = a##6
#define MT_STEP(a, x, o6, o4, o2, o0)                                                              \
    do {                                                                                           \
        DPBUSD(a##6, f6, LD((x) + (o6)));                                                          \
        DPBUSD(a##4, f4, LD((x) + (o4)));                                                          \
        DPBUSD(a##2, f2, LD((x) + (o2)));                                                          \
        DPBUSD(a##0, f0, LD((x) + (o0)));                                                          \
    } while (0)
#define MT_FIELDS(w)                                                                               \
    const __m256i f6 = _mm256_and_si256(w, m6), f4 = _mm256_and_si256(w, m4),                      \
                  f2 = _mm256_and_si256(w, m2), f0 = _mm256_and_si256(w, m0)
/* the four tokens' steps for one 32-byte vector w whose fields meet x + o6 .. x + o0 */
#define MT_TOKENS(w, e, o6, o4, o2, o0)                                                            \
    do {                                                                                           \
        MT_FIELDS(w);                                                                              \
        MT_STEP(ta, qa + (e), o6, o4, o2, o0);                                                     \
        MT_STEP(tb, qb + (e), o6, o4, o2, o0);                                                     \
        if (NT > 2) {                                                                              \
            MT_STEP(tc, qc + (e), o6, o4, o2, o0);                                                 \
            MT_STEP(td, qd + (e), o6, o4, o2, o0);                                                 \
        }                                                                                          \
    } while (0)

/* C of one row p (K elements) for tokens q[0..NT): s[t] += (uint32) sums. tq2:
 * TQ2_0 blocks (66 bytes, element 128h + 32l + m at qs[32h + m] shift 2l),
 * else I2_S (32 bytes per 128 elements, element 32j + b at shift 6 - 2j). */
INLINE void multi_row(const uint8_t *p, const int8_t *const *q, int64_t K, const bool tq2,
                      const bool fix, const int NT, uint32_t *s) {
    INPLACE_MASKS;
    const int8_t *qa = q[0], *qb = q[1], *qc = q[NT > 2 ? 2 : 0], *qd = q[NT > 2 ? 3 : 0];
    const int64_t per = tq2 ? 256 : 128, nb = K / per, chunk = INPLACE_CHUNK / per;
    for (int64_t c0 = 0; c0 < nb; c0 += chunk) {
        const int64_t c1 = nb - c0 < chunk ? nb : c0 + chunk;
        MT_DECL(ta);
        MT_DECL(tb);
        MT_DECL(tc);
        MT_DECL(td);
        for (int64_t b = c0; b < c1; b++) {
            if (tq2) {
                _mm_prefetch((const char *)(p + 66 * b + MT_PREFETCH), _MM_HINT_T0);
                __m256i lo = LD(p + 66 * b), hi = LD(p + 66 * b + 32);
                IN_REG(lo);
                IN_REG(hi);
                MT_TOKENS(lo, 256 * b, 96, 64, 32, 0);
                MT_TOKENS(hi, 256 * b, 224, 192, 160, 128);
            } else {
                if (!(b & 1)) _mm_prefetch((const char *)(p + 32 * b + MT_PREFETCH), _MM_HINT_T0);
                __m256i w = LD(p + 32 * b);
                if (fix) w = i2s_fix(w);
                IN_REG(w);
                MT_TOKENS(w, 128 * b, 0, 32, 64, 96);
            }
        }
        s[0] += fields_sum(ta6, ta4, ta2, ta0);
        s[1] += fields_sum(tb6, tb4, tb2, tb0);
        if (NT > 2) {
            s[2] += fields_sum(tc6, tc4, tc2, tc0);
            s[3] += fields_sum(td6, td4, td2, td0);
        }
    }
}
#undef MT_TOKENS
#undef MT_FIELDS
#undef MT_STEP
#undef MT_DECL

BN_TERN_MULTI_ENTRIES(multi_row)

/* Group mode (blocks with their own scales) is the AVX2 mat-vec's. */
static void gemv_tq2(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q, int32_t *out,
                     bool group) {
    if (group) {
        bn_tern_avx2_gemv_tq2(w, r0, r1, q, out, group);
        return;
    }
    bn_tern_gemv_paired(w, r0, r1, q, out, w->K / 256, false, tq2_pair_inplace, tq2_row_inplace);
}

/* ---- TQ1_0: base-3 digits (tq1_codes in ternary_x86.h) ----
 * digit = [v >= 86] + [v >= 171] for v = b * 3^n mod 256 (unsigned compares
 * into masks here). */

INLINE __m256i digit(__m256i v) {
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i d = _mm256_maskz_mov_epi8(_mm256_cmpge_epu8_mask(v, _mm256_set1_epi8(86)), one);
    return _mm256_mask_add_epi8(d, _mm256_cmpge_epu8_mask(v, _mm256_set1_epi8((char)171)), d, one);
}

INLINE __m256i tq1_block(__m256i acc, const uint8_t *p, const int8_t *q) {
    __m256i c[8];
    tq1_codes(p, c);
    for (int j = 0; j < 8; j++) DPBUSD(acc, c[j], LD(q + 32 * j));
    return acc;
}

static void gemv_tq1(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q, int32_t *out,
                     bool group) {
    const int64_t nb = w->K / 256;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *p = w->data + (size_t)r * w->row_bytes;
        if (group) {
            for (int64_t b = 0; b < nb; b++)
                out[(r - r0) * nb + b] =
                    hsum256(tq1_block(_mm256_setzero_si256(), p + 54 * b, q + 256 * b));
            continue;
        }
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        int64_t b = 0;
        for (; b + 2 <= nb; b += 2) {
            a0 = tq1_block(a0, p + 54 * b, q + 256 * b);
            a1 = tq1_block(a1, p + 54 * b + 54, q + 256 * b + 256);
        }
        if (b < nb) a0 = tq1_block(a0, p + 54 * b, q + 256 * b);
        out[r - r0] = hsum256(_mm256_add_epi32(a0, a1));
    }
}

/* ---- GEMM micro-kernels: nr rows of byte codes x nt tokens, 32 elements a step ----
 * Per step: nr code loads, nt activation loads (each kept in a register for
 * every row), nr * nt dot products into int32 accumulators. gemm_tile: up to
 * 2 x 4 (edges and group mode); gemm_4x4: the common full tile. */
INLINE void gemm_tile(const uint8_t *c, size_t ldc, const int nr, const int8_t *const *q,
                      const int nt, int64_t kn, int32_t *out, size_t ldo, bool group) {
    const int64_t step = group ? 256 : kn;
    for (int64_t k = 0; k < kn; k += step) {
        const int64_t end = k + step;
        __m256i acc[2][BN_TERN_NT];
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++) acc[r][t] = _mm256_setzero_si256();
        for (int64_t j = k; j < end; j += 32) {
            __m256i c0 = LD(c + j), c1 = nr > 1 ? LD(c + ldc + j) : c0;
            for (int t = 0; t < nt; t++) {
                __m256i a = LD(q[t] + j); /* in a register: both rows use it */
                DPBUSD_REG(acc[0][t], c0, a);
                if (nr > 1) DPBUSD_REG(acc[1][t], c1, a);
            }
        }
        for (int r = 0; r < nr; r++)
            for (int t = 0; t < nt; t++) {
                int32_t s = hsum256(acc[r][t]);
                if (group)
                    out[(t * nr + r) * (kn / 256) + k / 256] = s;
                else
                    out[t * ldo + r] = (int32_t)((uint32_t)out[t * ldo + r] + (uint32_t)s);
            }
    }
}

/* The full 4 x 4 tile in row mode, with named accumulators (GCC spills an
 * array of 16 to the stack): 16 accumulators, 4 codes and an activation, 21
 * of the 32 registers. */
static void gemm_4x4(const uint8_t *c, size_t ldc, const int8_t *const *q, int64_t kn, int32_t *out,
                     size_t ldo) {
    const int8_t *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00,
            a12 = a00, a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00,
            a32 = a00, a33 = a00;
    for (int64_t j = 0; j < kn; j += 32) {
        const __m256i c0 = LD(c + j), c1 = LD(c + ldc + j), c2 = LD(c + 2 * ldc + j),
                      c3 = LD(c + 3 * ldc + j);
        __m256i x = LD(q0 + j);
        DPBUSD_REG(a00, c0, x);
        DPBUSD_REG(a10, c1, x);
        DPBUSD_REG(a20, c2, x);
        DPBUSD_REG(a30, c3, x);
        x = LD(q1 + j);
        DPBUSD_REG(a01, c0, x);
        DPBUSD_REG(a11, c1, x);
        DPBUSD_REG(a21, c2, x);
        DPBUSD_REG(a31, c3, x);
        x = LD(q2 + j);
        DPBUSD_REG(a02, c0, x);
        DPBUSD_REG(a12, c1, x);
        DPBUSD_REG(a22, c2, x);
        DPBUSD_REG(a32, c3, x);
        x = LD(q3 + j);
        DPBUSD_REG(a03, c0, x);
        DPBUSD_REG(a13, c1, x);
        DPBUSD_REG(a23, c2, x);
        DPBUSD_REG(a33, c3, x);
    }
    /* out[t * ldo + r] += the sum of row r, token t (wrapping int32 adds) */
    const __m128i s[4] = {hsum4x256(a00, a10, a20, a30), hsum4x256(a01, a11, a21, a31),
                          hsum4x256(a02, a12, a22, a32), hsum4x256(a03, a13, a23, a33)};
    for (int t = 0; t < 4; t++) {
        __m128i *o = (__m128i *)(void *)(out + (size_t)t * ldo);
        _mm_storeu_si128(o, _mm_add_epi32(_mm_loadu_si128(o), s[t]));
    }
}

static void gemm(const uint8_t *codes, size_t ldc, int nr, const int8_t *const *q, int nt,
                 int64_t kn, int32_t *out, size_t ldo, bool group) {
    if (nr == 4 && nt == 4 && !group) {
        gemm_4x4(codes, ldc, q, kn, out, ldo);
        return;
    }
    /* other shapes (edges, group mode): tiles of at most 2 rows, constant
     * shapes so the accumulators stay in registers */
    const int64_t ng = kn / 256;
    for (int r = 0; r < nr; r += 2) {
        const int n2 = nr - r < 2 ? nr - r : 2;
        const uint8_t *c = codes + (size_t)r * ldc;
        int32_t tmp[BN_TERN_NT * 2 * 64], *o = group ? tmp : out + r;
        for (int64_t g0 = 0; g0 < (group ? ng : 1); g0 += 64) {
            const int64_t gn = group ? (ng - g0 < 64 ? ng - g0 : 64) : 0,
                          len = group ? 256 * gn : kn;
            const int8_t *qq[BN_TERN_NT];
            for (int t = 0; t < nt; t++) qq[t] = q[t] + 256 * g0;
#define TILES(R)                                                                                   \
    do {                                                                                           \
        if (nt == 4)                                                                               \
            gemm_tile(c + 256 * g0, ldc, R, qq, 4, len, o, ldo, group);                            \
        else if (nt == 3)                                                                          \
            gemm_tile(c + 256 * g0, ldc, R, qq, 3, len, o, ldo, group);                            \
        else if (nt == 2)                                                                          \
            gemm_tile(c + 256 * g0, ldc, R, qq, 2, len, o, ldo, group);                            \
        else                                                                                       \
            gemm_tile(c + 256 * g0, ldc, R, qq, 1, len, o, ldo, group);                            \
    } while (0)
            if (n2 == 2)
                TILES(2);
            else
                TILES(1);
#undef TILES
            if (group) /* tmp[(t * n2 + i) * gn + g] to its place in out */
                for (int t = 0; t < nt; t++)
                    for (int i = 0; i < n2; i++)
                        for (int64_t g = 0; g < gn; g++)
                            out[(t * nr + r + i) * ng + g0 + g] = tmp[(t * n2 + i) * gn + g];
        }
    }
}

const bn_tern_kernels bn_tern_avx512 = {
    .name = "avx512vnni",
    .gemv = {gemv_i2s, gemv_tq2, gemv_tq1},
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
