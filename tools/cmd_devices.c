/* cmd_devices.c - `bitnet devices`: every device of every backend in this
 * build, its memory and its throughput profile (measured on first use and
 * cached; graph/profile.h), and why a backend has no device. --json writes
 * the list as a profile file, which --profile accepts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/os.h"
#include "../graph/devices.h"
#include "../graph/profile.h"
#include "cli.h"

static void devices_usage(FILE *o) {
    fprintf(o, "usage: bitnet devices [--json] [--no-measure] [--profile FILE] [-t N]\n\n"
               "Lists every device of every backend in this build with its memory and its\n"
               "profile: ternary mat-vec GB/s, float GFLOP/s, host<->device GB/s, transfer\n"
               "latency and per-dispatch overhead. A profile is measured on first use (under\n"
               "2 s per device) and cached in $BITNET_CACHE_DIR, $XDG_CACHE_HOME/bitnet or\n"
               "~/.cache/bitnet, keyed by the device and the engine version.\n\n"
               "options:\n"
               "  --json          write the devices as a profile file (for --profile)\n"
               "  --no-measure    show cached profiles only; measure nothing\n"
               "  --profile FILE  show the devices of a profile file instead\n"
               "  -t, --threads N CPU threads for measuring (default: physical cores)\n"
               "  -h, --help      this help\n");
}

static void print_bytes(uint64_t b) {
    char s[32];
    printf("%s", b ? bn_plan_bytes_str(b, s, sizeof s) : "unknown");
}

int cmd_devices(int argc, char **argv) {
    bool json = false, measure = true;
    const char *profile = NULL;
    long long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            devices_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--no-measure")) {
            measure = false;
        } else if (!strcmp(a, "--profile")) {
            if (!(profile = cli_value("devices", argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = cli_value("devices", argc, argv, &i))) return EXIT_USAGE;
            if (!cli_parse_int(v, 1, 1024, &threads))
                return cli_usage_error("devices", "%s needs an integer in [1, 1024], not '%s'", a,
                                       v);
        } else {
            return cli_usage_error("devices", "unknown option '%s'", a);
        }
    }
    bn_devset ds;
    bn_err err = {0};
    bn_device_request r = {.profile = profile};
    if (bn_devset_resolve(&r, &ds, &err) != BN_OK) return cli_fail(&err);
    bn_backend_config cfg = {.n_threads = (int)threads};
    char status[BN_PLAN_MAX_DEVICES][300];
    for (int i = 0; i < ds.n; i++) {
        status[i][0] = 0;
        if (ds.from_file) {
            snprintf(status[i], sizeof status[i], "%s",
                     ds.dev[i].has_profile ? "from the file" : "no profile in the file");
            continue;
        }
        bool measured = false;
        bn_err e = {0};
        if (!measure) {
            if (ds.present[i] && bn_profile_lookup(ds.ops[i], ds.index[i], &ds.dev[i].prof)) {
                ds.dev[i].has_profile = true;
                snprintf(status[i], sizeof status[i], "cached");
            } else {
                snprintf(status[i], sizeof status[i], "not measured yet (--no-measure)");
            }
            continue;
        }
        bool tty = !json && bn_isatty_stderr();
        if (tty) fprintf(stderr, "%s: profile...", ds.dev[i].id);
        bn_status st = bn_devset_measure(&ds, i, &cfg, &measured, &e);
        if (tty) fprintf(stderr, "\r%40s\r", "");
        if (st != BN_OK)
            snprintf(status[i], sizeof status[i], "unavailable: %.250s", e.msg);
        else
            snprintf(status[i], sizeof status[i], "%s", measured ? "measured now" : "cached");
    }
    if (json) {
        bn_profile_entry *e = calloc(ds.n > 0 ? (size_t)ds.n : 1, sizeof *e);
        if (!e) return cli_error("out of memory");
        for (int i = 0; i < ds.n; i++) {
            e[i].dev = ds.dev[i];
            memcpy(e[i].details, ds.details[i], sizeof e[i].details);
            e[i].hidden = ds.hidden[i];
        }
        bn_status st = bn_profile_file_write(stdout, e, ds.n, "bitnet devices --json", &err);
        free(e);
        return st == BN_OK ? 0 : cli_fail(&err);
    }
    for (int i = 0; i < ds.n; i++) {
        const bn_plan_device *d = &ds.dev[i];
        printf("%-10s %-5s %s\n", d->id, bn_device_type_name(d->type), d->name);
        if (ds.details[i][0]) printf("           %s\n", ds.details[i]);
        printf("           memory ");
        print_bytes(d->mem_total);
        printf(", ");
        print_bytes(d->mem_budget);
        printf(" free%s\n", d->unified ? ", shared with the host" : "");
        if (d->has_profile)
            printf("           ternary mat-vec %.2f GB/s, float %.2f GFLOP/s, host->device %.2f "
                   "GB/s, device->host %.2f GB/s, latency %.1f us, dispatch %.1f us (%s)\n",
                   d->prof.ternary_gbps, d->prof.float_gflops, d->prof.h2d_gbps, d->prof.d2h_gbps,
                   d->prof.latency_us, d->prof.dispatch_us, status[i]);
        else
            printf("           profile: %s\n", status[i]);
    }
    if (!ds.from_file)
        for (const bn_backend_ops *const *b = bn_backends(); *b; b++) {
            char why[256] = "";
            if ((*b)->device_count(why, sizeof why) == 0)
                printf("%-10s no device: %s\n", (*b)->name, why[0] ? why : "none found");
        }
    if (!ds.from_file && !bn_backend_vulkan()) printf("%-10s not part of this build\n", "vulkan");
    if (!ds.from_file && !bn_backend_opencl()) printf("%-10s not part of this build\n", "opencl");
    bn_devset_close(&ds);
    return 0;
}
