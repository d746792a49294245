/* test_sampler.c - the token sampler (core/sampler.h): greedy, top-k, top-p,
 * min-p, temperature, repetition penalty, determinism, validation and
 * non-finite logits. Every statistical check uses a fixed seed, so results
 * are deterministic; bounds are loose (several standard deviations). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

/* Parameters with every filter off: plain softmax(logits / temp). */
static bn_sampler_params plain(float temp, uint64_t seed) {
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = seed;
    return p;
}

static bn_sampler *make(const bn_sampler_params *p, int n_vocab) {
    bn_sampler *s = NULL;
    bn_err err = {0};
    bn_status st = bn_sampler_new(p, n_vocab, &s, &err);
    if (st != BN_OK) fail_msg("bn_sampler_new: %s", err.msg);
    assert_non_null(s);
    return s;
}

/* Draws n tokens from the same logits and counts them in counts[n_vocab]. */
static void draw_counts(bn_sampler *s, const float *logits, int n_vocab, int n, int *counts) {
    memset(counts, 0, (size_t)n_vocab * sizeof *counts);
    for (int i = 0; i < n; i++) {
        int t = bn_sampler_sample(s, logits);
        assert_true(t >= 0 && t < n_vocab);
        counts[t]++;
    }
}

/* Largest |observed frequency - expected probability| over the vocabulary. */
static double max_dev(const int *counts, const double *expect, int n_vocab, int n) {
    double d = 0.0;
    for (int i = 0; i < n_vocab; i++) {
        double e = fabs((double)counts[i] / n - expect[i]);
        if (e > d) d = e;
    }
    return d;
}

static void test_defaults(void **state) {
    (void)state;
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    assert_true(p.temp == 0.8f && p.top_k == 40 && p.top_p == 0.95f && p.min_p == 0.05f);
    assert_true(p.repeat_penalty == 1.0f && p.repeat_last_n == 64 && p.seed == 0);
    bn_sampler *s = make(&p, 128256);
    bn_sampler_free(s);
    bn_sampler_free(NULL);
}

static void test_greedy(void **state) {
    (void)state;
    bn_sampler_params p = plain(0.0f, 1);
    float logits[6] = {0.5f, -1.0f, 3.0f, 2.9f, 3.0f, -7.0f};
    float copy[6];
    memcpy(copy, logits, sizeof logits);
    bn_sampler *s = make(&p, 6);
    for (int i = 0; i < 10; i++) assert_int_equal(bn_sampler_sample(s, logits), 2); /* tie 2/4 */
    assert_memory_equal(logits, copy, sizeof logits);                               /* untouched */
    logits[3] = 3.5f;
    assert_int_equal(bn_sampler_sample(s, logits), 3);
    bn_sampler_free(s);

    p.temp = -1.0f; /* negative temperature is greedy too */
    s = make(&p, 6);
    assert_int_equal(bn_sampler_sample(s, logits), 3);
    bn_sampler_free(s);

    float flat[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    p.temp = 0.0f;
    s = make(&p, 4);
    assert_int_equal(bn_sampler_sample(s, flat), 0);
    bn_sampler_free(s);
}

static void test_top_k_one_is_argmax(void **state) {
    (void)state;
    enum { N = 50 };
    float logits[N];
    bt_rng r;
    bt_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) logits[i] = (float)bt_rng_normal(&r);
    logits[17] = 4.0f;
    logits[33] = 4.0f; /* tie: 17 wins */
    const float temps[] = {0.01f, 0.5f, 1.0f, 5.0f, 1000.0f};
    for (int t = 0; t < 5; t++) {
        bn_sampler_params p = plain(temps[t], 100 + (uint64_t)t);
        p.top_k = 1;
        p.top_p = 0.5f;
        bn_sampler *s = make(&p, N);
        for (int i = 0; i < 200; i++) assert_int_equal(bn_sampler_sample(s, logits), 17);
        bn_sampler_free(s);
    }
}

/* A 128256-token vocabulary with top_k 40: only the true top 40 (found by a
 * full sort here) ever appear, and at a high temperature all of them do. */
static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x > y ? -1 : x < y ? 1 : 0;
}

