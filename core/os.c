/* os.c - POSIX (Linux) implementation of os.h. */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

bn_status bn_map_file(const char *path, bn_mapping *out, bn_err *err) {
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return bn_fail(err, BN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return bn_fail(err, BN_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return bn_fail(err, BN_ERR_IO, "'%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return bn_fail(err, BN_ERR_FORMAT, "'%s' is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return bn_fail(err, BN_ERR_IO, "cannot map '%s': %s", path, strerror(e));
#ifdef MADV_HUGEPAGE
    /* A hint, ignored where unsupported: pages of the file that are not cached
     * yet are read in 2 MiB folios the mapping can use as huge pages (a file
     * already cached in large folios is mapped that way anyway), so decode
     * streams the weights with fewer TLB misses (bench/RESULTS.md). */
    (void)madvise(p, (size_t)st.st_size, MADV_HUGEPAGE);
#endif
    out->data = p;
    out->size = (size_t)st.st_size;
    return BN_OK;
}

void bn_unmap_file(bn_mapping *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

double bn_time_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int bn_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int bn_cpu_count_physical(void) {
    int logical = bn_cpu_count();
    /* SMT width from sysfs; absent on many VMs, where each CPU is a core. */
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list", "r");
    int width = 1;
    if (f) {
        char buf[128];
        if (fgets(buf, sizeof buf, f)) {
            int a, b;
            if (sscanf(buf, "%d-%d", &a, &b) == 2 && b > a)
                width = b - a + 1;
            else if (strchr(buf, ','))
                width = 2;
        }
        fclose(f);
    }
    int n = logical / width;
    return n > 0 ? n : 1;
}

size_t bn_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

int bn_isatty_stderr(void) {
    return isatty(STDERR_FILENO);
}

/* ---- CPU features ----
 * x86: CPUID leaf 1 (ECX: SSSE3 bit 9, FMA 12, OSXSAVE 27, AVX 28, F16C 29),
 * leaf 7 subleaf 0 (EBX: AVX2 5, BMI2 8, AVX512F 16, AVX512BW 30, AVX512VL 31;
 * ECX: AVX512_VNNI 11), leaf 7 subleaf 1 (EAX: AVX_VNNI 4); XGETBV(0) must
 * show the OS saving SSE+AVX state (bits 1, 2) for AVX features and the
 * AVX-512 state (bits 5..7) for AVX-512. Arm64 Linux: HWCAP_ASIMD (NEON) and
 * HWCAP_ASIMDDP (dot product) from getauxval. */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned detect_features(void) {
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (c & (1u << 9)) f |= BN_CPU_SSSE3;
    unsigned long long xcr0 = 0;
    if (c & (1u << 27)) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    const int os_avx = (xcr0 & 6) == 6, os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
    if (os_avx) {
        if (c & (1u << 28)) f |= BN_CPU_AVX;
        if (c & (1u << 12)) f |= BN_CPU_FMA;
        if (c & (1u << 29)) f |= BN_CPU_F16C;
    }
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if (b & (1u << 8)) f |= BN_CPU_BMI2;
        if (os_avx && (b & (1u << 5))) f |= BN_CPU_AVX2;
        if (os_avx512) {
            if (b & (1u << 16)) f |= BN_CPU_AVX512F;
            if (b & (1u << 30)) f |= BN_CPU_AVX512BW;
            if (b & (1u << 31)) f |= BN_CPU_AVX512VL;
            if (c & (1u << 11)) f |= BN_CPU_AVX512VNNI;
        }
        unsigned max_sub = a;
        if (max_sub >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            if (os_avx && (a & (1u << 4))) f |= BN_CPU_AVXVNNI;
        }
    }
    return f;
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>

static unsigned detect_features(void) {
    unsigned long hw = getauxval(AT_HWCAP);
    unsigned f = 0;
    if (hw & (1ul << 1)) f |= BN_CPU_NEON;     /* HWCAP_ASIMD */
    if (hw & (1ul << 20)) f |= BN_CPU_DOTPROD; /* HWCAP_ASIMDDP */
    return f;
}
#else
static unsigned detect_features(void) {
#if defined(__aarch64__)
    return BN_CPU_NEON;
#else
    return 0;
#endif
}
#endif

unsigned bn_cpu_features(void) {
    /* idempotent: threads racing here store the same value */
    static _Atomic unsigned cached; /* bit 31 marks "detected" */
    unsigned v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!(v & 0x80000000u)) {
        v = detect_features() | 0x80000000u;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v & 0x7fffffffu;
}

void bn_cpu_features_string(unsigned features, char *buf, size_t len) {
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{BN_CPU_SSSE3, "ssse3"},       {BN_CPU_AVX, "avx"},
                 {BN_CPU_AVX2, "avx2"},         {BN_CPU_FMA, "fma"},
                 {BN_CPU_F16C, "f16c"},         {BN_CPU_BMI2, "bmi2"},
                 {BN_CPU_AVX512F, "avx512f"},   {BN_CPU_AVX512BW, "avx512bw"},
                 {BN_CPU_AVX512VL, "avx512vl"}, {BN_CPU_AVX512VNNI, "avx512vnni"},
                 {BN_CPU_AVXVNNI, "avxvnni"},   {BN_CPU_NEON, "neon"},
                 {BN_CPU_DOTPROD, "dotprod"}};
    if (!len) return;
    buf[0] = 0;
    size_t used = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(features & names[i].bit)) continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? " " : "", names[i].name);
        if (n < 0 || (size_t)n >= len - used) break;
        used += (size_t)n;
    }
}

/* ---- file mappings ----
 * /proc/self/maps lists mappings in address order, one per line: "start-end
 * perms offset dev inode [path]"; a mapping of a file has a non-zero inode.
 * A range may span neighbouring mappings (madvise can split one). */
int bn_os_is_file_mapping(const void *p, size_t n) {
    const uintptr_t a = (uintptr_t)p, b = a + n;
    if (b < a) return 0;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[4096];
    uintptr_t covered = a; /* [a, covered) is known to be file-mapped */
    while (covered < b && fgets(line, sizeof line, f)) {
        unsigned long long lo, hi, off, inode;
        char perms[8], dev[32];
        int ok =
            sscanf(line, "%llx-%llx %7s %llx %31s %llu", &lo, &hi, perms, &off, dev, &inode) == 6;
        while (!strchr(line, '\n') && fgets(line, sizeof line, f)) { /* skip a long line's rest */
        }
        if (ok && lo <= covered && covered < hi) {
            if (!inode) break;
            covered = (uintptr_t)hi;
        }
    }
    fclose(f);
    return covered >= b;
}

void bn_os_release_file_pages(const void *p, size_t n) {
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)ps - 1) / (uintptr_t)ps * (uintptr_t)ps;
    uintptr_t b = ((uintptr_t)p + n) / (uintptr_t)ps * (uintptr_t)ps;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

void bn_host_memory(uint64_t *total, uint64_t *avail) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    *total = pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
    *avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) *avail = (uint64_t)kb * 1024;
        fclose(f);
    }
#ifdef _SC_AVPHYS_PAGES
    if (!*avail) {
        long av = sysconf(_SC_AVPHYS_PAGES);
        if (av > 0 && size > 0) *avail = (uint64_t)av * (uint64_t)size;
    }
#endif
    if (!*avail || *avail > *total) *avail = *total;
}
