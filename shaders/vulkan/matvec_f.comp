// matvec_f.comp - float-weight matrix x vector for few tokens (decode): MATMUL_F
// (y = W x, f32 activations) and MATMUL_TERNARY over F32/F16/BF16 weights that hold
// ternary values (ACTQ 1: int8 ACT_Q8 activations, y = (W q) / s).
//
// Weights [K, rows] of WTYPE (0 F32, 1 F16, 2 BF16) as raw 32-bit words; row r starts at
// element r * K. A workgroup of WG invocations computes ROWS rows for one token
// (dispatch (ceil(rows / ROWS), T)); invocation l takes elements l, l + WG, ... (pairs of
// elements, one word, for 16-bit weights when K is even), f32 products and sums,
// reduced over the workgroup. With ACTQ the sum (exact for ternary values times an f16
// scale) is divided by s in REAL, as the CPU does in double.
#version 450
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint ROWS = 4;
layout(constant_id = 2) const uint WTYPE = 1;
layout(constant_id = 3) const uint ACTQ = 0;
#include "reduce.glsl"

layout(std430, binding = 0) readonly buffer W { uint wt[]; };
layout(std430, binding = 2) readonly buffer X { uint xv[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint K, nrows, row0, N, x_words;
} p;

vec2 w16x2(uint w) {
    return WTYPE == 1u ? f16x2_to_f32(w) : vec2(bf16_to_f32(w & 0xffffu), bf16_to_f32(w >> 16));
}

float load_w(uint e) {
    if (WTYPE == 0u) return uintBitsToFloat(wt[e]);
    return WTYPE == 1u ? f16_half(wt[e >> 1], e) : bf16_to_f32(half_bits(wt[e >> 1], e));
}

float load_x(uint xb, uint i) {
    return ACTQ != 0u ? float(sbyte(xv[xb + 2u + (i >> 2)], i & 3u)) : uintBitsToFloat(xv[xb + i]);
}

void main() {
    const uint l = gl_LocalInvocationIndex, t = gl_WorkGroupID.y;
    const uint r0 = gl_WorkGroupID.x * ROWS, xb = t * p.x_words;
    float acc[ROWS];
    for (uint r = 0u; r < ROWS; r++) acc[r] = 0.0;
    if (WTYPE != 0u && (p.K & 1u) == 0u) {
        const uint KP = p.K / 2u;
        for (uint q = l; q < KP; q += WG) {
            const float x0 = load_x(xb, 2u * q), x1 = load_x(xb, 2u * q + 1u);
            for (uint r = 0u; r < ROWS; r++) {
                const uint row = r0 + r;
                if (row >= p.nrows) break;
                const vec2 wv = w16x2(wt[row * KP + q]);
                acc[r] += wv.x * x0 + wv.y * x1;
            }
        }
    } else {
        for (uint i = l; i < p.K; i += WG) {
            const float x0 = load_x(xb, i);
            for (uint r = 0u; r < ROWS; r++) {
                const uint row = r0 + r;
                if (row >= p.nrows) break;
                acc[r] += load_w(row * p.K + i) * x0;
            }
        }
    }
    const REAL st = REAL(ACTQ != 0u ? uintBitsToFloat(xv[xb]) : 1.0);
    for (uint r = 0u; r < ROWS; r++) {
        const float v = wg_sum_f(acc[r]);
        const uint row = r0 + r;
        if (l == 0u && row < p.nrows)
            y[t * p.N + p.row0 + row] = ACTQ != 0u ? float(REAL(v) / st) : v;
    }
}
