/* profile.c - profile files (JSON through cJSON) and the on-disk cache of
 * measured device profiles (see profile.h). */
#define _POSIX_C_SOURCE 200809L
#include "profile.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/bitnet.h"

bool bn_parse_bytes(const char *s, uint64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || !isfinite(v)) return false;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K':
        mul = 1024.0;
        break;
    case 'M':
        mul = 1024.0 * 1024;
        break;
    case 'G':
        mul = 1024.0 * 1024 * 1024;
        break;
    case 'T':
        mul = 1024.0 * 1024 * 1024 * 1024;
        break;
    case 0:
        break;
    default:
        return false;
    }
    if (*end) {
        end++;
        if (toupper((unsigned char)*end) == 'B') end++; /* 8GB, 8G */
        if (toupper((unsigned char)*end) == 'I' && toupper((unsigned char)end[1]) == 'B')
            end += 2; /* 8GiB */
    }
    if (*end || v * mul > 1.8e19) return false;
    *out = (uint64_t)(v * mul);
    return true;
}

bn_status bn_device_id_parse(const char *s, char *backend, size_t len, int *index, bn_err *err) {
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    char *end = NULL;
    long v = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || n == 0 || n >= len || end == colon + 1 || *end || v < 0 || v > 63)
        return bn_fail(err, BN_ERR_INVALID_ARG,
                       "'%s' is not a device id: write BACKEND:INDEX, e.g. cpu:0 or vulkan:0", s);
    memcpy(backend, s, n);
    backend[n] = 0;
    *index = (int)v;
    return BN_OK;
}

/* ---------------------------------------------------------------------------
 * Profile files
 * ------------------------------------------------------------------------- */

static const char *type_str(uint32_t t) {
    const char *n = bn_type_name(t);
    return n ? n : t == BN_TYPE_I32 ? "I32" : t == BN_TYPE_ACT_Q8 ? "ACT_Q8" : "?";
}

static bool json_bytes(const cJSON *j, uint64_t *out) {
    if (cJSON_IsNumber(j) && j->valuedouble >= 0) {
        *out = (uint64_t)j->valuedouble;
        return true;
    }
    return cJSON_IsString(j) && bn_parse_bytes(j->valuestring, out);
}

