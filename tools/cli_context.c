/* cli_context.c - parsing of the context and sampling options (see
 * cli_context.h), with the ranges and messages every command gives them. */
#include "cli_context.h"

#include <limits.h>
#include <string.h>

#include "../core/types.h"
#include "cli.h"

void cli_context_opts_init(cli_context_opts *o) {
    memset(o, 0, sizeof *o);
    o->kv_type = BN_TYPE_F16;
}

bool cli_kv_value(const char *cmd, int argc, char **argv, int *i, uint32_t *kv_type) {
    const char *v = cli_value(cmd, argc, argv, i);
    if (!v) return false;
    if (!strcmp(v, "f16"))
        *kv_type = BN_TYPE_F16;
    else if (!strcmp(v, "f32"))
        *kv_type = BN_TYPE_F32;
    else {
        cli_usage_error(cmd, "--kv must be f16 or f32, not '%s'", v);
        return false;
    }
    return true;
}

int cli_context_option(const char *cmd, int argc, char **argv, int *i, cli_context_opts *o) {
    const char *a = argv[*i];
    int *dst;
    long long hi, n;
    if (!strcmp(a, "-t") || !strcmp(a, "--threads"))
        dst = &o->n_threads, hi = 1024;
    else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size"))
        dst = &o->n_ctx, hi = 1 << 24;
    else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size"))
        dst = &o->n_batch, hi = 1 << 16;
    else if (!strcmp(a, "--kv"))
        return cli_kv_value(cmd, argc, argv, i, &o->kv_type) ? 1 : EXIT_USAGE;
    else
        return 0;
    if (!cli_int_value(cmd, argc, argv, i, 1, hi, &n)) return EXIT_USAGE;
    *dst = (int)n;
    return 1;
}

int cli_sampling_option(const char *cmd, int argc, char **argv, int *i, bn_sampler_params *sp) {
    const char *a = argv[*i], *v;
    float *fdst = NULL;
    int *idst = NULL;
    long long lo = 0, n;
    double f;
    if (!strcmp(a, "--temp") || !strcmp(a, "-temp"))
        fdst = &sp->temp;
    else if (!strcmp(a, "--top-p"))
        fdst = &sp->top_p;
    else if (!strcmp(a, "--min-p"))
        fdst = &sp->min_p;
    else if (!strcmp(a, "--repeat-penalty"))
        fdst = &sp->repeat_penalty;
    else if (!strcmp(a, "--top-k"))
        idst = &sp->top_k;
    else if (!strcmp(a, "--repeat-last-n"))
        idst = &sp->repeat_last_n, lo = -1;
    else if (!strcmp(a, "--seed")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return EXIT_USAGE;
        if (!cli_parse_int(v, 0, INT64_MAX, &n))
            return cli_usage_error(cmd, "--seed needs a non-negative integer, not '%s'", v);
        sp->seed = (uint64_t)n;
        return 1;
    } else
        return 0;
    if (fdst) {
        if (!cli_float_value(cmd, argc, argv, i, &f)) return EXIT_USAGE;
        *fdst = (float)f;
    } else {
        if (!cli_int_value(cmd, argc, argv, i, lo, INT_MAX, &n)) return EXIT_USAGE;
        *idst = (int)n;
    }
    return 1;
}

void cli_context_apply(const cli_context_opts *o, bn_context_params *p) {
    p->n_threads = o->n_threads;
    p->n_ctx = o->n_ctx;
    p->n_batch = o->n_batch;
    p->kv_type = o->kv_type;
}
