/* vocab.h - the vocabulary of a model (tokenizer.ggml.* keys): token texts,
 * types and scores, the ids of BOS/EOS/EOT, BPE merges, and the indexes the
 * tokenizers (core/tokenizer.h) use.
 *
 * Token texts point into the GGUF mapping. SentencePiece vocabularies
 * ("llama") mark spaces with U+2581 and bytes as <0xNN>; byte-level BPE ones
 * ("gpt2") map every byte to a printable code point (core/unicode.h). At load
 * each token's text is also decoded into the bytes it stands for. */
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

/* One BPE merge in the pair index: left and right token ids, its rank (position
 * in tokenizer.ggml.merges, lower merges first) and the id of the merged token. */
typedef struct bn_merge {
    uint64_t key; /* left << 32 | right; UINT64_MAX = empty slot */
    int32_t rank, result;
} bn_merge;

typedef struct bn_vocab {
    bn_vocab_kind kind;
    int n_tokens;
    gguf_array tokens;      /* strings */
    gguf_array scores;      /* f32, count 0 if absent */
    gguf_array token_type;  /* integers, count 0 if absent */
    int bos, eos, eot, unk; /* -1 when absent */
    bool add_bos;
    bool
        add_space_prefix; /* SPM: a U+2581 in front of the text (tokenizer.ggml.add_space_prefix) */
    int byte_token[256];  /* id of <0xNN> (SPM) or of the byte's code point (GPT2), -1 if none */
    gguf_str pre;         /* tokenizer.ggml.pre (len 0 if absent) */
    gguf_str chat_template; /* tokenizer.chat_template (len 0 if absent) */

    uint8_t *type;       /* token type of each id (BN_TOKEN_NORMAL when the file has none) */
    char *bytes;         /* the bytes each token stands for, concatenated */
    uint32_t *bytes_off; /* token i is bytes[bytes_off[i] .. bytes_off[i+1]) */
    int max_token_bytes;

    /* token text -> id (every token; the first of duplicates) */
    int32_t *hash_ids;
    uint32_t hash_cap;
    /* GPT2: the bytes of a normal token -> id */
    int32_t *bhash_ids;
    uint32_t bhash_cap;
    /* GPT2: the merges, indexed by pair */
    bn_merge *merges;
    uint32_t merge_cap;
    int n_merges, n_merges_skipped; /* skipped: a part or the result is not a token */
    /* tokens parsed out of text by their text: control and unknown tokens (only when
     * asked), user-defined ones (always); sorted by first byte, then longest first */
    int32_t *special;
    int n_special;
    int special_first[257]; /* special[special_first[b] .. special_first[b+1]) start with byte b */
    bool has_user_defined;
    /* SPM: no mergeable token has U+2581 right after another character, so no merge
     * crosses the start of a space run and the text can be merged word by word */
    bool spm_words;
} bn_vocab;

bn_status bn_vocab_load(bn_vocab *v, const gguf_file *f, bn_err *err);
void bn_vocab_free(bn_vocab *v);

/* Id of the token whose text is exactly s[0..len), or -1. */
int bn_vocab_find(const bn_vocab *v, const char *s, size_t len);
/* GPT2: id of the normal token that stands for exactly the bytes s[0..len), or -1. */
int bn_vocab_find_bytes(const bn_vocab *v, const char *s, size_t len);
/* GPT2: the merge of tokens (left, right), or NULL. */
const bn_merge *bn_vocab_find_merge(const bn_vocab *v, int left, int right);

static inline int bn_vocab_type(const bn_vocab *v, int id) {
    return v->type[id];
}
/* The text of a token as stored in the file. */
gguf_str bn_vocab_text(const bn_vocab *v, int id);
/* Score of a token (0 when the file has none). */
float bn_vocab_score(const bn_vocab *v, int id);
/* True for tokens that stand for no text of their own (control, unknown, unused). */
bool bn_vocab_is_control(const bn_vocab *v, int id);

/* Copies the bytes that token id stands for into out (at most cap bytes) and
 * returns how many it stands for. Control, unknown and unused tokens give nothing. */
int bn_vocab_token_bytes(const bn_vocab *v, int id, char *out, int cap);

#endif
