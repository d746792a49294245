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
/* Host memory in bytes: the total, and what is available now (Linux MemAvailable,
 * which counts reclaimable page cache). */
void bn_host_memory(uint64_t *total, uint64_t *avail);

/* CPU features the kernels choose their code paths by (bits of the value
 * bn_cpu_features returns; an x86 AVX feature is reported only when the OS
 * saves the registers it needs). Detected once; 0 bits on other CPUs. */
enum {
    BN_CPU_SSSE3 = 1u << 0,
    BN_CPU_AVX = 1u << 1,
    BN_CPU_AVX2 = 1u << 2,
    BN_CPU_FMA = 1u << 3,
    BN_CPU_F16C = 1u << 4,
    BN_CPU_BMI2 = 1u << 5,
    BN_CPU_AVX512F = 1u << 6,
    BN_CPU_AVX512BW = 1u << 7,
    BN_CPU_AVX512VL = 1u << 8,
    BN_CPU_AVX512VNNI = 1u << 9,
    BN_CPU_AVXVNNI = 1u << 10,
    BN_CPU_NEON = 1u << 16,
    BN_CPU_DOTPROD = 1u << 17, /* Arm SDOT/UDOT */
};
unsigned bn_cpu_features(void);
/* The names of the set bits, space-separated ("avx2 fma f16c ..."), into buf. */
void bn_cpu_features_string(unsigned features, char *buf, size_t len);

/* Whether [p, p + n) lies inside one mapping of a file (not anonymous memory),
 * so its address and contents stay put while mapped: 1 yes, 0 no or unknown. */
int bn_os_is_file_mapping(const void *p, size_t n);
/* Drops the whole pages inside [p, p + n), which must be a read-only file
 * mapping, from this process's resident set; they are read back from the file
 * (page cache) if touched again. No effect where unsupported. */
void bn_os_release_file_pages(const void *p, size_t n);

#endif
