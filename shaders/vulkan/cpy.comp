// cpy.comp - CPY between F32 and F16 (either way, or the same type). One invocation per
// pair of flat elements (2i, 2i+1), so an f16 destination is written a whole 32-bit word
// at a time (for an odd count the last word's upper half is zero: regions are padded to
// 64 bytes). f32 -> f16 rounds to nearest even, exactly like the CPU (common.glsl).
#version 450
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint SRC = 0; // 0 F32, 1 F16
layout(constant_id = 2) const uint DST = 0; // 0 F32, 1 F16

layout(std430, binding = 0) readonly buffer S { uint src[]; };
layout(std430, binding = 1) writeonly buffer D { uint dst[]; };

layout(push_constant) uniform P {
    uint n;
} p;

float load(uint i) {
    return SRC == 0u ? uintBitsToFloat(src[i]) : f16_half(src[i >> 1], i);
}

void main() {
    const uint pr = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG +
                    gl_LocalInvocationIndex;
    const uint i = 2u * pr;
    if (i >= p.n) return;
    const bool two = i + 1u < p.n;
    if (DST == 1u) {
        uint lo, hi = 0u;
        if (SRC == 1u) {
            // same type: copy the bits (NaN payloads included)
            const uint w = src[pr];
            dst[pr] = two ? w : (w & 0xffffu);
            return;
        }
        lo = f32_to_f16(load(i));
        if (two) hi = f32_to_f16(load(i + 1u));
        dst[pr] = lo | (hi << 16);
    } else {
        if (SRC == 0u) {
            dst[i] = src[i];
            if (two) dst[i + 1u] = src[i + 1u];
        } else {
            dst[i] = floatBitsToUint(load(i));
            if (two) dst[i + 1u] = floatBitsToUint(load(i + 1u));
        }
    }
}
