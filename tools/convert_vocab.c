/* convert_vocab.c - the tokenizer half of `bitnet convert`: reads a SentencePiece
 * tokenizer.model (a protobuf ModelProto) or a Hugging Face tokenizer.json (byte-level
 * BPE, as Llama 3 and BitNet-b1.58-2B-4T use) and writes the GGUF tokenizer.ggml.* keys
 * (FORMATS.md): model "llama" with tokens/scores/token_type for SentencePiece, model
 * "gpt2" with tokens/token_type/merges for BPE, bos/eos/unknown ids, add_bos_token and
 * the chat template of tokenizer_config.json. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/os.h"
#include "convert.h"

/* SentencePiece piece types, which equal the GGUF token types (1 normal, 2 unknown,
 * 3 control, 4 user defined, 5 unused, 6 byte). */
enum { SP_NORMAL = 1, SP_UNKNOWN = 2, SP_CONTROL = 3, SP_UNUSED = 5 };

typedef struct vocab_buf {
    char **text;
    uint64_t *len;
    float *score;
    int32_t *type;
    int n, cap;
} vocab_buf;

static void vb_free(vocab_buf *v) {
    for (int i = 0; i < v->n; i++) free(v->text[i]);
    free(v->text);
    free(v->len);
    free(v->score);
    free(v->type);
}

static bool vb_push(vocab_buf *v, const char *s, size_t len, float score, int type) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 1024;
        char **t = realloc(v->text, sizeof *t * (size_t)cap);
        if (t) v->text = t;
        uint64_t *l = realloc(v->len, sizeof *l * (size_t)cap);
        if (l) v->len = l;
        float *sc = realloc(v->score, sizeof *sc * (size_t)cap);
        if (sc) v->score = sc;
        int32_t *ty = realloc(v->type, sizeof *ty * (size_t)cap);
        if (ty) v->type = ty;
        if (!t || !l || !sc || !ty) return false;
        v->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return false;
    memcpy(c, s, len);
    c[len] = 0;
    v->text[v->n] = c;
    v->len[v->n] = len;
    v->score[v->n] = score;
    v->type[v->n] = type;
    v->n++;
    return true;
}

/* ---- protobuf wire format (just what ModelProto needs) ---- */

typedef struct pb {
    const uint8_t *p, *end;
} pb;

static bool pb_varint(pb *b, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        uint8_t c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Reads one field: number, wire type, and for length-delimited fields the bytes. */
static bool pb_field(pb *b, uint32_t *num, int *wt, uint64_t *val, pb *sub) {
    uint64_t key;
    if (!pb_varint(b, &key)) return false;
    *num = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0:
        return pb_varint(b, val);
    case 1:
        if (b->end - b->p < 8) return false;
        memcpy(val, b->p, 8);
        b->p += 8;
        return true;
    case 5: {
        if (b->end - b->p < 4) return false;
        uint32_t v;
        memcpy(&v, b->p, 4);
        *val = v;
        b->p += 4;
        return true;
    }
    case 2: {
        uint64_t len;
        if (!pb_varint(b, &len) || len > (uint64_t)(b->end - b->p)) return false;
        sub->p = b->p;
        sub->end = b->p + len;
        b->p += len;
        return true;
    }
    default:
        return false;
    }
}

