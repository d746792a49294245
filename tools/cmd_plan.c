/* cmd_plan.c - `bitnet plan`: which device would run which layers of a model,
 * with the memory per device, the copies at device boundaries, the predicted
 * speed and the reason. The model is a file (-m) or a named shape (--shape,
 * no file needed), the devices those of this machine or of a profile file
 * (--profile), with every device option of `bitnet run`. Nothing is run. */
#include <stdio.h>
#include <string.h>

#include "../core/types.h"
#include "../graph/devices.h"
#include "../graph/shape_model.h"
#include "cli.h"
#include "cli_context.h"
#include "cli_devices.h"
#include "shapes.h"

static void plan_usage(FILE *o) {
    fprintf(o, "usage: bitnet plan (-m FILE | --shape NAME [--type TYPE]) [options]\n\n"
               "Shows how a model would be split across the devices: for each device its\n"
               "layers, weight and KV-cache bytes, predicted time per token and share; the\n"
               "copies at device boundaries; the predicted tokens/s; and why. Profiles of\n"
               "this machine's devices are measured on first use and cached; --profile\n"
               "plans for a machine described in a file instead (bench/profiles/).\n\n"
               "options:\n"
               "  -m, --model FILE      a GGUF model\n"
               "  --shape NAME          a named shape instead of a file (see bitnet gen --help)\n"
               "  --type TYPE           weight type of --shape: i2_s (default), tq2_0, tq1_0, f16\n"
               "  -c, --ctx-size N      context size (default: the model's, at most 4096)\n"
               "  -b, --batch-size N    prompt tokens per step (default 64)\n"
               "  --kv f16|f32          KV cache type (default f16)\n"
               "  -t, --threads N       CPU threads for measuring profiles\n"
               "  --json                the plan as JSON\n"
               "  -h, --help            this help\n");
    cli_device_help(o);
}

int cmd_plan(int argc, char **argv) {
    const char *model = NULL, *shape = NULL, *type = "i2_s";
    long long n_ctx = 0, n_batch = 64, threads = 0;
    uint32_t kv_type = BN_TYPE_F16;
    bool json = false;
    cli_device_opts dev;
    cli_device_opts_init(&dev);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int dr;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            plan_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value("plan", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--shape")) {
            if (!(shape = cli_value("plan", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--type")) {
            if (!(type = cli_value("plan", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size") || !strcmp(a, "-b") ||
                   !strcmp(a, "--batch-size") || !strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_value("plan", argc, argv, &i))) return EXIT_USAGE;
            long long *dst = &threads;
            if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) dst = &n_ctx;
            if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) dst = &n_batch;
            if (!cli_parse_int(v, 1, 1 << 24, dst))
                return cli_usage_error("plan", "%s needs a positive integer, not '%s'", a, v);
        } else if (!strcmp(a, "--kv")) {
            if (!cli_kv_value("plan", argc, argv, &i, &kv_type)) return EXIT_USAGE;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if ((dr = cli_device_option("plan", argc, argv, &i, &dev)) != 0) {
            if (dr != 1) return dr;
        } else {
            return cli_usage_error("plan", "unknown option '%s'", a);
        }
    }
    if (!model == !shape)
        return cli_usage_error("plan", "give exactly one of -m FILE and --shape NAME");
    bn_err err = {0};
    bn_model *m = NULL;
    bool fake = false;
    if (model) {
        if (bn_model_load(model, &m, &err) != BN_OK) return cli_fail(&err);
    } else {
        const bn_shape *s = bn_shape_find(shape);
        if (!s) return cli_usage_error("plan", "unknown shape '%s' (see bitnet gen --help)", shape);
        int t = bn_type_from_name(type);
        if (t < 0 || !(bn_type_is_ternary((uint32_t)t) || t == BN_TYPE_F16 || t == BN_TYPE_BF16 ||
                       t == BN_TYPE_F32))
            return cli_usage_error("plan",
                                   "--type must be i2_s, tq2_0, tq1_0, f16, bf16 or f32, "
                                   "not '%s'",
                                   type);
        char name[64];
        snprintf(name, sizeof name, "%s %s", s->name, bn_type_name((uint32_t)t));
        bn_shape_params sp = {
            s->arch,      name,       s->n_embd, s->n_ff,           s->n_layer,       s->n_head,
            s->n_head_kv, s->n_vocab, s->n_ctx,  s->rope_freq_base, s->untied_output, (uint32_t)t};
        if (bn_shape_model_new(&sp, &m, &err) != BN_OK) return cli_fail(&err);
        fake = true;
    }
    int rc = 1;
    int ctx = (int)n_ctx;
    if (ctx <= 0) ctx = m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096;
    int batch = (int)(n_batch < ctx ? n_batch : ctx);
    bn_kv_cache kv;
    bn_devset ds;
    bn_plan_model pm;
    bn_plan plan;
    bool have_kv = false, have_plan = false;
    bn_device_request r = {.backend = dev.backend,
                           .devices = dev.devices,
                           .profile = dev.profile,
                           .gpu_mem = dev.gpu_mem};
    bn_plan_constraints pc;
    bn_plan_constraints_default(&pc);
    pc.gpu_layers = dev.gpu_layers;
    bn_backend_config cfg = {.n_threads = (int)threads};
    memset(&ds, 0, sizeof ds);
    if (bn_shape_kv(m, ctx, kv_type, &kv, &err) != BN_OK) goto fail;
    have_kv = true;
    if (bn_devset_resolve(&r, &ds, &err) != BN_OK) goto fail;
    if (dev.tensor_split) {
        if (bn_plan_parse_split(dev.tensor_split, &pc, &err) != BN_OK) goto fail;
        pc.fixed_order = true;
    }
    /* predictions need profiles: measure (or read the cache of) every device used */
    for (int i = 0; i < ds.n && !ds.from_file; i++) {
        bool measured;
        bn_err e = {0};
        if (ds.dev[i].allowed && bn_devset_measure(&ds, i, &cfg, &measured, &e) != BN_OK)
            fprintf(stderr, "note: %s: no profile: %s\n", ds.dev[i].id, e.msg);
    }
    if (bn_devset_plan(&ds, m, &kv, batch, &pc, &cfg, false, &pm, &plan, &err) != BN_OK) goto fail;
    have_plan = true;
    snprintf(pm.name, sizeof pm.name, "%.127s", fake ? m->path : model);
    if (json) {
        bn_plan_print_json(&plan, &pm, stdout);
    } else {
        if (ds.note[0]) printf("%s\n", ds.note);
        bn_plan_print(&plan, &pm, stdout);
    }
    rc = 0;
    goto done;
fail:
    rc = cli_fail(&err);
done:
    if (have_plan) {
        bn_plan_free(&plan);
        bn_plan_model_free(&pm);
    }
    bn_devset_close(&ds);
    if (have_kv) bn_shape_kv_free(&kv);
    if (fake)
        bn_shape_model_free(m);
    else
        bn_model_free(m);
    return rc;
}
