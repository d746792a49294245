/* cmd_convert.c - `bitnet convert HF_DIR -o FILE --type i2_s|tq2_0|tq1_0|f16`: turns a
 * Hugging Face BitNet checkpoint into a GGUF file the engine loads (FORMATS.md "Hugging
 * Face checkpoints" and "The BitNet b1.58 models").
 *
 * Reads config.json, the safetensors files (mmapped) and the tokenizer (convert_vocab.c).
 * Projections arrive either as master (latent) weights in F32/F16/BF16, ternarized here per
 * tensor with absmean (s = max(mean|W|, 1e-5), code = clamp(round(W/s), -1, 1)), or packed
 * as U8 (4 codes per byte along the output dimension) with a weight_scale whose meaning
 * depends on transformers' linear class: "autobitlinear" multiplies the output by it
 * (weight = code * weight_scale), "bitlinear" divides (weight = code / weight_scale).
 * Scales are rounded to f16 in every encoding (see f16_exact). Llama-layout checkpoints get
 * Q and K rows permuted so that the interleaved RoPE of the
 * llama GGUF layout equals transformers' rotate-half RoPE. Tensors are converted and written
 * one at a time, so memory holds one tensor, not the model. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/gguf.h"
#include "../core/os.h"
#include "../core/safetensors.h"
#include "../core/types.h"
#include "cli.h"
#include "convert.h"

#define SUPPORTED                                                                                  \
    "BitNetForCausalLM (microsoft/bitnet-b1.58-2B-4T and -bf16), BitnetForCausalLM "               \
    "(1bitLLM/bitnet_b1_58-large, -3B), LlamaForCausalLM (HF1BitLLM/Llama3-8B-1.58)"

typedef enum scale_mode { SCALE_AUTO, SCALE_MUL, SCALE_DIV } scale_mode;

typedef struct cv_cfg {
    const char *arch; /* GGUF architecture */
    int n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, n_ctx;
    double eps, theta;
    bool tied, llama, sub_norms;
    bool scale_mul; /* packed weights: weight = code * weight_scale (else / weight_scale) */
    char linear_class[32], quant_mode[32];
    cv_special sp;
} cv_cfg;

/* One output tensor: where it comes from and how. */
typedef enum src_kind { SRC_NORM, SRC_EMBD, SRC_PROJ } src_kind;
typedef struct cv_job {
    char name[96];
    const st_tensor *src;
    const st_tensor *scale; /* packed: weight_scale */
    src_kind kind;
    uint32_t type;
    int64_t ne0, ne1;
    int permute_heads; /* llama Q/K: heads to permute rows of (0: none) */
} cv_job;

static void convert_usage(FILE *o) {
    fprintf(o,
            "usage: bitnet convert HF_DIR -o FILE [--type i2_s|tq2_0|tq1_0|f16] [options]\n\n"
            "Converts a Hugging Face checkpoint directory (config.json, *.safetensors, and\n"
            "tokenizer.model or tokenizer.json) into a GGUF model file.\n"
            "Supported: " SUPPORTED ".\n\n"
            "options:\n"
            "  -o, --outfile FILE     the GGUF file to write\n"
            "  --type T               projection weights: i2_s (default), tq2_0, tq1_0, f16\n"
            "  --embd-type T          token embedding and output head: f16 (default), f32\n"
            "  --weight-scale M       packed checkpoints: mul (weight = code * weight_scale),\n"
            "                         div (weight = code / weight_scale), or auto (default: from\n"
            "                         quantization_config.linear_class: autobitlinear = mul,\n"
            "                         bitlinear = div)\n"
            "  --exact-scale          keep each tensor's f32 scale in I2_S files instead of\n"
            "                         rounding it to f16 as TQ1_0/TQ2_0/F16 must (by default all\n"
            "                         encodings hold the same weights)\n"
            "  --name NAME            general.name (default: the directory's name)\n"
            "  -h, --help             this help\n");
}

