/* cmd_perplexity.c - `bitnet perplexity -m FILE -f TEXT [-c CTX] [-b BATCH]`: the model's
 * perplexity on a text, computed as llama-perplexity does.
 *
 * The text is tokenized (with BOS) and cut into chunks of CTX tokens; the first token of
 * each chunk is replaced by BOS (when the vocabulary adds one), the chunk is evaluated from
 * an empty cache, and the negative log-likelihood of each token in the second half of the
 * chunk is taken from the logits of the position before it (so every scored token has at
 * least CTX/2 tokens of context). The running perplexity is printed after each chunk,
 * then the final estimate with its uncertainty: PPL * sqrt(var(nll) / (count - 1)). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/model.h"
#include "../core/os.h"
#include "../core/tokenizer.h"
#include "../graph/context.h"
#include "cli.h"
#include "cli_context.h"
#include "cli_devices.h"

static void ppl_usage(FILE *o) {
    fprintf(o, "usage: bitnet perplexity -m FILE -f TEXT [options]\n\n"
               "Measures the model's perplexity on a text file in chunks of CTX tokens,\n"
               "scoring the second half of each chunk (as llama-perplexity does).\n\n"
               "options:\n"
               "  -m, --model FILE      model\n"
               "  -f, --file TEXT       the text to score\n"
               "  --token-ids FILE      score these whitespace-separated token ids instead of\n"
               "                        tokenizing a text (BOS is not added)\n"
               "  -c, --ctx-size N      tokens per chunk (default: 512, at most the model's\n"
               "                        training context)\n"
               "  -b, --batch-size N    tokens per evaluation step (default: the chunk)\n"
               "  --chunks N            score at most N chunks\n"
               "  -t, --threads N       threads (default: physical cores)\n"
               "  --kv f16|f32          KV cache type (default f16)\n");
    cli_device_help(o);
    fprintf(o, "  -h, --help            this help\n");
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    fclose(f);
    if (buf) {
        buf[n < cap ? n : cap - 1] = 0;
        *len = n;
    }
    return buf;
}

static int read_ids(const char *path, int32_t **out) {
    size_t len = 0;
    char *txt = read_all(path, &len);
    if (!txt) return -1;
    int n = 0, cap = 1024;
    int32_t *ids = malloc(sizeof *ids * (size_t)cap);
    char *p = txt, *end;
    while (ids) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        if (v < 0 || v > INT32_MAX) {
            n = -1;
            break;
        }
        if (n == cap) {
            int32_t *ni = realloc(ids, sizeof *ids * (size_t)(cap *= 2));
            if (!ni) free(ids);
            ids = ni;
            if (!ids) break;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    bool junk = *p != 0;
    free(txt);
    if (!ids || n < 0 || junk) {
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}

int cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *idfile = NULL;
    long long n_ctx = 0, n_batch = 0, n_threads = 0, max_chunks = 0;
    uint32_t kv = BN_TYPE_F16;
    cli_device_opts dev;
    cli_device_opts_init(&dev);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long *dst = NULL;
        int dr;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            ppl_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value("perplexity", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(file = cli_value("perplexity", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--token-ids")) {
            if (!(idfile = cli_value("perplexity", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--kv")) {
            if (!cli_kv_value("perplexity", argc, argv, &i, &kv)) return EXIT_USAGE;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            dst = &n_ctx;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            dst = &n_batch;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            dst = &n_threads;
        } else if (!strcmp(a, "--chunks")) {
            dst = &max_chunks;
        } else if ((dr = cli_device_option("perplexity", argc, argv, &i, &dev)) != 0) {
            if (dr != 1) return dr;
        } else {
            return cli_usage_error("perplexity", "unknown option '%s'", a);
        }
        if (dst) {
            if (!(v = cli_value("perplexity", argc, argv, &i))) return EXIT_USAGE;
            if (!cli_parse_int(v, 1, 1 << 24, dst))
                return cli_usage_error("perplexity", "%s needs a positive integer, not '%s'", a, v);
        }
    }
    if (!model) return cli_usage_error("perplexity", "give the model with -m FILE");
    if (!file == !idfile)
        return cli_usage_error("perplexity", "give exactly one of -f TEXT and --token-ids FILE");

    bn_err err = {0};
    bn_model *m = NULL;
    bn_context *ctx = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    int n_ids = 0, rc = 1;
    if (bn_model_load(model, &m, &err) != BN_OK) return cli_fail(&err);
    if (idfile) {
        n_ids = read_ids(idfile, &ids);
        if (n_ids < 0) {
            cli_error("cannot read token ids from '%s'", idfile);
            goto done;
        }
    } else {
        size_t len = 0;
        char *txt = read_all(file, &len);
        if (!txt) {
            cli_error("cannot read '%s'", file);
            goto done;
        }
        n_ids = bn_tokenize_alloc(&m->vocab, txt, len, m->vocab.add_bos, false, &ids, &err);
        free(txt);
        if (n_ids < 0) {
            cli_fail(&err);
            goto done;
        }
    }
    for (int i = 0; i < n_ids; i++)
        if (ids[i] >= m->hp.n_vocab) {
            cli_error("token id %d is not in the vocabulary (%d tokens)", ids[i], m->hp.n_vocab);
            goto done;
        }
    int C = n_ctx ? (int)n_ctx : 512;
    if (C > m->hp.n_ctx_train) {
        if (n_ctx)
            fprintf(stderr, "note: -c %d is longer than the model's training context %d\n", C,
                    m->hp.n_ctx_train);
        else
            C = m->hp.n_ctx_train;
    }
    if (C < 4) {
        cli_usage_error("perplexity", "-c must be at least 4");
        goto done;
    }
    int n_chunks = n_ids / C;
    if (max_chunks && n_chunks > max_chunks) n_chunks = (int)max_chunks;
    if (n_chunks < 1) {
        cli_error("the text has %d tokens, fewer than one chunk of %d; use a smaller -c", n_ids, C);
        goto done;
    }
    bn_context_params cp;
    bn_context_params_default(&cp);
    cp.n_ctx = C;
    cp.n_batch = n_batch ? (int)n_batch : C;
    cp.n_threads = (int)n_threads;
    cp.kv_type = kv;
    cli_device_apply(&dev, &cp);
    if (bn_context_new(m, &cp, &ctx, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    if (bn_context_plan_text(ctx)[0]) fprintf(stderr, "%s\n", bn_context_plan_text(ctx));
    int V = m->hp.n_vocab;
    logits = malloc(sizeof(float) * (size_t)V * (size_t)C);
    int32_t *chunk = malloc(sizeof(int32_t) * (size_t)C);
    if (!logits || !chunk) {
        free(chunk);
        cli_error("out of memory for %d x %d logits", C, V);
        goto done;
    }
    fprintf(stderr, "perplexity: %d tokens, %d chunks of %d, scoring the last %d of each\n", n_ids,
            n_chunks, C, C - C / 2 - 1);
    double nll = 0, nll2 = 0;
    long count = 0;
    cli_progress p;
    cli_progress_start(&p, "perplexity");
    double t0 = bn_time_sec();
    for (int c = 0; c < n_chunks; c++) {
        memcpy(chunk, ids + (size_t)c * C, sizeof(int32_t) * (size_t)C);
        if (m->vocab.add_bos && m->vocab.bos >= 0) chunk[0] = m->vocab.bos;
        bn_context_reset(ctx);
        if (bn_context_eval(ctx, chunk, C, true, logits, &err) != BN_OK) {
            cli_progress_end(&p);
            cli_fail(&err);
            free(chunk);
            goto done;
        }
        for (int j = C / 2; j < C - 1; j++) {
            const float *l = logits + (size_t)j * V;
            float mx = l[0];
            for (int k = 1; k < V; k++) mx = l[k] > mx ? l[k] : mx;
            double s = 0;
            for (int k = 0; k < V; k++) s += exp((double)(l[k] - mx));
            double x = log(s) + mx - l[ids[(size_t)c * C + j + 1]];
            nll += x;
            nll2 += x * x;
            count++;
        }
        char detail[64];
        snprintf(detail, sizeof detail, "chunk %d/%d, ppl %.4f", c + 1, n_chunks, exp(nll / count));
        cli_progress_update(&p, c + 1, n_chunks, detail);
        if (!p.tty)
            fprintf(stderr, "[%d]%.4f%s", c + 1, exp(nll / count), c + 1 < n_chunks ? "," : "\n");
    }
    cli_progress_end(&p);
    free(chunk);
    double mean = nll / count, var = nll2 / count - mean * mean;
    double unc = count > 1 && var > 0 ? sqrt(var / (count - 1)) : 0;
    double ppl = exp(mean);
    printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, ppl * unc);
    fprintf(stderr, "scored %ld tokens in %.2f s (%.1f tokens/s evaluated)\n", count,
            bn_time_sec() - t0, n_chunks * (double)C / (bn_time_sec() - t0 + 1e-9));
    rc = 0;
done:
    free(logits);
    free(ids);
    bn_context_free(ctx);
    bn_model_free(m);
    return rc;
}
