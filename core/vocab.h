/* vocab.h - the vocabulary of a model (tokenizer.ggml.* keys) and, until the
 * exact tokenizers land, a greedy longest-match tokenizer over it.
 *
 * Token texts point into the GGUF mapping. SentencePiece-style vocabularies
 * ("llama") mark spaces with U+2581 and bytes as <0xNN>; byte-level BPE ones
 * ("gpt2") map every byte to a printable code point; decoding undoes either. */
#ifndef BN_VOCAB_H
#define BN_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gguf.h"

typedef enum bn_vocab_kind { BN_VOCAB_SPM, BN_VOCAB_GPT2 } bn_vocab_kind;

enum bn_token_type { /* tokenizer.ggml.token_type values */
                     BN_TOKEN_NORMAL = 1,
                     BN_TOKEN_UNKNOWN = 2,
                     BN_TOKEN_CONTROL = 3,
                     BN_TOKEN_USER_DEFINED = 4,
                     BN_TOKEN_UNUSED = 5,
                     BN_TOKEN_BYTE = 6,
};

typedef struct bn_vocab {
    bn_vocab_kind kind;
    int n_tokens;
    gguf_array tokens;      /* strings */
    gguf_array scores;      /* f32, count 0 if absent */
    gguf_array token_type;  /* i32, count 0 if absent */
    int bos, eos, eot, unk; /* -1 when absent */
    bool add_bos;
    int byte_token[256]; /* id of <0xNN> (SPM) or of the byte's code point (GPT2), -1 if none */
    /* hash table from token text to id, for the greedy tokenizer */
    int32_t *hash_ids;
    uint32_t hash_cap;
    int max_token_len;
} bn_vocab;

bn_status bn_vocab_load(bn_vocab *v, const gguf_file *f, bn_err *err);
void bn_vocab_free(bn_vocab *v);

/* Id of the token whose text is exactly s[0..len), or -1. */
int bn_vocab_find(const bn_vocab *v, const char *s, size_t len);

/* Greedy longest-match tokenization of text (optionally BOS first). Writes at most
 * cap ids and returns the total number needed (call again with a larger buffer
 * if it exceeds cap); negative on error with err filled. */
int bn_vocab_tokenize_greedy(const bn_vocab *v, const char *text, bool add_bos, int32_t *ids,
                             int cap, bn_err *err);

/* Appends the bytes that token id stands for to out (at most cap bytes, returns the
 * number of bytes it stands for). Control tokens (BOS/EOS) give nothing. */
int bn_vocab_token_bytes(const bn_vocab *v, int id, char *out, int cap);

#endif