static bn_status read_spm(const char *path, vocab_buf *v, bool *add_prefix, bn_err *err) {
    bn_mapping mp;
    if (bn_map_file(path, &mp, err) != BN_OK) return err->code;
    pb b = {mp.data, mp.data + mp.size};
    bn_status st = BN_OK;
    *add_prefix = true;
    while (b.p < b.end) {
        uint32_t num;
        int wt;
        uint64_t val;
        pb sub;
        if (!pb_field(&b, &num, &wt, &val, &sub)) {
            st = bn_fail(err, BN_ERR_FORMAT,
                         "%s: not a SentencePiece model (bad protobuf at byte %zu)", path,
                         (size_t)(b.p - mp.data));
            break;
        }
        if (num == 1 && wt == 2) { /* SentencePiece { piece = 1, score = 2, type = 3 } */
            const uint8_t *piece = NULL;
            size_t plen = 0;
            float score = 0;
            int type = SP_NORMAL;
            while (sub.p < sub.end) {
                uint32_t n2;
                int w2;
                uint64_t v2;
                pb s2;
                if (!pb_field(&sub, &n2, &w2, &v2, &s2)) {
                    st = bn_fail(err, BN_ERR_FORMAT, "%s: bad piece %d", path, v->n);
                    break;
                }
                if (n2 == 1 && w2 == 2) {
                    piece = s2.p;
                    plen = (size_t)(s2.end - s2.p);
                } else if (n2 == 2 && w2 == 5) {
                    uint32_t u = (uint32_t)v2;
                    memcpy(&score, &u, 4);
                } else if (n2 == 3 && w2 == 0) {
                    type = (int)v2;
                }
            }
            if (st != BN_OK) break;
            if (type < 1 || type > 6) type = SP_NORMAL;
            if (!vb_push(v, piece ? (const char *)piece : "", plen, score, type)) {
                st = bn_fail(err, BN_ERR_OOM, "out of memory");
                break;
            }
        } else if (num == 3 && wt == 2) { /* NormalizerSpec { add_dummy_prefix = 3 } */
            while (sub.p < sub.end) {
                uint32_t n2;
                int w2;
                uint64_t v2;
                pb s2;
                if (!pb_field(&sub, &n2, &w2, &v2, &s2)) break;
                if (n2 == 3 && w2 == 0) *add_prefix = v2 != 0;
            }
        }
    }
    bn_unmap_file(&mp);
    if (st == BN_OK && v->n == 0) st = bn_fail(err, BN_ERR_FORMAT, "%s: no pieces", path);
    return st;
}

static cJSON *read_json(const char *path, bn_err *err) {
    bn_mapping mp;
    if (bn_map_file(path, &mp, err) != BN_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)mp.data, mp.size);
    bn_unmap_file(&mp);
    if (!j) bn_fail(err, BN_ERR_FORMAT, "%s: not valid JSON", path);
    return j;
}

/* tokenizer.json: model.type BPE, model.vocab {text: id}, model.merges, added_tokens. */
static bn_status read_bpe(const char *path, int n_vocab, vocab_buf *v, char ***merges,
                          int *n_merges, bn_err *err) {
    cJSON *j = read_json(path, err);
    if (!j) return err->code;
    bn_status st = BN_OK;
    cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *mg = cJSON_GetObjectItemCaseSensitive(model, "merges");
    cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") || !cJSON_IsObject(vocab)) {
        cJSON_Delete(j);
        return bn_fail(err, BN_ERR_UNSUPPORTED, "%s: only BPE tokenizer.json files are supported",
                       path);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"))) {
        cJSON_Delete(j);
        return bn_fail(err, BN_ERR_UNSUPPORTED,
                       "%s is a SentencePiece-style BPE (byte_fallback); convert from its "
                       "tokenizer.model instead",
                       path);
    }
    /* ids may be sparse: find the largest, fill gaps with unused tokens */
    int max_id = -1;
    cJSON *e;
    cJSON_ArrayForEach(e, vocab) if (cJSON_IsNumber(e) && e->valueint > max_id) max_id =
        e->valueint;
    cJSON_ArrayForEach(e, added) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsNumber(id) && id->valueint > max_id) max_id = id->valueint;
    }
    if (max_id < 0 || max_id >= n_vocab) {
        cJSON_Delete(j);
        return bn_fail(err, BN_ERR_FORMAT,
                       "%s: token ids reach %d but the model's embedding has %d rows", path, max_id,
                       n_vocab);
    }
    for (int i = 0; i <= max_id; i++) {
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", i);
        if (!vb_push(v, pad, strlen(pad), 0, SP_UNUSED)) st = BN_ERR_OOM;
    }
    cJSON_ArrayForEach(e, vocab) {
        if (st != BN_OK || !cJSON_IsNumber(e) || e->valueint < 0) continue;
        int id = e->valueint;
        size_t l = strlen(e->string);
        char *c = malloc(l + 1);
        if (!c) {
            st = BN_ERR_OOM;
            break;
        }
        memcpy(c, e->string, l + 1);
        free(v->text[id]);
        v->text[id] = c;
        v->len[id] = l;
        v->type[id] = SP_NORMAL;
    }
    cJSON_ArrayForEach(e, added) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (st != BN_OK || !cJSON_IsNumber(id) || !cJSON_IsString(content) || id->valueint < 0)
            continue;
        size_t l = strlen(content->valuestring);
        char *c = malloc(l + 1);
        if (!c) {
            st = BN_ERR_OOM;
            break;
        }
        memcpy(c, content->valuestring, l + 1);
        free(v->text[id->valueint]);
        v->text[id->valueint] = c;
        v->len[id->valueint] = l;
        v->type[id->valueint] =
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special")) ? SP_CONTROL : 4;
    }
    int nm = cJSON_GetArraySize(mg);
    *merges = calloc((size_t)(nm ? nm : 1), sizeof **merges);
    if (!*merges) st = BN_ERR_OOM;
    *n_merges = 0;
    cJSON_ArrayForEach(e, mg) {
        if (st != BN_OK) break;
        char *m = NULL;
        if (cJSON_IsString(e)) {
            m = strdup(e->valuestring);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            const char *a = cJSON_GetArrayItem(e, 0)->valuestring;
            const char *b = cJSON_GetArrayItem(e, 1)->valuestring;
            size_t la = strlen(a), lb = strlen(b);
            m = malloc(la + lb + 2);
            if (m) {
                memcpy(m, a, la);
                m[la] = ' ';
                memcpy(m + la + 1, b, lb + 1);
            }
        } else {
            continue;
        }
        if (!m) {
            st = BN_ERR_OOM;
            break;
        }
        (*merges)[(*n_merges)++] = m;
    }
    cJSON_Delete(j);
    if (st == BN_ERR_OOM) return bn_fail(err, BN_ERR_OOM, "out of memory reading %s", path);
    return st;
}

