/* elementwise.cl - the small ops of the IR (graph/ir.h gives their exact
 * semantics): RMS_NORM, MUL/ADD with broadcasting, RELU_SQR/SILU/SCALE, ROPE,
 * KV_STORE, CPY and QUANTIZE_ACT. Each is written to round like the CPU
 * reference (backends/cpu/cpu_ops.c, cpu_matmul.c); QUANTIZE_ACT is bit-exact.
 *
 * Layouts: F32 tensors [ne0, rows] are row-major, row r at element r * ne0.
 * Row kernels (rms_norm, quantize_act) run one work-group of WG items per
 * row; element kernels one item per element. */

#ifndef USE_FP64
/* (s, e) with s + e = a + b exactly, s = fl(a + b). */
inline float2 two_sum(float a, float b) {
    const float s = a + b, bb = s - a;
    return (float2)(s, (a - (s - bb)) + (b - bb));
}

/* a + b for pairs, renormalized. */
inline float2 ff_add(float2 a, float2 b) {
    const float2 s = two_sum(a.x, b.x);
    return two_sum(s.x, s.y + a.y + b.y);
}

/* The work-group sum of pairs (the tree of common.cl). */
WG_REDUCE(wg_sum_ff, float2, ff_add)

#endif

/* RMS_NORM: y = x / sqrt(mean(x^2) + eps) per row of K floats, rounded like
 * the reference, which sums in double and forms y = (float)(x * f) with f in
 * double. With USE_FP64 so does this kernel. Without it the sum and f are
 * kept as unevaluated pairs of floats (hi + lo, about 44 bits: every x^2 is
 * split exactly with fma, the sums are error-free two-sums, f = 1/sqrt(m) is
 * refined by one Newton step on the pair) and y = fma(x, f_hi, x * f_lo), so
 * y is the correctly rounded x * f except in rare near-ties. */
#ifdef USE_FP64
kernel void rms_norm(global const char *xb, ulong xo, global char *yb, ulong yo, int K,
                     float eps) {
    local double buf[WG];
    const int r = get_group_id(0), l = get_local_id(0);
    global const float *x = CAT(float, xb, xo + (ulong)r * K * 4);
    global float *y = AT(float, yb, yo + (ulong)r * K * 4);
    double ss = 0;
    for (int i = l; i < K; i += WG) ss += (double)x[i] * (double)x[i];
    ss = wg_sum_d(buf, ss);
    const double f = 1.0 / sqrt(ss / (double)K + (double)eps);
    for (int i = l; i < K; i += WG) y[i] = (float)((double)x[i] * f);
}
#else
kernel void rms_norm(global const char *xb, ulong xo, global char *yb, ulong yo, int K,
                     float eps) {
    local float2 buf[WG];
    const int r = get_group_id(0), l = get_local_id(0);
    global const float *x = CAT(float, xb, xo + (ulong)r * K * 4);
    global float *y = AT(float, yb, yo + (ulong)r * K * 4);
    float2 ss = (float2)(0.0f, 0.0f);
    for (int i = l; i < K; i += WG) {
        const float v = x[i], p = v * v;
        ss = ff_add(ss, (float2)(p, fma(v, v, -p)));
    }
    ss = wg_sum_ff(buf, ss);
    /* m = ss / K + eps as a pair */
    const float q = ss.x / (float)K;
    const float qlo = (fma(-q, (float)K, ss.x) + ss.y) / (float)K;
    const float2 m = ff_add((float2)(q, qlo), (float2)(eps, 0.0f));
    /* f = 1 / sqrt(m): f0, then f = f0 + f0 (1 - m f0^2) / 2 with the residual exact-ish */
    const float f0 = 1.0f / sqrt(m.x);
    const float sq = f0 * f0, sq_lo = fma(f0, f0, -sq);
    const float t = m.x * sq, t_lo = fma(m.x, sq, -t) + m.x * sq_lo + m.y * sq;
    const float res = (1.0f - t) - t_lo;
    const float2 f = two_sum(f0, 0.5f * f0 * res);
    for (int i = l; i < K; i += WG) y[i] = fma(x[i], f.x, x[i] * f.y);
}
#endif

