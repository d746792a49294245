// matmul_f.comp - float-weight matrix x matrix for many tokens (prefill): the tiled path
// of MATMUL_F (f32 activations) and of MATMUL_TERNARY over float weights (ACTQ 1).
// Layouts as in matvec_f.comp. A workgroup of 256 invocations computes 64 rows x 32
// tokens, each invocation 4 x 2 (rows tr + 16 i, tokens tt + 16 j); K is walked 32
// elements at a time through shared memory (weights converted to f32 on the way in;
// out-of-range elements are zero, so any K works). f32 products and sums; with ACTQ the
// division by s in REAL, as in matvec_f.comp.
// Dispatch (ceil(rows / 64), ceil(T / 32)).
#version 450
#include "common.glsl"

#define TM 64u
#define TN 32u
#define BK 32u
#define MR 4u
#define MT 2u
layout(local_size_x = 256) in;
layout(constant_id = 2) const uint WTYPE = 1;
layout(constant_id = 3) const uint ACTQ = 0;

layout(std430, binding = 0) readonly buffer W { uint wt[]; };
layout(std430, binding = 2) readonly buffer X { uint xv[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint K, nrows, row0, N, x_words, T;
} p;

shared float wsh[TM * (BK + 1u)];
shared float xsh[TN * (BK + 1u)];

float load_w(uint e) {
    if (WTYPE == 0u) return uintBitsToFloat(wt[e]);
    return WTYPE == 1u ? f16_half(wt[e >> 1], e) : bf16_to_f32(half_bits(wt[e >> 1], e));
}

float load_x(uint xb, uint i) {
    return ACTQ != 0u ? float(sbyte(xv[xb + 2u + (i >> 2)], i & 3u)) : uintBitsToFloat(xv[xb + i]);
}

void main() {
    const uint l = gl_LocalInvocationIndex, tr = l % 16u, tt = l / 16u;
    const uint rbase = gl_WorkGroupID.x * TM, tbase = gl_WorkGroupID.y * TN;
    float acc[MR][MT];
    for (uint i = 0u; i < MR; i++)
        for (uint j = 0u; j < MT; j++) acc[i][j] = 0.0;
    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        for (uint e = l; e < TM * BK; e += 256u) {
            const uint row = rbase + e / BK, k = k0 + e % BK;
            wsh[(e / BK) * (BK + 1u) + e % BK] =
                (row < p.nrows && k < p.K) ? load_w(row * p.K + k) : 0.0;
        }
        for (uint e = l; e < TN * BK; e += 256u) {
            const uint tok = tbase + e / BK, k = k0 + e % BK;
            xsh[(e / BK) * (BK + 1u) + e % BK] =
                (tok < p.T && k < p.K) ? load_x(tok * p.x_words, k) : 0.0;
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk++) {
            float wv[MR], xx[MT];
            for (uint i = 0u; i < MR; i++) wv[i] = wsh[(tr + 16u * i) * (BK + 1u) + kk];
            for (uint j = 0u; j < MT; j++) xx[j] = xsh[(tt + 16u * j) * (BK + 1u) + kk];
            for (uint i = 0u; i < MR; i++)
                for (uint j = 0u; j < MT; j++) acc[i][j] += wv[i] * xx[j];
        }
        barrier();
    }
    for (uint j = 0u; j < MT; j++) {
        const uint tok = tbase + tt + 16u * j;
        if (tok >= p.T) continue;
        const REAL st = REAL(ACTQ != 0u ? uintBitsToFloat(xv[tok * p.x_words]) : 1.0);
        for (uint i = 0u; i < MR; i++) {
            const uint row = rbase + tr + 16u * i;
            if (row >= p.nrows) continue;
            y[tok * p.N + p.row0 + row] = ACTQ != 0u ? float(REAL(acc[i][j]) / st) : acc[i][j];
        }
    }
}
