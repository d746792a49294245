/* cmd_info.c - `bitnet info`: a model's architecture, hyperparameters, tensor
 * table, totals and tokenizer summary, as text or JSON. */
#include <stdio.h>
#include <string.h>

#include "../core/model.h"
#include "../core/types.h"
#include "cli.h"

static void json_str(FILE *o, const char *s, size_t n) {
    fputc('"', o);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 0x20)
            fprintf(o, "\\u%04x", c);
        else
            fputc(c, o);
    }
    fputc('"', o);
}

static const char *kind_name(bn_vocab_kind k) {
    return k == BN_VOCAB_SPM ? "llama (SentencePiece)" : "gpt2 (byte-level BPE)";
}

static void print_text(const bn_model *m) {
    const bn_hparams *h = &m->hp;
    printf("file:            %s\n", m->path);
    printf("gguf version:    %u, %llu metadata keys, %llu tensors\n", gguf_version(m->gguf),
           (unsigned long long)gguf_kv_count(m->gguf),
           (unsigned long long)gguf_tensor_count(m->gguf));
    printf("architecture:    %s\n", h->arch_name);
    printf("layers:          %d\n", h->n_layer);
    printf("hidden / ffn:    %d / %d\n", h->n_embd, h->n_ff);
    printf("heads / kv:      %d / %d (head size %d)\n", h->n_head, h->n_head_kv, h->head_dim);
    printf("vocab:           %d\n", h->n_vocab);
    printf("context (train): %d\n", h->n_ctx_train);
    printf("rope:            %s, theta %g, %d dims\n", h->rope_mode ? "neox" : "normal",
           (double)h->rope_freq_base, h->n_rot);
    printf("rms eps:         %g\n", (double)h->rms_eps);
    printf("ffn:             %s%s\n",
           h->ffn_act == BN_FFN_RELU_SQR ? "relu^2(gate) * up" : "silu(gate) * up",
           h->sub_norms ? ", sub-norms" : "");
    printf("output:          %s\n", h->tied_output ? "tied to token_embd" : "output.weight");
    printf("projections:     %s%s\n", bn_type_name(m->weight_type),
           h->bitlinear ? " (int8 activations per token)" : "");
    printf("\n%-36s %-6s %-22s %12s\n", "tensor", "type", "shape", "bytes");
    for (uint64_t i = 0; i < gguf_tensor_count(m->gguf); i++) {
        const gguf_tensor_info *t = gguf_tensor_at(m->gguf, i);
        char shape[64];
        int o = snprintf(shape, sizeof shape, "[%lld", (long long)t->ne[0]);
        for (uint32_t d = 1; d < t->n_dims; d++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, ", %lld", (long long)t->ne[d]);
        snprintf(shape + o, sizeof shape - (size_t)o, "]");
        printf("%-36s %-6s %-22s %12llu\n", t->name, bn_type_name(t->type), shape,
               (unsigned long long)t->nbytes);
    }
    uint64_t bytes = bn_model_bytes(m), params = bn_model_params(m);
    printf("\ntotal:           %.2f M parameters, %.2f MB (%.2f bits per parameter)\n",
           (double)params / 1e6, (double)bytes / 1e6, 8.0 * (double)bytes / (double)params);
    const bn_vocab *v = &m->vocab;
    printf("tokenizer:       %s, %d tokens, bos %d, eos %d, add_bos %s\n", kind_name(v->kind),
           v->n_tokens, v->bos, v->eos, v->add_bos ? "yes" : "no");
}

static void print_json(const bn_model *m) {
    const bn_hparams *h = &m->hp;
    printf("{\n  \"file\": ");
    json_str(stdout, m->path, strlen(m->path));
    printf(",\n  \"gguf_version\": %u,\n  \"architecture\": \"%s\",\n", gguf_version(m->gguf),
           h->arch_name);
    printf("  \"hparams\": {\"n_layer\": %d, \"n_embd\": %d, \"n_ff\": %d, \"n_head\": %d, "
           "\"n_head_kv\": %d, \"head_dim\": %d, \"n_vocab\": %d, \"n_ctx_train\": %d, "
           "\"rope_freq_base\": %g, \"rope_mode\": \"%s\", \"n_rot\": %d, \"rms_eps\": %g, "
           "\"ffn\": \"%s\", \"sub_norms\": %s, \"tied_output\": %s},\n",
           h->n_layer, h->n_embd, h->n_ff, h->n_head, h->n_head_kv, h->head_dim, h->n_vocab,
           h->n_ctx_train, (double)h->rope_freq_base, h->rope_mode ? "neox" : "normal", h->n_rot,
           (double)h->rms_eps, h->ffn_act == BN_FFN_RELU_SQR ? "relu2" : "silu",
           h->sub_norms ? "true" : "false", h->tied_output ? "true" : "false");
    printf("  \"weight_type\": \"%s\",\n  \"tensors\": [\n", bn_type_name(m->weight_type));
    uint64_t n = gguf_tensor_count(m->gguf);
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor_info *t = gguf_tensor_at(m->gguf, i);
        printf("    {\"name\": ");
        json_str(stdout, t->name, strlen(t->name));
        printf(", \"type\": \"%s\", \"shape\": [", bn_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++)
            printf("%s%lld", d ? ", " : "", (long long)t->ne[d]);
        printf("], \"bytes\": %llu}%s\n", (unsigned long long)t->nbytes, i + 1 < n ? "," : "");
    }
    const bn_vocab *v = &m->vocab;
    printf("  ],\n  \"total_params\": %llu,\n  \"total_bytes\": %llu,\n",
           (unsigned long long)bn_model_params(m), (unsigned long long)bn_model_bytes(m));
    printf("  \"tokenizer\": {\"model\": \"%s\", \"n_tokens\": %d, \"bos\": %d, \"eos\": %d, "
           "\"add_bos\": %s}\n}\n",
           v->kind == BN_VOCAB_SPM ? "llama" : "gpt2", v->n_tokens, v->bos, v->eos,
           v->add_bos ? "true" : "false");
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: bitnet info FILE [--json]\n\n"
                   "Shows a model's architecture, hyperparameters, tensor table (name, type,\n"
                   "shape, bytes), totals and tokenizer summary.\n\n"
                   "options:\n  -m FILE   the model (or give it as the first argument)\n"
                   "  --json    machine-readable output\n");
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "-m")) {
            if (!(path = cli_value("info", argc, argv, &i))) return EXIT_USAGE;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("info", "unknown option '%s'", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_usage_error("info", "one model at a time ('%s' is extra)", argv[i]);
        }
    }
    if (!path) return cli_usage_error("info", "no model given");
    bn_model *m;
    bn_err err = {0};
    if (bn_model_load(path, &m, &err) != BN_OK) return cli_fail(&err);
    if (json)
        print_json(m);
    else
        print_text(m);
    bn_model_free(m);
    return 0;
}
