/* bitnet.h - the public interface of libbitnet.
 *
 * Everything an application needs to run a ternary LLM: list the devices, load
 * a model (with a backend/device choice), make contexts, tokenize, apply the chat template,
 * evaluate, sample, and generate with tokens streamed through a callback.
 * The library is built static (libbitnet.a) and shared (libbitnet.so, which
 * exports exactly the functions declared here); `cmake --install` puts this
 * header, both libraries, bitnet.pc and bitnetConfig.cmake in place.
 *
 * Errors: a function that fails returns a status other than BN_OK and leaves
 * a message naming the file, tensor, token or option concerned in
 * bn_last_error() of the calling thread.
 *
 * Threads: a bn_llm is read-only once loaded; any number of threads may use
 * it at the same time, each with its own bn_ctx. A bn_ctx (KV cache, sampler,
 * worker threads) belongs to one thread at a time. */
#ifndef BITNET_H
#define BITNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks what libbitnet.so exports (it is built with hidden visibility). */
#if defined(__GNUC__) || defined(__clang__)
#define BN_API __attribute__((visibility("default")))
#else
#define BN_API
#endif

#define BITNET_VERSION "0.1.0"

typedef enum bn_status {
    BN_OK = 0,
    BN_ERR_IO,          /* a file could not be opened, read, mapped or written */
    BN_ERR_FORMAT,      /* a file is malformed: truncated, out-of-range size or offset, bad magic */
    BN_ERR_UNSUPPORTED, /* well-formed but not handled: unknown tensor type, architecture, ... */
    BN_ERR_OOM,         /* an allocation failed */
    BN_ERR_DEVICE,      /* a device failed or is missing */
    BN_ERR_INVALID_ARG, /* the caller passed something invalid (shapes, options, ids) */
    BN_ERR_INTERNAL,    /* a bug: an invariant did not hold */
} bn_status;

/* A short constant name for a status ("format error", ...). */
BN_API const char *bn_status_str(bn_status s);

/* ---- the embeddable API ---- */

typedef struct bn_llm bn_llm; /* a loaded model: weights mapped from the file, vocabulary */
typedef struct bn_ctx bn_ctx; /* one sequence on a model: KV cache, sampler, threads */

/* "0.1.0" */
BN_API const char *bn_version(void);
/* The message of the last call that failed on this thread ("" if none). */
BN_API const char *bn_last_error(void);

/* -- devices -- */

typedef struct bn_device_desc {
    char id[32];    /* "cpu:0", "vulkan:0", ...: the names bn_llm_params.devices takes */
    char name[128]; /* e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" */
    char type[8];   /* "cpu", "igpu", "dgpu", "npu" */
    uint64_t mem_total, mem_free; /* bytes; 0 if unknown */
    bool unified;                 /* memory shared with the host */
} bn_device_desc;

/* Every device of every backend in this build (bitnet devices lists the same):
 * writes at most cap descriptions and sets *n to how many there are. */
BN_API bn_status bn_devices_list(bn_device_desc *out, int cap, int *n);

/* -- models -- */

typedef struct bn_llm_params {
    /* where the model runs: every context of the model follows this choice
     * (the same options as the bitnet command's --backend, --devices, ...) */
    const char *backend;      /* NULL or "auto": the planner's choice; "cpu", "vulkan", "opencl" */
    const char *devices;      /* NULL: chosen by backend; exactly these, e.g. "vulkan:0,cpu:0" */
    int gpu_layers;           /* -1: the planner decides; N: N layers on devices other than cpu:0 */
    uint64_t gpu_mem;         /* 0: each device's free memory; else a cap in bytes per GPU */
    const char *tensor_split; /* NULL: the planner decides; "3,1": layer shares per device */
    const char *profile;      /* NULL: detect and measure devices; a device profile file */
    const char *chat_template; /* NULL: from the model; or "bitnet", "bitnet-old", "llama3" */
} bn_llm_params;

BN_API void bn_llm_params_default(bn_llm_params *p);
/* Loads a GGUF model (p may be NULL for the defaults). The file stays mapped
 * until bn_llm_free; free every context of the model first. */
