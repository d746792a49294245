/* text.c - the text side of the public API: tokenizing, decoding and chat
 * prompts, as thin wrappers over the engine's tokenizer (core/tokenizer.h),
 *
 * chat formats (core/chat.h) and the streaming detokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tokenizer.h"
#include "lib.h"

bn_status bn_lib_tokenize(const bn_model *m, const char *text, size_t len, bool add_bos,
                          bool special, int32_t *ids, int cap, int *n_ids, bn_err *err) {
    const bn_vocab *v = &m->vocab;
    int n = bn_tokenize(v, text, len, add_bos && v->add_bos, special, ids, cap, err);
    if (n < 0) return err->code ? err->code : BN_ERR_INTERNAL;
    *n_ids = n;
    return BN_OK;
}

int bn_lib_token_piece(const bn_model *m, int32_t token, char *buf, int cap) {
    return bn_vocab_token_bytes(&m->vocab, token, buf, cap);
}

bn_status bn_lib_detokenize(const bn_model *m, const int32_t *ids, int n, char *buf, size_t cap,
                            size_t *len, bn_err *err) {
    size_t l = 0;
    char *s = bn_detokenize(&m->vocab, ids, n, false, &l);
    if (!s) return bn_fail(err, BN_ERR_OOM, "out of memory while decoding %d tokens", n);
    if (cap > 0) {
        size_t k = l < cap - 1 ? l : cap - 1;
        memcpy(buf, s, k);
        buf[k] = 0;
    }
    free(s);
    *len = l;
    return BN_OK;
}

/* ---- chat ---- */

void bn_lib_chat_init(bn_llm *m, const char *name) {
    const bn_vocab *v = &m->model->vocab;
    bn_chat_kind k;
    bn_err err = {0};
    m->has_chat = false;
    if (name && *name) {
        if (!bn_chat_kind_from_name(name, &k)) {
            snprintf(m->chat_error, sizeof m->chat_error,
                     "unknown chat template '%.64s' (known: bitnet, bitnet-old, llama3)", name);
            return;
        }
    } else {
        k = bn_chat_detect(v->chat_template.ptr, (size_t)v->chat_template.len, v);
    }
    if (bn_chat_init(&m->chat, k, v, &err) != BN_OK) {
        snprintf(m->chat_error, sizeof m->chat_error, "%.255s", err.msg);
        return;
    }
    m->has_chat = true;
}

static bool role_of(const char *s, bn_chat_role *r) {
    if (!strcmp(s, "system"))
        *r = BN_ROLE_SYSTEM;
    else if (!strcmp(s, "user"))
        *r = BN_ROLE_USER;
    else if (!strcmp(s, "assistant"))
        *r = BN_ROLE_ASSISTANT;
    else
        return false;
    return true;
}

bn_status bn_lib_chat_tokenize(const bn_llm *m, const bn_llm_chat_msg *msgs, int n,
                               bool add_assistant, int32_t *ids, int cap, int *n_ids, bn_err *err) {
    if (!m->has_chat) return bn_fail(err, BN_ERR_UNSUPPORTED, "no chat format: %s", m->chat_error);
    bn_idvec out = {0};
    bn_status st = BN_OK;
    const bn_vocab *v = &m->model->vocab;
    if (v->bos >= 0) bn_idvec_push(&out, v->bos);
    for (int i = 0; i < n && st == BN_OK; i++) {
        bn_chat_role r;
        if (!msgs[i].role || !msgs[i].content)
            st = bn_fail(err, BN_ERR_INVALID_ARG, "chat message %d has no role or content", i);
        else if (!role_of(msgs[i].role, &r))
            st = bn_fail(err, BN_ERR_INVALID_ARG,
                         "chat message %d: role '%.64s' is not system, user or assistant", i,
                         msgs[i].role);
        else
            st = bn_chat_message(&m->chat, r, msgs[i].content, &out, err);
    }
    if (st == BN_OK && add_assistant) st = bn_chat_reply_prompt(&m->chat, &out, err);
    if (st == BN_OK && out.oom) st = bn_fail(err, BN_ERR_OOM, "out of memory");
    if (st == BN_OK) {
        for (int i = 0; i < out.n && i < cap; i++) ids[i] = out.p[i];
        *n_ids = out.n;
    }
    free(out.p);
    return st;
}

/* ---- streaming decode ---- */

struct bn_lib_stream {
    bn_detok d;
    char *out;
};

bn_lib_stream *bn_lib_stream_new(const bn_model *m) {
    bn_lib_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    bn_detok_init(&s->d, &m->vocab, false);
    s->d.strip_space = false; /* a continuation's leading space is the model's text */
    s->out = malloc(bn_detok_max_bytes(&m->vocab) + 8);
    if (!s->out) {
        free(s);
        return NULL;
    }
    return s;
}

void bn_lib_stream_free(bn_lib_stream *s) {
    if (!s) return;
    free(s->out);
    free(s);
}

const char *bn_lib_stream_push(bn_lib_stream *s, int32_t id, size_t *len) {
    *len = bn_detok_push(&s->d, id, s->out);
    return s->out;
}

const char *bn_lib_stream_flush(bn_lib_stream *s, size_t *len) {
    *len = bn_detok_flush(&s->d, s->out);
    return s->out;
}
