/* ternary.h - the CPU backend's fast MATMUL_TERNARY kernels: ternary weights
 * (I2_S, TQ2_0, TQ1_0) times per-token int8 activations, with exactly the
 * int32 sums of the plain-C reference in cpu_matmul.c.
 *
 * Pieces:
 *  - kernel tables (bn_tern_kernels), one per instruction set: scalar C
 *    (ternary_scalar.c), AVX2 (ternary_avx2.c), AVX-512 VNNI
 *    (ternary_avx512.c), NEON with and without the dot product
 *    (ternary_neon.c); chosen at run time from bn_cpu_features()
 *    (ternary_dispatch.c);
 *  - the driver (ternary_matmul.c), which tiles one MATMUL_TERNARY node over
 *    a table: a mat-vec per token for a few tokens, several tokens at once
 *    on the packed rows (where the table can) for up to 32, a blocked GEMM
 *    (rows unpacked once into byte codes, then reused by every token) for
 *    more; then the same float rescaling as the reference;
 *  - per-weight preparation at graph_prepare (ternary_prepare.c): checks that
 *    let the kernels take their fast paths, and repacked layouts: the
 *    lookup-table layout (ternary_lut.c, for TQ1_0) and columns for ReLU^2
 *    ffn_down (ternary_sparse.c: zero activations skip their weight columns;
 *    opt-in).
 *
 * Code sums. For weight row r and a token's activations q (int8), the
 * kernels compute C = sum_i c_ri * q_i with c the stored code (0..2; TQ2_0's
 * never-valid code 3 counts 3, weight 2, as in the reference; I2_S code 3
 * counts 1, weight 0, FORMATS.md). The driver subtracts Q = sum_i q_i:
 * S = C - Q = sum_i (c_ri - 1) q_i, the reference's integer, in wrapping
 * uint32 arithmetic (S itself always fits). "Row mode" sums a whole row;
 * "group mode" (TQ types whose blocks do not all share one scale) gives one
 * sum per 256-element block, combined with the block scales in the
 * reference's order. */
#ifndef BN_CPU_TERNARY_H
#define BN_CPU_TERNARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../graph/ir.h"

/* Weight types as table indices. */
enum { BN_TK_I2S, BN_TK_TQ2, BN_TK_TQ1, BN_TK_NTYPES };

/* Largest tile of the GEMM micro-kernel: rows x tokens (a table may split
 * it: AVX2 has 16 vector registers, enough for 2 x 4). */
#define BN_TERN_MR 4
#define BN_TERN_NT 4

/* A ternary weight [K, N] in its file layout. */
typedef struct bn_tern_w {
    int ti;              /* BN_TK_* */
    const uint8_t *data; /* row r at data + r * row_bytes */
    int64_t K, N;
    size_t row_bytes; /* K/4 (I2_S), K/256*66 (TQ2_0), K/256*54 (TQ1_0) */
    bool clean;       /* I2_S: no code 3 anywhere (checked at prepare) */
} bn_tern_w;

/* The column layout of ternary_sparse.c: column k (input k) holds the codes
 * of all N rows (N padded to a multiple of 128) in 128-row blocks of 32
 * bytes; byte b of block B holds rows 128B + b + 32j at bit shift 6 - 2j
 * (I2_S's order, along a column). Codes 0..3 as in the file (I2_S 3 -> 1). */
typedef struct bn_tern_cols {
    const uint8_t *data; /* column k at data + k * col_bytes */
    int64_t K, N, Npad;
    size_t col_bytes; /* Npad / 4 */
} bn_tern_cols;

/* The lookup-table layout of ternary_lut.c (TL2 style): weights in groups of
 * three inputs (K padded to a multiple of 3 with zero weights), rows in tiles
 * of 32. A group of a row is a 4-bit index i (0..13) of the triple
 * (w0, w1, w2) = digits of i in base 3 minus 1 when sign is 0, or its negation
 * when sign is 1 (i = 13, the zero triple, never has a sign). Tile t, group
 * pair p (groups 2p, 2p+1) holds 32 bytes of indices (row j's byte: group
 * 2p in the low nibble, 2p+1 in the high one), then every 8 groups a sign
 * plane of 32 bytes (row j's byte: bit s = the sign of group 8u + s). */
