/* bandwidth.c - bench_bandwidth: this machine's memory read bandwidth, the
 * roofline that decode speed is compared with (bench/run.sh).
 *
 * A buffer much larger than the caches (default 1 GiB) is written once, then
 * read R times by each thread count in the list: thread i of n reads the i-th
 * contiguous n-th of the buffer, OR-ing 256 bytes per step into eight vector
 * accumulators (AVX2 32-byte loads when the CPU has AVX2, 16-byte SSE2 loads
 * otherwise; the result is kept so the loads cannot be optimised away). The
 * figure reported per thread count is the best pass (bytes / wall time of the
 * slowest thread), in GB/s = 1e9 bytes per second, the unit bitnet bench uses
 * for model sizes. Pages are ordinary 4 KiB pages, or with -H transparent
 * huge pages (2 MiB, MADV_HUGEPAGE), as a model mapping gets when the file is
 * cached in large folios (core/os.c); -H reports how much of the buffer got
 * them. Huge pages read faster here (fewer TLB misses), so bench/run.sh takes
 * the larger of the two figures as the roofline.
 *
 * usage: bench_bandwidth [-s MIB] [-t 1,2] [-r REPS] [-H] [-q]
 *   -q prints only "THREADS GBPS" lines (for scripts). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define MAX_THREADS 64

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads [p, p + n) (n a multiple of 256) and returns an OR of everything read. */
typedef uint64_t (*read_fn)(const uint8_t *p, size_t n);

static uint64_t read_plain(const uint8_t *p, size_t n) {
    uint64_t a[8] = {0};
    for (size_t i = 0; i < n; i += 64)
        for (int k = 0; k < 8; k++) {
            uint64_t v;
            memcpy(&v, p + i + 8 * k, 8);
            a[k] |= v;
        }
    return a[0] | a[1] | a[2] | a[3] | a[4] | a[5] | a[6] | a[7];
}

#ifdef HAVE_X86
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0;
    for (size_t i = 0; i < n; i += 256) {
        const __m256i *v = (const __m256i *)(p + i);
        a0 = _mm256_or_si256(a0, _mm256_load_si256(v + 0));
        a1 = _mm256_or_si256(a1, _mm256_load_si256(v + 1));
        a2 = _mm256_or_si256(a2, _mm256_load_si256(v + 2));
        a3 = _mm256_or_si256(a3, _mm256_load_si256(v + 3));
        a4 = _mm256_or_si256(a4, _mm256_load_si256(v + 4));
        a5 = _mm256_or_si256(a5, _mm256_load_si256(v + 5));
        a6 = _mm256_or_si256(a6, _mm256_load_si256(v + 6));
        a7 = _mm256_or_si256(a7, _mm256_load_si256(v + 7));
    }
    __m256i a = _mm256_or_si256(_mm256_or_si256(_mm256_or_si256(a0, a1), _mm256_or_si256(a2, a3)),
                                _mm256_or_si256(_mm256_or_si256(a4, a5), _mm256_or_si256(a6, a7)));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, a);
    return out[0] | out[1] | out[2] | out[3];
}

static uint64_t read_sse2(const uint8_t *p, size_t n) {
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i < n; i += 128) {
        const __m128i *v = (const __m128i *)(p + i);
        a0 = _mm_or_si128(a0, _mm_load_si128(v + 0));
        a1 = _mm_or_si128(a1, _mm_load_si128(v + 1));
        a2 = _mm_or_si128(a2, _mm_load_si128(v + 2));
        a3 = _mm_or_si128(a3, _mm_load_si128(v + 3));
        a4 = _mm_or_si128(a4, _mm_load_si128(v + 4));
        a5 = _mm_or_si128(a5, _mm_load_si128(v + 5));
        a6 = _mm_or_si128(a6, _mm_load_si128(v + 6));
        a7 = _mm_or_si128(a7, _mm_load_si128(v + 7));
    }
    __m128i a = _mm_or_si128(_mm_or_si128(_mm_or_si128(a0, a1), _mm_or_si128(a2, a3)),
                             _mm_or_si128(_mm_or_si128(a4, a5), _mm_or_si128(a6, a7)));
    uint64_t out[2];
    _mm_storeu_si128((__m128i *)out, a);
    return out[0] | out[1];
}
#endif

typedef struct job {
    const uint8_t *p;
    size_t n;
    read_fn fn;
    pthread_barrier_t *start;
    double t_end;
    uint64_t sink;
} job;

static void *thread_main(void *arg) {
    job *j = arg;
    pthread_barrier_wait(j->start);
    j->sink = j->fn(j->p, j->n);
    j->t_end = now();
    return NULL;
}

