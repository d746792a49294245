/* cmd_vocab.c - `bitnet vocab --from-tiktoken`: builds a vocabulary-only GGUF
 * from a tiktoken rank file (one "base64(token) rank" per line, ranks 0..n-1),
 * such as Llama 3's tokenizer.model.
 *
 * Tokens are written as byte-level BPE strings (GPT-2's byte alphabet). The
 * merges are derived from the ranks the way Hugging Face converts tiktoken
 * files: for every token of two or more bytes, each split into a left and a
 * right part that are both tokens is a merge; merges are ordered by the rank of
 * the token they make, then by the ranks of the left and the right part. Llama
 * 3's 256 special tokens follow the ranks (<|begin_of_text|> first). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/chat.h"
#include "../core/gguf.h"
#include "../core/unicode.h"
#include "cli.h"

typedef struct tok {
    const uint8_t *p; /* decoded bytes, inside the decode buffer */
    uint32_t len;
} tok;

typedef struct merge {
    int32_t rank, left, right;
} merge;

static int b64_value(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (padding optional) into out; returns the length or -1. */
static long b64_decode(const char *s, size_t n, uint8_t *out) {
    while (n > 0 && s[n - 1] == '=') n--;
    if (n % 4 == 1) return -1;
    long o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((uint8_t)s[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

static uint32_t hash_bytes(const uint8_t *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

/* rank of the token with bytes s[0..n), or -1 (open addressing over ranks) */
static int find_rank(const tok *t, const int32_t *table, uint32_t mask, const uint8_t *s,
                     size_t n) {
    for (uint32_t h = hash_bytes(s, n) & mask;; h = (h + 1) & mask) {
        int32_t r = table[h];
        if (r < 0) return -1;
        if (t[r].len == n && memcmp(t[r].p, s, n) == 0) return r;
    }
}

static int cmp_merge(const void *pa, const void *pb) {
    const merge *a = pa, *b = pb;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    if (a->left != b->left) return a->left < b->left ? -1 : 1;
    return (a->right > b->right) - (a->right < b->right);
}

/* Byte-level text of bytes p[0..n) (each byte as its GPT-2 code point), malloc'd. */
static char *byte_level(const uint8_t *p, size_t n) {
    char *s = malloc(2 * n + 1);
    if (!s) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += (size_t)bn_utf8_encode(bn_gpt2_byte_to_cp(p[i]), s + o);
    s[o] = 0;
    return s;
}

/* Llama 3's special tokens, ids n .. n+255. */
static void llama3_special(int i, char *buf, size_t cap) {
    static const char *const first[10] = {"<|begin_of_text|>",
                                          "<|end_of_text|>",
                                          "<|reserved_special_token_0|>",
                                          "<|reserved_special_token_1|>",
                                          "<|reserved_special_token_2|>",
                                          "<|reserved_special_token_3|>",
                                          "<|start_header_id|>",
                                          "<|end_header_id|>",
                                          "<|reserved_special_token_4|>",
                                          "<|eot_id|>"};
    if (i < 10)
        snprintf(buf, cap, "%s", first[i]);
    else
        snprintf(buf, cap, "<|reserved_special_token_%d|>", i - 5);
}

static void vocab_usage(FILE *o) {
    fprintf(o, "usage: bitnet vocab --from-tiktoken RANKS_FILE -o FILE [options]\n\n"
               "Builds a vocabulary-only GGUF (tokenizer.ggml.model gpt2, Llama 3's\n"
               "pre-tokenizer) from a tiktoken rank file: one 'base64(token) rank' per line,\n"
               "ranks 0..n-1, e.g. Llama 3's tokenizer.model. Merges are derived from the\n"
               "ranks; Llama 3's 256 special tokens follow (<|begin_of_text|> = n, ...,\n"
               "<|eot_id|> = n+9). Use the file with bitnet tokenize -m, or bitnet gen --vocab.\n\n"
               "options:\n"
               "  --from-tiktoken FILE   the rank file\n"
               "  -o, --output FILE      where to write the GGUF\n"
               "  --no-special           do not add Llama 3's special tokens\n"
               "  --chat-template NAME   write tokenizer.chat_template: bitnet (BitNet\n"
               "                         2B-4T), bitnet-old, llama3; default none (chat then\n"
               "                         uses the Llama 3 template)\n"
               "  -h, --help             this help\n");
}

int cmd_vocab(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *tmpl = NULL;
    bool special = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            vocab_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--from-tiktoken")) {
            if (!(in = cli_value("vocab", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out = cli_value("vocab", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--chat-template")) {
            if (!(tmpl = cli_value("vocab", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--no-special")) {
            special = false;
        } else {
            return cli_usage_error("vocab", "unknown option '%s'", a);
        }
    }
    if (!in || !out)
        return cli_usage_error("vocab", "--from-tiktoken FILE and -o FILE are required");
    bn_chat_kind kind = BN_CHAT_LLAMA3;
    if (tmpl && !bn_chat_kind_from_name(tmpl, &kind))
        return cli_usage_error(
            "vocab", "--chat-template must be bitnet, bitnet-old or llama3, not '%s'", tmpl);

    int rc = 1;
    char *text = NULL;
    uint8_t *dec = NULL;
    tok *toks = NULL;
    int32_t *table = NULL, *types = NULL;
    merge *merges = NULL;
    char **strs = NULL, **mstrs = NULL;
    size_t n_merges = 0, cap_merges = 0;
    int n = 0, n_total = 0;
    gguf_writer *w = NULL;
    bn_err err = {0};

    FILE *f = fopen(in, "rb");
    if (!f) return cli_error("cannot open '%s'", in);
    size_t size = 0, cap = 1 << 20;
    text = malloc(cap + 1);
    for (size_t got; text && (got = fread(text + size, 1, cap - size, f)) > 0;) {
        size += got;
        if (size == cap) {
            char *t = realloc(text, 2 * cap + 1);
            if (!t) {
                free(text);
                text = NULL;
                break;
            }
            text = t;
            cap *= 2;
        }
    }
    bool read_err = ferror(f);
    fclose(f);
    if (!text) {
        cli_error("out of memory reading '%s'", in);
        goto done;
    }
    if (read_err) {
        cli_error("cannot read '%s'", in);
        goto done;
    }
    text[size] = 0;

    /* count lines, then decode each "base64 rank" */
    int lines = 0;
    for (size_t i = 0; i < size; i++) lines += text[i] == '\n';
    lines++;
    if (lines > (1 << 24)) {
        cli_error("'%s' has %d lines; at most 2^24 tokens are supported", in, lines);
        goto done;
    }
    toks = calloc((size_t)lines, sizeof *toks);
    dec = malloc(size + 1);
    if (!toks || !dec) {
        cli_error("out of memory");
        goto done;
    }
    size_t dpos = 0;
    int line_no = 0;
    for (size_t i = 0; i < size;) {
        size_t e = i;
        while (e < size && text[e] != '\n') e++;
        line_no++;
        size_t le = e;
        if (le > i && text[le - 1] == '\r') le--;
        if (le > i) {
            const char *sp = memchr(text + i, ' ', le - i);
            long long rank;
            if (!sp) {
                cli_error("%s:%d: expected 'base64 rank'", in, line_no);
                goto done;
            }
            char num[32];
            size_t nl = le - (size_t)(sp + 1 - text);
            if (nl == 0 || nl >= sizeof num) {
                cli_error("%s:%d: bad rank", in, line_no);
                goto done;
            }
            memcpy(num, sp + 1, nl);
            num[nl] = 0;
            if (!cli_parse_int(num, 0, lines - 1, &rank)) {
                cli_error("%s:%d: rank '%s' is not an integer in [0, %d]", in, line_no, num,
                          lines - 1);
                goto done;
            }
            long len = b64_decode(text + i, (size_t)(sp - (text + i)), dec + dpos);
            if (len <= 0) {
                cli_error("%s:%d: the token is not valid base64 (or empty)", in, line_no);
                goto done;
            }
            if (toks[rank].p) {
                cli_error("%s:%d: rank %lld appears twice", in, line_no, rank);
                goto done;
            }
            toks[rank].p = dec + dpos;
            toks[rank].len = (uint32_t)len;
            dpos += (size_t)len;
            if (rank + 1 > n) n = (int)rank + 1;
        }
        i = e + 1;
    }
    if (n == 0) {
        cli_error("'%s' holds no tokens", in);
        goto done;
    }
    for (int r = 0; r < n; r++)
        if (!toks[r].p) {
            cli_error("'%s': rank %d is missing (ranks must be 0..%d without gaps)", in, r, n - 1);
            goto done;
        }

    /* index by bytes */
    uint32_t tcap = 16;
    while (tcap < 2u * (uint32_t)n) tcap <<= 1;
    table = malloc(sizeof(int32_t) * tcap);
    if (!table) {
        cli_error("out of memory");
        goto done;
    }
    memset(table, 0xff, sizeof(int32_t) * tcap);
    for (int r = 0; r < n; r++) {
        uint32_t h = hash_bytes(toks[r].p, toks[r].len) & (tcap - 1);
        while (table[h] >= 0) {
            const tok *o = &toks[table[h]];
            if (o->len == toks[r].len && memcmp(o->p, toks[r].p, o->len) == 0) {
                cli_error("'%s': ranks %d and %d are the same token", in, table[h], r);
                goto done;
            }
            h = (h + 1) & (tcap - 1);
        }
        table[h] = r;
    }
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        if (find_rank(toks, table, tcap - 1, &byte, 1) < 0) {
            cli_error("'%s' has no token for byte 0x%02X (a byte-level BPE needs all 256)", in, b);
            goto done;
        }
    }

    /* merges: every split of a token into two tokens */
    for (int r = 0; r < n; r++) {
        for (uint32_t k = 1; k < toks[r].len; k++) {
            int l = find_rank(toks, table, tcap - 1, toks[r].p, k);
            if (l < 0) continue;
            int rr = find_rank(toks, table, tcap - 1, toks[r].p + k, toks[r].len - k);
            if (rr < 0) continue;
            if (n_merges == cap_merges) {
                cap_merges = cap_merges ? 2 * cap_merges : 1 << 16;
                merge *m = realloc(merges, sizeof *merges * cap_merges);
                if (!m) {
                    cli_error("out of memory");
                    goto done;
                }
                merges = m;
            }
            merges[n_merges++] = (merge){r, l, rr};
        }
    }
    qsort(merges, n_merges, sizeof *merges, cmp_merge);

    n_total = n + (special ? 256 : 0);
    strs = calloc((size_t)n_total, sizeof *strs);
    types = malloc(sizeof(int32_t) * (size_t)n_total);
    mstrs = calloc(n_merges ? n_merges : 1, sizeof *mstrs);
    if (!strs || !types || !mstrs) {
        cli_error("out of memory");
        goto done;
    }
    for (int r = 0; r < n; r++) {
        if (!(strs[r] = byte_level(toks[r].p, toks[r].len))) {
            cli_error("out of memory");
            goto done;
        }
        types[r] = 1; /* normal */
    }
    for (int i = 0; special && i < 256; i++) {
        char buf[64];
        llama3_special(i, buf, sizeof buf);
        if (!(strs[n + i] = strdup(buf))) {
            cli_error("out of memory");
            goto done;
        }
        types[n + i] = 3; /* control */
    }
    for (size_t i = 0; i < n_merges; i++) {
        const char *l = strs[merges[i].left], *r = strs[merges[i].right];
        size_t ll = strlen(l), lr = strlen(r);
        if (!(mstrs[i] = malloc(ll + lr + 2))) {
            cli_error("out of memory");
            goto done;
        }
        memcpy(mstrs[i], l, ll);
        mstrs[i][ll] = ' ';
        memcpy(mstrs[i] + ll + 1, r, lr + 1);
    }

    w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.name", "Llama 3 vocabulary (bitnet vocab --from-tiktoken)");
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "llama-bpe");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs,
                            (uint64_t)n_total);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, (uint64_t)n_total);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mstrs, n_merges);
    if (special) {
        gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)n);
        gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)n + 1);
        gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)n + 9);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    } else {
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    }
    if (tmpl) gguf_writer_set_str(w, "tokenizer.chat_template", bn_chat_template_text(kind));
    if (gguf_writer_begin(w, out, &err) != BN_OK || gguf_writer_finish(w, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    fprintf(stderr, "wrote %s: %d tokens (%d ranks%s), %zu merges\n", out, n_total, n,
            special ? " + 256 special" : "", n_merges);
    rc = 0;
done:
    gguf_writer_free(w);
    if (strs)
        for (int i = 0; i < n_total; i++) free(strs[i]);
    if (mstrs)
        for (size_t i = 0; i < n_merges; i++) free(mstrs[i]);
    free(strs);
    free(mstrs);
    free(types);
    free(merges);
    free(table);
    free(toks);
    free(dec);
    free(text);
    return rc;
}

bn_status cli_copy_tokenizer(gguf_writer *w, const gguf_file *f, int *n_tokens, bn_err *err) {
    gguf_array toks;
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", &toks, err) != BN_OK) return err->code;
    if (toks.elem_type != GGUF_STRING || toks.count == 0 || toks.count > (1u << 24))
        return bn_fail(err, BN_ERR_FORMAT, "tokenizer.ggml.tokens is not 1 to 2^24 strings");
    *n_tokens = (int)toks.count;
    for (uint64_t i = 0; i < gguf_kv_count(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10) != 0 || kv->key.len > 255)
            continue;
        char key[256];
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = 0;
        const gguf_value *v = &kv->value;
        if (v->type == GGUF_STRING) {
            char *s = strndup(v->v.str.ptr, v->v.str.len);
            if (!s) return bn_fail(err, BN_ERR_OOM, "out of memory");
            gguf_writer_set_str(w, key, s);
            free(s);
        } else if (v->type == GGUF_ARRAY && v->v.arr.elem_type == GGUF_STRING) {
            uint64_t n = v->v.arr.count;
            const char **p = malloc(sizeof *p * (n ? n : 1));
            uint64_t *lens = malloc(sizeof *lens * (n ? n : 1));
            if (!p || !lens) {
                free(p);
                free(lens);
                return bn_fail(err, BN_ERR_OOM, "out of memory");
            }
            for (uint64_t k = 0; k < n; k++) {
                gguf_str s = gguf_array_str(&v->v.arr, k);
                p[k] = s.ptr;
                lens[k] = s.len;
            }
            gguf_writer_set_arr_strn(w, key, p, lens, n);
            free(p);
            free(lens);
        } else if (v->type == GGUF_ARRAY && v->v.arr.elem_type != GGUF_ARRAY) {
            gguf_writer_set_arr(w, key, v->v.arr.elem_type, v->v.arr.data, v->v.arr.count);
        } else if (v->type == GGUF_F32) {
            float x = (float)v->v.f;
            gguf_writer_set_scalar(w, key, v->type, &x);
        } else if (v->type == GGUF_F64) {
            gguf_writer_set_scalar(w, key, v->type, &v->v.f);
        } else if (v->type != GGUF_ARRAY) {
            /* integers and bool: the low bytes of the widened value (little-endian) */
            uint8_t bytes[8];
            uint64_t x = v->v.u;
            for (int k = 0; k < 8; k++) bytes[k] = (uint8_t)(x >> (8 * k));
            gguf_writer_set_scalar(w, key, v->type, bytes);
        }
    }
    return BN_OK;
}