static void test_top_k_large_vocab(void **state) {
    (void)state;
    enum { N = 128256, K = 40, DRAWS = 4000 };
    float *logits = malloc(N * sizeof *logits), *sorted = malloc(N * sizeof *sorted);
    int *counts = malloc(N * sizeof *counts);
    assert_non_null(logits);
    assert_non_null(sorted);
    assert_non_null(counts);
    bt_rng r;
    bt_rng_seed(&r, 11);
    for (int i = 0; i < N; i++) logits[i] = (float)bt_rng_normal(&r) * 3.0f;
    memcpy(sorted, logits, N * sizeof *logits);
    qsort(sorted, N, sizeof *sorted, cmp_desc);
    float kth = sorted[K - 1];
    assert_true(sorted[K] < kth); /* no tie at the boundary for this seed */

    bn_sampler_params p = plain(1000.0f, 5);
    p.top_k = K;
    bn_sampler *s = make(&p, N);
    draw_counts(s, logits, N, DRAWS, counts);
    int seen = 0;
    for (int i = 0; i < N; i++) {
        if (logits[i] >= kth) {
            assert_true(counts[i] > 0); /* expected 100 each */
            seen++;
        } else {
            assert_int_equal(counts[i], 0);
        }
    }
    assert_int_equal(seen, K);
    bn_sampler_free(s);
    free(logits);
    free(sorted);
    free(counts);
}

static void test_repeat_penalty(void **state) {
    (void)state;
    bn_sampler_params p = plain(0.0f, 1);
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 8;

    /* Positive logits are divided: 2.0 / 1.5 = 1.33 < 1.8. */
    float pos[4] = {2.0f, 1.8f, -0.5f, -0.6f};
    bn_sampler *s = make(&p, 4);
    assert_int_equal(bn_sampler_sample(s, pos), 0);
    bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, pos), 1);
    /* Each distinct token is penalized once: 2.0 / 1.5 = 1.33 > 1.2 still wins. */
    float once[2] = {2.0f, 1.2f};
    bn_sampler_free(s);
    s = make(&p, 2);
    for (int i = 0; i < 3; i++) bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, once), 0);
    bn_sampler_free(s);

    /* Negative logits are multiplied: -1.0 * 1.5 = -1.5 < -1.2. */
    float neg[3] = {-1.0f, -1.2f, -3.0f};
    s = make(&p, 3);
    bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, neg), 1);
    bn_sampler_accept(s, 99); /* out of range: ignored */
    bn_sampler_accept(s, -1);
    assert_int_equal(bn_sampler_sample(s, neg), 1);
    bn_sampler_reset(s); /* clears the history */
    assert_int_equal(bn_sampler_sample(s, neg), 0);
    bn_sampler_free(s);

    /* Window of 2: token 0 falls out after two newer tokens. */
    p.repeat_last_n = 2;
    s = make(&p, 4);
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 3);
    assert_int_equal(bn_sampler_sample(s, pos), 1);
    bn_sampler_accept(s, 3);
    assert_int_equal(bn_sampler_sample(s, pos), 0);
    bn_sampler_free(s);

    /* Whole history (-1): token 0 stays penalized. */
    p.repeat_last_n = -1;
    s = make(&p, 4);
    bn_sampler_accept(s, 0);
    for (int i = 0; i < 100; i++) bn_sampler_accept(s, 2 + i % 2);
    assert_int_equal(bn_sampler_sample(s, pos), 1);
    bn_sampler_reset(s);
    assert_int_equal(bn_sampler_sample(s, pos), 0);
    bn_sampler_free(s);

    /* repeat_last_n 0 or penalty 1: off. */
    p.repeat_last_n = 0;
    s = make(&p, 4);
    bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, pos), 0);
    bn_sampler_free(s);
    p.repeat_last_n = 8;
    p.repeat_penalty = 1.0f;
    s = make(&p, 4);
    bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, pos), 0);
    bn_sampler_free(s);
}