static bn_status entry_from_json(const cJSON *j, int i, bn_profile_entry *e, const char *path,
                                 bn_err *err) {
    memset(e, 0, sizeof *e);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (!cJSON_IsString(id))
        return bn_fail(err, BN_ERR_FORMAT, "%s: device %d has no \"id\" (e.g. \"cpu:0\")", path, i);
    char backend[32];
    int index;
    if (bn_device_id_parse(id->valuestring, backend, sizeof backend, &index, err) != BN_OK) {
        bn_err_prefix(err, "%s: device %d", path, i);
        if (err) err->code = BN_ERR_FORMAT;
        return BN_ERR_FORMAT;
    }
    snprintf(e->dev.id, sizeof e->dev.id, "%.16s:%d", backend, index);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "name");
    snprintf(e->dev.name, sizeof e->dev.name, "%s", cJSON_IsString(x) ? x->valuestring : e->dev.id);
    x = cJSON_GetObjectItemCaseSensitive(j, "details");
    if (cJSON_IsString(x)) snprintf(e->details, sizeof e->details, "%s", x->valuestring);
    x = cJSON_GetObjectItemCaseSensitive(j, "type");
    e->dev.type = !strcmp(backend, "cpu")   ? BN_DEVICE_CPU
                  : !strcmp(backend, "npu") ? BN_DEVICE_NPU
                                            : BN_DEVICE_DGPU;
    if (x) {
        bool ok = false;
        for (int t = BN_DEVICE_CPU; t <= BN_DEVICE_NPU; t++)
            if (cJSON_IsString(x) && !strcmp(x->valuestring, bn_device_type_name(t))) {
                e->dev.type = (bn_device_type)t;
                ok = true;
            }
        if (!ok)
            return bn_fail(err, BN_ERR_FORMAT,
                           "%s: %s: \"type\" must be \"cpu\", \"igpu\", \"dgpu\" or \"npu\"", path,
                           e->dev.id);
    }
    x = cJSON_GetObjectItemCaseSensitive(j, "memory");
    if (!x || !json_bytes(x, &e->dev.mem_total))
        return bn_fail(err, BN_ERR_FORMAT, "%s: %s needs \"memory\": bytes, or a size like \"8G\"",
                       path, e->dev.id);
    e->dev.mem_budget = e->dev.mem_total;
    x = cJSON_GetObjectItemCaseSensitive(j, "free");
    if (x && !json_bytes(x, &e->dev.mem_budget))
        return bn_fail(err, BN_ERR_FORMAT, "%s: %s: \"free\" must be bytes or a size like \"7G\"",
                       path, e->dev.id);
    x = cJSON_GetObjectItemCaseSensitive(j, "unified");
    e->dev.unified = x ? cJSON_IsTrue(x) : e->dev.type != BN_DEVICE_DGPU;
    x = cJSON_GetObjectItemCaseSensitive(j, "hidden");
    e->hidden = cJSON_IsTrue(x);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "profile");
    if (p && !cJSON_IsObject(p))
        return bn_fail(err, BN_ERR_FORMAT, "%s: %s: \"profile\" must be an object", path,
                       e->dev.id);
    static const char *const keys[6] = {"ternary_gbps", "float_gflops", "h2d_gbps",
                                        "d2h_gbps",     "latency_us",   "dispatch_us"};
    double *vals[6] = {&e->dev.prof.ternary_gbps, &e->dev.prof.float_gflops,
                       &e->dev.prof.h2d_gbps,     &e->dev.prof.d2h_gbps,
                       &e->dev.prof.latency_us,   &e->dev.prof.dispatch_us};
    for (int k = 0; p && k < 6; k++) {
        x = cJSON_GetObjectItemCaseSensitive(p, keys[k]);
        if (!x) continue;
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || !isfinite(x->valuedouble))
            return bn_fail(err, BN_ERR_FORMAT, "%s: %s: profile.%s must be a number >= 0", path,
                           e->dev.id, keys[k]);
        *vals[k] = x->valuedouble;
    }
    e->dev.has_profile = e->dev.prof.ternary_gbps > 0;
    const cJSON *uns = cJSON_GetObjectItemCaseSensitive(j, "unsupported"), *u;
    cJSON_ArrayForEach(u, uns) {
        char op[32] = "", ty[32] = "";
        const char *colon = cJSON_IsString(u) ? strchr(u->valuestring, ':') : NULL;
        if (colon && (size_t)(colon - u->valuestring) < sizeof op) {
            memcpy(op, u->valuestring, (size_t)(colon - u->valuestring));
            snprintf(ty, sizeof ty, "%s", colon + 1);
        }
        int opi = -1, tyi = bn_type_from_name(ty);
        if (!strcasecmp(ty, "I32")) tyi = BN_TYPE_I32;
        for (int o = 1; o < BN_OP_COUNT; o++)
            if (!strcasecmp(op, bn_op_name((bn_op)o))) opi = o;
        if (opi < 0 || tyi < 0)
            return bn_fail(err, BN_ERR_FORMAT,
                           "%s: %s: \"unsupported\" entries are \"OP:TYPE\", e.g. "
                           "\"MATMUL_TERNARY:TQ1_0\"",
                           path, e->dev.id);
        bn_plan_device_unsupport(&e->dev, (bn_op)opi, (uint32_t)tyi);
    }
    return BN_OK;
}

