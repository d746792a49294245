/* profile.h - device profiles: the numbers the planner needs about a device's
 * speed, measured once and cached, or read from a JSON file.
 *
 * A measured profile (backend calibrate, under 2 s) is cached in
 * $BITNET_CACHE_DIR, else $XDG_CACHE_HOME/bitnet, else ~/.cache/bitnet, one
 * file per device named by a hash of the device's identity (backend, name,
 * details) and the engine version, so a driver or engine update measures
 * again. A profile file (--profile FILE) describes a whole machine instead,
 * present or not; `bitnet devices --json` writes one:
 *
 *   {"about": "free text",
 *    "devices": [{"id": "vulkan:0", "name": "...", "type": "dgpu",   (cpu igpu dgpu npu)
 *                 "memory": "8G", "free": "7.5G", "unified": false,  (bytes, or K/M/G/T)
 *                 "profile": {"ternary_gbps": 200, "float_gflops": 8000, "h2d_gbps": 12,
 *                             "d2h_gbps": 12, "latency_us": 10, "dispatch_us": 4},
 *                 "unsupported": ["MATMUL_TERNARY:TQ1_0"]}, ...]}
 *
 * A device without "profile" (or with zeros) has no profile: the planner
 * gives it layers only when asked to. */
#ifndef BN_PROFILE_H
#define BN_PROFILE_H

#include "planner.h"

typedef struct bn_profile_entry {
    bn_plan_device dev; /* mem_budget holds the free memory */
    char details[256];
    bool hidden;
} bn_profile_entry;

typedef struct bn_profile_file {
    char about[512];
    int n;
    bn_profile_entry dev[BN_PLAN_MAX_DEVICES];
} bn_profile_file;

bn_status bn_profile_file_load(const char *path, bn_profile_file *out, bn_err *err);

/* Writes devices as a profile file (the format above). */
bn_status bn_profile_file_write(FILE *f, const bn_profile_entry *devs, int n, const char *about,
                                bn_err *err);

/* "vulkan:0" -> backend "vulkan", index 0. */
bn_status bn_device_id_parse(const char *s, char *backend, size_t len, int *index, bn_err *err);

/* "8G", "512M", "1.5G", "4096" -> bytes (K/M/G/T are powers of 1024). */
bool bn_parse_bytes(const char *s, uint64_t *out);

/* The cache folder (created when missing); NULL when there is none. */
const char *bn_profile_cache_dir(char *buf, size_t len);

/* The cached profile of an enumerated device, if there is one. */
bool bn_profile_lookup(const bn_backend_ops *ops, int index, bn_device_profile *out);

/* The profile of an enumerated device: from the cache, else measured with
 * the backend's calibrate and cached; *measured says which. be: an instance
 * opened for measuring alone, or NULL to open (and close) one here. */
bn_status bn_profile_get(const bn_backend_ops *ops, int index, bn_backend *be,
                         const bn_backend_config *cfg, bn_device_profile *out, bool *measured,
                         bn_err *err);

#endif
