/* chat.h - chat templates: how a conversation becomes tokens (FORMATS.md).
 *
 * Three formats are known, recognised from tokenizer.chat_template:
 * - BN_CHAT_BITNET (BitNet-b1.58-2B-4T): BOS once, each message as
 *   "Role: content<|eot_id|>" with the role capitalised (System, User,
 *   Assistant), then "Assistant: " asks for a reply, which ends with <|eot_id|>.
 * - BN_CHAT_BITNET_OLD (older BitNet conversions): BOS once, an optional
 *   "System: content\n\n", each user turn as "Human: content\n\nBITNETAssistant: ",
 *   each reply ending with EOS.
 * - BN_CHAT_LLAMA3: BOS once, each message as
 *   "<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>", then the
 *   assistant header asks for a reply, which ends with <|eot_id|>.
 * Without a recognisable template a Llama-3 vocabulary (one with
 * <|start_header_id|>) gets BN_CHAT_LLAMA3, anything else BN_CHAT_BITNET_OLD.
 *
 * Messages are rendered as segments, text and special tokens apart: text is
 * tokenized without special-token parsing, so a user who types "<|eot_id|>"
 * sends text, not the control token. Content is trimmed of surrounding
 * whitespace, as the templates do. */
#ifndef BN_CHAT_H
#define BN_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "tokenizer.h"
#include "vocab.h"

typedef enum bn_chat_kind { BN_CHAT_BITNET, BN_CHAT_BITNET_OLD, BN_CHAT_LLAMA3 } bn_chat_kind;

typedef enum bn_chat_role { BN_ROLE_SYSTEM, BN_ROLE_USER, BN_ROLE_ASSISTANT } bn_chat_role;

/* "bitnet", "bitnet-old", "llama3" */
const char *bn_chat_kind_name(bn_chat_kind k);
/* Parses a name as above; false if unknown. */
bool bn_chat_kind_from_name(const char *name, bn_chat_kind *out);
/* The format of a template text, or the fallback for the vocabulary (above). */
bn_chat_kind bn_chat_detect(const char *tmpl, size_t len, const bn_vocab *v);
/* A Jinja template text for the format, for writing tokenizer.chat_template. */
const char *bn_chat_template_text(bn_chat_kind k);

typedef struct bn_chat {
    bn_chat_kind kind;
    const bn_vocab *v;
    int eot;          /* the token that ends a message (<|eot_id|> or EOS) */
    int start_header; /* LLAMA3: <|start_header_id|> */
    int end_header;   /* LLAMA3: <|end_header_id|> */
} bn_chat;

/* Prepares a chat of kind k over vocabulary v; fails when v lacks a token the
 * format needs (e.g. <|eot_id|>). */
bn_status bn_chat_init(bn_chat *c, bn_chat_kind k, const bn_vocab *v, bn_err *err);

/* Appends the tokens of one message (role, content) to out. */
bn_status bn_chat_message(const bn_chat *c, bn_chat_role role, const char *content, bn_idvec *out,
                          bn_err *err);
/* Appends the tokens that ask the model for a reply ("Assistant: "). */
bn_status bn_chat_reply_prompt(const bn_chat *c, bn_idvec *out, bn_err *err);
/* Appends the tokens that close a reply (the model's own stop token is not kept). */
void bn_chat_reply_end(const bn_chat *c, bn_idvec *out);
/* True for the tokens that end a reply: EOS, EOT and the format's end token. */
bool bn_chat_is_stop(const bn_chat *c, int id);

#endif
