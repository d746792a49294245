/* chat.c - rendering chat messages as tokens for the known templates (see chat.h). */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"bitnet", "bitnet-old", "llama3"};

const char *bn_chat_kind_name(bn_chat_kind k) {
    return kind_names[k];
}

bool bn_chat_kind_from_name(const char *name, bn_chat_kind *out) {
    for (int k = 0; k < 3; k++)
        if (!strcmp(name, kind_names[k])) {
            *out = (bn_chat_kind)k;
            return true;
        }
    return false;
}

static bool contains(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(s + i, needle, m) == 0) return true;
    return false;
}

bn_chat_kind bn_chat_detect(const char *t, size_t n, const bn_vocab *v) {
    if (t && n) {
        if (contains(t, n, "BITNETAssistant") || contains(t, n, "Human: "))
            return BN_CHAT_BITNET_OLD;
        if (contains(t, n, "<|start_header_id|>")) return BN_CHAT_LLAMA3;
        if (contains(t, n, "<|eot_id|>") &&
            (contains(t, n, "Assistant: ") || contains(t, n, "capitalize")))
            return BN_CHAT_BITNET;
    }
    if (bn_vocab_find(v, "<|start_header_id|>", 19) >= 0) return BN_CHAT_LLAMA3;
    return BN_CHAT_BITNET_OLD;
}

const char *bn_chat_template_text(bn_chat_kind k) {
    switch (k) {
    case BN_CHAT_BITNET:
        return "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
               "{{ message['role'] | capitalize + ': ' + message['content'] | trim + '<|eot_id|>' "
               "}}"
               "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";
    case BN_CHAT_BITNET_OLD:
        return "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
               "{% if message['role'] == 'system' %}{{ 'System: ' + message['content'] | trim + "
               "'\\n\\n' }}{% elif message['role'] == 'user' %}{{ 'Human: ' + message['content'] "
               "| trim + '\\n\\nBITNETAssistant: ' }}{% else %}{{ message['content'] | trim + "
               "eos_token }}{% endif %}{% endfor %}";
    case BN_CHAT_LLAMA3:
        break;
    }
    return "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
           "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
           "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content "
           "= bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if "
           "add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
           "{% endif %}";
}

static int find_control(const bn_vocab *v, const char *text) {
    int id = bn_vocab_find(v, text, strlen(text));
    return id;
}

bn_status bn_chat_init(bn_chat *c, bn_chat_kind k, const bn_vocab *v, bn_err *err) {
    memset(c, 0, sizeof *c);
    c->kind = k;
    c->v = v;
    c->start_header = c->end_header = -1;
    if (k == BN_CHAT_BITNET_OLD) {
        c->eot = v->eos;
        if (c->eot < 0)
            return bn_fail(err, BN_ERR_UNSUPPORTED,
                           "the %s chat format needs an EOS token; the vocabulary has none",
                           bn_chat_kind_name(k));
        return BN_OK;
    }
    c->eot = find_control(v, "<|eot_id|>");
    if (k == BN_CHAT_LLAMA3) {
        c->start_header = find_control(v, "<|start_header_id|>");
        c->end_header = find_control(v, "<|end_header_id|>");
    }
    if (c->eot < 0 || (k == BN_CHAT_LLAMA3 && (c->start_header < 0 || c->end_header < 0)))
        return bn_fail(err, BN_ERR_UNSUPPORTED,
                       "the %s chat format needs the tokens <|eot_id|>%s; the vocabulary lacks "
                       "them (try --template bitnet-old)",
                       bn_chat_kind_name(k),
                       k == BN_CHAT_LLAMA3 ? ", <|start_header_id|> and <|end_header_id|>" : "");
    return BN_OK;
}

static bool is_ws(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Tokenizes "a" + trim(content) + "b" as one text segment. */
static bn_status text3(const bn_chat *c, const char *a, const char *content, const char *b,
                       bn_idvec *out, bn_err *err) {
    size_t n = content ? strlen(content) : 0, s = 0;
    while (s < n && is_ws(content[s])) s++;
    while (n > s && is_ws(content[n - 1])) n--;
    size_t la = strlen(a), lb = strlen(b), len = la + (n - s) + lb;
    if (len == 0) return BN_OK;
    char *buf = malloc(len);
    if (!buf) return bn_fail(err, BN_ERR_OOM, "out of memory");
    memcpy(buf, a, la);
    if (n > s) memcpy(buf + la, content + s, n - s);
    memcpy(buf + la + (n - s), b, lb);
    const bn_vocab *v = c->v;
    bool after_special = out->n == 0 || bn_vocab_is_control(v, out->p[out->n - 1]);
    bn_status st = v->kind == BN_VOCAB_GPT2 ? bn_bpe_tokenize(v, buf, len, out, err)
                                            : bn_spm_tokenize(v, buf, len, after_special, out, err);
    free(buf);
    if (st == BN_OK && out->oom) st = bn_fail(err, BN_ERR_OOM, "out of memory");
    return st;
}

static const char *const role_lower[] = {"system", "user", "assistant"};
static const char *const role_title[] = {"System: ", "User: ", "Assistant: "};

bn_status bn_chat_message(const bn_chat *c, bn_chat_role role, const char *content, bn_idvec *out,
                          bn_err *err) {
    bn_status st = BN_OK;
    switch (c->kind) {
    case BN_CHAT_LLAMA3:
        bn_idvec_push(out, c->start_header);
        if ((st = text3(c, role_lower[role], "", "", out, err))) return st;
        bn_idvec_push(out, c->end_header);
        if ((st = text3(c, "\n\n", content, "", out, err))) return st;
        bn_idvec_push(out, c->eot);
        break;
    case BN_CHAT_BITNET:
        if ((st = text3(c, role_title[role], content, "", out, err))) return st;
        bn_idvec_push(out, c->eot);
        break;
    case BN_CHAT_BITNET_OLD:
        if (role == BN_ROLE_SYSTEM)
            st = text3(c, "System: ", content, "\n\n", out, err);
        else if (role == BN_ROLE_USER)
            st = text3(c, "Human: ", content, "\n\nBITNETAssistant: ", out, err);
        else if ((st = text3(c, "", content, "", out, err)) == BN_OK)
            bn_idvec_push(out, c->eot);
        break;
    }
    if (st == BN_OK && out->oom) st = bn_fail(err, BN_ERR_OOM, "out of memory");
    return st;
}

bn_status bn_chat_reply_prompt(const bn_chat *c, bn_idvec *out, bn_err *err) {
    switch (c->kind) {
    case BN_CHAT_LLAMA3:
        bn_idvec_push(out, c->start_header);
        bn_status st = text3(c, "assistant", "", "", out, err);
        if (st) return st;
        bn_idvec_push(out, c->end_header);
        return text3(c, "\n\n", "", "", out, err);
    case BN_CHAT_BITNET:
        return text3(c, "Assistant: ", "", "", out, err);
    case BN_CHAT_BITNET_OLD:
        break; /* part of the user message */
    }
    return BN_OK;
}

void bn_chat_reply_end(const bn_chat *c, bn_idvec *out) {
    bn_idvec_push(out, c->eot);
}

bool bn_chat_is_stop(const bn_chat *c, int id) {
    return id >= 0 && (id == c->eot || id == c->v->eos || id == c->v->eot);
}
