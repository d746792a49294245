/* convert.h - what the parts of `bitnet convert` share: the tokenizer reader
 * (convert_vocab.c) that turns tokenizer.model / tokenizer.json into GGUF
 * tokenizer.ggml.* keys. */
#ifndef BN_CONVERT_H
#define BN_CONVERT_H

#include "../core/error.h"
#include "../core/gguf.h"

/* Ids from config.json (-1 when absent). */
typedef struct cv_special {
    int bos, eos;
} cv_special;

/* Reads DIR/tokenizer.model (SentencePiece, preferred) or DIR/tokenizer.json (byte-level
 * BPE), plus DIR/tokenizer_config.json's chat_template, and sets the tokenizer keys on w.
 * The vocabulary is padded with unused tokens up to n_vocab (the model's embedding rows);
 * a larger vocabulary is an error. *kind_out names what was found ("sentencepiece",
 * "bpe"). */
bn_status cv_write_vocab(gguf_writer *w, const char *dir, int n_vocab, cv_special sp,
                         const char **kind_out, bn_err *err);

#endif
