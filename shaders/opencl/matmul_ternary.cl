/* matmul_ternary.cl - MATMUL_TERNARY with ternary weights: ACT_Q8 activations
 * x [K, T] times weights W [K, N] (row n = output n) -> y F32 [N, T]:
 *   y[n, t] = (sum_g d_g * S_g) / s_t,  S_g = sum_{i in g} (c_ni - 1) * q_ti,
 * S_g exact in int32 (graph/ir.h, FORMATS.md). One build option picks the
 * weight format (byte layouts in FORMATS.md):
 *   -DWT_I2S  blocks of 128 codes in 32 bytes, byte b holding elements b, b+32,
 *             b+64, b+96 from the top bits down; one f32 scale for the whole
 *             tensor after all rows (S is summed over the whole row);
 *   -DWT_TQ2  blocks of 256 in 66 bytes: qs[64] (byte 32h+m holds elements
 *             128h + 32l + m at bit shift 2l), then f16 d;
 *   -DWT_TQ1  blocks of 256 in 54 bytes: base-3 digits in qs[48] and qh[4], f16 d.
 *
 * Algorithm: a block's codes are unpacked in registers, 16 bytes at a time
 * (uchar16 shifts and masks, or base-3 digit extraction), into signed weights
 * c - 1 (char16; widened to short16 without the built-in), each group of 16
 * matching 16 consecutive activations; products are summed with the integer
 * dot product built-in where the device has it, packed 16-bit integer
 * arithmetic otherwise (block_dot).
 * Block sums are exact int32 and are combined with their scales in `real`
 * (double with USE_FP64) in block order, as in the reference, then divided by
 * s_t.
 *
 * Work split: LPR lanes per row (a build option: 1 on CPU devices, where a
 * work-item walks a whole row, 16 on GPUs, where the lanes of a row read
 * neighbouring blocks and reduce their sums in local memory at the end).
 * Lane j takes blocks j, j + LPR, ...; it unpacks each block once and dots
 * it with NT tokens: mm_ternary_1 (decode: global dim 1 = T) and
 * mm_ternary_8 (prefill: 8 tokens per item, global dim 1 = ceil(T / 8)) are
 * the same code. Global (ceil(N / (WG / LPR)) * WG, T or ceil(T / 8)),
 * local (WG, 1). */

#if defined(WT_I2S)
#define QK 128
#define BLOCK_BYTES 32
#define NG 8 /* groups of 16 weights per block */
#elif defined(WT_TQ2)
#define QK 256
#define BLOCK_BYTES 66
#define D_OFFSET 64
#define NG 16
#elif defined(WT_TQ1)
#define QK 256
#define BLOCK_BYTES 54
#define D_OFFSET 52
#define NG 15 /* plus 4 groups of 4 (qh) */
#else
#error "define WT_I2S, WT_TQ2 or WT_TQ1"
#endif

/* A group of 16 weights as kept between tokens: char16 for the dot product
 * built-in, else already widened to short16 for packed 16-bit arithmetic. */
#ifdef DOT_BUILTIN
typedef char16 wvec;
#define WVEC(c) (c)
#else
typedef short16 wvec;
#define WVEC(c) convert_short16(c)
#endif

inline int dot4(char4 w, char4 q) {
#ifdef DOT_BUILTIN
    return dot(w, q);
#else
    const int4 p = convert_int4(w) * convert_int4(q);
    return (p.x + p.y) + (p.z + p.w);
#endif
}

/* Codes (0, 1, 2) to weights (-1, 0, 1). */
inline char16 weights16(uchar16 c) {
    return as_char16(c) - (char16)1;
}

#ifdef WT_TQ1
/* Base-3 digit of each byte, p = byte * 3^n (mod 256): (p * 3) >> 8. */
inline uchar16 digits16(uchar16 p) {
    return convert_uchar16((convert_ushort16(p) * (ushort)3) >> (ushort)8);
}
inline uchar4 digits4(uchar4 p) {
    return convert_uchar4((convert_ushort4(p) * (ushort)3) >> (ushort)8);
}
#endif

/* The block at blk as weight groups: wv[i] holds elements off(i) .. +15
 * (and for TQ1 w4[n] elements 240 + 4n .. +3). */
typedef struct block_w {
    wvec wv[NG];
#ifdef WT_TQ1
    char4 w4[4];
#endif
} block_w;

/* Element offset of group i within the block. */
inline int group_offset(int i) {
#if defined(WT_I2S)
    return 32 * (i >> 1) + 16 * (i & 1); /* i = 2 * plane + half */
#elif defined(WT_TQ2)
    return 128 * (i >> 3) + 16 * ((i >> 2) & 1) + 32 * (i & 3); /* i = 8h + 4 half + plane */
#else
    return i < 10 ? 32 * (i >> 1) + 16 * (i & 1) : 160 + 16 * (i - 10); /* 2 digit + half */
#endif
}

