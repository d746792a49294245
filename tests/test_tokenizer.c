/* test_tokenizer.c - the tokenizer's parts against expectations worked out by
 * hand: Unicode properties and UTF-8 decoding, GPT-2's byte alphabet, the
 * Llama 3 pre-tokenizer's splits, BPE merge order and SentencePiece scores on
 * small vocabularies built here, special-token parsing, the streaming
 * detokenizer, and the chat templates' token sequences. (The full vocabularies
 * against reference ids are in test_tokenizer_data.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "gguf.h"
#include "testutil.h"
#include "tokenizer.h"
#include "unicode.h"

/* ---- Unicode ---- */

static void test_unicode_flags(void **state) {
    (void)state;
    struct {
        uint32_t cp;
        unsigned want;
    } cases[] = {
        {'A', BN_UC_LETTER},
        {0xE9, BN_UC_LETTER},
        {0xDF, BN_UC_LETTER},   /* é ß */
        {0x4E2D, BN_UC_LETTER}, /* 中 */
        {0xAC00, BN_UC_LETTER},
        {0x20000, BN_UC_LETTER}, /* ranges in UnicodeData.txt */
        {'7', BN_UC_NUMBER},
        {0x663, BN_UC_NUMBER},
        {0xBD, BN_UC_NUMBER},   /* ٣ ½ */
        {0x2163, BN_UC_NUMBER}, /* Ⅳ */
        {'!', BN_UC_PUNCT},
        {0x20AC, BN_UC_SYMBOL},
        {0x1F999, BN_UC_SYMBOL}, /* € 🦙 */
        {0x301, BN_UC_MARK},
        {0xE000, BN_UC_OTHER},
        {0x378, 0}, /* unassigned */
        {0x110000, 0},
        {' ', BN_UC_SEP | BN_UC_SPACE},
        {0xA0, BN_UC_SEP | BN_UC_SPACE},
        {0x3000, BN_UC_SEP | BN_UC_SPACE},
        {0x2028, BN_UC_SEP | BN_UC_SPACE},
        {'\t', BN_UC_OTHER | BN_UC_SPACE},
        {0x85, BN_UC_OTHER | BN_UC_SPACE},
        {0x200B, BN_UC_OTHER}, /* zero width space: format, not White_Space */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (bn_uc_flags(cases[i].cp) != cases[i].want)
            fprintf(stderr, "U+%04X: flags 0x%02x, want 0x%02x\n", cases[i].cp,
                    bn_uc_flags(cases[i].cp), cases[i].want);
        assert_int_equal(bn_uc_flags(cases[i].cp), cases[i].want);
    }
}

static void test_utf8(void **state) {
    (void)state;
    uint32_t cp;
    assert_int_equal(bn_utf8_decode((const uint8_t *)"\xc3\xa9", 2, &cp), 2);
    assert_int_equal(cp, 0xE9);
    assert_int_equal(bn_utf8_decode((const uint8_t *)"\xf0\x9f\xa6\x99", 4, &cp), 4);
    assert_int_equal(cp, 0x1F999);
    const char *bad[] = {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "\xe2\x82", "\x80",         "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(bn_utf8_decode((const uint8_t *)bad[i], strlen(bad[i]), &cp), 1);
        assert_int_equal(cp, BN_UC_INVALID);
    }
    char buf[4];
    assert_int_equal(bn_utf8_encode(0x1F999, buf), 4);
    assert_memory_equal(buf, "\xf0\x9f\xa6\x99", 4);
}

/* GPT-2's bytes_to_unicode, written out here independently: printable bytes stay,
 * the others get 256, 257, ... in byte order. */
static uint32_t ref_byte_cp(int b) {
    int n = 0;
    for (int c = 0; c < 256; c++) {
        bool printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE);
        if (c == b) return printable ? (uint32_t)c : 256u + (uint32_t)n;
        if (!printable) n++;
    }
    return 0;
}

static void test_gpt2_bytes(void **state) {
    (void)state;
    assert_int_equal(bn_gpt2_byte_to_cp(' '), 0x120);  /* Ġ */
    assert_int_equal(bn_gpt2_byte_to_cp('\n'), 0x10A); /* Ċ */
    assert_int_equal(bn_gpt2_byte_to_cp(0xAD), 0x143);
    for (int b = 0; b < 256; b++) {
        assert_int_equal(bn_gpt2_byte_to_cp((uint8_t)b), ref_byte_cp(b));
        assert_int_equal(bn_gpt2_cp_to_byte(ref_byte_cp(b)), b);
    }
    assert_int_equal(bn_gpt2_cp_to_byte(0xAD), -1);
    assert_int_equal(bn_gpt2_cp_to_byte(256 + 68), -1);
}

