/* cli.h - what the subcommands of the bitnet command share: option parsing
 * helpers, error reporting (error: ... on stderr, exit 1; usage errors exit 2),
 * and a progress bar for long work on a terminal. */
#ifndef BN_CLI_H
#define BN_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"

#define EXIT_USAGE 2

/* Prints "error: <msg>" to stderr. Returns 1 (the exit code for runtime errors). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "error: <msg>" and "try 'bitnet CMD --help'"; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints err's message as an error and returns 1. */
int cli_fail(const bn_err *err);

/* Strict number parsing: the whole string must be a number in range. */
bool cli_parse_int(const char *s, long long lo, long long hi, long long *out);
bool cli_parse_float(const char *s, double *out);
/* "1,2,3" -> ids (malloc'd); returns the count or -1 on a malformed list. */
int cli_parse_id_list(const char *s, int32_t **out);

/* Fetches the value of option argv[*i] (advancing *i); NULL (after reporting a
 * usage error) when missing. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);
/* Fetches and parses the value of option argv[*i] (advancing *i): an integer in
 * [lo, hi], or a finite number. False (after a usage error "OPT needs an integer
 * in [lo, hi], not 'V'" or "OPT needs a number, not 'V'") when missing or bad. */
bool cli_int_value(const char *cmd, int argc, char **argv, int *i, long long lo, long long hi,
                   long long *out);
bool cli_float_value(const char *cmd, int argc, char **argv, int *i, double *out);

/* A progress bar on stderr, drawn only when stderr is a terminal. */
typedef struct cli_progress {
    bool tty;
    double t0, last;
    const char *label;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label);
void cli_progress_update(cli_progress *p, double done, double total, const char *detail);
void cli_progress_end(cli_progress *p);

/* Ctrl-C during generation: after cli_interrupt_install, the first SIGINT makes
 * cli_interrupted() true (the caller stops and prints its statistics), a second
 * one exits with status 130 at once. */
void cli_interrupt_install(void);
bool cli_interrupted(void);
void cli_interrupt_clear(void); /* chat: the next Ctrl-C stops the next answer */

/* Subcommands: argv[0] is the subcommand name. */
int cmd_gen(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_vocab(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_plan(int argc, char **argv);

/* Copies every tokenizer.* key of vocabulary file f into w (bitnet gen --vocab);
 * *n_tokens receives the vocabulary size. (tools/cmd_vocab.c) */
struct gguf_file;
struct gguf_writer;
bn_status cli_copy_tokenizer(struct gguf_writer *w, const struct gguf_file *f, int *n_tokens,
                             bn_err *err);

#endif
