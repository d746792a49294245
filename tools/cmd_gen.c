/* cmd_gen.c - `bitnet gen`: writes a model of a named shape with random
 * ternary weights and a synthetic vocabulary, streaming tensor by tensor.
 *
 * Weights are drawn like BitNet's dummy models: latent values ~ N(0, 1/K) for
 * a projection with K inputs (so each layer moves the residual stream), ternarized with absmean (s
 * = mean |W|, code = clamp(round(W/s), -1, 1)). s is rounded to f16 so that an I2_S, TQ2_0, TQ1_0
 * and F16 file of the same seed hold exactly the same weights (code * s). Each tensor has its own
 * generator seeded from (seed, name), so a tensor's values do not depend on the encoding or on the
 * other tensors. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/gguf.h"
#include "../core/types.h"
#include "cli.h"
#include "shapes.h"

#define CHUNK_ELEMS (8u << 20) /* floats generated and encoded at a time */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Approximately N(0, 1): the sum of four uniforms (Irwin-Hall), centred and scaled. */
static float rng_normal(rng *r) {
    uint64_t a = rng_next(r), b = rng_next(r);
    float s =
        (float)(a & 0xffffffff) + (float)(a >> 32) + (float)(b & 0xffffffff) + (float)(b >> 32);
    return (s * (1.0f / 4294967296.0f) - 2.0f) * 1.7320508f;
}

static void rng_seed(rng *r, uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    r->s = seed * 0x9E3779B97F4A7C15ull ^ h;
}

typedef enum kind { K_NORM, K_EMBD, K_PROJ } kind;

typedef struct gen_tensor {
    char name[96];
    int64_t ne0, ne1;
    kind k;
    uint32_t type;
} gen_tensor;

typedef struct gen_job {
    const bn_shape *sh;
    uint32_t proj_type;
    uint32_t embd_type; /* token_embd (and output) */
    uint64_t seed;
    gen_tensor *t;
    int n;
} gen_job;

static void add(gen_job *j, kind k, uint32_t type, int64_t ne0, int64_t ne1, const char *fmt,
                int layer) {
    gen_tensor *t = &j->t[j->n++];
    snprintf(t->name, sizeof t->name, fmt, layer);
    t->ne0 = ne0;
    t->ne1 = ne1;
    t->k = k;
    t->type = type;
}

static void list_tensors(gen_job *j) {
    const bn_shape *s = j->sh;
    int64_t E = s->n_embd, F = s->n_ff, KV = (int64_t)s->n_embd / s->n_head * s->n_head_kv;
    uint32_t P = j->proj_type;
    add(j, K_EMBD, j->embd_type, E, s->n_vocab, "token_embd.weight", 0);
    add(j, K_NORM, BN_TYPE_F32, E, 1, "output_norm.weight", 0);
    if (s->untied_output) add(j, K_EMBD, j->embd_type, E, s->n_vocab, "output.weight", 0);
    for (int l = 0; l < s->n_layer; l++) {
        add(j, K_NORM, BN_TYPE_F32, E, 1, "blk.%d.attn_norm.weight", l);
        add(j, K_PROJ, P, E, E, "blk.%d.attn_q.weight", l);
        add(j, K_PROJ, P, E, KV, "blk.%d.attn_k.weight", l);
        add(j, K_PROJ, P, E, KV, "blk.%d.attn_v.weight", l);
        add(j, K_PROJ, P, E, E, "blk.%d.attn_output.weight", l);
        if (!s->untied_output) add(j, K_NORM, BN_TYPE_F32, E, 1, "blk.%d.attn_sub_norm.weight", l);
        add(j, K_NORM, BN_TYPE_F32, E, 1, "blk.%d.ffn_norm.weight", l);
        add(j, K_PROJ, P, E, F, "blk.%d.ffn_gate.weight", l);
        add(j, K_PROJ, P, E, F, "blk.%d.ffn_up.weight", l);
        add(j, K_PROJ, P, F, E, "blk.%d.ffn_down.weight", l);
        if (!s->untied_output) add(j, K_NORM, BN_TYPE_F32, F, 1, "blk.%d.ffn_sub_norm.weight", l);
    }
}

/* The synthetic vocabulary: <unk> <s> </s>, the 256 byte tokens, then pieces
 * over a frequency-ordered alphabet with and without the SentencePiece space
 * mark, shortest first, until n_vocab tokens exist. */
