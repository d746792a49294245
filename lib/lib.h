/* lib.h - what the files of libbitnet's public layer (lib/) share: the
 * structs behind the opaque handles of include/bitnet.h, the per-thread error
 * message, and the text functions (lib/text.c) that wrap the engine's
 * tokenizer and chat templates, so a change there touches one file. */
#ifndef BN_LIB_H
#define BN_LIB_H

#include "../core/chat.h"
#include "../core/error.h"
#include "../core/model.h"
#include "../core/sampler.h"
#include "../graph/context.h"
#include "bitnet.h"

struct bn_llm {
    bn_model *model;
    /* the device choice, copied from bn_llm_params ("" = NULL) */
    char backend[32], devices[256], tensor_split[256], profile[1024];
    int gpu_layers;
    uint64_t gpu_mem;
    bool has_chat;
    bn_chat chat;
    char chat_error[256]; /* why there is no chat format */
};

/* Records err as this thread's last error and returns its code. */
bn_status bn_lib_set_error(const bn_err *err);

/* The text layer (lib/text.c). Each returns BN_OK or fills err. */
bn_status bn_lib_tokenize(const bn_model *m, const char *text, size_t len, bool add_bos,
                          bool special, int32_t *ids, int cap, int *n_ids, bn_err *err);
int bn_lib_token_piece(const bn_model *m, int32_t token, char *buf, int cap);
bn_status bn_lib_detokenize(const bn_model *m, const int32_t *ids, int n, char *buf, size_t cap,
                            size_t *len, bn_err *err);
/* Prepares m->chat from name (NULL: the model's template); fills chat_error if none. */
void bn_lib_chat_init(bn_llm *m, const char *name);
bn_status bn_lib_chat_tokenize(const bn_llm *m, const bn_llm_chat_msg *msgs, int n,
                               bool add_assistant, int32_t *ids, int cap, int *n_ids, bn_err *err);

/* A streaming decoder: each push gives only complete UTF-8 characters. */
typedef struct bn_lib_stream bn_lib_stream;
bn_lib_stream *bn_lib_stream_new(const bn_model *m);
void bn_lib_stream_free(bn_lib_stream *s);
/* Text of token id (pointer valid until the next call), *len bytes. */
const char *bn_lib_stream_push(bn_lib_stream *s, int32_t id, size_t *len);
/* The rest: an incomplete character becomes U+FFFD. */
const char *bn_lib_stream_flush(bn_lib_stream *s, size_t *len);

#endif