static int find_text(const vocab_buf *v, const char *s) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->text[i], s)) return i;
    return -1;
}

bn_status cv_write_vocab(gguf_writer *w, const char *dir, int n_vocab, cv_special sp,
                         const char **kind_out, bn_err *err) {
    char path[4096];
    vocab_buf v = {0};
    char **merges = NULL;
    int n_merges = 0;
    bool spm = false, add_prefix = true;
    bn_status st;
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    if (access(path, R_OK) == 0) {
        spm = true;
        st = read_spm(path, &v, &add_prefix, err);
    } else {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        if (access(path, R_OK) != 0)
            return bn_fail(err, BN_ERR_IO, "%s has neither tokenizer.model nor tokenizer.json",
                           dir);
        st = read_bpe(path, n_vocab, &v, &merges, &n_merges, err);
    }
    if (st == BN_OK && v.n > n_vocab)
        st = bn_fail(err, BN_ERR_FORMAT,
                     "%s has %d tokens but the model's embedding has only %d rows", path, v.n,
                     n_vocab);
    for (int i = v.n; st == BN_OK && i < n_vocab; i++) { /* padding rows of the embedding */
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", i);
        if (!vb_push(&v, pad, strlen(pad), -1e9f, SP_UNUSED))
            st = bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    if (st == BN_OK) {
        int unk = -1, bos = sp.bos, eos = sp.eos;
        for (int i = 0; i < v.n && unk < 0; i++)
            if (v.type[i] == SP_UNKNOWN) unk = i;
        if (bos < 0) bos = find_text(&v, spm ? "<s>" : "<|begin_of_text|>");
        if (eos < 0) eos = find_text(&v, spm ? "</s>" : "<|end_of_text|>");
        gguf_writer_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
        if (!spm)
            gguf_writer_set_str(w, "tokenizer.ggml.pre",
                                find_text(&v, "<|begin_of_text|>") >= 0 ? "llama-bpe" : "default");
        gguf_writer_set_arr_strn(w, "tokenizer.ggml.tokens", (const char *const *)v.text, v.len,
                                 (uint64_t)v.n);
        if (spm) gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_F32, v.score, (uint64_t)v.n);
        gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_I32, v.type, (uint64_t)v.n);
        if (!spm)
            gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges,
                                    (uint64_t)n_merges);
        if (bos >= 0 && bos < v.n)
            gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
        if (eos >= 0 && eos < v.n)
            gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
        if (unk >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", bos >= 0);
        if (spm) gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", add_prefix);
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        if (access(path, R_OK) == 0) {
            bn_err e2 = {0};
            cJSON *tc = read_json(path, &e2);
            cJSON *tpl = cJSON_GetObjectItemCaseSensitive(tc, "chat_template");
            if (cJSON_IsString(tpl))
                gguf_writer_set_str(w, "tokenizer.chat_template", tpl->valuestring);
            cJSON_Delete(tc);
        }
        *kind_out = spm ? "sentencepiece" : "bpe";
    }
    for (int i = 0; i < n_merges; i++) free(merges[i]);
    free(merges);
    vb_free(&v);
    return st;
}
