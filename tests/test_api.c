/* test_api.c - the embeddable API (include/bitnet.h) against the engine it
 * wraps: logits equal the engine context's, greedy and seeded generation
 * equal a step-by-step loop over the engine context and sampler written
 * here, prefix reuse gives the same tokens as a fresh context, the stop
 * rules (max_tokens, full context, callback), tokenizer round trips, chat
 * prompts, and every error path with its message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "../core/model.h"
#include "../core/sampler.h"
#include "../graph/context.h"
#include "testutil.h"

static const char *model_path(void) {
    static char path[1024];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", bt_tmp_path("api-tiny.gguf"));
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "'%s' gen -o '%s' --shape tiny --type i2_s --seed 11 >/dev/null 2>&1", BITNET_BIN,
                 path);
        if (system(cmd) != 0) bt_skip("cannot make the test model with '%s gen'", BITNET_BIN);
    }
    return path;
}

static bn_llm *load(void) {
    bn_llm *m = NULL;
    assert_int_equal(bn_llm_load(model_path(), NULL, &m), BN_OK);
    assert_non_null(m);
    return m;
}

static bn_ctx *new_ctx(bn_llm *m, int n_ctx) {
    bn_ctx_params p;
    bn_ctx_params_default(&p);
    p.n_ctx = n_ctx;
    p.n_threads = 1;
    bn_ctx *c = NULL;
    assert_int_equal(bn_ctx_new(m, &p, &c), BN_OK);
    return c;
}

/* Tokens passed to the generation callback. */
typedef struct collect {
    int32_t ids[512];
    int n, stop_after;
    char text[8192];
    size_t len;
} collect;

static int on_token(void *user, int32_t tok, const char *piece, size_t len) {
    collect *c = user;
    if (tok >= 0) c->ids[c->n++] = tok;
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, piece, len);
        c->len += len;
        c->text[c->len] = 0;
    }
    return c->stop_after > 0 && c->n >= c->stop_after;
}

static const int32_t prompt[] = {1, 300, 45, 977, 12, 640};
#define N_PROMPT ((int)(sizeof prompt / sizeof prompt[0]))

/* The reference: the engine context and sampler driven step by step. */
static int reference(const bn_sampler_params *sp, const int32_t *p, int n, int n_gen, int n_ctx,
                     int32_t *out) {
    bn_model *m = NULL;
    bn_err err = {0};
    assert_int_equal(bn_model_load(model_path(), &m, &err), BN_OK);
    bn_context_params cp;
    bn_context_params_default(&cp);
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    bn_context *c = NULL;
    assert_int_equal(bn_context_new(m, &cp, &c, &err), BN_OK);
    bn_sampler *s = NULL;
    assert_int_equal(bn_sampler_new(sp, m->hp.n_vocab, &s, &err), BN_OK);
    float *logits = malloc(sizeof(float) * (size_t)m->hp.n_vocab);
    assert_int_equal(bn_context_eval(c, p, n, false, logits, &err), BN_OK);
    for (int i = 0; i < n; i++) bn_sampler_accept(s, p[i]);
    int k = 0;
    for (; k < n_gen; k++) {
        int best = 0;
        if (sp->temp <= 0) { /* argmax written out: ties go to the lowest id */
            for (int v = 1; v < m->hp.n_vocab; v++)
                if (logits[v] > logits[best]) best = v;
        } else {
            best = bn_sampler_sample(s, logits);
        }
        bn_sampler_accept(s, best);
        if (best == m->vocab.eos || best == m->vocab.eot) break;
        out[k] = best;
        if (k + 1 < n_gen) assert_int_equal(bn_context_eval(c, &out[k], 1, false, logits, &err), 0);
    }
    free(logits);
    bn_sampler_free(s);
    bn_context_free(c);
    bn_model_free(m);
    return k;
}