bn_status bn_profile_file_load(const char *path, bn_profile_file *out, bn_err *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return bn_fail(err, BN_ERR_IO, "cannot open the profile file '%s'", path);
    char *text = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *t = cap <= (16u << 20) ? realloc(text, cap) : NULL;
            if (!t) {
                free(text);
                fclose(f);
                return bn_fail(err, BN_ERR_FORMAT, "%s: too large for a profile file", path);
            }
            text = t;
        }
        size_t r = fread(text + n, 1, 4096, f);
        n += r;
        if (r < 4096) break;
    }
    fclose(f);
    text[n] = 0;
    cJSON *root = cJSON_ParseWithLength(text, n);
    free(text);
    if (!root) return bn_fail(err, BN_ERR_FORMAT, "%s: not valid JSON", path);
    bn_status st = BN_OK;
    const cJSON *about = cJSON_GetObjectItemCaseSensitive(root, "about");
    if (cJSON_IsString(about)) snprintf(out->about, sizeof out->about, "%s", about->valuestring);
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(root, "devices"), *d;
    if (!cJSON_IsArray(devs) || cJSON_GetArraySize(devs) == 0)
        st = bn_fail(err, BN_ERR_FORMAT, "%s: needs a \"devices\" array", path);
    cJSON_ArrayForEach(d, devs) {
        if (st != BN_OK) break;
        if (out->n == BN_PLAN_MAX_DEVICES) {
            st = bn_fail(err, BN_ERR_FORMAT, "%s: more than %d devices", path, BN_PLAN_MAX_DEVICES);
            break;
        }
        st = entry_from_json(d, out->n, &out->dev[out->n], path, err);
        for (int k = 0; st == BN_OK && k < out->n; k++)
            if (!strcmp(out->dev[k].dev.id, out->dev[out->n].dev.id))
                st =
                    bn_fail(err, BN_ERR_FORMAT, "%s: %s is listed twice", path, out->dev[k].dev.id);
        if (st == BN_OK) out->n++;
    }
    cJSON_Delete(root);
    return st;
}

static cJSON *profile_json(const bn_device_profile *p) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "ternary_gbps", p->ternary_gbps);
    cJSON_AddNumberToObject(j, "float_gflops", p->float_gflops);
    cJSON_AddNumberToObject(j, "h2d_gbps", p->h2d_gbps);
    cJSON_AddNumberToObject(j, "d2h_gbps", p->d2h_gbps);
    cJSON_AddNumberToObject(j, "latency_us", p->latency_us);
    cJSON_AddNumberToObject(j, "dispatch_us", p->dispatch_us);
    return j;
}

bn_status bn_profile_file_write(FILE *f, const bn_profile_entry *devs, int n, const char *about,
                                bn_err *err) {
    cJSON *root = cJSON_CreateObject();
    if (about) cJSON_AddStringToObject(root, "about", about);
    cJSON_AddStringToObject(root, "engine", "bitnet " BITNET_VERSION);
    cJSON *arr = cJSON_AddArrayToObject(root, "devices");
    for (int i = 0; i < n; i++) {
        const bn_plan_device *d = &devs[i].dev;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", d->id);
        cJSON_AddStringToObject(j, "name", d->name);
        if (devs[i].details[0]) cJSON_AddStringToObject(j, "details", devs[i].details);
        cJSON_AddStringToObject(j, "type", bn_device_type_name(d->type));
        cJSON_AddNumberToObject(j, "memory", (double)d->mem_total);
        cJSON_AddNumberToObject(j, "free", (double)d->mem_budget);
        cJSON_AddBoolToObject(j, "unified", d->unified);
        if (devs[i].hidden) cJSON_AddBoolToObject(j, "hidden", true);
        if (d->has_profile) cJSON_AddItemToObject(j, "profile", profile_json(&d->prof));
        if (d->n_unsupported) {
            cJSON *u = cJSON_AddArrayToObject(j, "unsupported");
            for (int k = 0; k < d->n_unsupported; k++) {
                char s[64];
                snprintf(s, sizeof s, "%s:%s", bn_op_name(d->unsupported[k].op),
                         type_str(d->unsupported[k].type));
                cJSON_AddItemToArray(u, cJSON_CreateString(s));
            }
        }
        cJSON_AddItemToArray(arr, j);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return bn_fail(err, BN_ERR_OOM, "out of memory writing JSON");
    int ok = fprintf(f, "%s\n", text) > 0;
    free(text);
    return ok ? BN_OK : bn_fail(err, BN_ERR_IO, "cannot write the profile");
}

/* ---------------------------------------------------------------------------
 * The cache
 * ------------------------------------------------------------------------- */

const char *bn_profile_cache_dir(char *buf, size_t len) {
    const char *env = getenv("BITNET_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    if (env && *env)
        snprintf(buf, len, "%s", env);
    else if (xdg && *xdg)
        snprintf(buf, len, "%s/bitnet", xdg);
    else if (home && *home) {
        snprintf(buf, len, "%s/.cache", home);
        mkdir(buf, 0755);
        snprintf(buf, len, "%s/.cache/bitnet", home);
    } else
        return NULL;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return NULL;
    return buf;
}

/* The identity of a device and engine, and its cache file. */
static void cache_key(const char *backend, const bn_device_info *info, char *key, size_t klen,
                      char *path, size_t plen, const char *dir) {
    snprintf(key, klen, "%s|%s|%s|bitnet %s", backend, info->name, info->details, BITNET_VERSION);
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = key; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    snprintf(path, plen, "%s/profile-%s-%016llx.json", dir, backend, (unsigned long long)h);
}

static bool cache_read(const char *path, const char *key, bn_device_profile *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *root = cJSON_Parse(text);
    bool ok = false;
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "key");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "profile");
    if (cJSON_IsString(k) && !strcmp(k->valuestring, key) && cJSON_IsObject(p)) {
        static const char *const keys[6] = {"ternary_gbps", "float_gflops", "h2d_gbps",
                                            "d2h_gbps",     "latency_us",   "dispatch_us"};
        double *vals[6] = {&out->ternary_gbps, &out->float_gflops, &out->h2d_gbps,
                           &out->d2h_gbps,     &out->latency_us,   &out->dispatch_us};
        ok = true;
        for (int i = 0; i < 6; i++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, keys[i]);
            if (!cJSON_IsNumber(x) || x->valuedouble < 0)
                ok = false;
            else
                *vals[i] = x->valuedouble;
        }
        ok = ok && out->ternary_gbps > 0;
    }
    cJSON_Delete(root);
    return ok;
}

