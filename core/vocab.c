/* vocab.c - loading the vocabulary from GGUF metadata: checks, the bytes each
 * token stands for, and the indexes used by the tokenizers (see vocab.h). */
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static uint32_t hash_pair(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (uint32_t)key;
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

gguf_str bn_vocab_text(const bn_vocab *v, int id) {
    return gguf_array_str(&v->tokens, (uint64_t)id);
}

float bn_vocab_score(const bn_vocab *v, int id) {
    return v->scores.count ? gguf_array_f32(&v->scores, (uint64_t)id) : 0.0f;
}

bool bn_vocab_is_control(const bn_vocab *v, int id) {
    int t = v->type[id];
    return t == BN_TOKEN_CONTROL || t == BN_TOKEN_UNKNOWN || t == BN_TOKEN_UNUSED;
}

int bn_vocab_find(const bn_vocab *v, const char *s, size_t len) {
    if (!v->hash_ids) return -1;
    uint32_t mask = v->hash_cap - 1;
    for (uint32_t h = hash_bytes(s, len) & mask;; h = (h + 1) & mask) {
        int32_t id = v->hash_ids[h];
        if (id < 0) return -1;
        gguf_str t = bn_vocab_text(v, id);
        if (t.len == len && memcmp(t.ptr, s, len) == 0) return id;
    }
}

int bn_vocab_find_bytes(const bn_vocab *v, const char *s, size_t len) {
    if (!v->bhash_ids) return -1;
    uint32_t mask = v->bhash_cap - 1;
    for (uint32_t h = hash_bytes(s, len) & mask;; h = (h + 1) & mask) {
        int32_t id = v->bhash_ids[h];
        if (id < 0) return -1;
        uint32_t o = v->bytes_off[id], n = v->bytes_off[id + 1] - o;
        if (n == len && memcmp(v->bytes + o, s, len) == 0) return id;
    }
}

const bn_merge *bn_vocab_find_merge(const bn_vocab *v, int left, int right) {
    if (!v->merges) return NULL;
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint32_t mask = v->merge_cap - 1;
    for (uint32_t h = hash_pair(key) & mask;; h = (h + 1) & mask) {
        const bn_merge *m = &v->merges[h];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
    }
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

static bn_status opt_str(const gguf_file *f, const char *key, gguf_str *out, bn_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    out->len = 0;
    out->ptr = "";
    if (!kv) return BN_OK;
    if (kv->value.type != GGUF_STRING)
        return bn_fail(err, BN_ERR_FORMAT, "%s is not a string", key);
    *out = kv->value.v.str;
    return BN_OK;
}

static int hex_digit(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte of a "<0xNN>" token text, or -1. */
static int byte_token_value(const uint8_t *p, size_t n) {
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Decodes token id's text into the bytes it stands for (appended at v->bytes + *o;
 * the buffer has room for 4 bytes per byte of text). */
static void decode_token(const bn_vocab *v, int id, size_t *o) {
    gguf_str t = bn_vocab_text(v, id);
    const uint8_t *p = (const uint8_t *)t.ptr;
    size_t n = t.len;
    char *out = v->bytes;
    int tt = v->type[id];
    int b;
    if (tt == BN_TOKEN_CONTROL || tt == BN_TOKEN_UNKNOWN || tt == BN_TOKEN_UNUSED ||
        (v->kind == BN_VOCAB_GPT2 && tt == BN_TOKEN_USER_DEFINED)) {
        memcpy(out + *o, p, n); /* shown as their text (only when asked, for control tokens) */
        *o += n;
    } else if (v->kind == BN_VOCAB_SPM && tt == BN_TOKEN_BYTE &&
               (b = byte_token_value(p, n)) >= 0) {
        out[(*o)++] = (char)b;
    } else if (v->kind == BN_VOCAB_SPM) {
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81) {
                out[(*o)++] = ' ';
                i += 3;
            } else {
                out[(*o)++] = (char)p[i++];
            }
        }
    } else {
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int len = bn_utf8_decode(p + i, n - i, &cp);
            int byte = cp == BN_UC_INVALID ? -1 : bn_gpt2_cp_to_byte(cp);
            if (byte >= 0) {
                out[(*o)++] = (char)byte;
            } else { /* not in the byte alphabet: keep the text as it is */
                memcpy(out + *o, p + i, (size_t)len);
                *o += (size_t)len;
            }
            i += (size_t)len;
        }
    }
}

static bn_status build_bytes(bn_vocab *v, bn_err *err) {
    uint64_t total = 0;
    for (int id = 0; id < v->n_tokens; id++) total += bn_vocab_text(v, id).len;
    if (total > UINT32_MAX / 2)
        return bn_fail(err, BN_ERR_FORMAT, "the token texts add up to %llu bytes (too many)",
                       (unsigned long long)total);
    v->bytes = malloc(total + 1);
    v->bytes_off = malloc(sizeof(uint32_t) * ((size_t)v->n_tokens + 1));
    if (!v->bytes || !v->bytes_off)
        return bn_fail(err, BN_ERR_OOM, "out of memory for the vocabulary");
    size_t o = 0;
    for (int id = 0; id < v->n_tokens; id++) {
        v->bytes_off[id] = (uint32_t)o;
        decode_token(v, id, &o);
        int n = (int)(o - v->bytes_off[id]);
        if (n > v->max_token_bytes) v->max_token_bytes = n;
    }
    v->bytes_off[v->n_tokens] = (uint32_t)o;
    return BN_OK;
}

