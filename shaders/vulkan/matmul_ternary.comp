// matmul_ternary.comp - MATMUL_TERNARY for many tokens (prefill): the tiled path.
//
// Same weight and activation layouts as matvec_ternary.comp (2-bit codes in 128-element
// blocks of 8 words, LAYOUT 0 = I2_S bit order, 1 = TQ2_0 order; ACT_Q8 rows). A workgroup
// of 256 invocations computes a tile of TM = 64 rows x TN = 32 tokens; each invocation a
// 4 x 2 micro-tile (rows tr + 16 i, tokens tt + 16 j). The K dimension is walked one
// 128-element block at a time: the tile's codes (64 rows x 8 words) and activations
// (32 tokens x 128 int8) are staged in shared memory, then every invocation forms its
// 8 exact int32 sums. With PER_GROUP the int32 sums are folded into f32 with the
// group's scale every 256 elements (two blocks); otherwise (I2_S) the row's sum stays
// int32 until the end; scales are applied in REAL as in matvec_ternary.comp.
// Dispatch (ceil(rows / 64), ceil(T / 32)).
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

#define TM 64u
#define TN 32u
#define MR 4u
#define MT 2u
layout(local_size_x = 256) in;
layout(constant_id = 2) const uint LAYOUT = 0;
layout(constant_id = 3) const uint PER_GROUP = 0;

layout(std430, binding = 0) readonly buffer W { uint codes[]; };
layout(std430, binding = 1) readonly buffer D { float scales[]; };
layout(std430, binding = 2) readonly buffer A { uint act[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint K, nrows, row0, N, act_words, T;
    float tscale;
} p;

shared uint wsh[TM * 8u];
#if USE_INT_DOT
shared uint ash[TN * 32u];
// codes (byte lanes) -> signed bytes w = c - 1, with code 3 (never written by a quantizer)
// read as weight 0 like the CPU: lanes whose bit 0 is clear (codes 0, 2) become 0xFF or,
// with bit 1 set, 0x01; codes 1 and 3 become 0.
int signed_w(uint c4) {
    const uint nb0 = ~c4 & 0x01010101u, b1 = (c4 >> 1) & 0x01010101u;
    return int((nb0 * 0xFFu) & ~(b1 * 0xFEu));
}
#else
shared int ash[TN * 128u];
#endif

uint shift_of(uint k) {
    return LAYOUT == 0u ? 6u - 2u * k : 2u * k;
}

void main() {
    const uint l = gl_LocalInvocationIndex, tr = l % 16u, tt = l / 16u;
    const uint rbase = gl_WorkGroupID.x * TM, tbase = gl_WorkGroupID.y * TN;
    const uint KW = p.K / 16u, NB = p.K / 128u, NG = p.K / 256u;
    int iacc[MR][MT];
    REAL facc[MR][MT];
    for (uint i = 0u; i < MR; i++)
        for (uint j = 0u; j < MT; j++) {
            iacc[i][j] = 0;
            facc[i][j] = REAL(0.0);
        }
    for (uint kb = 0u; kb < NB; kb++) {
        for (uint e = l; e < TM * 8u; e += 256u) {
            const uint row = rbase + e / 8u;
            wsh[e] = row < p.nrows ? codes[row * KW + kb * 8u + e % 8u] : 0u;
        }
        for (uint e = l; e < TN * 32u; e += 256u) {
            const uint tok = tbase + e / 32u;
            const uint v = tok < p.T ? act[tok * p.act_words + 2u + kb * 32u + e % 32u] : 0u;
#if USE_INT_DOT
            ash[e] = v;
#else
            for (uint b = 0u; b < 4u; b++) ash[e * 4u + b] = sbyte(v, b);
#endif
        }
        barrier();
        for (uint w8 = 0u; w8 < 8u; w8++) {
            uint wv[MR];
            for (uint i = 0u; i < MR; i++) wv[i] = wsh[(tr + 16u * i) * 8u + w8];
            for (uint k = 0u; k < 4u; k++) {
                const uint sh = shift_of(k);
#if USE_INT_DOT
                int sw[MR];
                for (uint i = 0u; i < MR; i++) sw[i] = signed_w((wv[i] >> sh) & 0x03030303u);
                for (uint j = 0u; j < MT; j++) {
                    const int a = int(ash[(tt + 16u * j) * 32u + w8 + 8u * k]);
                    for (uint i = 0u; i < MR; i++) iacc[i][j] += dotPacked4x8EXT(sw[i], a);
                }
#else
                for (uint b = 0u; b < 4u; b++) {
                    const uint el = 32u * k + 4u * w8 + b;
                    int c[MR];
                    for (uint i = 0u; i < MR; i++) {
                        const uint ci = (wv[i] >> (sh + 8u * b)) & 3u;
                        c[i] = int(ci == 3u ? 1u : ci) - 1; // code 3: weight 0
                    }
                    for (uint j = 0u; j < MT; j++) {
                        const int a = ash[(tt + 16u * j) * 128u + el];
                        for (uint i = 0u; i < MR; i++) iacc[i][j] += c[i] * a;
                    }
                }
#endif
            }
        }
        barrier();
        if (PER_GROUP != 0u && (kb & 1u) == 1u) {
            for (uint i = 0u; i < MR; i++) {
                const uint row = rbase + tr + 16u * i;
                const REAL d = REAL(row < p.nrows ? scales[row * NG + kb / 2u] : 0.0);
                for (uint j = 0u; j < MT; j++) {
                    facc[i][j] += REAL(iacc[i][j]) * d;
                    iacc[i][j] = 0;
                }
            }
        }
    }
    for (uint j = 0u; j < MT; j++) {
        const uint tok = tbase + tt + 16u * j;
        if (tok >= p.T) continue;
        const REAL st = REAL(uintBitsToFloat(act[tok * p.act_words]));
        for (uint i = 0u; i < MR; i++) {
            const uint row = rbase + tr + 16u * i;
            if (row >= p.nrows) continue;
            const REAL v = PER_GROUP != 0u ? facc[i][j] : REAL(iacc[i][j]) * REAL(p.tscale);
            y[tok * p.N + p.row0 + row] = float(v / st);
        }
    }
}
