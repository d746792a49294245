/* cmd_chat.c - `bitnet chat` (and `bitnet run -cnv`): a conversation read from
 * stdin, one user turn per line, with the model's chat template (core/chat.h).
 *
 * The conversation's tokens are kept in one history; the context has evaluated
 * a prefix of it, so each turn evaluates only its own new tokens (the end of the
 * previous reply, the user message, the reply prompt). When the context would
 * overflow, the oldest turns are dropped: the context is reset and the system
 * prompt and the latest turns are evaluated again. /clear starts over (keeping
 * the system prompt), /exit or end of input quits. Replies stream to stdout;
 * the per-turn log goes to stderr. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/chat.h"
#include "../core/model.h"
#include "../core/os.h"
#include "../core/sampler.h"
#include "../core/tokenizer.h"
#include "../core/types.h"
#include "../graph/context.h"
#include "cli.h"
#include "cli_context.h"
#include "cli_devices.h"

typedef struct chat_opts {
    const char *model, *system, *tmpl;
    int n_predict;
    bool verbose_prompt;
    cli_context_opts context;
    bn_sampler_params sp;
    cli_device_opts dev;
} chat_opts;

static void chat_usage(FILE *o) {
    fprintf(o, "usage: bitnet chat -m FILE [--system TEXT] [options]\n"
               "       bitnet run -cnv -m FILE [-p SYSTEM] [options]\n\n"
               "Chats with the model: each line of stdin (a terminal or a pipe) is one user\n"
               "turn; the reply streams to stdout, the per-turn log to stderr. The chat\n"
               "template comes from tokenizer.chat_template (BitNet 2B-4T's 'Role: content',\n"
               "the older Human:/BITNETAssistant:, or Llama 3's headers). The KV cache is kept\n"
               "across turns, so a turn evaluates only its new tokens; when the context is\n"
               "full the oldest turns are dropped (the system prompt stays).\n\n"
               "commands (typed as a turn): /clear  forget the conversation; /exit  quit\n\n"
               "options:\n"
               "  -m, --model FILE      model\n"
               "  --system TEXT         system prompt (also -p)\n"
               "  --template NAME       chat template: bitnet, bitnet-old, llama3 (default: the\n"
               "                        model's)\n"
               "  -n, --n-predict N     longest reply in tokens (default 512)\n"
               "  -c, --ctx-size N      context size (default: the model's, at most 4096)\n"
               "  -t, --threads N       threads (default: physical cores)\n"
               "  -b, --batch-size N    prompt tokens per step (default 64)\n"
               "  --kv f16|f32          KV cache type (default f16)\n"
               "  --temp F, --top-k N, --top-p F, --min-p F, --repeat-penalty F,\n"
               "  --repeat-last-n N, --seed N   sampling, as in bitnet run\n"
               "  --verbose-prompt      print each turn's templated token ids to stderr\n");
    cli_device_help(o);
    fprintf(o, "  -h, --help            this help\n");
}

/* Parses argv; returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, chat_opts *o) {
    const char *cmd = "chat";
    memset(o, 0, sizeof *o);
    o->n_predict = 512;
    cli_context_opts_init(&o->context);
    bn_sampler_params_default(&o->sp);
    cli_device_opts_init(&o->dev);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long n;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            chat_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-cnv") || !strcmp(a, "--conversation")) {
            /* bitnet run -cnv */
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(o->model = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--system") || !strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(o->system = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--template")) {
            if (!(o->tmpl = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!cli_int_value(cmd, argc, argv, &i, 1, 1 << 24, &n)) return EXIT_USAGE;
            o->n_predict = (int)n;
        } else if (!strcmp(a, "--verbose-prompt")) {
            o->verbose_prompt = true;
        } else if ((r = cli_context_option(cmd, argc, argv, &i, &o->context)) != 0 ||
                   (r = cli_sampling_option(cmd, argc, argv, &i, &o->sp)) != 0 ||
                   (r = cli_device_option(cmd, argc, argv, &i, &o->dev)) != 0) {
            if (r != 1) return r;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        }
    }
    if (!o->model) return cli_usage_error(cmd, "-m FILE is required");
    return -1;
}

/* The conversation: hist holds every token; the context has evaluated hist[0..n_past). */
typedef struct convo {
    bn_idvec hist;
    int sys_end;     /* BOS and system prompt end here */
    int *turn_start; /* where each kept turn begins in hist */
    int n_turns, cap_turns;
    int n_past;
} convo;

