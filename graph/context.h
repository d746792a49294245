/* context.h - running a model: owns the KV cache, builds and caches the forward
 * graphs (one per batch size), feeds tokens in batches and returns logits.
 *
 * The devices come from the planner (graph/devices.h: --backend, --devices,
 * --gpu-layers, --gpu-mem, --tensor-split, --profile); each forward graph is
 * split into per-device segments by the scheduler (graph/scheduler.h) once and
 * reused for every step. bn_context_plan_text says what was chosen and why.
 *
 * bn_context_eval appends tokens after the ones already evaluated (n_past)
 * and writes the logits of the last token, or of every token. A prompt longer
 * than the remaining context is refused with a clear error. */
#ifndef BN_CONTEXT_H
#define BN_CONTEXT_H

#include <stdbool.h>
#include <stdio.h>

#include "../backends/backend.h"
#include "../core/model.h"
#include "build.h"

typedef struct bn_context_params {
    int n_ctx;        /* 0: the model's training context, capped at 4096 */
    int n_batch;      /* tokens per graph run (prompt processing); 0: 64 */
    int n_threads;    /* 0: physical cores */
    uint32_t kv_type; /* BN_TYPE_F16 (default) or BN_TYPE_F32 */
    /* devices (strings are read by bn_context_new only; NULL / -1 / 0: automatic) */
    const char *backend;      /* "auto" (NULL), "cpu", "vulkan", "opencl", "npu" */
    const char *devices;      /* "vulkan:0,cpu:0": exactly these devices */
    int gpu_layers;           /* layers on devices other than cpu:0; -1: the planner decides */
    uint64_t gpu_mem;         /* cap on the memory used on each device other than cpu:0 */
    const char *tensor_split; /* "3,1": shares of the layers per device, in --devices order */
    const char *profile;      /* profile file replacing device detection and measurement */
} bn_context_params;

typedef struct bn_context bn_context;

void bn_context_params_default(bn_context_params *p);
bn_status bn_context_new(const bn_model *m, const bn_context_params *p, bn_context **out,
                         bn_err *err);
void bn_context_free(bn_context *c);

/* Evaluates n tokens at positions n_past.. and advances n_past. logits receives
 * n_vocab floats (the last token) or n * n_vocab (all_logits, row per token). */
bn_status bn_context_eval(bn_context *c, const int32_t *tokens, int n, bool all_logits,
                          float *logits, bn_err *err);

int bn_context_n_past(const bn_context *c);
int bn_context_n_ctx(const bn_context *c);
/* Forgets every evaluated token (the cache is overwritten from position 0). */
void bn_context_reset(bn_context *c);
/* Keeps the first n evaluated tokens (0 <= n <= n_past) and forgets the rest:
 * the next eval writes the cache from position n (prompt-prefix reuse). */
void bn_context_truncate(bn_context *c, int n);
size_t bn_context_kv_bytes(const bn_context *c);

/* What runs where and why: the device choice, the plan's reason, fallbacks and
 * warnings, as lines of text (for stderr). */
const char *bn_context_plan_text(const bn_context *c);
/* Prints the plan in use in full (bitnet plan's format). */
void bn_context_print_plan(const bn_context *c, FILE *out);
/* The ids of the devices that hold work, comma-separated ("cpu:0",
 * "vulkan:0,cpu:0"), into buf (for reports such as bitnet bench). */
void bn_context_devices(const bn_context *c, char *buf, size_t len);

#endif