inline void unpack_block(global const uchar *blk, block_w *B) {
#if defined(WT_I2S)
    for (int hf = 0; hf < 2; hf++) { /* 16-byte halves of the block */
        const uchar16 c = vload16(hf, blk);
        for (int plane = 0; plane < 4; plane++)
            B->wv[2 * plane + hf] = WVEC(weights16((c >> (uchar)(6 - 2 * plane)) & (uchar)3));
    }
#elif defined(WT_TQ2)
    for (int hh = 0; hh < 4; hh++) { /* bytes 16 hh: h = hh / 2, half = hh % 2 */
        const uchar16 c = vload16(hh, blk);
        for (int plane = 0; plane < 4; plane++)
            B->wv[4 * hh + plane] = WVEC(weights16((c >> (uchar)(2 * plane)) & (uchar)3));
    }
#else
    for (int hf = 0; hf < 3; hf++) {
        uchar16 p = vload16(hf, blk);
        for (int n = 0; n < 5; n++) {
            B->wv[hf < 2 ? 2 * n + hf : 10 + n] = WVEC(weights16(digits16(p)));
            p = p * (uchar)3;
        }
    }
    uchar4 p = vload4(0, blk + 48);
    for (int n = 0; n < 4; n++) {
        B->w4[n] = as_char4(digits4(p)) - (char4)1;
        p = p * (uchar)3;
    }
#endif
}

/* S = sum over the block of w_e q_e, q = the block's activations (int8).
 * Built-in: four dot products per group. Otherwise the groups' products are
 * summed lane-wise in 16 bits (|w q| <= 128, at most 16 groups: |lane| <=
 * 2048, and the final halvings stay below 2^13) and reduced once. */
inline int block_dot(const block_w *B, global const char *q) {
    int S = 0;
#ifdef DOT_BUILTIN
    for (int i = 0; i < NG; i++) {
        const char16 w = B->wv[i], x = vload16(0, q + group_offset(i));
        S += (dot(w.s0123, x.s0123) + dot(w.s4567, x.s4567)) +
             (dot(w.s89ab, x.s89ab) + dot(w.scdef, x.scdef));
    }
#else
    short16 acc = (short16)(0);
    for (int i = 0; i < NG; i++) acc += B->wv[i] * convert_short16(vload16(0, q + group_offset(i)));
    const short8 a = acc.lo + acc.hi;
    const int4 b = convert_int4(a.lo + a.hi);
    S = (b.x + b.y) + (b.z + b.w);
#endif
#ifdef WT_TQ1
    for (int n = 0; n < 4; n++) S += dot4(B->w4[n], vload4(0, q + 240 + 4 * n));
#endif
    return S;
}

inline ulong row_bytes(int K) {
    return (ulong)(K / QK) * BLOCK_BYTES;
}

#ifdef WT_I2S
typedef int acc_t; /* whole-row int32 sum, one scale */
#else
typedef real acc_t; /* sum of d_g * S_g */
#endif

#define MM_TERNARY(NAME, NT)                                                                       \
    kernel void NAME(global const uchar *wb, ulong wo, global const char *xb, ulong xo,            \
                     global char *yb, ulong yo, int K, int N, int T) {                             \
        const int l = get_local_id(0), lane = l % LPR;                                             \
        const int n = get_group_id(0) * (WG / LPR) + l / LPR, t0 = get_group_id(1) * NT;          \
        const int nb = K / QK, nt = min(NT, T - t0);                                               \
        const ulong xrow = act_row_bytes(K);                                                       \
        global const uchar *w = CAT(uchar, wb, wo);                                                \
        global const char *x = CAT(char, xb, xo) + (ulong)t0 * xrow;                               \
        acc_t tot[NT];                                                                             \
        for (int tt = 0; tt < NT; tt++) tot[tt] = 0;                                               \
        if (n < N) {                                                                               \
            global const uchar *row = w + (ulong)n * row_bytes(K);                                 \
            for (int b = lane; b < nb; b += LPR) {                                                 \
                block_w B;                                                                         \
                unpack_block(row + (ulong)b * BLOCK_BYTES, &B);                                    \
                BLOCK_SCALE(row + (ulong)b * BLOCK_BYTES);                                         \
                for (int tt = 0; tt < nt; tt++)                                                    \
                    tot[tt] += SCALED(block_dot(&B, x + (ulong)tt * xrow + 8 + (ulong)b * QK));    \
            }                                                                                      \
        }                                                                                          \
        REDUCE_LANES(acc_t, tot, NT)                                                               \
        if (lane != 0 || n >= N) return;                                                           \
        for (int tt = 0; tt < nt; tt++) {                                                          \
            const real s = *(global const float *)(x + (ulong)tt * xrow);                          \
            AT(float, yb, yo)[(ulong)(t0 + tt) * N + n] = FINISH(tot[tt], s);                      \
        }                                                                                          \
    }

#ifdef WT_I2S
#define BLOCK_SCALE(blk)
#define SCALED(S) (S)
#define FINISH(S, s) (float)(((real) * (global const float *)(w + (ulong)N * row_bytes(K)) * (real)(S)) / (s))
#else
#define BLOCK_SCALE(blk) const real d_ = vload_half(0, (global const half *)((blk) + D_OFFSET))
#define SCALED(S) (d_ * (real)(S))
#define FINISH(S, s) (float)((S) / (s))
#endif

MM_TERNARY(mm_ternary_1, 1)
MM_TERNARY(mm_ternary_8, 8)
