/* ternary_lut.c - the lookup-table layout of ternary weights (ternary.h,
 * bn_tern_lut) and its kernels, in the style of BitNet's TL2 and T-MAC.
 *
 * Three ternary weights (w0, w1, w2) take 27 values; with the sign folded
 * out, 14: an index i in 0..13 (the triple is the base-3 digits of i minus 1,
 * i = 13 being (0, 0, 0)) and a sign bit, 5 bits for 3 weights, 1.67 bits per
 * weight against 2 for I2_S and TQ2_0 (and 1.69 for TQ1_0).
 *
 * For one token, every group of three activations (a0, a1, a2) gets a table of
 * the 14 sums w0 a0 + w1 a1 + w2 a2, so a row's group costs one lookup instead
 * of three multiply-adds. An exact sum needs 10 bits and _mm256_shuffle_epi8
 * looks up bytes, so each activation is split as a = 16 hi + lo (lo = a & 15,
 * hi = a >> 4): the low table (sums of w lo, |x| <= 45) and the high table
 * (sums of w hi, |x| <= 24) both fit int8, and x = lo_entry + 16 hi_entry.
 *
 * AVX2 mat-vec, per group and 32-row tile: two table lookups (one 16-byte
 * table per group, broadcast to both 128-bit lanes, indexed by the rows'
 * 4-bit indices), the sign applied with _mm256_sign_epi8 (the row's sign bit
 * moved to bit 7 of a byte, ORed with 1 so a positive byte is never 0), the
 * two results interleaved and combined by _mm256_maddubs_epi16 with the byte
 * pairs (1, 16): one int16 per row, |x| <= 384, accumulated in int16 for 64
 * groups, then widened to int32.
 *
 * It wins where unpacking the file's codes costs more than the lookups (TQ1_0,
 * whose base-3 codes take several instructions per byte), and reads fewer
 * bytes; it is chosen per weight at preparation (ternary_prepare.c). */
#include <stdlib.h>
#include <string.h>

#include "ternary.h"
#include "cpu_target.h"

#define UNIT 160 /* bytes per 8 groups of a tile: 4 index vectors + 1 sign plane */

size_t bn_tern_lut_table_bytes(int64_t Gpad) {
    /* the tables, then room for a zero-padded copy of the activations */
    return (size_t)Gpad * 32 + (size_t)Gpad * 3 + 64;
}

/* Index (0..13) and sign of a triple of weights in {-1, 0, 1}. */
static void encode(const int w[3], int *idx, int *sign) {
    int v = 9 * (w[0] + 1) + 3 * (w[1] + 1) + (w[2] + 1);
    *sign = v > 13;
    *idx = v > 13 ? 26 - v : v;
}

bn_status bn_tern_make_lut(const bn_tern_w *w, bn_tern_lut *out, bn_err *err) {
    memset(out, 0, sizeof *out);
    const int64_t K = w->K, N = w->N, G = (K + 2) / 3, Gpad = (G + 7) / 8 * 8;
    const int64_t Npad = (N + 31) / 32 * 32;
    const size_t tb = (size_t)(Gpad / 8) * UNIT, bytes = tb * (size_t)(Npad / 32);
    uint8_t *data = aligned_alloc(64, (bytes + 63) / 64 * 64);
    const size_t ldc = (size_t)Gpad * 3;
    uint8_t *codes = malloc(32 * ldc);
    if (!data || !codes) {
        free(data);
        free(codes);
        return bn_fail(err, BN_ERR_OOM, "out of memory repacking a %lld x %lld weight",
                       (long long)K, (long long)N);
    }
    memset(data, 0, bytes);
    const bn_tern_kernels *ks = bn_cpu_ternary_table("auto");
    for (int64_t t = 0; t < Npad / 32; t++) {
        const int64_t r0 = 32 * t, r1 = N - r0 < 32 ? N : r0 + 32;
        memset(codes, 1, 32 * ldc); /* weight 0 past K and past N */
        ks->unpack[w->ti](w, r0, r1, 0, K, codes, ldc);
        uint8_t *tile = data + (size_t)t * tb;
        for (int64_t g = 0; g < Gpad; g++) {
            uint8_t *unit = tile + (size_t)(g / 8) * UNIT;
            for (int j = 0; j < 32; j++) {
                const uint8_t *c = codes + (size_t)j * ldc + 3 * (size_t)g;
                if (c[0] > 2 || c[1] > 2 || c[2] > 2) { /* TQ2_0 code 3: not a ternary weight */
                    free(codes);
                    free(data);
                    return bn_fail(err, BN_ERR_UNSUPPORTED, "weight has code 3");
                }
                int tr[3] = {c[0] - 1, c[1] - 1, c[2] - 1}, idx, sign;
                encode(tr, &idx, &sign);
                unit[32 * ((g % 8) / 2) + j] |= (uint8_t)(g % 2 ? idx << 4 : idx);
                unit[128 + j] |= (uint8_t)(sign << (g % 8));
            }
        }
    }
    free(codes);
    out->data = data;
    out->K = K;
    out->N = N;
    out->G = G;
    out->Gpad = Gpad;
    out->Npad = Npad;
    out->tile_bytes = tb;
    return BN_OK;
}

