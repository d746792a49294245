/* cl_program.c - the embedded OpenCL kernels (shaders/opencl/NAME.cl, turned into
 * C strings by cmake/embed_text.cmake) built into programs, once per backend
 * and variant, and cached on disk.
 *
 * A program is one kernel file with one set of -D options (a variant: weight
 * type, cache type, ...) on top of the backend's base options (device
 * capabilities); common.cl is prepended to every file. A built program's
 * binary (clGetProgramInfo CL_PROGRAM_BINARIES) is written to the cache
 * directory under a 64-bit FNV-1a hash of the platform, device, driver,
 * options and source text, so a later process on the same device skips the
 * compiler (PoCL: 0.6-0.9 s per program cold). A cache file that does not
 * load is ignored and rewritten. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bn_cl_kernels.h"
#include "cl_internal.h"

static const char CACHE_MAGIC[8] = {'B', 'N', 'C', 'L', 'B', 'I', 'N', '1'};

static const bn_cl_source *find_source(const char *name) {
    for (const bn_cl_source *s = bn_cl_sources; s->name; s++)
        if (!strcmp(s->name, name)) return s;
    return NULL;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t fnv1a_str(uint64_t h, const char *s) {
    return fnv1a(h, s, strlen(s) + 1); /* the NUL separates fields */
}

void bn_cl_cache_dir(char *out, size_t len) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        snprintf(out, len, "%s/bitnet/opencl", xdg);
    else if (home && home[0])
        snprintf(out, len, "%s/.cache/bitnet/opencl", home);
    else
        out[0] = 0;
}

/* mkdir -p; true if the directory exists afterwards. */
static bool make_dirs(const char *path) {
    char p[512];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return false;
        *s = '/';
    }
    return mkdir(p, 0755) == 0 || errno == EEXIST;
}

/* The cached binary for key, malloc'd, or NULL. */
static unsigned char *cache_load(const char *path, uint64_t key, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char magic[8];
    uint64_t k = 0, n = 0;
    unsigned char *data = NULL;
    if (fread(magic, 1, 8, f) == 8 && !memcmp(magic, CACHE_MAGIC, 8) && fread(&k, 8, 1, f) == 1 &&
        fread(&n, 8, 1, f) == 1 && k == key && n > 0 && n < (1ull << 30)) {
        data = malloc((size_t)n);
        if (data && fread(data, 1, (size_t)n, f) != n) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

/* Writes the binary next to its final name, then renames it into place, so
 * a concurrent reader never sees half a file. Failures only cost a rebuild. */
static void cache_store(const char *dir, const char *path, uint64_t key, const void *bin,
                        size_t n) {
    if (!make_dirs(dir)) return;
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return;
    uint64_t k = key, sz = n;
    bool ok = fwrite(CACHE_MAGIC, 1, 8, f) == 8 && fwrite(&k, 8, 1, f) == 1 &&
              fwrite(&sz, 8, 1, f) == 1 && fwrite(bin, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) remove(tmp);
}

/* The program's binary for the one device, malloc'd. */
static unsigned char *program_binary(cl_program p, size_t *size) {
    size_t n = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS || !n)
        return NULL;
    unsigned char *bin = malloc(n);
    if (!bin) return NULL;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS) {
        free(bin);
        return NULL;
    }
    *size = n;
    return bin;
}

