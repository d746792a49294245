/* cmd_bench.c - `bitnet bench`: prompt processing (pp) and generation (tg)
 * speed, in the manner of llama-bench.
 *
 * For every model, thread count and test: one untimed warm-up run (it also
 * faults the weights in), then R timed runs, each from an empty context
 * (bn_context_reset). ppN evaluates N random tokens in batches of -b (the
 * logits of the last one only); tgN evaluates N tokens one at a time. The
 * result is the mean and sample standard deviation over the runs of each
 * run's tokens per second. Weights are used in place from the mapping; the
 * peak resident set (ru_maxrss) is reported with the model file and KV cache
 * sizes it should stay close to.
 *
 * "weight bytes per token" is what one decode step reads of the model: every
 * tensor's bytes, except that an embedding table used only for lookup (an
 * untied token_embd) counts one row. bench/run.sh divides it by the measured
 * memory bandwidth for the roofline. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../backends/cpu/float_kernels.h"
#include "../backends/cpu/ternary.h"
#include "../core/model.h"
#include "../core/os.h"
#include "../core/types.h"
#include "../graph/context.h"
#include "cli.h"
#include "cli_context.h"
#include "cli_devices.h"

#define MAX_LIST 16
#define MAX_MODELS 16

typedef enum out_fmt { FMT_MD, FMT_JSON, FMT_CSV } out_fmt;

typedef struct bench_opts {
    const char *models[MAX_MODELS];
    int n_models;
    int pp[MAX_LIST], n_pp;
    int tg[MAX_LIST], n_tg;
    int threads[MAX_LIST], n_threads;
    int reps, n_batch;
    uint32_t kv_type;
    out_fmt fmt;
    cli_device_opts dev;
} bench_opts;

/* What a row of the report says about its model. */
typedef struct model_info {
    const char *path, *base;
    uint64_t size, params, file_bytes, bytes_per_token;
    const char *type, *head_type;
} model_info;

typedef struct result {
    const model_info *mi;
    char backend[128];
    int n_threads, n_batch, n_prompt, n_gen;
    double avg_ts, sd_ts, avg_ns;
    double samples[1000];
    int n_samples;
    uint64_t kv_bytes, rss;
} result;

static void bench_usage(FILE *o) {
    fprintf(o, "usage: bitnet bench -m FILE [-m FILE ...] [options]\n\n"
               "Measures prompt processing (ppN: N tokens in batches) and generation (tgN: N\n"
               "tokens one at a time) in tokens per second: mean +- standard deviation over\n"
               "the repetitions, after one warm-up run, each from an empty context.\n\n"
               "options:\n"
               "  -m, --model FILE      model (repeat for several)\n"
               "  -p, --n-prompt LIST   prompt lengths, e.g. 128,512 (default 128; 0 = none)\n"
               "  -n, --n-gen LIST      generation lengths (default 64; 0 = none)\n"
               "  -t, --threads LIST    thread counts, e.g. 1,2 (default: physical cores)\n"
               "  -r, --repetitions N   timed runs per test (default 5)\n"
               "  -b, --batch-size N    prompt tokens per step (default: the prompt, at most "
               "512)\n"
               "  --kv f16|f32          KV cache type (default f16)\n"
               "  -o, --output FMT      md (default), json or csv, on stdout\n");
    cli_device_help(o);
    fprintf(o, "  -h, --help            this help\n\n"
               "Environment: BITNET_CPU_FLOAT=scalar runs the CPU float ops' plain-C reference.\n");
}

/* "1,2,3" into out[] (each in [lo, hi]); false on a malformed list. */
static bool parse_list(const char *s, int lo, int hi, int *out, int *n) {
    *n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < lo || v > hi || *n == MAX_LIST || (*end && *end != ',')) return false;
        out[(*n)++] = (int)v;
        if (!*end) break;
        s = end + 1;
        if (!*s) return false;
    }
    return *n > 0;
}

