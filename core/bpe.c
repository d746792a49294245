/* bpe.c - byte-level BPE for gpt2 vocabularies (Llama 3): the Llama 3
 * pre-tokenizer and the merge loop (see tokenizer.h).
 *
 * The pre-tokenizer is Llama 3's split regex, written out by hand:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3} |
 *   ' '?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 * tried in that order at each position, leftmost-first like a backtracking
 * regex engine. Letter (L*), number (N*) and whitespace (White_Space) come from
 * the generated Unicode table.
 *
 * A piece that is itself a token becomes that token (ignore_merges); otherwise
 * it starts as one token per byte and the adjacent pair with the lowest merge
 * rank is merged until no pair has a merge (ties: leftmost first). */
#include <stdlib.h>
#include <string.h>

#include "merge_heap.h"
#include "tokenizer.h"
#include "unicode.h"

enum { C_LETTER = 1, C_NUMBER = 2, C_SPACE = 4, C_NL = 8 };

static uint8_t class_of(uint32_t cp) {
    if (cp < 128) {
        /* ASCII without the table */
        if ((cp | 32) >= 'a' && (cp | 32) <= 'z') return C_LETTER;
        if (cp >= '0' && cp <= '9') return C_NUMBER;
        if (cp == '\n' || cp == '\r') return C_SPACE | C_NL;
        if (cp == ' ' || (cp >= 9 && cp <= 13)) return C_SPACE;
        return 0;
    }
    if (cp == BN_UC_INVALID) return 0;
    unsigned f = bn_uc_flags(cp);
    return (uint8_t)(((f & BN_UC_LETTER) ? C_LETTER : 0) | ((f & BN_UC_NUMBER) ? C_NUMBER : 0) |
                     ((f & BN_UC_SPACE) ? C_SPACE : 0));
}

/* 'x' for the case-insensitive contractions: ASCII letters and U+017F (long s, which
 * case-folds to s). */
static int fold(uint32_t cp) {
    if (cp == 0x17F) return 's';
    if (cp < 128 && cp >= 'A' && cp <= 'Z') return (int)(cp | 32);
    return cp < 128 ? (int)cp : 0;
}

bool bn_llama3_split(const char *text, size_t len,
                     void (*piece)(void *ctx, size_t start, size_t end), void *ctx) {
    if (len == 0) return true;
    /* code points, their classes and byte offsets (off[n] = len) */
    uint32_t *cp = malloc(sizeof(uint32_t) * len);
    uint32_t *off = malloc(sizeof(uint32_t) * (len + 1));
    uint8_t *cl = malloc(len);
    if (!cp || !off || !cl) {
        free(cp);
        free(off);
        free(cl);
        return false;
    }
    size_t n = 0;
    for (size_t b = 0; b < len; n++) {
        off[n] = (uint32_t)b;
        b += (size_t)bn_utf8_decode((const uint8_t *)text + b, len - b, &cp[n]);
        cl[n] = class_of(cp[n]);
    }
    off[n] = (uint32_t)len;
#define OTHER(k) (!(cl[k] & (C_SPACE | C_LETTER | C_NUMBER)))
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        uint8_t c = cl[i];
        if (cp[i] == '\'' && i + 1 < n) { /* contractions */
            int a = fold(cp[i + 1]), b = i + 2 < n ? fold(cp[i + 2]) : 0;
            if (a == 's' || a == 't' || a == 'm' || a == 'd') {
                j = i + 2;
                goto emit;
            }
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
                j = i + 3;
                goto emit;
            }
        }
        if ((c & C_LETTER) || (!(c & (C_NL | C_LETTER | C_NUMBER)) && i + 1 < n &&
                               (cl[i + 1] & C_LETTER))) { /* [^\r\n\p{L}\p{N}]?\p{L}+ */
            j = (c & C_LETTER) ? i + 1 : i + 2;
            while (j < n && (cl[j] & C_LETTER)) j++;
            goto emit;
        }
        if (c & C_NUMBER) { /* \p{N}{1,3} */
            while (j < n && j < i + 3 && (cl[j] & C_NUMBER)) j++;
            goto emit;
        }
        if (OTHER(i) || (cp[i] == ' ' && i + 1 < n && OTHER(i + 1))) { /* ' '?[^\s\p{L}\p{N}]+ */
            j = OTHER(i) ? i + 1 : i + 2;
            while (j < n && OTHER(j)) j++;
            while (j < n && (cl[j] & C_NL)) j++; /* [\r\n]* */
            goto emit;
        }
        { /* whitespace: c has C_SPACE */
            size_t e = i + 1, last_nl = (c & C_NL) ? i + 1 : 0;
            while (e < n && (cl[e] & C_SPACE)) {
                if (cl[e] & C_NL) last_nl = e + 1;
                e++;
            }
            if (last_nl) /* \s*[\r\n]+ ends after the run's last newline */
                j = last_nl;
            else if (e == n || e - i == 1) /* \s+(?!\S) at the end, or \s+ */
                j = e;
            else /* \s+(?!\S): leave the last space to the next piece */
                j = e - 1;
        }
    emit:
        piece(ctx, off[i], off[j]);
        i = j;
    }
