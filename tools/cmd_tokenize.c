/* cmd_tokenize.c - `bitnet tokenize` (text to ids) and `bitnet detokenize`
 * (ids to text). Both read only the vocabulary, so -m takes a model or a
 * vocabulary-only GGUF. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/tokenizer.h"
#include "cli.h"

/* Opens path and loads its vocabulary; returns 0 or the exit code. */
static int open_vocab(const char *path, gguf_file **f, bn_vocab *v) {
    bn_err err = {0};
    memset(v, 0, sizeof *v);
    if (gguf_open(path, f, &err) != BN_OK) return cli_fail(&err);
    if (bn_vocab_load(v, *f, &err) != BN_OK) {
        bn_vocab_free(v);
        gguf_close(*f);
        *f = NULL;
        bn_err_prefix(&err, "%s", path);
        return cli_fail(&err);
    }
    return 0;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

/* Prints bytes with C-style escapes for quotes, backslashes, control and non-UTF-8 bytes. */
static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\\' || c == '\'')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02X", c);
        else if (c >= 0x80) {
            /* a complete UTF-8 character prints as itself, a stray byte as \xNN */
            int l = (c >= 0xC2 && c <= 0xDF)   ? 2
                    : (c >= 0xE0 && c <= 0xEF) ? 3
                    : (c >= 0xF0 && c <= 0xF4) ? 4
                                               : 0;
            bool ok = l > 0 && i + (size_t)l <= n;
            for (int k = 1; ok && k < l; k++) ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
            if (ok) {
                fwrite(s + i, 1, (size_t)l, stdout);
                i += (size_t)l - 1;
            } else {
                printf("\\x%02X", c);
            }
        } else
            putchar(c);
    }
}

static void tokenize_usage(FILE *o) {
    fprintf(o,
            "usage: bitnet tokenize -m FILE [--no-bos] [--special] [--pieces] (TEXT | --file F)\n\n"
            "Prints the token ids of TEXT (or of file F's bytes), space-separated on one\n"
            "line. -m takes a model or a vocabulary-only GGUF. Write -- TEXT for a text\n"
            "that starts with '-'.\n\n"
            "options:\n"
            "  -m, --model FILE   the model or vocabulary\n"
            "  --file F           tokenize the contents of F\n"
            "  --no-bos           do not add the BOS token\n"
            "  --special          parse special-token text such as <|eot_id|> as those tokens\n"
            "  --pieces           one token per line: id, a tab, the text it stands for\n"
            "  -h, --help         this help\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL;
    bool no_bos = false, special = false, pieces = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            tokenize_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value("tokenize", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--file")) {
            if (!(file = cli_value("tokenize", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = true;
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else if (!strcmp(a, "--pieces")) {
            pieces = true;
        } else if (!strcmp(a, "--") && i + 1 < argc && !text) {
            text = argv[++i]; /* a text that starts with '-' */
        } else if (a[0] == '-' && a[1] && !text) {
            return cli_usage_error("tokenize", "unknown option '%s'", a);
        } else if (!text) {
            text = a;
        } else {
            return cli_usage_error("tokenize", "give one TEXT (quote it), not '%s' too", a);
        }
    }
    if (!model) return cli_usage_error("tokenize", "-m FILE is required");
    if (!text == !file) return cli_usage_error("tokenize", "give exactly one of TEXT and --file F");
    size_t len = text ? strlen(text) : 0;
    char *buf = NULL;
    if (file && !(buf = read_all(file, &len))) return cli_error("cannot read '%s'", file);
    gguf_file *f = NULL;
    bn_vocab v;
    int rc = open_vocab(model, &f, &v);
    if (rc) {
        free(buf);
        return rc;
    }
    bn_err err = {0};
    int32_t *ids = NULL;
    int n = bn_tokenize_alloc(&v, buf ? buf : text, len, !no_bos, special, &ids, &err);
    if (n < 0) {
        rc = cli_fail(&err);
    } else if (pieces) {
        for (int i = 0; i < n; i++) {
            gguf_str t = bn_vocab_text(&v, ids[i]);
            printf("%d\t'", ids[i]);
            if (bn_vocab_is_control(&v, ids[i]))
                print_escaped(t.ptr, t.len);
            else
                print_escaped(v.bytes + v.bytes_off[ids[i]],
                              v.bytes_off[ids[i] + 1] - v.bytes_off[ids[i]]);
            printf("'\n");
        }
    } else {
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    free(ids);
    free(buf);
    bn_vocab_free(&v);
    gguf_close(f);
    return rc;
}

static void detokenize_usage(FILE *o) {
    fprintf(o, "usage: bitnet detokenize -m FILE [--special] ID...\n\n"
               "Prints the text of the token ids (separate arguments, or one argument with\n"
               "ids separated by spaces or commas): exactly its bytes, with a newline added\n"
               "only when stdout is a terminal. Control tokens (BOS, <|eot_id|>, ...) give\n"
               "no text unless --special.\n\n"
               "options:\n"
               "  -m, --model FILE   the model or vocabulary\n"
               "  --special          print control tokens as their text\n"
               "  -h, --help         this help\n");
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    bool special = false;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(argc > 0 ? argc : 1));
    int n = 0, cap = argc > 0 ? argc : 1;
    if (!ids) return cli_error("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            detokenize_usage(stdout);
            free(ids);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value("detokenize", argc, argv, &i))) {
                free(ids);
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else {
            for (const char *p = a; *p;) {
                if (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') {
                    p++;
                    continue;
                }
                char *end;
                errno = 0;
                long id = strtol(p, &end, 10);
                if (end == p || errno || id < 0 || id > INT32_MAX ||
                    (*end && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n')) {
                    free(ids);
                    return cli_usage_error("detokenize", "'%s' is not a list of token ids", a);
                }
                if (n == cap) {
                    int32_t *b = realloc(ids, sizeof(int32_t) * (size_t)cap * 2);
                    if (!b) {
                        free(ids);
                        return cli_error("out of memory");
                    }
                    ids = b;
                    cap *= 2;
                }
                ids[n++] = (int32_t)id;
                p = end;
            }
        }
    }
    if (!model) {
        free(ids);
        return cli_usage_error("detokenize", "-m FILE is required");
    }
    gguf_file *f = NULL;
    bn_vocab v;
    int rc = open_vocab(model, &f, &v);
    if (rc) {
        free(ids);
        return rc;
    }
    for (int i = 0; i < n && !rc; i++)
        if (ids[i] >= v.n_tokens)
            rc = cli_error("token id %d is out of range (the vocabulary has %d tokens)", ids[i],
                           v.n_tokens);
    if (!rc) {
        size_t len;
        char *s = bn_detokenize(&v, ids, n, special, &len);
        if (!s) {
            rc = cli_error("out of memory");
        } else {
            fwrite(s, 1, len, stdout);
            if (isatty(STDOUT_FILENO)) putchar('\n');
            free(s);
        }
    }
    free(ids);
    bn_vocab_free(&v);
    gguf_close(f);
    return rc;
}