typedef struct bn_tern_lut {
    const uint8_t *data;
    int64_t K, N, G, Gpad; /* G = ceil(K/3) groups, Gpad = a multiple of 8 */
    int64_t Npad;          /* N rounded up to 32 */
    size_t tile_bytes;     /* bytes of one 32-row tile */
} bn_tern_lut;

typedef struct bn_tern_kernels {
    const char *name; /* "scalar", "avx2", "avx512vnni", "neon", "neon-dotprod" */
    /* TQ1_0 weights are faster in the lookup-table layout than with this
     * table's own TQ1_0 mat-vec (bench/RESULTS.md): the default layout choice. */
    bool lut_for_tq1;

    /* C of rows [r0, r1) for one token q[0..K): row mode out[r - r0]; group
     * mode (TQ types) out[(r - r0) * (K/256) + g]. The rows may be read in
     * any order (the VNNI mat-vecs pair rows half the range apart); the
     * driver passes a thread's whole share in one call in row mode. */
    void (*gemv[BN_TK_NTYPES])(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q,
                               int32_t *out, bool group);
    /* Row mode, a few tokens at once on the packed rows (optional; NULL: the
     * driver runs a mat-vec per token, then the GEMM): C of rows [r0, r1) for
     * nt (1..BN_TERN_NT) tokens q[0..nt) of K elements each, 64-byte aligned:
     * out[t * ldo + (r - r0)]. Each row is read once for all nt tokens and
     * never unpacked. */
    void (*gemv_multi[BN_TK_NTYPES])(const bn_tern_w *w, int64_t r0, int64_t r1,
                                     const int8_t *const *q, int nt, int32_t *out, size_t ldo);
    /* Codes (bytes) of rows [r0, r1), elements [k0, k0 + kn) (multiples of
     * 128 for I2_S, 256 otherwise): row r at codes + (r - r0) * ldc; I2_S code
     * 3 is written as 1. */
    void (*unpack[BN_TK_NTYPES])(const bn_tern_w *w, int64_t r0, int64_t r1, int64_t k0, int64_t kn,
                                 uint8_t *codes, size_t ldc);
    /* C of nr (1..MR) rows of byte codes (row r at codes + r * ldc, codes <= 3)
     * against nt (1..NT) tokens (q[t] points at the first of their kn elements;
     * kn a multiple of 32, of 256 in group mode). Row mode: out[t * ldo + r] +=
     * the sum; group mode: out[(t * nr + r) * (kn / 256) + g] = block sums. */
    void (*gemm)(const uint8_t *codes, size_t ldc, int nr, const int8_t *const *q, int nt,
                 int64_t kn, int32_t *out, size_t ldo, bool group);

    /* Column layout (optional; the scalar table's are used when NULL). */
    /* C of rows [r0, r1) (multiples of 128, r1 <= Npad) for one token q[0..K),
     * reading only the columns of the inputs with q != 0 (the others add
     * nothing): out[r - r0]. scratch: bn_tern_cols_scratch(K, r1 - r0) bytes,
     * 64-byte aligned. */
    void (*cols_gemv)(const bn_tern_cols *w, int64_t r0, int64_t r1, const int8_t *q, int32_t *out,
                      void *scratch);
    /* Byte codes of rows [r0, r0 + 16) (r0 a multiple of 16), elements [k0,
     * k0 + kn) (multiples of 16), as unpack above. */
    void (*cols_unpack)(const bn_tern_cols *w, int64_t r0, int64_t k0, int64_t kn, uint8_t *codes,
                        size_t ldc);

    /* Lookup-table layout (optional, as above). */
    /* The tables of one token q[0..K): for each group g, 16 bytes of the low
     * table then 16 of the high one; entry i of group g is sum_j w_j lo_j (low)
     * or sum_j w_j hi_j (high), (w0, w1, w2) the triple of index i (0 for i =
     * 14, 15), lo_j = q_{3g+j} & 15, hi_j = q_{3g+j} >> 4 (arithmetic; q = 0
     * past K). tab: bn_tern_lut_table_bytes(Gpad) bytes (the tables, then the
     * kernel's own scratch). */
    void (*lut_tables)(const int8_t *q, int64_t K, int64_t Gpad, int8_t *tab);
    /* S = sum_i w_ri q_i (the weights themselves, no code offset) of the 32
     * rows of each tile [t0, t1): out[32 * (t - t0) + j]; rows past N are 0. */
    void (*lut_gemv)(const bn_tern_lut *w, int64_t t0, int64_t t1, const int8_t *tab, int32_t *out);
    /* Byte codes (weight + 1) of the 32 rows of tile t, elements [k0, k0 + kn)
     * (k0 + kn <= K), as unpack above. */
    void (*lut_unpack)(const bn_tern_lut *w, int64_t t, int64_t k0, int64_t kn, uint8_t *codes,
                       size_t ldc);
} bn_tern_kernels;