static cJSON *load_json_file(const char *path, bn_err *err) {
    bn_mapping mp;
    if (bn_map_file(path, &mp, err) != BN_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)mp.data, mp.size);
    bn_unmap_file(&mp);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        bn_fail(err, BN_ERR_FORMAT, "%s is not a JSON object", path);
        return NULL;
    }
    return j;
}

static bool json_int(cJSON *j, const char *key, int *out, bool required, bn_err *err) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9) {
        *out = (int)v->valuedouble;
        return true;
    }
    if (!required && (!v || cJSON_IsNull(v))) return true;
    bn_fail(err, BN_ERR_FORMAT, "config.json: '%s' is %s", key,
            v ? "not a valid count" : "missing");
    return false;
}

static bn_status read_config(const char *dir, const st_model *stm, scale_mode sm, cv_cfg *c,
                             bn_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *j = load_json_file(path, err);
    if (!j) return err->code;
    bn_status st = BN_ERR_FORMAT;
    memset(c, 0, sizeof *c);
    c->sp.bos = c->sp.eos = -1;
    cJSON *archs = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    cJSON *a0 = cJSON_GetArrayItem(archs, 0);
    const char *an = cJSON_IsString(a0) ? a0->valuestring : "(none)";
    bool bitnet_hf = !strcmp(an, "BitNetForCausalLM") || !strcmp(an, "BitnetForCausalLM");
    c->llama = !strcmp(an, "LlamaForCausalLM");
    if (!bitnet_hf && !c->llama) {
        bn_fail(err, BN_ERR_UNSUPPORTED,
                "architecture '%s' is not supported; supported: " SUPPORTED, an);
        goto done;
    }
    c->n_head_kv = 0;
    c->n_ctx = 2048;
    if (!json_int(j, "hidden_size", &c->n_embd, true, err) ||
        !json_int(j, "intermediate_size", &c->n_ff, true, err) ||
        !json_int(j, "num_hidden_layers", &c->n_layer, true, err) ||
        !json_int(j, "num_attention_heads", &c->n_head, true, err) ||
        !json_int(j, "vocab_size", &c->n_vocab, true, err) ||
        !json_int(j, "num_key_value_heads", &c->n_head_kv, false, err) ||
        !json_int(j, "max_position_embeddings", &c->n_ctx, false, err))
        goto done;
    if (!c->n_head_kv) c->n_head_kv = c->n_head;
    if (!c->n_embd || !c->n_head || !c->n_layer || !c->n_ff || !c->n_vocab ||
        c->n_embd % c->n_head || c->n_head % c->n_head_kv) {
        bn_fail(err, BN_ERR_FORMAT,
                "config.json: inconsistent sizes (hidden %d, heads %d, kv heads %d, layers %d)",
                c->n_embd, c->n_head, c->n_head_kv, c->n_layer);
        goto done;
    }
    int hd = 0;
    if (!json_int(j, "head_dim", &hd, false, err)) goto done;
    if (hd && hd != c->n_embd / c->n_head) {
        bn_fail(err, BN_ERR_UNSUPPORTED, "config.json: head_dim %d != hidden_size / heads", hd);
        goto done;
    }
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "rms_norm_eps");
    c->eps = cJSON_IsNumber(v) ? v->valuedouble : 1e-5;
    v = cJSON_GetObjectItemCaseSensitive(j, "rope_theta");
    c->theta = cJSON_IsNumber(v) ? v->valuedouble : 10000.0;
    v = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    if (v && !cJSON_IsNull(v)) {
        bn_fail(err, BN_ERR_UNSUPPORTED, "config.json: rope_scaling is not supported");
        goto done;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "tie_word_embeddings");
    c->tied = v ? cJSON_IsTrue(v) : !c->llama;
    if (!st_find(stm, "lm_head.weight")) c->tied = true;
    v = cJSON_GetObjectItemCaseSensitive(j, "bos_token_id");
    if (cJSON_IsNumber(v)) c->sp.bos = v->valueint;
    v = cJSON_GetObjectItemCaseSensitive(j, "eos_token_id");
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
    if (cJSON_IsNumber(v)) c->sp.eos = v->valueint;

    cJSON *qc = cJSON_GetObjectItemCaseSensitive(j, "quantization_config");
    v = cJSON_GetObjectItemCaseSensitive(qc, "linear_class");
    snprintf(c->linear_class, sizeof c->linear_class, "%s",
             cJSON_IsString(v) ? v->valuestring : "bitlinear");
    v = cJSON_GetObjectItemCaseSensitive(qc, "quantization_mode");
    snprintf(c->quant_mode, sizeof c->quant_mode, "%s",
             cJSON_IsString(v) ? v->valuestring : "offline");
    c->scale_mul =
        sm == SCALE_MUL || (sm == SCALE_AUTO && !strcmp(c->linear_class, "autobitlinear"));

    /* FFN activation and layout decide the GGUF architecture */
    v = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    const char *act = cJSON_IsString(v) ? v->valuestring : "silu";
    c->sub_norms = st_find(stm, "model.layers.0.self_attn.attn_sub_norm.weight") ||
                   st_find(stm, "model.layers.0.self_attn.inner_attn_ln.weight");
    bool relu2 = !strcmp(act, "relu2");
    if (!relu2 && strcmp(act, "silu")) {
        bn_fail(err, BN_ERR_UNSUPPORTED, "config.json: hidden_act '%s' (supported: relu2, silu)",
                act);
        goto done;
    }
    if (c->sub_norms)
        c->arch = relu2 ? "bitnet-b1.58" : "bitnet";
    else if (!relu2)
        c->arch = "llama";
    else {
        bn_fail(err, BN_ERR_UNSUPPORTED, "relu2 without sub-norms is not a supported layout");
        goto done;
    }
    c->llama = !c->sub_norms;
    st = BN_OK;
