// quantize_act.comp - QUANTIZE_ACT: per-token absmax int8 (FORMATS.md "Activations"),
// one workgroup per token row, bit-identical to the CPU reference:
//   m = max(max_i |x_i|, 1e-5), s = 127 / m (correctly rounded: div_127_exact),
//   q_i = clamp(round_half_even(x_i * s), -128, 127) (NaN -> 0), sum = sum_i q_i.
// Output row layout (bn_act_row, core/types.h), as 32-bit words: word 0 = s (f32 bits),
// word 1 = sum (int32), words 2.. = q packed four per word (element 4w+j in byte j),
// zero padding up to the row stride (row_words words).
#version 450
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
#include "reduce.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Q { uint q[]; };

layout(push_constant) uniform P {
    uint K, row_words;
} p;

int quant(float v, float s) {
    precise float r = roundEven(v * s);
    if (r >= 127.0) return 127;
    if (r <= -128.0) return -128;
    if (isnan(r)) return 0;
    return int(r);
}

void main() {
    const uint row = gl_WorkGroupID.x, l = gl_LocalInvocationIndex;
    const uint xb = row * p.K, qb = row * p.row_words;
    float m = 0.0;
    for (uint i = l; i < p.K; i += WG) {
        const float v = abs(x[xb + i]);
        if (v > m) m = v; // NaN never wins, as on the CPU
    }
    m = wg_max_f(m);
    m = max(m, 1e-5);
    const float s = isinf(m) ? 0.0 : div_127_exact(m);
    const uint nw = (p.K + 3u) / 4u;
    int sum = 0;
    for (uint w = l; w < nw; w += WG) {
        uint packed = 0u;
        for (uint j = 0u; j < 4u; j++) {
            const uint i = 4u * w + j;
            if (i < p.K) {
                const int v = quant(x[xb + i], s);
                sum += v;
                packed |= (uint(v) & 0xffu) << (8u * j);
            }
        }
        q[qb + 2u + w] = packed;
    }
    for (uint w = 2u + nw + l; w < p.row_words; w += WG) q[qb + w] = 0u;
    sum = wg_sum_i(sum);
    if (l == 0u) {
        q[qb] = floatBitsToUint(s);
        q[qb + 1u] = uint(sum);
    }
}
