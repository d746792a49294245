/* tokenize.c - tokenizer throughput: tokenizes 1 MB (or -s MB) of mixed text
 * (English prose, code, numbers, whitespace runs, accented Latin, Cyrillic,
 * CJK and emoji, made by a fixed generator) on one core and reports MB/s, best
 * of several runs, and the detokenization speed.
 *
 *   build/bin/bench_tokenize VOCAB.gguf [-s MB] [-r RUNS]
 *
 * VOCAB.gguf: any model or vocabulary GGUF, e.g. the Llama 3 vocabulary from
 * `bitnet vocab --from-tiktoken ../shared/data/tokenizers/llama3-tokenizer.model
 * -o llama3.gguf`, or ../shared/data/tokenizers/ggml-vocab-llama-spm.gguf. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/tokenizer.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static const char *const words[] = {
    "the",       "of",      "and",           "to",        "in",        "is",          "that",
    "it",        "was",     "for",           "on",        "are",       "with",        "they",
    "be",        "at",      "one",           "have",      "this",      "from",        "language",
    "model",     "ternary", "weights",       "inference", "tokenizer", "performance", "memory",
    "bandwidth", "quickly", "understanding", "Hello",     "World",     "The",         "However",
    "don't",     "we're",   "it's",          "I'll",      "naïve",     "café",        "Führer",
    "déjà",      "вы",      "привет",        "мир",       "язык",      "модель",      "中文",
    "模型",      "语言",    "東京",          "日本語",    "🦙",      "🙂",        "🚀",
    "αβγ",       "λόγος",   "שלום",          "مرحبا",
};
static const char *const code[] = {
    "for (int i = 0; i < n; i++) {\n",
    "    sum += a[i] * b[i];\n",
    "}\n",
    "def f(x):\n    return x ** 2\n",
    "if (err != NULL) return -1;\n",
    "  // TODO: fix\n",
    "x = {\"key\": [1, 2, 3]}\n",
    "\t\treturn 0;\n",
};

static char *make_text(size_t size) {
    char *s = malloc(size + 64);
    uint64_t r = 0x9E3779B97F4A7C15ull;
    size_t n = 0;
    while (n < size) {
        uint64_t k = rng(&r) % 100;
        char buf[64];
        const char *piece;
        if (k < 70) {
            piece = words[rng(&r) % (sizeof words / sizeof words[0])];
            if (n > 0 && s[n - 1] != '\n' && s[n - 1] != ' ') s[n++] = ' ';
        } else if (k < 78) {
            snprintf(buf, sizeof buf, " %llu", (unsigned long long)(rng(&r) % 100000));
            piece = buf;
        } else if (k < 88) {
            static const char *const p[] = {",", ".", "!", "?", ";", ":", "...", " -", "\"", "'"};
            piece = p[rng(&r) % 10];
        } else if (k < 94) {
            piece = code[rng(&r) % (sizeof code / sizeof code[0])];
        } else if (k < 98) {
            piece = "\n";
        } else {
            piece = rng(&r) & 1 ? "\n\n" : "   ";
        }
        size_t l = strlen(piece);
        if (n + l > size) break;
        memcpy(s + n, piece, l);
        n += l;
    }
    while (n < size) s[n++] = ' ';
    s[n] = 0;
    return s;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    double mb = 1;
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc)
            mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!path)
            path = argv[i];
    }
    if (!path || mb <= 0 || runs < 1) {
        fprintf(stderr, "usage: bench_tokenize VOCAB.gguf [-s MB] [-r RUNS]\n");
        return 2;
    }
    bn_err err = {0};
    gguf_file *f;
    bn_vocab v;
    if (gguf_open(path, &f, &err) != BN_OK || bn_vocab_load(&v, f, &err) != BN_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    size_t size = (size_t)(mb * 1e6);
    char *text = make_text(size);
    double best = 1e9, best_d = 1e9;
    int n = 0;
    for (int r = 0; r < runs; r++) {
        int32_t *ids;
        double t0 = now();
        n = bn_tokenize_alloc(&v, text, size, false, false, &ids, &err);
        double dt = now() - t0;
        if (n < 0) {
            fprintf(stderr, "error: %s\n", err.msg);
            return 1;
        }
        if (dt < best) best = dt;
        size_t len;
        t0 = now();
        char *back = bn_detokenize(&v, ids, n, false, &len);
        dt = now() - t0;
        if (dt < best_d) best_d = dt;
        if (!back || len != size || memcmp(back, text, size) != 0) {
            fprintf(stderr, "error: the round trip does not give the text back\n");
            return 1;
        }
        free(back);
        free(ids);
    }
    printf("%s (%s, %d tokens): %.2f MB of mixed text -> %d tokens (%.2f bytes/token)\n", path,
           v.kind == BN_VOCAB_GPT2 ? "gpt2 BPE" : "SentencePiece", v.n_tokens, (double)size / 1e6,
           n, (double)size / n);
    printf("tokenize:   %7.2f MB/s  (%.3f s, best of %d, one core)\n", (double)size / 1e6 / best,
           best, runs);
    printf("detokenize: %7.2f MB/s\n", (double)size / 1e6 / best_d);
    free(text);
    bn_vocab_free(&v);
    gguf_close(f);
    return 0;
}
