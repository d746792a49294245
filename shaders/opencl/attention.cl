/* attention.cl - ATTENTION: causal softmax attention of T queries over a KV
 * cache with grouped query heads (graph/ir.h). -DK_F16 / -DV_F16 select f16
 * caches (read with vload_half), f32 otherwise.
 *
 * Layout: q F32 [n_head * hd, T] (head h of token t at t * n_head * hd + h * hd);
 * caches [n_kv * hd, n_ctx], row j = position j, kv head g at g * hd. Output
 * like q. Query head h reads kv head g = h / (n_head / n_kv).
 *
 * One work-group of WG items per (head, token): global (WG * n_head, T), local
 * (WG, 1). Keys are taken WG at a time, one per item (its score q . k_j *
 * scale); the chunk's maximum and the exponentials' sum are reduced in local
 * memory, and an online softmax rescales the running sums (flash-attention
 * style), so memory does not grow with the context. Each item accumulates
 * output dimensions l, l + WG, ... (hd <= HD_MAX). f32, or with -DATT_FP64
 * (CPU devices with fp64, where double costs little) double like the
 * reference, whose results it then matches to the last f32 bit in practice. */

#if defined(USE_FP64) && defined(ATT_FP64)
typedef double att_t;
#define wg_max_att wg_max_d
#define wg_sum_att wg_sum_d
WG_REDUCE(wg_max_d, double, fmax)
#else
typedef float att_t;
#define wg_max_att wg_max_f
#define wg_sum_att wg_sum_f
#endif

#define HD_MAX 256
#define DPI (HD_MAX / WG) /* output dimensions per item at most */

#ifdef K_F16
#define KLOAD(p, i) vload_half(i, (global const half *)(p))
#define KLOAD4(p, i) vload_half4(0, (global const half *)(p) + (i))
#else
#define KLOAD(p, i) ((global const float *)(p))[i]
#define KLOAD4(p, i) vload4(0, (global const float *)(p) + (i))
#endif
#ifdef V_F16
#define VLOAD(p, i) vload_half(i, (global const half *)(p))
#else
#define VLOAD(p, i) ((global const float *)(p))[i]
#endif

kernel void attention(global const char *qb, ulong qo, global const uchar *kb, ulong ko,
                      global const uchar *vb, ulong vo, global char *yb, ulong yo, int n_past,
                      int n_head, int n_kv, int hd, float scale, int n_ctx) {
    local float lq[HD_MAX];
    local att_t lp[WG];
    local att_t red[WG];
    const int l = get_local_id(0), h = get_group_id(0), t = get_global_id(1);
    const int g = h / (n_head / n_kv), kv_row = n_kv * hd;
    global const float *q = CAT(float, qb, qo + ((ulong)t * n_head + h) * hd * 4);
    global const uchar *kc = CAT(uchar, kb, ko), *vc = CAT(uchar, vb, vo);
    for (int i = l; i < hd; i += WG) lq[i] = q[i];
    barrier(CLK_LOCAL_MEM_FENCE);

    int L = n_past + t + 1; /* n_past changes between runs without a check */
    if (L > n_ctx) L = n_ctx;
    att_t m = -INFINITY, sum = 0, acc[DPI];
    for (int k = 0; k < DPI; k++) acc[k] = 0;
    for (int c0 = 0; c0 < L; c0 += WG) {
        const int j = c0 + l;
        att_t s = -INFINITY;
        if (j < L) {
            const ulong base = (ulong)j * kv_row + (ulong)g * hd;
            att_t d = 0;
            if ((hd & 3) == 0)
                for (int i = 0; i < hd; i += 4) {
                    const float4 kv = KLOAD4(kc, base + i);
                    d += ((att_t)lq[i] * kv.x + (att_t)lq[i + 1] * kv.y) +
                         ((att_t)lq[i + 2] * kv.z + (att_t)lq[i + 3] * kv.w);
                }
            else
                for (int i = 0; i < hd; i++) d += (att_t)lq[i] * KLOAD(kc, base + i);
            s = d * (att_t)scale;
        }
        const att_t mn = fmax(m, wg_max_att(red, s));
        const att_t p = j < L ? exp(s - mn) : 0;
        const att_t cs = wg_sum_att(red, p);
        lp[l] = p;
        barrier(CLK_LOCAL_MEM_FENCE);
        const att_t corr = exp(m - mn);
        sum = sum * corr + cs;
        const int cnt = min(WG, L - c0);
        for (int k = 0; k < DPI; k++) {
            const int d = l + k * WG;
            if (d >= hd) break;
            att_t a = acc[k] * corr;
            for (int jj = 0; jj < cnt; jj++)
                a += lp[jj] * (att_t)VLOAD(vc, (ulong)(c0 + jj) * kv_row + (ulong)g * hd + d);
            acc[k] = a;
        }
        m = mn;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    global float *y = AT(float, yb, yo + ((ulong)t * n_head + h) * hd * 4);
    for (int k = 0; k < DPI; k++) {
        const int d = l + k * WG;
        if (d < hd) y[d] = L > 0 ? (float)(acc[k] / sum) : 0.0f;
    }
}