static void test_top_p(void **state) {
    (void)state;
    enum { DRAWS = 2000 };
    /* probs 0.5/0.3/0.15/0.05 (shuffled ids); top_p 0.7 keeps the 0.5 and the 0.3. */
    const double probs[4] = {0.15, 0.5, 0.05, 0.3};
    float logits[4];
    for (int i = 0; i < 4; i++) logits[i] = (float)log(probs[i]);
    bn_sampler_params p = plain(1.0f, 1234);
    p.top_p = 0.7f;
    bn_sampler *s = make(&p, 4);
    int counts[4];
    draw_counts(s, logits, 4, DRAWS, counts);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[2], 0);
    assert_int_equal(counts[1] + counts[3], DRAWS);
    const double expect[4] = {0.0, 0.5 / 0.8, 0.0, 0.3 / 0.8};
    double d = max_dev(counts, expect, 4, DRAWS);
    print_message("top_p: freq %.4f / %.4f (expect 0.625 / 0.375), max dev %.4f\n",
                  (double)counts[1] / DRAWS, (double)counts[3] / DRAWS, d);
    assert_true(d < 0.05); /* sd ~0.011 */
    bn_sampler_free(s);

    /* top_p 0.9 keeps three (0.5 + 0.3 = 0.8 < 0.9 <= 0.95). */
    p.top_p = 0.9f;
    s = make(&p, 4);
    draw_counts(s, logits, 4, DRAWS, counts);
    assert_int_equal(counts[2], 0);
    assert_true(counts[0] > 0);
    bn_sampler_free(s);
}

static void test_min_p(void **state) {
    (void)state;
    enum { DRAWS = 4000 };
    /* p_max 0.4, min_p 0.2: threshold 0.08 keeps 0.4/0.3/0.2, cuts 0.06 and 0.04. */
    const double probs[5] = {0.06, 0.4, 0.2, 0.04, 0.3};
    float logits[5];
    for (int i = 0; i < 5; i++) logits[i] = (float)log(probs[i]);
    bn_sampler_params p = plain(1.0f, 99);
    p.min_p = 0.2f;
    bn_sampler *s = make(&p, 5);
    int counts[5];
    draw_counts(s, logits, 5, DRAWS, counts);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[3], 0);
    const double expect[5] = {0.0, 0.4 / 0.9, 0.2 / 0.9, 0.0, 0.3 / 0.9};
    double d = max_dev(counts, expect, 5, DRAWS);
    print_message("min_p: max dev %.4f\n", d);
    assert_true(d < 0.04); /* sd ~0.008 */
    bn_sampler_free(s);

    /* min_p 1 keeps only the most likely token. */
    p.min_p = 1.0f;
    s = make(&p, 5);
    for (int i = 0; i < 100; i++) assert_int_equal(bn_sampler_sample(s, logits), 1);
    bn_sampler_free(s);
}

/* Reference for the whole chain, written literally in the documented order
 * (full sort -> top-k -> softmax -> top-p -> min-p -> renormalize), in double. */
