/* devices.c - resolving the device options, learning what the devices run,
 * measuring them when needed, planning and opening (see devices.h). */
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#include "devices.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "profile.h"

static void note(bn_devset *ds, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(bn_devset *ds, const char *fmt, ...) {
    size_t n = strlen(ds->note);
    if (n + 2 >= sizeof ds->note) return;
    if (n) ds->note[n++] = '\n', ds->note[n] = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ds->note + n, sizeof ds->note - n, fmt, ap);
    va_end(ap);
}

static int find_id(const bn_devset *ds, const char *id) {
    for (int i = 0; i < ds->n; i++)
        if (!strcmp(ds->dev[i].id, id)) return i;
    return -1;
}

static const char *backend_of(const bn_devset *ds, int i, char *buf, size_t len) {
    const char *colon = strchr(ds->dev[i].id, ':');
    size_t n = colon ? (size_t)(colon - ds->dev[i].id) : strlen(ds->dev[i].id);
    if (n >= len) n = len - 1;
    memcpy(buf, ds->dev[i].id, n);
    buf[n] = 0;
    return buf;
}

/* Whether a request can use backend `name`: every backend for auto; the CPU
 * and the named one for --backend; the CPU and those in the --devices list.
 * The others are not even asked for their devices, so a CPU run does not
 * load the GPU drivers (tens of MB of LLVM for lavapipe and PoCL). */
static bool backend_wanted(const bn_device_request *r, const char *name) {
    if (!strcmp(name, "cpu")) return true;
    if (r->devices && *r->devices) {
        size_t n = strlen(name);
        for (const char *s = r->devices; (s = strstr(s, name)) != NULL; s += n)
            if ((s == r->devices || s[-1] == ',' || s[-1] == ' ') && s[n] == ':') return true;
        return false;
    }
    const char *backend = r->backend && *r->backend ? r->backend : "auto";
    return !strcmp(backend, "auto") || !strcmp(backend, name);
}

/* Every device of the wanted backends in this build; why[] collects why a
 * backend has none. */
static void enumerate(const bn_device_request *r, bn_devset *ds, char *why, size_t why_len) {
    why[0] = 0;
    for (const bn_backend_ops *const *b = bn_backends(); *b; b++) {
        if (!backend_wanted(r, (*b)->name)) continue;
        char w[256] = "";
        int n = (*b)->device_count(w, sizeof w);
        if (n == 0) {
            size_t l = strlen(why);
            snprintf(why + l, why_len - l, "%s%s: %s", l ? "; " : "", (*b)->name,
                     w[0] ? w : "no device");
        }
        for (int i = 0; i < n && ds->n < BN_PLAN_MAX_DEVICES; i++) {
            bn_device_info info;
            if ((*b)->device_info(i, &info, NULL) != BN_OK) continue;
            int k = ds->n++;
            bn_plan_device *d = &ds->dev[k];
            memset(d, 0, sizeof *d);
            snprintf(d->id, sizeof d->id, "%s:%d", (*b)->name, i);
            snprintf(d->name, sizeof d->name, "%s", info.name);
            snprintf(ds->details[k], sizeof ds->details[k], "%s", info.details);
            d->type = info.type;
            d->mem_total = info.mem_total;
            d->mem_budget = info.mem_free ? info.mem_free : info.mem_total;
            if (!d->mem_budget) d->mem_budget = UINT64_MAX / 4; /* unknown: not a limit */
            d->unified = info.unified;
            ds->ops[k] = *b;
            ds->index[k] = i;
            ds->present[k] = true;
            ds->hidden[k] = info.hidden;
        }
    }
}

static bn_status from_file(bn_devset *ds, const char *path, bn_err *err) {
    bn_profile_file *pf = malloc(sizeof *pf);
    if (!pf) return bn_fail(err, BN_ERR_OOM, "out of memory");
    bn_status st = bn_profile_file_load(path, pf, err);
    for (int i = 0; st == BN_OK && i < pf->n; i++) {
        ds->dev[i] = pf->dev[i].dev;
        snprintf(ds->details[i], sizeof ds->details[i], "%s", pf->dev[i].details);
        ds->hidden[i] = pf->dev[i].hidden;
        char be[32];
        int idx;
        bn_device_id_parse(ds->dev[i].id, be, sizeof be, &idx, NULL);
        ds->ops[i] = bn_backend_by_name(be);
        ds->index[i] = idx;
        ds->present[i] = ds->ops[i] && idx < ds->ops[i]->device_count(NULL, 0);
    }
    if (st == BN_OK) ds->n = pf->n;
    free(pf);
    ds->from_file = true;
    return st;
}