/* ---- portable kernels (the scalar table's) ---- */

/* Digit j (w_j + 1, 0..2) of index i. */
static int digit(int i, int j) {
    return j == 0 ? i / 9 : j == 1 ? (i / 3) % 3 : i % 3;
}

void bn_tern_lut_tables_c(const int8_t *q, int64_t K, int64_t Gpad, int8_t *tab) {
    for (int64_t g = 0; g < Gpad; g++) {
        int lo[3], hi[3];
        for (int j = 0; j < 3; j++) {
            int v = 3 * g + j < K ? q[3 * g + j] : 0;
            lo[j] = v & 15;
            hi[j] = (v - lo[j]) / 16; /* exact: v - lo is a multiple of 16 */
        }
        for (int i = 0; i < 16; i++) {
            int sl = 0, sh = 0;
            for (int j = 0; j < 3 && i < 14; j++) {
                sl += (digit(i, j) - 1) * lo[j];
                sh += (digit(i, j) - 1) * hi[j];
            }
            tab[32 * g + i] = (int8_t)sl;
            tab[32 * g + 16 + i] = (int8_t)sh;
        }
    }
}

void bn_tern_lut_gemv_c(const bn_tern_lut *w, int64_t t0, int64_t t1, const int8_t *tab,
                        int32_t *out) {
    for (int64_t t = t0; t < t1; t++) {
        const uint8_t *tile = w->data + (size_t)t * w->tile_bytes;
        for (int j = 0; j < 32; j++) {
            int32_t s = 0;
            for (int64_t g = 0; g < w->Gpad; g++) {
                const uint8_t *unit = tile + (size_t)(g / 8) * UNIT;
                const uint8_t b = unit[32 * ((g % 8) / 2) + j];
                const int idx = g % 2 ? b >> 4 : b & 15, sign = (unit[128 + j] >> (g % 8)) & 1;
                const int v = tab[32 * g + idx] + 16 * tab[32 * g + 16 + idx];
                s += sign ? -v : v;
            }
            out[32 * (t - t0) + j] = s;
        }
    }
}

void bn_tern_lut_unpack_c(const bn_tern_lut *w, int64_t t, int64_t k0, int64_t kn, uint8_t *codes,
                          size_t ldc) {
    /* the three codes of (index, sign) */
    uint8_t tr[32][3];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 3; j++) {
            int v = i < 14 ? digit(i, j) - 1 : 0;
            tr[i][j] = (uint8_t)(v + 1);
            tr[16 + i][j] = (uint8_t)(1 - v);
        }
    const uint8_t *tile = w->data + (size_t)t * w->tile_bytes;
    for (int j = 0; j < 32; j++) {
        uint8_t *c = codes + (size_t)j * ldc;
        for (int64_t g = k0 / 3; 3 * g < k0 + kn; g++) {
            const uint8_t *unit = tile + (size_t)(g / 8) * UNIT;
            const uint8_t b = unit[32 * ((g % 8) / 2) + j];
            const int e = (g % 2 ? b >> 4 : b & 15) | (((unit[128 + j] >> (g % 8)) & 1) << 4);
            for (int i = 0; i < 3; i++) {
                int64_t k = 3 * g + i;
                if (k >= k0 && k < k0 + kn) c[k - k0] = tr[e][i];
            }
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

BN_TARGET_PUSH(BN_TARGET_AVX2)

#define LD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define ST(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), v)
#define BCAST(p) _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(p)))

/* Tables of two groups per step: lane 0 group g, lane 1 group g + 1. The
 * activations are first copied with zero padding (3 Gpad + 16 bytes), so
 * reads past K see zeros. */
void bn_tern_avx2_lut_tables(const int8_t *q, int64_t K, int64_t Gpad, int8_t *tab) {
    int8_t *pad = tab + (size_t)Gpad * 32; /* room left by bn_tern_lut_table_bytes */
    memcpy(pad, q, (size_t)K);
    memset(pad + K, 0, (size_t)(3 * Gpad + 16 - K));
    /* W_j[i] = digit j of i, minus 1 (0 for i = 14, 15) */
    const __m256i W0 = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, -1,
                                        -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0);
    const __m256i W1 = _mm256_setr_epi8(-1, -1, -1, 0, 0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 0, -1,
                                        -1, -1, 0, 0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 0);
    const __m256i W2 = _mm256_setr_epi8(-1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 0, 0, -1, 0,
                                        1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 0, 0);
    const __m256i S0 = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3,
                                        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2), m15 = _mm256_set1_epi8(15);
    const __m256i sext = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1, 0,
                                          1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
    for (int64_t g = 0; g < Gpad; g += 2) {
        const __m256i x = BCAST(pad + 3 * g);
        __m256i b0 = _mm256_shuffle_epi8(x, S0);
        __m256i b1 = _mm256_shuffle_epi8(x, _mm256_add_epi8(S0, one));
        __m256i b2 = _mm256_shuffle_epi8(x, _mm256_add_epi8(S0, two));
#define SPLIT(B, LO, HI)                                                                           \
    __m256i LO = _mm256_and_si256(B, m15);                                                         \
    __m256i HI = _mm256_shuffle_epi8(sext, _mm256_and_si256(_mm256_srli_epi16(B, 4), m15))
        SPLIT(b0, l0, h0);
        SPLIT(b1, l1, h1);
        SPLIT(b2, l2, h2);
#undef SPLIT
        __m256i el =
            _mm256_add_epi8(_mm256_add_epi8(_mm256_sign_epi8(l0, W0), _mm256_sign_epi8(l1, W1)),
                            _mm256_sign_epi8(l2, W2));
        __m256i eh =
            _mm256_add_epi8(_mm256_add_epi8(_mm256_sign_epi8(h0, W0), _mm256_sign_epi8(h1, W1)),
                            _mm256_sign_epi8(h2, W2));
        ST(tab + 32 * g, _mm256_permute2x128_si256(el, eh, 0x20));
        ST(tab + 32 * g + 32, _mm256_permute2x128_si256(el, eh, 0x31));
    }
}

