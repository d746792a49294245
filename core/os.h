/* os.h - everything platform-specific: file mapping, clocks, CPU count,
 * memory statistics. A port to another OS replaces os.c alone. */
#ifndef BN_OS_H
#define BN_OS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* A read-only mapping of a whole file. */
typedef struct bn_mapping {
    const uint8_t *data;
    size_t size;
} bn_mapping;

bn_status bn_map_file(const char *path, bn_mapping *out, bn_err *err);
void bn_unmap_file(bn_mapping *m);

double bn_time_sec(void);        /* monotonic seconds */
int bn_cpu_count(void);          /* online logical CPUs, at least 1 */
int bn_cpu_count_physical(void); /* physical cores (logical / SMT width), at least 1 */
size_t bn_peak_rss_bytes(void);  /* peak resident set size of this process, 0 if unknown */
int bn_isatty_stderr(void);

#endif