BN_API bn_status bn_llm_load(const char *path, const bn_llm_params *p, bn_llm **out);
BN_API void bn_llm_free(bn_llm *m);

typedef struct bn_llm_info {
    char arch[32];        /* "bitnet-b1.58", "bitnet", "llama" */
    char name[128];       /* general.name, else the file name */
    char weight_type[16]; /* type of the projections: "I2_S", "TQ2_0", ... */
    int n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv;
    uint64_t n_params, n_bytes;
    int32_t bos, eos, eot; /* -1 when the model has none */
} bn_llm_info;

BN_API bn_status bn_llm_get_info(const bn_llm *m, bn_llm_info *out);
/* Whether token ends a generation (EOS, EOT, or the chat format's end of message). */
BN_API bool bn_llm_token_is_eog(const bn_llm *m, int32_t token);

/* -- text -- */

enum {
    BN_TOKENIZE_ADD_BOS = 1, /* put BOS first when the model asks for it (add_bos_token) */
    BN_TOKENIZE_SPECIAL = 2, /* turn special-token text (<|eot_id|>, <s>, ...) into their ids */
};

/* Tokenizes len bytes of text with the model's own tokenizer. Writes at most
 * cap ids (ids may be NULL when cap is 0) and sets *n_ids to the number the
 * text needs: when that exceeds cap, call again with a larger buffer. */
BN_API bn_status bn_llm_tokenize(const bn_llm *m, const char *text, size_t len, int flags,
                                 int32_t *ids, int cap, int *n_ids);
/* The bytes token stands for (a piece may be part of a UTF-8 character);
 * returns their count, writing at most cap. Control tokens and ids out of
 * range give 0. */
BN_API int bn_llm_token_piece(const bn_llm *m, int32_t token, char *buf, int cap);
/* Decodes n ids into text: valid UTF-8 (a broken character becomes U+FFFD), no
 * control tokens, without the space SentencePiece put in front. Writes at most
 * cap bytes including a terminating NUL and sets *len to the full length
 * (without NUL). */
BN_API bn_status bn_llm_detokenize(const bn_llm *m, const int32_t *ids, int n, char *buf,
                                   size_t cap, size_t *len);

typedef struct bn_llm_chat_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} bn_llm_chat_msg;

/* Tokenizes a conversation in the model's chat format (recognized from
 * tokenizer.chat_template, or chosen with bn_llm_params.chat_template): BOS,
 * each message, and if add_assistant the opening of the assistant's reply.
 * Message text is never parsed for special tokens. Buffer rules as
 * bn_llm_tokenize. The model ends its reply with a token for which
 * bn_llm_token_is_eog holds. */
BN_API bn_status bn_llm_chat_tokenize(const bn_llm *m, const bn_llm_chat_msg *msgs, int n,
                                      bool add_assistant, int32_t *ids, int cap, int *n_ids);
/* The chat format in use: "bitnet", "bitnet-old", "llama3"; "" when the model has none. */
BN_API const char *bn_llm_chat_name(const bn_llm *m);

/* -- contexts -- */

typedef struct bn_ctx_params {
    int n_ctx;     /* positions in the KV cache; 0: the model's training context, at most 4096 */
    int n_batch;   /* prompt tokens per step; 0: 64 */
    int n_threads; /* worker threads; 0: the number of physical cores */
    bool kv_f32;   /* KV cache in f32 (default f16) */
} bn_ctx_params;

BN_API void bn_ctx_params_default(bn_ctx_params *p);
/* Makes a context on m (p may be NULL for the defaults), on the devices
 * chosen at load. Contexts may be made and freed from several threads. */
BN_API bn_status bn_ctx_new(const bn_llm *m, const bn_ctx_params *p, bn_ctx **out);
BN_API void bn_ctx_free(bn_ctx *c);

BN_API int bn_ctx_n_ctx(const bn_ctx *c);
/* What runs where and why (the planner's choice, fallbacks), as lines of text. */
BN_API const char *bn_ctx_plan(const bn_ctx *c);
/* Tokens in the KV cache. */
BN_API int bn_ctx_n_past(const bn_ctx *c);
/* The ids in the KV cache, n_past of them (valid until the next call on c). */
BN_API const int32_t *bn_ctx_tokens(const bn_ctx *c);