static void test_load_errors(void **state) {
    (void)state;
    bn_llm *m = (bn_llm *)1;
    assert_int_not_equal(bn_llm_load(bt_tmp_path("api-missing.gguf"), NULL, &m), BN_OK);
    assert_null(m);
    assert_non_null(strstr(bn_last_error(), "api-missing.gguf"));
    assert_int_equal(bn_llm_load(NULL, NULL, &m), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_llm_load(model_path(), NULL, NULL), BN_ERR_INVALID_ARG);
    bn_llm_params p;
    bn_llm_params_default(&p);
    p.backend = "warp-drive";
    assert_int_equal(bn_llm_load(model_path(), &p, &m), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(bn_last_error(), "warp-drive"));
    bn_llm_params_default(&p);
    p.backend = "cpu"; /* an explicit choice works, and the plan says where it runs */
    assert_int_equal(bn_llm_load(model_path(), &p, &m), BN_OK);
    bn_ctx *pc = NULL;
    assert_int_equal(bn_ctx_new(m, NULL, &pc), BN_OK);
    assert_non_null(strstr(bn_ctx_plan(pc), "cpu"));
    bn_ctx_free(pc);
    bn_llm_free(m);
    bn_llm_params_default(&p);
    p.chat_template = "nope";
    assert_int_equal(bn_llm_load(model_path(), &p, &m), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(bn_last_error(), "nope"));
    p.chat_template = "bitnet-old";
    assert_int_equal(bn_llm_load(model_path(), &p, &m), BN_OK);
    assert_string_equal(bn_llm_chat_name(m), "bitnet-old");
    bn_llm_free(m);
    /* bad context parameters */
    m = load();
    bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_threads = -2;
    bn_ctx *c = (bn_ctx *)1;
    assert_int_equal(bn_ctx_new(m, &cp, &c), BN_ERR_INVALID_ARG);
    assert_null(c);
    assert_non_null(strstr(bn_last_error(), "n_threads"));
    bn_llm_free(m);
    bn_llm_free(NULL);
    bn_ctx_free(NULL);
    assert_string_equal(bn_version(), BITNET_VERSION);
}

static void test_devices(void **state) {
    (void)state;
    int n = 0;
    assert_int_equal(bn_devices_list(NULL, 0, &n), BN_OK);
    assert_true(n >= 1);
    bn_device_desc d[16];
    int n2 = 0;
    assert_int_equal(bn_devices_list(d, 16, &n2), BN_OK);
    assert_int_equal(n2, n);
    assert_string_equal(d[0].id, "cpu:0"); /* the CPU backend comes first */
    assert_string_equal(d[0].type, "cpu");
    assert_true(d[0].unified);
    assert_int_equal(bn_devices_list(d, -1, &n2), BN_ERR_INVALID_ARG);
}

static void test_info(void **state) {
    (void)state;
    bn_llm *m = load();
    bn_llm_info in;
    assert_int_equal(bn_llm_get_info(m, &in), BN_OK);
    /* the tiny shape of tools/shapes.c, written by bitnet gen */
    assert_string_equal(in.arch, "bitnet-b1.58");
    assert_int_equal(in.n_vocab, 1024);
    assert_int_equal(in.n_embd, 256);
    assert_int_equal(in.n_layer, 2);
    assert_int_equal(in.n_head, 4);
    assert_int_equal(in.n_head_kv, 2);
    assert_int_equal(in.n_ctx_train, 256);
    assert_string_equal(in.weight_type, "I2_S");
    assert_int_equal(in.bos, 1);
    assert_int_equal(in.eos, 2);
    assert_true(bn_llm_token_is_eog(m, 2));
    assert_false(bn_llm_token_is_eog(m, 1));
    assert_false(bn_llm_token_is_eog(m, -1));
    bn_llm_free(m);
}

static void test_tokenize(void **state) {
    (void)state;
    bn_llm *m = load();
    const char *text = "the cat sat on the mat";
    int n = -1;
    assert_int_equal(bn_llm_tokenize(m, text, strlen(text), BN_TOKENIZE_ADD_BOS, NULL, 0, &n), 0);
    assert_true(n > 1);
    int32_t ids[64];
    int n2 = 0;
    assert_int_equal(bn_llm_tokenize(m, text, strlen(text), BN_TOKENIZE_ADD_BOS, ids, 64, &n2), 0);
    assert_int_equal(n2, n);
    assert_int_equal(ids[0], 1); /* BOS first */
    for (int i = 0; i < n; i++) assert_true(ids[i] >= 0 && ids[i] < 1024);
    /* without the flag: the same ids minus BOS */
    int32_t ids2[64];
    int n3 = 0;
    assert_int_equal(bn_llm_tokenize(m, text, strlen(text), 0, ids2, 64, &n3), 0);
    assert_int_equal(n3, n - 1);
    assert_memory_equal(ids2, ids + 1, sizeof(int32_t) * (size_t)n3);
    /* round trip */
    char buf[256];
    size_t len = 0;
    assert_int_equal(bn_llm_detokenize(m, ids, n, buf, sizeof buf, &len), BN_OK);
    assert_string_equal(buf, text);
    assert_int_equal(len, strlen(text));
    /* detokenize = the pieces one after the other, minus SentencePiece's leading space */
    char cat[256] = "";
    int o = 0;
    for (int i = 0; i < n; i++) o += bn_llm_token_piece(m, ids[i], cat + o, (int)sizeof cat - o);
    cat[o] = 0;
    assert_string_equal(cat[0] == ' ' ? cat + 1 : cat, buf);
    /* a buffer too small: truncated, NUL-terminated, full length reported */
    char small[5];
    assert_int_equal(bn_llm_detokenize(m, ids, n, small, sizeof small, &len), BN_OK);
    assert_int_equal(len, strlen(text));
    assert_string_equal(small, "the ");
    assert_int_equal(bn_llm_token_piece(m, 1, buf, 16), 0); /* BOS has no text */
    assert_int_equal(bn_llm_token_piece(m, 5000, buf, 16), 0);
    assert_int_equal(bn_llm_tokenize(m, NULL, 3, 0, NULL, 0, &n), BN_ERR_INVALID_ARG);
    bn_llm_free(m);
}

