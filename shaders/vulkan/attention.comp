// attention.comp - ATTENTION: causal softmax attention of T new queries over the KV cache,
// grouped-query heads. One workgroup per (head h, token t); dispatch (n_head, T).
// Query t sits at position n_past + t (n_past from the parameter buffer, binding 4) and
// attends to cache rows j = 0 .. L-1, L = min(n_past + t + 1, n_ctx), of kv head
// g = h / (n_head / n_kv):
//   s_j = scale * q . k_j,  p_j = exp(s_j - max s) / sum exp(s - max s),  out = sum p_j v_j.
// The cache is walked in tiles of WG positions with an online softmax: invocation l scores
// position j0 + l (the query is staged in shared memory), the tile's max updates the
// running max m (earlier sums are rescaled by exp(m_old - m)), the tile's weights go to
// shared memory and each invocation accumulates the output dimensions d = l, l + WG, ...
// over the tile. Scores, weights and sums in REAL (double with USE_FP64, as the CPU
// reference; exp through exp_d), else f32; K and V caches are F32 or F16 (KT, VT), rows of
// kv_row elements, head g at elements g * hd ...
#version 450
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint KT = 1; // 0 F32, 1 F16
layout(constant_id = 2) const uint VT = 1;
#include "reduce.glsl"

#define HD_MAX 256u
const uint NACC = (HD_MAX + WG - 1u) / WG;

layout(std430, binding = 0) readonly buffer Q { float qv[]; };
layout(std430, binding = 1) readonly buffer Kc { uint kc[]; };
layout(std430, binding = 2) readonly buffer Vc { uint vc[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
layout(std430, binding = 4) readonly buffer Params { int params[]; };

layout(push_constant) uniform P {
    uint n_head, n_kv, hd, n_ctx, slot, kv_row;
    float scale;
} p;

shared float qs[HD_MAX];
shared REAL ps[WG];

#if USE_FP64
#define EXP exp_d
#else
#define EXP exp
#endif

float load_k(uint e) {
    return KT == 0u ? uintBitsToFloat(kc[e]) : f16_half(kc[e >> 1], e);
}
float load_v(uint e) {
    return VT == 0u ? uintBitsToFloat(vc[e]) : f16_half(vc[e >> 1], e);
}

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, l = gl_LocalInvocationIndex;
    const uint hd = p.hd, g = h / (p.n_head / p.n_kv);
    const uint qrow = t * p.n_head * hd + h * hd;
    const int n_past = params[p.slot];
    const int len_i = min(n_past + int(t) + 1, int(p.n_ctx));
    for (uint i = l; i < hd; i += WG) qs[i] = qv[qrow + i];
    barrier();
    if (len_i <= 0) {
        for (uint d = l; d < hd; d += WG) o[qrow + d] = 0.0;
        return;
    }
    const uint len = uint(len_i);
    REAL acc[NACC];
    for (uint a = 0u; a < NACC; a++) acc[a] = REAL(0.0);
    REAL m = REAL(uintBitsToFloat(0xff800000u)), lsum = REAL(0.0); // -inf
    const bool pairs = KT == 1u && (hd & 1u) == 0u && (p.kv_row & 1u) == 0u;
    for (uint j0 = 0u; j0 < len; j0 += WG) {
        const uint j = j0 + l;
        REAL s = REAL(uintBitsToFloat(0xff800000u));
        if (j < len) {
            const uint kb = j * p.kv_row + g * hd;
            REAL d = REAL(0.0);
            if (pairs) {
                for (uint i = 0u; i < hd; i += 2u) {
                    const vec2 kv = f16x2_to_f32(kc[(kb + i) >> 1]);
                    d += REAL(qs[i]) * REAL(kv.x);
                    d += REAL(qs[i + 1u]) * REAL(kv.y);
                }
            } else {
                for (uint i = 0u; i < hd; i++) d += REAL(qs[i]) * REAL(load_k(kb + i));
            }
            s = REAL(p.scale) * d;
        }
        const REAL m_new = max(m, wg_max_r(s)); // finite: position j0 < len is valid
        const REAL corr = EXP(m - m_new);
        const REAL pj = j < len ? EXP(s - m_new) : REAL(0.0);
        ps[l] = pj;
        lsum = lsum * corr + wg_sum_r(pj); // the reduction's barrier publishes ps[]
        const uint n = min(WG, len - j0);
        for (uint a = 0u; a < NACC; a++) {
            const uint d = l + a * WG;
            if (d < hd) {
                REAL v = acc[a] * corr;
                for (uint jj = 0u; jj < n; jj++)
                    v += ps[jj] * REAL(load_v((j0 + jj) * p.kv_row + g * hd + d));
                acc[a] = v;
            }
        }
        barrier();
        m = m_new;
    }
    for (uint a = 0u; a < NACC; a++) {
        const uint d = l + a * WG;
        if (d < hd) o[qrow + d] = float(acc[a] / lsum);
    }
}