done:
    cJSON_Delete(j);
    return st;
}

/* Finds a tensor under one of two names. */
static const st_tensor *find2(const st_model *m, const char *a, const char *b) {
    const st_tensor *t = st_find(m, a);
    return t || !b ? t : st_find(m, b);
}

static bn_status plan_jobs(const st_model *stm, const cv_cfg *c, uint32_t ptype, uint32_t etype,
                           cv_job **out, int *n_out, bn_err *err) {
    int cap = 3 + c->n_layer * 11;
    cv_job *jobs = calloc((size_t)cap, sizeof *jobs);
    if (!jobs) return bn_fail(err, BN_ERR_OOM, "out of memory");
    int n = 0;
    int64_t E = c->n_embd, F = c->n_ff, KV = (int64_t)c->n_embd / c->n_head * c->n_head_kv;
#define ADD(gname, t, k, ty, a, b, perm)                                                           \
    do {                                                                                           \
        cv_job *J = &jobs[n++];                                                                    \
        snprintf(J->name, sizeof J->name, "%s", gname);                                            \
        J->src = t;                                                                                \
        J->kind = k;                                                                               \
        J->type = ty;                                                                              \
        J->ne0 = a;                                                                                \
        J->ne1 = b;                                                                                \
        J->permute_heads = perm;                                                                   \
    } while (0)
    ADD("token_embd.weight", st_find(stm, "model.embed_tokens.weight"), SRC_EMBD, etype, E,
        c->n_vocab, 0);
    ADD("output_norm.weight", st_find(stm, "model.norm.weight"), SRC_NORM, BN_TYPE_F32, E, 1, 0);
    if (!c->tied)
        ADD("output.weight", st_find(stm, "lm_head.weight"), SRC_EMBD, etype, E, c->n_vocab, 0);
    for (int l = 0; l < c->n_layer; l++) {
        static const struct {
            const char *gguf, *hf, *hf2;
            int kind, rows, perm; /* rows: 0 E, 1 KV, 2 F; input: E unless down/o */
        } map[] = {
            {"attn_norm", "input_layernorm", NULL, SRC_NORM, 0, 0},
            {"attn_q", "self_attn.q_proj", NULL, SRC_PROJ, 0, 1},
            {"attn_k", "self_attn.k_proj", NULL, SRC_PROJ, 1, 2},
            {"attn_v", "self_attn.v_proj", NULL, SRC_PROJ, 1, 0},
            {"attn_output", "self_attn.o_proj", NULL, SRC_PROJ, 0, 0},
            {"attn_sub_norm", "self_attn.attn_sub_norm", "self_attn.inner_attn_ln", SRC_NORM, 0, 0},
            {"ffn_norm", "post_attention_layernorm", NULL, SRC_NORM, 0, 0},
            {"ffn_gate", "mlp.gate_proj", NULL, SRC_PROJ, 2, 0},
            {"ffn_up", "mlp.up_proj", NULL, SRC_PROJ, 2, 0},
            {"ffn_down", "mlp.down_proj", NULL, SRC_PROJ, 0, 0},
            {"ffn_sub_norm", "mlp.ffn_sub_norm", "mlp.ffn_layernorm", SRC_NORM, 2, 0},
        };
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
            if (!c->sub_norms && strstr(map[i].gguf, "sub_norm")) continue;
            char g[96], a[160], b[160];
            snprintf(g, sizeof g, "blk.%d.%s.weight", l, map[i].gguf);
            snprintf(a, sizeof a, "model.layers.%d.%s.weight", l, map[i].hf);
            snprintf(b, sizeof b, "model.layers.%d.%s.weight", l, map[i].hf2 ? map[i].hf2 : "");
            int64_t rows = map[i].rows == 0 ? E : map[i].rows == 1 ? KV : F;
            int64_t in = !strcmp(map[i].gguf, "ffn_down") ? F : E;
            int perm = 0;
            if (c->llama && map[i].perm) perm = map[i].perm == 1 ? c->n_head : c->n_head_kv;
            if (map[i].kind == SRC_NORM)
                ADD(g, find2(stm, a, map[i].hf2 ? b : NULL), SRC_NORM, BN_TYPE_F32, rows, 1, 0);
            else
                ADD(g, find2(stm, a, NULL), SRC_PROJ, ptype, in, rows, perm);
            if (map[i].kind == SRC_PROJ) {
                snprintf(a, sizeof a, "model.layers.%d.%s.weight_scale", l, map[i].hf);
                jobs[n - 1].scale = st_find(stm, a);
            }
        }
    }
