/* planner.h - which device runs which part of a model (DESIGN.md "The planner").
 *
 * A model is a chain of units: the embedding, the layers, the output head.
 * Each unit is a list of items (its nodes grouped by op and main source type)
 * with what they cost per generated token (bytes read, flops), per prompt
 * token, and in device memory (weights; a layer's KV cache lives with the
 * layer). A plan gives every unit a device so that each device holds one
 * contiguous range of units (a token crosses each device boundary once) and
 * no device's memory budget is exceeded:
 *
 *   memory(d)  = weights + KV caches of its units + scratch (one batch of
 *                activations) <= budget(d) - margin (5 % of the budget).
 *   decode     = sum over units of the unit's time on its device
 *              + the copies at device boundaries (activation bytes / d2h of
 *                the sender + / h2d of the receiver + both latencies), the
 *                token ids in and the logits out.
 *   unit time  = sum over items of max(bytes / ternary_gbps, flops /
 *                float_gflops) + nodes * dispatch_us; ternary matmuls count
 *                bytes only (the measured rate includes their arithmetic);
 *                attention reads the KV cache as at half the context.
 *
 * An item a device cannot run is charged to the CPU (cpu:0) plus a copy each
 * way, its weights live on the CPU, and the plan lists it. The KV group of a
 * layer (its KV stores and attention) stays on one device, as the cache is
 * device-resident state.
 *
 * The dynamic program minimizes decode time per token (prefill time per
 * prompt token breaks ties) over every order of the devices (up to 5; the
 * given order beyond) and every contiguous split: best[j][k] = the cheapest
 * assignment of units 0..j-1 whose last range is on the k-th device of the
 * order. Constraints: --gpu-layers (exactly N layers off cpu:0), --backend X
 * (as many layers as fit on the preferred devices, then speed), --gpu-mem (a
 * budget cap), --tensor-split (fixed shares, no search). */
#ifndef BN_PLANNER_H
#define BN_PLANNER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../backends/backend.h"

#define BN_PLAN_MAX_DEVICES 8
#define BN_PLAN_MAX_UNSUPPORTED 32
#define BN_PLAN_MAX_ITEMS 24

/* A device as the planner sees it. */
typedef struct bn_plan_device {
    char id[32]; /* "vulkan:0" */
    char name[128];
    bn_device_type type;
    bool allowed;        /* may hold units (false: only the CPU fallback target) */
    bool prefer;         /* --backend X: as many layers as fit go here */
    uint64_t mem_total;  /* bytes, informative */
    uint64_t mem_budget; /* bytes the plan may use (free memory, capped by --gpu-mem) */
    bool unified;
    bool has_profile; /* false: speeds unknown; the device gets units only when asked */
    bn_device_profile prof;
    int n_unsupported; /* (op, type) pairs it cannot run */
    struct {
        bn_op op;
        uint32_t type;
    } unsupported[BN_PLAN_MAX_UNSUPPORTED];
} bn_plan_device;

/* Adds (op, type) to d's unsupported list (ignored when already there or full). */
void bn_plan_device_unsupport(bn_plan_device *d, bn_op op, uint32_t type);
bool bn_plan_device_runs(const bn_plan_device *d, bn_op op, uint32_t type);

/* The (op, type) key of a node: its op and its main source's type (the weight
 * of a matmul or GET_ROWS, the cache of a KV store or attention). */
void bn_plan_node_key(const bn_tensor *n, bn_op *op, uint32_t *type);

typedef enum bn_unit_kind { BN_UNIT_EMBD, BN_UNIT_LAYER, BN_UNIT_HEAD } bn_unit_kind;

typedef struct bn_plan_item {
    bn_op op;
    uint32_t type; /* the main source's type (weights, cache); F32 for the others */
    int n_nodes;
    bool kv;               /* KV_STORE or ATTENTION: the layer's KV group */
    double bytes, flops;   /* per generated token */
    double prefill_flops;  /* per prompt token */
    double io_bytes;       /* activations in + out per token (copies when it runs elsewhere) */
    uint64_t weight_bytes; /* device memory for its weights */
    uint64_t kv_bytes;     /* device memory for its caches */
} bn_plan_item;

typedef struct bn_plan_unit {
    bn_unit_kind kind;
    int layer; /* BN_UNIT_LAYER: its index */
    int n_items;
    bn_plan_item items[BN_PLAN_MAX_ITEMS];
    uint64_t weight_bytes, kv_bytes;
    double out_bytes; /* activation bytes per token handed to the next unit */
} bn_plan_unit;

