/* ternary_matmul.c - the driver of the fast MATMUL_TERNARY kernels
 * (ternary.h): splits the output rows among threads, runs the kernels of the
 * table in use over tiles, and turns their integer sums into outputs exactly
 * as the reference in cpu_matmul.c does:
 *   I2_S, and TQ weights whose blocks share one scale d ("row mode"):
 *       y = (float)(acc * (1 / s_t)),  acc = d * S (I2_S),  acc = 0.0 + d * S (TQ);
 *   other TQ weights ("group mode"): acc = 0.0, then acc += d_g * S_g for
 *       every block g in order.
 * For a shared d, sum_g d * S_g is exact in double (every partial sum is d
 * times an integer below 2^31, d an f16 value), so it equals d * S: the same
 * bits as the reference, which tests check byte for byte.
 *
 * Paths (weight layout from the preparation, ternary_prepare.c):
 *   fewer than TERN_GEMM_MIN_T tokens
 *                a mat-vec per token: rows layout gemv; column layout: only
 *                the columns of non-zero activations; lookup-table layout:
 *                one table per token, then table lookups;
 *   TERN_MULTI_MIN_T .. TERN_MULTI_MAX_T tokens, rows layout, row mode, with
 *                a table that has gemv_multi (AVX2, AVX-512 VNNI): groups of up to
 *                four tokens on the packed rows, each row block read once
 *                from memory;
 *   more tokens  blocked GEMM: a tile of rows is unpacked into byte codes
 *                once (K in chunks of at most TERN_KC elements) and reused by
 *                every token tile, so the weights are read once per call and
 *                the time goes into the multiply-adds. */
#include <string.h>

#include "cpu_internal.h"
#include "ternary.h"

#define TERN_GEMV_ROWS 64   /* rows per gemv call: group mode, lookup tables */
#define TERN_GROUP_MAX 4096 /* outputs per gemv call in group mode */
#define TERN_TT 128         /* tokens per GEMM tile */
#define TERN_KC 8192        /* elements per K chunk (a multiple of 256) */
#define TERN_RT 32          /* rows per GEMM tile, at most */
/* Tokens from which the GEMM path runs. Below it each token's mat-vec reads
 * the weights again, which costs less than unpacking them into codes once:
 * on one Zen 4 core (bench/RESULTS.md) unpacking the 2B-4T ternary weights
 * takes about 85 ms and the GEMM then 9 ms a token, against 16 ms a token for
 * mat-vecs; the two meet at 10-12 tokens. */
#define TERN_GEMM_MIN_T 12
/* With a table's gemv_multi (several tokens on the packed rows, no
 * unpacking) it runs from TERN_MULTI_MIN_T to TERN_MULTI_MAX_T tokens, then
 * the GEMM. On one Zen 4 core: 1.1-1.3x the mat-vecs from 4 tokens, 1.2x the
 * GEMM at 16, even with it at 32 (bench/RESULTS.md); 2 and 3 tokens run
 * faster as mat-vecs (two row streams, more bandwidth). */
#define TERN_MULTI_MIN_T 4
#define TERN_MULTI_MAX_T 32
#define TERN_MULTI_BLOCK 262144 /* bytes of rows read for every token group (L2) */

typedef struct mm {
    const bn_tern_kernels *ks;
    const bn_tensor *node, *xq;
    bn_tern_w w;
    const bn_tern_prep *prep;
    int64_t K, N, T, G;
    bool group;
    float scale; /* row mode */
} mm;

static inline const bn_act_row *act(const mm *m, int64_t t) {
    return bn_cpu_row(m->xq, t);
}

static inline float *yrow(const mm *m, int64_t t) {
    return bn_cpu_row_mut(m->node, t);
}