#undef ADD
    /* check sources, shapes and dtypes */
    bn_status st = BN_OK;
    for (int i = 0; i < n && st == BN_OK; i++) {
        const cv_job *J = &jobs[i];
        const st_tensor *t = J->src;
        if (!t) {
            st = bn_fail(err, BN_ERR_FORMAT, "the checkpoint has no tensor for '%s'", J->name);
            break;
        }
        bool packed = t->dtype == ST_U8 || t->dtype == ST_I8;
        int64_t want0 = J->kind == SRC_NORM ? J->ne0 : J->ne1; /* outer (rows) */
        int64_t want1 = J->ne0;
        bool ok;
        if (J->kind == SRC_NORM)
            ok = t->n_dims == 1 && t->shape[0] == want0 && !packed;
        else if (packed)
            ok = J->kind == SRC_PROJ && t->n_dims == 2 && t->shape[0] * 4 == want0 &&
                 t->shape[1] == want1 && J->scale && J->scale->n_elems == 1 &&
                 J->scale->dtype != ST_U8 && J->scale->dtype != ST_I8;
        else
            ok = t->n_dims == 2 && t->shape[0] == want0 && t->shape[1] == want1;
        if (!ok) {
            char shape[96] = "";
            for (int d = 0; d < t->n_dims; d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld",
                         d ? ", " : "", (long long)t->shape[d]);
            char want[64];
            if (J->kind == SRC_NORM)
                snprintf(want, sizeof want, "[%lld]", (long long)want0);
            else
                snprintf(want, sizeof want, "[%lld, %lld]", (long long)want0, (long long)want1);
            st = bn_fail(err, BN_ERR_FORMAT,
                         "tensor '%s' (for %s): dtype %s, shape [%s] does not match the config "
                         "(expected %s%s)",
                         t->name, J->name, st_dtype_name(t->dtype), shape, want,
                         packed ? " unpacked, with a scalar weight_scale beside it" : "");
        } else if (J->kind == SRC_PROJ && bn_type_is_ternary(J->type) &&
                   J->ne0 % bn_type_block_elems(J->type)) {
            st = bn_fail(err, BN_ERR_UNSUPPORTED,
                         "tensor '%s' has rows of %lld elements, not a multiple of %lld as %s "
                         "needs; try another --type",
                         J->name, (long long)J->ne0, (long long)bn_type_block_elems(J->type),
                         bn_type_name(J->type));
        }
    }
    if (st != BN_OK) {
        free(jobs);
        return st;
    }
    *out = jobs;
    *n_out = n;
    return BN_OK;
}

