// common.glsl - helpers shared by the compute shaders (included, never compiled alone).
//
// Build-time defines (set by cmake/vulkan_shaders.cmake, one SPIR-V module per combination):
//   USE_SUBGROUP  1: reductions use GL_KHR_shader_subgroup_arithmetic, then shared memory
//                 across subgroups; 0: a shared-memory tree (WG must be a power of two).
//   USE_INT_DOT   1: GL_EXT_integer_dot_product (only when glslc supports it); with
//                 INT_DOT_EMULATED 1 the same code with dotPacked4x8EXT written out (tests).
//   USE_FP64      1: what the CPU reference computes in double (RMS sums, the ternary scale
//                 products and divisions, attention, the RoPE rotation) is computed in
//                 double too (type REAL), so results match it bit for bit in practice; the
//                 int8 re-quantization before every projection would otherwise turn f32
//                 rounding differences into whole activation steps. 0: REAL is float.
// Every shader takes its workgroup size as specialization constant 0 (WG).
//
// Numerics: f16 <-> f32 conversions are done in integer arithmetic so that they round
// exactly like the CPU reference (core/types.c: round to nearest, ties to even), whatever
// the driver's conversion instructions do with rounding modes and denormals.

#extension GL_GOOGLE_include_directive : require
#if USE_FP64
#define REAL double
#else
#define REAL float
#endif
#if USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

// ---- f16 / bf16 ----

// Exact IEEE half -> float (subnormals, inf and NaN included), from the 16 bits in h.
float f16_to_f32(uint h) {
    uint sign = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) return uintBitsToFloat(sign | 0x7f800000u | (m << 13));
    if (e == 0u) {
        if (m == 0u) return uintBitsToFloat(sign);
        // subnormal: m * 2^-24, exact in f32
        float v = float(m) * (1.0 / 16777216.0);
        return (sign != 0u) ? -v : v;
    }
    return uintBitsToFloat(sign | ((e + 112u) << 23) | (m << 13));
}

// v >> s (1 <= s <= 31), rounded to nearest, ties to even.
uint shr_rne(uint v, uint s) {
    uint q = v >> s, rem = v & ((1u << s) - 1u), half_ = 1u << (s - 1u);
    if (rem > half_ || (rem == half_ && (q & 1u) != 0u)) q++;
    return q;
}

// float -> IEEE half bits, round to nearest even; NaN stays (quiet) NaN. Same as bn_f32_to_f16.
uint f32_to_f16(float f) {
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    int e8 = int((x >> 23) & 0xffu);
    uint m = x & 0x7fffffu;
    if (e8 == 0xff) return sign | 0x7c00u | (m != 0u ? (0x200u | (m >> 13)) : 0u);
    int e = e8 - 127 + 15;
    if (e >= 31) return sign | 0x7c00u;
    if (e <= 0) {
        if (e8 == 0) return sign;
        uint s = uint(126 - e8);
        if (s > 24u) return sign;
        return sign | shr_rne(m | 0x800000u, s);
    }
    return sign | shr_rne((uint(e) << 23) | m, 13u);
}

// Two halves (low, high) of a word, exact: unpackHalf2x16 is exact for normal numbers, and
// zeros, subnormals, infinities and NaNs (exponent 0 or 31, which a driver may flush or
// canonicalise) take the integer path.
vec2 f16x2_to_f32(uint w) {
    const uint e0 = w & 0x7c00u, e1 = w & 0x7c000000u;
    if (e0 == 0u || e0 == 0x7c00u || e1 == 0u || e1 == 0x7c000000u)
        return vec2(f16_to_f32(w & 0xffffu), f16_to_f32(w >> 16));
    return unpackHalf2x16(w);
}

// Half i (0 low, 1 high) of a word, exact (see f16x2_to_f32).
float f16_half(uint w, uint i) {
    const uint h = (i & 1u) != 0u ? (w >> 16) : (w & 0xffffu);
    const uint e = h & 0x7c00u;
    if (e == 0u || e == 0x7c00u) return f16_to_f32(h);
    return unpackHalf2x16(h).x;
}

float bf16_to_f32(uint h) {
    return uintBitsToFloat(h << 16);
}

// Element i of a packed 16-bit array stored as uints (little-endian halves).
uint half_bits(uint word, uint i) {
    return (i & 1u) != 0u ? (word >> 16) : (word & 0xffffu);
}

// Signed byte b (0..3) of a word, sign-extended.
int sbyte(uint word, uint b) {
    return bitfieldExtract(int(word), int(b * 8u), 8);
}

// 127 / m rounded to nearest even, exactly as the CPU's f32 division (the GPU's divide is
// allowed 2.5 ulp, which would change the int8 rounding). m must be positive and normal;
// the quotient is then normal too for the range QUANTIZE_ACT uses (m >= 1e-5).
// Long division of the 24-bit mantissas: 25 quotient bits, then round on the last bit and
// the remainder (sticky).
float div_127_exact(float m) {
    const uint mb_bits = floatBitsToUint(m);
    uint mb = (mb_bits & 0x7fffffu) | 0x800000u;
    int eb = int((mb_bits >> 23) & 0xffu) - 127;
    uint ma = 127u << 17; // 127 = 0x7f = 1.984375 * 2^6: mantissa in [2^23, 2^24)
    int ea = 6;
    if (ma < mb) {
        ma <<= 1;
        ea -= 1;
    }
    uint q = 0u, r = ma;
    for (int i = 0; i < 25; i++) {
        q <<= 1;
        if (r >= mb) {
            r -= mb;
            q |= 1u;
        }
        r <<= 1;
    }
    uint guard = q & 1u;
    q >>= 1; // 24 bits, top bit set
    if (guard != 0u && (r != 0u || (q & 1u) != 0u)) q++;
    int e = ea - eb;
    if (q == 0x1000000u) {
        q >>= 1;
        e += 1;
    }
    return uintBitsToFloat((uint(e + 127) << 23) | (q & 0x7fffffu));
}

#if USE_FP64
// exp(x) in double (GLSL has no double exp): x = k ln2 + r with |r| <= ln2/2 (ln2 split in
// a 32-bit head, so k * ln2_hi is exact, and a tail), exp(r) by its Taylor series to r^13
// (truncation below 1e-17), times 2^k. Relative error about 1e-16; 0 below -745 (and -inf).
// (Double constants need the lf suffix: a plain 1.0 / 3.0 is evaluated in float.)
double exp_d(double x) {
    if (!(x > -745.0lf)) return 0.0lf;
    const double ln2_hi = 6.93147180369123816490e-01lf, ln2_lo = 1.90821492927058770002e-10lf;
    const double k = floor(x * 1.44269504088896338700lf + 0.5lf);
    const double r = (x - k * ln2_hi) - k * ln2_lo;
    double q = 1.0lf / 6227020800.0lf; // 1/13!
    q = q * r + 1.0lf / 479001600.0lf;
    q = q * r + 1.0lf / 39916800.0lf;
    q = q * r + 1.0lf / 3628800.0lf;
    q = q * r + 1.0lf / 362880.0lf;
    q = q * r + 1.0lf / 40320.0lf;
    q = q * r + 1.0lf / 5040.0lf;
    q = q * r + 1.0lf / 720.0lf;
    q = q * r + 1.0lf / 120.0lf;
    q = q * r + 1.0lf / 24.0lf;
    q = q * r + 1.0lf / 6.0lf;
    q = q * r + 0.5lf;
    q = q * r + 1.0lf;
    q = q * r + 1.0lf;
    return ldexp(q, int(k));
}
#endif