/* ---- tables (ternary_*.c); an ISA's table exists only in builds for it ---- */
extern const bn_tern_kernels bn_tern_scalar;
#if defined(__x86_64__) || defined(__i386__)
extern const bn_tern_kernels bn_tern_avx2;
extern const bn_tern_kernels bn_tern_avx512;
#endif
#if defined(__aarch64__)
extern const bn_tern_kernels bn_tern_neon;
extern const bn_tern_kernels bn_tern_neon_dot;
#endif

/* Kernels of the optional entries, shared by the tables. */
void bn_tern_lut_tables_c(const int8_t *q, int64_t K, int64_t Gpad, int8_t *tab);
void bn_tern_lut_gemv_c(const bn_tern_lut *w, int64_t t0, int64_t t1, const int8_t *tab,
                        int32_t *out);
void bn_tern_lut_unpack_c(const bn_tern_lut *w, int64_t t, int64_t k0, int64_t kn, uint8_t *codes,
                          size_t ldc);
#if defined(__x86_64__) || defined(__i386__)
void bn_tern_avx2_gemv_i2s(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q,
                           int32_t *out, bool group);
void bn_tern_avx2_gemv_tq2(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q,
                           int32_t *out, bool group);
void bn_tern_avx2_gemv_tq1(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q,
                           int32_t *out, bool group);
void bn_tern_avx2_cols_gemv(const bn_tern_cols *w, int64_t r0, int64_t r1, const int8_t *q,
                            int32_t *out, void *scratch);
void bn_tern_avx2_cols_unpack(const bn_tern_cols *w, int64_t r0, int64_t k0, int64_t kn,
                              uint8_t *codes, size_t ldc);
void bn_tern_avx2_lut_tables(const int8_t *q, int64_t K, int64_t Gpad, int8_t *tab);
void bn_tern_avx2_lut_gemv(const bn_tern_lut *w, int64_t t0, int64_t t1, const int8_t *tab,
                           int32_t *out);
#endif

/* ---- selection (ternary_dispatch.c) ----
 * The table in use: the best one this CPU runs, or the one named by the
 * environment variable BITNET_CPU_TERNARY ("reference", "scalar", "avx2",
 * "avx512vnni", "neon", "neon-dotprod", "auto"). NULL means the plain-C
 * reference of cpu_matmul.c. */
const bn_tern_kernels *bn_cpu_ternary(void);
/* Switches the table (tests and benchmarks; not while a graph runs). Returns
 * the table now in use; a name this CPU cannot run selects "reference" and
 * *ok (if given) is false. */
const bn_tern_kernels *bn_cpu_ternary_select(const char *name, bool *ok);
/* Name of the table in use ("reference" for NULL). */
const char *bn_cpu_ternary_name(void);
/* The table for a name if this CPU runs it (NULL otherwise, and for "reference"). */
const bn_tern_kernels *bn_cpu_ternary_table(const char *name);

/* ---- preparation (ternary_prepare.c) ---- */
enum { BN_TERN_ROWS, BN_TERN_COLS, BN_TERN_LUT };

