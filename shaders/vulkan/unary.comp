// unary.comp - RELU_SQR max(x, 0)^2, SILU x / (1 + exp(-x)), SCALE x * s: f32, one
// invocation per element (2-D dispatch for large tensors).
#version 450

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint OP = 0; // 0 RELU_SQR, 1 SILU, 2 SCALE

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint n;
    float s;
} p;

void main() {
    const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG +
                   gl_LocalInvocationIndex;
    if (i >= p.n) return;
    const float v = x[i];
    float r;
    if (OP == 0u) {
        const float m = max(v, 0.0);
        r = m * m;
    } else if (OP == 1u) {
        r = v / (1.0 + exp(-v));
    } else {
        r = v * p.s;
    }
    y[i] = r;
}