/* One pass with nt threads; returns GB/s. */
static double pass(const uint8_t *buf, size_t size, int nt, read_fn fn, uint64_t *sink) {
    pthread_t th[MAX_THREADS];
    job jobs[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nt + 1);
    size_t per = size / (size_t)nt / 256 * 256;
    for (int i = 0; i < nt; i++) {
        jobs[i] = (job){.p = buf + (size_t)i * per, .n = per, .fn = fn, .start = &start};
        if (pthread_create(&th[i], NULL, thread_main, &jobs[i]) != 0) {
            fprintf(stderr, "error: cannot start %d threads\n", nt);
            exit(1);
        }
    }
    double t0 = now();
    pthread_barrier_wait(&start);
    double t1 = t0;
    for (int i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].t_end > t1) t1 = jobs[i].t_end;
        *sink |= jobs[i].sink;
    }
    pthread_barrier_destroy(&start);
    return (double)per * nt / (t1 - t0) / 1e9;
}

/* Share of the buffer at p in huge pages: AnonHugePages / Rss of its
 * mapping in /proc/self/smaps (0 when that cannot be read). */
static double huge_share(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return 0;
    char line[256];
    int in = 0;
    double rss = 0, huge = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        double v;
        if (in && sscanf(line, "Rss: %lf", &v) == 1) rss = v;
        if (in && sscanf(line, "AnonHugePages: %lf", &v) == 1) huge = v;
    }
    fclose(f);
    return rss > 0 ? huge / rss : 0;
}

static void usage(FILE *o) {
    fprintf(o, "usage: bench_bandwidth [-s MIB] [-t 1,2] [-r REPS] [-H] [-q]\n\n"
               "Measures memory read bandwidth over a buffer of MIB MiB (default 1024),\n"
               "best of REPS passes (default 5) per thread count (default 1,2).\n"
               "  -H   transparent huge pages (2 MiB) instead of 4 KiB pages\n"
               "  -q   print only \"THREADS GBPS\" lines\n");
}

int main(int argc, char **argv) {
    long mib = 1024, reps = 5;
    int threads[MAX_THREADS], nthreads = 0;
    int quiet = 0, huge = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-q")) {
            quiet = 1;
        } else if (!strcmp(a, "-H")) {
            huge = 1;
        } else if ((!strcmp(a, "-s") || !strcmp(a, "-r") || !strcmp(a, "-t")) && i + 1 < argc) {
            const char *v = argv[++i];
            char *end;
            if (a[1] == 't') {
                for (const char *s = v; *s;) {
                    long t = strtol(s, &end, 10);
                    if (end == s || t < 1 || t > MAX_THREADS || nthreads == MAX_THREADS ||
                        (*end && *end != ',')) {
                        fprintf(stderr, "error: -t needs a list like 1,2 (1..%d)\n", MAX_THREADS);
                        return 2;
                    }
                    threads[nthreads++] = (int)t;
                    s = *end ? end + 1 : end;
                }
            } else {
                long n = strtol(v, &end, 10);
                if (*end || n < 1 || n > (a[1] == 's' ? 1L << 20 : 1000)) {
                    fprintf(stderr, "error: %s needs a positive integer, not '%s'\n", a, v);
                    return 2;
                }
                if (a[1] == 's')
                    mib = n;
                else
                    reps = n;
            }
        } else {
            fprintf(stderr, "error: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!nthreads) {
        threads[0] = 1;
        threads[1] = 2;
        nthreads = 2;
    }
    size_t size = (size_t)mib << 20;
    uint8_t *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        fprintf(stderr, "error: cannot allocate %ld MiB\n", mib);
        return 1;
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(buf, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#endif
    for (size_t i = 0; i < size; i += 4096) buf[i] = (uint8_t)(i >> 12); /* fault every page in */
    memset(buf, 1, size);

    read_fn fn = read_plain;
    const char *isa = "64-bit scalar";
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        fn = read_avx2;
        isa = "AVX2 32-byte";
    } else {
        fn = read_sse2;
        isa = "SSE2 16-byte";
    }
#endif
    if (!quiet)
        printf("# bench_bandwidth: %ld MiB buffer, %s loads, %s pages, best of %ld passes\n", mib,
               isa, huge ? "huge (2 MiB)" : "4 KiB", reps);
    if (!quiet && huge) printf("# %.0f %% of the buffer in huge pages\n", 100.0 * huge_share(buf));
    if (!quiet) printf("threads     GB/s\n");
    uint64_t sink = 0;
    pass(buf, size, 1, fn, &sink); /* warm-up: TLB, frequency */
    for (int k = 0; k < nthreads; k++) {
        double best = 0;
        for (long r = 0; r < reps; r++) {
            double gbs = pass(buf, size, threads[k], fn, &sink);
            if (gbs > best) best = gbs;
        }
        printf(quiet ? "%d %.2f\n" : "%7d  %7.2f\n", threads[k], best);
    }
    munmap(buf, size);
    return sink == 0x5a5a5a5a5a5a5a5aull ? 3 : 0; /* never: keeps sink live */
}
