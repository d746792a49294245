/* ternary_prepare.c - per-weight preparation for the fast ternary kernels
 * (ternary.h), made once per weight at graph_prepare and shared by every
 * graph and CPU backend that names the weight, keyed by its host pointer (the
 * data contract of backends/backend.h), until the last owner closes.
 *
 * What is prepared:
 *  - I2_S: whether any code 3 occurs (if not, the mat-vec skips mapping it
 *    to weight 0);
 *  - TQ2_0, TQ1_0: whether every block has the same finite scale (then the
 *    kernels sum whole rows, "row mode"; otherwise one sum per block);
 *  - a repacked layout: the lookup-table layout (ternary_lut.c) for TQ1_0
 *    weights, whose base-3 codes are slow to unpack (by default where the
 *    kernel table says it is faster: AVX2), or
 *    columns (ternary_sparse.c) for a weight whose input is the ReLU^2
 *    feed-forward (ffn_down of BitNet b1.58 2B-4T: about half its activations
 *    are exactly zero, and their columns are skipped; off by default, see
 *    read_env). A repacked weight is read only through its new layout, and the
 *    pages of the original are released from the resident set, so memory
 *    does not grow.
 * Only weights that lie in a file mapping are prepared: their address and
 * contents are stable while the model lives, so a pointer cannot come back
 * holding other data. Other weights run the kernels' general paths. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/os.h"
#include "cpu_internal.h"
#include "ternary.h"

typedef struct entry {
    const void *data;
    uint32_t type;
    int64_t K, N;
    bn_tern_prep prep;
    void *packed;
    const void **owners;
    int n_owners, cap_owners;
    struct entry *next;
} entry;

#define NBUCKETS 256
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry *buckets[NBUCKETS];
/* layout switches: -1 = not read from the environment yet */
static int opt_sparse = -1, opt_lut = -1;

static size_t bucket_of(const void *p) {
    return ((uintptr_t)p >> 6) % NBUCKETS;
}

static entry *find(const bn_tensor *w) {
    for (entry *e = buckets[bucket_of(w->data)]; e; e = e->next)
        if (e->data == w->data && e->type == w->type && e->K == w->ne[0] && e->N == w->ne[1])
            return e;
    return NULL;
}

const bn_tern_prep *bn_tern_lookup(const bn_tensor *w) {
    pthread_mutex_lock(&mu);
    entry *e = find(w);
    pthread_mutex_unlock(&mu);
    return e ? &e->prep : NULL;
}

static bool add_owner(entry *e, const void *owner) {
    for (int i = 0; i < e->n_owners; i++)
        if (e->owners[i] == owner) return true;
    if (e->n_owners == e->cap_owners) {
        int cap = e->cap_owners ? 2 * e->cap_owners : 2;
        const void **o = realloc(e->owners, (size_t)cap * sizeof *o);
        if (!o) return false;
        e->owners = o;
        e->cap_owners = cap;
    }
    e->owners[e->n_owners++] = owner;
    return true;
}

static void free_entry(entry *e) {
    bn_tern_free_packed(e->packed);
    free(e->owners);
    free(e);
}

void bn_tern_set_layouts(int sparse, int lut) {
    pthread_mutex_lock(&mu);
    opt_sparse = sparse;
    opt_lut = lut;
    pthread_mutex_unlock(&mu);
}

/* BITNET_CPU_SPARSE: "1" on, else off (bench/RESULTS.md: on the machine
 * measured, the column kernel beats the row kernels only above about 70 %
 * zero activations; generated models have about 50 %). BITNET_CPU_LUT: "0"
 * off, "all" every ternary type, else TQ1_0 where the table in use prefers it
 * (bn_tern_kernels.lut_for_tq1). Called with mu held. */
static void read_env(void) {
    if (opt_sparse < 0) {
        const char *s = getenv("BITNET_CPU_SPARSE");
        opt_sparse = s && !strcmp(s, "1");
    }
    if (opt_lut < 0) {
        const char *s = getenv("BITNET_CPU_LUT");
        opt_lut = s && !strcmp(s, "0") ? 0 : s && !strcmp(s, "all") ? 2 : 1;
    }
}

/* Whether the activations come from a ReLU^2 through element-wise ops and
 * norms (relu(gate)^2 * up, sub-norm, quantize): many are exactly zero. */
static bool after_relu_sqr(const bn_tensor *t, int depth) {
    if (!t || depth > 8) return false;
    switch (t->op) {
    case BN_OP_RELU_SQR:
        return true;
    case BN_OP_MUL:
        return after_relu_sqr(t->src[0], depth + 1) || after_relu_sqr(t->src[1], depth + 1);
    case BN_OP_QUANTIZE_ACT:
    case BN_OP_RMS_NORM:
    case BN_OP_SCALE:
    case BN_OP_CPY:
        return after_relu_sqr(t->src[0], depth + 1);
    default:
        return false;
    }
}

