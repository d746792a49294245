/* os.c - POSIX (Linux) implementation of os.h. */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
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
