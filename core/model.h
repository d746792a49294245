/* model.h - a loaded model: hyperparameters from GGUF metadata, weight tensors
 * as views into the file mapping (never copied), and the vocabulary.
 *
 * Architectures: bitnet-b1.58 and bitnet-25 (BitNet-b1.58-2B-4T: ReLU^2 FFN,
 * sub-norms, tied output), bitnet (bitnet_b1_58-large/3B: SiLU, sub-norms),
 * llama (Llama3-8B-1.58, Falcon3-1.58: SiLU, no sub-norms, own output head).
 * Loading validates everything the graph builder relies on: head counts divide,
 * every tensor exists with the expected shape and a supported type. */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include <stdbool.h>

#include "error.h"
#include "gguf.h"
#include "vocab.h"

typedef enum bn_arch {
    BN_ARCH_BITNET_B158, /* "bitnet-b1.58" */
    BN_ARCH_BITNET_25,   /* "bitnet-25", older name of the same */
    BN_ARCH_BITNET,      /* "bitnet" */
    BN_ARCH_LLAMA,       /* "llama" */
} bn_arch;

typedef enum bn_ffn_act { BN_FFN_RELU_SQR, BN_FFN_SILU } bn_ffn_act;

typedef struct bn_hparams {
    bn_arch arch;
    char arch_name[32];
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train, n_rot;
    float rms_eps, rope_freq_base;
    int rope_mode; /* BN_ROPE_NEOX or BN_ROPE_NORMAL (graph/ir.h) */
    bn_ffn_act ffn_act;
    bool sub_norms;   /* attn_sub_norm / ffn_sub_norm present */
    bool tied_output; /* logits from token_embd (no output.weight) */
    bool bitlinear;   /* projections quantize their input per token (FORMATS.md) */
} bn_hparams;

typedef struct bn_layer {
    const gguf_tensor_info *attn_norm, *attn_q, *attn_k, *attn_v, *attn_output, *attn_sub_norm;
    const gguf_tensor_info *ffn_norm, *ffn_gate, *ffn_up, *ffn_down, *ffn_sub_norm;
    /* optional per-projection output scales ([1] F32), NULL when absent */
    const gguf_tensor_info *attn_q_scale, *attn_k_scale, *attn_v_scale, *attn_output_scale;
    const gguf_tensor_info *ffn_gate_scale, *ffn_up_scale, *ffn_down_scale;
} bn_layer;

typedef struct bn_model {
    char path[1024];
    gguf_file *gguf;
    bn_hparams hp;
    const gguf_tensor_info *tok_embd, *output_norm, *output; /* output == tok_embd when tied */
    bn_layer *layers;
    bn_vocab vocab;
    uint32_t weight_type; /* type of the projections (I2_S, TQ2_0, ...) */
} bn_model;

bn_status bn_model_load(const char *path, bn_model **out, bn_err *err);
/* The same over an opened file, which the model takes over (closed on failure
 * too); name is used in messages. */
bn_status bn_model_from_gguf(gguf_file *f, const char *name, bn_model **out, bn_err *err);
void bn_model_free(bn_model *m);

/* Total bytes and parameter count of all tensors. */
uint64_t bn_model_bytes(const bn_model *m);
uint64_t bn_model_params(const bn_model *m);

const char *bn_arch_name(bn_arch a);

#endif
