/* model.c - loading a model from GGUF: architecture, hyperparameters (validated),
 * the weight tensors of every layer (shapes and types checked), the vocabulary. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "types.h"

const char *bn_arch_name(bn_arch a) {
    switch (a) {
    case BN_ARCH_BITNET_B158:
        return "bitnet-b1.58";
    case BN_ARCH_BITNET_25:
        return "bitnet-25";
    case BN_ARCH_BITNET:
        return "bitnet";
    case BN_ARCH_LLAMA:
        return "llama";
    }
    return "?";
}

/* Reads ARCH.suffix as a positive int (required) or leaves *out when optional. */
static bn_status get_int(const gguf_file *f, const char *arch, const char *suffix, bool required,
                         int *out, bn_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint64_t v = 0;
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) {
        if (required) return bn_fail(err, BN_ERR_FORMAT, "missing hyperparameter '%s'", key);
        return BN_OK;
    }
    if (gguf_get_u64(f, key, &v, err) != BN_OK) return err->code;
    if (v == 0 || v > (1u << 30))
        return bn_fail(err, BN_ERR_FORMAT, "hyperparameter '%s' = %llu is out of range", key,
                       (unsigned long long)v);
    *out = (int)v;
    return BN_OK;
}

static bn_status get_float(const gguf_file *f, const char *arch, const char *suffix, float *out,
                           bn_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    double v = *out;
    if (gguf_get_f64_opt(f, key, &v, err) != BN_OK) return err->code;
    if (!isfinite(v) || v <= 0)
        return bn_fail(err, BN_ERR_FORMAT, "hyperparameter '%s' = %g is out of range", key, v);
    *out = (float)v;
    return BN_OK;
}

/* Finds a tensor and checks its shape [ne0, ne1] (ne1 = 0: a 1-D tensor) and type class. */
enum want { WANT_NORM, WANT_PROJ, WANT_EMBD, WANT_SCALE };