static void reference_probs(const float *logits, int n, const bn_sampler_params *p, double *out) {
    int *order = malloc((size_t)n * sizeof *order);
    double *pr = malloc((size_t)n * sizeof *pr), sum = 0.0;
    assert_non_null(order);
    assert_non_null(pr);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort: logit desc, id asc */
        for (int j = i; j > 0 && logits[order[j]] > logits[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int m = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    for (int i = 0; i < m; i++) sum += pr[i] = exp((logits[order[i]] - logits[order[0]]) / p->temp);
    if (p->top_p < 1.0f) {
        double cum = 0.0;
        for (int i = 0; i < m; i++) {
            cum += pr[i] / sum;
            if (cum >= p->top_p) {
                m = i + 1;
                break;
            }
        }
    }
    for (int i = 0; i < m; i++)
        if (pr[i] < p->min_p * pr[0]) pr[i] = 0.0;
    double total = 0.0;
    for (int i = 0; i < m; i++) total += pr[i];
    memset(out, 0, (size_t)n * sizeof *out);
    for (int i = 0; i < m; i++) out[order[i]] = pr[i] / total;
    free(order);
    free(pr);
}

/* Top-k, top-p and min-p together, on both the top-k (sorted) and the
 * no-top-k paths, against the reference. */
static void test_filter_chain(void **state) {
    (void)state;
    enum { N = 7, DRAWS = 4000 };
    const double probs[N] = {0.08, 0.3, 0.03, 0.2, 0.25, 0.04, 0.1};
    float logits[N];
    for (int i = 0; i < N; i++) logits[i] = (float)log(probs[i]);
    const struct {
        int top_k;
        float temp, top_p, min_p;
        int expect_kept;
    } cases[] = {
        {0, 1.0f, 0.8f, 0.5f, 3},   /* min-p is the tighter cut */
        {0, 1.0f, 0.5f, 0.2f, 2},   /* top-p is the tighter cut */
        {0, 1.0f, 0.95f, 0.05f, 6}, /* the defaults' filters */
        {5, 1.0f, 0.9f, 0.1f, 4},   /* top-k renormalizes before top-p */
        {6, 1.5f, 0.9f, 0.1f, 5},   /* with a temperature */
        {0, 0.5f, 0.9f, 0.0f, 3},   {3, 1.0f, 1.0f, 0.0f, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bn_sampler_params p = plain(cases[c].temp, 500 + c);
        p.top_k = cases[c].top_k;
        p.top_p = cases[c].top_p;
        p.min_p = cases[c].min_p;
        double expect[N];
        reference_probs(logits, N, &p, expect);
        int kept = 0;
        for (int i = 0; i < N; i++) kept += expect[i] > 0.0;
        assert_int_equal(kept, cases[c].expect_kept); /* the reference itself is right */
        bn_sampler *s = make(&p, N);
        int counts[N];
        draw_counts(s, logits, N, DRAWS, counts);
        for (int i = 0; i < N; i++)
            if (expect[i] == 0.0) assert_int_equal(counts[i], 0);
        double d = max_dev(counts, expect, N, DRAWS);
        print_message("chain case %zu: %d kept, max dev %.4f\n", c, kept, d);
        assert_true(d < 0.04); /* sd <= 0.008 */
        bn_sampler_free(s);
    }
}

/* Top-p without top-k sorts the whole vocabulary: check it on 3000 tokens. */
static void test_top_p_full_sort(void **state) {
    (void)state;
    enum { N = 3000, DRAWS = 5000 };
    float *logits = malloc(N * sizeof *logits);
    double *expect = malloc(N * sizeof *expect);
    int *counts = malloc(N * sizeof *counts);
    assert_non_null(logits);
    assert_non_null(expect);
    assert_non_null(counts);
    bt_rng r;
    bt_rng_seed(&r, 77);
    for (int i = 0; i < N; i++) logits[i] = (float)bt_rng_normal(&r) * 2.0f;
    bn_sampler_params p = plain(1.0f, 31);
    p.top_p = 0.3f;
    reference_probs(logits, N, &p, expect);
    int kept = 0;
    for (int i = 0; i < N; i++) kept += expect[i] > 0.0;
    bn_sampler *s = make(&p, N);
    draw_counts(s, logits, N, DRAWS, counts);
    for (int i = 0; i < N; i++)
        if (expect[i] == 0.0) assert_int_equal(counts[i], 0);
    double d = max_dev(counts, expect, N, DRAWS);
    print_message("top_p full sort: %d of %d kept, max dev %.4f\n", kept, N, d);
    assert_true(kept > 5 && kept < N / 2);
    assert_true(d < 0.03);
    bn_sampler_free(s);
    free(logits);
    free(expect);
    free(counts);
}

static void test_temperature(void **state) {
    (void)state;
    enum { N = 6, DRAWS = 20000 };
    const float logits[N] = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f};
    const float temps[3] = {0.7f, 1.0f, 2.5f};
    for (int t = 0; t < 3; t++) {
        double expect[N], sum = 0.0;
        for (int i = 0; i < N; i++) sum += expect[i] = exp((double)logits[i] / temps[t]);
        for (int i = 0; i < N; i++) expect[i] /= sum;
        bn_sampler_params p = plain(temps[t], 2024 + (uint64_t)t);
        bn_sampler *s = make(&p, N);
        int counts[N];
        draw_counts(s, logits, N, DRAWS, counts);
        double chi2 = 0.0;
        for (int i = 0; i < N; i++) {
            double e = expect[i] * DRAWS;
            chi2 += (counts[i] - e) * (counts[i] - e) / e;
        }
        double d = max_dev(counts, expect, N, DRAWS);
        print_message("temp %.1f: max dev %.4f, chi2 %.2f (5 dof)\n", (double)temps[t], d, chi2);
        assert_true(d < 0.02);    /* sd <= 0.0036 */
        assert_true(chi2 < 40.0); /* p ~ 1e-7 for 5 dof */
        bn_sampler_free(s);
    }
}

static void test_determinism(void **state) {
    (void)state;
    enum { N = 32, LEN = 200 };
    float logits[N];
    for (int i = 0; i < N; i++) logits[i] = (float)(i % 7) * 0.3f;
    bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.top_k = 0; /* keep many tokens so sequences can differ */
    p.min_p = 0.0f;
    p.seed = 42;
    bn_sampler *a = make(&p, N), *b = make(&p, N);
    p.seed = 43;
    bn_sampler *c = make(&p, N);
    int sa[LEN], sb[LEN], sc[LEN], sr[LEN];
    for (int i = 0; i < LEN; i++) {
        sa[i] = bn_sampler_sample(a, logits);
        sb[i] = bn_sampler_sample(b, logits);
        sc[i] = bn_sampler_sample(c, logits);
    }
    assert_memory_equal(sa, sb, sizeof sa);
    assert_memory_not_equal(sa, sc, sizeof sa);
    bn_sampler_reset(a);
    for (int i = 0; i < LEN; i++) sr[i] = bn_sampler_sample(a, logits);
    assert_memory_equal(sa, sr, sizeof sa);

    /* Reset also clears the history, so a penalized run replays exactly. */
    p.seed = 42;
    p.repeat_penalty = 1.3f;
    bn_sampler *d = make(&p, N);
    for (int i = 0; i < LEN; i++) bn_sampler_accept(d, sa[i] = bn_sampler_sample(d, logits));
    bn_sampler_reset(d);
    for (int i = 0; i < LEN; i++) bn_sampler_accept(d, sr[i] = bn_sampler_sample(d, logits));
    assert_memory_equal(sa, sr, sizeof sa);

    /* Seed 0 works (the state is never 0) and is not constant. */
    p = plain(1.0f, 0);
    bn_sampler *z = make(&p, N);
    int first = bn_sampler_sample(z, logits), differs = 0;
    for (int i = 0; i < LEN; i++) differs |= bn_sampler_sample(z, logits) != first;
    assert_true(differs);
    bn_sampler_free(a);
    bn_sampler_free(b);
    bn_sampler_free(c);
    bn_sampler_free(d);
    bn_sampler_free(z);
}

static void expect_invalid(const bn_sampler_params *p, int n_vocab, const char *needle) {
    static int dummy;
    bn_sampler *s = (bn_sampler *)&dummy; /* must be overwritten with NULL */
    bn_err err = {0};
    assert_int_equal(bn_sampler_new(p, n_vocab, &s, &err), BN_ERR_INVALID_ARG);
    assert_null(s);
    assert_int_equal(err.code, BN_ERR_INVALID_ARG);
    if (!strstr(err.msg, needle)) fail_msg("message '%s' does not mention '%s'", err.msg, needle);
}

static void test_invalid_params(void **state) {
    (void)state;
    bn_sampler_params ok = plain(1.0f, 0), p;
    expect_invalid(&ok, 0, "n_vocab");
    expect_invalid(&ok, -5, "n_vocab");
    expect_invalid(NULL, 10, "params");
    p = ok, p.temp = NAN;
    expect_invalid(&p, 10, "temp");
    p = ok, p.temp = INFINITY;
    expect_invalid(&p, 10, "temp");
    p = ok, p.top_p = 0.0f;
    expect_invalid(&p, 10, "top_p");
    p = ok, p.top_p = 1.5f;
    expect_invalid(&p, 10, "top_p");
    p = ok, p.top_p = NAN;
    expect_invalid(&p, 10, "top_p");
    p = ok, p.min_p = 1.5f;
    expect_invalid(&p, 10, "min_p");
    p = ok, p.min_p = NAN;
    expect_invalid(&p, 10, "min_p");
    p = ok, p.repeat_penalty = 0.0f;
    expect_invalid(&p, 10, "repeat_penalty");
    p = ok, p.repeat_penalty = -1.0f;
    expect_invalid(&p, 10, "repeat_penalty");
    p = ok, p.repeat_penalty = INFINITY;
    expect_invalid(&p, 10, "repeat_penalty");
    p = ok, p.repeat_last_n = -2;
    expect_invalid(&p, 10, "repeat_last_n");
    bn_err err = {0};
    assert_int_equal(bn_sampler_new(&ok, 10, NULL, &err), BN_ERR_INVALID_ARG);

    /* Edge values that are valid: top_k beyond the vocabulary, min_p < 0, top_p 1. */
    p = ok, p.top_k = 1000, p.min_p = -1.0f, p.top_p = 1.0f;
    bn_sampler *s = make(&p, 10);
    bn_sampler_free(s);
}

static void test_non_finite(void **state) {
    (void)state;
    enum { N = 5, DRAWS = 2000 };
    int counts[N];
    /* NaN is never chosen even though it sits at the "max" position; -inf has p = 0. */
    float mixed[N] = {NAN, -INFINITY, 1.0f, 0.0f, -INFINITY};
    float copy[N];
    memcpy(copy, mixed, sizeof mixed);
    bn_sampler_params greedy = plain(0.0f, 3);
    bn_sampler *s = make(&greedy, N);
    assert_int_equal(bn_sampler_sample(s, mixed), 2);
    bn_sampler_free(s);

    const int top_ks[2] = {0, 4};
    for (int k = 0; k < 2; k++) {
        bn_sampler_params p = plain(1.0f, 3);
        p.top_k = top_ks[k];
        p.top_p = 0.999f;
        s = make(&p, N);
        draw_counts(s, mixed, N, DRAWS, counts);
        assert_int_equal(counts[0] + counts[1] + counts[4], 0);
        double expect[N] = {0, 0, exp(1.0) / (exp(1.0) + 1.0), 1.0 / (exp(1.0) + 1.0), 0};
        assert_true(max_dev(counts, expect, N, DRAWS) < 0.05);
        bn_sampler_free(s);
    }
    assert_memory_equal(mixed, copy, sizeof mixed); /* NaN bits unchanged */

    /* Everything -inf or NaN: the argmax rule gives the lowest id, 0. */
    float none[N] = {-INFINITY, NAN, -INFINITY, NAN, -INFINITY};
    bn_sampler_params p = plain(1.0f, 3);
    s = make(&p, N);
    for (int i = 0; i < 20; i++) assert_int_equal(bn_sampler_sample(s, none), 0);
    bn_sampler_free(s);
    p.top_k = 2;
    s = make(&p, N);
    assert_int_equal(bn_sampler_sample(s, none), 0);
    bn_sampler_free(s);
    s = make(&greedy, N);
    assert_int_equal(bn_sampler_sample(s, none), 0);
    bn_sampler_free(s);

    /* One finite logit among -inf: always that one. +inf takes all the mass. */
    float one[N] = {-INFINITY, -INFINITY, -INFINITY, -3.0f, NAN};
    float inf[N] = {1.0f, INFINITY, 2.0f, -INFINITY, INFINITY};
    p = plain(1.0f, 8);
    s = make(&p, N);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(bn_sampler_sample(s, one), 3);
        int t = bn_sampler_sample(s, inf);
        assert_true(t == 1 || t == 4);
    }
    bn_sampler_free(s);
    s = make(&greedy, N);
    assert_int_equal(bn_sampler_sample(s, inf), 1);
    bn_sampler_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_top_k_one_is_argmax),
        cmocka_unit_test(test_top_k_large_vocab),
        cmocka_unit_test(test_repeat_penalty),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_filter_chain),
        cmocka_unit_test(test_top_p_full_sort),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_non_finite),
        cmocka_unit_test(test_invalid_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