static bn_status build_hashes(bn_vocab *v, bn_err *err) {
    v->hash_cap = pow2_at_least(2u * (uint64_t)v->n_tokens);
    v->hash_ids = malloc(sizeof(int32_t) * v->hash_cap);
    if (v->kind == BN_VOCAB_GPT2) {
        v->bhash_cap = v->hash_cap;
        v->bhash_ids = malloc(sizeof(int32_t) * v->bhash_cap);
        if (!v->bhash_ids) return bn_fail(err, BN_ERR_OOM, "out of memory for the vocabulary");
        memset(v->bhash_ids, 0xff, sizeof(int32_t) * v->bhash_cap);
    }
    if (!v->hash_ids) return bn_fail(err, BN_ERR_OOM, "out of memory for the vocabulary index");
    memset(v->hash_ids, 0xff, sizeof(int32_t) * v->hash_cap);
    uint32_t mask = v->hash_cap - 1;
    for (int id = 0; id < v->n_tokens; id++) {
        gguf_str t = bn_vocab_text(v, id);
        uint32_t h = hash_bytes(t.ptr, t.len) & mask;
        while (v->hash_ids[h] >= 0) {
            gguf_str o = bn_vocab_text(v, v->hash_ids[h]);
            if (o.len == t.len && memcmp(o.ptr, t.ptr, t.len) == 0) break; /* keep first */
            h = (h + 1) & mask;
        }
        if (v->hash_ids[h] < 0) v->hash_ids[h] = id;
        if (v->bhash_ids && v->type[id] == BN_TOKEN_NORMAL) {
            const char *s = v->bytes + v->bytes_off[id];
            uint32_t n = v->bytes_off[id + 1] - v->bytes_off[id];
            uint32_t bh = hash_bytes(s, n) & mask;
            while (v->bhash_ids[bh] >= 0) {
                int32_t o = v->bhash_ids[bh];
                uint32_t on = v->bytes_off[o + 1] - v->bytes_off[o];
                if (on == n && memcmp(v->bytes + v->bytes_off[o], s, n) == 0) break;
                bh = (bh + 1) & mask;
            }
            if (v->bhash_ids[bh] < 0) v->bhash_ids[bh] = id;
        }
    }
    return BN_OK;
}

static bn_status load_merges(bn_vocab *v, const gguf_file *f, bn_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.merges");
    if (!kv) return BN_OK;
    if (kv->value.type != GGUF_ARRAY || kv->value.v.arr.elem_type != GGUF_STRING)
        return bn_fail(err, BN_ERR_FORMAT, "tokenizer.ggml.merges is not an array of strings");
    const gguf_array *a = &kv->value.v.arr;
    if (a->count > (1u << 26))
        return bn_fail(err, BN_ERR_FORMAT, "tokenizer.ggml.merges has %llu entries (too many)",
                       (unsigned long long)a->count);
    v->merge_cap = pow2_at_least(a->count + a->count / 2 + 1);
    v->merges = malloc(sizeof(bn_merge) * v->merge_cap);
    if (!v->merges) return bn_fail(err, BN_ERR_OOM, "out of memory for the BPE merges");
    for (uint32_t i = 0; i < v->merge_cap; i++) v->merges[i].key = UINT64_MAX;
    char buf[1024];
    uint32_t mask = v->merge_cap - 1;
    for (uint64_t r = 0; r < a->count; r++) {
        gguf_str s = gguf_array_str(a, r);
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        int l = -1, rt = -1, res = -1;
        if (sp && s.len < sizeof buf) {
            size_t nl = (size_t)(sp - s.ptr), nr = s.len - nl - 1;
            l = bn_vocab_find(v, s.ptr, nl);
            rt = bn_vocab_find(v, sp + 1, nr);
            memcpy(buf, s.ptr, nl);
            memcpy(buf + nl, sp + 1, nr);
            res = bn_vocab_find(v, buf, nl + nr);
        }
        if (l < 0 || rt < 0 || res < 0) {
            v->n_merges_skipped++;
            continue;
        }
        uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)rt;
        uint32_t h = hash_pair(key) & mask;
        while (v->merges[h].key != UINT64_MAX && v->merges[h].key != key) h = (h + 1) & mask;
        if (v->merges[h].key == key) continue; /* a repeated merge keeps its first rank */
        v->merges[h].key = key;
        v->merges[h].rank = (int32_t)r;
        v->merges[h].result = res;
        v->n_merges++;
    }
    return BN_OK;
}

static const bn_vocab *sort_vocab; /* qsort has no context argument */

