/* safetensors.c - safetensors reader (see safetensors.h). The JSON header is parsed with
 * cJSON; every size and offset is checked against the file before use. */
#define _GNU_SOURCE
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "types.h"

static const struct {
    const char *name;
    st_dtype t;
    int size;
} dtypes[] = {{"F32", ST_F32, 4},
              {"F16", ST_F16, 2},
              {"BF16", ST_BF16, 2},
              {"U8", ST_U8, 1},
              {"I8", ST_I8, 1}};

const char *st_dtype_name(st_dtype t) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].t == t) return dtypes[i].name;
    return "?";
}

void st_close(st_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_files; i++) bn_unmap_file(&m->files[i]);
    for (int i = 0; i < m->n_tensors; i++) free(m->tensors[i].name);
    free(m->files);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}

/* Maps one file and appends its tensors to m. */
static bn_status add_file(st_model *m, const char *path, bn_err *err) {
    bn_mapping *nf = realloc(m->files, sizeof *nf * (size_t)(m->n_files + 1));
    if (!nf) return bn_fail(err, BN_ERR_OOM, "out of memory");
    m->files = nf;
    bn_mapping *mp = &m->files[m->n_files];
    if (bn_map_file(path, mp, err) != BN_OK) return err->code;
    int fi = m->n_files++;
    if (mp->size < 8)
        return bn_fail(err, BN_ERR_FORMAT, "%s: too short for a safetensors file", path);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)mp->data[i] << (8 * i);
    if (hlen > mp->size - 8 || hlen > (100u << 20))
        return bn_fail(err, BN_ERR_FORMAT,
                       "%s: header length %llu does not fit the file (%zu bytes)", path,
                       (unsigned long long)hlen, mp->size);
    const uint8_t *base = mp->data + 8 + hlen;
    uint64_t data_size = mp->size - 8 - hlen;
    cJSON *h = cJSON_ParseWithLength((const char *)mp->data + 8, (size_t)hlen);
    if (!h || !cJSON_IsObject(h)) {
        cJSON_Delete(h);
        return bn_fail(err, BN_ERR_FORMAT, "%s: the header is not a JSON object", path);
    }
    bn_status st = BN_OK;
    cJSON *e;
    cJSON_ArrayForEach(e, h) {
        if (!strcmp(e->string, "__metadata__")) continue;
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) ||
            cJSON_GetArraySize(offs) != 2) {
            st = bn_fail(err, BN_ERR_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets",
                         path, e->string);
            break;
        }
        int size = 0;
        st_tensor t = {0};
        for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
            if (!strcmp(dt->valuestring, dtypes[i].name))
                t.dtype = dtypes[i].t, size = dtypes[i].size;
        if (!size) {
            st = bn_fail(err, BN_ERR_UNSUPPORTED,
                         "%s: tensor '%s' has dtype %s (supported: F32, F16, BF16, U8, I8)", path,
                         e->string, dt->valuestring);
            break;
        }
        t.n_dims = cJSON_GetArraySize(shape);
        if (t.n_dims > ST_MAX_DIMS) {
            st = bn_fail(err, BN_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions", path,
                         e->string, t.n_dims);
            break;
        }
        t.n_elems = 1;
        bool bad = false;
        for (int i = 0; i < t.n_dims; i++) {
            cJSON *d = cJSON_GetArrayItem(shape, i);
            if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12) {
                bad = true;
                break;
            }
            t.shape[i] = (int64_t)d->valuedouble;
            if (t.shape[i] && t.n_elems > INT64_MAX / 16 / t.shape[i]) {
                bad = true;
                break;
            }
            t.n_elems *= t.shape[i];
        }
        cJSON *o0 = cJSON_GetArrayItem(offs, 0), *o1 = cJSON_GetArrayItem(offs, 1);
        if (bad || !cJSON_IsNumber(o0) || !cJSON_IsNumber(o1) || o0->valuedouble < 0 ||
            o1->valuedouble < o0->valuedouble || o1->valuedouble > (double)data_size ||
            (uint64_t)(o1->valuedouble - o0->valuedouble) != (uint64_t)t.n_elems * (uint64_t)size) {
            st =
                bn_fail(err, BN_ERR_FORMAT,
                        "%s: tensor '%s': shape or data_offsets are invalid or do not fit the file",
                        path, e->string);
            break;
        }
        t.data = base + (uint64_t)o0->valuedouble;
        t.nbytes = (uint64_t)t.n_elems * (uint64_t)size;
        t.file = fi;
        t.name = strdup(e->string);
        st_tensor *nt = realloc(m->tensors, sizeof *nt * (size_t)(m->n_tensors + 1));
        if (!t.name || !nt) {
            free(t.name);
            if (nt) m->tensors = nt;
            st = bn_fail(err, BN_ERR_OOM, "out of memory");
            break;
        }
        m->tensors = nt;
        m->tensors[m->n_tensors++] = t;
    }
    cJSON_Delete(h);
    return st;
}