static void print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "%s %d tokens:", label, n);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* Drops the oldest turns (never the last one, which is the turn being asked) until
 * the history plus room for a reply fits n_ctx. Returns the number dropped. */
static int drop_old_turns(convo *c, int n_ctx, int reserve) {
    int dropped = 0;
    while (c->n_turns > 1 && c->hist.n + reserve > n_ctx) {
        int from = c->turn_start[1], len = from - c->turn_start[0];
        memmove(c->hist.p + c->turn_start[0], c->hist.p + from,
                sizeof(int32_t) * (size_t)(c->hist.n - from));
        c->hist.n -= len;
        for (int i = 1; i < c->n_turns; i++) c->turn_start[i - 1] = c->turn_start[i] - len;
        c->n_turns--;
        dropped++;
    }
    return dropped;
}

int cmd_chat(int argc, char **argv) {
    chat_opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    bn_model *m = NULL;
    bn_context *ctx = NULL;
    bn_sampler *smp = NULL;
    float *logits = NULL;
    char *text = NULL, *line = NULL;
    size_t line_cap = 0;
    convo c = {0};
    bn_err err = {0};
    rc = 1;
    if (bn_model_load(o.model, &m, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    const bn_vocab *v = &m->vocab;
    bn_chat_kind kind;
    if (o.tmpl) {
        if (!bn_chat_kind_from_name(o.tmpl, &kind)) {
            rc = cli_usage_error(
                "chat", "--template must be bitnet, bitnet-old or llama3, not '%s'", o.tmpl);
            goto done;
        }
    } else {
        kind = bn_chat_detect(v->chat_template.ptr, (size_t)v->chat_template.len, v);
    }
    bn_chat chat;
    if (bn_chat_init(&chat, kind, v, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    bn_context_params cp;
    bn_context_params_default(&cp);
    cli_context_apply(&o.context, &cp);
    cli_device_apply(&o.dev, &cp);
    if (bn_context_new(m, &cp, &ctx, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    fprintf(stderr, "%s\n", bn_context_plan_text(ctx));
    if (bn_sampler_new(&o.sp, m->hp.n_vocab, &smp, &err) != BN_OK) {
        rc = cli_usage_error("chat", "%s", err.msg);
        goto done;
    }
    logits = malloc(sizeof(float) * (size_t)m->hp.n_vocab);
    text = malloc(bn_detok_max_bytes(v));
    if (!logits || !text) {
        cli_error("out of memory");
        goto done;
    }
    int n_ctx = bn_context_n_ctx(ctx);
    int reserve = o.n_predict < n_ctx / 4 ? o.n_predict : n_ctx / 4;

    if (v->bos >= 0) bn_idvec_push(&c.hist, v->bos);
    if (o.system && bn_chat_message(&chat, BN_ROLE_SYSTEM, o.system, &c.hist, &err) != BN_OK) {
        cli_fail(&err);
        goto done;
    }
    c.sys_end = c.hist.n;
    if (c.sys_end + 1 >= n_ctx) {
        cli_error("the system prompt has %d tokens but the context holds %d; use a larger -c",
                  c.sys_end, n_ctx);
        goto done;
    }
    bool tty = isatty(STDIN_FILENO);
    fprintf(stderr, "chat: %s, template %s, context %d; /clear starts over, /exit quits\n", o.model,
            bn_chat_kind_name(kind), n_ctx);
    if (o.verbose_prompt) print_ids("system:", c.hist.p, c.hist.n);

    cli_interrupt_install();
    for (int turn = 1;; turn++) {
        cli_interrupt_clear();
        if (tty) {
            fprintf(stderr, "> ");
            fflush(stderr);
        }
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (!strcmp(line, "/exit")) break;
        if (!strcmp(line, "/clear")) {
            c.hist.n = c.sys_end;
            c.n_turns = 0;
            c.n_past = 0;
            bn_context_reset(ctx);
            bn_sampler_reset(smp);
            fprintf(stderr, "(conversation cleared; the system prompt is kept)\n");
            turn--;
            continue;
        }
        if (got == 0) {
            turn--;
            continue;
        }
        /* the new turn: (end of the previous reply is already pending) user message, reply prompt
         */
        int before = c.hist.n;
        if (c.n_turns == c.cap_turns) {
            int nc = c.cap_turns ? 2 * c.cap_turns : 16;
            int *p = realloc(c.turn_start, sizeof(int) * (size_t)nc);
            if (!p) {
                cli_error("out of memory");
                goto done;
            }
            c.turn_start = p;
            c.cap_turns = nc;
        }
        int pending_start = c.n_past;
        c.turn_start[c.n_turns] = before;
        c.n_turns++;
        if (bn_chat_message(&chat, BN_ROLE_USER, line, &c.hist, &err) != BN_OK ||
            bn_chat_reply_prompt(&chat, &c.hist, &err) != BN_OK) {
            cli_fail(&err);
            goto done;
        }
        if (c.hist.oom) {
            cli_error("out of memory");
            goto done;
        }
        if (o.verbose_prompt)
            print_ids("turn:", c.hist.p + pending_start, c.hist.n - pending_start);
        if (c.hist.n + reserve > n_ctx) {
            int dropped = drop_old_turns(&c, n_ctx, reserve);
            if (dropped > 0) { /* the cache no longer matches the history */
                fprintf(stderr,
                        "context full (%d tokens): dropped the %d oldest turn%s, keeping the "
                        "system prompt and the last %d; re-evaluating %d tokens\n",
                        n_ctx, dropped, dropped == 1 ? "" : "s", c.n_turns, c.hist.n);
                bn_context_reset(ctx);
                c.n_past = 0;
            }
            if (c.hist.n + 1 > n_ctx) {
                fprintf(stderr,
                        "error: this turn needs %d tokens but the context holds %d (system "
                        "prompt %d); it was skipped\n",
                        c.hist.n - c.turn_start[c.n_turns - 1], n_ctx, c.sys_end);
                c.hist.n = c.turn_start[--c.n_turns];
                if (c.n_past > c.hist.n) {
                    c.n_past = 0;
                    bn_context_reset(ctx);
                }
                turn--;
                continue;
            }
        }
        int n_new = c.hist.n - c.n_past;
        double t0 = bn_time_sec();
        if (bn_context_eval(ctx, c.hist.p + c.n_past, n_new, false, logits, &err) != BN_OK) {
            cli_fail(&err);
            goto done;
        }
        double t_prompt = bn_time_sec() - t0;
        fprintf(stderr, "turn %d: evaluated %d new tokens (positions %d..%d)\n", turn, n_new,
                c.n_past, c.hist.n - 1);
        for (int i = c.n_past; i < c.hist.n; i++) bn_sampler_accept(smp, c.hist.p[i]);
        c.n_past = c.hist.n;

        /* the reply */
        bn_detok detok;
        bn_detok_init(&detok, v, false);
        int n_gen = 0;
        bool stopped = false, full = false;
        t0 = bn_time_sec();
        for (;;) {
            if (n_gen >= o.n_predict || cli_interrupted()) break; /* Ctrl-C ends this answer */
            if (c.hist.n + 1 >= n_ctx) { /* keep room for the reply's end token */
                full = true;
                break;
            }
            int tok = bn_sampler_sample(smp, logits);
            bn_sampler_accept(smp, tok);
            if (bn_chat_is_stop(&chat, tok)) {
                stopped = true;
                break;
            }
            fwrite(text, 1, bn_detok_push(&detok, tok, text), stdout);
            fflush(stdout);
            bn_idvec_push(&c.hist, tok);
            n_gen++;
            if (bn_context_eval(ctx, &tok, 1, false, logits, &err) != BN_OK) {
                printf("\n");
                cli_fail(&err);
                goto done;
            }
            c.n_past++;
        }
        fwrite(text, 1, bn_detok_flush(&detok, text), stdout);
        printf("\n");
        fflush(stdout);
        double t_gen = bn_time_sec() - t0;
        bn_chat_reply_end(&chat, &c.hist); /* evaluated with the next turn */
        if (c.hist.oom) {
            cli_error("out of memory");
            goto done;
        }
        fprintf(stderr,
                "turn %d: reply %d tokens (%s), prompt %.1f tokens/s, generation %.1f "
                "tokens/s, context %d/%d\n",
                turn, n_gen,
                stopped ? "end of turn"
                : full  ? "context full"
                        : "length limit",
                n_new / (t_prompt > 0 ? t_prompt : 1e-9), n_gen / (t_gen > 0 ? t_gen : 1e-9),
                c.n_past, n_ctx);
        if (full)
            fprintf(stderr, "context full: the reply was cut; the next turn drops the oldest "
                            "turns\n");
    }
    rc = 0;
done:
    free(line);
    free(c.hist.p);
    free(c.turn_start);
    free(text);
    free(logits);
    bn_sampler_free(smp);
    bn_context_free(ctx);
    bn_model_free(m);
    return rc;
}
