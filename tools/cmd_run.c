/* cmd_run.c - `bitnet run` (generate text from a prompt) and `bitnet eval`
 * (write the logits of every prompt position). Both load a model, tokenize
 * the prompt (or take ids), and evaluate it through a context. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/model.h"
#include "../core/os.h"
#include "../core/sampler.h"
#include "../core/tokenizer.h"
#include "../core/types.h"
#include "../graph/context.h"
#include "cli.h"
#include "cli_context.h"
#include "cli_devices.h"

/* Options shared by run and eval. */
typedef struct run_opts {
    const char *model, *prompt, *prompt_ids, *logits_out;
    int n_predict;
    bool print_ids, no_bos, special, verbose_prompt;
    cli_context_opts context;
    bn_sampler_params sp;
    cli_device_opts dev;
} run_opts;

/* The default model: models/demo.gguf (the trained demo model, committed) of the
 * checkout the binary was built in (build/bin/bitnet -> ../../models), else
 * ./models/demo.gguf. */
static const char *default_model(void) {
    static char path[PATH_MAX];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(path, sizeof path, "%.4000s/../../models/demo.gguf", exe);
            if (access(path, R_OK) == 0) return path;
        }
    }
    return "models/demo.gguf";
}

static void run_usage(FILE *o, bool eval) {
    if (eval)
        fprintf(o, "usage: bitnet eval -m FILE (-p TEXT | --prompt-ids LIST) --logits-out PATH "
                   "[options]\n\n"
                   "Evaluates the prompt and writes the logits of every position as raw\n"
                   "little-endian float32, [n_tokens][n_vocab].\n\n");
    else
        fprintf(o, "usage: bitnet run [-m FILE] (-p TEXT | --prompt-ids LIST) [options]\n\n"
                   "Generates a continuation of the prompt and streams it to stdout; prompt and\n"
                   "generation speed go to stderr.\n\n");
    fprintf(o, "options:\n"
               "  -m, --model FILE      model (default: models/demo.gguf, the demo model)\n"
               "  -p, --prompt TEXT     prompt text\n"
               "  --prompt-ids LIST     prompt as token ids, e.g. 1,2,3 (no BOS added)\n"
               "  --no-bos              do not add the BOS token to a text prompt\n"
               "  --special             parse special-token text such as <|eot_id|> in the prompt\n"
               "  --verbose-prompt      print the prompt's token ids to stderr\n"
               "  -t, --threads N       threads (default: physical cores)\n"
               "  -c, --ctx-size N      context size (default: the model's, at most 4096)\n"
               "  -b, --batch-size N    prompt tokens per step (default 64)\n"
               "  --kv f16|f32          KV cache type (default f16)\n");
    if (eval)
        fprintf(o, "  --logits-out PATH     where to write the logits\n");
    else
        fprintf(o, "  -n, --n-predict N     tokens to generate (default 128); stops early at EOS\n"
                   "  --temp F              temperature (default 0.8; 0 = greedy); also -temp\n"
                   "  --top-k N             keep the N most likely tokens (default 40; 0 = off)\n"
                   "  --top-p F             nucleus sampling (default 0.95; 1 = off)\n"
                   "  --min-p F             drop tokens below F * p(best) (default 0.05; 0 = off)\n"
                   "  --repeat-penalty F    penalty for recent tokens (default 1.0 = off)\n"
                   "  --repeat-last-n N     how many recent tokens (default 64)\n"
                   "  --seed N              sampling seed (default 0)\n"
                   "  --print-ids           print the generated token ids instead of text\n"
                   "  -cnv, --conversation  chat instead: -p is the system prompt, turns are read\n"
                   "                        from stdin (see bitnet chat --help)\n");
    fprintf(o, "  -h, --help            this help\n");
    cli_device_help(o);
}

