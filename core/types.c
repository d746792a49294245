/* types.c - the element-type table (names, block sizes, byte sizes of rows and
 * tensors, why an id is refused) and the scalar f16/bf16 <-> f32 conversions.
 * The (de)quantizers and the ternary validator live in quant.c. Layouts: FORMATS.md
 * "Element types". */
#include "types.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* ---- the type table ---- */

typedef struct type_info {
    uint32_t id;
    const char *name;
    int64_t block;      /* elements per block */
    size_t block_bytes; /* bytes per block (I2_S: 32 bytes of codes per 128 elements) */
    bool in_file;       /* read from GGUF files (bn_type_is_known) */
} type_info;

static const type_info k_types[] = {
    {BN_TYPE_F32, "F32", 1, 4, true},
    {BN_TYPE_F16, "F16", 1, 2, true},
    {BN_TYPE_Q4_0, "Q4_0", 32, 18, true},
    {BN_TYPE_Q8_0, "Q8_0", 32, 34, true},
    {BN_TYPE_Q4_K, "Q4_K", BN_QK_K, 144, true},
    {BN_TYPE_Q6_K, "Q6_K", BN_QK_K, 210, true},
    {BN_TYPE_BF16, "BF16", 1, 2, true},
    {BN_TYPE_TQ1_0, "TQ1_0", BN_QK_K, 54, true},
    {BN_TYPE_TQ2_0, "TQ2_0", BN_QK_K, 66, true},
    {BN_TYPE_I2_S, "I2_S", BN_I2S_BLOCK, BN_I2S_BLOCK / 4, true},
    {BN_TYPE_I32, "I32", 1, 4, false},
    /* ACT_Q8 rows are sized by bn_act_row_bytes, not by blocks */
    {BN_TYPE_ACT_Q8, "ACT_Q8", 1, 0, false},
};

static const type_info *find_type(uint32_t type) {
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (k_types[i].id == type) return &k_types[i];
    return NULL;
}

/* GGML ids this engine does not read, by their upstream ggml names (for messages
 * only). NULL entries are ids that upstream retired. 36-39 are handled apart. */
static const char *const k_ggml_other[] = {
    [3] = "Q4_1",     [6] = "Q5_0",   [7] = "Q5_1",      [9] = "Q8_1",      [10] = "Q2_K",
    [11] = "Q3_K",    [13] = "Q5_K",  [15] = "Q8_K",     [16] = "IQ2_XXS",  [17] = "IQ2_XS",
    [18] = "IQ3_XXS", [19] = "IQ1_S", [20] = "IQ4_NL",   [21] = "IQ3_S",    [22] = "IQ2_S",
    [23] = "IQ4_XS",  [24] = "I8",    [25] = "I16",      [26] = "I32",      [27] = "I64",
    [28] = "F64",     [29] = "IQ1_M", [31] = "Q4_0_4_4", [32] = "Q4_0_4_8", [33] = "Q4_0_8_8",
    [40] = "NVFP4",
};

const char *bn_type_name(uint32_t type) {
    const type_info *t = find_type(type);
    return t ? t->name : NULL;
}