/* The scale rounded to the nearest f16 value: TQ1_0, TQ2_0 and F16 store scales as f16, so
 * rounding it for I2_S too makes every encoding of a checkpoint hold the same weights (and give
 * the same logits). The change is at most 2^-11 of the scale. */
static bool g_exact_scale;
static float f16_exact(float s) {
    return g_exact_scale ? s : bn_f16_to_f32(bn_f32_to_f16(s));
}

/* The ternary weight of a projection as floats code * scale, [ne1 rows][ne0]. */
static bn_status load_proj(const cv_job *J, bool scale_mul, float *w, bn_err *err) {
    const st_tensor *t = J->src;
    int64_t K = J->ne0, N = J->ne1, n = K * N;
    if (t->dtype == ST_U8 || t->dtype == ST_I8) {
        float ws;
        st_read_f32(J->scale, 0, 1, &ws);
        if (!(ws > 0) || !isfinite(ws))
            return bn_fail(err, BN_ERR_FORMAT, "tensor '%s': weight_scale %g is not positive",
                           J->scale->name, (double)ws);
        float s = f16_exact(scale_mul ? ws : 1.0f / ws);
        int64_t pr = N / 4; /* packed rows */
        for (int64_t r = 0; r < pr; r++)
            for (int64_t k = 0; k < K; k++) {
                uint8_t b = t->data[r * K + k];
                for (int i = 0; i < 4; i++) {
                    int c = (b >> (2 * i)) & 3;
                    if (c == 3)
                        return bn_fail(err, BN_ERR_FORMAT,
                                       "tensor '%s': packed code 3 at row %lld, column %lld",
                                       t->name, (long long)r, (long long)k);
                    w[(i * pr + r) * K + k] = (float)(c - 1) * s;
                }
            }
        return BN_OK;
    }
    /* master weights: absmean per tensor, the mean in double */
    st_read_f32(t, 0, n, w);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(w[i]))
            return bn_fail(err, BN_ERR_FORMAT, "tensor '%s' holds a non-finite value at %lld",
                           t->name, (long long)i);
        sum += fabs((double)w[i]);
    }
    float s = (float)(sum / (double)n);
    if (s < 1e-5f) s = 1e-5f;
    float s16 = f16_exact(s);
    for (int64_t i = 0; i < n; i++) {
        float q = nearbyintf(w[i] / s); /* round half to even, against the exact scale */
        q = q > 1 ? 1 : q < -1 ? -1 : q;
        w[i] = q * s16;
    }
    return BN_OK;
}

/* Llama Q/K: row (h, 2i + j) of the output takes input row (h, j * hd/2 + i), so that the
 * interleaved RoPE pairs of the GGUF layout are transformers' rotate-half pairs. */