bn_status st_open_file(const char *path, st_model *out, bn_err *err) {
    memset(out, 0, sizeof *out);
    bn_status st = add_file(out, path, err);
    if (st != BN_OK) st_close(out);
    return st;
}

static char *read_text(const char *path, size_t max) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bn_status st_open_dir(const char *dir, st_model *out, bn_err *err) {
    memset(out, 0, sizeof *out);
    char path[4096];
    char **names = NULL;
    int n = 0;
    bn_status st = BN_OK;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (access(path, R_OK) == 0) {
        char *txt = read_text(path, 64u << 20);
        cJSON *j = txt ? cJSON_Parse(txt) : NULL;
        free(txt);
        cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
        if (!cJSON_IsObject(map)) {
            cJSON_Delete(j);
            return bn_fail(err, BN_ERR_FORMAT, "%s: no weight_map object", path);
        }
        cJSON *e;
        cJSON_ArrayForEach(e, map) {
            if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) continue;
            bool seen = false;
            for (int i = 0; i < n && !seen; i++) seen = !strcmp(names[i], e->valuestring);
            if (seen) continue;
            char **nn = realloc(names, sizeof *nn * (size_t)(n + 1));
            if (!nn || !(nn[n] = strdup(e->valuestring))) {
                if (nn) names = nn;
                st = bn_fail(err, BN_ERR_OOM, "out of memory");
                break;
            }
            names = nn;
            n++;
        }
        cJSON_Delete(j);
    } else {
        DIR *d = opendir(dir);
        if (!d) return bn_fail(err, BN_ERR_IO, "cannot open the directory '%s'", dir);
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l < 12 || strcmp(de->d_name + l - 12, ".safetensors")) continue;
            char **nn = realloc(names, sizeof *nn * (size_t)(n + 1));
            if (!nn || !(nn[n] = strdup(de->d_name))) {
                if (nn) names = nn;
                st = bn_fail(err, BN_ERR_OOM, "out of memory");
                break;
            }
            names = nn;
            n++;
        }
        closedir(d);
    }
    if (st == BN_OK && n == 0) st = bn_fail(err, BN_ERR_IO, "no *.safetensors file in '%s'", dir);
    if (st == BN_OK) qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; st == BN_OK && i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        st = add_file(out, path, err);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (st != BN_OK) st_close(out);
    return st;
}

const st_tensor *st_find(const st_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

void st_read_f32(const st_tensor *t, int64_t first, int64_t n, float *dst) {
    const uint8_t *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = first + i;
        switch (t->dtype) {
        case ST_F32:
            memcpy(&dst[i], p + 4 * k, 4);
            break;
        case ST_F16:
        case ST_BF16: {
            uint16_t h = (uint16_t)(p[2 * k] | p[2 * k + 1] << 8);
            dst[i] = t->dtype == ST_F16 ? bn_f16_to_f32(h) : bn_bf16_to_f32(h);
            break;
        }
        default:
            dst[i] = (float)p[k];
            break;
        }
    }
}
