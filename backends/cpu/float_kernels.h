/* float_kernels.h - the CPU backend's fast float kernels: one table of row
 * kernels per instruction set (float_avx2.c: AVX2 + FMA + F16C), chosen at run
 * time from the CPU's features (float_dispatch.c). The op files (cpu_ops.c,
 * cpu_matmul.c, cpu_attention.c) call a table entry when the selected table
 * has it and fall back to their plain-C reference otherwise, so a binary built
 * for x86-64 still runs on a CPU without AVX2, and the reference stays
 * available for tests (bn_cpu_float_select).
 *
 * Numerics (what tests/test_cpu_float_fast.c checks against the reference):
 *  - quantize_row, scale_row and relu_sqr are bit-identical to the reference;
 *  - f16/bf16 -> f32 give exact values (a signaling NaN comes back quiet, so
 *    they serve where values are multiplied, not GET_ROWS, whose bytes are
 *    exact); f32 -> f16 gives bn_f32_to_f16's bits;
 *  - dot products, sums of squares, softmax, attention and SILU reorder sums
 *    (f32 accumulators; sum_sq in double) and use a polynomial exp (within a
 *    few ulp): NMSE <= 1e-10 against the double references;
 *  - the Q6_K mat-vec multiplies the weights' exact integers with the
 *    activations rounded to 16 bits per 256-element block (error <= half a
 *    step of max|x| / 32767): NMSE <= 256 / (12 * 32767^2) = 2e-8 in
 *    expectation for any x, outliers included (a block's error scales with
 *    its largest value, which sum x^2 contains); the tests check 5e-8.
 *    (llama.cpp rounds the activations of the same files to 8 bits.) */
#ifndef BN_CPU_FLOAT_KERNELS_H
#define BN_CPU_FLOAT_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/types.h"

typedef struct bn_cpu_float_ops {
    const char *isa; /* "avx2", "avx512vnni" */

    /* QUANTIZE_ACT of one row of K floats: a->s, a->sum and a->q[0..K), byte for
     * byte what the reference writes (padding is the caller's). */
    void (*quantize_row)(const float *x, int64_t K, bn_act_row *a);
    /* sum_i x_i^2 in double (any order). */
    double (*sum_sq)(const float *x, int64_t n);
    /* y_i = (float)((double)x_i * f): the reference rounding exactly. */
    void (*scale_row)(const float *x, double f, float *y, int64_t n);

    /* Exact conversions of n values. */
    void (*f16_to_f32)(const uint16_t *h, float *y, int64_t n);
    /* f32 -> f16 rounding to nearest even: the bits of bn_f32_to_f16 (NaN quieted,
     * top payload kept; f32 subnormals to zero) under the default MXCSR. */
    void (*f32_to_f16)(const float *x, uint16_t *h, int64_t n);
    void (*bf16_to_f32)(const uint16_t *h, float *y, int64_t n);
    /* sum_i a_i * b_i, f32 accumulators. */
    float (*dot_f32)(const float *a, const float *b, int64_t n);

    /* Mat-vec over nrows rows of a weight of type F32, F16 or BF16 (row r starts
     * at w + r * row_bytes, K elements): y[r] = sum_i w_ri * x_i. */
    void (*matvec)(uint32_t type, const void *w, size_t row_bytes, int64_t K, int64_t nrows,
                   const float *x, float *y);

    /* Q6_K mat-vec: prepare one activation row x (K a multiple of 256) into
     * q6k_prep_bytes(K) bytes at px (64-byte aligned), then y[r] = row r of the
     * weights (at w + r * row_bytes) dotted with it. */
    size_t (*q6k_prep_bytes)(int64_t K);
    void (*q6k_prepare)(const float *x, int64_t K, void *px);
    void (*q6k_matvec)(const void *w, size_t row_bytes, int64_t K, int64_t nrows, const void *px,
                       float *y);

    /* Softmax helper: s_j = exp(s_j - m) for j < n; returns the sum of the new s_j. */
    float (*exp_sub_sum)(float *s, int64_t n, float m);
    /* SILU y = x / (1 + exp(-x)) over n floats. */
    void (*silu)(const float *x, float *y, int64_t n);
    /* RELU_SQR y = max(x, 0)^2 over n floats, bit-identical to the reference (NaN -> 0). */
    void (*relu_sqr)(const float *x, float *y, int64_t n);

    /* Attention, one query head q[hd] over rows j < len of a cache whose row j
     * starts at base + j * row_bytes (F16 or F32 elements; base already points
     * at the kv head): scores s_j = scale * q . k_j; returns max_j s_j. */
    float (*attn_scores)(const float *q, const void *base, size_t row_bytes, uint32_t type,
                         int64_t len, int64_t hd, float scale, float *s);
    /* out[d] += sum_j p_j * v_j[d] for d < hd (same addressing as attn_scores). */
    void (*attn_wsum)(const float *p, const void *base, size_t row_bytes, uint32_t type,
                      int64_t len, int64_t hd, float *out);
} bn_cpu_float_ops;

/* The table in use, or NULL when the plain-C reference is. Selected on first
 * use: the best table the CPU supports (core/os.h bn_cpu_features), unless the
 * environment variable BITNET_CPU_FLOAT is "scalar" (or names a table). */
const bn_cpu_float_ops *bn_cpu_float(void);

/* Forces a choice: "scalar" (the reference), "avx2", "avx512vnni", or "auto" (the default
 * rule above, environment ignored). Returns the table now in use (NULL for
 * scalar); asking for a table this CPU cannot run leaves the reference in use
 * and returns NULL. For tests and benchmarks; not meant to be called while a
 * graph runs. */
const bn_cpu_float_ops *bn_cpu_float_select(const char *name);

/* Name of the float kernels in use: "avx512vnni", "avx2" or "scalar". */
const char *bn_cpu_float_name(void);

/* Op-level fast paths (float_ops.c) over the selected table. Each computes
 * thread ith's share of the node exactly as the reference splits it and
 * returns true, or returns false (nothing written) when no table is selected
 * or the node is a case it does not cover, and the reference must run. */
struct bn_tensor;
bool bn_cpu_quantize_act_fast(const struct bn_tensor *node, int ith, int nth);
bool bn_cpu_rms_norm_fast(const struct bn_tensor *node, int ith, int nth);
bool bn_cpu_silu_fast(const struct bn_tensor *node, int ith, int nth);
bool bn_cpu_relu_sqr_fast(const struct bn_tensor *node, int ith, int nth);
bool bn_cpu_matmul_f_fast(const struct bn_tensor *node, int ith, int nth, void *scratch);
bool bn_cpu_attention_fast(const struct bn_tensor *node, int ith, int nth, void *scratch);
/* Scratch bytes bn_cpu_matmul_f_fast and bn_cpu_attention_fast need per thread
 * (whatever table is selected). */
size_t bn_cpu_matmul_f_fast_scratch(const struct bn_tensor *node);
size_t bn_cpu_attention_fast_scratch(const struct bn_tensor *node);

#if defined(__x86_64__) || defined(__i386__)
extern const bn_cpu_float_ops bn_cpu_float_avx2; /* float_avx2.c */
/* float_avx512.c: q6k_matvec for AVX-512 VL/BW/VNNI CPUs ("avx512vnni" = the AVX2
 * table with this entry) */
void bn_cpu_q6k_matvec_avx512vnni(const void *w, size_t row_bytes, int64_t K, int64_t nrows,
                                  const void *px, float *y);
#endif

#endif