static int parse(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->pp[0] = 128;
    o->n_pp = 1;
    o->tg[0] = 64;
    o->n_tg = 1;
    o->reps = 5;
    o->kv_type = BN_TYPE_F16;
    cli_device_opts_init(&o->dev);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench_usage(stdout);
            return 0;
        }
        int dr = cli_device_option("bench", argc, argv, &i, &o->dev);
        if (dr == 1) continue;
        if (dr != 0) return dr;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(v = cli_value("bench", argc, argv, &i))) return EXIT_USAGE;
            if (o->n_models == MAX_MODELS)
                return cli_usage_error("bench", "at most %d models", MAX_MODELS);
            o->models[o->n_models++] = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt") || !strcmp(a, "-n") ||
                   !strcmp(a, "--n-gen") || !strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_value("bench", argc, argv, &i))) return EXIT_USAGE;
            const bool thr = a[1] == 't' || !strcmp(a, "--threads");
            const bool pp = !strcmp(a, "-p") || !strcmp(a, "--n-prompt");
            int *dst = thr ? o->threads : pp ? o->pp : o->tg;
            int *cnt = thr ? &o->n_threads : pp ? &o->n_pp : &o->n_tg;
            if (!parse_list(v, thr ? 1 : 0, thr ? 1024 : 1 << 20, dst, cnt))
                return cli_usage_error(
                    "bench", "%s needs a list of %s like %s (at most %d), not '%s'", a,
                    thr ? "thread counts" : "token counts", thr ? "1,2" : "128,512", MAX_LIST, v);
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (!cli_int_value("bench", argc, argv, &i, 1, 1000, &n)) return EXIT_USAGE;
            o->reps = (int)n;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            if (!cli_int_value("bench", argc, argv, &i, 1, 1 << 16, &n)) return EXIT_USAGE;
            o->n_batch = (int)n;
        } else if (!strcmp(a, "--kv")) {
            if (!cli_kv_value("bench", argc, argv, &i, &o->kv_type)) return EXIT_USAGE;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(v = cli_value("bench", argc, argv, &i))) return EXIT_USAGE;
            if (!strcmp(v, "md"))
                o->fmt = FMT_MD;
            else if (!strcmp(v, "json"))
                o->fmt = FMT_JSON;
            else if (!strcmp(v, "csv"))
                o->fmt = FMT_CSV;
            else
                return cli_usage_error("bench", "-o must be md, json or csv, not '%s'", v);
        } else {
            return cli_usage_error("bench", "unknown option '%s'", a);
        }
    }
    if (!o->n_models) return cli_usage_error("bench", "-m FILE is required");
    if (!o->n_threads) {
        o->threads[0] = bn_cpu_count_physical();
        o->n_threads = 1;
    }
    bool any = false;
    for (int i = 0; i < o->n_pp; i++) any |= o->pp[i] > 0;
    for (int i = 0; i < o->n_tg; i++) any |= o->tg[i] > 0;
    if (!any) return cli_usage_error("bench", "nothing to measure: every -p and -n is 0");
    return -1;
}

/* ---- the model's figures ---- */

static void describe(const bn_model *m, const char *path, model_info *mi) {
    memset(mi, 0, sizeof *mi);
    mi->path = path;
    const char *slash = strrchr(path, '/');
    mi->base = slash ? slash + 1 : path;
    mi->size = bn_model_bytes(m);
    mi->params = bn_model_params(m);
    struct stat st;
    if (stat(path, &st) == 0) mi->file_bytes = (uint64_t)st.st_size;
    mi->type = bn_type_name(m->weight_type);
    mi->head_type = bn_type_name(m->output->type);
    uint64_t per_token = mi->size;
    if (m->output != m->tok_embd) { /* the embedding is only looked up: one row */
        size_t row = 0;
        if (bn_row_bytes(m->tok_embd->type, m->tok_embd->ne[0], &row, NULL) == BN_OK)
            per_token -= m->tok_embd->nbytes - row;
    }
    mi->bytes_per_token = per_token;
    if (!mi->type) mi->type = "?";
    if (!mi->head_type) mi->head_type = "?";
}

/* ---- timing ---- */

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static int32_t random_token(int n_vocab) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (int32_t)((rng_state >> 33) % (uint64_t)n_vocab);
}

/* One run of a test from an empty context; returns seconds, or < 0 on error. */
static double run_once(bn_context *ctx, const bn_model *m, int n_prompt, int n_gen, int32_t *toks,
                       float *logits, bn_err *err) {
    bn_context_reset(ctx);
    const int n = n_prompt ? n_prompt : n_gen;
    for (int i = 0; i < n; i++) toks[i] = random_token(m->hp.n_vocab);
    double t0 = bn_time_sec();
    if (n_prompt) {
        if (bn_context_eval(ctx, toks, n_prompt, false, logits, err) != BN_OK) return -1;
    } else {
        for (int i = 0; i < n_gen; i++)
            if (bn_context_eval(ctx, toks + i, 1, false, logits, err) != BN_OK) return -1;
    }
    return bn_time_sec() - t0;
}

