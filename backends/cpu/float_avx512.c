/* float_avx512.c - the Q6_K mat-vec of the float kernels for CPUs with
 * AVX-512 VL + BW + VNNI (on 256-bit registers), used by the "avx512vnni"
 * table (float_dispatch.c: the AVX2 table with this entry replaced). Same
 * prepared activations, same integer sums and same float combination as
 * float_avx2.c's q6k_row (see its comment), with fewer instructions:
 *  - vpternlogd selects the low nibble from ql and the two high bits from
 *    qh in one instruction per 32 codes (the qh copies are pre-masked so
 *    the bits that would land above bit 5 are zero);
 *  - vpdpwssd multiplies the i16 pair sums by the scales and accumulates in
 *    one instruction (no i32 saturation: it adds exactly like madd + add),
 *    in two chains per sum so its latency does not bound the loop.
 * Rows go one at a time, like every mat-vec here: two adjacent rows at once
 * (sharing the activation loads) ran 3.5x slower from memory although
 * faster in cache (measured: 6 vs 22 GB/s), the prefetchers losing the
 * interleaved streams. Nothing here may run before float_dispatch.c has
 * checked the CPU. */
#include "float_kernels.h"
#include "cpu_target.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <string.h>

BN_TARGET_PUSH(BN_TARGET_AVX512VNNI)

#include "q6k_x86.h"

#define Q6K_BLOCK 210
#define Q6K_PREP_BLOCK 640 /* must match float_avx2.c */
#define SEL 0xE4           /* vpternlogd: c ? a : b, bit by bit */

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float q6k_row(const uint8_t *w, int64_t nb, const uint8_t *px) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m33 = _mm256_set1_epi8(0x33),
                  mcc = _mm256_set1_epi8((char)0xCC);
    __m256i pick[4];
    q6k_scale_picks(pick);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, w += Q6K_BLOCK, px += Q6K_PREP_BLOCK) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *xh = (const int8_t *)px;
        const uint8_t *xl = px + 256;
        __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 192)));
        __m256i ah = _mm256_madd_epi16(sc, _mm256_loadu_si256((const __m256i *)(px + 512)));
        __m256i al = _mm256_madd_epi16(sc, _mm256_loadu_si256((const __m256i *)(px + 544)));
        ah = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(ah, 5));
        al = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(al, 5));
        /* a second pair of accumulators for odd chunks: two dpwssd chains of four
         * instead of one of eight (its latency would bound the loop) */
        __m256i ah2 = _mm256_setzero_si256(), al2 = ah2;
        for (int h = 0; h < 2; h++) {
            const __m256i sch = q6k_half_scales(sc, h);
            const __m256i L0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
            const __m256i L1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
            const __m256i H = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
            /* Hm keeps qh bits 0,1,4,5 and Hn bits 2,3,6,7, so each shifted copy has
             * its two wanted bits at 4..5 and zeros at 6..7 */
            const __m256i Hm = _mm256_and_si256(H, m33), Hn = _mm256_and_si256(H, mcc);
            __m256i u[4];
            u[0] = _mm256_ternarylogic_epi32(L0, _mm256_slli_epi16(Hm, 4), m4, SEL);
            u[1] = _mm256_ternarylogic_epi32(L1, _mm256_slli_epi16(Hn, 2), m4, SEL);
            u[2] = _mm256_ternarylogic_epi32(_mm256_srli_epi16(L0, 4), Hm, m4, SEL);
            u[3] = _mm256_ternarylogic_epi32(_mm256_srli_epi16(L1, 4), _mm256_srli_epi16(Hn, 2), m4,
                                             SEL);
            for (int j = 0; j < 4; j++) {
                const int e = 128 * h + 32 * j;
                __m256i sv = _mm256_shuffle_epi8(sch, pick[j]);
                __m256i ph =
                    _mm256_maddubs_epi16(u[j], _mm256_loadu_si256((const __m256i *)(xh + e)));
                __m256i pl =
                    _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(xl + e)), u[j]);
                if (j & 1) {
                    ah2 = _mm256_dpwssd_epi32(ah2, ph, sv);
                    al2 = _mm256_dpwssd_epi32(al2, pl, sv);
                } else {
                    ah = _mm256_dpwssd_epi32(ah, ph, sv);
                    al = _mm256_dpwssd_epi32(al, pl, sv);
                }
            }
        }
        ah = _mm256_add_epi32(ah, ah2);
        al = _mm256_add_epi32(al, al2);
        uint16_t dh;
        float xs;
        memcpy(&dh, w + 208, 2);
        memcpy(&xs, px + 576, 4);
        const float f = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(dh))) * xs;
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ah), _mm256_set1_ps(256.0f * f), acc);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(al), _mm256_set1_ps(f), acc);
    }
    return hsum8(acc);
}

void bn_cpu_q6k_matvec_avx512vnni(const void *w, size_t rb, int64_t K, int64_t nrows,
                                  const void *px, float *y) {
    for (int64_t r = 0; r < nrows; r++)
        y[r] = q6k_row((const uint8_t *)w + (size_t)r * rb, K / BN_QK_K, px);
}

BN_TARGET_POP

#endif /* x86 */
