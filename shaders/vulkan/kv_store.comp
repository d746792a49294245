// kv_store.comp - KV_STORE: cache rows n_past .. n_past + T - 1 = x rows (converted to
// the cache type, f16 rounded to nearest even like the CPU). n_past is read at run time
// from the graph's parameter buffer (binding 2, slot p.slot), so a recorded command
// buffer serves every step. Rows past the cache end are dropped, a negative n_past
// writes nothing (as on the CPU). One invocation per pair of elements (an f16 cache then
// gets whole words: D is even for f16 caches); dispatch (ceil(D / 2 / WG), T).
#version 450
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint CTYPE = 1; // 0 F32, 1 F16

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer Cache { uint cache[]; };
layout(std430, binding = 2) readonly buffer Params { int params[]; };

layout(push_constant) uniform P {
    uint D, n_ctx, slot;
} p;

void main() {
    const uint q = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    const int n_past = params[p.slot];
    if (2u * q >= p.D || n_past < 0) return;
    const uint row = uint(n_past) + t;
    if (row >= p.n_ctx) return;
    const uint i = 2u * q, src = t * p.D + i;
    if (CTYPE == 1u) {
        cache[(row * p.D) / 2u + q] = f32_to_f16(x[src]) | (f32_to_f16(x[src + 1u]) << 16);
    } else {
        cache[row * p.D + i] = floatBitsToUint(x[src]);
        if (i + 1u < p.D) cache[row * p.D + i + 1u] = floatBitsToUint(x[src + 1u]);
    }
}