static void cache_write(const char *path, const char *key, const bn_device_profile *p) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "key", key);
    cJSON_AddItemToObject(root, "profile", profile_json(p));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return;
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%.1200s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f) {
        bool ok = fputs(text, f) >= 0;
        ok = fclose(f) == 0 && ok;
        if (!ok || rename(tmp, path) != 0) remove(tmp); /* a cache: failing is harmless */
    }
    free(text);
}

bool bn_profile_lookup(const bn_backend_ops *ops, int index, bn_device_profile *out) {
    bn_device_info info;
    char dir[1024], key[600], path[1200];
    if (ops->device_info(index, &info, NULL) != BN_OK || !bn_profile_cache_dir(dir, sizeof dir))
        return false;
    cache_key(ops->name, &info, key, sizeof key, path, sizeof path, dir);
    return cache_read(path, key, out);
}

bn_status bn_profile_get(const bn_backend_ops *ops, int index, bn_backend *be,
                         const bn_backend_config *cfg, bn_device_profile *out, bool *measured,
                         bn_err *err) {
    memset(out, 0, sizeof *out);
    *measured = false;
    bn_device_info info;
    if (ops->device_info(index, &info, err) != BN_OK) return err->code;
    char dir[1024], key[600], path[1200];
    bool cache = bn_profile_cache_dir(dir, sizeof dir) != NULL;
    if (cache) {
        cache_key(ops->name, &info, key, sizeof key, path, sizeof path, dir);
        if (cache_read(path, key, out)) return BN_OK;
    }
    bn_backend *opened = NULL;
    if (!be) {
        if (ops->open(index, cfg, &opened, err) != BN_OK) return err->code;
        be = opened;
    }
    bn_status st =
        ops->calibrate ? ops->calibrate(be, out, err) : bn_backend_calibrate_generic(be, out, err);
    if (opened) ops->close(opened);
    if (st != BN_OK) {
        bn_err_prefix(err, "%s:%d", ops->name, index);
        return st;
    }
    *measured = true;
    if (cache) cache_write(path, key, out);
    return BN_OK;
}
