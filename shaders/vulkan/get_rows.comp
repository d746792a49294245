// get_rows.comp - GET_ROWS: y[:, t] = row ids[t] of a table (F32, F16, BF16 or I32).
//
// One invocation per output element; dispatch (ceil(K / WG), T). A table larger than one
// storage binding is split by rows into chunks, one dispatch each: a dispatch writes only
// the tokens whose id falls in its rows [row0, row0 + rows); ids outside the whole table
// (0 .. R-1) give a row of zeros, written by the first chunk's dispatch.
#version 450
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint TYPE = 0; // 0 F32, 1 F16, 2 BF16, 3 I32

layout(std430, binding = 0) readonly buffer Table { uint tab[]; };
layout(std430, binding = 1) readonly buffer Ids { int ids[]; };
layout(std430, binding = 2) writeonly buffer Out { float y[]; };

layout(push_constant) uniform P {
    uint K, T, row0, rows, R, first_chunk;
} p;

void main() {
    const uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (i >= p.K) return;
    const int id = ids[t];
    if (id < 0 || uint(id) >= p.R) {
        if (p.first_chunk != 0u) y[t * p.K + i] = 0.0;
        return;
    }
    if (uint(id) < p.row0 || uint(id) >= p.row0 + p.rows) return;
    const uint e = (uint(id) - p.row0) * p.K + i; // element index in this chunk
    float v;
    if (TYPE == 0u) {
        v = uintBitsToFloat(tab[e]);
    } else if (TYPE == 3u) {
        v = float(int(tab[e]));
    } else {
        v = TYPE == 1u ? f16_half(tab[e >> 1], e) : bf16_to_f32(half_bits(tab[e >> 1], e));
    }
    y[t * p.K + i] = v;
}
