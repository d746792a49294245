/* sampler.c - token sampling: repetition penalty, greedy, top-k, temperature,
 * top-p, min-p and a deterministic draw (see sampler.h). */
#include "sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One candidate token: its (penalized) logit and its id. */
typedef struct bn_cand {
    float logit;
    int id;
} bn_cand;

struct bn_sampler {
    bn_sampler_params p;
    int n_vocab;
    uint64_t rng;  /* xorshift64* state, never 0 */
    bn_cand *cand; /* n_vocab candidates, rebuilt by every sample */
    float *prob;   /* unnormalized probabilities of cand[0..m) */
    /* Repetition history (NULL when the penalty is off).
     * Window mode (repeat_last_n > 0): hist is a ring of the last hist_cap
     *   accepted tokens and mark[] is scratch used to visit each distinct token once.
     * Whole mode (repeat_last_n == -1): hist lists each distinct token ever
     *   accepted (at most n_vocab) and mark[t] says whether t is in that list. */
    int *hist;
    uint8_t *mark;
    int hist_cap, hist_len, hist_pos;
};

void bn_sampler_params_default(bn_sampler_params *p) {
    p->temp = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = 0;
}

/* ---- random numbers: splitmix64 to spread the seed, xorshift64* to draw ---- */

static uint64_t seed_state(uint64_t seed) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z ? z : 0x2545F4914F6CDD1Dull; /* xorshift must not start at 0 */
}

/* Uniform double in [0, 1) from the top 53 bits of one xorshift64* output. */
static double rng_uniform(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- creation ---- */

static int penalty_on(const bn_sampler_params *p) {
    return p->repeat_penalty != 1.0f && p->repeat_last_n != 0;
}

bn_status bn_sampler_new(const bn_sampler_params *p, int n_vocab, bn_sampler **out, bn_err *err) {
    if (!out) return bn_fail(err, BN_ERR_INVALID_ARG, "sampler: out is NULL");
    *out = NULL;
    if (!p) return bn_fail(err, BN_ERR_INVALID_ARG, "sampler: params are NULL");
    if (n_vocab < 1)
        return bn_fail(err, BN_ERR_INVALID_ARG, "sampler: n_vocab must be >= 1, got %d", n_vocab);
    if (!isfinite(p->temp))
        return bn_fail(err, BN_ERR_INVALID_ARG, "sampler: temp must be finite, got %g",
                       (double)p->temp);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return bn_fail(err, BN_ERR_INVALID_ARG, "sampler: top_p must be in (0, 1], got %g",
                       (double)p->top_p);
    if (!(p->min_p <= 1.0f) || !isfinite(p->min_p))
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "sampler: min_p must be finite and <= 1 (<= 0: off), got %g",
                       (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "sampler: repeat_penalty must be finite and > 0 (1: off), got %g",
                       (double)p->repeat_penalty);
    if (p->repeat_last_n < -1)
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "sampler: repeat_last_n must be >= -1 (0: off, -1: whole history), got %d",
                       p->repeat_last_n);

    bn_sampler *s = calloc(1, sizeof *s);
    if (!s) return bn_fail(err, BN_ERR_OOM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
    int ok = s->cand && s->prob;
    if (ok && penalty_on(p)) {
        s->hist_cap = p->repeat_last_n > 0 ? p->repeat_last_n : n_vocab;
        s->hist = malloc((size_t)s->hist_cap * sizeof *s->hist);
        s->mark = calloc((size_t)n_vocab, 1);
        ok = s->hist && s->mark;
    }
    if (!ok) {
        bn_sampler_free(s);
        return bn_fail(err, BN_ERR_OOM, "sampler: out of memory for a %d-token vocabulary",
                       n_vocab);
    }
    s->rng = seed_state(p->seed);
    *out = s;
    return BN_OK;
}

void bn_sampler_free(bn_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->prob);
    free(s->hist);
    free(s->mark);
    free(s);
}

/* ---- history ---- */

void bn_sampler_accept(bn_sampler *s, int token) {
    if (!s || !s->hist || token < 0 || token >= s->n_vocab) return;
    if (s->p.repeat_last_n > 0) {
        s->hist[s->hist_pos] = token;
        s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
        if (s->hist_len < s->hist_cap) s->hist_len++;
    } else if (!s->mark[token]) {
        s->mark[token] = 1;
        s->hist[s->hist_len++] = token;
    }
}

void bn_sampler_reset(bn_sampler *s) {
    if (!s) return;
    if (s->mark) memset(s->mark, 0, (size_t)s->n_vocab);
    s->hist_len = s->hist_pos = 0;
    s->rng = seed_state(s->p.seed);
}

static void penalize(bn_cand *c, float penalty) {
    c->logit = c->logit > 0.0f ? c->logit / penalty : c->logit * penalty;
}

/* Step 1: penalize each distinct token of the history once. cand[] is still
 * indexed by token id here. */
static void apply_repeat_penalty(bn_sampler *s) {
    if (!s->hist) return;
    float pen = s->p.repeat_penalty;
    if (s->p.repeat_last_n > 0) {
        for (int i = 0; i < s->hist_len; i++) {
            int t = s->hist[i];
            if (!s->mark[t]) {
                s->mark[t] = 1;
                penalize(&s->cand[t], pen);
            }
        }
        for (int i = 0; i < s->hist_len; i++) s->mark[s->hist[i]] = 0;
    } else {
        for (int i = 0; i < s->hist_len; i++) penalize(&s->cand[s->hist[i]], pen);
    }
}

