/* ternary_sparse.c - the column layout of ternary weights (ternary.h,
 * bn_tern_cols) and its AVX2 kernels, for weights whose activations are often
 * exactly zero: after relu(gate)^2 * up and the sub-norm of BitNet b1.58
 * 2B-4T, about half the inputs of ffn_down are 0. A zero input multiplies a
 * whole column of the weight, so with the codes of each column stored
 * together the mat-vec reads only the columns of non-zero inputs: fewer bytes
 * per token, and the same exact sums.
 *
 * Mat-vec (one token): y_r = sum over non-zero inputs k of c_rk * q_k. The
 * non-zero inputs are listed first (compare with zero, movemask, bit scan);
 * then for each pair (k1, k2) of them and each 128-row block, the two
 * columns' 32-byte blocks are interleaved byte by byte, so that (w >> s) & 3
 * of the interleaved bytes gives (c_r,k1, c_r,k2) pairs for 16 rows and
 * _mm256_maddubs_epi16 with the broadcast pair (q_k1, q_k2) gives
 * c_r,k1 q_k1 + c_r,k2 q_k2 per row (|x| <= 768), added into int16 row
 * accumulators (in L1), which are widened into int32 every 32 pairs.
 * Interleaving puts rows in the order [0..7, 16..23] and [8..15, 24..31] of
 * each 32-row group; widening the 128-bit halves in the right order restores
 * the natural order.
 *
 * GEMM (several tokens): 16 rows of all columns are transposed back into
 * byte codes (cols_unpack) for the ordinary micro-kernel.
 *
 * Off by default (ternary_prepare.c, BITNET_CPU_SPARSE=1): on the Zen 4
 * measured (bench/RESULTS.md) it beats the row kernels only above ~70 % zero
 * activations, the row kernels being compute-bound there; it is meant for
 * CPUs where decode is bandwidth-bound. */
#include <stdlib.h>
#include <string.h>

#include "ternary.h"
#include "cpu_target.h"

void bn_tern_free_packed(void *p) {
    free(p);
}

bn_status bn_tern_make_cols(const bn_tern_w *w, bn_tern_cols *out, bn_err *err) {
    memset(out, 0, sizeof *out);
    const int64_t K = w->K, N = w->N, Npad = (N + 127) / 128 * 128;
    const size_t cb = (size_t)Npad / 4, bytes = cb * (size_t)K;
    uint8_t *data = aligned_alloc(64, (bytes + 63) / 64 * 64);
    uint8_t *codes = malloc((size_t)128 * (size_t)K);
    if (!data || !codes) {
        free(data);
        free(codes);
        return bn_fail(err, BN_ERR_OOM, "out of memory repacking a %lld x %lld weight",
                       (long long)K, (long long)N);
    }
    const bn_tern_kernels *ks = bn_cpu_ternary_table("auto");
    for (int64_t B = 0; B < Npad / 128; B++) {
        const int64_t r0 = 128 * B, r1 = N - r0 < 128 ? N : r0 + 128;
        ks->unpack[w->ti](w, r0, r1, 0, K, codes, (size_t)K);
        if (r1 - r0 < 128)
            memset(codes + (size_t)(r1 - r0) * (size_t)K, 0, (size_t)(128 - (r1 - r0)) * (size_t)K);
        /* 64 columns at a time: a 128 x 64 block of codes stays in L1 */
        for (int64_t k0 = 0; k0 < K; k0 += 64)
            for (int64_t k = k0; k < K && k < k0 + 64; k++) {
                uint8_t *o = data + (size_t)k * cb + 32 * (size_t)B;
                for (int b = 0; b < 32; b++) {
                    const uint8_t *c = codes + (size_t)b * (size_t)K + (size_t)k;
                    o[b] = (uint8_t)(c[0] << 6 | c[32 * (size_t)K] << 4 | c[64 * (size_t)K] << 2 |
                                     c[96 * (size_t)K]);
                }
            }
    }
    free(codes);
    out->data = data;
    out->K = K;
    out->N = N;
    out->Npad = Npad;
    out->col_bytes = cb;
    return BN_OK;
}

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

BN_TARGET_PUSH(BN_TARGET_AVX2)