static void test_chat(void **state) {
    (void)state;
    bn_llm *m = load();
    /* the tiny model has no template and no Llama 3 tokens: the bitnet-old layout */
    assert_string_equal(bn_llm_chat_name(m), "bitnet-old");
    bn_llm_chat_msg msgs[] = {{"system", "Be brief."}, {"user", "  hi  "}};
    int n = 0;
    assert_int_equal(bn_llm_chat_tokenize(m, msgs, 2, true, NULL, 0, &n), BN_OK);
    int32_t ids[128];
    assert_true(n > 2 && n < 128);
    assert_int_equal(bn_llm_chat_tokenize(m, msgs, 2, true, ids, 128, &n), BN_OK);
    assert_int_equal(ids[0], 1);
    char text[256];
    size_t len;
    assert_int_equal(bn_llm_detokenize(m, ids, n, text, sizeof text, &len), BN_OK);
    assert_string_equal(text, "System: Be brief.\n\nHuman: hi\n\nBITNETAssistant: ");
    bn_llm_chat_msg bad[] = {{"wizard", "x"}};
    assert_int_equal(bn_llm_chat_tokenize(m, bad, 1, true, ids, 128, &n), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(bn_last_error(), "wizard"));
    bn_llm_free(m);
}

static void test_eval_matches_engine(void **state) {
    (void)state;
    bn_llm *m = load();
    bn_ctx *c = new_ctx(m, 64);
    assert_null(bn_ctx_logits(c));
    assert_int_equal(bn_ctx_eval(c, prompt, N_PROMPT), BN_OK);
    assert_int_equal(bn_ctx_n_past(c), N_PROMPT);
    assert_memory_equal(bn_ctx_tokens(c), prompt, sizeof prompt);
    const float *got = bn_ctx_logits(c);
    assert_non_null(got);

    bn_model *em = NULL;
    bn_err err = {0};
    assert_int_equal(bn_model_load(model_path(), &em, &err), BN_OK);
    bn_context_params cp;
    bn_context_params_default(&cp);
    cp.n_ctx = 64;
    cp.n_threads = 1;
    bn_context *ec = NULL;
    assert_int_equal(bn_context_new(em, &cp, &ec, &err), BN_OK);
    float *want = malloc(sizeof(float) * 1024);
    assert_int_equal(bn_context_eval(ec, prompt, N_PROMPT, false, want, &err), BN_OK);
    assert_memory_equal(got, want, sizeof(float) * 1024);

    /* rewind to 3 tokens and evaluate the rest again: the same logits */
    assert_int_equal(bn_ctx_rewind(c, 3), BN_OK);
    assert_null(bn_ctx_logits(c));
    assert_int_equal(bn_ctx_n_past(c), 3);
    assert_int_equal(bn_ctx_eval(c, prompt + 3, N_PROMPT - 3), BN_OK);
    assert_memory_equal(bn_ctx_logits(c), want, sizeof(float) * 1024);
    assert_int_equal(bn_ctx_rewind(c, 99), BN_ERR_INVALID_ARG);

    /* errors: a token out of range, too many tokens */
    int32_t bad = 4000;
    assert_int_equal(bn_ctx_eval(c, &bad, 1), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(bn_last_error(), "4000"));
    assert_int_equal(bn_ctx_n_past(c), N_PROMPT); /* unchanged */
    int32_t many[80] = {0};
    assert_int_equal(bn_ctx_eval(c, many, 80), BN_ERR_INVALID_ARG);
    assert_int_equal(bn_ctx_eval(c, many, 0), BN_ERR_INVALID_ARG);
    int32_t t;
    assert_int_equal(bn_ctx_sample(c, &t), BN_ERR_INVALID_ARG); /* logits gone after an error */
    free(want);
    bn_context_free(ec);
    bn_model_free(em);
    bn_ctx_free(c);
    bn_llm_free(m);
}

