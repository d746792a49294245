/* cli_devices.c - parsing of the device options (see cli_devices.h). Values
 * are checked here for form; whether a device exists is checked when the
 * context is made, with a message naming the option. */
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#include "cli_devices.h"

#include <stdlib.h>
#include <string.h>

#include "../graph/planner.h"
#include "../graph/profile.h"
#include "cli.h"

void cli_device_opts_init(cli_device_opts *o) {
    memset(o, 0, sizeof *o);
    o->gpu_layers = -1;
}

/* "cpu:0,vulkan:0": every entry BACKEND:INDEX. */
static bool valid_device_list(const char *s) {
    if (!*s) return false;
    char buf[512];
    if (strlen(s) >= sizeof buf) return false;
    strcpy(buf, s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char be[32];
        int idx;
        if (bn_device_id_parse(t, be, sizeof be, &idx, NULL) != BN_OK) return false;
    }
    return s[strlen(s) - 1] != ',' && s[0] != ',' && !strstr(s, ",,");
}

int cli_device_option(const char *cmd, int argc, char **argv, int *i, cli_device_opts *o) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--backend")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return EXIT_USAGE;
        static const char *const names[] = {"cpu", "vulkan", "opencl", "npu", "auto"};
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (!strcmp(v, names[k])) {
                o->backend = v;
                return 1;
            }
        return cli_usage_error(cmd, "--backend must be cpu, vulkan, opencl, npu or auto, not '%s'",
                               v);
    }
    if (!strcmp(a, "--devices")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return EXIT_USAGE;
        if (!valid_device_list(v))
            return cli_usage_error(cmd,
                                   "--devices needs a list of BACKEND:INDEX, e.g. vulkan:0,cpu:0, "
                                   "not '%s'",
                                   v);
        o->devices = v;
        return 1;
    }
    if (!strcmp(a, "--gpu-layers") || !strcmp(a, "-ngl") || !strcmp(a, "--n-gpu-layers")) {
        long long n;
        if (!(v = cli_value(cmd, argc, argv, i))) return EXIT_USAGE;
        if (!cli_parse_int(v, 0, 1 << 20, &n))
            return cli_usage_error(cmd, "%s needs a number of layers >= 0, not '%s'", a, v);
        o->gpu_layers = (int)n;
        return 1;
    }
    if (!strcmp(a, "--gpu-mem")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return EXIT_USAGE;
        if (!bn_parse_bytes(v, &o->gpu_mem) || o->gpu_mem == 0)
            return cli_usage_error(cmd, "--gpu-mem needs a size such as 6G, 512M or 4096, not '%s'",
                                   v);
        return 1;
    }
    if (!strcmp(a, "--tensor-split") || !strcmp(a, "-ts")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return EXIT_USAGE;
        bn_plan_constraints c;
        bn_err err = {0};
        if (bn_plan_parse_split(v, &c, &err) != BN_OK) return cli_usage_error(cmd, "%s", err.msg);
        o->tensor_split = v;
        return 1;
    }
    if (!strcmp(a, "--profile")) {
        if (!(v = cli_value(cmd, argc, argv, i))) return EXIT_USAGE;
        o->profile = v;
        return 1;
    }
    if (!strcmp(a, "--profile-ops")) {
        /* GPU timestamps per dispatch; the backends read it when they open a device
         * and print a per-op table when they close (BITNET_PROFILE_OPS=1 does the same) */
        setenv("BITNET_PROFILE_OPS", "1", 1);
        return 1;
    }
    return 0;
}

void cli_device_help(FILE *o) {
    fprintf(o,
            "devices (see bitnet devices, bitnet plan):\n"
            "  --backend NAME        cpu, vulkan, opencl, npu or auto (default): auto plans over\n"
            "                        every GPU and the CPU; a named backend gets as many layers\n"
            "                        as fit, the CPU the rest (only the drivers of the backends\n"
            "                        named here or in --devices are loaded)\n"
            "  --devices LIST        exactly these devices, e.g. vulkan:0,cpu:0 (cpu:1 is a\n"
            "                        second CPU device, for testing splits)\n"
            "  --gpu-layers N        N layers on the devices other than cpu:0 (-ngl)\n"
            "  --gpu-mem BYTES       use at most this much memory per device other than cpu:0\n"
            "                        (suffixes K, M, G)\n"
            "  --tensor-split A,B,.. shares of the layers per device, in --devices order\n"
            "  --profile FILE        device profiles from FILE (JSON) instead of measuring\n"
            "  --profile-ops         time every GPU dispatch; a per-op table on stderr at exit\n");
}

void cli_device_apply(const cli_device_opts *o, bn_context_params *p) {
    p->backend = o->backend;
    p->devices = o->devices;
    p->gpu_layers = o->gpu_layers;
    p->gpu_mem = o->gpu_mem;
    p->tensor_split = o->tensor_split;
    p->profile = o->profile;
}