#define LD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define ST(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), v)

#define PREFETCH 8 /* column pairs */

/* Indices of the non-zero q[0..K) (K a multiple of 32) into nz; returns their count. */
static int64_t nonzeros(const int8_t *q, int64_t K, int32_t *nz) {
    int64_t n = 0;
    for (int64_t k = 0; k < K; k += 32) {
        uint32_t m =
            ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(LD(q + k), _mm256_setzero_si256()));
        while (m) {
            nz[n++] = (int32_t)(k + __builtin_ctz(m));
            m &= m - 1;
        }
    }
    return n;
}

/* acc16 (rows int16, interleaved order) into acc32 (natural order), then zero acc16. */
static void widen(int16_t *acc16, int32_t *acc32, int64_t rows) {
    for (int64_t r = 0; r < rows; r += 32) {
        __m256i a = LD(acc16 + r), b = LD(acc16 + r + 16); /* [0..7|16..23], [8..15|24..31] */
        __m256i x0 = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a));
        __m256i x1 = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(b));
        __m256i x2 = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1));
        __m256i x3 = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(b, 1));
        ST(acc32 + r, _mm256_add_epi32(LD(acc32 + r), x0));
        ST(acc32 + r + 8, _mm256_add_epi32(LD(acc32 + r + 8), x1));
        ST(acc32 + r + 16, _mm256_add_epi32(LD(acc32 + r + 16), x2));
        ST(acc32 + r + 24, _mm256_add_epi32(LD(acc32 + r + 24), x3));
        ST(acc16 + r, _mm256_setzero_si256());
        ST(acc16 + r + 16, _mm256_setzero_si256());
    }
}

void bn_tern_avx2_cols_gemv(const bn_tern_cols *w, int64_t r0, int64_t r1, const int8_t *q,
                            int32_t *out, void *scratch) {
    const int64_t rows = r1 - r0;
    int32_t *nz = scratch;
    int16_t *acc16 = (int16_t *)((char *)scratch + ((size_t)w->K * 4 + 63) / 64 * 64);
    const int64_t nnz = nonzeros(q, w->K, nz);
    memset(acc16, 0, (size_t)rows * 2);
    memset(out, 0, (size_t)rows * 4);
    const __m256i m3 = _mm256_set1_epi8(3);
    const uint8_t *base = w->data + r0 / 4;
    int since = 0;
    const size_t slice = (size_t)rows / 4; /* bytes of this call's rows in one column */
    for (int64_t j = 0; j < nnz; j += 2) {
        /* the columns are read two at a time, an access pattern the hardware
         * prefetchers do not follow: fetch the columns PREFETCH pairs ahead */
        if (PREFETCH && j + 2 * PREFETCH + 1 < nnz)
            for (int i = 0; i < 2; i++) {
                const char *c =
                    (const char *)(base + (size_t)nz[j + 2 * PREFETCH + i] * w->col_bytes);
                for (size_t o = 0; o < slice; o += 64) _mm_prefetch(c + o, _MM_HINT_T1);
            }
        const int32_t k1 = nz[j], k2 = j + 1 < nnz ? nz[j + 1] : k1;
        const uint8_t a1 = (uint8_t)q[k1], a2 = j + 1 < nnz ? (uint8_t)q[k2] : 0;
        const __m256i a = _mm256_set1_epi16((short)(a1 | (a2 << 8)));
        const uint8_t *c1 = base + (size_t)k1 * w->col_bytes,
                      *c2 = base + (size_t)k2 * w->col_bytes;
        for (int64_t b = 0; b < rows / 128; b++) {
            __m256i w1 = LD(c1 + 32 * b), w2 = LD(c2 + 32 * b);
            __m256i lo = _mm256_unpacklo_epi8(w1, w2), hi = _mm256_unpackhi_epi8(w1, w2);
            int16_t *acc = acc16 + 128 * b;
            /* rows 32s .. 32s + 31 of the block are the fields at shift 6 - 2s */
#define PAIRS(S, SH)                                                                               \
    do {                                                                                           \
        __m256i pl = _mm256_and_si256(SH ? _mm256_srli_epi16(lo, SH) : lo, m3);                    \
        __m256i ph = _mm256_and_si256(SH ? _mm256_srli_epi16(hi, SH) : hi, m3);                    \
        ST(acc + 32 * S, _mm256_add_epi16(LD(acc + 32 * S), _mm256_maddubs_epi16(pl, a)));         \
        ST(acc + 32 * S + 16,                                                                      \
           _mm256_add_epi16(LD(acc + 32 * S + 16), _mm256_maddubs_epi16(ph, a)));                  \
    } while (0)
            PAIRS(0, 6);
            PAIRS(1, 4);
            PAIRS(2, 2);
            PAIRS(3, 0);
#undef PAIRS
        }
        if (++since == 32) { /* 32 pairs of at most 768 per row: widen before 42 */
            widen(acc16, out, rows);
            since = 0;
        }
    }
    widen(acc16, out, rows);
}