/* ---- ordering: higher logit first, then lower id (a total order, so results
 * do not depend on how the heap breaks ties). Heaps rather than qsort: no
 * allocation inside the C library, the same order everywhere. ---- */

static int better(const bn_cand *a, const bn_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

/* Min-heap on "better": h[0] is the worst of the k kept candidates. */
static void sift_down(bn_cand *h, int k, int i) {
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < k && better(&h[worst], &h[l])) worst = l;
        if (r < k && better(&h[worst], &h[r])) worst = r;
        if (worst == i) return;
        bn_cand t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

/* Heapsort of a heap h[0..k): moving the worst to the end each time leaves
 * the array sorted best first. */
static void sort_heap(bn_cand *h, int k) {
    for (int end = k - 1; end > 0; end--) {
        bn_cand t = h[0];
        h[0] = h[end];
        h[end] = t;
        sift_down(h, end, 0);
    }
}

static void sort_best_first(bn_cand *c, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(c, n, i);
    sort_heap(c, n);
}

/* Moves the k best of c[0..n) into c[0..k), sorted best first: O(n log k).
 * The heap holds the k best so far; a newcomer replaces its worst. */
static void select_top_k(bn_cand *c, int n, int k) {
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int i = k; i < n; i++) {
        if (better(&c[i], &c[0])) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
    }
    sort_heap(c, k);
}

/* ---- sampling ---- */

int bn_sampler_sample(bn_sampler *s, const float *logits) {
    int n = s->n_vocab;
    bn_cand *c = s->cand;
    float *prob = s->prob;
    float temp = s->p.temp;

    /* Copy the logits (the caller's row is never written); NaN counts as -inf. */
    for (int i = 0; i < n; i++) {
        float v = logits[i];
        c[i].logit = isnan(v) ? -INFINITY : v;
        c[i].id = i;
    }

    /* 1. Repetition penalty. */
    apply_repeat_penalty(s);

    /* Clamp +inf to FLT_MAX so softmax stays finite (such tokens take all the
     * mass), and find the argmax (strict > keeps the lowest id on ties). */
    int best = 0;
    float max_logit = -INFINITY;
    for (int i = 0; i < n; i++) {
        float v = c[i].logit;
        if (v == INFINITY) c[i].logit = v = FLT_MAX;
        if (v > max_logit) {
            max_logit = v;
            best = i;
        }
    }

    /* 2. Greedy; also the answer when every logit is -inf (best is then 0). */
    if (temp <= 0.0f || max_logit == -INFINITY) return best;

    /* 3. Top-k: keep the k best, sorted best first. */
    int m = n, sorted = 0;
    int k = s->p.top_k;
    if (k > 0 && k < n) {
        select_top_k(c, n, k);
        m = k;
        sorted = 1;
    }

    /* Drop -inf candidates (probability 0); the argmax is finite, so one stays. */
    int kept = 0;
    for (int i = 0; i < m; i++)
        if (c[i].logit != -INFINITY) c[kept++] = c[i];
    m = kept;

    /* 4. Softmax with temperature, unnormalized (the argmax gets exactly 1);
     * sum is the mass of every candidate that survived top-k. */
    double sum = 0.0;
    for (int i = 0; i < m; i++) {
        prob[i] = expf((c[i].logit - max_logit) / temp);
        sum += prob[i];
    }

    /* 5 and 6. Top-p and min-p each keep a prefix of the candidates sorted by
     * logit, and top-p measures mass against the full sum, so applying min-p
     * first gives exactly the set "top-p then min-p" gives - and it lets the
     * sort below skip the (usually many) tokens that min-p cuts. */

    /* Min-p: keep tokens with p >= min_p * p_max (p_max is 1, the argmax). */
    if (s->p.min_p > 0.0f) {
        float threshold = s->p.min_p;
        kept = 0;
        for (int i = 0; i < m; i++) {
            if (prob[i] >= threshold) {
                c[kept] = c[i];
                prob[kept++] = prob[i];
            }
        }
        m = kept;
    }

    /* Top-p: keep the shortest sorted prefix whose mass reaches top_p of the
     * total (the token that crosses the line is kept). Without top-k, sort
     * now; probabilities are recomputed in the new order. */
    if (s->p.top_p < 1.0f) {
        if (!sorted) {
            sort_best_first(c, m);
            for (int i = 0; i < m; i++) prob[i] = expf((c[i].logit - max_logit) / temp);
        }
        double target = (double)s->p.top_p * sum, cum = 0.0;
        for (int i = 0; i < m; i++) {
            cum += prob[i];
            if (cum >= target) {
                m = i + 1;
                break;
            }
        }
    }

    /* 7. Renormalize (by scaling the uniform draw by the kept mass) and draw. */
    double total = 0.0;
    for (int i = 0; i < m; i++) total += prob[i];
    double u = rng_uniform(&s->rng) * total, acc = 0.0;
    int last = c[0].id;
    for (int i = 0; i < m; i++) {
        if (prob[i] <= 0.0f) continue;
        acc += prob[i];
        last = c[i].id;
        if (u < acc) return c[i].id;
    }
    return last; /* rounding left u at the very top: the last token with mass */
}