/* The costs of one model at one context size. */
typedef struct bn_plan_model {
    char name[128];
    int n_layer, n_ctx, n_batch;
    int n_units; /* n_layer + 2: units[0] the embedding, units[n_units-1] the head */
    bn_plan_unit *units;
    uint64_t shared_bytes;  /* a tied embedding/head table, counted in both units */
    uint64_t scratch_bytes; /* activations of one batch on a device */
    double in_bytes;        /* per token: the token id */
    double logits_bytes;    /* per token: the logits back to the host */
} bn_plan_model;

/* The costs of a model from its one-token forward graph (graph/build.c; the
 * node's layer field gives its unit). scratch_bytes: activation memory of a
 * batch, e.g. bn_graph_plan_memory of the n_batch graph. */
bn_status bn_plan_model_from_graph(const bn_graph *g, int n_layer, int n_ctx, int n_batch,
                                   uint64_t scratch_bytes, const char *name, bn_plan_model *out,
                                   bn_err *err);
void bn_plan_model_free(bn_plan_model *m);

typedef struct bn_plan_constraints {
    int gpu_layers; /* layers on devices other than cpu:0 (the fallback); -1: free */
    int n_split;    /* --tensor-split: shares per device, in device order; 0: none */
    double split[BN_PLAN_MAX_DEVICES];
    bool fixed_order; /* keep the device order (no search over orders) */
} bn_plan_constraints;

void bn_plan_constraints_default(bn_plan_constraints *c);
/* "3,1" -> shares; BN_ERR_INVALID_ARG on a malformed list or a zero sum. */
bn_status bn_plan_parse_split(const char *s, bn_plan_constraints *c, bn_err *err);

/* What one device does in a plan. */
typedef struct bn_plan_use {
    int first_layer, last_layer; /* -1, -1 when it holds no layer */
    bool embd, head;
    uint64_t weight_bytes, kv_bytes, scratch_bytes, mem_bytes; /* mem = the sum */
    uint64_t usable_bytes;                                     /* budget - margin */
    double decode_s;  /* time per generated token spent on this device */
    double prefill_s; /* per prompt token */
} bn_plan_use;

typedef struct bn_plan_copy {
    int from, to; /* device indices; -1: the host (token ids in, logits out) */
    double bytes; /* per token */
    double seconds;
} bn_plan_copy;

typedef struct bn_plan {
    int n_devices;
    bn_plan_device dev[BN_PLAN_MAX_DEVICES];
    bn_plan_use use[BN_PLAN_MAX_DEVICES];
    int fallback; /* the device unsupported items run on (cpu:0) */
    int n_units;
    int *unit_device; /* unit -> device index */
    int n_copies;
    bn_plan_copy copies[BN_PLAN_MAX_DEVICES + 2];
    double decode_s, prefill_s; /* per token */
    bool fits;                  /* every device within its usable memory */
    char fallbacks[1024];       /* "MATMUL_TERNARY(tq1_0) of layers 0-9 on cpu:0 (vulkan:0 ...)" */
    char reason[2048];          /* why: one clause per device */
    char warning[512];
} bn_plan;

/* Chooses the plan. devs[fallback] is cpu:0; devices not allowed get no units.
 * BN_ERR_INVALID_ARG (constraints that cannot hold) or BN_ERR_OOM (nothing
 * fits) with a message saying what is short. *out must be released with
 * bn_plan_free. */
bn_status bn_plan_make(const bn_plan_model *m, const bn_plan_device *devs, int n_devs, int fallback,
                       const bn_plan_constraints *c, bn_plan *out, bn_err *err);

/* Computes every number of a plan for a given assignment (unit -> device):
 * memory, times, copies, fits. Used by bn_plan_make and to check it. */
bn_status bn_plan_evaluate(const bn_plan_model *m, const bn_plan_device *devs, int n_devs,
                           int fallback, const int *unit_device, bn_plan *out, bn_err *err);
void bn_plan_free(bn_plan *p);

/* Usable memory of a budget: the budget less the safety margin. */
uint64_t bn_plan_usable(uint64_t budget);

/* Writes the plan as readable text / as JSON. */
void bn_plan_print(const bn_plan *p, const bn_plan_model *m, FILE *out);
void bn_plan_print_json(const bn_plan *p, const bn_plan_model *m, FILE *out);
/* "1.5 GiB" / "800 MiB" / "12 KiB". */
const char *bn_plan_bytes_str(uint64_t bytes, char *buf, size_t len);

#endif