static bn_status find_tensor(const bn_model *m, const char *name, int64_t ne0, int64_t ne1,
                             enum want want, bool required, const gguf_tensor_info **out,
                             bn_err *err) {
    const gguf_tensor_info *t = gguf_find_tensor(m->gguf, name);
    *out = t;
    if (!t) {
        if (!required) return BN_OK;
        return bn_fail(err, BN_ERR_FORMAT, "tensor '%s' is missing from %s", name, m->path);
    }
    int64_t want_ne[4] = {ne0, ne1 ? ne1 : 1, 1, 1};
    for (int i = 0; i < 4; i++)
        if (t->ne[i] != want_ne[i])
            return bn_fail(err, BN_ERR_FORMAT,
                           "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                           name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                           (long long)t->ne[3], (long long)ne0, (long long)(ne1 ? ne1 : 1));
    bool ok;
    switch (want) {
    case WANT_NORM:
    case WANT_SCALE:
        ok = t->type == BN_TYPE_F32;
        break;
    case WANT_PROJ:
        ok = bn_type_is_ternary(t->type) || t->type == BN_TYPE_F32 || t->type == BN_TYPE_F16 ||
             t->type == BN_TYPE_BF16;
        break;
    default:
        ok = t->type != BN_TYPE_I32 && t->type != BN_TYPE_ACT_Q8;
        break;
    }
    if (!ok)
        return bn_fail(err, BN_ERR_UNSUPPORTED,
                       "tensor '%s' has type %s, which is not supported here", name,
                       bn_type_name(t->type) ? bn_type_name(t->type) : "?");
    return BN_OK;
}

static bn_status load_hparams(bn_model *m, bn_err *err) {
    const gguf_file *f = m->gguf;
    bn_hparams *hp = &m->hp;
    gguf_str arch;
    if (gguf_get_str(f, "general.architecture", &arch, err) != BN_OK) return err->code;
    if (gguf_str_eq(arch, "bitnet-b1.58"))
        hp->arch = BN_ARCH_BITNET_B158;
    else if (gguf_str_eq(arch, "bitnet-25"))
        hp->arch = BN_ARCH_BITNET_25;
    else if (gguf_str_eq(arch, "bitnet"))
        hp->arch = BN_ARCH_BITNET;
    else if (gguf_str_eq(arch, "llama"))
        hp->arch = BN_ARCH_LLAMA;
    else
        return bn_fail(err, BN_ERR_UNSUPPORTED,
                       "architecture '%.*s' is not supported (known: bitnet-b1.58, bitnet-25, "
                       "bitnet, llama)",
                       (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    snprintf(hp->arch_name, sizeof hp->arch_name, "%.*s", (int)arch.len, arch.ptr);
    const char *a = hp->arch_name;

    bn_status st;
    if ((st = get_int(f, a, "block_count", true, &hp->n_layer, err)) ||
        (st = get_int(f, a, "embedding_length", true, &hp->n_embd, err)) ||
        (st = get_int(f, a, "feed_forward_length", true, &hp->n_ff, err)) ||
        (st = get_int(f, a, "attention.head_count", true, &hp->n_head, err)) ||
        (st = get_int(f, a, "context_length", true, &hp->n_ctx_train, err)))
        return st;
    hp->n_head_kv = hp->n_head;
    if ((st = get_int(f, a, "attention.head_count_kv", false, &hp->n_head_kv, err))) return st;
    if (hp->n_embd % hp->n_head != 0)
        return bn_fail(err, BN_ERR_FORMAT,
                       "%s.embedding_length %d is not a multiple of the head count %d", a,
                       hp->n_embd, hp->n_head);
    if (hp->n_head % hp->n_head_kv != 0)
        return bn_fail(err, BN_ERR_FORMAT,
                       "%s.attention.head_count %d is not a multiple of head_count_kv %d", a,
                       hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    hp->n_rot = hp->head_dim;
    if ((st = get_int(f, a, "rope.dimension_count", false, &hp->n_rot, err))) return st;
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return bn_fail(err, BN_ERR_FORMAT,
                       "%s.rope.dimension_count %d must be even and <= head size %d", a, hp->n_rot,
                       hp->head_dim);
    hp->rms_eps = 1e-5f;
    hp->rope_freq_base = 10000.0f;
    if ((st = get_float(f, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps, err)) ||
        (st = get_float(f, a, "rope.freq_base", &hp->rope_freq_base, err)))
        return st;

    const gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    const gguf_tensor_info *embd = gguf_find_tensor(f, "token_embd.weight");
    hp->n_vocab = 0;
    if ((st = get_int(f, a, "vocab_size", false, &hp->n_vocab, err))) return st;
    if (!hp->n_vocab && embd) hp->n_vocab = (int)embd->ne[1];
    if (!hp->n_vocab && tok && tok->value.type == GGUF_ARRAY)
        hp->n_vocab = (int)tok->value.v.arr.count;

    bool llama = hp->arch == BN_ARCH_LLAMA;
    hp->rope_mode = llama ? BN_ROPE_NORMAL : BN_ROPE_NEOX;
    hp->ffn_act = (hp->arch == BN_ARCH_BITNET_B158 || hp->arch == BN_ARCH_BITNET_25)
                      ? BN_FFN_RELU_SQR
                      : BN_FFN_SILU;
    hp->sub_norms = !llama;
    hp->tied_output = gguf_find_tensor(f, "output.weight") == NULL;
    return BN_OK;
}

static bn_status load_tensors(bn_model *m, bn_err *err) {
    const bn_hparams *hp = &m->hp;
    int64_t E = hp->n_embd, F = hp->n_ff, V = hp->n_vocab;
    int64_t KV = (int64_t)hp->head_dim * hp->n_head_kv;
    bn_status st;
    if ((st = find_tensor(m, "token_embd.weight", E, V, WANT_EMBD, true, &m->tok_embd, err)) ||
        (st = find_tensor(m, "output_norm.weight", E, 0, WANT_NORM, true, &m->output_norm, err)) ||
        (st = find_tensor(m, "output.weight", E, V, WANT_EMBD, false, &m->output, err)))
        return st;
    if (!m->output) m->output = m->tok_embd;

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return bn_fail(err, BN_ERR_OOM, "out of memory for %d layers", hp->n_layer);
    m->weight_type = UINT32_MAX;
    bool bitlinear_types = true;
    for (int l = 0; l < hp->n_layer; l++) {
        bn_layer *L = &m->layers[l];
        char n[96];
        struct {
            const char *name;
            int64_t ne0, ne1;
            enum want want;
            bool required;
            const gguf_tensor_info **dst;
        } want[] = {
            {"attn_norm", E, 0, WANT_NORM, true, &L->attn_norm},
            {"attn_q", E, E, WANT_PROJ, true, &L->attn_q},
            {"attn_k", E, KV, WANT_PROJ, true, &L->attn_k},
            {"attn_v", E, KV, WANT_PROJ, true, &L->attn_v},
            {"attn_output", E, E, WANT_PROJ, true, &L->attn_output},
            {"attn_sub_norm", E, 0, WANT_NORM, hp->sub_norms, &L->attn_sub_norm},
            {"ffn_norm", E, 0, WANT_NORM, true, &L->ffn_norm},
            {"ffn_gate", E, F, WANT_PROJ, true, &L->ffn_gate},
            {"ffn_up", E, F, WANT_PROJ, true, &L->ffn_up},
            {"ffn_down", F, E, WANT_PROJ, true, &L->ffn_down},
            {"ffn_sub_norm", F, 0, WANT_NORM, hp->sub_norms, &L->ffn_sub_norm},
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            snprintf(n, sizeof n, "blk.%d.%s.weight", l, want[i].name);
            if ((st = find_tensor(m, n, want[i].ne0, want[i].ne1, want[i].want, want[i].required,
                                  want[i].dst, err)))
                return st;
            if (want[i].want == WANT_PROJ) {
                uint32_t t = (*want[i].dst)->type;
                if (m->weight_type == UINT32_MAX) m->weight_type = t;
                if (!bn_type_is_ternary(t)) bitlinear_types = false;
            }
        }
        struct {
            const char *name;
            const gguf_tensor_info **dst;
        } scales[] = {
            {"attn_q", &L->attn_q_scale},     {"attn_k", &L->attn_k_scale},
            {"attn_v", &L->attn_v_scale},     {"attn_output", &L->attn_output_scale},
            {"ffn_gate", &L->ffn_gate_scale}, {"ffn_up", &L->ffn_up_scale},
            {"ffn_down", &L->ffn_down_scale},
        };
        for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
            snprintf(n, sizeof n, "blk.%d.%s.scale", l, scales[i].name);
            if ((st = find_tensor(m, n, 1, 0, WANT_SCALE, false, scales[i].dst, err))) return st;
        }
    }
    /* BitNet models always quantize projection inputs per token; a llama-layout
     * file does when its projections are stored ternary (Llama3-8B-1.58). */
    m->hp.bitlinear = hp->arch != BN_ARCH_LLAMA || bitlinear_types;
    return BN_OK;
}

/* Ternary weights are validated once at load (I2_S code 3, bad scales). */
static bn_status validate_weights(bn_model *m, bn_err *err) {
    for (uint64_t i = 0; i < gguf_tensor_count(m->gguf); i++) {
        const gguf_tensor_info *t = gguf_tensor_at(m->gguf, i);
        if (!bn_type_is_ternary(t->type)) continue;
        int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        if (bn_validate_ternary(t->type, t->data, t->ne[0], rows, err) != BN_OK) {
            bn_err_prefix(err, "tensor '%s'", t->name);
            return err->code;
        }
    }
    return BN_OK;
}

bn_status bn_model_from_gguf(gguf_file *f, const char *name, bn_model **out, bn_err *err) {
    *out = NULL;
    bn_model *m = calloc(1, sizeof *m);
    if (!m) {
        gguf_close(f);
        return bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    snprintf(m->path, sizeof m->path, "%s", name);
    m->gguf = f;
    bn_status st = load_hparams(m, err);
    if (st == BN_OK) st = load_tensors(m, err);
    if (st == BN_OK) st = validate_weights(m, err);
    if (st == BN_OK) {
        st = bn_vocab_load(&m->vocab, m->gguf, err);
        if (st == BN_OK && m->vocab.n_tokens != m->hp.n_vocab)
            st = bn_fail(err, BN_ERR_FORMAT,
                         "the vocabulary has %d tokens but the model's output has %d rows",
                         m->vocab.n_tokens, m->hp.n_vocab);
    }
    if (st != BN_OK) {
        bn_model_free(m);
        return st;
    }
    *out = m;
    return BN_OK;
}

bn_status bn_model_load(const char *path, bn_model **out, bn_err *err) {
    *out = NULL;
    gguf_file *f;
    bn_status st = gguf_open(path, &f, err);
    if (st != BN_OK) return st;
    return bn_model_from_gguf(f, path, out, err);
}

void bn_model_free(bn_model *m) {
    if (!m) return;
    bn_vocab_free(&m->vocab);
    free(m->layers);
    gguf_close(m->gguf);
    free(m);
}

uint64_t bn_model_bytes(const bn_model *m) {
    uint64_t s = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(m->gguf); i++)
        s += gguf_tensor_at(m->gguf, i)->nbytes;
    return s;
}

uint64_t bn_model_params(const bn_model *m) {
    uint64_t s = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(m->gguf); i++) {
        const gguf_tensor_info *t = gguf_tensor_at(m->gguf, i);
        s += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    return s;
}