/* 16 rows [r0, r0 + 16) of columns [k0, k0 + kn) (kn a multiple of 16) into
 * row-major byte codes: each column's 16 codes are one 16-byte load and a
 * field extraction; 16 columns x 16 rows are then transposed in registers. */
void bn_tern_avx2_cols_unpack(const bn_tern_cols *w, int64_t r0, int64_t k0, int64_t kn,
                              uint8_t *codes, size_t ldc) {
    const __m128i sh = _mm_cvtsi32_si128(6 - 2 * (int)((r0 % 128) / 32));
    const size_t off = (size_t)(r0 / 128) * 32 + (size_t)((r0 % 32) / 16) * 16;
    const __m128i m3 = _mm_set1_epi8(3);
    for (int64_t k = k0; k < k0 + kn; k += 16) {
        __m128i v[16], a[8], b[8], c[4][4];
        for (int i = 0; i < 16; i++) { /* v[i] byte r: row r0 + r, column k + i */
            const uint8_t *p = w->data + (size_t)(k + i) * w->col_bytes + off;
            v[i] = _mm_and_si128(
                _mm_srl_epi16(_mm_loadu_si128((const __m128i *)(const void *)p), sh), m3);
        }
        /* a[i], b[i]: 16-bit unit r = columns (2i, 2i + 1) of row r (a) or r + 8 (b) */
        for (int i = 0; i < 8; i++) {
            a[i] = _mm_unpacklo_epi8(v[2 * i], v[2 * i + 1]);
            b[i] = _mm_unpackhi_epi8(v[2 * i], v[2 * i + 1]);
        }
        /* c[q][i]: 32-bit unit r = columns 4i .. 4i + 3 of row 4q + r */
        for (int i = 0; i < 4; i++) {
            c[0][i] = _mm_unpacklo_epi16(a[2 * i], a[2 * i + 1]);
            c[1][i] = _mm_unpackhi_epi16(a[2 * i], a[2 * i + 1]);
            c[2][i] = _mm_unpacklo_epi16(b[2 * i], b[2 * i + 1]);
            c[3][i] = _mm_unpackhi_epi16(b[2 * i], b[2 * i + 1]);
        }
        for (int q = 0; q < 4; q++) {
            /* 64-bit unit r: columns 0..7 (g) or 8..15 (h) of row 4q + r (0, 1) or + 2 + r */
            __m128i g0 = _mm_unpacklo_epi32(c[q][0], c[q][1]),
                    g1 = _mm_unpackhi_epi32(c[q][0], c[q][1]);
            __m128i h0 = _mm_unpacklo_epi32(c[q][2], c[q][3]),
                    h1 = _mm_unpackhi_epi32(c[q][2], c[q][3]);
            uint8_t *o = codes + (size_t)(4 * q) * ldc + (size_t)(k - k0);
            _mm_storeu_si128((__m128i *)(void *)o, _mm_unpacklo_epi64(g0, h0));
            _mm_storeu_si128((__m128i *)(void *)(o + ldc), _mm_unpackhi_epi64(g0, h0));
            _mm_storeu_si128((__m128i *)(void *)(o + 2 * ldc), _mm_unpacklo_epi64(g1, h1));
            _mm_storeu_si128((__m128i *)(void *)(o + 3 * ldc), _mm_unpackhi_epi64(g1, h1));
        }
    }
}

BN_TARGET_POP

#endif