/* Scale of block g of row r (TQ types: the f16 after the codes). */
static inline double block_scale(const mm *m, int64_t r, int64_t g) {
    const size_t bb = m->w.ti == BN_TK_TQ2 ? 66 : 54;
    const uint8_t *p = m->w.data + (size_t)r * m->w.row_bytes + (size_t)g * bb + bb - 2;
    return (double)bn_cpu_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

static inline int32_t sub_wrap(int32_t c, int32_t q) {
    return (int32_t)((uint32_t)c - (uint32_t)q);
}

/* Row mode: y from S = C - sum, for n rows of code sums C:
 *   I2_S: y = (float)(d * S * (1 / s));   TQ: y = (float)((0.0 + d * S) * (1 / s))
 * (the reference's arithmetic, cpu_matmul.c: 1 / s once per token, so an
 * output costs two multiplies, not a division: about 1 % of prefill saved).
 * The type is tested once so the compiler can vectorize the loop. */
static void finish_rows(const mm *m, const int32_t *C, int64_t n, int32_t sum, float s, float *y) {
    const double d = m->scale, inv = 1.0 / (double)s;
    if (m->w.ti == BN_TK_I2S)
        for (int64_t i = 0; i < n; i++) y[i] = (float)(d * (double)sub_wrap(C[i], sum) * inv);
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)((0.0 + d * (double)sub_wrap(C[i], sum)) * inv);
}

/* Sums of q over each 256-element block g0 .. g0 + ng - 1. */
static void group_sums(const int8_t *q, int64_t g0, int64_t ng, int32_t *out) {
    for (int64_t g = 0; g < ng; g++) {
        int32_t s = 0;
        const int8_t *p = q + (g0 + g) * 256;
        for (int i = 0; i < 256; i++) s += p[i];
        out[g] = s;
    }
}

/* ---- scratch: 64-byte aligned regions carved in order ---- */

typedef struct carve {
    char *p;
} carve;

static void *take(carve *c, size_t bytes) {
    void *r = c->p;
    c->p += bn_cpu_round_up(bytes);
    return r;
}

static int64_t group_rows(int64_t G) {
    int64_t rows = TERN_GROUP_MAX / (G ? G : 1);
    if (rows < 1) rows = 1;
    return rows < TERN_GEMV_ROWS ? rows : TERN_GEMV_ROWS;
}

static int64_t kchunk(int64_t K) {
    return K < TERN_KC ? K : TERN_KC;
}

/* rows per block of the several-token path: TERN_MULTI_BLOCK bytes, at least 16 */
static int64_t multi_block_rows(size_t row_bytes) {
    const int64_t n = (int64_t)(TERN_MULTI_BLOCK / (row_bytes ? row_bytes : 1));
    return n < 16 ? 16 : n;
}

size_t bn_tern_scratch(const bn_tensor *node) {
    const bn_tensor *w = node->src[0];
    if (node->op != BN_OP_MATMUL_TERNARY || !bn_type_is_ternary(w->type)) return 0;
    const int64_t K = w->ne[0], N = w->ne[1], G = K / 256, kc = kchunk(K);
    const int64_t npad = (N + 127) / 128 * 128, gpad = ((K + 2) / 3 + 7) / 8 * 8;
    /* gemv: group mode in calls of group_rows(G) rows; row mode in one call
     * per thread (the kernels may pair rows far apart in that range) */
    int64_t outs = group_rows(G) * (G ? G : 1);
    if (outs < N) outs = N;
    size_t gemv = bn_cpu_round_up((size_t)outs * 4) + bn_cpu_round_up((size_t)(G + 1) * 4) +
                  bn_cpu_round_up((size_t)K);
    /* column layout gemv: outputs, then the kernel's scratch */
    size_t cols =
        bn_cpu_round_up((size_t)npad * 4) + bn_cpu_round_up(bn_tern_cols_scratch(K, npad));
    /* lookup-table gemv: tables and the outputs of a few tiles */
    size_t lut = bn_cpu_round_up(bn_tern_lut_table_bytes(gpad)) +
                 bn_cpu_round_up((size_t)TERN_GEMV_ROWS * 4);
    /* GEMM: codes, int32 sums, double sums, block sums, activation block sums */
    size_t gemm = bn_cpu_round_up((size_t)TERN_RT * (size_t)kc) +
                  bn_cpu_round_up((size_t)TERN_TT * TERN_RT * 4) +
                  bn_cpu_round_up((size_t)TERN_TT * TERN_RT * 8) +
                  bn_cpu_round_up((size_t)BN_TERN_MR * BN_TERN_NT * (size_t)(kc / 256 + 1) * 4) +
                  bn_cpu_round_up((size_t)TERN_TT * (size_t)(kc / 256 + 1) * 4) +
                  bn_cpu_round_up((size_t)TERN_TT * (size_t)kc);
    /* several tokens on the packed rows: the sums of a row block, the aligned activations */
    const int64_t mrows = multi_block_rows(bn_tern_row_bytes(bn_tern_type_index(w->type), K));
    size_t multi = bn_cpu_round_up((size_t)TERN_MULTI_MAX_T * (size_t)mrows * 4) +
                   bn_cpu_round_up((size_t)TERN_MULTI_MAX_T * (size_t)K);
    size_t s = gemv;
    if (multi > s) s = multi;
    if (cols > s) s = cols;
    if (lut > s) s = lut;
    if (gemm > s) s = gemm;
    return s;
}

