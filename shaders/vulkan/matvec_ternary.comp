// matvec_ternary.comp - MATMUL_TERNARY for few tokens (decode): ternary weights x int8
// activations, exact int32 sums, then rescaled.
//
// Weights: 2-bit codes c in {0,1,2} (w = c - 1), rows of K elements one after another,
// in blocks of 128 elements = 32 bytes = 8 words. Word j of a block holds elements
// 4j + b + 32k (byte b = 0..3, k = 0..3) at bit shift 8b + S(k), with S(k) = 6 - 2k in
// the I2_S order (LAYOUT 0, the file layout) and S(k) = 2k in the TQ2_0 order (LAYOUT 1:
// TQ2_0 codes as stored, TQ1_0 repacked at load). So (word >> S(k)) & 0x03030303 gives
// the four codes of elements 4j+32k .. 4j+32k+3 in byte lanes, matching one word of the
// int8 activations. Scales: PER_GROUP 0: one tensor scale (push constant, I2_S);
// PER_GROUP 1: one f32 per 256-element group, row-major [rows][K/256] (binding 1).
//
// Activations: ACT_Q8 rows of act_words words: s (f32), sum (i32), q packed 4 per word.
// y[t, row0 + r] = (sum_g d_g * S_g) / s_t, S_g = sum_{i in g} (c_i - 1) q_i (int32).
//
// Work: a workgroup of WG invocations computes ROWS consecutive rows for one token
// (dispatch (ceil(rows / ROWS), T)). Invocation l takes weight words l, l + WG, ... of
// the row (16 elements each), loads the 4 activation words once and reuses them for every
// row. Without USE_INT_DOT the activation bytes are unpacked once and each code is turned
// into w = c - 1 (code 3, which no quantizer writes, is weight 0 as on the CPU) and
// multiplied; with it, the codes become signed bytes and dotPacked4x8EXT does four products
// at once. The sums are reduced over the workgroup.
// The scales are applied in REAL like the CPU reference: y = (d * S) / s for I2_S,
// (sum_g d_g * S_g) / s for TQ (with USE_FP64 these equal the CPU's double results, the
// products d_g * S being exact), each rounded to f32 once.
#version 450
#if USE_INT_DOT && !INT_DOT_EMULATED
#extension GL_EXT_integer_dot_product : require
#endif
#include "common.glsl"
#if USE_INT_DOT && INT_DOT_EMULATED
// Test build (BITNET_VK_INT_DOT_EMULATE=1): the same code path with the built-in written
// out, so the integer-dot variant runs where glslc or the device lacks the extension.
int dotPacked4x8EXT(int a, int b) {
    int s = 0;
    for (uint i = 0u; i < 4u; i++) s += sbyte(uint(a), i) * sbyte(uint(b), i);
    return s;
}
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint ROWS = 4;
layout(constant_id = 2) const uint LAYOUT = 0;
layout(constant_id = 3) const uint PER_GROUP = 0;
#include "reduce.glsl"

layout(std430, binding = 0) readonly buffer W { uint codes[]; };
layout(std430, binding = 1) readonly buffer D { float scales[]; };
layout(std430, binding = 2) readonly buffer A { uint act[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint K, nrows, row0, N, act_words;
    float tscale;
} p;

uint shift_of(uint k) {
    return LAYOUT == 0u ? 6u - 2u * k : 2u * k;
}

#if USE_INT_DOT
// codes (0..2 per byte) -> signed bytes c - 1, lane by lane without borrows.
// codes (byte lanes) -> signed bytes w = c - 1, with code 3 (never written by a quantizer)
// read as weight 0 like the CPU: lanes whose bit 0 is clear (codes 0, 2) become 0xFF or,
// with bit 1 set, 0x01; codes 1 and 3 become 0.
int signed_w(uint c4) {
    const uint nb0 = ~c4 & 0x01010101u, b1 = (c4 >> 1) & 0x01010101u;
    return int((nb0 * 0xFFu) & ~(b1 * 0xFEu));
}
#endif

void main() {
    const uint l = gl_LocalInvocationIndex, t = gl_WorkGroupID.y;
    const uint r0 = gl_WorkGroupID.x * ROWS;
    const uint KW = p.K / 16u, NG = p.K / 256u;
    const uint ab = t * p.act_words + 2u;
    int iacc[ROWS];
    REAL facc[ROWS];
    for (uint r = 0u; r < ROWS; r++) {
        iacc[r] = 0;
        facc[r] = REAL(0.0);
    }
    for (uint w = l; w < KW; w += WG) {
        const uint blk = w >> 3, j = w & 7u;
        uint a4[4];
        for (uint k = 0u; k < 4u; k++) a4[k] = act[ab + blk * 32u + j + 8u * k];
#if !USE_INT_DOT
        int av[16];
        for (uint k = 0u; k < 4u; k++)
            for (uint b = 0u; b < 4u; b++) av[4u * k + b] = sbyte(a4[k], b);
#endif
        for (uint r = 0u; r < ROWS; r++) {
            const uint row = r0 + r;
            if (row >= p.nrows) break;
            const uint cw = codes[row * KW + w];
            int s = 0;
            for (uint k = 0u; k < 4u; k++) {
                const uint c4 = (cw >> shift_of(k)) & 0x03030303u;
#if USE_INT_DOT
                s += dotPacked4x8EXT(signed_w(c4), int(a4[k]));
#else
                for (uint b = 0u; b < 4u; b++) {
                    const uint c = (c4 >> (8u * b)) & 3u;
                    s += (int(c == 3u ? 1u : c) - 1) * av[4u * k + b]; // code 3: weight 0
                }
#endif
            }
            if (PER_GROUP != 0u)
                facc[r] += REAL(s) * REAL(scales[row * NG + (w >> 4)]);
            else
                iacc[r] += s;
        }
    }
    const REAL st = REAL(uintBitsToFloat(act[t * p.act_words]));
    for (uint r = 0u; r < ROWS; r++) {
        REAL v;
        if (PER_GROUP != 0u) {
            v = wg_sum_r(facc[r]);
        } else {
            v = REAL(wg_sum_i(iacc[r])) * REAL(p.tscale);
        }
        const uint row = r0 + r;
        if (l == 0u && row < p.nrows) y[t * p.N + p.row0 + row] = float(v / st);
    }
}