/* One group: lookups, sign, combine, accumulate (rows in [0..7|16..23], [8..15|24..31]). */
#define LUT_GROUP(G, IDX, S)                                                                       \
    do {                                                                                           \
        const __m256i tl = BCAST(tab + 32 * (G)), th = BCAST(tab + 32 * (G) + 16);                 \
        const __m256i m = _mm256_or_si256((S) < 7 ? _mm256_slli_epi16(sg, 7 - (S)) : sg, one);     \
        __m256i xl = _mm256_sign_epi8(_mm256_shuffle_epi8(tl, IDX), m);                            \
        __m256i xh = _mm256_sign_epi8(_mm256_shuffle_epi8(th, IDX), m);                            \
        a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(c116, _mm256_unpacklo_epi8(xl, xh)));       \
        a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(c116, _mm256_unpackhi_epi8(xl, xh)));       \
    } while (0)

void bn_tern_avx2_lut_gemv(const bn_tern_lut *w, int64_t t0, int64_t t1, const int8_t *tab0,
                           int32_t *out) {
    const __m256i m15 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    const __m256i c116 = _mm256_set1_epi16(1 | (16 << 8));
    const int64_t units = w->Gpad / 8;
    for (int64_t t = t0; t < t1; t++) {
        const uint8_t *tile = w->data + (size_t)t * w->tile_bytes;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (int64_t u0 = 0; u0 < units; u0 += 8) { /* 64 groups of |x| <= 384 per int16 */
            __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
            const int64_t u1 = units - u0 < 8 ? units : u0 + 8;
            for (int64_t u = u0; u < u1; u++) {
                const uint8_t *p = tile + (size_t)u * UNIT;
                const int8_t *tab = tab0 + 256 * u;
                const __m256i sg = LD(p + 128);
#define PAIR(PR)                                                                                   \
    do {                                                                                           \
        const __m256i ix = LD(p + 32 * (PR));                                                      \
        const __m256i i0 = _mm256_and_si256(ix, m15);                                              \
        const __m256i i1 = _mm256_and_si256(_mm256_srli_epi16(ix, 4), m15);                        \
        LUT_GROUP(2 * (PR), i0, 2 * (PR));                                                         \
        LUT_GROUP(2 * (PR) + 1, i1, 2 * (PR) + 1);                                                 \
    } while (0)
                PAIR(0);
                PAIR(1);
                PAIR(2);
                PAIR(3);
#undef PAIR
            }
            s0 = _mm256_add_epi32(s0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a0)));
            s1 = _mm256_add_epi32(s1, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a1)));
            s2 = _mm256_add_epi32(s2, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a0, 1)));
            s3 = _mm256_add_epi32(s3, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a1, 1)));
        }
        int32_t *o = out + 32 * (t - t0);
        ST(o, s0);
        ST(o + 8, s1);
        ST(o + 16, s2);
        ST(o + 24, s3);
    }
}

BN_TARGET_POP

#endif