bn_status bn_devset_resolve(const bn_device_request *r, bn_devset *ds, bn_err *err) {
    memset(ds, 0, sizeof *ds);
    char why[1024];
    why[0] = 0;
    if (r->profile) {
        if (from_file(ds, r->profile, err) != BN_OK) return err->code;
    } else {
        enumerate(r, ds, why, sizeof why);
    }
    ds->fallback = find_id(ds, "cpu:0");
    if (ds->fallback < 0)
        return bn_fail(err, BN_ERR_INVALID_ARG, "%s describes no cpu:0 (every plan needs it)",
                       r->profile ? r->profile : "the device list");
    const char *backend = r->backend && *r->backend ? r->backend : "auto";
    if (r->devices && *r->devices) {
        /* exactly the listed devices, in order */
        char list[512];
        snprintf(list, sizeof list, "%s", r->devices);
        int order[BN_PLAN_MAX_DEVICES], n = 0;
        char *save = NULL;
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            char be[32];
            int idx;
            if (bn_device_id_parse(tok, be, sizeof be, &idx, err) != BN_OK) {
                bn_err_prefix(err, "--devices");
                return err->code;
            }
            char id[48];
            snprintf(id, sizeof id, "%s:%d", be, idx);
            int k = find_id(ds, id);
            if (k < 0) {
                const bn_backend_ops *ops = bn_backend_by_name(be);
                if (!ops)
                    return bn_fail(err, BN_ERR_DEVICE, "--devices: no backend '%s' in this build",
                                   be);
                char w[256] = "";
                int count = ops->device_count(w, sizeof w);
                return bn_fail(err, BN_ERR_DEVICE, "--devices: no device %s (%s)", id,
                               count  ? "index out of range"
                               : w[0] ? w
                                      : "no device");
            }
            for (int j = 0; j < n; j++)
                if (order[j] == k)
                    return bn_fail(err, BN_ERR_INVALID_ARG, "--devices lists %s twice", id);
            if (n == BN_PLAN_MAX_DEVICES)
                return bn_fail(err, BN_ERR_INVALID_ARG, "--devices: at most %d devices",
                               BN_PLAN_MAX_DEVICES);
            order[n++] = k;
        }
        if (n == 0) return bn_fail(err, BN_ERR_INVALID_ARG, "--devices: the list is empty");
        /* reorder: the listed devices first, in the given order */
        bn_devset tmp = *ds;
        bool used[BN_PLAN_MAX_DEVICES] = {0};
        int at = 0;
        for (int j = 0; j < n; j++) used[order[j]] = true;
        for (int j = 0; j < n + ds->n; j++) {
            int k = -1;
            if (j < n)
                k = order[j];
            else if (!used[j - n])
                k = j - n;
            if (k < 0) continue;
            ds->dev[at] = tmp.dev[k];
            ds->ops[at] = tmp.ops[k];
            ds->index[at] = tmp.index[k];
            ds->present[at] = tmp.present[k];
            ds->hidden[at] = tmp.hidden[k];
            memcpy(ds->details[at], tmp.details[k], sizeof ds->details[at]);
            ds->dev[at].allowed = j < n;
            at++;
        }
        ds->fallback = find_id(ds, "cpu:0");
        note(ds, "devices: %s (from --devices)", r->devices);
    } else if (!strcmp(backend, "cpu")) {
        ds->dev[ds->fallback].allowed = true;
        note(ds, "backend: cpu:0 (%s)", ds->dev[ds->fallback].name);
    } else if (!strcmp(backend, "auto")) {
        bool vk_gpu = false;
        for (int i = 0; i < ds->n; i++)
            if (!strncmp(ds->dev[i].id, "vulkan:", 7) && ds->dev[i].type != BN_DEVICE_CPU &&
                !ds->hidden[i])
                vk_gpu = true;
        char chosen[512] = "", skipped[1024] = "";
        for (int i = 0; i < ds->n; i++) {
            char be[32], *s = skipped;
            size_t sl = strlen(s);
            backend_of(ds, i, be, sizeof be);
            bool cpu_backend = !strcmp(be, "cpu");
            if (ds->hidden[i]) continue;
            if (!cpu_backend && ds->dev[i].type == BN_DEVICE_CPU) {
                snprintf(s + sl, sizeof skipped - sl,
                         "; not %s (%s): a CPU device, never faster than the native CPU backend",
                         ds->dev[i].id, ds->dev[i].name);
                continue;
            }
            if (vk_gpu && !strcmp(be, "opencl")) {
                snprintf(s + sl, sizeof skipped - sl,
                         "; not %s (%s): the GPUs are used through Vulkan", ds->dev[i].id,
                         ds->dev[i].name);
                continue;
            }
            ds->dev[i].allowed = true;
            size_t cl = strlen(chosen);
            snprintf(chosen + cl, sizeof chosen - cl, "%s%s (%s)", cl ? ", " : "", ds->dev[i].id,
                     ds->dev[i].name);
        }
        note(ds, "auto: %s%s%s%s", chosen, skipped, why[0] ? "; " : "", why);
    } else {
        const bn_backend_ops *ops = bn_backend_by_name(backend);
        bool known =
            !strcmp(backend, "vulkan") || !strcmp(backend, "opencl") || !strcmp(backend, "npu");
        if (!known)
            return bn_fail(err, BN_ERR_INVALID_ARG,
                           "--backend must be cpu, vulkan, opencl, npu or auto, not '%s'", backend);
        if (!ops && !r->profile)
            return bn_fail(err, BN_ERR_DEVICE,
                           "--backend %s: this build has no %s backend (it was configured "
                           "without its SDK); use --backend cpu or auto",
                           backend, backend);
        int found = 0;
        size_t bl = strlen(backend);
        for (int i = 0; i < ds->n; i++)
            if (!strncmp(ds->dev[i].id, backend, bl) && ds->dev[i].id[bl] == ':') {
                ds->dev[i].allowed = true;
                ds->dev[i].prefer = true;
                found++;
            }
        if (!found) {
            char w[256] = "";
            if (ops) ops->device_count(w, sizeof w);
            return bn_fail(err, BN_ERR_DEVICE, "--backend %s: no %s device: %s", backend, backend,
                           w[0] ? w : "none listed");
        }
        ds->dev[ds->fallback].allowed = true;
        note(ds, "backend: %s (as many layers as fit; cpu:0 for the rest)", backend);
    }
    for (int i = 0; i < ds->n; i++)
        if (i != ds->fallback && r->gpu_mem && ds->dev[i].mem_budget > r->gpu_mem)
            ds->dev[i].mem_budget = r->gpu_mem;
    return BN_OK;
}

