/* float_avx2.c - the AVX2 + FMA + F16C table of the CPU backend's float
 * kernels (float_kernels.h). Every function in this file is compiled for
 * those extensions (the pragma below), so nothing here may run before
 * float_dispatch.c has checked the CPU; the rest of the binary stays
 * baseline x86-64.
 *
 * Vectors hold 8 floats. Reductions keep several accumulators and add them
 * at the end, so sums are reordered against the scalar reference (see
 * float_kernels.h for the error bounds the tests check). */
#include "float_kernels.h"
#include "cpu_target.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

BN_TARGET_PUSH(BN_TARGET_AVX2)

/* ---- helpers ---- */

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline double hsum4d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

static inline __m256 load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 load_bf16(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline float f16_scalar(uint16_t h) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

static inline float bf16_scalar(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* 8 elements of a row of type F32, F16 or BF16 at element i. */
static inline __attribute__((always_inline)) __m256 load_w(uint32_t type, const void *row,
                                                           int64_t i) {
    if (type == BN_TYPE_F16) return load_f16((const uint16_t *)row + i);
    if (type == BN_TYPE_BF16) return load_bf16((const uint16_t *)row + i);
    return _mm256_loadu_ps((const float *)row + i);
}

static inline __attribute__((always_inline)) float load_w1(uint32_t type, const void *row,
                                                           int64_t i) {
    if (type == BN_TYPE_F16) return f16_scalar(((const uint16_t *)row)[i]);
    if (type == BN_TYPE_BF16) return bf16_scalar(((const uint16_t *)row)[i]);
    return ((const float *)row)[i];
}

/* exp(x) for x in [-87, 88.3] (inputs are clamped there): x = n ln2 + r with
 * |r| <= ln2/2 (ln2 split in two for an exact n ln2), exp(r) by the Cephes
 * degree-6 polynomial, times 2^n built in the exponent bits. Within 2 ulp. */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline float exp1(float x) {
    float out[8];
    _mm256_storeu_ps(out, exp8(_mm256_set1_ps(x)));
    return out[0];
}

/* ---- QUANTIZE_ACT ----
 * m = max(max|x|, 1e-5) (NaN ignored, as by the reference's `v > m`; max_ps
 * returns its second operand when the first is NaN), s = 127/m in f32,
 * q = clamp(round_half_even(x*s)) with the f32 product and the current
 * rounding mode (what nearbyintf does), NaN -> 0; 32 values are packed to
 * int8 at a time and their int32 sum accumulated exactly. */
static void quantize_row(const float *x, int64_t K, bn_act_row *a) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vm = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= K; i += 8)
        vm = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), vm);
    float mv[8];
    _mm256_storeu_ps(mv, vm);
    float m = 0.0f;
    for (int k = 0; k < 8; k++)
        if (mv[k] > m) m = mv[k];
    for (; i < K; i++) {
        float v = fabsf(x[i]);
        if (v > m) m = v;
    }
    if (m < 1e-5f) m = 1e-5f;
    const float s = 127.0f / m;
    const __m256 vs = _mm256_set1_ps(s), lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i vsum = _mm256_setzero_si256();
    i = 0;
    for (; i + 32 <= K; i += 32) {
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), vs),
                                       _MM_FROUND_CUR_DIRECTION);
            v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN -> +0 */
            v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
            q[k] = _mm256_cvtps_epi32(v);
            vsum = _mm256_add_epi32(vsum, q[k]);
        }
        __m256i p =
            _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)(a->q + i), _mm256_permutevar8x32_epi32(p, perm));
    }
    int32_t sv[8], sum = 0;
    _mm256_storeu_si256((__m256i *)sv, vsum);
    for (int k = 0; k < 8; k++) sum += sv[k];
    for (; i < K; i++) {
        float v = nearbyintf(x[i] * s);
        int32_t q;
        if (v >= 127.0f)
            q = 127;
        else if (v <= -128.0f)
            q = -128;
        else if (v == v)
            q = (int32_t)v;
        else
            q = 0;
        a->q[i] = (int8_t)q;
        sum += q;
    }
    a->s = s;
    a->sum = sum;
}

/* ---- RMS_NORM pieces ---- */

