// rope.comp - ROPE: rotates pairs of each head's elements by angle pos * base^(-2j/n_rot).
//
// The cos/sin of every (token, pair j) come in a table (binding 2: [T][TS] pairs of REAL
// cos, sin) that the backend computes on the host in double from the positions input,
// because GPU sin/cos are only required to be accurate to 2^-11 and positions reach
// thousands of radians. Pairs are (2j, 2j+1) (MODE 0, normal) or (j, j + n_rot/2)
// (MODE 2, NEOX); elements n_rot .. hd-1 of a head are copied. One invocation per pair of
// a head's elements (hd/2 per head: the n_rot/2 rotated ones, then the copied ones two
// at a time); dispatch (ceil(row / 2 / WG), T).
#version 450
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
#if USE_FP64
layout(std430, binding = 2) readonly buffer C { dvec2 cs[]; };
#else
layout(std430, binding = 2) readonly buffer C { vec2 cs[]; };
#endif

layout(push_constant) uniform P {
    uint E, hd, n_rot, mode, TS;
} p;

void main() {
    const uint pr = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    const uint hp = p.hd / 2u;
    if (pr >= p.E / 2u) return;
    const uint h = pr / hp, jj = pr % hp, half_ = p.n_rot / 2u;
    const uint base = t * p.E + h * p.hd;
    if (jj < half_) {
        const uint i0 = p.mode == 2u ? jj : 2u * jj;
        const uint i1 = p.mode == 2u ? jj + half_ : 2u * jj + 1u;
        const REAL c = cs[t * p.TS + jj].x, s = cs[t * p.TS + jj].y;
        const REAL a = REAL(x[base + i0]), b = REAL(x[base + i1]);
        precise REAL y0 = a * c - b * s, y1 = a * s + b * c; // no fma: as the CPU rounds
        y[base + i0] = float(y0);
        y[base + i1] = float(y1);
    } else {
        const uint i = p.n_rot + 2u * (jj - half_);
        y[base + i] = x[base + i];
        y[base + i + 1u] = x[base + i + 1u];
    }
}