static bn_status permute_rows(float *w, int64_t K, int64_t N, int heads, bn_err *err) {
    int64_t hd = N / heads, half = hd / 2;
    float *tmp = malloc(sizeof(float) * (size_t)(hd * K));
    if (!tmp) return bn_fail(err, BN_ERR_OOM, "out of memory");
    for (int h = 0; h < heads; h++) {
        float *base = w + h * hd * K;
        memcpy(tmp, base, sizeof(float) * (size_t)(hd * K));
        for (int64_t i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(base + (2 * i + j) * K, tmp + (j * half + i) * K, sizeof(float) * (size_t)K);
    }
    free(tmp);
    return BN_OK;
}

static bn_status write_job(gguf_writer *w, const cv_job *J, const cv_cfg *c, bn_err *err) {
    int64_t n = J->ne0 * J->ne1;
    float *buf = malloc(sizeof(float) * (size_t)n);
    void *q = NULL;
    bn_status st = BN_OK;
    if (!buf) return bn_fail(err, BN_ERR_OOM, "out of memory for '%s'", J->name);
    if (J->kind == SRC_PROJ) {
        st = load_proj(J, c->scale_mul, buf, err);
        if (st == BN_OK && J->permute_heads)
            st = permute_rows(buf, J->ne0, J->ne1, J->permute_heads, err);
    } else {
        st_read_f32(J->src, 0, n, buf);
    }
    int64_t ne[4] = {J->ne0, J->ne1, 1, 1};
    size_t nb = 0;
    if (st == BN_OK) st = bn_tensor_bytes(J->type, ne, &nb, err);
    if (st == BN_OK && !(q = malloc(nb))) st = bn_fail(err, BN_ERR_OOM, "out of memory");
    if (st == BN_OK) st = bn_quantize(J->type, buf, J->ne0, J->ne1, q, err);
    if (st == BN_OK) st = gguf_writer_write_tensor(w, q, nb, err);
    if (st != BN_OK && err->msg[0]) bn_err_prefix(err, "%s", J->name);
    free(q);
    free(buf);
    return st;
}

int cmd_convert(int argc, char **argv) {
    const char *dir = NULL, *outp = NULL, *name = NULL;
    uint32_t ptype = BN_TYPE_I2_S, etype = BN_TYPE_F16;
    scale_mode sm = SCALE_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            convert_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--outfile")) {
            if (!(v = cli_value("convert", argc, argv, &i))) return EXIT_USAGE;
            outp = v;
        } else if (!strcmp(a, "--type")) {
            if (!(v = cli_value("convert", argc, argv, &i))) return EXIT_USAGE;
            int t = bn_type_from_name(v);
            if (t != BN_TYPE_I2_S && t != BN_TYPE_TQ2_0 && t != BN_TYPE_TQ1_0 && t != BN_TYPE_F16)
                return cli_usage_error("convert",
                                       "--type must be i2_s, tq2_0, tq1_0 or f16, not '%s'", v);
            ptype = (uint32_t)t;
        } else if (!strcmp(a, "--embd-type")) {
            if (!(v = cli_value("convert", argc, argv, &i))) return EXIT_USAGE;
            int t = bn_type_from_name(v);
            if (t != BN_TYPE_F16 && t != BN_TYPE_F32)
                return cli_usage_error("convert", "--embd-type must be f16 or f32, not '%s'", v);
            etype = (uint32_t)t;
        } else if (!strcmp(a, "--weight-scale")) {
            if (!(v = cli_value("convert", argc, argv, &i))) return EXIT_USAGE;
            if (!strcmp(v, "mul"))
                sm = SCALE_MUL;
            else if (!strcmp(v, "div"))
                sm = SCALE_DIV;
            else if (!strcmp(v, "auto"))
                sm = SCALE_AUTO;
            else
                return cli_usage_error("convert",
                                       "--weight-scale must be auto, mul or div, not '%s'", v);
        } else if (!strcmp(a, "--exact-scale")) {
            g_exact_scale = true;
        } else if (!strcmp(a, "--name")) {
            if (!(v = cli_value("convert", argc, argv, &i))) return EXIT_USAGE;
            name = v;
        } else if (a[0] == '-') {
            return cli_usage_error("convert", "unknown option '%s'", a);
        } else if (!dir) {
            dir = a;
        } else {
            return cli_usage_error("convert", "more than one input directory ('%s', '%s')", dir, a);
        }
    }
    if (!dir) return cli_usage_error("convert", "give the Hugging Face checkpoint directory");
    if (!outp) return cli_usage_error("convert", "give the output file with -o FILE");

    bn_err err = {0};
    st_model stm;
    cv_cfg c;
    cv_job *jobs = NULL;
    int n_jobs = 0, rc = 1;
    gguf_writer *w = NULL;
    if (st_open_dir(dir, &stm, &err) != BN_OK) return cli_fail(&err);
    if (read_config(dir, &stm, sm, &c, &err) != BN_OK ||
        plan_jobs(&stm, &c, ptype, etype, &jobs, &n_jobs, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    bool packed = jobs[3 + !c.tied].src->dtype == ST_U8;
    w = gguf_writer_new();
    if (!name) {
        const char *s = strrchr(dir, '/');
        name = s && s[1] ? s + 1 : dir;
    }
    char key[128];
#define KEY(s) (snprintf(key, sizeof key, "%s.%s", c.arch, s), key)
    gguf_writer_set_str(w, "general.architecture", c.arch);
    gguf_writer_set_str(w, "general.name", name);
    gguf_writer_set_u32(w, "general.file_type", ptype);
    gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)c.n_vocab);
    gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)c.n_ctx);
    gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)c.n_embd);
    gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)c.n_ff);
    gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)c.n_layer);
    gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)c.n_head);
    gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c.n_head_kv);
    gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)c.eps);
    gguf_writer_set_f32(w, KEY("rope.freq_base"), (float)c.theta);
    gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)(c.n_embd / c.n_head));