/* ---- the Llama 3 pre-tokenizer ---- */

typedef struct pieces {
    const char *text;
    char out[1024];
    size_t o;
} pieces;

static void collect(void *ctx, size_t s, size_t e) {
    pieces *p = ctx;
    p->o +=
        (size_t)snprintf(p->out + p->o, sizeof p->out - p->o, "[%.*s]", (int)(e - s), p->text + s);
}

static void test_llama3_split(void **state) {
    (void)state;
    const char *cases[][2] = {
        {"Hello world", "[Hello][ world]"},
        {"I'm here", "[I]['m][ here]"},
        {"they'LL 'RE 'x", "[they]['LL][ '][RE][ '][x]"}, /* " '" is a punctuation run */
        {"'\xc5\xbf", "['\xc5\xbf]"},                     /* 'ſ: long s folds to s */
        {"  Hello", "[ ][ Hello]"},
        {"a  \n\n  b", "[a][  \n\n][ ][ b]"},
        {"12345", "[123][45]"},
        {"hello!!! ok", "[hello][!!!][ ok]"},
        {" ?!\n\nx", "[ ?!\n\n][x]"},
        {"x   ", "[x][   ]"},
        {"$100", "[$][100]"},
        {"\tfoo", "[\tfoo]"},
        {"\nfoo", "[\n][foo]"},
        {"\xd0\xbd\xd0\xb5\xd1\x89\xd0\xbe", "[\xd0\xbd\xd0\xb5\xd1\x89\xd0\xbe]"},   /* нещо */
        {"\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6", "[\xd9\xa3\xd9\xa4\xd9\xa5][\xd9\xa6]"}, /* ٣٤٥٦ */
        {"a\xc2\xa0"
         "b",
         "[a][\xc2\xa0"
         "b]"}, /* no-break space: a prefix like ' ' */
        {"a \xf0\x9f\xa6\x99.cpp", "[a][ \xf0\x9f\xa6\x99.][cpp]"},
        {"x\r\n\r\ny", "[x][\r\n\r\n][y]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pieces p = {.text = cases[i][0]};
        assert_true(bn_llama3_split(p.text, strlen(p.text), collect, &p));
        if (strcmp(p.out, cases[i][1]))
            fprintf(stderr, "split '%s': got %s, want %s\n", cases[i][0], p.out, cases[i][1]);
        assert_string_equal(p.out, cases[i][1]);
    }
}

/* ---- small vocabularies ---- */

typedef struct tiny {
    gguf_file *f;
    bn_vocab v;
} tiny;

static void tiny_open(tiny *t, gguf_writer *w, const char *name) {
    bn_err err = {0};
    const char *path = bt_tmp_path(name);
    assert_int_equal(gguf_writer_begin(w, path, &err), BN_OK);
    assert_int_equal(gguf_writer_finish(w, &err), BN_OK);
    gguf_writer_free(w);
    assert_int_equal(gguf_open(path, &t->f, &err), BN_OK);
    if (bn_vocab_load(&t->v, t->f, &err) != BN_OK) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(err.code, BN_OK);
}

static void tiny_close(tiny *t) {
    bn_vocab_free(&t->v);
    gguf_close(t->f);
}

/* gpt2: ids 0..255 the bytes (byte-level text), then extra tokens, then merges. */
static void gpt2_vocab(tiny *t, const char *const *extra, int n_extra, const int32_t *extra_types,
                       const char *const *merges, int n_merges) {
    static char texts[256][4];
    const char *toks[300];
    int32_t types[300];
    for (int b = 0; b < 256; b++) {
        uint32_t cp = ref_byte_cp(b);
        if (cp < 0x80) {
            texts[b][0] = (char)cp;
            texts[b][1] = 0;
        } else { /* all below U+0800 */
            texts[b][0] = (char)(0xC0 | (cp >> 6));
            texts[b][1] = (char)(0x80 | (cp & 0x3F));
            texts[b][2] = 0;
        }
        toks[b] = texts[b];
        types[b] = 1;
    }
    for (int i = 0; i < n_extra; i++) {
        toks[256 + i] = extra[i];
        types[256 + i] = extra_types ? extra_types[i] : 1;
    }
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)(256 + n_extra));
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, (uint64_t)(256 + n_extra));
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, (uint64_t)n_merges);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    tiny_open(t, w, "tiny-gpt2.gguf");
}

