/* bitnet.c - the bitnet command: prints the overview and dispatches to the
 * subcommands (each in its own cmd_*.c, each with --help). */
#include <stdio.h>
#include <string.h>

#include "../include/bitnet.h"
#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"run", cmd_run, "generate text from a prompt"},
    {"eval", cmd_eval, "evaluate a prompt and write the logits of every position"},
    {"info", cmd_info, "show a model's architecture, hyperparameters and tensors"},
    {"gen", cmd_gen, "write a model with random ternary weights (for tests and benchmarks)"},
    {"bench", cmd_bench, "measure prompt and generation speed in tokens/s (like llama-bench)"},
    {"chat", cmd_chat, "chat with a model (reads your turns from stdin)"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"detokenize", cmd_detokenize, "print the text of token ids"},
    {"vocab", cmd_vocab, "build a vocabulary GGUF from a tiktoken rank file"},
    {"convert", cmd_convert, "convert a Hugging Face checkpoint to GGUF"},
    {"perplexity", cmd_perplexity, "measure a model's perplexity on a text"},
    {"serve", cmd_serve, "serve a model over HTTP with the OpenAI API"},
    {"devices", cmd_devices, "list the devices with their memory and measured speed"},
    {"plan", cmd_plan, "show how a model would be split across the devices, and why"},
};

static void usage(FILE *out) {
    fprintf(out,
            "bitnet %s - inference for ternary (1.58-bit) LLMs\n\n"
            "usage: bitnet COMMAND [OPTIONS]\n\ncommands:\n",
            BITNET_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'bitnet COMMAND --help' shows a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("bitnet %s\n", BITNET_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "error: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