#undef OTHER
    free(cp);
    free(off);
    free(cl);
    return true;
}

/* ---- the merge loop ---- */

typedef struct sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    bool alive;
} sym;

typedef struct bpe_state {
    const bn_vocab *v;
    const char *text;
    bn_idvec *out;
    sym *syms;
    bn_merge_cand *heap; /* key (rank, pos): merge pos and its next; a, b: their ids */
    size_t cap;          /* syms has cap entries, heap 3 * cap */
    bn_status st;
    bn_err *err;
} bpe_state;

static void add_cand(bpe_state *s, int *nh, int pos) {
    if (pos < 0 || s->syms[pos].next < 0) return;
    int l = s->syms[pos].id, r = s->syms[s->syms[pos].next].id;
    const bn_merge *m = bn_vocab_find_merge(s->v, l, r);
    if (m)
        bn_merge_heap_push(s->heap, nh,
                           (bn_merge_cand){bn_merge_key((uint32_t)m->rank, pos), l, r});
}

static void bpe_piece(void *ctx, size_t start, size_t end) {
    bpe_state *s = ctx;
    if (s->st != BN_OK) return;
    const char *p = s->text + start;
    size_t n = end - start;
    int whole = bn_vocab_find_bytes(s->v, p, n);
    if (whole >= 0) {
        bn_idvec_push(s->out, whole);
        return;
    }
    if (n > s->cap) {
        size_t cap = n < 256 ? 256 : n;
        sym *ns = realloc(s->syms, sizeof(sym) * cap);
        if (ns) s->syms = ns;
        bn_merge_cand *nh = ns ? realloc(s->heap, sizeof(bn_merge_cand) * 3 * cap) : NULL;
        if (!ns || !nh) {
            s->st = bn_fail(s->err, BN_ERR_OOM, "out of memory while tokenizing");
            return;
        }
        s->heap = nh;
        s->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        int id = s->v->byte_token[(uint8_t)p[i]];
        if (id < 0) id = s->v->unk;
        if (id < 0) {
            s->st = bn_fail(s->err, BN_ERR_UNSUPPORTED,
                            "byte 0x%02X has no token in this vocabulary and there is no "
                            "unknown token",
                            (uint8_t)p[i]);
            return;
        }
        s->syms[i] = (sym){id, (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, true};
    }
    int nh = 0;
    for (size_t i = 0; i + 1 < n; i++) add_cand(s, &nh, (int)i);
    while (nh > 0) {
        bn_merge_cand c = bn_merge_heap_pop(s->heap, &nh);
        int32_t pos = bn_merge_pos(&c), left = c.a, right = c.b;
        sym *a = &s->syms[pos];
        if (!a->alive || a->next < 0 || a->id != left || s->syms[a->next].id != right)
            continue; /* stale: one side has changed since */
        const bn_merge *m = bn_vocab_find_merge(s->v, left, right);
        sym *b = &s->syms[a->next];
        a->id = m->result;
        b->alive = false;
        a->next = b->next;
        if (b->next >= 0) s->syms[b->next].prev = pos;
        add_cand(s, &nh, a->prev);
        add_cand(s, &nh, pos);
    }
    for (int i = 0; i >= 0; i = s->syms[i].next) bn_idvec_push(s->out, s->syms[i].id);
}

bn_status bn_bpe_tokenize(const bn_vocab *v, const char *text, size_t len, bn_idvec *out,
                          bn_err *err) {
    bpe_state s = {.v = v, .text = text, .out = out, .st = BN_OK, .err = err};
    if (!bn_llama3_split(text, len, bpe_piece, &s) && s.st == BN_OK)
        s.st = bn_fail(err, BN_ERR_OOM, "out of memory while tokenizing");
    free(s.syms);
    free(s.heap);
    return s.st;
}