static double sum_sq(const float *x, int64_t n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v0));
        __m256d d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v0, 1));
        __m256d d2 = _mm256_cvtps_pd(_mm256_castps256_ps128(v1));
        __m256d d3 = _mm256_cvtps_pd(_mm256_extractf128_ps(v1, 1));
        a0 = _mm256_fmadd_pd(d0, d0, a0);
        a1 = _mm256_fmadd_pd(d1, d1, a1);
        a2 = _mm256_fmadd_pd(d2, d2, a2);
        a3 = _mm256_fmadd_pd(d3, d3, a3);
    }
    double s = hsum4d(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

/* The product of two doubles rounded to f32 is what the reference computes;
 * cvtpd_ps rounds like the (float) cast (current mode, nearest by default). */
static void scale_row(const float *x, double f, float *y, int64_t n) {
    const __m256d vf = _mm256_set1_pd(f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vf));
        __m128 hi =
            _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vf));
        _mm256_storeu_ps(y + i, _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
    }
    for (; i < n; i++) y[i] = (float)(x[i] * f);
}

/* ---- conversions and dot products ---- */

static void f16_to_f32(const uint16_t *h, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_f16(h + i));
    for (; i < n; i++) y[i] = f16_scalar(h[i]);
}

/* vcvtps2ph rounds to nearest even (immediate 0), quiets a NaN keeping its
 * top 10 payload bits and flushes f32 subnormals (below 2^-126, far under
 * half the smallest f16 subnormal) to signed zero: bn_f32_to_f16 exactly. */
static void f32_to_f16(const float *x, uint16_t *h, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), 0));
    for (; i < n; i++) h[i] = (uint16_t)_mm_cvtsi128_si32(_mm_cvtps_ph(_mm_set_ss(x[i]), 0));
}

static void bf16_to_f32(const uint16_t *h, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_bf16(h + i));
    for (; i < n; i++) y[i] = bf16_scalar(h[i]);
}