static char **make_vocab(int n_vocab, float **scores, int32_t **types) {
    char **tok = calloc((size_t)n_vocab, sizeof *tok);
    *scores = calloc((size_t)n_vocab, sizeof **scores);
    *types = calloc((size_t)n_vocab, sizeof **types);
    if (!tok || !*scores || !*types) return NULL;
    int n = 0;
    const char *special[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3 && n < n_vocab; i++, n++) {
        tok[n] = strdup(special[i]);
        (*types)[n] = i == 0 ? 2 : 3;
    }
    for (int b = 0; b < 256 && n < n_vocab; b++, n++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        tok[n] = strdup(buf);
        (*types)[n] = 6;
    }
    const char *alpha = "etaoinshrdlucmfwypvbgkjqxz";
    const int A = 26;
    for (int len = 1; n < n_vocab && len <= 6; len++) {
        long long combos = 1;
        for (int i = 0; i < len; i++) combos *= A;
        for (long long c = 0; c < combos && n < n_vocab; c++) {
            char piece[16];
            long long x = c;
            for (int i = len - 1; i >= 0; i--, x /= A) piece[i] = alpha[x % A];
            piece[len] = 0;
            for (int space = 1; space >= 0 && n < n_vocab; space--, n++) {
                char buf[24];
                snprintf(buf, sizeof buf, "%s%s", space ? "\xe2\x96\x81" : "", piece);
                tok[n] = strdup(buf);
                (*types)[n] = 1;
            }
        }
        if (len == 1) /* punctuation, digits and capitals as single pieces */
            for (int ch = 33; ch < 127 && n < n_vocab; ch++)
                if (!(ch >= 'a' && ch <= 'z')) {
                    char buf[2] = {(char)ch, 0};
                    tok[n] = strdup(buf);
                    (*types)[n++] = 1;
                }
        if (len == 1 && n < n_vocab) {
            tok[n] = strdup("\xe2\x96\x81");
            (*types)[n++] = 1;
        }
    }
    for (int i = 0; i < n_vocab; i++) (*scores)[i] = (*types)[i] == 1 ? -(float)i : 0.0f;
    return tok;
}

static void free_vocab(char **tok, int n) {
    if (tok)
        for (int i = 0; i < n; i++) free(tok[i]);
    free(tok);
}

static void write_metadata(gguf_writer *w, const bn_shape *s, uint32_t proj_type) {
    char key[128];
    const char *a = s->arch;
    gguf_writer_set_str(w, "general.architecture", a);
    char name[128];
    snprintf(name, sizeof name, "bitnet gen %s %s", s->name, bn_type_name(proj_type));
    gguf_writer_set_str(w, "general.name", name);
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)s->n_vocab);
    gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)s->n_ctx);
    gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)s->n_embd);
    gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)s->n_ff);
    gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)s->n_layer);
    gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)s->n_head);
    gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)s->n_head_kv);
    gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    gguf_writer_set_f32(w, KEY("rope.freq_base"), s->rope_freq_base);
    gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)(s->n_embd / s->n_head));
#undef KEY
}

/* Fills n values of tensor t starting at element `start` (its generator r is
 * positioned there). Projections: code * scale; norms: 1 + 0.1 N; embeddings: 0.1 N. */
static void fill(const gen_tensor *t, rng *r, float scale, float *dst, size_t n) {
    float sigma = 1.0f / sqrtf((float)t->ne0);
    for (size_t i = 0; i < n; i++) {
        float x = rng_normal(r);
        if (t->k == K_NORM)
            dst[i] = 1.0f + 0.1f * x;
        else if (t->k == K_EMBD)
            dst[i] = 0.1f * x;
        else {
            float c = roundf(x * sigma / scale);
            dst[i] = (c > 1 ? 1 : c < -1 ? -1 : c) * scale;
        }
    }
}

/* absmean scale of a projection, rounded to f16: one pass over its latent values. */
static float absmean_scale(const gen_tensor *t, uint64_t seed) {
    rng r;
    rng_seed(&r, seed, t->name);
    double sum = 0;
    size_t n = (size_t)(t->ne0 * t->ne1);
    float sigma = 1.0f / sqrtf((float)t->ne0);
    for (size_t i = 0; i < n; i++) sum += fabsf(rng_normal(&r) * sigma);
    float s = (float)(sum / (double)n);
    if (s < 1e-5f) s = 1e-5f;
    return bn_f16_to_f32(bn_f32_to_f16(s));
}