/* Parses argv into o; returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, bool eval, run_opts *o) {
    const char *cmd = eval ? "eval" : "run";
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    cli_context_opts_init(&o->context);
    bn_sampler_params_default(&o->sp);
    cli_device_opts_init(&o->dev);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long n;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout, eval);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(o->model = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(o->prompt = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--prompt-ids")) {
            if (!(o->prompt_ids = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--no-bos")) {
            o->no_bos = true;
        } else if (!strcmp(a, "--special")) {
            o->special = true;
        } else if (!strcmp(a, "--verbose-prompt")) {
            o->verbose_prompt = true;
        } else if (eval && !strcmp(a, "--logits-out")) {
            if (!(o->logits_out = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!eval && (!strcmp(a, "-n") || !strcmp(a, "--n-predict"))) {
            if (!cli_int_value(cmd, argc, argv, &i, 0, 1 << 24, &n)) return EXIT_USAGE;
            o->n_predict = (int)n;
        } else if (!eval && !strcmp(a, "--print-ids")) {
            o->print_ids = true;
        } else if ((r = cli_context_option(cmd, argc, argv, &i, &o->context)) != 0 ||
                   (!eval && (r = cli_sampling_option(cmd, argc, argv, &i, &o->sp)) != 0) ||
                   (r = cli_device_option(cmd, argc, argv, &i, &o->dev)) != 0) {
            if (r != 1) return r;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        }
    }
    if (!o->prompt == !o->prompt_ids)
        return cli_usage_error(cmd, "give exactly one of -p TEXT and --prompt-ids LIST");
    if (eval && !o->logits_out) return cli_usage_error(cmd, "--logits-out PATH is required");
    if (!o->model) {
        o->model = default_model();
        if (access(o->model, R_OK) != 0)
            return cli_error("no model given and the default model %s does not exist (it "
                             "comes with the repository; restore it with git), or pass -m FILE",
                             o->model);
    }
    return -1;
}

/* Loads the model and context and tokenizes the prompt. */
static int prepare(const run_opts *o, bn_model **m, bn_context **ctx, int32_t **ids, int *n_ids) {
    bn_err err = {0};
    double t0 = bn_time_sec();
    if (bn_model_load(o->model, m, &err) != BN_OK) return cli_fail(&err);
    if (o->prompt_ids) {
        *n_ids = cli_parse_id_list(o->prompt_ids, ids);
        if (*n_ids < 0)
            return cli_error("--prompt-ids must be a comma-separated list of token ids");
    } else {
        bool bos = !o->no_bos && (*m)->vocab.add_bos;
        *n_ids = bn_tokenize_alloc(&(*m)->vocab, o->prompt, strlen(o->prompt), bos, o->special, ids,
                                   &err);
        if (*n_ids < 0) return cli_fail(&err);
    }
    if (o->verbose_prompt) {
        fprintf(stderr, "prompt: %d tokens:", *n_ids);
        for (int i = 0; i < *n_ids; i++) fprintf(stderr, " %d", (*ids)[i]);
        fprintf(stderr, "\n");
    }
    if (*n_ids == 0) return cli_error("the prompt is empty");
    bn_context_params cp;
    bn_context_params_default(&cp);
    cli_context_apply(&o->context, &cp);
    cli_device_apply(&o->dev, &cp);
    if (bn_context_new(*m, &cp, ctx, &err) != BN_OK) return cli_fail(&err);
    if (*n_ids > bn_context_n_ctx(*ctx))
        return cli_error("the prompt has %d tokens but the context holds %d; use a larger -c "
                         "(the model was trained with %d)",
                         *n_ids, bn_context_n_ctx(*ctx), (*m)->hp.n_ctx_train);
    fprintf(stderr,
            "loaded %s: %s, %d layers, %s, %.1f MB in %.2f s; context %d, KV cache %.1f MB\n",
            o->model, (*m)->hp.arch_name, (*m)->hp.n_layer, bn_type_name((*m)->weight_type),
            (double)bn_model_bytes(*m) / 1e6, bn_time_sec() - t0, bn_context_n_ctx(*ctx),
            (double)bn_context_kv_bytes(*ctx) / 1e6);
    fprintf(stderr, "%s\n", bn_context_plan_text(*ctx));
    return 0;
}

