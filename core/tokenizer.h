/* tokenizer.h - text to token ids and back, exactly as the model was trained.
 *
 * The algorithm follows tokenizer.ggml.model:
 * - gpt2: byte-level BPE (core/bpe.c). The text is split by Llama 3's
 *   pre-tokenizer (contractions, letter runs with an optional leading
 *   non-letter, 1-3 digit groups, punctuation runs, newline and whitespace
 *   rules), each piece is looked up whole (Llama 3's ignore_merges) and
 *   otherwise merged from its bytes by tokenizer.ggml.merges rank.
 * - llama: SentencePiece BPE (core/spm.c): spaces become U+2581, one is put in
 *   front (add_space_prefix), adjacent pieces merge best score first, and a
 *   character with no token falls back to its <0xNN> byte tokens (else <unk>).
 * Before either, text is cut at special tokens: user-defined tokens always,
 * control tokens (<|eot_id|>, <s>, ...) only when parse_special is set.
 *
 * Decoding streams: bn_detok holds back the bytes of a character that is split
 * across tokens, so each piece it returns is valid UTF-8. */
#ifndef BN_TOKENIZER_H
#define BN_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "vocab.h"

/* Tokenizes len bytes of text: BOS first if add_bos (and the vocabulary has one),
 * special-token text parsed if parse_special. Writes at most cap ids and returns
 * the number of ids the text needs (call again with a larger buffer if that is more
 * than cap), or -1 with err filled. */
int bn_tokenize(const bn_vocab *v, const char *text, size_t len, bool add_bos, bool parse_special,
                int32_t *ids, int cap, bn_err *err);

/* The same into a malloc'd array (*ids, free it); returns the count or -1. */
int bn_tokenize_alloc(const bn_vocab *v, const char *text, size_t len, bool add_bos,
                      bool parse_special, int32_t **ids, bn_err *err);

/* Streaming detokenizer. */
typedef struct bn_detok {
    const bn_vocab *v;
    bool special;     /* render control tokens as their text (else they give nothing) */
    bool strip_space; /* SPM: drop the space that add_space_prefix put in front of the text */
    bool started;     /* some text was produced */
    uint8_t pend[4];  /* bytes of an incomplete character */
    int n_pend, want;
} bn_detok;

/* strip_space is set for SPM vocabularies with add_space_prefix. */
void bn_detok_init(bn_detok *d, const bn_vocab *v, bool special);
/* Room that bn_detok_push and bn_detok_flush may need in out. */
size_t bn_detok_max_bytes(const bn_vocab *v);
/* Appends token id's text to out and returns the number of bytes written: only
 * complete characters; a malformed sequence becomes U+FFFD. Ids out of range
 * give nothing. */
size_t bn_detok_push(bn_detok *d, int id, char *out);
/* Ends the stream: an incomplete character left over becomes U+FFFD. */
size_t bn_detok_flush(bn_detok *d, char *out);

/* Detokenizes n ids into a malloc'd NUL-terminated string (*len bytes); NULL when out
 * of memory. */
char *bn_detokenize(const bn_vocab *v, const int32_t *ids, int n, bool special, size_t *len);

/* ---- between tokenizer.c, bpe.c and spm.c ---- */

/* A growing id array; a failed allocation sets oom and drops further ids. */
typedef struct bn_idvec {
    int32_t *p;
    int n, cap;
    bool oom;
} bn_idvec;
void bn_idvec_push(bn_idvec *o, int32_t id);

/* Tokenizes one piece of plain text (no special tokens in it). after_special: the
 * text follows a special token or starts the input (SPM puts its space prefix there). */
bn_status bn_bpe_tokenize(const bn_vocab *v, const char *text, size_t len, bn_idvec *out,
                          bn_err *err);
bn_status bn_spm_tokenize(const bn_vocab *v, const char *text, size_t len, bool after_special,
                          bn_idvec *out, bn_err *err);

/* Llama 3's pre-tokenizer: calls piece(ctx, start, end) for each piece of text in
 * order (byte offsets); the pieces cover the text. Returns false when out of memory. */
bool bn_llama3_split(const char *text, size_t len,
                     void (*piece)(void *ctx, size_t start, size_t end), void *ctx);

#endif