static void test_generate_greedy(void **state) {
    (void)state;
    bn_llm *m = load();
    bn_ctx *c = new_ctx(m, 128);
    bn_ctx_gen_params gp;
    bn_ctx_gen_params_default(&gp);
    gp.max_tokens = 24;
    gp.sampling.temperature = 0;
    collect col = {0};
    bn_ctx_gen_result res;
    assert_int_equal(bn_ctx_generate(c, prompt, N_PROMPT, &gp, on_token, &col, &res), BN_OK);
    bn_sampler_params sp;
    bn_sampler_params_default(&sp);
    sp.temp = 0;
    int32_t want[32];
    int nw = reference(&sp, prompt, N_PROMPT, 24, 128, want);
    assert_int_equal(res.n_generated, nw);
    assert_int_equal(col.n, nw);
    assert_memory_equal(col.ids, want, sizeof(int32_t) * (size_t)nw);
    assert_int_equal(res.n_prompt, N_PROMPT);
    assert_int_equal(res.n_reused, 0);
    assert_int_equal(res.stop, nw == 24 ? BN_STOP_LENGTH : BN_STOP_EOG);
    /* the cache holds the prompt and all generated tokens but the last */
    assert_int_equal(bn_ctx_n_past(c), N_PROMPT + nw - 1);
    /* the streamed text is the decoded ids (streamed pieces keep a leading space) */
    int32_t all[64];
    memcpy(all, prompt, sizeof prompt);
    memcpy(all + N_PROMPT, want, sizeof(int32_t) * (size_t)nw);
    char full[8192], head[8192];
    size_t lf, lh;
    assert_int_equal(bn_llm_detokenize(m, all, N_PROMPT + nw, full, sizeof full, &lf), BN_OK);
    assert_int_equal(bn_llm_detokenize(m, prompt, N_PROMPT, head, sizeof head, &lh), BN_OK);
    assert_int_equal(col.len, lf - lh);
    assert_memory_equal(col.text, full + lh, lf - lh);
    bn_ctx_free(c);
    bn_llm_free(m);
}

static void test_generate_seeded(void **state) {
    (void)state;
    bn_llm *m = load();
    bn_ctx *c = new_ctx(m, 128);
    bn_ctx_gen_params gp;
    bn_ctx_gen_params_default(&gp);
    gp.max_tokens = 32;
    gp.sampling.temperature = 0.9f;
    gp.sampling.top_k = 50;
    gp.sampling.top_p = 0.9f;
    gp.sampling.repeat_penalty = 1.1f;
    gp.sampling.seed = 1234;
    collect a = {0}, b = {0};
    assert_int_equal(bn_ctx_generate(c, prompt, N_PROMPT, &gp, on_token, &a, NULL), BN_OK);
    /* again on the same context: the prompt is reused, the draws start afresh */
    bn_ctx_gen_result res;
    assert_int_equal(bn_ctx_generate(c, prompt, N_PROMPT, &gp, on_token, &b, &res), BN_OK);
    assert_int_equal(res.n_reused, N_PROMPT - 1);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.ids, b.ids, sizeof(int32_t) * (size_t)a.n);
    bn_sampler_params sp = {.temp = 0.9f,
                            .top_k = 50,
                            .top_p = 0.9f,
                            .min_p = gp.sampling.min_p,
                            .repeat_penalty = 1.1f,
                            .repeat_last_n = gp.sampling.repeat_last_n,
                            .seed = 1234};
    int32_t want[40];
    int nw = reference(&sp, prompt, N_PROMPT, 32, 128, want);
    assert_int_equal(a.n, nw);
    assert_memory_equal(a.ids, want, sizeof(int32_t) * (size_t)nw);
    /* bad sampling parameters are refused before anything runs */
    gp.sampling.top_p = 2;
    assert_int_equal(bn_ctx_generate(c, prompt, N_PROMPT, &gp, NULL, NULL, NULL),
                     BN_ERR_INVALID_ARG);
    assert_non_null(strstr(bn_last_error(), "top_p"));
    bn_ctx_free(c);
    bn_llm_free(m);
}