typedef struct bn_tern_prep {
    bool clean;   /* I2_S: no code 3 */
    bool uniform; /* TQ: every block has the same finite scale */
    float scale;  /* that scale (I2_S: the tensor scale) */
    int layout;   /* BN_TERN_* */
    bn_tern_cols cols;
    bn_tern_lut lut;
} bn_tern_prep;

/* Prepares the weight of a MATMUL_TERNARY node for owner (a backend); other
 * nodes are ignored. Only model weights in a file mapping are prepared (their
 * address is stable while the model lives); weights shared by several graphs
 * and owners are prepared once. Repacked weights release the pages of their
 * original from this process's resident set. */
bn_status bn_tern_prepare(const bn_tensor *node, const void *owner, bn_err *err);
/* Drops owner from every preparation and frees those no one owns any more. */
void bn_tern_release(const void *owner);
/* The preparation of a weight tensor, or NULL. Valid while its owner lives. */
const bn_tern_prep *bn_tern_lookup(const bn_tensor *w);
/* Layout choices for later preparations (tests and benchmarks): sparse = 1
 * puts ReLU^2 ffn_down weights in BN_TERN_COLS (default off: slower than the
 * row kernels below ~70 % zeros on the machine measured, bench/RESULTS.md);
 * lut = 1 puts TQ1_0 weights in BN_TERN_LUT when the table in use prefers it
 * (lut_for_tq1: AVX2; the default), 2 every type, 0 none; -1 for either:
 * back to the environment's choice (BITNET_CPU_SPARSE=1, BITNET_CPU_LUT=0 or
 * all). */
void bn_tern_set_layouts(int sparse, int lut);
/* Repacking a weight (shared by the prepare code and the tests). */
bn_status bn_tern_make_cols(const bn_tern_w *w, bn_tern_cols *out, bn_err *err);
bn_status bn_tern_make_lut(const bn_tern_w *w, bn_tern_lut *out, bn_err *err);
void bn_tern_free_packed(void *p);
size_t bn_tern_lut_table_bytes(int64_t Gpad);
size_t bn_tern_cols_scratch(int64_t K, int64_t rows);

/* ---- the driver (ternary_matmul.c) ---- */
/* Scratch bytes per thread for node with any table (0 if not ternary). */
size_t bn_tern_scratch(const bn_tensor *node);
/* Computes thread ith's share of a MATMUL_TERNARY node with ternary weights
 * with the table in use; false (nothing done) when that is the reference. */
bool bn_tern_matmul(const bn_tensor *node, int ith, int nth, void *scratch);

/* Helpers shared by the kernel files. */

/* The mat-vecs' row order: rows [r0, r1) go in pairs half the range apart,
 * row r0 + i with row r0 + h + i (h = half the count, rounded up), by
 * PAIR(row_a, row_b, out_index_a, out_index_b); an odd count ends with
 * ONE(row, out_index) for the middle row. Two sequential streams megabytes
 * apart keep the hardware prefetchers and can share the activation loads;
 * rows interleaved within a few kilobytes lose the prefetchers (a third of
 * the speed for adjacent rows in lockstep, bench/RESULTS.md). */
#define BN_TERN_PAIRED_ROWS(r0, r1, PAIR, ONE)                                                     \
    do {                                                                                           \
        const int64_t n_ = (r1) - (r0), h_ = (n_ + 1) / 2;                                         \
        for (int64_t i_ = 0; i_ < n_ - h_; i_++) PAIR((r0) + i_, (r0) + h_ + i_, i_, h_ + i_);     \
        if (n_ & 1) ONE((r0) + h_ - 1, h_ - 1);                                                    \
    } while (0)

/* A row-mode mat-vec of rows [r0, r1) of w (nb blocks per row) in that
 * order, with a table's own kernels for two rows (pair) and one (one); fix:
 * the weight may hold I2_S code 3 (TQ kernels ignore it). A table calls it
 * with fix and its kernels as constants (for I2_S twice, fix false and
 * true), so that once all is inlined each call is a loop specialized for its
 * case:
 *     if (w->clean) bn_tern_gemv_paired(w, r0, r1, q, out, nb, false, pair, one);
 *     else          bn_tern_gemv_paired(w, r0, r1, q, out, nb, true, pair, one); */