/* ---- rows layout, one token at a time ---- */

static void rows_gemv(const mm *m, int64_t lo, int64_t hi, void *scratch) {
    carve c = {scratch};
    const int64_t G = m->G, per = m->group ? group_rows(G) : hi - lo;
    int32_t *out = take(&c, (size_t)(m->group ? per * G : per) * 4);
    int32_t *qg = take(&c, (size_t)(G + 1) * 4);
    /* the activations 64-byte aligned (in a bn_act_row they start at byte 8):
     * every row reads them again, and loads that split cache lines cost ~20 % */
    int8_t *qa = take(&c, (size_t)m->K);
    for (int64_t t = 0; t < m->T; t++) {
        const bn_act_row *a = act(m, t);
        float *y = yrow(m, t);
        memcpy(qa, a->q, (size_t)m->K);
        if (m->group) group_sums(a->q, 0, G, qg);
        for (int64_t r0 = lo; r0 < hi; r0 += per) {
            const int64_t r1 = hi - r0 < per ? hi : r0 + per;
            m->ks->gemv[m->w.ti](&m->w, r0, r1, qa, out, m->group);
            if (!m->group) {
                finish_rows(m, out, r1 - r0, a->sum, a->s, y + r0);
                continue;
            }
            for (int64_t r = r0; r < r1; r++) {
                double acc = 0.0;
                for (int64_t g = 0; g < G; g++)
                    acc += block_scale(m, r, g) * (double)sub_wrap(out[(r - r0) * G + g], qg[g]);
                y[r] = (float)(acc * (1.0 / (double)a->s));
            }
        }
    }
}

/* ---- rows layout, row mode, a few tokens: each row read once for a group of
 * up to BN_TERN_NT tokens, no unpacking (the table's gemv_multi). The rows go
 * in blocks of TERN_MULTI_BLOCK bytes, each block through every token group
 * while it is in L2. ---- */