static void test_prefix_reuse(void **state) {
    (void)state;
    bn_llm *m = load();
    bn_ctx *c = new_ctx(m, 128), *fresh = new_ctx(m, 128);
    bn_ctx_gen_params gp;
    bn_ctx_gen_params_default(&gp);
    gp.max_tokens = 8;
    gp.sampling.temperature = 0;
    collect first = {0};
    assert_int_equal(bn_ctx_generate(c, prompt, N_PROMPT, &gp, on_token, &first, NULL), BN_OK);
    int cached = bn_ctx_n_past(c); /* the prompt and the reply (its last token unless EOS) */
    assert_true(cached >= N_PROMPT + first.n - 1);
    /* a follow-up: the prompt, the reply, and more */
    int32_t next[64];
    int n = 0;
    memcpy(next, prompt, sizeof prompt);
    n = N_PROMPT;
    for (int i = 0; i < first.n; i++) next[n++] = first.ids[i];
    next[n++] = 77;
    next[n++] = 501;
    collect a = {0}, b = {0};
    bn_ctx_gen_result ra, rb;
    assert_int_equal(bn_ctx_generate(c, next, n, &gp, on_token, &a, &ra), BN_OK);
    assert_int_equal(ra.n_reused, cached);
    bn_ctx_gen_params nr = gp;
    nr.no_reuse = true;
    assert_int_equal(bn_ctx_generate(fresh, next, n, &nr, on_token, &b, &rb), BN_OK);
    assert_int_equal(rb.n_reused, 0);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.ids, b.ids, sizeof(int32_t) * (size_t)a.n);
    /* a different prompt shares only BOS */
    int32_t other[] = {1, 9, 9, 9};
    assert_int_equal(bn_ctx_generate(c, other, 4, &gp, NULL, NULL, &ra), BN_OK);
    assert_int_equal(ra.n_reused, 1);
    bn_ctx_free(fresh);
    bn_ctx_free(c);
    bn_llm_free(m);
}

static void test_stop_rules(void **state) {
    (void)state;
    bn_llm *m = load();
    bn_ctx *c = new_ctx(m, 10);
    bn_ctx_gen_params gp;
    bn_ctx_gen_params_default(&gp);
    gp.sampling.temperature = 0;
    bn_ctx_gen_result res;
    /* the callback stops it */
    collect col = {.stop_after = 3};
    assert_int_equal(bn_ctx_generate(c, prompt, N_PROMPT, &gp, on_token, &col, &res), BN_OK);
    assert_int_equal(res.stop, BN_STOP_CALLBACK);
    assert_int_equal(res.n_generated, 3);
    assert_int_equal(col.n, 3);
    /* max_tokens 0: the prompt is evaluated, nothing generated */
    gp.max_tokens = 0;
    collect none = {0};
    assert_int_equal(bn_ctx_generate(c, prompt, N_PROMPT, &gp, on_token, &none, &res), BN_OK);
    assert_int_equal(res.stop, BN_STOP_LENGTH);
    assert_int_equal(res.n_generated, 0);
    assert_int_equal(none.n, 0);
    assert_non_null(bn_ctx_logits(c));
    /* no limit: up to the full context, one token more than the room left */
    gp.max_tokens = -1;
    collect full = {0};
    bn_sampler_params sp;
    bn_sampler_params_default(&sp);
    sp.temp = 0;
    int32_t want[16];
    int nw = reference(&sp, prompt, N_PROMPT, 10 - N_PROMPT + 1, 10, want);
    assert_int_equal(bn_ctx_generate(c, prompt, N_PROMPT, &gp, on_token, &full, &res), BN_OK);
    assert_int_equal(res.n_generated, nw);
    if (nw == 10 - N_PROMPT + 1) assert_int_equal(res.stop, BN_STOP_CONTEXT);
    assert_memory_equal(full.ids, want, sizeof(int32_t) * (size_t)nw);
    /* a prompt longer than the context */
    int32_t longp[11] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    assert_int_equal(bn_ctx_generate(c, longp, 11, &gp, NULL, NULL, &res), BN_ERR_INVALID_ARG);
    assert_non_null(strstr(bn_last_error(), "context holds 10"));
    assert_int_equal(bn_ctx_generate(c, longp, 0, &gp, NULL, NULL, &res), BN_ERR_INVALID_ARG);
    /* a prompt exactly as long as the context gives one token */
    assert_int_equal(bn_ctx_generate(c, longp, 10, &gp, NULL, NULL, &res), BN_OK);
    assert_true(res.n_generated <= 1);
    bn_ctx_free(c);
    bn_llm_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_eval_matches_engine),
        cmocka_unit_test(test_generate_greedy),
        cmocka_unit_test(test_generate_seeded),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_stop_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
