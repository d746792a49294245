// rms_norm.comp - RMS_NORM: y = x / sqrt(mean(x^2) + eps), one workgroup per row.
// The sum of squares is accumulated in REAL per invocation (strided over the row) and
// reduced over the workgroup; y = x * f rounded once, as the CPU does in double. With f32
// (no USE_FP64) the results are ~1e-14 (NMSE) from the CPU's.
#version 450
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
#include "reduce.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint K;
    float eps;
} p;

void main() {
    const uint row = gl_WorkGroupID.x, l = gl_LocalInvocationIndex, base = row * p.K;
    REAL ss = REAL(0.0);
    for (uint i = l; i < p.K; i += WG) {
        const REAL v = REAL(x[base + i]);
        ss += v * v;
    }
    ss = wg_sum_r(ss);
    const REAL f = REAL(1.0) / sqrt(ss / REAL(p.K) + REAL(p.eps));
    for (uint i = l; i < p.K; i += WG) y[base + i] = float(REAL(x[base + i]) * f);
}