static void multi_path(const mm *m, int64_t lo, int64_t hi, void *scratch) {
    carve c = {scratch};
    const int64_t T = m->T, K = m->K, rb = multi_block_rows(m->w.row_bytes);
    int32_t *out = take(&c, (size_t)T * (size_t)rb * 4);
    int8_t *qa = take(&c, (size_t)T * (size_t)K); /* K is a multiple of 128: rows stay aligned */
    for (int64_t t = 0; t < T; t++) memcpy(qa + t * K, act(m, t)->q, (size_t)K);
    for (int64_t r0 = lo; r0 < hi; r0 += rb) {
        const int64_t r1 = hi - r0 < rb ? hi : r0 + rb, n = r1 - r0;
        for (int64_t t0 = 0; t0 < T; t0 += BN_TERN_NT) {
            const int nt = T - t0 < BN_TERN_NT ? (int)(T - t0) : BN_TERN_NT;
            const int8_t *qp[BN_TERN_NT];
            for (int j = 0; j < nt; j++) qp[j] = qa + (t0 + j) * K;
            m->ks->gemv_multi[m->w.ti](&m->w, r0, r1, qp, nt, out + t0 * n, (size_t)n);
        }
        for (int64_t t = 0; t < T; t++) {
            const bn_act_row *a = act(m, t);
            finish_rows(m, out + t * n, n, a->sum, a->s, yrow(m, t) + r0);
        }
    }
}

/* ---- any layout, several tokens: unpack a row tile, then GEMM ---- */

/* Codes of rows [r0, r0 + rt) (rows past N, if the layout pads, are codes of
 * no weight; they are computed and dropped) for elements [k0, k0 + kn). */
static void unpack_tile(const mm *m, int64_t r0, int64_t r1, int64_t k0, int64_t kn, uint8_t *codes,
                        size_t ldc) {
    const int layout = m->prep ? m->prep->layout : BN_TERN_ROWS;
    if (layout == BN_TERN_COLS) {
        void (*f)(const bn_tern_cols *, int64_t, int64_t, int64_t, uint8_t *, size_t) =
            m->ks->cols_unpack ? m->ks->cols_unpack : bn_tern_scalar.cols_unpack;
        for (int64_t r = r0; r < r1; r += 16)
            f(&m->prep->cols, r, k0, kn, codes + (size_t)(r - r0) * ldc, ldc);
    } else if (layout == BN_TERN_LUT) {
        void (*f)(const bn_tern_lut *, int64_t, int64_t, int64_t, uint8_t *, size_t) =
            m->ks->lut_unpack ? m->ks->lut_unpack : bn_tern_scalar.lut_unpack;
        for (int64_t r = r0; r < r1; r += 32)
            f(&m->prep->lut, r / 32, k0, kn, codes + (size_t)(r - r0) * ldc, ldc);
    } else {
        m->ks->unpack[m->w.ti](&m->w, r0, r1, k0, kn, codes, ldc);
    }
}