static int tok(const bn_vocab *v, const char *s, bool special, int32_t *ids) {
    bn_err err = {0};
    int n = bn_tokenize(v, s, strlen(s), false, special, ids, 64, &err);
    assert_true(n >= 0 && n <= 64);
    return n;
}

static void test_bpe_merge_order(void **state) {
    (void)state;
    const char *extra[] = {"ab", "bc", "abc", "aa"}; /* ids 256..259 */
    tiny t;
    int32_t ids[64];
    /* "a b" first: abcb -> ab c b -> abc b */
    const char *m1[] = {"a b", "b c", "ab c", "a a"};
    gpt2_vocab(&t, extra, 4, NULL, m1, 4);
    assert_int_equal(t.v.n_merges, 4);
    assert_int_equal(tok(&t.v, "abcb", false, ids), 2);
    assert_int_equal(ids[0], 258);
    assert_int_equal(ids[1], 'b');
    /* a piece that is a token is taken whole, whatever the merges say */
    assert_int_equal(tok(&t.v, "abc", false, ids), 1);
    assert_int_equal(ids[0], 258);
    /* equal pairs merge leftmost first: aaa -> aa a */
    assert_int_equal(tok(&t.v, "aaa", false, ids), 2);
    assert_int_equal(ids[0], 259);
    assert_int_equal(ids[1], 'a');
    /* a space becomes its byte token (Ġ); " ab" is one piece: Ġ ab */
    assert_int_equal(tok(&t.v, " ab", false, ids), 2);
    assert_int_equal(ids[0], ' ');
    assert_int_equal(ids[1], 256);
    tiny_close(&t);

    /* "b c" first: abcb -> a bc b, and no merge joins a+bc */
    const char *m2[] = {"b c", "a b", "ab c"};
    gpt2_vocab(&t, extra, 4, NULL, m2, 3);
    assert_int_equal(tok(&t.v, "abcb", false, ids), 3);
    assert_int_equal(ids[0], 'a');
    assert_int_equal(ids[1], 257);
    assert_int_equal(ids[2], 'b');
    tiny_close(&t);

    /* a merge naming a missing token is skipped, not fatal */
    const char *m3[] = {"a q9", "a b"};
    gpt2_vocab(&t, extra, 4, NULL, m3, 2);
    assert_int_equal(t.v.n_merges, 1);
    assert_int_equal(t.v.n_merges_skipped, 1);
    tiny_close(&t);
}

static void test_special_tokens(void **state) {
    (void)state;
    const char *extra[] = {"<|x|>", "<u>", "<|x|>y"};
    int32_t types[] = {BN_TOKEN_CONTROL, BN_TOKEN_USER_DEFINED, BN_TOKEN_CONTROL};
    tiny t;
    int32_t ids[64];
    gpt2_vocab(&t, extra, 3, types, NULL, 0);
    /* control tokens only when asked; user-defined always; longest match first */
    int n = tok(&t.v, "a<|x|>y<u>", true, ids);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 'a');
    assert_int_equal(ids[1], 258);
    assert_int_equal(ids[2], 257);
    n = tok(&t.v, "a<|x|>b<u>", false, ids);
    assert_int_equal(n, 8); /* a < | x | > b as bytes, then <u> */
    assert_int_equal(ids[1], '<');
    assert_int_equal(ids[7], 257);
    /* control tokens give no text unless asked */
    size_t len;
    int32_t seq[] = {'a', 256, 'b'};
    char *s = bn_detokenize(&t.v, seq, 3, false, &len);
    assert_string_equal(s, "ab");
    free(s);
    s = bn_detokenize(&t.v, seq, 3, true, &len);
    assert_string_equal(s, "a<|x|>b");
    free(s);
    tiny_close(&t);
}

