/* test_api_threads.c - one loaded model, four threads generating at once,
 * each with its own context (greedy and seeded sampling, different prompts,
 * two rounds so the second reuses the cached prefix): every thread's tokens
 * must equal a single-threaded run of the same job. Also run under
 * ThreadSanitizer, which checks that the contexts share nothing mutable. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "testutil.h"

#define N_JOBS 4
#define N_GEN 40
#define ROUNDS 2

typedef struct job {
    const bn_llm *m;
    int32_t prompt[8];
    int n_prompt, n_threads;
    bn_ctx_sampling sampling;
    int32_t out[ROUNDS][N_GEN];
    int n_out[ROUNDS];
    bn_status st;
} job;

typedef struct sink {
    int32_t *ids;
    int n;
} sink;

static int on_token(void *user, int32_t tok, const char *piece, size_t len) {
    sink *s = user;
    (void)piece;
    (void)len;
    if (tok >= 0 && s->n < N_GEN) s->ids[s->n++] = tok;
    return 0;
}

static void *run(void *arg) {
    job *j = arg;
    bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_ctx = 128;
    cp.n_threads = j->n_threads;
    bn_ctx *c = NULL;
    j->st = bn_ctx_new(j->m, &cp, &c);
    if (j->st != BN_OK) return NULL;
    bn_ctx_gen_params gp;
    bn_ctx_gen_params_default(&gp);
    gp.max_tokens = N_GEN;
    gp.sampling = j->sampling;
    for (int r = 0; r < ROUNDS && j->st == BN_OK; r++) {
        sink s = {j->out[r], 0};
        j->st = bn_ctx_generate(c, j->prompt, j->n_prompt, &gp, on_token, &s, NULL);
        j->n_out[r] = s.n;
    }
    bn_ctx_free(c);
    return NULL;
}

static void make_jobs(const bn_llm *m, job *jobs) {
    memset(jobs, 0, sizeof(job) * N_JOBS);
    for (int i = 0; i < N_JOBS; i++) {
        job *j = &jobs[i];
        j->m = m;
        j->n_prompt = 3 + i;
        j->prompt[0] = 1;
        for (int k = 1; k < j->n_prompt; k++) j->prompt[k] = 260 + 97 * i + 13 * k;
        j->n_threads = i == 3 ? 2 : 1; /* one context with a two-thread pool */
        bn_ctx_sampling_default(&j->sampling);
        if (i % 2 == 0) {
            j->sampling.temperature = 0;
        } else {
            j->sampling.temperature = 0.9f;
            j->sampling.seed = 100 + (uint64_t)i;
        }
    }
}

static void test_four_threads(void **state) {
    (void)state;
    char path[1024], cmd[4096];
    snprintf(path, sizeof path, "%s", bt_tmp_path("api-threads-tiny.gguf"));
    snprintf(cmd, sizeof cmd,
             "'%s' gen -o '%s' --shape tiny --type tq2_0 --seed 21 >/dev/null 2>&1", BITNET_BIN,
             path);
    if (system(cmd) != 0) bt_skip("cannot make the test model with '%s gen'", BITNET_BIN);
    bn_llm *m = NULL;
    assert_int_equal(bn_llm_load(path, NULL, &m), BN_OK);

    job seq[N_JOBS], par[N_JOBS];
    make_jobs(m, seq);
    make_jobs(m, par);
    for (int i = 0; i < N_JOBS; i++) {
        run(&seq[i]);
        assert_int_equal(seq[i].st, BN_OK);
    }
    pthread_t th[N_JOBS];
    for (int i = 0; i < N_JOBS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, run, &par[i]), 0);
    for (int i = 0; i < N_JOBS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_JOBS; i++) {
        assert_int_equal(par[i].st, BN_OK);
        for (int r = 0; r < ROUNDS; r++) {
            assert_true(seq[i].n_out[r] > 0);
            assert_int_equal(par[i].n_out[r], seq[i].n_out[r]);
            assert_memory_equal(par[i].out[r], seq[i].out[r],
                                sizeof(int32_t) * (size_t)seq[i].n_out[r]);
        }
        /* the same job gives the same tokens in both rounds (the second reuses the cache) */
        assert_int_equal(seq[i].n_out[1], seq[i].n_out[0]);
        assert_memory_equal(seq[i].out[1], seq[i].out[0],
                            sizeof(int32_t) * (size_t)seq[i].n_out[0]);
    }
    /* the jobs differ from each other, so a mix-up would show */
    assert_memory_not_equal(seq[0].out[0], seq[2].out[0], sizeof(int32_t) * 8);
    bn_llm_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_four_threads)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