/* Evaluates n tokens after the ones in the cache; afterwards bn_ctx_logits
 * holds the logits of the last one. */
BN_API bn_status bn_ctx_eval(bn_ctx *c, const int32_t *ids, int n);
/* n_vocab logits of the last evaluated token; NULL before the first eval and
 * after a rewind. */
BN_API const float *bn_ctx_logits(const bn_ctx *c);
/* Keeps the first n_keep tokens of the cache and forgets the rest (0: all). */
BN_API bn_status bn_ctx_rewind(bn_ctx *c, int n_keep);

typedef struct bn_ctx_sampling {
    float temperature;    /* <= 0: greedy (argmax; ties go to the lowest id) */
    int top_k;            /* 0: off */
    float top_p;          /* (0, 1]; 1: off */
    float min_p;          /* [0, 1]; 0: off */
    float repeat_penalty; /* 1: off */
    int repeat_last_n;    /* window of the penalty; -1: everything */
    uint64_t seed;        /* the same seed gives the same draws on every platform */
} bn_ctx_sampling;

/* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1, repeat_last_n 64, seed 0 */
BN_API void bn_ctx_sampling_default(bn_ctx_sampling *s);
/* Sets the sampler and reseeds it; the tokens in the cache count as history
 * for the repetition penalty. */
BN_API bn_status bn_ctx_set_sampling(bn_ctx *c, const bn_ctx_sampling *s);
/* Draws the next token from the last logits (greedy until set_sampling). The
 * token is not evaluated: pass it to bn_ctx_eval to continue. */
BN_API bn_status bn_ctx_sample(bn_ctx *c, int32_t *token);

typedef enum bn_ctx_stop {
    BN_STOP_EOG = 0,  /* the model produced EOS/EOT (not passed to the callback) */
    BN_STOP_LENGTH,   /* max_tokens were generated */
    BN_STOP_CONTEXT,  /* the context is full */
    BN_STOP_CALLBACK, /* the callback asked to stop */
} bn_ctx_stop;

/* Called for each generated token with its text: valid UTF-8 (the bytes of a
 * character split across tokens arrive with the token that completes it, so
 * piece may be empty; a character still incomplete at the end comes as U+FFFD
 * in one last call with token -1). Return 0 to go on, anything else to stop. */
typedef int (*bn_ctx_token_cb)(void *user, int32_t token, const char *piece, size_t len);

typedef struct bn_ctx_gen_params {
    int max_tokens; /* < 0: until the context is full */
    bn_ctx_sampling sampling;
    bool no_reuse; /* re-evaluate the whole prompt instead of reusing the cached prefix */
} bn_ctx_gen_params;

/* max_tokens -1, bn_ctx_sampling_default, reuse on */
BN_API void bn_ctx_gen_params_default(bn_ctx_gen_params *p);

typedef struct bn_ctx_gen_result {
    int n_prompt;    /* prompt tokens */
    int n_reused;    /* of which were already in the cache and not evaluated again */
    int n_generated; /* tokens passed to the callback */
    bn_ctx_stop stop;
    double t_prompt, t_gen; /* seconds */
} bn_ctx_gen_result;

/* Generates a continuation of prompt. The cache is made to hold the prompt:
 * the prefix it shares with what the cache holds is kept (at least one prompt
 * token is evaluated anew) and the rest evaluated. Then tokens are drawn with
 * p->sampling (seeded afresh; the prompt counts as history), each passed to
 * cb (may be NULL) and evaluated, until EOS/EOT, max_tokens, a full context
 * or cb's say-so. Afterwards the cache holds the prompt and the generated
 * tokens (all but the last), so a follow-up that extends the conversation
 * reuses them. res may be NULL. */
BN_API bn_status bn_ctx_generate(bn_ctx *c, const int32_t *prompt, int n_prompt,
                                 const bn_ctx_gen_params *p, bn_ctx_token_cb cb, void *user,
                                 bn_ctx_gen_result *res);

#ifdef __cplusplus
}
#endif
#endif
