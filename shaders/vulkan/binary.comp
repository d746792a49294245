// binary.comp - ADD and MUL with broadcasting: y[i, t] = a[i, t] op b[...], where b is
// [K, T] (BMODE 0), [K, 1] (1: one row for every token) or [1, 1] (2: one scalar).
// One invocation per element over the flat index (2-D dispatch for large tensors).
#version 450

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint OP = 0; // 0 ADD, 1 MUL

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
    uint n, K, bmode;
} p;

void main() {
    const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG +
                   gl_LocalInvocationIndex;
    if (i >= p.n) return;
    const float bv = p.bmode == 0u ? b[i] : p.bmode == 1u ? b[i % p.K] : b[0];
    y[i] = OP == 0u ? a[i] + bv : a[i] * bv;
}