static void gemm_path(const mm *m, int64_t lo, int64_t hi, int64_t rt, void *scratch) {
    carve c = {scratch};
    const int64_t K = m->K, kc = kchunk(K), gc = kc / 256 + 1;
    uint8_t *codes = take(&c, (size_t)TERN_RT * (size_t)kc);
    int32_t *acc32 = take(&c, (size_t)TERN_TT * TERN_RT * 4);
    double *dacc = take(&c, (size_t)TERN_TT * TERN_RT * 8);
    int32_t *gout = take(&c, (size_t)BN_TERN_MR * BN_TERN_NT * (size_t)gc * 4);
    int32_t *qg = take(&c, (size_t)TERN_TT * (size_t)gc * 4);
    const size_t ldc = (size_t)kc;
    /* When the call is one token tile and one K chunk (as the engine's
     * batches of up to 128 tokens of 2B-4T-sized layers are), the activations are copied once,
     * 64-byte aligned, for the micro-kernel's loads (in a bn_act_row they
     * start at byte 8). */
    const bool copy = m->T <= TERN_TT && K <= kc;
    int8_t *qa = take(&c, copy ? (size_t)m->T * (size_t)kc : 0);
    if (copy)
        for (int64_t t = 0; t < m->T; t++) memcpy(qa + t * kc, act(m, t)->q, (size_t)K);
    /* rows of padded layouts are unpacked in whole units */
    const int64_t unit = m->prep && m->prep->layout == BN_TERN_COLS  ? 16
                         : m->prep && m->prep->layout == BN_TERN_LUT ? 32
                                                                     : 1;
    for (int64_t r0 = lo; r0 < hi; r0 += rt) {
        const int64_t r1 = hi - r0 < rt ? hi : r0 + rt;
        const int64_t u1 = (r1 + unit - 1) / unit * unit; /* unpacked rows end */
        for (int64_t t0 = 0; t0 < m->T; t0 += TERN_TT) {
            const int64_t t1 = m->T - t0 < TERN_TT ? m->T : t0 + TERN_TT;
            /* only the (t1 - t0) x rt sums this tile uses; doubles in group mode only */
            memset(acc32, 0, (size_t)((t1 - t0) * rt) * 4);
            if (m->group)
                for (int64_t i = 0; i < (t1 - t0) * rt; i++) dacc[i] = 0.0;
            for (int64_t k0 = 0; k0 < K; k0 += kc) {
                const int64_t kn = K - k0 < kc ? K - k0 : kc, ng = kn / 256;
                unpack_tile(m, r0, u1, k0, kn, codes, ldc);
                if (m->group)
                    for (int64_t t = t0; t < t1; t++)
                        group_sums(act(m, t)->q, k0 / 256, ng, qg + (t - t0) * gc);
                /* token groups outside, row pairs inside: a group's activations
                 * stay in L1 while every row pair of the tile uses them */
                for (int64_t tt = t0; tt < t1; tt += BN_TERN_NT) {
                    const int nt = t1 - tt < BN_TERN_NT ? (int)(t1 - tt) : BN_TERN_NT;
                    const int8_t *qp[BN_TERN_NT];
                    for (int j = 0; j < nt; j++)
                        qp[j] = copy ? qa + (tt + j) * kc : act(m, tt + j)->q + k0;
                    for (int64_t rr = r0; rr < r1; rr += BN_TERN_MR) {
                        const int nr = r1 - rr < BN_TERN_MR ? (int)(r1 - rr) : BN_TERN_MR;
                        const uint8_t *cp = codes + (size_t)(rr - r0) * ldc;
                        if (!m->group) {
                            m->ks->gemm(cp, ldc, nr, qp, nt, kn, acc32 + (tt - t0) * rt + (rr - r0),
                                        (size_t)rt, false);
                            continue;
                        }
                        m->ks->gemm(cp, ldc, nr, qp, nt, kn, gout, 0, true);
                        for (int j = 0; j < nt; j++)
                            for (int r = 0; r < nr; r++) {
                                double *d = &dacc[(tt + j - t0) * rt + (rr - r0) + r];
                                const int32_t *s = gout + (j * nr + r) * ng;
                                const int32_t *qs = qg + (tt + j - t0) * gc;
                                for (int64_t g = 0; g < ng; g++)
                                    *d += block_scale(m, rr + r, k0 / 256 + g) *
                                          (double)sub_wrap(s[g], qs[g]);
                            }
                    }
                }
            }
            for (int64_t t = t0; t < t1; t++) {
                const bn_act_row *a = act(m, t);
                float *y = yrow(m, t);
                const int64_t i = (t - t0) * rt;
                if (!m->group) {
                    finish_rows(m, acc32 + i, r1 - r0, a->sum, a->s, y + r0);
                    continue;
                }
                const double inv = 1.0 / (double)a->s;
                for (int64_t r = r0; r < r1; r++) y[r] = (float)(dacc[i + r - r0] * inv);
            }
        }
    }
}

/* ---- column layout, one token: skip the columns of zero activations ---- */

static void cols_gemv_path(const mm *m, int64_t lo, int64_t hi, void *scratch) {
    const bn_tern_cols *cw = &m->prep->cols;
    const int64_t r1 = (hi + 127) / 128 * 128;
    carve c = {scratch};
    int32_t *out = take(&c, (size_t)cw->Npad * 4);
    void *ks = take(&c, bn_tern_cols_scratch(m->K, cw->Npad));
    void (*f)(const bn_tern_cols *, int64_t, int64_t, const int8_t *, int32_t *, void *) =
        m->ks->cols_gemv ? m->ks->cols_gemv : bn_tern_scalar.cols_gemv;
    for (int64_t t = 0; t < m->T; t++) {
        const bn_act_row *a = act(m, t);
        f(cw, lo, r1, a->q, out, ks);
        finish_rows(m, out, hi - lo, a->sum, a->s, yrow(m, t) + lo);
    }
}