bn_status bn_devset_measure(bn_devset *ds, int i, const bn_backend_config *cfg, bool *measured,
                            bn_err *err) {
    *measured = false;
    if (ds->dev[i].has_profile) return BN_OK;
    if (!ds->present[i] || !ds->ops[i])
        return bn_fail(err, BN_ERR_DEVICE, "%s is not present here: nothing to measure",
                       ds->dev[i].id);
    /* on an instance of its own (backend.h: calibrate) */
    bn_status st =
        bn_profile_get(ds->ops[i], ds->index[i], NULL, cfg, &ds->dev[i].prof, measured, err);
    if (st == BN_OK) ds->dev[i].has_profile = true;
    return st;
}

static bn_status open_dev(bn_devset *ds, int i, const bn_backend_config *cfg, bn_err *err) {
    if (ds->be[i]) return BN_OK;
    if (!ds->ops[i])
        return bn_fail(err, BN_ERR_DEVICE, "%s: its backend is not part of this build",
                       ds->dev[i].id);
    if (!ds->present[i]) {
        char why[256] = "";
        ds->ops[i]->device_count(why, sizeof why);
        return bn_fail(err, BN_ERR_DEVICE, "%s: not on this machine%s%s%s", ds->dev[i].id,
                       why[0] ? " (" : "", why, why[0] ? ")" : "");
    }
    if (ds->ops[i]->open(ds->index[i], cfg, &ds->be[i], err) != BN_OK) {
        ds->be[i] = NULL;
        return err->code;
    }
    return BN_OK;
}

/* Records the (op, type) pairs device i cannot run, asking its backend about
 * every node of g. */
static void learn_support(bn_devset *ds, int i, const bn_graph *g) {
    bn_backend *be = ds->be[i];
    if (!be || !be->ops->supports) return;
    for (int k = 0; k < g->n_nodes; k++) {
        bn_op op;
        uint32_t type;
        bn_plan_node_key(g->nodes[k], &op, &type);
        if (bn_plan_device_runs(&ds->dev[i], op, type) && !be->ops->supports(be, g->nodes[k]))
            bn_plan_device_unsupport(&ds->dev[i], op, type);
    }
}

void bn_devset_drop(bn_devset *ds, int i, const bn_err *e) {
    size_t n = strlen(ds->dev[i].id);
    if (!strncmp(e->msg, ds->dev[i].id, n) && e->msg[n] == ':') /* already named */
        note(ds, "%s; running on the CPU", e->msg);
    else
        note(ds, "%s: %s; running on the CPU", ds->dev[i].id, e->msg);
    ds->dev[i].allowed = false;
    ds->dev[i].prefer = false;
    ds->dev[ds->fallback].allowed = true;
    if (ds->be[i]) ds->be[i]->ops->close(ds->be[i]);
    ds->be[i] = NULL;
}