static float dot_f32(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- MATMUL_F mat-vec, float weights ----
 * Rows go in pairs half the range apart (row i with row h + i), sharing the
 * loads of x: two sequential streams megabytes apart read from memory at the
 * full bandwidth, while rows interleaved within a few kilobytes lose the
 * hardware prefetchers (measured: 10 GB/s with four adjacent rows at a time,
 * 28.7 with one, on a 29 GB/s machine). x stays in L1. Each row sums in two
 * accumulators, in the same order whether it is paired or alone. */
static inline __attribute__((always_inline)) float matvec_row1(uint32_t type, const void *w,
                                                               int64_t K, const float *x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 16 <= K; i += 16) {
        a0 = _mm256_fmadd_ps(load_w(type, w, i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(load_w(type, w, i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    for (; i + 8 <= K; i += 8) a0 = _mm256_fmadd_ps(load_w(type, w, i), _mm256_loadu_ps(x + i), a0);
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; i < K; i++) s += load_w1(type, w, i) * x[i];
    return s;
}

/* Rows w and v at once: y[0] and y[1] exactly as matvec_row1 computes them. */
static inline __attribute__((always_inline)) void matvec_row2(uint32_t type, const void *w,
                                                              const void *v, int64_t K,
                                                              const float *x, float *yw,
                                                              float *yv) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    int64_t i = 0;
    for (; i + 16 <= K; i += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_fmadd_ps(load_w(type, w, i), x0, a0);
        a1 = _mm256_fmadd_ps(load_w(type, w, i + 8), x1, a1);
        b0 = _mm256_fmadd_ps(load_w(type, v, i), x0, b0);
        b1 = _mm256_fmadd_ps(load_w(type, v, i + 8), x1, b1);
    }
    for (; i + 8 <= K; i += 8) {
        const __m256 x0 = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(load_w(type, w, i), x0, a0);
        b0 = _mm256_fmadd_ps(load_w(type, v, i), x0, b0);
    }
    float s = hsum8(_mm256_add_ps(a0, a1)), t = hsum8(_mm256_add_ps(b0, b1));
    for (; i < K; i++) {
        s += load_w1(type, w, i) * x[i];
        t += load_w1(type, v, i) * x[i];
    }
    *yw = s;
    *yv = t;
}

/* The type is tested once here so each loop has constant loads. */
static void matvec(uint32_t type, const void *w, size_t rb, int64_t K, int64_t nrows,
                   const float *x, float *y) {
    const char *p = w;
    const int64_t h = (nrows + 1) / 2;
#define MATVEC_LOOP(T)                                                                             \
    for (int64_t r = 0; r < nrows - h; r++)                                                        \
        matvec_row2(T, p + (size_t)r * rb, p + (size_t)(h + r) * rb, K, x, &y[r], &y[h + r]);      \
    if (nrows & 1) y[h - 1] = matvec_row1(T, p + (size_t)(h - 1) * rb, K, x);
    if (type == BN_TYPE_F16) {
        MATVEC_LOOP(BN_TYPE_F16)
    } else if (type == BN_TYPE_BF16) {
        MATVEC_LOOP(BN_TYPE_BF16)
    } else {
        MATVEC_LOOP(BN_TYPE_F32)
    }
#undef MATVEC_LOOP
}

/* ---- MATMUL_F mat-vec, Q6_K weights ----
 * A Q6_K block (FORMATS.md) holds 256 6-bit values u in 0..63 (weight
 * (u - 32) * sc_s * d, sc_s an int8 scale per 16 elements, d an f16 per
 * block). The activations are prepared once per row x: per 256-block b,
 * xs_b = max|x| / 32767 and X_i = round(x_i / xs_b) in [-32767, 32767],
 * split into bytes X = 256 Xh + Xl (Xh signed, Xl unsigned), plus the per-16
 * sums SXh_s, SXl_s. Then, exactly in integers,
 *   sum_i (u_i - 32) sc X_i = 256 [sum u Xh sc - 32 sum_s sc_s SXh_s]
 *                           +     [sum u Xl sc - 32 sum_s sc_s SXl_s]
 * with maddubs (u8 x s8 pairs summed to i16: u*Xh pairs <= 16128, Xl*u pairs
 * <= 32130, no saturation) and madd by the scales (to i32: per block at most
 * 2^26 per lane); each block's two i32 vectors are converted to float and
 * added with weights 256 * d * xs_b and d * xs_b. The only rounding beyond
 * float summation is that of X (<= 2^-16 of the block's max |x|). */
#include "q6k_x86.h"

#define Q6K_BLOCK 210
#define Q6K_PREP_BLOCK 640 /* per 256-block: Xh[256], Xl[256], SXh[16], SXl[16] (i16), xs, pad */

static size_t q6k_prep_bytes(int64_t K) {
    return (size_t)(K / BN_QK_K) * Q6K_PREP_BLOCK;
}

static void q6k_prepare(const float *x, int64_t K, void *px) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < K / BN_QK_K; b++) {
        const float *xb = x + b * BN_QK_K;
        uint8_t *o = (uint8_t *)px + b * Q6K_PREP_BLOCK;
        int8_t *xh = (int8_t *)o;
        uint8_t *xl = o + 256;
        int16_t *sxh = (int16_t *)(o + 512), *sxl = (int16_t *)(o + 544);
        __m256 vm = _mm256_setzero_ps();
        for (int i = 0; i < BN_QK_K; i += 8)
            vm = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xb + i), absmask), vm);
        float m = 0.0f, mv[8];
        _mm256_storeu_ps(mv, vm);
        for (int k = 0; k < 8; k++) m = mv[k] > m ? mv[k] : m;
        const float xs = m > 0.0f ? m / 32767.0f : 0.0f;
        const __m256 inv = _mm256_set1_ps(m > 0.0f ? 32767.0f / m : 0.0f);
        const __m256 lim = _mm256_set1_ps(32767.0f);
        int16_t X[BN_QK_K];
        for (int i = 0; i < BN_QK_K; i += 16) {
            __m256 v0 = _mm256_mul_ps(_mm256_loadu_ps(xb + i), inv);
            __m256 v1 = _mm256_mul_ps(_mm256_loadu_ps(xb + i + 8), inv);
            v0 = _mm256_min_ps(_mm256_max_ps(v0, _mm256_sub_ps(_mm256_setzero_ps(), lim)), lim);
            v1 = _mm256_min_ps(_mm256_max_ps(v1, _mm256_sub_ps(_mm256_setzero_ps(), lim)), lim);
            __m256i q = _mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1));
            q = _mm256_permute4x64_epi64(q, 0xD8); /* undo the per-lane interleave */
            _mm256_storeu_si256((__m256i *)(X + i), q);
        }
        for (int s = 0; s < 16; s++) {
            int h = 0, l = 0;
            for (int i = 0; i < 16; i++) {
                int v = X[16 * s + i];
                int vh = v >> 8; /* arithmetic: floor(v / 256) */
                int vl = v - 256 * vh;
                xh[16 * s + i] = (int8_t)vh;
                xl[16 * s + i] = (uint8_t)vl;
                h += vh;
                l += vl;
            }
            sxh[s] = (int16_t)h;
            sxl[s] = (int16_t)l;
        }
        memcpy(o + 576, &xs, sizeof xs);
    }
}