typedef void (*bn_tern_pair_fn)(const uint8_t *p, const uint8_t *p1, const int8_t *q, int64_t nb,
                                bool fix, int32_t *o, int32_t *o1);
typedef int32_t (*bn_tern_one_fn)(const uint8_t *p, const int8_t *q, int64_t nb, bool fix);

static inline __attribute__((always_inline)) void
bn_tern_gemv_paired(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *q, int32_t *out,
                    int64_t nb, bool fix, bn_tern_pair_fn pair, bn_tern_one_fn one) {
#define BN_TERN_ROW_(r) (w->data + (size_t)(r)*w->row_bytes)
#define BN_TERN_PAIR_(ra, rb, ia, ib)                                                              \
    pair(BN_TERN_ROW_(ra), BN_TERN_ROW_(rb), q, nb, fix, &out[ia], &out[ib])
#define BN_TERN_ONE_(r, i) (out[i] = one(BN_TERN_ROW_(r), q, nb, fix))
    BN_TERN_PAIRED_ROWS(r0, r1, BN_TERN_PAIR_, BN_TERN_ONE_);
#undef BN_TERN_ONE_
#undef BN_TERN_PAIR_
#undef BN_TERN_ROW_
}

/* A table's several-token entry (gemv_multi) over its own kernel for one row
 * and NT tokens, NT a constant 2 or 4 (row(p, q, K, tq2, fix, NT, s): s[t] =
 * the sums of row p for tokens q[0..NT)): rows [r0, r1) in order, NT 4 for
 * three or four tokens and 2 for one or two, the first token standing in
 * for the missing ones (their sums are dropped). Called like
 * bn_tern_gemv_paired, with tq2, fix and row as constants. */
typedef void (*bn_tern_multi_fn)(const uint8_t *p, const int8_t *const *q, int64_t K, bool tq2,
                                 bool fix, int NT, uint32_t *s);

static inline __attribute__((always_inline)) void
bn_tern_multi_rows(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *const *q, int nt,
                   int32_t *out, size_t ldo, bool tq2, bool fix, bn_tern_multi_fn row) {
    const int8_t *qq[4] = {q[0], nt > 1 ? q[1] : q[0], nt > 2 ? q[2] : q[0], nt > 3 ? q[3] : q[0]};
    for (int64_t r = r0; r < r1; r++) {
        uint32_t s[4] = {0, 0, 0, 0};
        const uint8_t *p = w->data + (size_t)r * w->row_bytes;
        if (nt > 2)
            row(p, qq, w->K, tq2, fix, 4, s);
        else
            row(p, qq, w->K, tq2, fix, 2, s);
        for (int t = 0; t < nt; t++) out[(size_t)t * ldo + (size_t)(r - r0)] = (int32_t)s[t];
    }
}

/* A table's two entries gemv_multi_i2s and gemv_multi_tq2 over its row
 * kernel (I2_S as two loops, without and with the code-3 fix). */
#define BN_TERN_MULTI_ENTRIES(row)                                                                 \
    static void gemv_multi_i2s(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *const *q, \
                               int nt, int32_t *out, size_t ldo) {                                 \
        if (w->clean)                                                                              \
            bn_tern_multi_rows(w, r0, r1, q, nt, out, ldo, false, false, row);                     \
        else                                                                                       \
            bn_tern_multi_rows(w, r0, r1, q, nt, out, ldo, false, true, row);                      \
    }                                                                                              \
    static void gemv_multi_tq2(const bn_tern_w *w, int64_t r0, int64_t r1, const int8_t *const *q, \
                               int nt, int32_t *out, size_t ldo) {                                 \
        bn_tern_multi_rows(w, r0, r1, q, nt, out, ldo, true, false, row);                          \
    }

static inline int bn_tern_type_index(uint32_t type) {
    return type == BN_TYPE_I2_S ? BN_TK_I2S : type == BN_TYPE_TQ2_0 ? BN_TK_TQ2 : BN_TK_TQ1;
}
size_t bn_tern_row_bytes(int ti, int64_t K);

#endif