/* ---- lookup-table layout, one token ---- */

static void lut_gemv_path(const mm *m, int64_t lo, int64_t hi, void *scratch) {
    const bn_tern_lut *lw = &m->prep->lut;
    carve c = {scratch};
    int8_t *tab = take(&c, bn_tern_lut_table_bytes(lw->Gpad));
    int32_t *out = take(&c, (size_t)TERN_GEMV_ROWS * 4);
    const bn_tern_kernels *ks = m->ks->lut_gemv ? m->ks : &bn_tern_scalar;
    for (int64_t t = 0; t < m->T; t++) {
        const bn_act_row *a = act(m, t);
        float *y = yrow(m, t);
        ks->lut_tables(a->q, m->K, lw->Gpad, tab);
        for (int64_t r0 = lo; r0 < hi; r0 += TERN_GEMV_ROWS) {
            const int64_t r1 = hi - r0 < TERN_GEMV_ROWS ? hi : r0 + TERN_GEMV_ROWS;
            ks->lut_gemv(lw, r0 / 32, (r1 + 31) / 32, tab, out);
            finish_rows(m, out, r1 - r0, 0, a->s, y + r0); /* the table gives S */
        }
    }
}

bool bn_tern_matmul(const bn_tensor *node, int ith, int nth, void *scratch) {
    const bn_tern_kernels *ks = bn_cpu_ternary();
    if (!ks) return false;
    const bn_tensor *w = node->src[0];
    mm m = {.ks = ks, .node = node, .xq = node->src[1]};
    m.K = w->ne[0];
    m.N = w->ne[1];
    m.T = m.xq->ne[1];
    m.G = m.K / 256;
    m.w.ti = bn_tern_type_index(w->type);
    m.w.data = w->data;
    m.w.K = m.K;
    m.w.N = m.N;
    m.w.row_bytes = bn_tern_row_bytes(m.w.ti, m.K);
    m.prep = bn_tern_lookup(w);
    m.w.clean = m.prep && m.prep->clean;
    if (m.w.ti == BN_TK_I2S) {
        float s;
        memcpy(&s, m.w.data + (size_t)m.K * (size_t)m.N / 4, sizeof s);
        m.scale = s;
    } else if (m.prep && m.prep->uniform) {
        m.scale = m.prep->scale;
    } else {
        m.group = true;
    }
    const int layout = m.prep ? m.prep->layout : BN_TERN_ROWS;
    const bool multi = layout == BN_TERN_ROWS && !m.group && m.T >= TERN_MULTI_MIN_T &&
                       m.T <= TERN_MULTI_MAX_T && m.ks->gemv_multi[m.w.ti];
    const bool gemm = !multi && m.T >= TERN_GEMM_MIN_T;
    int64_t granule = 16, rt = 16;
    if (layout == BN_TERN_COLS) granule = gemm ? 16 : 128;
    if (layout == BN_TERN_LUT) granule = rt = 32;
    int64_t lo, hi;
    bn_cpu_split(m.N, granule, ith, nth, &lo, &hi);
    if (lo >= hi) return true;
    if (multi)
        multi_path(&m, lo, hi, scratch);
    else if (gemm)
        gemm_path(&m, lo, hi, rt, scratch);
    else if (layout == BN_TERN_COLS)
        cols_gemv_path(&m, lo, hi, scratch);
    else if (layout == BN_TERN_LUT)
        lut_gemv_path(&m, lo, hi, scratch);
    else
        rows_gemv(&m, lo, hi, scratch);
    return true;
}