/* TQ: true (and *scale) if every block's f16 scale has the same bits and is finite. */
static bool tq_uniform(const bn_tern_w *w, float *scale) {
    const size_t bb = w->ti == BN_TK_TQ2 ? 66 : 54;
    const size_t nblocks = (size_t)(w->K / 256) * (size_t)w->N;
    const uint8_t *p = w->data + bb - 2;
    const uint16_t d = (uint16_t)(p[0] | (p[1] << 8));
    if ((d & 0x7c00) == 0x7c00) return false;
    for (size_t b = 1; b < nblocks; b++)
        if ((uint16_t)(p[b * bb] | (p[b * bb + 1] << 8)) != d) return false;
    *scale = bn_cpu_f16_to_f32(d);
    return true;
}

bn_status bn_tern_prepare(const bn_tensor *node, const void *owner, bn_err *err) {
    if (node->op != BN_OP_MATMUL_TERNARY) return BN_OK;
    const bn_tensor *wt = node->src[0];
    if (!bn_type_is_ternary(wt->type) || !(wt->flags & BN_TENSOR_WEIGHT) || !wt->data) return BN_OK;
    pthread_mutex_lock(&mu);
    read_env();
    const int sparse = opt_sparse, lut = opt_lut;
    entry *e = find(wt);
    if (e) {
        bool ok = add_owner(e, owner);
        pthread_mutex_unlock(&mu);
        return ok ? BN_OK : bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    pthread_mutex_unlock(&mu);

    const size_t bytes = bn_tensor_nbytes(wt);
    if (!bn_os_is_file_mapping(wt->data, bytes)) return BN_OK;
    entry *n = calloc(1, sizeof *n);
    if (!n) return bn_fail(err, BN_ERR_OOM, "out of memory");
    n->data = wt->data;
    n->type = wt->type;
    n->K = wt->ne[0];
    n->N = wt->ne[1];
    bn_tern_w w = {.ti = bn_tern_type_index(wt->type), .data = wt->data, .K = n->K, .N = n->N};
    w.row_bytes = bn_tern_row_bytes(w.ti, w.K);
    bn_tern_prep *p = &n->prep;
    if (w.ti == BN_TK_I2S) {
        p->clean = w.clean = !bn_codes2_have_3(w.data, (size_t)w.K * (size_t)w.N / 4);
        memcpy(&p->scale, w.data + (size_t)w.K * (size_t)w.N / 4, sizeof p->scale);
    } else {
        p->uniform = tq_uniform(&w, &p->scale);
    }
    /* repacked layouts need one scale */
    const bool one_scale = w.ti == BN_TK_I2S || p->uniform;
    bn_status st = BN_OK;
    if (sparse && one_scale && after_relu_sqr(node->src[1], 0)) {
        st = bn_tern_make_cols(&w, &p->cols, err);
        if (st == BN_OK) {
            p->layout = BN_TERN_COLS;
            n->packed = (void *)p->cols.data;
        }
    } else if (one_scale && (lut == 2 || (lut == 1 && w.ti == BN_TK_TQ1 && bn_cpu_ternary() &&
                                          bn_cpu_ternary()->lut_for_tq1))) {
        st = bn_tern_make_lut(&w, &p->lut, err);
        if (st == BN_OK) {
            p->layout = BN_TERN_LUT;
            n->packed = (void *)p->lut.data;
        } else if (st == BN_ERR_UNSUPPORTED) {
            st = BN_OK; /* TQ2_0 code 3 (weight 2) has no index: keep the file's layout */
        }
    }
    if (st != BN_OK || !add_owner(n, owner)) {
        free_entry(n);
        return st != BN_OK ? st : bn_fail(err, BN_ERR_OOM, "out of memory");
    }

    pthread_mutex_lock(&mu);
    e = find(wt); /* another thread may have prepared it meanwhile */
    if (e) {
        bool ok = add_owner(e, owner);
        pthread_mutex_unlock(&mu);
        free_entry(n);
        return ok ? BN_OK : bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    size_t b = bucket_of(wt->data);
    n->next = buckets[b];
    buckets[b] = n;
    pthread_mutex_unlock(&mu);
    if (n->packed) bn_os_release_file_pages(wt->data, bytes);
    return BN_OK;
}

void bn_tern_release(const void *owner) {
    pthread_mutex_lock(&mu);
    for (int b = 0; b < NBUCKETS; b++) {
        for (entry **pe = &buckets[b]; *pe;) {
            entry *e = *pe;
            for (int i = 0; i < e->n_owners; i++)
                if (e->owners[i] == owner) {
                    e->owners[i] = e->owners[--e->n_owners];
                    break;
                }
            if (e->n_owners == 0) {
                *pe = e->next;
                free_entry(e);
            } else {
                pe = &e->next;
            }
        }
    }
    pthread_mutex_unlock(&mu);
}