/* MUL (op 1) / ADD (op 0): a [K, T] with b [K, T], [K, 1] or [1, 1]:
 * y[i, t] = a[i, t] op b[(one_col ? 0 : i) + (one_row ? 0 : t * K)]. */
kernel void binary(global const char *ab, ulong ao, global const char *bb, ulong bo,
                   global char *yb, ulong yo, int n, int K, int b_one_row, int b_one_col,
                   int op) {
    const int e = get_global_id(0);
    if (e >= n) return;
    const int r = e / K, c = e - r * K;
    const float a = CAT(float, ab, ao)[e];
    const float b = CAT(float, bb, bo)[(b_one_row ? 0 : r * K) + (b_one_col ? 0 : c)];
    AT(float, yb, yo)[e] = op ? a * b : a + b;
}

/* RELU_SQR (op 0) max(x, 0)^2, SILU (op 1) x / (1 + exp(-x)), SCALE (op 2) x * s. */
kernel void unary(global const char *xb, ulong xo, global char *yb, ulong yo, int n, int op,
                  float s) {
    const int e = get_global_id(0);
    if (e >= n) return;
    const float x = CAT(float, xb, xo)[e];
    float y;
    if (op == 0) {
        const float v = x > 0.0f ? x : 0.0f;
        y = v * v;
    } else if (op == 1) {
        y = x / (1.0f + exp(-x));
    } else {
        y = x * s;
    }
    AT(float, yb, yo)[e] = y;
}

/* ROPE: x [ne0 = n_head * hd, T], positions I32 [T]. Item (e, t) writes one
 * element: d = e mod hd; d >= n_rot is copied; otherwise d belongs to pair j
 * (NEOX: (j, j + n_rot/2); NORMAL: (2j, 2j+1)) with
 * theta = pos * base^(-2j / n_rot), (a, b) -> (a cos - b sin, a sin + b cos).
 * inv_freq[j] = base^(-2j / n_rot) comes from the host (computed in double
 * like the reference): doubles with USE_FP64, where theta, cos, sin and the
 * rotation are computed in double as in the reference; otherwise pairs of
 * floats (hi, lo), from which theta = pos * inv_freq[j] is formed as a pair, reduced by
 * 2 pi in two parts, and cos/sin of the pair are corrected to first order in
 * its low part: accurate to a few f32 ulps at any position, where
 * pow/cos/sin of an f32 theta would lose about pos * 1e-7 radians. */
kernel void rope(global const char *xb, ulong xo, global const char *pb, ulong po,
                 global char *yb, ulong yo, int ne0, int hd, int n_rot, int neox,
                 global const char *inv_freq) {
    const int e = get_global_id(0), t = get_global_id(1);
    if (e >= ne0) return;
    global const float *x = CAT(float, xb, xo + (ulong)t * ne0 * 4);
    global float *y = AT(float, yb, yo + (ulong)t * ne0 * 4);
    const int d = e % hd, h0 = e - d, half_rot = n_rot / 2;
    if (d >= n_rot) {
        y[e] = x[e];
        return;
    }
    int j, i0, i1, first;
    if (neox) {
        first = d < half_rot;
        j = first ? d : d - half_rot;
        i0 = j;
        i1 = j + half_rot;
    } else {
        first = (d & 1) == 0;
        j = d >> 1;
        i0 = 2 * j;
        i1 = 2 * j + 1;
    }
    const int p = CAT(int, pb, po)[t];
#ifdef USE_FP64
    const double theta = (double)p * ((global const double *)inv_freq)[j];
    double cs;
    const double sn = sincos(theta, &cs);
    const double a = x[h0 + i0], b = x[h0 + i1];
    y[e] = (float)(first ? a * cs - b * sn : a * sn + b * cs);
#else
    const float2 f = ((global const float2 *)inv_freq)[j];
    const float pf = (float)p; /* exact below 2^24 */
    const float th = pf * f.x, th_lo = fma(pf, f.x, -th) + pf * f.y;
    /* r = theta - k 2 pi, 2 pi = C1 + C2 */
    const float k = rint(th * 0.159154943091895336f);
    const float2 r = two_sum(fma(-k, 6.28318548202514648f, th),
                             fma(-k, -1.74845553146951715e-7f, th_lo));
    const float s0 = sin(r.x), c0 = cos(r.x);
    const float sn = fma(c0, r.y, s0), cs = fma(-s0, r.y, c0);
    const float a = x[h0 + i0], b = x[h0 + i1];
    y[e] = first ? fma(a, cs, -(b * sn)) : fma(a, sn, b * cs);
#endif
}

