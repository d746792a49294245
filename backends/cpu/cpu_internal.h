/* cpu_internal.h - helpers shared by the CPU backend's op files (cpu_ops.c,
 * cpu_matmul.c, cpu_attention.c); not part of the backend's interface.
 *
 * Work splitting: every op divides some index range (output rows, tokens,
 * (token, head) pairs or elements) into nth contiguous chunks; thread ith
 * takes chunk ith. Chunks of element ranges are rounded to a granule (16
 * floats = one 64-byte cache line) so threads do not write the same line. */
#ifndef BN_CPU_INTERNAL_H
#define BN_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../graph/ir.h"

/* Scratch buffers are carved in 64-byte multiples. */
#define BN_CPU_ALIGN 64

static inline size_t bn_cpu_round_up(size_t n) {
    return (n + BN_CPU_ALIGN - 1) / BN_CPU_ALIGN * BN_CPU_ALIGN;
}

/* Chunk [*lo, *hi) of 0..n for thread ith of nth, chunk sizes a multiple of
 * granule (except the last chunk). Empty when there is nothing left. */
static inline void bn_cpu_split(int64_t n, int64_t granule, int ith, int nth, int64_t *lo,
                                int64_t *hi) {
    if (granule < 1) granule = 1;
    int64_t units = (n + granule - 1) / granule;
    int64_t per = (units + nth - 1) / nth;
    int64_t a = (int64_t)ith * per * granule, b = a + per * granule;
    if (a > n) a = n;
    if (b > n) b = n;
    *lo = a;
    *hi = b;
}

/* IEEE half -> float, exact, inlined for the hot loops (same values as
 * bn_f16_to_f32): the 15 magnitude bits shifted into an f32's exponent and
 * mantissa give the value times 2^-112 (subnormals included, as f32
 * subnormals), so one multiplication by 2^112 rescales it; exponent 31
 * (inf, NaN) maps to 255. */
static inline float bn_cpu_f16_to_f32(uint16_t h) {
    uint32_t m = (uint32_t)(h & 0x7fff) << 13, u;
    float f;
    memcpy(&f, &m, 4);
    f *= 0x1p112f;
    memcpy(&u, &f, 4);
    if ((h & 0x7c00) == 0x7c00) u = 0x7f800000u | m;
    u |= (uint32_t)(h & 0x8000) << 16;
    memcpy(&f, &u, 4);
    return f;
}

/* bfloat16 -> float: the upper half of an f32. */
static inline float bn_cpu_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Element i of a row of an F32 or F16 tensor (KV caches). */
static inline float bn_cpu_load_f(uint32_t type, const void *row, int64_t i) {
    if (type == BN_TYPE_F16) return bn_cpu_f16_to_f32(((const uint16_t *)row)[i]);
    return ((const float *)row)[i];
}

/* Row r of a contiguous tensor. */
static inline const void *bn_cpu_row(const bn_tensor *t, int64_t r) {
    return (const char *)t->data + (size_t)r * t->nb[1];
}
static inline void *bn_cpu_row_mut(const bn_tensor *t, int64_t r) {
    return (char *)t->data + (size_t)r * t->nb[1];
}

/* Number of rows of a tensor (all dimensions above ne[0]). */
static inline int64_t bn_cpu_nrows(const bn_tensor *t) {
    return t->ne[1] * t->ne[2] * t->ne[3];
}

/* cpu_matmul.c */
void bn_cpu_quantize_act(const bn_tensor *node, int ith, int nth);
void bn_cpu_matmul_ternary(const bn_tensor *node, int ith, int nth, void *scratch);
void bn_cpu_matmul_f(const bn_tensor *node, int ith, int nth, void *scratch);
size_t bn_cpu_matmul_scratch(const bn_tensor *node);

/* cpu_attention.c */
void bn_cpu_attention(const bn_tensor *node, int ith, int nth, void *scratch);
size_t bn_cpu_attention_scratch(const bn_tensor *node);

#endif