static bn_status build_program(clb_backend *be, clb_prog *pr, bn_err *err) {
    const bn_cl_source *common = find_source("common"), *src = find_source(pr->file);
    if (!common || !src)
        return bn_fail(err, BN_ERR_INTERNAL, "opencl: kernel file '%s.cl' is not embedded",
                       pr->file);
    char opts[400];
    snprintf(opts, sizeof opts, "%s %s", be->base_options, pr->options);
    const clb_caps *c = &be->caps;
    uint64_t key = 1469598103934665603ull;
    key = fnv1a_str(key, c->platform_version);
    key = fnv1a_str(key, c->name);
    key = fnv1a_str(key, c->version);
    key = fnv1a_str(key, c->driver);
    key = fnv1a_str(key, opts);
    key = fnv1a(key, common->text, common->len);
    key = fnv1a(key, src->text, src->len);
    char path[600] = "";
    if (be->cache_dir[0])
        snprintf(path, sizeof path, "%s/%016llx.bin", be->cache_dir, (unsigned long long)key);

    cl_int r;
    if (path[0]) {
        size_t n = 0;
        unsigned char *bin = cache_load(path, key, &n);
        if (bin) {
            const unsigned char *bins[1] = {bin};
            cl_int status = CL_SUCCESS;
            pr->prog = clCreateProgramWithBinary(be->ctx, 1, &c->device, &n, bins, &status, &r);
            free(bin);
            if (pr->prog && r == CL_SUCCESS && status == CL_SUCCESS &&
                clBuildProgram(pr->prog, 1, &c->device, opts, NULL, NULL) == CL_SUCCESS) {
                be->n_loaded++;
                return BN_OK;
            }
            if (pr->prog) clReleaseProgram(pr->prog);
            pr->prog = NULL;
        }
    }

    const char *texts[2] = {common->text, src->text};
    const size_t lens[2] = {common->len, src->len};
    pr->prog = clCreateProgramWithSource(be->ctx, 2, texts, lens, &r);
    if (!pr->prog || r != CL_SUCCESS) return bn_cl_fail(be, err, r, "clCreateProgramWithSource");
    r = clBuildProgram(pr->prog, 1, &c->device, opts, NULL, NULL);
    if (r != CL_SUCCESS) {
        char log[2048] = "";
        clGetProgramBuildInfo(pr->prog, c->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        log[sizeof log - 1] = 0;
        for (char *s = log; *s; s++)
            if (*s == '\n') *s = ' ';
        clReleaseProgram(pr->prog);
        pr->prog = NULL;
        return bn_fail(err, BN_ERR_DEVICE, "opencl:%d: building %s.cl (%s) failed: %s: %.300s",
                       be->base.device, pr->file, opts, bn_cl_errstr(r), log);
    }
    be->n_built++;
    if (path[0]) {
        size_t n = 0;
        unsigned char *bin = program_binary(pr->prog, &n);
        if (bin) cache_store(be->cache_dir, path, key, bin, n);
        free(bin);
    }
    return BN_OK;
}

/* Builds pr; if the compiler refuses the integer dot product built-ins,
 * builds every later program without them (-DUSE_DOT dropped). */
static bn_status build_program_or_fallback(clb_backend *be, clb_prog *pr, bn_err *err) {
    bn_status st = build_program(be, pr, err);
    if (st == BN_ERR_DEVICE && be->use_dot && strstr(err->msg, "failed")) {
        be->use_dot = false;
        bn_cl_set_options(be);
        st = build_program(be, pr, err);
    }
    return st;
}

bn_status bn_cl_kernel(clb_backend *be, const char *file, const char *options, const char *name,
                       cl_kernel *out, bn_err *err) {
    clb_prog *pr = be->progs;
    while (pr && (strcmp(pr->file, file) || strcmp(pr->options, options))) pr = pr->next;
    if (!pr) {
        pr = calloc(1, sizeof *pr);
        if (!pr) return bn_fail(err, BN_ERR_OOM, "out of memory");
        snprintf(pr->file, sizeof pr->file, "%s", file);
        snprintf(pr->options, sizeof pr->options, "%s", options);
        bn_status st = build_program_or_fallback(be, pr, err);
        if (st != BN_OK) {
            free(pr);
            return st;
        }
        pr->next = be->progs;
        be->progs = pr;
    }
    for (int i = 0; i < pr->n_kernels; i++)
        if (!strcmp(pr->kernels[i].name, name)) {
            *out = pr->kernels[i].k;
            return BN_OK;
        }
    if (pr->n_kernels == (int)(sizeof pr->kernels / sizeof pr->kernels[0]))
        return bn_fail(err, BN_ERR_INTERNAL, "opencl: too many kernels in %s.cl", file);
    cl_int r;
    cl_kernel k = clCreateKernel(pr->prog, name, &r);
    if (!k || r != CL_SUCCESS) return bn_cl_fail(be, err, r, "clCreateKernel");
    snprintf(pr->kernels[pr->n_kernels].name, sizeof pr->kernels[0].name, "%s", name);
    pr->kernels[pr->n_kernels++].k = k;
    *out = k;
    return BN_OK;
}

void bn_cl_programs_free(clb_backend *be) {
    while (be->progs) {
        clb_prog *p = be->progs;
        be->progs = p->next;
        for (int i = 0; i < p->n_kernels; i++) clReleaseKernel(p->kernels[i].k);
        if (p->prog) clReleaseProgram(p->prog);
        free(p);
    }
}