bn_status bn_devset_plan(bn_devset *ds, const bn_model *m, const bn_kv_cache *kv, int n_batch,
                         const bn_plan_constraints *c, const bn_backend_config *cfg, bool run,
                         bn_plan_model *pm, bn_plan *plan, bn_err *err) {
    memset(pm, 0, sizeof *pm);
    memset(plan, 0, sizeof *plan);
    /* the costs: the one-token graph, and the activation memory of a batch */
    bn_forward f1, fb;
    if (bn_build_forward(m, kv, 1, false, &f1, err) != BN_OK) return err->code;
    bn_status st = bn_build_forward(m, kv, n_batch, false, &fb, err);
    if (st != BN_OK) {
        bn_forward_free(&f1);
        return st;
    }
    size_t *offs = malloc(sizeof(size_t) * (size_t)fb.g->n_tensors);
    size_t scratch = offs ? bn_graph_plan_memory(fb.g, offs, err) : 0;
    free(offs);
    bn_forward_free(&fb);
    if (!scratch) {
        bn_forward_free(&f1);
        return offs ? err->code : bn_fail(err, BN_ERR_OOM, "out of memory");
    }
    char name[128];
    snprintf(name, sizeof name, "%s %s", m->hp.arch_name, bn_type_name(m->weight_type));
    st = bn_plan_model_from_graph(f1.g, m->hp.n_layer, kv->n_ctx, n_batch, scratch, name, pm, err);
    if (st != BN_OK) {
        bn_forward_free(&f1);
        return st;
    }
    /* what the devices run (only asked of devices present here, not of a file's) */
    int n_allowed = 0;
    for (int i = 0; i < ds->n; i++) {
        if (!ds->dev[i].allowed) continue;
        if (!ds->from_file && ds->present[i]) {
            bn_err e = {0};
            if (open_dev(ds, i, cfg, &e) != BN_OK) {
                if (i == ds->fallback) {
                    *err = e;
                    bn_forward_free(&f1);
                    return e.code;
                }
                bn_devset_drop(ds, i, &e);
                continue;
            }
            learn_support(ds, i, f1.g);
        }
        n_allowed += ds->dev[i].allowed;
    }
    bn_forward_free(&f1);
    /* speeds, when they decide */
    bool prefer = false;
    for (int i = 0; i < ds->n; i++) prefer |= ds->dev[i].allowed && ds->dev[i].prefer;
    if (n_allowed > 1 && !c->n_split && c->gpu_layers < 0 && !prefer && !ds->from_file)
        for (int i = 0; i < ds->n; i++) {
            if (!ds->dev[i].allowed || ds->dev[i].has_profile) continue;
            bool measured;
            bn_err e = {0};
            if (bn_devset_measure(ds, i, cfg, &measured, &e) != BN_OK) {
                if (i == ds->fallback) {
                    note(ds, "%s: %s (planning with nominal speeds)", ds->dev[i].id, e.msg);
                    continue;
                }
                bn_devset_drop(ds, i, &e);
            } else if (measured) {
                note(ds, "%s: measured its profile (cached for next time)", ds->dev[i].id);
            }
        }
    for (;;) {
        st = bn_plan_make(pm, ds->dev, ds->n, ds->fallback, c, plan, err);
        if (st != BN_OK || !run) break;
        /* open every device with work; drop the ones that fail and plan again */
        bool again = false;
        for (int i = 0; i < ds->n && !again; i++) {
            bool busy = i == ds->fallback || plan->use[i].mem_bytes > 0;
            for (int u = 0; u < plan->n_units; u++) busy |= plan->unit_device[u] == i;
            if (!busy || ds->be[i]) continue;
            bn_err e = {0};
            if (open_dev(ds, i, cfg, &e) != BN_OK) {
                if (i == ds->fallback) {
                    *err = e;
                    st = e.code;
                    break;
                }
                bn_devset_drop(ds, i, &e);
                again = true;
            }
        }
        if (st != BN_OK || !again) break;
        bn_plan_free(plan);
    }
    if (st != BN_OK) {
        bn_plan_free(plan);
        bn_plan_model_free(pm);
        return st;
    }
    /* close what has no work */
    for (int i = 0; i < ds->n; i++) {
        bool busy = run && (i == ds->fallback || plan->use[i].mem_bytes > 0);
        for (int u = 0; run && u < plan->n_units; u++) busy |= plan->unit_device[u] == i;
        if (!busy && ds->be[i]) {
            ds->be[i]->ops->close(ds->be[i]);
            ds->be[i] = NULL;
        }
    }
    return BN_OK;
}

void bn_devset_close(bn_devset *ds) {
    for (int i = 0; i < ds->n; i++)
        if (ds->be[i]) {
            ds->be[i]->ops->close(ds->be[i]);
            ds->be[i] = NULL;
        }
}
