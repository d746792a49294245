/* q6k_x86.h - pieces of the Q6_K mat-vec shared by float_avx2.c and
 * float_avx512.c: the per-chunk scale vectors. Include it after the file's
 * target pragma (AVX2 at least), so these compile for that target.
 *
 * A 32-element chunk j (0..3) of half h of a Q6_K block uses scale 8h + 2j
 * for its elements 0..15 and 8h + 2j + 1 for 16..31. The pair sums of the
 * chunk's products (maddubs: i16 k = elements 2k, 2k + 1) have elements 0..15
 * in the low 128-bit lane and 16..31 in the high one, so the scale vector of
 * chunk j is: scale 8h + 2j in every i16 of the low lane, 8h + 2j + 1 in the
 * high lane. It is one byte shuffle of the half's eight scales. */
#ifndef BN_CPU_Q6K_X86_H
#define BN_CPU_Q6K_X86_H

#include <immintrin.h>

/* pick[j]: word 2j of each lane into the low lane, word 2j + 1 into the high
 * lane (as byte indices for _mm256_shuffle_epi8). */
static inline void q6k_scale_picks(__m256i pick[4]) {
    for (int j = 0; j < 4; j++) {
        const short lo = (short)((4 * j + 1) << 8 | 4 * j);
        const short hi = (short)((4 * j + 3) << 8 | (4 * j + 2));
        pick[j] = _mm256_setr_epi16(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi);
    }
}

/* The scales 8h .. 8h + 7 (i16) of sc (all 16 as i16) in both lanes. */
static inline __m256i q6k_half_scales(__m256i sc, int h) {
    return h ? _mm256_permute4x64_epi64(sc, 0xEE) : _mm256_permute4x64_epi64(sc, 0x44);
}

#endif
