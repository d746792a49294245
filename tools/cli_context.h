/* cli_context.h - the context and sampling options of the commands that run a
 * model token by token:
 *
 *   context (run, eval, chat, serve):  -t/--threads N  -c/--ctx-size N
 *                                      -b/--batch-size N  --kv f16|f32
 *   sampling (run, chat):              --temp/-temp F  --top-k N  --top-p F  --min-p F
 *                                      --repeat-penalty F  --repeat-last-n N  --seed N
 *
 * A command calls cli_context_option and cli_sampling_option for each argument
 * it does not know itself and hands the result to its context with
 * cli_context_apply. Each command prints these options in its own --help (the
 * defaults they state differ). */
#ifndef BN_CLI_CONTEXT_H
#define BN_CLI_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/sampler.h"
#include "../graph/context.h"

typedef struct cli_context_opts {
    int n_threads;    /* 0: the command's default */
    int n_ctx;        /* 0: the model's, at most 4096 */
    int n_batch;      /* 0: the context's default */
    uint32_t kv_type; /* BN_TYPE_F16 (default) or BN_TYPE_F32 */
} cli_context_opts;

void cli_context_opts_init(cli_context_opts *o);

/* If argv[*i] is a context option, consumes it and its value (advancing *i)
 * and returns 1; returns 0 if it is not one; EXIT_USAGE (after printing a
 * usage error naming cmd) if its value is bad or missing. Ranges: threads
 * [1, 1024], context [1, 2^24], batch [1, 2^16]. */
int cli_context_option(const char *cmd, int argc, char **argv, int *i, cli_context_opts *o);

/* The same for the sampling options, into sp (which the caller has set to
 * bn_sampler_params_default). Ranges: top-k [0, INT_MAX], repeat-last-n
 * [-1, INT_MAX], seed >= 0; the others any number. */
int cli_sampling_option(const char *cmd, int argc, char **argv, int *i, bn_sampler_params *sp);

/* The value of --kv (argv[*i], advancing *i): f16 or f32 into *kv_type. False
 * (after a usage error) when it is missing or something else. */
bool cli_kv_value(const char *cmd, int argc, char **argv, int *i, uint32_t *kv_type);

/* Copies the context options into context parameters. */
void cli_context_apply(const cli_context_opts *o, bn_context_params *p);

#endif
