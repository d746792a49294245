/* test_tokenizer_data.c - the exact tokenizers against reference ids made by
 * the Hugging Face tokenizers (../shared/data/tokenizers):
 * - llama3-bpe.inp/.out with the vocabulary `bitnet vocab --from-tiktoken`
 *   builds from llama3-tokenizer.model (no BOS);
 * - ggml-vocab-llama-spm.gguf.inp/.out with the vocabulary in that GGUF (no BOS);
 * and detokenize(tokenize(s)) == s for every case, decoding token by token
 * through the streaming detokenizer. Skips when the shared data is absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokenizer.h"
#include "unicode.h"

#define SEP "\n__ggml_vocab_test__\n"

typedef struct cases {
    char *inp, *out;
    char *str[256];
    size_t len[256];
    char *ids[256];
    int n;
} cases;

/* Splits the .inp file at SEP (each case ends with it) and the .out file into lines. */
static void load_cases(cases *c, const char *inp, const char *out) {
    size_t ni, no;
    c->inp = bt_read_file(inp, &ni);
    c->out = bt_read_file(out, &no);
    assert_non_null(c->inp);
    assert_non_null(c->out);
    c->n = 0;
    char *p = c->inp;
    for (char *q; (q = strstr(p, SEP)) != NULL; p = q + strlen(SEP)) {
        assert_true(c->n < 256);
        *q = 0;
        c->str[c->n] = p;
        c->len[c->n] = (size_t)(q - p);
        c->n++;
    }
    int k = 0;
    for (char *l = c->out; k < c->n && *l;) {
        char *e = strchr(l, '\n');
        if (e) *e = 0;
        c->ids[k++] = l;
        l = e ? e + 1 : l + strlen(l);
    }
    while (k < c->n) c->ids[k++] = "";
    assert_true(c->n > 0);
}

static int parse_ids(const char *s, int32_t *out, int cap) {
    int n = 0;
    for (char *end; *s;) {
        if (*s == ' ') {
            s++;
            continue;
        }
        long v = strtol(s, &end, 10);
        assert_true(end != s);
        assert_true(n < cap);
        out[n++] = (int32_t)v;
        s = end;
    }
    return n;
}

static void check_cases(const bn_vocab *v, cases *c, const char *what) {
    int fails = 0;
    static int32_t want[8192];
    for (int i = 0; i < c->n; i++) {
        bn_err err = {0};
        int32_t *got = NULL;
        int ng = bn_tokenize_alloc(v, c->str[i], c->len[i], false, false, &got, &err);
        assert_true(ng >= 0);
        int nw = parse_ids(c->ids[i], want, 8192);
        bool same = ng == nw && memcmp(got, want, sizeof(int32_t) * (size_t)nw) == 0;
        if (!same) {
            fails++;
            fprintf(stderr, "%s case %d '%.60s':\n  want", what, i, c->str[i]);
            for (int k = 0; k < nw; k++) fprintf(stderr, " %d", want[k]);
            fprintf(stderr, "\n  got ");
            for (int k = 0; k < ng; k++) fprintf(stderr, " %d", got[k]);
            fprintf(stderr, "\n");
        }
        /* round trip, token by token through the streaming detokenizer; every
         * piece it returns must end on a character boundary */
        bn_detok d;
        bn_detok_init(&d, v, false);
        char *buf = malloc(c->len[i] + bn_detok_max_bytes(v) * 2 + 1);
        size_t o = 0;
        for (int k = 0; k < ng; k++) {
            size_t w = bn_detok_push(&d, got[k], buf + o);
            if (w > 0) assert_true(((uint8_t)buf[o + w - 1] & 0xC0) != 0xC0);
            o += w;
            assert_true(o <= c->len[i]);
        }
        o += bn_detok_flush(&d, buf + o);
        if (o != c->len[i] || memcmp(buf, c->str[i], o) != 0) {
            fails++;
            fprintf(stderr, "%s case %d: round trip gives '%.*s'\n", what, i, (int)o, buf);
        }
        free(buf);
        free(got);
    }
    fprintf(stderr, "%s: %d cases, %d failures\n", what, c->n, fails);
    assert_int_equal(fails, 0);
}

/* Random text: valid UTF-8 from mixed scripts must round-trip exactly; random bytes
 * (invalid UTF-8 too) must tokenize into ids in range without failing. */
