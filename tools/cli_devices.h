/* cli_devices.h - the device options every command that runs a model accepts
 * (run, eval, chat, bench, perplexity, serve, plan):
 *
 *   --backend cpu|vulkan|opencl|npu|auto   --devices LIST   --gpu-layers N
 *   --gpu-mem BYTES   --tensor-split a,b,...   --profile FILE
 *
 * A command calls cli_device_option for each argument it does not know
 * itself, prints cli_device_help in its --help, and hands the result to its
 * context with cli_device_apply; after bn_context_new it prints
 * bn_context_plan_text (graph/context.h) to stderr. */
#ifndef BN_CLI_DEVICES_H
#define BN_CLI_DEVICES_H

#include <stdint.h>
#include <stdio.h>

#include "../graph/context.h"

typedef struct cli_device_opts {
    const char *backend;      /* NULL: auto */
    const char *devices;      /* NULL: chosen by --backend */
    int gpu_layers;           /* -1: the planner decides */
    uint64_t gpu_mem;         /* 0: each device's free memory */
    const char *tensor_split; /* NULL: the planner decides */
    const char *profile;      /* NULL: detect and measure (cached) */
} cli_device_opts;

void cli_device_opts_init(cli_device_opts *o);

/* If argv[*i] is a device option, consumes it and its value (advancing *i)
 * and returns 1; returns 0 if it is not one; EXIT_USAGE (after printing a
 * usage error naming cmd) if its value is bad or missing. */
int cli_device_option(const char *cmd, int argc, char **argv, int *i, cli_device_opts *o);

/* The option lines for --help. */
void cli_device_help(FILE *out);

/* Copies the options into context parameters (strings are borrowed from argv). */
void cli_device_apply(const cli_device_opts *o, bn_context_params *p);

#endif
