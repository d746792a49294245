/* planner_print.c - a plan as readable text (bitnet plan, the run summary) and
 * as JSON (bitnet plan --json). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"

static void units_text(const bn_plan_use *u, int n_layer, char *buf, size_t len) {
    int n = 0;
    buf[0] = 0;
    if (u->first_layer >= 0) {
        if (u->first_layer == u->last_layer)
            n = snprintf(buf, len, "layer %d", u->first_layer);
        else
            n = snprintf(buf, len, "layers %d-%d", u->first_layer, u->last_layer);
        if (u->first_layer == 0 && u->last_layer == n_layer - 1)
            n = snprintf(buf, len, "all %d layers", n_layer);
    }
    if (n < 0) n = 0;
    if (u->embd && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "%sembedding", n ? " + " : "");
    if (u->head && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "%soutput head", n ? " + " : "");
    if (!buf[0]) snprintf(buf, len, "-");
}

static const char *dev_name(const bn_plan *p, int d) {
    return d < 0 ? "host" : p->dev[d].id;
}

static bool shown(const bn_plan *p, int d) {
    const bn_plan_use *u = &p->use[d];
    return p->dev[d].allowed || u->mem_bytes || u->decode_s > 0;
}

void bn_plan_print(const bn_plan *p, const bn_plan_model *m, FILE *o) {
    char a[32], b[32], c[32], s[32], e[32];
    fprintf(o, "plan for %s: %d layers, context %d, batch %d\n", m->name, m->n_layer, m->n_ctx,
            m->n_batch);
    fprintf(o, "  %-9s %-5s %-33s %9s %9s %8s %20s %9s %6s\n", "device", "type", "runs", "weights",
            "KV cache", "scratch", "memory / usable", "ms/token", "share");
    for (int d = 0; d < p->n_devices; d++) {
        if (!shown(p, d)) continue;
        const bn_plan_use *u = &p->use[d];
        char units[96], mem[48];
        units_text(u, m->n_layer, units, sizeof units);
        snprintf(mem, sizeof mem, "%s / %s", bn_plan_bytes_str(u->mem_bytes, a, sizeof a),
                 bn_plan_bytes_str(u->usable_bytes, b, sizeof b));
        fprintf(o, "  %-9s %-5s %-33s %9s %9s %8s %20s %9.2f %5.0f%%%s\n", p->dev[d].id,
                bn_device_type_name(p->dev[d].type), units,
                bn_plan_bytes_str(u->weight_bytes, c, sizeof c),
                bn_plan_bytes_str(u->kv_bytes, s, sizeof s),
                bn_plan_bytes_str(u->scratch_bytes, e, sizeof e), mem, u->decode_s * 1e3,
                p->decode_s > 0 ? 100 * u->decode_s / p->decode_s : 0,
                p->dev[d].has_profile ? "" : "  (no profile)");
    }
    fprintf(o, "  copies per token:");
    for (int i = 0; i < p->n_copies; i++) {
        const bn_plan_copy *cp = &p->copies[i];
        if (cp->bytes > 0)
            fprintf(o, "%s %s -> %s %.0f B (%.3f ms)", i ? ";" : "", dev_name(p, cp->from),
                    dev_name(p, cp->to), cp->bytes, cp->seconds * 1e3);
        else
            fprintf(o, "%s %s <-> %s for fallbacks (%.3f ms)", i ? ";" : "", dev_name(p, cp->from),
                    dev_name(p, cp->to), cp->seconds * 1e3);
    }
    fprintf(o, "\n");
    if (p->fallbacks[0]) fprintf(o, "  on the CPU instead: %s\n", p->fallbacks);
    fprintf(o, "  predicted: %.2f tokens/s generating (%.2f ms per token), %.1f tokens/s prompt\n",
            p->decode_s > 0 ? 1 / p->decode_s : 0, p->decode_s * 1e3,
            p->prefill_s > 0 ? 1 / p->prefill_s : 0);
    fprintf(o, "  why: %s\n", p->reason);
    if (p->warning[0]) fprintf(o, "  warning: %s\n", p->warning);
}

void bn_plan_print_json(const bn_plan *p, const bn_plan_model *m, FILE *o) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", m->name);
    cJSON_AddNumberToObject(root, "layers", m->n_layer);
    cJSON_AddNumberToObject(root, "context", m->n_ctx);
    cJSON_AddNumberToObject(root, "batch", m->n_batch);
    cJSON *devs = cJSON_AddArrayToObject(root, "devices");
    for (int d = 0; d < p->n_devices; d++) {
        if (!shown(p, d)) continue;
        const bn_plan_use *u = &p->use[d];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", p->dev[d].id);
        cJSON_AddStringToObject(j, "name", p->dev[d].name);
        cJSON_AddStringToObject(j, "type", bn_device_type_name(p->dev[d].type));
        cJSON_AddNumberToObject(j, "first_layer", u->first_layer);
        cJSON_AddNumberToObject(j, "last_layer", u->last_layer);
        cJSON_AddBoolToObject(j, "embedding", u->embd);
        cJSON_AddBoolToObject(j, "output_head", u->head);
        cJSON_AddNumberToObject(j, "weight_bytes", (double)u->weight_bytes);
        cJSON_AddNumberToObject(j, "kv_bytes", (double)u->kv_bytes);
        cJSON_AddNumberToObject(j, "scratch_bytes", (double)u->scratch_bytes);
        cJSON_AddNumberToObject(j, "memory_bytes", (double)u->mem_bytes);
        cJSON_AddNumberToObject(j, "usable_bytes", (double)u->usable_bytes);
        cJSON_AddNumberToObject(j, "decode_ms", u->decode_s * 1e3);
        cJSON_AddNumberToObject(j, "share", p->decode_s > 0 ? u->decode_s / p->decode_s : 0);
        cJSON_AddBoolToObject(j, "has_profile", p->dev[d].has_profile);
        cJSON_AddItemToArray(devs, j);
    }
    cJSON *cps = cJSON_AddArrayToObject(root, "copies");
    for (int i = 0; i < p->n_copies; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "from", dev_name(p, p->copies[i].from));
        cJSON_AddStringToObject(j, "to", dev_name(p, p->copies[i].to));
        cJSON_AddNumberToObject(j, "bytes", p->copies[i].bytes);
        cJSON_AddNumberToObject(j, "ms", p->copies[i].seconds * 1e3);
        cJSON_AddItemToArray(cps, j);
    }
    cJSON *units = cJSON_AddArrayToObject(root, "unit_devices");
    for (int u = 0; u < p->n_units; u++)
        cJSON_AddItemToArray(units, cJSON_CreateString(p->dev[p->unit_device[u]].id));
    cJSON_AddNumberToObject(root, "decode_ms", p->decode_s * 1e3);
    cJSON_AddNumberToObject(root, "tokens_per_s", p->decode_s > 0 ? 1 / p->decode_s : 0);
    cJSON_AddNumberToObject(root, "prompt_tokens_per_s", p->prefill_s > 0 ? 1 / p->prefill_s : 0);
    cJSON_AddBoolToObject(root, "fits", p->fits);
    cJSON_AddStringToObject(root, "fallbacks", p->fallbacks);
    cJSON_AddStringToObject(root, "reason", p->reason);
    cJSON_AddStringToObject(root, "warning", p->warning);
    char *text = cJSON_Print(root);
    if (text) fprintf(o, "%s\n", text);
    free(text);
    cJSON_Delete(root);
}