static void test_detok_stream(void **state) {
    (void)state;
    tiny t;
    gpt2_vocab(&t, NULL, 0, NULL, NULL, 0);
    bn_detok d;
    bn_detok_init(&d, &t.v, false);
    char out[64];
    /* é = C3 A9 split over two tokens: nothing, then the whole character */
    assert_int_equal(bn_detok_push(&d, 0xC3, out), 0);
    assert_int_equal(bn_detok_push(&d, 0xA9, out), 2);
    assert_memory_equal(out, "\xc3\xa9", 2);
    /* 🦙 over four tokens */
    const uint8_t llama[] = {0xF0, 0x9F, 0xA6, 0x99};
    for (int i = 0; i < 3; i++) assert_int_equal(bn_detok_push(&d, llama[i], out), 0);
    assert_int_equal(bn_detok_push(&d, llama[3], out), 4);
    /* a broken sequence becomes U+FFFD and the next byte still counts */
    assert_int_equal(bn_detok_push(&d, 0xC3, out), 0);
    assert_int_equal(bn_detok_push(&d, 'a', out), 4);
    assert_memory_equal(out,
                        "\xef\xbf\xbd"
                        "a",
                        4);
    assert_int_equal(bn_detok_push(&d, 0xFF, out), 3); /* never valid */
    assert_int_equal(bn_detok_push(&d, 0xE2, out), 0);
    assert_int_equal(bn_detok_flush(&d, out), 3);       /* left incomplete at the end */
    assert_int_equal(bn_detok_push(&d, 99999, out), 0); /* out of range: nothing */
    tiny_close(&t);
}

/* spm: <unk> <s> </s>, <0x00>..<0xFF> (3..258), then pieces with scores */
/* extra: an optional sixth piece (id 264) with score -0.5 */
static void spm_vocab(tiny *t, float score_ab, float score_sa, const char *extra) {
    const char *toks[270];
    float scores[270];
    int32_t types[270];
    static char bytes[256][8];
    toks[0] = "<unk>", toks[1] = "<s>", toks[2] = "</s>";
    types[0] = BN_TOKEN_UNKNOWN, types[1] = types[2] = BN_TOKEN_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[3 + b] = bytes[b];
        types[3 + b] = BN_TOKEN_BYTE;
    }
    const char *pieces[] = {"\xe2\x96\x81",
                            "a",
                            "b",
                            "\xe2\x96\x81"
                            "a",
                            "ab",
                            extra};
    float sc[] = {-1, -2, -3, score_sa, score_ab, -0.5f};
    int np = extra ? 6 : 5;
    for (int i = 0; i < np; i++) {
        toks[259 + i] = pieces[i];
        types[259 + i] = BN_TOKEN_NORMAL;
    }
    for (int i = 0; i < 259 + np; i++) scores[i] = i >= 259 ? sc[i - 259] : 0;
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)(259 + np));
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_F32, scores, (uint64_t)(259 + np));
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, (uint64_t)(259 + np));
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    tiny_open(t, w, "tiny-spm.gguf");
}

static void test_spm(void **state) {
    (void)state;
    tiny t;
    int32_t ids[64];
    enum { SP = 259, A = 260, B = 261, SA = 262, AB = 263 };
    spm_vocab(&t, -4, -5, NULL); /* "ab" scores higher than "▁a": ▁ ab */
    assert_int_equal(tok(&t.v, "ab", false, ids), 2);
    assert_int_equal(ids[0], SP);
    assert_int_equal(ids[1], AB);
    tiny_close(&t);
    spm_vocab(&t, -5, -4, NULL); /* "▁a" higher: ▁a b */
    assert_int_equal(tok(&t.v, "ab", false, ids), 2);
    assert_int_equal(ids[0], SA);
    assert_int_equal(ids[1], B);
    /* spaces are U+2581; é has no piece: its bytes */
    assert_int_equal(tok(&t.v, "b \xc3\xa9", false, ids), 5);
    assert_int_equal(ids[0], SP);
    assert_int_equal(ids[1], B);
    assert_int_equal(ids[2], SP);
    assert_int_equal(ids[3], 3 + 0xC3);
    assert_int_equal(ids[4], 3 + 0xA9);
    /* decoding drops the space prefix and rejoins the bytes */
    size_t len;
    char *s = bn_detokenize(&t.v, ids, 5, false, &len);
    assert_string_equal(s, "b \xc3\xa9");
    free(s);
    /* BOS; <s> parsed only when asked, and the text after it gets the prefix again */
    bn_err err = {0};
    int n = bn_tokenize(&t.v, "<s>a", 4, true, true, ids, 64, &err);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 1);
    assert_int_equal(ids[2], SA);
    assert_int_equal(tok(&t.v, "", false, ids), 0);
    assert_true(t.v.spm_words);
    tiny_close(&t);
    /* a piece with U+2581 inside ("b▁") lets merges cross the start of a word */
    spm_vocab(&t, -5, -4, "b\xe2\x96\x81");
    assert_false(t.v.spm_words);
    assert_int_equal(tok(&t.v, "b b", false, ids), 3);
    assert_int_equal(ids[0], SP);
    assert_int_equal(ids[1], 264);
    assert_int_equal(ids[2], B);
    tiny_close(&t);
}