static bool run_test(bn_context *ctx, const bn_model *m, int reps, result *r, bn_err *err) {
    const int n = r->n_prompt ? r->n_prompt : r->n_gen;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)m->hp.n_vocab);
    bool ok = toks && logits;
    if (!ok) bn_fail(err, BN_ERR_OOM, "out of memory");
    if (ok) ok = run_once(ctx, m, r->n_prompt, r->n_gen, toks, logits, err) >= 0; /* warm-up */
    double sum = 0, sum_ns = 0;
    r->n_samples = 0;
    for (int k = 0; ok && k < reps; k++) {
        double dt = run_once(ctx, m, r->n_prompt, r->n_gen, toks, logits, err);
        if (dt < 0) {
            ok = false;
            break;
        }
        if (dt <= 0) dt = 1e-9;
        r->samples[r->n_samples++] = n / dt;
        sum += n / dt;
        sum_ns += dt * 1e9;
    }
    if (ok) {
        r->avg_ts = sum / r->n_samples;
        r->avg_ns = sum_ns / r->n_samples;
        double ss = 0;
        for (int k = 0; k < r->n_samples; k++)
            ss += (r->samples[k] - r->avg_ts) * (r->samples[k] - r->avg_ts);
        r->sd_ts = r->n_samples > 1 ? sqrt(ss / (r->n_samples - 1)) : 0.0;
        r->rss = bn_peak_rss_bytes();
    }
    free(toks);
    free(logits);
    return ok;
}

/* ---- output ---- */

static void test_name(const result *r, char *buf, size_t len) {
    if (r->n_prompt)
        snprintf(buf, len, "pp%d", r->n_prompt);
    else
        snprintf(buf, len, "tg%d", r->n_gen);
}

static void print_header(out_fmt f) {
    if (f == FMT_MD)
        printf("| model | size | params | type | head | backend | threads | test | t/s |\n"
               "| --- | ---: | ---: | --- | --- | --- | ---: | ---: | ---: |\n");
    else if (f == FMT_CSV)
        printf("model,model_file,model_size,model_n_params,file_bytes,model_type,head_type,"
               "weight_bytes_per_token,backend,float_kernels,ternary_kernels,n_threads,n_batch,"
               "n_prompt,n_gen,test,"
               "avg_ts,stddev_ts,avg_ns,kv_bytes,peak_rss_bytes\n");
    else
        printf("[\n");
    fflush(stdout);
}

/* s with the characters JSON and CSV need escaped dropped (paths and names here are
 * plain; this keeps the output well formed whatever they hold). */
static const char *plain(const char *s, char *buf, size_t len) {
    size_t j = 0;
    for (; *s && j + 1 < len; s++)
        if (*s != '"' && *s != '\\' && *s != ',' && (unsigned char)*s >= 0x20) buf[j++] = *s;
    buf[j] = 0;
    return buf;
}

/* "1.10 GiB" or "3.00 MiB"; "2.41 B" or "1.59 M" parameters: small models keep digits. */
static void human_size(uint64_t bytes, char *buf, size_t len) {
    const double mib = (double)bytes / (1024.0 * 1024.0);
    if (mib >= 1024.0)
        snprintf(buf, len, "%.2f GiB", mib / 1024.0);
    else
        snprintf(buf, len, "%.2f MiB", mib);
}

static void human_count(uint64_t n, char *buf, size_t len) {
    if (n >= 1000000000ull)
        snprintf(buf, len, "%.2f B", (double)n / 1e9);
    else
        snprintf(buf, len, "%.2f M", (double)n / 1e6);
}

