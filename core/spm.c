/* spm.c - SentencePiece BPE for llama vocabularies (Llama 2, bitnet_b1_58-large/3B).
 *
 * The text's spaces become U+2581 and, with add_space_prefix, one U+2581 goes in
 * front (at the start of the input and after each special token). Each UTF-8
 * character starts as one symbol; the adjacent pair whose concatenation is a
 * (normal or user-defined) token with the highest score is merged until none is
 * left (ties: leftmost first). A final symbol that is no token is written as its
 * <0xNN> byte tokens, or <unk> when the vocabulary has no byte tokens. When no
 * mergeable token has U+2581 after another character (vocab.h spm_words), no merge
 * can cross the start of a space run, so the text is merged word by word. */
#include <stdlib.h>
#include <string.h>

#include "merge_heap.h"
#include "tokenizer.h"
#include "unicode.h"

typedef struct sym {
    int32_t start, len; /* bytes in the normalized text */
    int32_t prev, next;
} sym;

/* The id of a piece that merging may produce, or -1. */
static int mergeable(const bn_vocab *v, const char *s, size_t n) {
    int id = bn_vocab_find(v, s, n);
    if (id < 0) return -1;
    int t = bn_vocab_type(v, id);
    return t == BN_TOKEN_NORMAL || t == BN_TOKEN_USER_DEFINED ? id : -1;
}

/* Queues the merge of symbol l with the next one, if it makes a piece: key (score, l),
 * a = the right symbol, b = the merged length (merge_heap.h). */
static void add_cand(const bn_vocab *v, const char *s, sym *sy, bn_merge_cand *h, int *nh, int l) {
    if (l < 0 || sy[l].next < 0) return;
    int r = sy[l].next;
    int id = mergeable(v, s + sy[l].start, (size_t)(sy[l].len + sy[r].len));
    if (id >= 0) {
        uint64_t key = bn_merge_key(bn_merge_score_priority(bn_vocab_score(v, id)), l);
        bn_merge_heap_push(h, nh, (bn_merge_cand){key, r, sy[l].len + sy[r].len});
    }
}

/* Merges the symbols of s[w..e) and appends their ids. */
static bn_status merge_word(const bn_vocab *v, const char *s, size_t w, size_t e, sym *sy,
                            bn_merge_cand *h, bn_idvec *out, bn_err *err) {
    int ns = 0;
    for (size_t i = w; i < e;) {
        int l = bn_utf8_seq_len((uint8_t)s[i]);
        if (l == 0 || i + (size_t)l > e) l = 1;
        sy[ns] = (sym){(int32_t)i, l, ns - 1, -1};
        if (ns > 0) sy[ns - 1].next = ns;
        ns++;
        i += (size_t)l;
    }
    int nh = 0;
    for (int i = 0; i + 1 < ns; i++) add_cand(v, s, sy, h, &nh, i);
    while (nh > 0) {
        bn_merge_cand c = bn_merge_heap_pop(h, &nh);
        int32_t left = bn_merge_pos(&c), right = c.a, len = c.b;
        sym *a = &sy[left], *b = &sy[right];
        if (a->len == 0 || b->len == 0 || a->next != right || a->len + b->len != len)
            continue; /* stale */
        a->len += b->len;
        b->len = 0;
        a->next = b->next;
        if (b->next >= 0) sy[b->next].prev = left;
        add_cand(v, s, sy, h, &nh, a->prev);
        add_cand(v, s, sy, h, &nh, left);
    }
    for (int i = 0; i >= 0 && ns > 0; i = sy[i].next) {
        int id = bn_vocab_find(v, s + sy[i].start, (size_t)sy[i].len);
        if (id >= 0 && !bn_vocab_is_control(v, id) && bn_vocab_type(v, id) != BN_TOKEN_BYTE) {
            bn_idvec_push(out, id);
            continue;
        }
        for (int k = 0; k < sy[i].len; k++) { /* byte fallback */
            uint8_t byte = (uint8_t)s[sy[i].start + k];
            int bid = v->byte_token[byte] >= 0 ? v->byte_token[byte] : v->unk;
            if (bid < 0)
                return bn_fail(err, BN_ERR_UNSUPPORTED,
                               "byte 0x%02X has no token in this vocabulary and there is no "
                               "unknown token",
                               byte);
            /* <unk> stands for the whole character, once */
            if (bid == v->unk && v->byte_token[byte] < 0 && k > 0) continue;
            bn_idvec_push(out, bid);
        }
    }
    return BN_OK;
}

bn_status bn_spm_tokenize(const bn_vocab *v, const char *text, size_t len, bool after_special,
                          bn_idvec *out, bn_err *err) {
    if (len == 0) return BN_OK;
    if (len > INT32_MAX / 4)
        return bn_fail(err, BN_ERR_INVALID_ARG, "text of %zu bytes is too long to tokenize", len);
    /* normalize: ' ' -> U+2581 (3 bytes), optional prefix */
    size_t cap = 3 * len + 3;
    char *s = malloc(cap);
    sym *sy = malloc(sizeof(sym) * cap);
    bn_merge_cand *h = malloc(sizeof(bn_merge_cand) * 2 * cap);
    if (!s || !sy || !h) {
        free(s);
        free(sy);
        free(h);
        return bn_fail(err, BN_ERR_OOM, "out of memory while tokenizing");
    }
    size_t n = 0;
    if (v->add_space_prefix && after_special) {
        memcpy(s, "\xe2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            s[n++] = text[i];
        }
    }
    bn_status st = BN_OK;
    for (size_t w = 0; w < n && st == BN_OK;) {
        /* one word: up to the next U+2581 that follows another character */
        size_t e = w + 1;
        if (v->spm_words)
            while (e < n && !(e + 3 <= n && memcmp(s + e, "\xe2\x96\x81", 3) == 0 &&
                              (e < w + 3 || memcmp(s + e - 3, "\xe2\x96\x81", 3) != 0)))
                e++;
        else
            e = n;
        st = merge_word(v, s, w, e, sy, h, out, err);
        w = e;
    }
    free(s);
    free(sy);
    free(h);
    return st;
}