static int cmp_special(const void *pa, const void *pb) {
    int a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    gguf_str ta = bn_vocab_text(sort_vocab, a), tb = bn_vocab_text(sort_vocab, b);
    uint8_t fa = (uint8_t)ta.ptr[0], fb = (uint8_t)tb.ptr[0];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (ta.len != tb.len) return ta.len > tb.len ? -1 : 1; /* longest first */
    return a < b ? -1 : a > b;
}

static bn_status build_special(bn_vocab *v, bn_err *err) {
    int n = 0;
    for (int id = 0; id < v->n_tokens; id++) {
        int t = v->type[id];
        if ((t == BN_TOKEN_CONTROL || t == BN_TOKEN_UNKNOWN || t == BN_TOKEN_USER_DEFINED) &&
            bn_vocab_text(v, id).len > 0)
            n++;
    }
    v->special = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!v->special) return bn_fail(err, BN_ERR_OOM, "out of memory for the special tokens");
    for (int id = 0; id < v->n_tokens; id++) {
        int t = v->type[id];
        if ((t == BN_TOKEN_CONTROL || t == BN_TOKEN_UNKNOWN || t == BN_TOKEN_USER_DEFINED) &&
            bn_vocab_text(v, id).len > 0) {
            v->special[v->n_special++] = id;
            if (t == BN_TOKEN_USER_DEFINED) v->has_user_defined = true;
        }
    }
    sort_vocab = v;
    qsort(v->special, (size_t)v->n_special, sizeof(int32_t), cmp_special);
    int k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < v->n_special && (uint8_t)bn_vocab_text(v, v->special[k]).ptr[0] < b) k++;
        v->special_first[b] = b == 256 ? v->n_special : k;
    }
    return BN_OK;
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
    if (v->add_bos && v->bos < 0) v->add_bos = false;
    v->add_space_prefix = v->kind == BN_VOCAB_SPM;
    if (gguf_get_bool_opt(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, err) != BN_OK)
        return err->code;
    if (opt_str(f, "tokenizer.ggml.pre", &v->pre, err) != BN_OK ||
        opt_str(f, "tokenizer.chat_template", &v->chat_template, err) != BN_OK)
        return err->code;

    v->type = malloc((size_t)v->n_tokens);
    if (!v->type) return bn_fail(err, BN_ERR_OOM, "out of memory for the vocabulary");
    for (int id = 0; id < v->n_tokens; id++) {
        int64_t t = v->token_type.count ? gguf_array_int(&v->token_type, (uint64_t)id) : 1;
        v->type[id] = (uint8_t)(t >= BN_TOKEN_NORMAL && t <= BN_TOKEN_BYTE ? t : BN_TOKEN_NORMAL);
    }
    bn_status st;
    if ((st = build_bytes(v, err)) || (st = build_hashes(v, err))) return st;
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int n;
        if (v->kind == BN_VOCAB_SPM)
            n = snprintf(buf, sizeof buf, "<0x%02X>", b);
        else
            n = bn_utf8_encode(bn_gpt2_byte_to_cp((uint8_t)b), buf);
        v->byte_token[b] = bn_vocab_find(v, buf, (size_t)n);
    }
    if (v->kind == BN_VOCAB_GPT2 && (st = load_merges(v, f, err))) return st;
    if ((st = build_special(v, err))) return st;
    v->spm_words = v->kind == BN_VOCAB_SPM;
    for (int id = 0; id < v->n_tokens && v->spm_words; id++) {
        if (v->type[id] != BN_TOKEN_NORMAL && v->type[id] != BN_TOKEN_USER_DEFINED) continue;
        gguf_str t = bn_vocab_text(v, id);
        for (uint64_t k = 1; k + 3 <= t.len; k++)
            if (memcmp(t.ptr + k, "\xe2\x96\x81", 3) == 0 &&
                (k < 3 || memcmp(t.ptr + k - 3, "\xe2\x96\x81", 3) != 0)) {
                v->spm_words = false;
                break;
            }
    }
    /* EOT is often only implied: <|eot_id|> (Llama 3), <|im_end|>, <|end|> */
    if (v->eot < 0) {
        static const char *const names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"};
        for (size_t i = 0; i < sizeof names / sizeof names[0] && v->eot < 0; i++) {
            int id = bn_vocab_find(v, names[i], strlen(names[i]));
            if (id >= 0 && v->type[id] == BN_TOKEN_CONTROL) v->eot = id;
        }
    }
    return BN_OK;
}

void bn_vocab_free(bn_vocab *v) {
    free(v->type);
    free(v->bytes);
    free(v->bytes_off);
    free(v->hash_ids);
    free(v->bhash_ids);
    free(v->merges);
    free(v->special);
    v->type = NULL;
    v->bytes = NULL;
    v->bytes_off = NULL;
    v->hash_ids = v->bhash_ids = v->special = NULL;
    v->merges = NULL;
}

int bn_vocab_token_bytes(const bn_vocab *v, int id, char *out, int cap) {
    if (id < 0 || id >= v->n_tokens || bn_vocab_is_control(v, id)) return 0;
    uint32_t o = v->bytes_off[id];
    int n = (int)(v->bytes_off[id + 1] - o);
    memcpy(out, v->bytes + o, (size_t)(n < cap ? n : cap > 0 ? cap : 0));
    return n;
}