int bn_type_from_name(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++) {
        const char *a = k_types[i].name, *b = name;
        while (*a && *b && toupper((unsigned char)*a) == toupper((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return (int)k_types[i].id;
    }
    return -1;
}

bool bn_type_is_known(uint32_t type) {
    const type_info *t = find_type(type);
    return t && t->in_file;
}

bool bn_type_is_ternary(uint32_t type) {
    return type == BN_TYPE_TQ1_0 || type == BN_TYPE_TQ2_0 || type == BN_TYPE_I2_S;
}

int64_t bn_type_block_elems(uint32_t type) {
    const type_info *t = find_type(type);
    return t ? t->block : 0;
}

/* Returns a pointer to a string literal, or for ids without a fixed message to
 * a thread-local buffer that the next call from the same thread overwrites. */
const char *bn_type_unknown_reason(uint32_t type) {
    static _Thread_local char buf[128];
    switch (type) {
    case 37:
        return "GGML type id 37 is not supported: I8_S (activations) in BitNet's llama.cpp "
               "fork, retired (IQ4_NL_4_8) in upstream ggml";
    case 38:
        return "GGML type id 38 is not supported: TL1 in BitNet's llama.cpp fork, retired "
               "(IQ4_NL_8_8) in upstream ggml";
    case 39:
        return "GGML type id 39 is not supported: TL2 in BitNet's llama.cpp fork, MXFP4 in "
               "upstream ggml";
    }
    const type_info *t = find_type(type);
    if (t && t->in_file) {
        snprintf(buf, sizeof buf, "type %s (%u) is supported", t->name, (unsigned)type);
    } else if (t) {
        snprintf(buf, sizeof buf, "type id %u (%s) is internal and never valid in a file",
                 (unsigned)type, t->name);
    } else if (type < sizeof k_ggml_other / sizeof k_ggml_other[0] && k_ggml_other[type]) {
        snprintf(buf, sizeof buf, "type %s (%u) is not supported", k_ggml_other[type],
                 (unsigned)type);
    } else if (type == 4 || type == 5) {
        snprintf(buf, sizeof buf, "GGML type id %u (Q4_%d) was retired by ggml, not supported",
                 (unsigned)type, type == 4 ? 2 : 3);
    } else {
        snprintf(buf, sizeof buf, "unknown GGML type id %u", (unsigned)type);
    }
    return buf;
}

/* ---- sizes ---- */

bn_status bn_row_bytes(uint32_t type, int64_t n, size_t *out, bn_err *err) {
    const type_info *t = find_type(type);
    if (!t) return bn_fail(err, BN_ERR_UNSUPPORTED, "%s", bn_type_unknown_reason(type));
    if (n < 1)
        return bn_fail(err, BN_ERR_FORMAT, "row of %lld elements of type %s: must be >= 1",
                       (long long)n, t->name);
    if (n % t->block != 0)
        return bn_fail(err, BN_ERR_FORMAT,
                       "row of %lld elements of type %s: not a multiple of its block of %lld",
                       (long long)n, t->name, (long long)t->block);
    size_t bytes;
    if (type == BN_TYPE_ACT_Q8) {
        /* float s, int32 sum, int8 q[n], padded to 8: round_up(8 + n, 8) */
        if ((uint64_t)n > SIZE_MAX - 15) goto overflow;
        bytes = ((size_t)n + 8 + 7) & ~(size_t)7;
    } else {
        if ((uint64_t)(n / t->block) > SIZE_MAX ||
            __builtin_mul_overflow((size_t)(n / t->block), t->block_bytes, &bytes))
            goto overflow;
    }
    *out = bytes;
    return BN_OK;
overflow:
    return bn_fail(err, BN_ERR_FORMAT, "row of %lld elements of type %s: size overflows",
                   (long long)n, t->name);
}

bn_status bn_tensor_bytes(uint32_t type, const int64_t ne[4], size_t *out, bn_err *err) {
    const type_info *t = find_type(type);
    if (!t) return bn_fail(err, BN_ERR_UNSUPPORTED, "%s", bn_type_unknown_reason(type));
    for (int i = 0; i < 4; i++)
        if (ne[i] < 1)
            return bn_fail(err, BN_ERR_FORMAT, "tensor of type %s: ne[%d] = %lld must be >= 1",
                           t->name, i, (long long)ne[i]);
    /* the element count must fit int64 (callers index with it) */
    int64_t rows, total;
    if (__builtin_mul_overflow(ne[1], ne[2], &rows) || __builtin_mul_overflow(rows, ne[3], &rows) ||
        __builtin_mul_overflow(rows, ne[0], &total))
        return bn_fail(err, BN_ERR_FORMAT,
                       "tensor of type %s [%lld, %lld, %lld, %lld]: element count overflows",
                       t->name, (long long)ne[0], (long long)ne[1], (long long)ne[2],
                       (long long)ne[3]);
    size_t row, bytes;
    bn_status st = bn_row_bytes(type, ne[0], &row, err);
    if (st != BN_OK) return st;
    if ((uint64_t)rows > SIZE_MAX || __builtin_mul_overflow(row, (size_t)rows, &bytes) ||
        (type == BN_TYPE_I2_S && __builtin_add_overflow(bytes, (size_t)BN_I2S_TAIL, &bytes)))
        return bn_fail(err, BN_ERR_FORMAT,
                       "tensor of type %s [%lld, %lld, %lld, %lld]: byte size overflows", t->name,
                       (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3]);
    *out = bytes;
    return BN_OK;
}

/* round_up(8 + k, 8); 0 for k < 0 or when the size does not fit size_t. */
size_t bn_act_row_bytes(int64_t k) {
    if (k < 0 || (uint64_t)k > SIZE_MAX - 15) return 0;
    return ((size_t)k + 8 + 7) & ~(size_t)7;
}

/* ---- f16 / bf16 ----
 * IEEE binary16: sign bit 15, exponent bits 14..10 (bias 15), mantissa 9..0.
 * bf16: the upper 16 bits of an f32 (sign, 8-bit exponent, 7-bit mantissa). */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float bn_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13)); /* inf, NaN */
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign); /* +-0 */
        /* subnormal: mant * 2^-24; normalise so the leading 1 reaches bit 10 */
        uint32_t e = 113; /* f32 biased exponent of 2^-14 */
        while (!(mant & 0x400)) mant <<= 1, e--;
        return bits_f32(sign | (e << 23) | ((mant & 0x3ff) << 13));
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

/* Shifts v right by s (1..31) rounding to nearest, ties to even. */
static uint32_t shr_rne(uint32_t v, unsigned s) {
    uint32_t q = v >> s, rem = v & ((1u << s) - 1), half = 1u << (s - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return q;
}

uint16_t bn_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    uint32_t mant = x & 0x7fffff;
    if (exp == 0xff) /* inf stays inf; NaN keeps its top payload bits and is made quiet */
        return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
    int32_t e = exp - 127 + 15; /* biased f16 exponent */
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        /* f16 subnormal (or zero): the result is round((1.mant) * 2^(exp-127) * 2^24) */
        if (exp == 0) return sign;          /* f32 subnormals are far below 2^-25 */
        unsigned s = (unsigned)(126 - exp); /* >= 14 */
        if (s > 24) return sign;            /* below half the smallest subnormal */
        /* may round up to 0x400, the smallest normal: still the right encoding */
        return (uint16_t)(sign | shr_rne(mant | 0x800000, s));
    }
    /* normal: a carry out of the mantissa bumps the exponent (up to inf), as it should */
    return (uint16_t)(sign | shr_rne(((uint32_t)e << 23) | mant, 13));
}

float bn_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t bn_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}