/* One row: the dot product of a Q6_K row of K/256 blocks with prepared x. */
static float q6k_row(const uint8_t *w, int64_t nb, const uint8_t *px) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256i pick[4];
    q6k_scale_picks(pick);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, w += Q6K_BLOCK, px += Q6K_PREP_BLOCK) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *xh = (const int8_t *)px;
        const uint8_t *xl = px + 256;
        /* the 16 scales as i16, and the -32 offset's correction */
        __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 192)));
        __m256i ah = _mm256_madd_epi16(sc, _mm256_loadu_si256((const __m256i *)(px + 512)));
        __m256i al = _mm256_madd_epi16(sc, _mm256_loadu_si256((const __m256i *)(px + 544)));
        ah = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(ah, 5));
        al = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(al, 5));
        for (int h = 0; h < 2; h++) {
            const __m256i sch = q6k_half_scales(sc, h);
            const __m256i L0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
            const __m256i L1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
            const __m256i H = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
            __m256i u[4];
            u[0] = _mm256_or_si256(_mm256_and_si256(L0, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(H, 4), m30));
            u[1] = _mm256_or_si256(_mm256_and_si256(L1, m4),
                                   _mm256_and_si256(_mm256_slli_epi16(H, 2), m30));
            u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L0, 4), m4),
                                   _mm256_and_si256(H, m30));
            u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(H, 2), m30));
            for (int j = 0; j < 4; j++) {
                const int e = 128 * h + 32 * j; /* first element of this chunk */
                /* chunk elements 0..15 use scale 8h+2j, 16..31 scale 8h+2j+1 */
                __m256i sv = _mm256_shuffle_epi8(sch, pick[j]);
                __m256i ph =
                    _mm256_maddubs_epi16(u[j], _mm256_loadu_si256((const __m256i *)(xh + e)));
                __m256i pl =
                    _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(xl + e)), u[j]);
                ah = _mm256_add_epi32(ah, _mm256_madd_epi16(ph, sv));
                al = _mm256_add_epi32(al, _mm256_madd_epi16(pl, sv));
            }
        }
        uint16_t dh;
        float xs;
        memcpy(&dh, w + 208, 2);
        memcpy(&xs, px + 576, 4);
        const float f = f16_scalar(dh) * xs;
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ah), _mm256_set1_ps(256.0f * f), acc);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(al), _mm256_set1_ps(f), acc);
    }
    return hsum8(acc);
}

static void q6k_matvec(const void *w, size_t rb, int64_t K, int64_t nrows, const void *px,
                       float *y) {
    for (int64_t r = 0; r < nrows; r++)
        y[r] = q6k_row((const uint8_t *)w + (size_t)r * rb, K / BN_QK_K, px);
}

/* ---- softmax and SILU ---- */

static float exp_sub_sum(float *s, int64_t n, float m) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum8(acc);
    for (; j < n; j++) {
        s[j] = exp1(s[j] - m);
        sum += s[j];
    }
    return sum;
}

static void silu(const float *x, float *y, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, v)))));
    }
    for (; i < n; i++) y[i] = x[i] / (1.0f + exp1(-x[i]));
}

/* max_ps returns its second operand when the first is NaN: NaN -> 0, as the
 * reference's x > 0 ? x : 0. */
static void relu_sqr(const float *x, float *y, int64_t n) {
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_max_ps(_mm256_loadu_ps(x + i), zero);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(v, v));
    }
    for (; i < n; i++) {
        const float v = x[i] > 0.0f ? x[i] : 0.0f;
        y[i] = v * v;
    }
}

/* ---- attention ---- */

/* q . k_j for four rows at once (hd elements each). */
static inline __attribute__((always_inline)) __m128
dot4_rows(const float *q, uint32_t type, const char *k0, size_t rb, int64_t hd) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 8 <= hd; i += 8) {
        __m256 qv = _mm256_loadu_ps(q + i);
        a0 = _mm256_fmadd_ps(load_w(type, k0, i), qv, a0);
        a1 = _mm256_fmadd_ps(load_w(type, k0 + rb, i), qv, a1);
        a2 = _mm256_fmadd_ps(load_w(type, k0 + 2 * rb, i), qv, a2);
        a3 = _mm256_fmadd_ps(load_w(type, k0 + 3 * rb, i), qv, a3);
    }
    /* transpose-add: lane r of the result = sum of a_r */
    __m256 s01 = _mm256_hadd_ps(a0, a1), s23 = _mm256_hadd_ps(a2, a3);
    __m256 s = _mm256_hadd_ps(s01, s23);
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    if (i < hd) {
        float t[4];
        _mm_storeu_ps(t, r);
        for (; i < hd; i++)
            for (int k = 0; k < 4; k++) t[k] += load_w1(type, k0 + k * rb, i) * q[i];
        r = _mm_loadu_ps(t);
    }
    return r;
}

