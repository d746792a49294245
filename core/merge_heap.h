/* merge_heap.h - the binary heap of candidate merges that the byte-level BPE
 * (bpe.c) and SentencePiece (spm.c) merge loops share.
 *
 * Both loops take the best adjacent pair again and again; they differ only in
 * what "best" is: BPE the lowest merge rank, SentencePiece the highest score,
 * ties to the leftmost pair in both. Instead of a comparison callback (a call
 * per sift step) or a macro that writes the heap out once per tokenizer, each
 * tokenizer folds its order into one 64-bit key, (priority << 32) | position,
 * and the heap pops the smallest key first: one candidate type, one integer
 * compare per step.
 *  - BPE: priority = the merge rank (>= 0), position = the left symbol.
 *  - SentencePiece: priority = bn_merge_score_priority(score), smaller for a
 *    higher score, equal for equal scores; position = the left symbol.
 * The keys order the candidates exactly as the comparisons they replace (rank
 * then position; score then left), so the merges are the same, in the same
 * order. The heap has no bounds checks: the callers size it for every push. */
#ifndef BN_MERGE_HEAP_H
#define BN_MERGE_HEAP_H

#include <stdint.h>
#include <string.h>

typedef struct bn_merge_cand {
    uint64_t key; /* (priority << 32) | position: the smallest is merged first */
    int32_t a, b; /* the tokenizer's own: BPE the pair's ids, SentencePiece right and length */
} bn_merge_cand;

static inline uint64_t bn_merge_key(uint32_t priority, int32_t pos) {
    return (uint64_t)priority << 32 | (uint32_t)pos;
}

static inline int32_t bn_merge_pos(const bn_merge_cand *c) {
    return (int32_t)(uint32_t)c->key;
}

/* A priority that falls as the score rises, and is equal for equal scores: a
 * negative float's bits grow as it falls, so they stay; a positive float's grow
 * as it rises, so all but the sign bit are flipped (which also puts every
 * positive before every negative). -0 is taken as +0, which it equals; a NaN
 * score, which no comparison ever preferred, comes after every number. */
static inline uint32_t bn_merge_score_priority(float score) {
    uint32_t u;
    memcpy(&u, &score, sizeof u);
    if (u == 0x80000000u) u = 0; /* -0 */
    uint32_t p = u ^ (u >> 31 ? 0 : 0x7FFFFFFFu);
    return (u & 0x7FFFFFFFu) > 0x7F800000u ? UINT32_MAX : p;
}

static inline void bn_merge_heap_push(bn_merge_cand *h, int *n, bn_merge_cand c) {
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (c.key >= h[p].key) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

/* Removes and returns the candidate with the smallest key; *n > 0. */
static inline bn_merge_cand bn_merge_heap_pop(bn_merge_cand *h, int *n) {
    bn_merge_cand top = h[0], last = h[--*n];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        uint64_t best = last.key;
        if (l < *n && h[l].key < best) m = l, best = h[l].key;
        if (r < *n && h[r].key < best) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n > 0) h[i] = last;
    return top;
}

#endif
