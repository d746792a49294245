/* fuzz_tokenizer.c - libFuzzer target: arbitrary bytes as text through the
 * tokenizer of every vocabulary listed in BITNET_FUZZ_VOCABS (colon-separated
 * GGUF paths; scripts/fuzz.sh passes the shared SentencePiece vocabulary, the
 * Llama-3 vocabulary built from the shared ranks and the demo model), with and
 * without special-token parsing, then back through the streaming detokenizer,
 * and as message content through every chat template the vocabulary allows.
 * Checks: no crash, every id in range, byte-level BPE round-trips exactly. */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/chat.h"
#include "../../core/gguf.h"
#include "../../core/tokenizer.h"
#include "../../core/vocab.h"

#define MAX_VOCABS 8

static gguf_file *files[MAX_VOCABS];
static bn_vocab vocabs[MAX_VOCABS];
static int n_vocabs;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *list = getenv("BITNET_FUZZ_VOCABS");
    if (!list || !*list) {
        fprintf(stderr, "fuzz_tokenizer: set BITNET_FUZZ_VOCABS to vocabulary GGUF paths\n");
        exit(1);
    }
    char *copy = strdup(list);
    for (char *p = strtok(copy, ":"); p && n_vocabs < MAX_VOCABS; p = strtok(NULL, ":")) {
        bn_err err = {0};
        if (gguf_open(p, &files[n_vocabs], &err) != BN_OK ||
            bn_vocab_load(&vocabs[n_vocabs], files[n_vocabs], &err) != BN_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s: %s\n", p, err.msg);
            exit(1);
        }
        n_vocabs++;
    }
    free(copy);
    return 0;
}

static void check_vocab(const bn_vocab *v, const uint8_t *data, size_t size) {
    /* the text as a NUL-terminated string for the chat API */
    char *text = malloc(size + 1);
    if (!text) return;
    memcpy(text, data, size);
    text[size] = 0;
    for (int special = 0; special < 2; special++) {
        int32_t *ids = NULL;
        bn_err err = {0};
        int n = bn_tokenize_alloc(v, text, size, false, special, &ids, &err);
        if (n < 0) continue;
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= v->n_tokens) __builtin_trap();
        size_t len = 0;
        char *back = bn_detokenize(v, ids, n, special, &len);
        /* byte-level BPE without special tokens maps every byte string to itself */
        if (back && v->kind == BN_VOCAB_GPT2 && !special &&
            (len != size || memcmp(back, data, size) != 0)) {
            /* only valid UTF-8 is promised to round-trip (the decoder replaces the rest) */
            bool ascii = true;
            for (size_t i = 0; i < size; i++) ascii &= data[i] > 0 && data[i] < 0x80;
            if (ascii) __builtin_trap();
        }
        free(back);
        free(ids);
    }
    for (int k = 0; k < 3; k++) {
        bn_chat c;
        bn_err err = {0};
        if (bn_chat_init(&c, (bn_chat_kind)k, v, &err) != BN_OK) continue;
        bn_idvec out = {0};
        if (bn_chat_message(&c, BN_ROLE_USER, text, &out, &err) == BN_OK)
            bn_chat_reply_prompt(&c, &out, &err);
        for (int i = 0; i < out.n; i++)
            if (out.p[i] < 0 || out.p[i] >= v->n_tokens) __builtin_trap();
        free(out.p);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    for (int i = 0; i < n_vocabs; i++) check_vocab(&vocabs[i], data, size);
    return 0;
}