static void print_row(out_fmt f, const result *r, bool first) {
    const model_info *mi = r->mi;
    char test[32], b1[512], b2[1100];
    test_name(r, test, sizeof test);
    if (f == FMT_MD) {
        char size[32], params[32];
        human_size(mi->size, size, sizeof size);
        human_count(mi->params, params, sizeof params);
        printf("| %s | %s | %s | %s | %s | %s | %d | %s | %.2f ± %.2f |\n", mi->base, size, params,
               mi->type, mi->head_type, r->backend, r->n_threads, test, r->avg_ts, r->sd_ts);
    } else if (f == FMT_CSV) {
        printf("%s,%s,%llu,%llu,%llu,%s,%s,%llu,%s,%s,%s,%d,%d,%d,%d,%s,%.4f,%.4f,%.0f,%llu,%llu\n",
               plain(mi->base, b1, sizeof b1), plain(mi->path, b2, sizeof b2),
               (unsigned long long)mi->size, (unsigned long long)mi->params,
               (unsigned long long)mi->file_bytes, mi->type, mi->head_type,
               (unsigned long long)mi->bytes_per_token, r->backend, bn_cpu_float_name(),
               bn_cpu_ternary_name(), r->n_threads, r->n_batch, r->n_prompt, r->n_gen, test,
               r->avg_ts, r->sd_ts, r->avg_ns, (unsigned long long)r->kv_bytes,
               (unsigned long long)r->rss);
    } else {
        char feat[256];
        bn_cpu_features_string(bn_cpu_features(), feat, sizeof feat);
        printf("%s  {\"model\": \"%s\", \"model_file\": \"%s\", \"model_size\": %llu, "
               "\"model_n_params\": %llu, \"file_bytes\": %llu, \"model_type\": \"%s\", "
               "\"head_type\": \"%s\", \"weight_bytes_per_token\": %llu, \"backend\": \"%s\", "
               "\"float_kernels\": \"%s\", \"ternary_kernels\": \"%s\", \"cpu_features\": \"%s\", "
               "\"n_threads\": %d, "
               "\"n_batch\": %d, \"n_prompt\": %d, \"n_gen\": %d, \"test\": \"%s\", "
               "\"avg_ts\": %.4f, \"stddev_ts\": %.4f, \"avg_ns\": %.0f, \"samples_ts\": [",
               first ? "" : ",\n", plain(mi->base, b1, sizeof b1), plain(mi->path, b2, sizeof b2),
               (unsigned long long)mi->size, (unsigned long long)mi->params,
               (unsigned long long)mi->file_bytes, mi->type, mi->head_type,
               (unsigned long long)mi->bytes_per_token, r->backend, bn_cpu_float_name(),
               bn_cpu_ternary_name(), feat, r->n_threads, r->n_batch, r->n_prompt, r->n_gen, test,
               r->avg_ts, r->sd_ts, r->avg_ns);
        for (int k = 0; k < r->n_samples; k++) printf("%s%.4f", k ? ", " : "", r->samples[k]);
        printf("], \"kv_bytes\": %llu, \"peak_rss_bytes\": %llu}", (unsigned long long)r->kv_bytes,
               (unsigned long long)r->rss);
    }
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    int max_p = 0, max_n = 0;
    for (int i = 0; i < o.n_pp; i++) max_p = o.pp[i] > max_p ? o.pp[i] : max_p;
    for (int i = 0; i < o.n_tg; i++) max_n = o.tg[i] > max_n ? o.tg[i] : max_n;

    print_header(o.fmt);
    bool first = true;
    uint64_t max_file = 0, max_kv = 0;
    rc = 0;
    for (int mi_ = 0; mi_ < o.n_models && !rc; mi_++) {
        bn_model *m = NULL;
        bn_err err = {0};
        if (bn_model_load(o.models[mi_], &m, &err) != BN_OK) {
            rc = cli_fail(&err);
            break;
        }
        model_info info;
        describe(m, o.models[mi_], &info);
        for (int ti = 0; ti < o.n_threads && !rc; ti++) {
            bn_context_params cp;
            bn_context_params_default(&cp);
            cp.n_ctx = max_p > max_n ? max_p : max_n;
            cp.n_batch = o.n_batch ? o.n_batch : (max_p < 512 ? max_p : 512);
            if (cp.n_batch < 1) cp.n_batch = 1;
            cp.n_threads = o.threads[ti];
            cp.kv_type = o.kv_type;
            cli_device_apply(&o.dev, &cp);
            bn_context *ctx = NULL;
            if (bn_context_new(m, &cp, &ctx, &err) != BN_OK) {
                rc = cli_fail(&err);
                break;
            }
            if (ti == 0 && bn_context_plan_text(ctx)[0])
                fprintf(stderr, "%s: %s\n", info.base, bn_context_plan_text(ctx));
            result r;
            memset(&r, 0, sizeof r);
            r.mi = &info;
            bn_context_devices(ctx, r.backend, sizeof r.backend);
            if (!r.backend[0]) snprintf(r.backend, sizeof r.backend, "cpu");
            r.n_threads = o.threads[ti];
            r.n_batch = cp.n_batch;
            r.kv_bytes = bn_context_kv_bytes(ctx);
            if (r.kv_bytes > max_kv) max_kv = r.kv_bytes;
            for (int k = 0; k < o.n_pp + o.n_tg && !rc; k++) {
                r.n_prompt = k < o.n_pp ? o.pp[k] : 0;
                r.n_gen = k < o.n_pp ? 0 : o.tg[k - o.n_pp];
                if (!r.n_prompt && !r.n_gen) continue;
                if (!run_test(ctx, m, o.reps, &r, &err)) {
                    if (o.fmt == FMT_JSON) printf("\n]\n");
                    rc = cli_fail(&err);
                    break;
                }
                print_row(o.fmt, &r, first);
                first = false;
            }
            bn_context_free(ctx);
        }
        if (info.file_bytes > max_file) max_file = info.file_bytes;
        bn_model_free(m);
    }
    if (rc) return rc;
    if (o.fmt == FMT_JSON) printf("\n]\n");
    const double rss = (double)bn_peak_rss_bytes();
    if (o.fmt == FMT_MD)
        printf("\nkernels: float %s, ternary %s; peak RSS %.1f MB = largest model file %.1f MB + "
               "KV cache %.1f MB + %.1f MB\n",
               bn_cpu_float_name(), bn_cpu_ternary_name(), rss / 1e6, (double)max_file / 1e6,
               (double)max_kv / 1e6, (rss - (double)max_file - (double)max_kv) / 1e6);
    return 0;
}