static inline __attribute__((always_inline)) float attn_scores_t(const float *q, const void *base,
                                                                 size_t rb, uint32_t type,
                                                                 int64_t len, int64_t hd,
                                                                 float scale, float *s) {
    const char *p = base;
    const __m128 vscale = _mm_set1_ps(scale);
    __m128 vmax = _mm_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 4 <= len; j += 4) {
        __m128 v = _mm_mul_ps(dot4_rows(q, type, p + (size_t)j * rb, rb, hd), vscale);
        _mm_storeu_ps(s + j, v);
        vmax = _mm_max_ps(v, vmax);
    }
    float mv[4], m = -INFINITY;
    _mm_storeu_ps(mv, vmax);
    for (int k = 0; k < 4; k++) m = mv[k] > m ? mv[k] : m;
    for (; j < len; j++) {
        const char *row = p + (size_t)j * rb;
        __m256 a = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 8 <= hd; i += 8)
            a = _mm256_fmadd_ps(load_w(type, row, i), _mm256_loadu_ps(q + i), a);
        float d = hsum8(a);
        for (; i < hd; i++) d += load_w1(type, row, i) * q[i];
        s[j] = scale * d;
        if (s[j] > m) m = s[j];
    }
    return m;
}

/* out += sum_j p_j v_j: 64 output elements at a time in eight registers over
 * all rows, then added to out. */
static inline __attribute__((always_inline)) void attn_wsum_t(const float *pj, const void *base,
                                                              size_t rb, uint32_t type, int64_t len,
                                                              int64_t hd, float *out) {
    const char *p = base;
    int64_t d = 0;
    for (; d + 64 <= hd; d += 64) {
        __m256 a[8];
        for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_ps();
        for (int64_t j = 0; j < len; j++) {
            const __m256 w = _mm256_set1_ps(pj[j]);
            const char *row = p + (size_t)j * rb;
            for (int k = 0; k < 8; k++)
                a[k] = _mm256_fmadd_ps(load_w(type, row, d + 8 * k), w, a[k]);
        }
        for (int k = 0; k < 8; k++)
            _mm256_storeu_ps(out + d + 8 * k,
                             _mm256_add_ps(_mm256_loadu_ps(out + d + 8 * k), a[k]));
    }
    for (; d + 8 <= hd; d += 8) {
        __m256 a = _mm256_setzero_ps();
        for (int64_t j = 0; j < len; j++)
            a = _mm256_fmadd_ps(load_w(type, p + (size_t)j * rb, d), _mm256_set1_ps(pj[j]), a);
        _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_loadu_ps(out + d), a));
    }
    for (; d < hd; d++) {
        float a = 0.0f;
        for (int64_t j = 0; j < len; j++) a += load_w1(type, p + (size_t)j * rb, d) * pj[j];
        out[d] += a;
    }
}

/* The cache type is tested once here so each instantiation has constant loads. */
static float attn_scores(const float *q, const void *base, size_t rb, uint32_t type, int64_t len,
                         int64_t hd, float scale, float *s) {
    if (type == BN_TYPE_F16) return attn_scores_t(q, base, rb, BN_TYPE_F16, len, hd, scale, s);
    return attn_scores_t(q, base, rb, BN_TYPE_F32, len, hd, scale, s);
}

static void attn_wsum(const float *pj, const void *base, size_t rb, uint32_t type, int64_t len,
                      int64_t hd, float *out) {
    if (type == BN_TYPE_F16)
        attn_wsum_t(pj, base, rb, BN_TYPE_F16, len, hd, out);
    else
        attn_wsum_t(pj, base, rb, BN_TYPE_F32, len, hd, out);
}

const bn_cpu_float_ops bn_cpu_float_avx2 = {
    .isa = "avx2",
    .quantize_row = quantize_row,
    .sum_sq = sum_sq,
    .scale_row = scale_row,
    .f16_to_f32 = f16_to_f32,
    .f32_to_f16 = f32_to_f16,
    .bf16_to_f32 = bf16_to_f32,
    .dot_f32 = dot_f32,
    .matvec = matvec,
    .q6k_prep_bytes = q6k_prep_bytes,
    .q6k_prepare = q6k_prepare,
    .q6k_matvec = q6k_matvec,
    .exp_sub_sum = exp_sub_sum,
    .silu = silu,
    .relu_sqr = relu_sqr,
    .attn_scores = attn_scores,
    .attn_wsum = attn_wsum,
};

BN_TARGET_POP

#endif /* x86 */
