/* types.h - tensor element types: sizes, and the scalar reference
 * (de)quantizers that every faster kernel is tested against (FORMATS.md).
 *
 * GGML type ids are used as-is. Sizes follow from (type, elements per row,
 * rows); I2_S is a per-tensor format (codes of all rows, then a 32-byte tail
 * whose first 4 bytes are the f32 scale), so its functions take the whole
 * tensor and a row count. Ids >= 100 are internal (never in a file). */
#ifndef BN_TYPES_H
#define BN_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum bn_type {
    BN_TYPE_F32 = 0,
    BN_TYPE_F16 = 1,
    BN_TYPE_Q4_0 = 2,
    BN_TYPE_Q8_0 = 8,
    BN_TYPE_Q4_K = 12,
    BN_TYPE_Q6_K = 14,
    BN_TYPE_BF16 = 30,
    BN_TYPE_TQ1_0 = 34,
    BN_TYPE_TQ2_0 = 35,
    BN_TYPE_I2_S = 36,
    /* internal */
    BN_TYPE_I32 = 100,    /* token ids, positions */
    BN_TYPE_ACT_Q8 = 101, /* per-token int8 activations: see bn_act_row below */
};

/* RoPE pairing styles (FORMATS.md "One layer"; graph/ir.h ROPE): NORMAL rotates
 * (2j, 2j+1), NEOX rotates (j, j + n_rot/2). */
enum { BN_ROPE_NORMAL = 0, BN_ROPE_NEOX = 2 };

#define BN_I2S_BLOCK 128 /* elements per I2_S block (32 bytes) */
#define BN_I2S_TAIL 32   /* bytes after the codes; first 4 = f32 scale */
#define BN_QK_K 256      /* super-block of the K and TQ types */

/* Name as llama.cpp prints it ("I2_S", "TQ2_0", "F16"; internal ids: "I32", "ACT_Q8"), or
 * NULL for an id not in enum bn_type (bn_type_unknown_reason names the others). */
const char *bn_type_name(uint32_t type);
/* Parses a name case-insensitively ("i2_s", "tq2_0", "f16", ...); -1 if unknown. */
int bn_type_from_name(const char *name);
/* True for the ids this engine reads from files (not the internal I32, ACT_Q8). */
bool bn_type_is_known(uint32_t type);
/* True for TQ1_0, TQ2_0, I2_S. */
bool bn_type_is_ternary(uint32_t type);
/* Elements per block (1 for F32/F16/BF16/I32/ACT_Q8; 128 for I2_S: rows must be a
 * multiple); 0 for an id not in enum bn_type. */
int64_t bn_type_block_elems(uint32_t type);

/* Why a type id is refused, for messages: names both meanings of ids 37-39, and the
 * upstream ggml name of other known ids ("type Q5_K (13) is not supported"). Returns
 * a string literal or a thread-local buffer overwritten by the next call in the
 * same thread. */
const char *bn_type_unknown_reason(uint32_t type);

/* Bytes of one row of n elements (n a multiple of the block; I2_S: the codes only).
 * Fails with a message if n is not a multiple or the size overflows. */
bn_status bn_row_bytes(uint32_t type, int64_t n, size_t *out, bn_err *err);
/* Bytes of a whole tensor: ne[0] elements per row, rows = ne[1]*ne[2]*ne[3]
 * (I2_S adds its 32-byte tail). Checked for overflow and block multiples. */
bn_status bn_tensor_bytes(uint32_t type, const int64_t ne[4], size_t *out, bn_err *err);

/* f16 / bf16 conversions (round to nearest even; NaN stays NaN). */
float bn_f16_to_f32(uint16_t h);
uint16_t bn_f32_to_f16(float f);
float bn_bf16_to_f32(uint16_t h);
uint16_t bn_f32_to_bf16(float f);

/* Dequantizes row `row` of a tensor of type `type` with `ne0` elements per row and
 * `nrows` rows, whose data starts at `tensor`, into dst[ne0]. For every known type
 * including I32 (converted) but not ACT_Q8 (other types fill dst with NaN). The
 * shape is trusted: callers have checked it with bn_tensor_bytes. */
void bn_dequantize_row(uint32_t type, const void *tensor, int64_t ne0, int64_t nrows, int64_t row,
                       float *dst);

/* Quantizes a whole tensor (nrows rows of ne0 floats) into dst, which must hold
 * bn_tensor_bytes() bytes. Types: F32, F16, BF16, Q8_0, Q6_K, TQ1_0, TQ2_0, I2_S.
 * Q6_K: per 16-element run r = max|x| / 31, d = f16(max r / 127), int8 scale
 * ceil(r / d) (at most 127), q = round(x / (d * scale)) (quant.c has the details).
 * Ternary quantizers: TQ per 256-block d = max|x|, c = round(x/d)+1 (d = 0 gives c = 1);
 * I2_S one scale = max|x| over the tensor. Q8_0: d = f16(max|x|/127), q = round(x/d).
 * TQ d and Q8_0 d are stored as f16 and the codes are computed against the rounded d.
 * round() is roundf: half away from zero. Ternary, Q8_0 and Q6_K input must be finite
 * and their f16 scales must not overflow (BN_ERR_INVALID_ARG); other types fail with
 * BN_ERR_UNSUPPORTED. */
bn_status bn_quantize(uint32_t type, const float *src, int64_t ne0, int64_t nrows, void *dst,
                      bn_err *err);

/* Checks ternary data: I2_S code 3 or a non-finite or negative scale, TQ2_0 code 3 or a
 * non-finite d, TQ1_0 a non-finite d or a byte no packer produces (its decoded digits
 * do not pack back to it; see quant.c) are reported with the row and block; a shape
 * bn_tensor_bytes refuses fails likewise. Other types: BN_OK. */
bn_status bn_validate_ternary(uint32_t type, const void *tensor, int64_t ne0, int64_t nrows,
                              bn_err *err);

/* True if some 2-bit field of the n bytes at p is 3 (both bits set): the code that
 * I2_S and TQ2_0 never store. Reads a word at a time (memory speed); the one scan
 * for it, used by bn_validate_ternary and the CPU backend's weight preparation. */
bool bn_codes2_have_3(const void *p, size_t n);

/* Ternary codes c in {0,1,2} (weight = c - 1) of one row, and the scale of each
 * 256-element group of that row (TQ: the block d; I2_S: the tensor scale repeated),
 * so kernels can be written once over codes. codes has ne0 entries, scales
 * ne0/256 entries rounded up. I2_S code 3 is read as 1 (weight 0). Other types:
 * nothing is written. */
void bn_ternary_row_codes(uint32_t type, const void *tensor, int64_t ne0, int64_t nrows,
                          int64_t row, uint8_t *codes, float *scales);

/* ---- per-token int8 activations (FORMATS.md "Activations") ----
 * A row of BN_TYPE_ACT_Q8 with k elements is laid out as:
 *   float s;        127 / max(max|x|, 1e-5)
 *   int32_t sum;    sum of q
 *   int8_t q[k];    round_half_even(x * s) clamped to [-128, 127]
 *   padding to a multiple of 8 bytes. */
typedef struct bn_act_row {
    float s;
    int32_t sum;
    int8_t q[];
} bn_act_row;

/* round_up(8 + k, 8); 0 for k < 0. */
size_t bn_act_row_bytes(int64_t k);

#endif
