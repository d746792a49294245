/* matmul_float.cl - float weights: MATMUL_F (y = W x with f32 activations),
 * MATMUL_TERNARY with F32/F16/BF16 weights (-DXQ8: ACT_Q8 activations,
 * y = (sum_i w_i q_i) / s), and GET_ROWS (embedding lookup). One build option
 * picks the weight type: -DWT_F32, -DWT_F16 or -DWT_BF16; rows are K
 * contiguous elements, row n = output n.
 *
 * Sums are f32 (no f64 needed). For ternary values stored as floats (code
 * times an f16 scale d) every product and partial sum is an exact multiple
 * of d, so the sum is exact as in the reference, and y = sum / s (correctly
 * rounded) is bit-identical to it.
 *
 * Work split as in matmul_ternary.cl: LPR lanes per row (1 on CPU devices,
 * 16 on GPUs) stride over chunks of 8 elements, each chunk of weights loaded
 * once and multiplied with NT tokens into 8-lane sums reduced at the end (mm_f_1: decode, global dim 1 = T;
 * mm_f_8: prefill, 8 tokens per item); lane sums are reduced in local memory.
 * Global (ceil(N / (WG / LPR)) * WG, T or ceil(T / 8)), local (WG, 1). */

#if defined(WT_F32)
#define W_BYTES 4
inline float wload(global const uchar *row, int i) {
    return ((global const float *)row)[i];
}
inline float8 wload8(global const uchar *row, int i) {
    return vload8(0, (global const float *)row + i);
}
#elif defined(WT_F16)
#define W_BYTES 2
inline float wload(global const uchar *row, int i) {
    return vload_half(i, (global const half *)row);
}
inline float8 wload8(global const uchar *row, int i) {
    return vload_half8(0, (global const half *)row + i);
}
#elif defined(WT_BF16)
#define W_BYTES 2
inline float wload(global const uchar *row, int i) {
    return bf16_to_f32(((global const ushort *)row)[i]);
}
inline float8 wload8(global const uchar *row, int i) {
    const uint8 u = convert_uint8(vload8(0, (global const ushort *)row + i)) << 16;
    return as_float8(u);
}
#else
#error "define WT_F32, WT_F16 or WT_BF16"
#endif

/* Activation element i of token t (rows: F32 K floats, or ACT_Q8). */
#ifdef XQ8
#define X_ROW_BYTES(K) act_row_bytes(K)
inline float xload(global const char *row, int i) {
    return (float)row[8 + i];
}
inline float8 xload8(global const char *row, int i) {
    return convert_float8(vload8(0, row + 8 + i));
}
#else
#define X_ROW_BYTES(K) ((ulong)(K) * 4)
inline float xload(global const char *row, int i) {
    return ((global const float *)row)[i];
}
inline float8 xload8(global const char *row, int i) {
    return vload8(0, (global const float *)row + i);
}
#endif

/* The result for token row xr: XQ8 divides by the row's scale s. */
inline float finish(float acc, global const char *xr) {
#ifdef XQ8
    return acc / *(global const float *)xr;
#else
    return acc;
#endif
}

inline float hsum8(float8 p) {
    const float4 q = p.lo + p.hi;
    return (q.x + q.y) + (q.z + q.w);
}

#define MM_F(NAME, NT)                                                                             \
    kernel void NAME(global const uchar *wb, ulong wo, global const char *xb, ulong xo,            \
                     global char *yb, ulong yo, int K, int N, int T) {                             \
        const int l = get_local_id(0), lane = l % LPR;                                             \
        const int n = get_group_id(0) * (WG / LPR) + l / LPR, t0 = get_group_id(1) * NT;          \
        const int nt = min(NT, T - t0);                                                            \
        const ulong xrow = X_ROW_BYTES(K);                                                         \
        global const char *x = CAT(char, xb, xo) + (ulong)t0 * xrow;                               \
        float acc[NT];                                                                             \
        for (int tt = 0; tt < NT; tt++) acc[tt] = 0.0f;                                            \
        if (n < N) {                                                                               \
            global const uchar *row = CAT(uchar, wb, wo) + (ulong)n * K * W_BYTES;                 \
            float8 acc8[NT]; /* lane-wise sums, reduced once */                                    \
            for (int tt = 0; tt < NT; tt++) acc8[tt] = (float8)(0.0f);                             \
            for (int i = lane * 8; i + 8 <= K; i += LPR * 8) {                                     \
                const float8 wv = wload8(row, i);                                                  \
                for (int tt = 0; tt < nt; tt++) acc8[tt] += wv * xload8(x + tt * xrow, i);         \
            }                                                                                      \
            for (int tt = 0; tt < nt; tt++) acc[tt] = hsum8(acc8[tt]);                             \
            for (int i = (K & ~7) + lane; i < K; i += LPR) {                                       \
                const float wv = wload(row, i);                                                    \
                for (int tt = 0; tt < nt; tt++) acc[tt] += wv * xload(x + tt * xrow, i);           \
            }                                                                                      \
        }                                                                                          \
        REDUCE_LANES(float, acc, NT)                                                               \
        if (lane != 0 || n >= N) return;                                                           \
        for (int tt = 0; tt < nt; tt++)                                                            \
            AT(float, yb, yo)[(ulong)(t0 + tt) * N + n] = finish(acc[tt], x + tt * xrow);          \
    }

MM_F(mm_f_1, 1)
MM_F(mm_f_8, 8)

/* GET_ROWS: table [K, R], ids I32 [T] -> y F32 [K, T]; item (i, t) writes
 * y[i, t] = table[i, ids[t]], or 0 for an id outside 0 .. R-1. */
kernel void get_rows(global const uchar *tb, ulong to, global const char *ib, ulong io,
                     global char *yb, ulong yo, int K, int R) {
    const int i = get_global_id(0), t = get_global_id(1);
    if (i >= K) return;
    const int id = CAT(int, ib, io)[t];
    const float v = id >= 0 && id < R ? wload(CAT(uchar, tb, to) + (ulong)id * K * W_BYTES, i)
                                      : 0.0f;
    AT(float, yb, yo)[(ulong)t * K + i] = v;
}
