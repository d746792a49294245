/* cli.c - shared helpers of the bitnet subcommands (see cli.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/os.h"

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\ntry 'bitnet %s --help'\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_fail(const bn_err *err) {
    return cli_error("%s", err->msg);
}

bool cli_parse_int(const char *s, long long lo, long long hi, long long *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_float(const char *s, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

int cli_parse_id_list(const char *s, int32_t **out) {
    *out = NULL;
    int n = 1;
    for (const char *p = s; *p; p++) n += *p == ',';
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    if (!ids) return -1;
    int k = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(ids);
            return -1;
        }
        ids[k++] = (int32_t)v;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p) {
            free(ids);
            return -1;
        }
    }
    if (k == 0) {
        free(ids);
        return -1;
    }
    *out = ids;
    return k;
}

const char *cli_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

bool cli_int_value(const char *cmd, int argc, char **argv, int *i, long long lo, long long hi,
                   long long *out) {
    const char *a = argv[*i], *v = cli_value(cmd, argc, argv, i);
    if (!v) return false;
    if (cli_parse_int(v, lo, hi, out)) return true;
    cli_usage_error(cmd, "%s needs an integer in [%lld, %lld], not '%s'", a, lo, hi, v);
    return false;
}

bool cli_float_value(const char *cmd, int argc, char **argv, int *i, double *out) {
    const char *a = argv[*i], *v = cli_value(cmd, argc, argv, i);
    if (!v) return false;
    if (cli_parse_float(v, out)) return true;
    cli_usage_error(cmd, "%s needs a number, not '%s'", a, v);
    return false;
}

void cli_progress_start(cli_progress *p, const char *label) {
    p->tty = bn_isatty_stderr();
    p->t0 = p->last = bn_time_sec();
    p->label = label;
}

void cli_progress_update(cli_progress *p, double done, double total, const char *detail) {
    if (!p->tty) return;
    double now = bn_time_sec();
    if (now - p->last < 0.1 && done < total) return;
    p->last = now;
    double f = total > 0 ? done / total : 1;
    if (f > 1) f = 1;
    int w = 30, fill = (int)(f * w);
    char bar[64];
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : ' ';
    bar[w] = 0;
    fprintf(stderr, "\r%s [%s] %3d%% %s  %.0fs ", p->label, bar, (int)(f * 100),
            detail ? detail : "", now - p->t0);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
    if (p->tty) fprintf(stderr, "\n");
}

static volatile sig_atomic_t interrupted;

/* First Ctrl-C: ask the generation loop to stop; second: leave at once. */
static void on_sigint(int sig) {
    (void)sig;
    if (interrupted) _exit(130);
    interrupted = 1;
    static const char msg[] = "\n(interrupted: stopping; press Ctrl-C again to quit now)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

void cli_interrupt_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

bool cli_interrupted(void) {
    return interrupted != 0;
}

void cli_interrupt_clear(void) {
    interrupted = 0;
}