int cmd_run(int argc, char **argv) {
    cli_interrupt_install(); /* Ctrl-C from here on stops generation (tools/cli.h) */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-cnv") || !strcmp(argv[i], "--conversation"))
            return cmd_chat(argc, argv);
    run_opts o;
    int rc = parse(argc, argv, false, &o);
    if (rc >= 0) return rc;
    bn_model *m = NULL;
    bn_context *ctx = NULL;
    bn_sampler *smp = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    char *text = NULL;
    int n_ids = 0;
    bn_err err = {0};
    if ((rc = prepare(&o, &m, &ctx, &ids, &n_ids))) goto done;
    rc = 1;
    logits = malloc(sizeof(float) * (size_t)m->hp.n_vocab);
    if (!logits) {
        cli_error("out of memory");
        goto done;
    }
    if (bn_sampler_new(&o.sp, m->hp.n_vocab, &smp, &err) != BN_OK) {
        rc = cli_usage_error("run", "%s", err.msg);
        goto done;
    }
    for (int i = 0; i < n_ids; i++) bn_sampler_accept(smp, ids[i]);
    bn_detok detok;
    bn_detok_init(&detok, &m->vocab, false);
    detok.started = true; /* a continuation keeps its leading space */
    text = malloc(bn_detok_max_bytes(&m->vocab));
    if (!text) {
        cli_error("out of memory");
        goto done;
    }
    double t0 = bn_time_sec();
    if (bn_context_eval(ctx, ids, n_ids, false, logits, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    double t_prompt = bn_time_sec() - t0;
    int n_gen = 0, room = bn_context_n_ctx(ctx) - n_ids;
    int n_want = o.n_predict < room ? o.n_predict : room;
    bool stopped_eos = false;
    t0 = bn_time_sec();
    for (; n_gen < n_want && !cli_interrupted(); n_gen++) {
        int tok = bn_sampler_sample(smp, logits);
        bn_sampler_accept(smp, tok);
        if (tok == m->vocab.eos || tok == m->vocab.eot) {
            stopped_eos = true;
            break;
        }
        if (o.print_ids) {
            printf(n_gen ? " %d" : "%d", tok);
        } else {
            fwrite(text, 1, bn_detok_push(&detok, tok, text), stdout);
        }
        fflush(stdout);
        if (n_gen + 1 < n_want && bn_context_eval(ctx, &tok, 1, false, logits, &err) != BN_OK) {
            printf("\n");
            cli_fail(&err);
            goto done;
        }
    }
    double t_gen = bn_time_sec() - t0;
    if (!o.print_ids) fwrite(text, 1, bn_detok_flush(&detok, text), stdout);
    printf("\n");
    fflush(stdout);
    if (o.n_predict > room && !stopped_eos)
        fprintf(stderr, "note: stopped after %d tokens: the context (%d) is full\n", n_gen,
                bn_context_n_ctx(ctx));
    fprintf(stderr, "prompt:     %5d tokens in %7.3f s, %8.2f tokens/s\n", n_ids, t_prompt,
            n_ids / (t_prompt > 0 ? t_prompt : 1e-9));
    fprintf(stderr, "generation: %5d tokens in %7.3f s, %8.2f tokens/s%s\n", n_gen, t_gen,
            n_gen / (t_gen > 0 ? t_gen : 1e-9), stopped_eos ? " (stopped at EOS)" : "");
    fprintf(stderr, "peak memory: %.1f MB resident\n", (double)bn_peak_rss_bytes() / 1e6);
    rc = cli_interrupted() ? 130 : 0;
done:
    bn_sampler_free(smp);
    free(text);
    free(logits);
    free(ids);
    bn_context_free(ctx);
    bn_model_free(m);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    run_opts o;
    int rc = parse(argc, argv, true, &o);
    if (rc >= 0) return rc;
    bn_model *m = NULL;
    bn_context *ctx = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    int n_ids = 0;
    bn_err err = {0};
    FILE *f = NULL;
    if ((rc = prepare(&o, &m, &ctx, &ids, &n_ids))) goto done;
    rc = 1;
    logits = malloc(sizeof(float) * (size_t)m->hp.n_vocab * (size_t)n_ids);
    if (!logits) {
        cli_error("out of memory for %d x %d logits", n_ids, m->hp.n_vocab);
        goto done;
    }
    double t0 = bn_time_sec();
    if (bn_context_eval(ctx, ids, n_ids, true, logits, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    double dt = bn_time_sec() - t0;
    f = fopen(o.logits_out, "wb");
    size_t n = (size_t)m->hp.n_vocab * (size_t)n_ids;
    if (!f || fwrite(logits, sizeof(float), n, f) != n || fclose(f) != 0) {
        f = NULL;
        cli_error("cannot write the logits to '%s'", o.logits_out);
        goto done;
    }
    f = NULL;
    fprintf(stderr, "evaluated %d tokens in %.3f s (%.2f tokens/s); wrote %d x %d logits to %s\n",
            n_ids, dt, n_ids / (dt > 0 ? dt : 1e-9), n_ids, m->hp.n_vocab, o.logits_out);
    rc = 0;
done:
    if (f) fclose(f);
    free(logits);
    free(ids);
    bn_context_free(ctx);
    bn_model_free(m);
    return rc;
}