static bn_status write_tensor(gguf_writer *w, const gen_tensor *t, uint64_t seed, float *fbuf,
                              uint8_t *qbuf, bn_err *err) {
    float scale = t->k == K_PROJ ? absmean_scale(t, seed) : 0;
    rng r;
    rng_seed(&r, seed, t->name);
    int64_t rows_per_chunk = (int64_t)CHUNK_ELEMS / t->ne0;
    if (rows_per_chunk < 1) rows_per_chunk = 1;
    for (int64_t row = 0; row < t->ne1; row += rows_per_chunk) {
        int64_t rows = t->ne1 - row < rows_per_chunk ? t->ne1 - row : rows_per_chunk;
        fill(t, &r, scale, fbuf, (size_t)(rows * t->ne0));
        if (bn_quantize(t->type, fbuf, t->ne0, rows, qbuf, err) != BN_OK) return err->code;
        size_t bytes;
        int64_t ne[4] = {t->ne0, rows, 1, 1};
        if (bn_tensor_bytes(t->type, ne, &bytes, err) != BN_OK) return err->code;
        if (t->type == BN_TYPE_I2_S) bytes -= BN_I2S_TAIL; /* the tail comes once, at the end */
        if (gguf_writer_write_data(w, qbuf, bytes, err) != BN_OK) return err->code;
    }
    if (t->type == BN_TYPE_I2_S) {
        uint8_t tail[BN_I2S_TAIL] = {0};
        memcpy(tail, &scale, sizeof scale);
        if (gguf_writer_write_data(w, tail, sizeof tail, err) != BN_OK) return err->code;
    }
    return BN_OK;
}

static void gen_usage(FILE *out) {
    fprintf(
        out,
        "usage: bitnet gen -o FILE --shape NAME --type TYPE [--seed N]\n\n"
        "Writes a model with random ternary weights (absmean-ternarized, one f16-exact\n"
        "scale per tensor, so every TYPE holds the same weights) and a synthetic\n"
        "vocabulary. Writing streams tensor by tensor.\n\n"
        "options:\n"
        "  -o, --output FILE   where to write the GGUF file\n"
        "  --shape NAME        model shape (below)\n"
        "  --type TYPE         projection weights: i2_s, tq2_0, tq1_0, f16 (also bf16, f32)\n"
        "  --seed N            random seed (default 1)\n"
        "  --ctx N             training context written to the file (default: the shape's)\n"
        "  --embd-type TYPE    token_embd (and output) weights: f16 (default), q6_k (as\n"
        "                      llama.cpp writes TQ1_0/TQ2_0 files), bf16, f32, q8_0\n"
        "  --vocab FILE        take the vocabulary (every tokenizer.* key) from FILE, a\n"
        "                      model or vocabulary GGUF (see bitnet vocab); its size\n"
        "                      replaces the shape's vocab\n\nshapes (hidden/ffn/layers/heads/kv "
        "heads, vocab):\n");
    int n;
    const bn_shape *s = bn_shape_list(&n);
    for (int i = 0; i < n; i++)
        fprintf(out, "  %-6s %5d/%5d/%3d/%3d/%3d  %6d  %s%s\n", s[i].name, s[i].n_embd, s[i].n_ff,
                s[i].n_layer, s[i].n_head, s[i].n_head_kv, s[i].n_vocab, s[i].arch,
                s[i].untied_output ? ", untied output" : "");
}

