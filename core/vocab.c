/* vocab.c - loading the vocabulary from GGUF metadata, the greedy
 * longest-match tokenizer and token-to-bytes decoding (see vocab.h). */
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int token_type_of(const bn_vocab *v, int id) {
    if (v->token_type.count == 0) return BN_TOKEN_NORMAL;
    return (int)gguf_array_int(&v->token_type, (uint64_t)id);
}

int bn_vocab_find(const bn_vocab *v, const char *s, size_t len) {
    if (!v->hash_ids) return -1;
    uint32_t mask = v->hash_cap - 1;
    for (uint32_t h = hash_bytes(s, len) & mask;; h = (h + 1) & mask) {
        int32_t id = v->hash_ids[h];
        if (id < 0) return -1;
        gguf_str t = gguf_array_str(&v->tokens, (uint64_t)id);
        if (t.len == len && memcmp(t.ptr, s, len) == 0) return id;
    }
}

/* The GPT-2 byte-to-code-point map: printable Latin-1 bytes stand for
 * themselves, the others (controls, space, 127-160, 173) for 256 + n in order. */
static int gpt2_byte_to_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) n++;
    return 256 + n;
}

static int utf8_encode(int cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* Decodes one UTF-8 code point at s (n bytes left); returns its length (1 for invalid). */
static int utf8_decode(const uint8_t *s, size_t n, int *cp) {
    if (s[0] < 0x80 || n < 2) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        *cp = ((s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if ((s[0] & 0xF0) == 0xE0 && n >= 3) {
        *cp = ((s[0] & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    if ((s[0] & 0xF8) == 0xF0 && n >= 4) {
        *cp = ((s[0] & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        return 4;
    }
    *cp = s[0];
    return 1;
}

static int opt_token_id(const gguf_file *f, const char *key, int n_tokens, int *out, bn_err *err) {
    uint64_t id = UINT64_MAX;
    if (gguf_get_u64_opt(f, key, &id, err) != BN_OK) return -1;
    if (id == UINT64_MAX) {
        *out = -1;
        return 0;
    }
    if (id >= (uint64_t)n_tokens) {
        bn_fail(err, BN_ERR_FORMAT, "%s = %llu is not a token id (vocabulary has %d tokens)", key,
                (unsigned long long)id, n_tokens);
        return -1;
    }
    *out = (int)id;
    return 0;
}

bn_status bn_vocab_load(bn_vocab *v, const gguf_file *f, bn_err *err) {
    memset(v, 0, sizeof *v);
    v->bos = v->eos = v->eot = v->unk = -1;
    for (int i = 0; i < 256; i++) v->byte_token[i] = -1;

    gguf_str model;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, err) != BN_OK) return err->code;
    if (gguf_str_eq(model, "llama"))
        v->kind = BN_VOCAB_SPM;
    else if (gguf_str_eq(model, "gpt2"))
        v->kind = BN_VOCAB_GPT2;
    else
        return bn_fail(err, BN_ERR_UNSUPPORTED,
                       "tokenizer.ggml.model '%.*s' is not supported (known: llama, gpt2)",
                       (int)(model.len > 64 ? 64 : model.len), model.ptr);
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", &v->tokens, err) != BN_OK) return err->code;
    if (v->tokens.elem_type != GGUF_STRING)
        return bn_fail(err, BN_ERR_FORMAT, "tokenizer.ggml.tokens is not an array of strings");
    if (v->tokens.count == 0 || v->tokens.count > (1u << 24))
        return bn_fail(err, BN_ERR_FORMAT,
                       "tokenizer.ggml.tokens has %llu tokens (1 to 2^24 allowed)",
                       (unsigned long long)v->tokens.count);
    v->n_tokens = (int)v->tokens.count;

    const gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.scores");
    if (kv) {
        if (kv->value.type != GGUF_ARRAY || kv->value.v.arr.elem_type != GGUF_F32 ||
            kv->value.v.arr.count != v->tokens.count)
            return bn_fail(err, BN_ERR_FORMAT,
                           "tokenizer.ggml.scores must be an array of %d f32 values", v->n_tokens);
        v->scores = kv->value.v.arr;
    }
    kv = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (kv) {
        gguf_vtype et = kv->value.type == GGUF_ARRAY ? kv->value.v.arr.elem_type : GGUF_STRING;
        if (kv->value.type != GGUF_ARRAY || kv->value.v.arr.count != v->tokens.count ||
            et == GGUF_STRING || et == GGUF_ARRAY || et == GGUF_F32 || et == GGUF_F64)
            return bn_fail(err, BN_ERR_FORMAT,
                           "tokenizer.ggml.token_type must be an array of %d integers",
                           v->n_tokens);
        v->token_type = kv->value.v.arr;
    }
    if (opt_token_id(f, "tokenizer.ggml.bos_token_id", v->n_tokens, &v->bos, err) ||
        opt_token_id(f, "tokenizer.ggml.eos_token_id", v->n_tokens, &v->eos, err) ||
        opt_token_id(f, "tokenizer.ggml.eot_token_id", v->n_tokens, &v->eot, err) ||
        opt_token_id(f, "tokenizer.ggml.unknown_token_id", v->n_tokens, &v->unk, err))
        return err->code;
    v->add_bos = v->kind == BN_VOCAB_SPM || v->bos >= 0;
    if (gguf_get_bool_opt(f, "tokenizer.ggml.add_bos_token", &v->add_bos, err) != BN_OK)
        return err->code;

    /* hash table, capacity a power of two >= 2n */
    v->hash_cap = 1;
    while (v->hash_cap < 2u * (uint32_t)v->n_tokens) v->hash_cap <<= 1;
    v->hash_ids = malloc(sizeof(int32_t) * v->hash_cap);
    if (!v->hash_ids) return bn_fail(err, BN_ERR_OOM, "out of memory for the vocabulary index");
    memset(v->hash_ids, 0xff, sizeof(int32_t) * v->hash_cap);
    uint32_t mask = v->hash_cap - 1;
    for (int id = 0; id < v->n_tokens; id++) {
        gguf_str t = gguf_array_str(&v->tokens, (uint64_t)id);
        if (t.len > (uint64_t)v->max_token_len && t.len < 4096) v->max_token_len = (int)t.len;
        uint32_t h = hash_bytes(t.ptr, t.len) & mask;
        while (v->hash_ids[h] >= 0) {
            gguf_str o = gguf_array_str(&v->tokens, (uint64_t)v->hash_ids[h]);
            if (o.len == t.len && memcmp(o.ptr, t.ptr, t.len) == 0) break; /* keep first */
            h = (h + 1) & mask;
        }
        if (v->hash_ids[h] < 0) v->hash_ids[h] = id;
    }
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int n;
        if (v->kind == BN_VOCAB_SPM)
            n = snprintf(buf, sizeof buf, "<0x%02X>", b);
        else
            n = utf8_encode(gpt2_byte_to_cp(b), buf);
        v->byte_token[b] = bn_vocab_find(v, buf, (size_t)n);
    }
    return BN_OK;
}

void bn_vocab_free(bn_vocab *v) {
    free(v->hash_ids);
    v->hash_ids = NULL;
}

/* Normalizes text into the vocabulary's token alphabet: SPM replaces spaces
 * with U+2581 and adds one in front; GPT-2 maps every byte to its code point. */
static char *normalize(const bn_vocab *v, const char *text, size_t *out_len) {
    size_t n = strlen(text);
    char *buf = malloc(3 * n + 4);
    if (!buf) return NULL;
    size_t o = 0;
    if (v->kind == BN_VOCAB_SPM) {
        if (n > 0) o += (size_t)utf8_encode(0x2581, buf + o);
        for (size_t i = 0; i < n; i++) {
            if (text[i] == ' ')
                o += (size_t)utf8_encode(0x2581, buf + o);
            else
                buf[o++] = text[i];
        }
    } else {
        for (size_t i = 0; i < n; i++)
            o += (size_t)utf8_encode(gpt2_byte_to_cp((uint8_t)text[i]), buf + o);
    }
    *out_len = o;
    return buf;
}

int bn_vocab_tokenize_greedy(const bn_vocab *v, const char *text, bool add_bos, int32_t *ids,
                             int cap, bn_err *err) {
    size_t n;
    char *s = normalize(v, text, &n);
    if (!s) {
        bn_fail(err, BN_ERR_OOM, "out of memory while tokenizing");
        return -1;
    }
    int count = 0;
#define EMIT(id)                                                                                   \
    do {                                                                                           \
        if (count < cap) ids[count] = (id);                                                        \
        count++;                                                                                   \
    } while (0)
    if (add_bos && v->bos >= 0) EMIT(v->bos);
    size_t i = 0;
    while (i < n) {
        int best = -1;
        size_t best_len = 0;
        size_t max = (size_t)v->max_token_len < n - i ? (size_t)v->max_token_len : n - i;
        for (size_t len = max; len >= 1; len--) {
            int id = bn_vocab_find(v, s + i, len);
            if (id >= 0) {
                int tt = token_type_of(v, id);
                if (tt == BN_TOKEN_CONTROL || tt == BN_TOKEN_UNUSED || tt == BN_TOKEN_UNKNOWN)
                    continue;
                best = id;
                best_len = len;
                break;
            }
        }
        if (best >= 0) {
            EMIT(best);
            i += best_len;
            continue;
        }
        /* no token: fall back to the bytes of one code point */
        int cp;
        int clen = utf8_decode((const uint8_t *)s + i, n - i, &cp);
        for (int k = 0; k < clen; k++) {
            uint8_t b = (uint8_t)s[i + (size_t)k];
            int id = v->kind == BN_VOCAB_SPM ? v->byte_token[b] : -1;
            if (id < 0) id = v->unk;
            if (id < 0) {
                free(s);
                bn_fail(err, BN_ERR_UNSUPPORTED,
                        "text has byte 0x%02X that no token covers and the vocabulary has no "
                        "unknown token",
                        b);
                return -1;
            }
            EMIT(id);
        }
        i += (size_t)clen;
    }
#undef EMIT
    free(s);
    return count;
}

int bn_vocab_token_bytes(const bn_vocab *v, int id, char *out, int cap) {
    if (id < 0 || id >= v->n_tokens) return 0;
    int tt = token_type_of(v, id);
    if (tt == BN_TOKEN_CONTROL || tt == BN_TOKEN_UNKNOWN || tt == BN_TOKEN_UNUSED) return 0;
    gguf_str t = gguf_array_str(&v->tokens, (uint64_t)id);
    const uint8_t *p = (const uint8_t *)t.ptr;
    size_t n = t.len;
    int o = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o < cap) out[o] = (char)(c);                                                           \
        o++;                                                                                       \
    } while (0)
    if (v->kind == BN_VOCAB_SPM) {
        unsigned b;
        if (tt == BN_TOKEN_BYTE && n == 6 && sscanf((const char *)p, "<0x%2X>", &b) == 1) {
            PUT(b);
            return o;
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81) {
                PUT(' ');
                i += 3;
            } else {
                PUT(p[i]);
                i++;
            }
        }
    } else {
        for (size_t i = 0; i < n;) {
            int cp;
            i += (size_t)utf8_decode(p + i, n - i, &cp);
            int b = -1;
            if (cp < 256 && gpt2_byte_to_cp(cp) == cp)
                b = cp;
            else if (cp >= 256 && cp < 256 + 68)
                for (int c = 0; c < 256; c++)
                    if (gpt2_byte_to_cp(c) == cp) b = c;
            if (b >= 0)
                PUT(b);
            else {
                char tmp[4];
                int l = utf8_encode(cp, tmp);
                for (int k = 0; k < l; k++) PUT(tmp[k]);
            }
        }
    }
#undef PUT
    return o;
}