#undef KEY
    const char *vkind = "?";
    if (cv_write_vocab(w, dir, c.n_vocab, c.sp, &vkind, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    for (int i = 0; i < n_jobs; i++) {
        int64_t ne[2] = {jobs[i].ne0, jobs[i].ne1};
        if (gguf_writer_add_tensor(w, jobs[i].name, jobs[i].type, jobs[i].ne1 > 1 ? 2 : 1, ne,
                                   &err) != BN_OK) {
            cli_fail(&err);
            goto done;
        }
    }
    fprintf(stderr,
            "converting %s: %s -> %s, %d layers, hidden %d, %d/%d heads, ffn %d, vocab %d (%s), "
            "%s output, %s weights%s%s -> %s\n",
            dir, c.llama ? "LlamaForCausalLM" : "BitNet", c.arch, c.n_layer, c.n_embd, c.n_head,
            c.n_head_kv, c.n_ff, c.n_vocab, vkind, c.tied ? "tied" : "untied",
            packed ? "packed" : "master",
            packed ? (c.scale_mul ? " (code * weight_scale)" : " (code / weight_scale)") : "",
            c.llama ? ", Q/K permuted for interleaved RoPE" : "", bn_type_name(ptype));
    if (c.llama && ptype == BN_TYPE_F16)
        fprintf(stderr, "note: the engine runs llama-architecture files with F16 projections as "
                        "an ordinary llama (no int8 activations); use a ternary --type for "
                        "BitNet numerics\n");
    if (gguf_writer_begin(w, outp, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    cli_progress p;
    cli_progress_start(&p, "convert");
    double t0 = bn_time_sec();
    for (int i = 0; i < n_jobs; i++) {
        cli_progress_update(&p, i, n_jobs, jobs[i].name);
        if (write_job(w, &jobs[i], &c, &err) != BN_OK) {
            cli_progress_end(&p);
            cli_fail(&err);
            goto done;
        }
    }
    cli_progress_update(&p, n_jobs, n_jobs, "");
    cli_progress_end(&p);
    if (gguf_writer_finish(w, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    fprintf(stderr, "wrote %s: %d tensors in %.1f s\n", outp, n_jobs, bn_time_sec() - t0);
    rc = 0;
done:
    gguf_writer_free(w);
    free(jobs);
    st_close(&stm);
    return rc;
}