int cmd_gen(int argc, char **argv) {
    const char *out = NULL, *shape = NULL, *type = NULL, *vocab_path = NULL;
    long long seed = 1, ctx = 0;
    const char *embd = "f16";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            gen_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out = cli_value("gen", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--shape")) {
            if (!(shape = cli_value("gen", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--type")) {
            if (!(type = cli_value("gen", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--vocab")) {
            if (!(vocab_path = cli_value("gen", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--embd-type")) {
            if (!(embd = cli_value("gen", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = cli_value("gen", argc, argv, &i))) return EXIT_USAGE;
            if (!cli_parse_int(v, 0, INT64_MAX, &seed))
                return cli_usage_error("gen", "--seed needs a non-negative integer, not '%s'", v);
        } else if (!strcmp(a, "--ctx")) {
            if (!(v = cli_value("gen", argc, argv, &i))) return EXIT_USAGE;
            if (!cli_parse_int(v, 1, 1 << 24, &ctx))
                return cli_usage_error("gen", "--ctx needs an integer in [1, 16777216], not '%s'",
                                       v);
        } else {
            return cli_usage_error("gen", "unknown option '%s'", a);
        }
    }
    if (!out || !shape || !type)
        return cli_usage_error("gen", "-o, --shape and --type are required");
    const bn_shape *sh = bn_shape_find(shape);
    if (!sh) return cli_usage_error("gen", "unknown shape '%s' (see bitnet gen --help)", shape);
    int pt = bn_type_from_name(type);
    if (!(pt == BN_TYPE_I2_S || pt == BN_TYPE_TQ2_0 || pt == BN_TYPE_TQ1_0 || pt == BN_TYPE_F16 ||
          pt == BN_TYPE_BF16 || pt == BN_TYPE_F32))
        return cli_usage_error(
            "gen", "--type must be i2_s, tq2_0, tq1_0, f16, bf16 or f32, not '%s'", type);
    int et = bn_type_from_name(embd);
    if (!(et == BN_TYPE_F16 || et == BN_TYPE_Q6_K || et == BN_TYPE_BF16 || et == BN_TYPE_F32 ||
          et == BN_TYPE_Q8_0))
        return cli_usage_error("gen", "--embd-type must be f16, q6_k, bf16, f32 or q8_0, not '%s'",
                               embd);

    gguf_file *vf = NULL;
    bn_shape vshape;
    int vocab_n = 0;
    bn_err verr = {0};
    if (vocab_path) { /* the vocabulary file decides the vocab size */
        gguf_writer *probe = gguf_writer_new();
        if (gguf_open(vocab_path, &vf, &verr) != BN_OK ||
            cli_copy_tokenizer(probe, vf, &vocab_n, &verr) != BN_OK) {
            gguf_writer_free(probe);
            if (vf) gguf_close(vf);
            return cli_error("--vocab %s: %s", vocab_path, verr.msg);
        }
        gguf_writer_free(probe);
        vshape = *sh;
        vshape.n_vocab = vocab_n;
        sh = &vshape;
    }
    bn_shape cshape;
    if (ctx > 0) { /* --ctx overrides the shape's training context */
        cshape = *sh;
        cshape.n_ctx = (int)ctx;
        sh = &cshape;
    }
    gen_job job = {.sh = sh, .proj_type = (uint32_t)pt, .seed = (uint64_t)seed};
    job.embd_type = (uint32_t)et;
    job.t = calloc((size_t)(3 + 11 * sh->n_layer), sizeof *job.t);
    float *scores = NULL;
    int32_t *types = NULL;
    char **vocab = vf ? NULL : make_vocab(sh->n_vocab, &scores, &types);
    gguf_writer *w = gguf_writer_new();
    float *fbuf = malloc(sizeof(float) * CHUNK_ELEMS);
    uint8_t *qbuf = malloc(sizeof(float) * CHUNK_ELEMS + 64);
    int rc = 1;
    bn_err err = {0};
    if (!job.t || (!vocab && !vf) || !w || !fbuf || !qbuf) {
        cli_error("out of memory");
        goto done;
    }
    list_tensors(&job);
    write_metadata(w, sh, job.proj_type);
    if (vf) {
        if (cli_copy_tokenizer(w, vf, &vocab_n, &err) != BN_OK) {
            cli_fail(&err);
            goto done;
        }
    } else {
        gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
        gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)vocab,
                                (uint64_t)sh->n_vocab);
        gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_F32, scores, (uint64_t)sh->n_vocab);
        gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, (uint64_t)sh->n_vocab);
        gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    }
    double total = 0;
    for (int i = 0; i < job.n; i++) {
        int64_t ne[4] = {job.t[i].ne0, job.t[i].ne1, 1, 1};
        size_t bytes;
        if (bn_tensor_bytes(job.t[i].type, ne, &bytes, &err) != BN_OK) {
            cli_error("shape %s cannot be stored as %s: tensor '%s': %s", sh->name,
                      bn_type_name(job.proj_type), job.t[i].name, err.msg);
            goto done;
        }
        total += (double)bytes;
        if (gguf_writer_add_tensor(w, job.t[i].name, job.t[i].type, job.t[i].ne1 > 1 ? 2 : 1, ne,
                                   &err) != BN_OK) {
            cli_fail(&err);
            goto done;
        }
    }
    if (gguf_writer_begin(w, out, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    cli_progress p;
    cli_progress_start(&p, "writing");
    double done = 0;
    for (int i = 0; i < job.n; i++) {
        char detail[64];
        snprintf(detail, sizeof detail, "%d/%d tensors, %.0f MB", i, job.n, done / 1e6);
        cli_progress_update(&p, done, total, detail);
        if (write_tensor(w, &job.t[i], job.seed, fbuf, qbuf, &err) != BN_OK) {
            cli_progress_end(&p);
            cli_error("writing tensor '%s': %s", job.t[i].name, err.msg);
            goto done;
        }
        int64_t ne[4] = {job.t[i].ne0, job.t[i].ne1, 1, 1};
        size_t bytes = 0;
        bn_tensor_bytes(job.t[i].type, ne, &bytes, NULL);
        done += (double)bytes;
    }
    cli_progress_update(&p, total, total, "done");
    cli_progress_end(&p);
    if (gguf_writer_finish(w, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    fprintf(stderr, "wrote %s: shape %s, %s, %.1f MB\n", out, sh->name, bn_type_name(job.proj_type),
            total / 1e6);
    rc = 0;
done:
    gguf_writer_free(w);
    if (vf) gguf_close(vf);
    free_vocab(vocab, sh->n_vocab);
    free(scores);
    free(types);
    free(job.t);
    free(fbuf);
    free(qbuf);
    return rc;
}