static void test_chat_templates(void **state) {
    (void)state;
    const char *extra[] = {"<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                           "<|end_header_id|>", "<|end_of_text|>"};
    int32_t types[] = {3, 3, 3, 3, 3};
    enum { BOT = 256, EOT = 257, SH = 258, EH = 259 };
    tiny t;
    gpt2_vocab(&t, extra, 5, types, NULL, 0);
    bn_err err = {0};
    bn_chat c;
    /* Llama 3: header ids around the role, "\n\n" + content, eot */
    assert_int_equal(bn_chat_detect(NULL, 0, &t.v), BN_CHAT_LLAMA3);
    assert_int_equal(bn_chat_init(&c, BN_CHAT_LLAMA3, &t.v, &err), BN_OK);
    bn_idvec out = {0};
    assert_int_equal(bn_chat_message(&c, BN_ROLE_USER, "  Hi ", &out, &err), BN_OK);
    assert_int_equal(bn_chat_reply_prompt(&c, &out, &err), BN_OK);
    /* "\n" is byte 10, and in this vocabulary a byte's token id is the byte */
    const int32_t want[] = {SH,  'u', 's', 'e', 'r', EH,  10,  10,  'H', 'i', EOT, SH,
                            'a', 's', 's', 'i', 's', 't', 'a', 'n', 't', EH,  10,  10};
    assert_int_equal(out.n, 24);
    assert_memory_equal(out.p, want, sizeof want);
    assert_true(bn_chat_is_stop(&c, EOT));
    out.n = 0;
    /* BitNet 2B-4T: "User: Hi" eot, "Assistant: " */
    const char *tmpl = bn_chat_template_text(BN_CHAT_BITNET);
    assert_int_equal(bn_chat_detect(tmpl, strlen(tmpl), &t.v), BN_CHAT_BITNET);
    assert_int_equal(bn_chat_init(&c, BN_CHAT_BITNET, &t.v, &err), BN_OK);
    assert_int_equal(bn_chat_message(&c, BN_ROLE_USER, "Hi", &out, &err), BN_OK);
    assert_int_equal(bn_chat_reply_prompt(&c, &out, &err), BN_OK);
    size_t len;
    char *s = bn_detokenize(&t.v, out.p, out.n, true, &len);
    assert_string_equal(s, "User: Hi<|eot_id|>Assistant: ");
    free(s);
    assert_int_equal(out.p[8], EOT);
    out.n = 0;
    /* the user's "<|eot_id|>" stays text */
    assert_int_equal(bn_chat_message(&c, BN_ROLE_USER, "<|eot_id|>", &out, &err), BN_OK);
    for (int i = 0; i + 1 < out.n; i++) assert_true(out.p[i] < 256);
    out.n = 0;
    /* the older BitNet form ends replies with EOS, which this vocabulary lacks */
    tmpl = bn_chat_template_text(BN_CHAT_BITNET_OLD);
    assert_int_equal(bn_chat_detect(tmpl, strlen(tmpl), &t.v), BN_CHAT_BITNET_OLD);
    assert_int_equal(bn_chat_init(&c, BN_CHAT_BITNET_OLD, &t.v, &err), BN_ERR_UNSUPPORTED);
    tmpl = bn_chat_template_text(BN_CHAT_LLAMA3);
    assert_int_equal(bn_chat_detect(tmpl, strlen(tmpl), &t.v), BN_CHAT_LLAMA3);
    free(out.p);
    tiny_close(&t);

    spm_vocab(&t, -4, -5, NULL);
    assert_int_equal(bn_chat_detect(NULL, 0, &t.v), BN_CHAT_BITNET_OLD);
    assert_int_equal(bn_chat_init(&c, BN_CHAT_BITNET_OLD, &t.v, &err), BN_OK);
    bn_idvec o2 = {0};
    assert_int_equal(bn_chat_message(&c, BN_ROLE_USER, "a", &o2, &err), BN_OK);
    s = bn_detokenize(&t.v, o2.p, o2.n, false, &len);
    assert_string_equal(s, "Human: a\n\nBITNETAssistant: ");
    free(s);
    bn_chat_reply_end(&c, &o2);
    assert_int_equal(o2.p[o2.n - 1], 2);
    free(o2.p);
    tiny_close(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unicode_flags),   cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_gpt2_bytes),      cmocka_unit_test(test_llama3_split),
        cmocka_unit_test(test_bpe_merge_order), cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_detok_stream),    cmocka_unit_test(test_spm),
        cmocka_unit_test(test_chat_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