/* KV_STORE: cache [D, n_ctx] (f16 when f16 != 0, else f32): row n_past + t =
 * x row t, f16 rounded to nearest even. Rows past n_ctx are dropped (n_past
 * changes between runs without a new check). */
kernel void kv_store(global char *cb, ulong co, global const char *xb, ulong xo, int D, int T,
                     int n_past, int n_ctx, int f16) {
    const int i = get_global_id(0), t = get_global_id(1);
    if (i >= D || t >= T || n_past < 0 || n_past + t >= n_ctx) return;
    const float v = CAT(float, xb, xo)[(ulong)t * D + i];
    const ulong idx = (ulong)(n_past + t) * D + i;
    if (f16)
        vstore_half_rte(v, idx, AT(half, cb, co));
    else
        AT(float, cb, co)[idx] = v;
}

/* CPY: F32 or F16 to F32 or F16, elementwise; f32 -> f16 rounds to nearest even. */
kernel void cpy(global const char *xb, ulong xo, global char *yb, ulong yo, int n, int src_f16,
                int dst_f16) {
    const int e = get_global_id(0);
    if (e >= n) return;
    const float v = src_f16 ? vload_half(e, CAT(half, xb, xo)) : CAT(float, xb, xo)[e];
    if (dst_f16)
        vstore_half_rte(v, e, AT(half, yb, yo));
    else
        AT(float, yb, yo)[e] = v;
}

/* a / b correctly rounded for b > 0, whatever the accuracy of the device's
 * division: the candidate nearest the exact quotient has the smallest
 * residual |a - c * b|, which fma computes exactly near the quotient. */
inline float div_rn(float a, float b) {
    float c = a / b;
    for (int it = 0; it < 4; it++) {
        const float r = fabs(fma(-c, b, a));
        const float up = nextafter(c, INFINITY), dn = nextafter(c, -INFINITY);
        if (fabs(fma(-up, b, a)) < r)
            c = up;
        else if (fabs(fma(-dn, b, a)) < r)
            c = dn;
        else
            break;
    }
    return c;
}

/* QUANTIZE_ACT: x F32 [K, T] -> ACT_Q8 rows (common.cl act_row_bytes): per row
 * m = max(max|x|, 1e-5), s = 127 / m (correctly rounded),
 * q = clamp(rint(x * s), -128, 127) (NaN -> 0), sum = sum q; padding zeroed.
 * Bit-identical to the reference: max, * and rint are exact operations. */
kernel void quantize_act(global const char *xb, ulong xo, global char *yb, ulong yo, int K) {
    local float bf[WG];
    local int bi[WG];
    const int r = get_group_id(0), l = get_local_id(0);
    global const float *x = CAT(float, xb, xo + (ulong)r * K * 4);
    global char *row = AT(char, yb, yo + (ulong)r * act_row_bytes(K));
    float m = 0.0f;
    for (int i = l; i < K; i += WG) m = fmax(m, fabs(x[i]));
    m = wg_max_f(bf, m);
    if (m < 1e-5f) m = 1e-5f;
    const float s = div_rn(127.0f, m);
    int sum = 0;
    for (int i = l; i < K; i += WG) {
        const float v = rint(x[i] * s);
        const int q = v >= 127.0f ? 127 : v <= -128.0f ? -128 : v == v ? (int)v : 0;
        row[8 + i] = (char)q;
        sum += q;
    }
    sum = wg_sum_i(bi, sum);
    if (l == 0) {
        *AT(float, row, 0) = s;
        *AT(int, row, 4) = sum;
    }
    for (int i = 8 + K + l; i < (int)act_row_bytes(K); i += WG) row[i] = 0;
}