static void check_random(const bn_vocab *v, uint64_t seed) {
    static const uint32_t ranges[][2] = {{0x20, 0x7E},   {0x09, 0x0D},     {0xA0, 0x17F},
                                         {0x400, 0x4FF}, {0x4E00, 0x4FFF}, {0x1F300, 0x1F6FF},
                                         {0x300, 0x36F}, {0x660, 0x669},   {0x2000, 0x206F}};
    bt_rng r;
    bt_rng_seed(&r, seed);
    char buf[4096];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 0;
        int len = bt_rng_int(&r, 0, 200);
        bool bytes = iter % 3 == 2;
        for (int k = 0; k < len; k++) {
            if (bytes) {
                buf[n++] = (char)bt_rng_int(&r, 0, 255);
                continue;
            }
            const uint32_t *rg = ranges[bt_rng_int(&r, 0, 8)];
            uint32_t cp = (uint32_t)bt_rng_int(&r, (int)rg[0], (int)rg[1]);
            if (bt_rng_int(&r, 0, 3) == 0) cp = ' ';
            n += (size_t)bn_utf8_encode(cp, buf + n);
        }
        bn_err err = {0};
        int32_t *ids;
        int ni = bn_tokenize_alloc(v, buf, n, iter & 1, false, &ids, &err);
        assert_true(ni >= 0);
        for (int k = 0; k < ni; k++) assert_true(ids[k] >= 0 && ids[k] < v->n_tokens);
        if (!bytes) {
            size_t bl;
            char *back = bn_detokenize(v, ids, ni, false, &bl);
            if (bl != n || memcmp(back, buf, n) != 0)
                fprintf(stderr, "random case %d: round trip differs ('%.*s')\n", iter, (int)n, buf);
            assert_true(bl == n && memcmp(back, buf, n) == 0);
            free(back);
        }
        free(ids);
    }
}

static void test_llama3_bpe(void **state) {
    (void)state;
    char ranks[4096], inp[4096], out[4096];
    const char *p = bt_shared_path("tokenizers/llama3-tokenizer.model");
    if (!p) bt_skip("../shared/data/tokenizers/llama3-tokenizer.model is absent");
    snprintf(ranks, sizeof ranks, "%s", p);
    p = bt_shared_path("tokenizers/llama3-bpe.inp");
    if (!p) bt_skip("../shared/data/tokenizers/llama3-bpe.inp is absent");
    snprintf(inp, sizeof inp, "%s", p);
    snprintf(out, sizeof out, "%s", bt_shared_path("tokenizers/llama3-bpe.out"));
    const char *vocab = bt_tmp_path("llama3-vocab.gguf");
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' vocab --from-tiktoken '%s' -o '%s'", BITNET_BIN, ranks, vocab);
    assert_int_equal(system(cmd), 0);

    gguf_file *f;
    bn_err err = {0};
    assert_int_equal(gguf_open(vocab, &f, &err), BN_OK);
    bn_vocab v;
    assert_int_equal(bn_vocab_load(&v, f, &err), BN_OK);
    assert_int_equal(v.n_tokens, 128256);
    assert_int_equal(v.bos, 128000);
    assert_int_equal(v.eos, 128001);
    assert_int_equal(v.eot, 128009);
    assert_int_equal(bn_vocab_find(&v, "<|start_header_id|>", 19), 128006);
    assert_int_equal(bn_vocab_find(&v, "<|end_header_id|>", 17), 128007);
    assert_int_equal(bn_vocab_find(&v, "<|reserved_special_token_5|>", 28), 128010);
    assert_int_equal(bn_vocab_find(&v, "<|reserved_special_token_250|>", 30), 128255);
    assert_int_equal(v.n_merges_skipped, 0);

    cases c;
    load_cases(&c, inp, out);
    check_cases(&v, &c, "llama3-bpe");
    check_random(&v, 1);

    /* BOS and special-token parsing */
    int32_t ids[16];
    const char *s = "<|start_header_id|>user<|end_header_id|>";
    int n = bn_tokenize(&v, s, strlen(s), true, true, ids, 16, &err);
    assert_int_equal(n, 4);
    assert_int_equal(ids[0], 128000);
    assert_int_equal(ids[1], 128006);
    assert_int_equal(ids[3], 128007);
    n = bn_tokenize(&v, s, strlen(s), false, false, ids, 16, &err);
    assert_true(n > 4); /* as plain text */
    free(c.inp);
    free(c.out);
    bn_vocab_free(&v);
    gguf_close(f);
}

static void test_llama_spm(void **state) {
    (void)state;
    const char *p = bt_shared_path("tokenizers/ggml-vocab-llama-spm.gguf");
    if (!p) bt_skip("../shared/data/tokenizers/ggml-vocab-llama-spm.gguf is absent");
    char path[4096], inp[4200], out[4200];
    snprintf(path, sizeof path, "%s", p);
    snprintf(inp, sizeof inp, "%s.inp", path);
    snprintf(out, sizeof out, "%s.out", path);
    gguf_file *f;
    bn_err err = {0};
    assert_int_equal(gguf_open(path, &f, &err), BN_OK);
    bn_vocab v;
    assert_int_equal(bn_vocab_load(&v, f, &err), BN_OK);
    assert_int_equal(v.kind, BN_VOCAB_SPM);
    cases c;
    load_cases(&c, inp, out);
    check_cases(&v, &c, "llama-spm");
    check_random(&v, 2);
    /* BOS first, and <s> parsed only when asked */
    int32_t ids[16];
    int n = bn_tokenize(&v, "<s>", 3, true, true, ids, 16, &err);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], v.bos);
    assert_int_equal(ids[1], v.bos);
    n = bn_tokenize(&v, "<s>", 3, false, false, ids, 16, &err);
    assert_true(n >= 2 && ids[0] != v.bos);
    free(c.inp);
    free(c.out);
    bn_vocab_free(&v);
    gguf_close(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_bpe),
        cmocka_unit_test(test_llama_spm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
