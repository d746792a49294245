/* tokenizer.c - the tokenizer's entry points: cutting text at special tokens,
 * dispatching the plain pieces to BPE or SentencePiece, and the streaming
 * detokenizer (see tokenizer.h). */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "unicode.h"

void bn_idvec_push(bn_idvec *o, int32_t id) {
    if (o->oom) return;
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 64;
        int32_t *p = cap > 0 ? realloc(o->p, sizeof(int32_t) * (size_t)cap) : NULL;
        if (!p) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    o->p[o->n++] = id;
}

/* The special token whose text starts at s (n bytes left), longest first, or -1. */
static int match_special(const bn_vocab *v, const char *s, size_t n, bool parse_special) {
    uint8_t b = (uint8_t)s[0];
    for (int k = v->special_first[b]; k < v->special_first[b + 1]; k++) {
        int id = v->special[k];
        if (!parse_special && bn_vocab_type(v, id) != BN_TOKEN_USER_DEFINED) continue;
        gguf_str t = bn_vocab_text(v, id);
        if (t.len <= n && memcmp(t.ptr, s, t.len) == 0) return id;
    }
    return -1;
}

static bn_status plain(const bn_vocab *v, const char *s, size_t n, bool after_special,
                       bn_idvec *out, bn_err *err) {
    if (n == 0) return BN_OK;
    if (v->kind == BN_VOCAB_GPT2) return bn_bpe_tokenize(v, s, n, out, err);
    return bn_spm_tokenize(v, s, n, after_special, out, err);
}

int bn_tokenize_alloc(const bn_vocab *v, const char *text, size_t len, bool add_bos,
                      bool parse_special, int32_t **ids, bn_err *err) {
    bn_idvec out = {0};
    *ids = NULL;
    if (len > (size_t)INT32_MAX / 4) {
        bn_fail(err, BN_ERR_INVALID_ARG, "text of %zu bytes is too long to tokenize", len);
        return -1;
    }
    if (add_bos && v->bos >= 0) bn_idvec_push(&out, v->bos);
    bn_status st = BN_OK;
    size_t start = 0;
    bool after_special = true;
    if (parse_special || v->has_user_defined) {
        for (size_t i = 0; i < len && st == BN_OK;) {
            int id = match_special(v, text + i, len - i, parse_special);
            if (id < 0) {
                i++;
                continue;
            }
            st = plain(v, text + start, i - start, after_special, &out, err);
            bn_idvec_push(&out, id);
            i += bn_vocab_text(v, id).len;
            start = i;
            after_special = true;
        }
    }
    if (st == BN_OK) st = plain(v, text + start, len - start, after_special, &out, err);
    if (st == BN_OK && out.oom) st = bn_fail(err, BN_ERR_OOM, "out of memory while tokenizing");
    if (st != BN_OK) {
        free(out.p);
        return -1;
    }
    if (!out.p) out.p = malloc(sizeof(int32_t));
    if (!out.p) {
        bn_fail(err, BN_ERR_OOM, "out of memory while tokenizing");
        return -1;
    }
    *ids = out.p;
    return out.n;
}

int bn_tokenize(const bn_vocab *v, const char *text, size_t len, bool add_bos, bool parse_special,
                int32_t *ids, int cap, bn_err *err) {
    int32_t *all;
    int n = bn_tokenize_alloc(v, text, len, add_bos, parse_special, &all, err);
    if (n < 0) return -1;
    if (ids) memcpy(ids, all, sizeof(int32_t) * (size_t)(n < cap ? n : cap > 0 ? cap : 0));
    free(all);
    return n;
}

/* ---- detokenizer ---- */

void bn_detok_init(bn_detok *d, const bn_vocab *v, bool special) {
    memset(d, 0, sizeof *d);
    d->v = v;
    d->special = special;
    d->strip_space = v->kind == BN_VOCAB_SPM && v->add_space_prefix;
}

size_t bn_detok_max_bytes(const bn_vocab *v) {
    return 3 * ((size_t)v->max_token_bytes + 4) + 8;
}

static size_t put_fffd(char *out) {
    memcpy(out, "\xef\xbf\xbd", 3);
    return 3;
}

/* Feeds one byte through the UTF-8 check; returns the bytes written to out. */
static size_t feed(bn_detok *d, uint8_t c, char *out) {
    size_t o = 0;
    for (;;) {
        if (d->n_pend == 0) {
            int l = bn_utf8_seq_len(c);
            if (l == 1)
                out[o++] = (char)c;
            else if (l == 0)
                o += put_fffd(out + o);
            else {
                d->pend[0] = c;
                d->n_pend = 1;
                d->want = l;
            }
            return o;
        }
        uint8_t lo = 0x80, hi = 0xBF;
        if (d->n_pend == 1) {
            uint8_t b = d->pend[0];
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        }
        if (c >= lo && c <= hi) {
            d->pend[d->n_pend++] = c;
            if (d->n_pend == d->want) {
                memcpy(out + o, d->pend, (size_t)d->want);
                o += (size_t)d->want;
                d->n_pend = 0;
            }
            return o;
        }
        o += put_fffd(out + o); /* the pending sequence is broken; c starts afresh */
        d->n_pend = 0;
    }
}

size_t bn_detok_push(bn_detok *d, int id, char *out) {
    const bn_vocab *v = d->v;
    if (id < 0 || id >= v->n_tokens) return 0;
    if (bn_vocab_is_control(v, id) && !d->special) return 0;
    const char *p = v->bytes + v->bytes_off[id];
    size_t n = v->bytes_off[id + 1] - v->bytes_off[id], o = 0;
    if (!bn_vocab_is_control(v, id)) {
        if (!d->started && d->strip_space && n > 0 && p[0] == ' ') p++, n--;
        d->started = true;
    }
    for (size_t i = 0; i < n; i++) o += feed(d, (uint8_t)p[i], out + o);
    return o;
}

size_t bn_detok_flush(bn_detok *d, char *out) {
    size_t o = 0;
    if (d->n_pend) o = put_fffd(out);
    d->n_pend = 0;
    return o;
}

char *bn_detokenize(const bn_vocab *v, const int32_t *ids, int n, bool special, size_t *len) {
    bn_detok d;
    bn_detok_init(&d, v, special);
    size_t room = bn_detok_max_bytes(v), cap = room * 4, o = 0;
    char *s = malloc(cap + 1);
    if (!s) return NULL;
    for (int i = 0; i <= n; i++) {
        if (o + room > cap) {
            cap = 2 * cap + room;
            char *ns = realloc(s, cap + 1);
            if (!ns) {
                free(s);
                return NULL;
            }
            s = ns;
        }
        o += i < n ? bn_detok_push(&d, ids[i], s + o) : bn_detok_flush(&d, s + o);
    }
    s[o] = 0;
    if (len) *len = o;
    return s;
}
