/* ternary_dispatch.c - chooses the ternary kernel table at run time
 * (ternary.h): AVX-512 VNNI, then AVX2, on x86; NEON with the dot product,
 * then plain NEON, on Arm64; the portable C table elsewhere. This file is
 * compiled for the baseline instruction set, so it runs on any CPU.
 * BITNET_CPU_TERNARY=NAME picks a table by name ("reference" = the plain-C
 * reference of cpu_matmul.c), to compare speeds or rule the fast kernels out. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/os.h"
#include "ternary.h"

/* 0: not chosen yet; 1: chosen (the pointer is valid, NULL = reference). */
static atomic_int chosen;
static const bn_tern_kernels *_Atomic current;

static bool cpu_runs(const bn_tern_kernels *t) {
    const unsigned f = bn_cpu_features();
    (void)f;
    if (t == &bn_tern_scalar) return true;
#if defined(__x86_64__) || defined(__i386__)
    if (t == &bn_tern_avx2) return (f & BN_CPU_AVX2) != 0;
    if (t == &bn_tern_avx512) {
        const unsigned need =
            BN_CPU_AVX2 | BN_CPU_AVX512F | BN_CPU_AVX512BW | BN_CPU_AVX512VL | BN_CPU_AVX512VNNI;
        return (f & need) == need;
    }
#endif
#if defined(__aarch64__)
    if (t == &bn_tern_neon) return true; /* NEON is part of Armv8-A */
    if (t == &bn_tern_neon_dot) return (f & BN_CPU_DOTPROD) != 0;
#endif
    return false;
}

/* Every table of this build, best first. */
static const bn_tern_kernels *const tables[] = {
#if defined(__x86_64__) || defined(__i386__)
    &bn_tern_avx512,   &bn_tern_avx2,
#endif
#if defined(__aarch64__)
    &bn_tern_neon_dot, &bn_tern_neon,
#endif
    &bn_tern_scalar,
};

static const bn_tern_kernels *best(void) {
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (cpu_runs(tables[i])) return tables[i];
    return &bn_tern_scalar;
}

const bn_tern_kernels *bn_cpu_ternary_table(const char *name) {
    if (!name || !strcmp(name, "auto")) return best();
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (!strcmp(name, tables[i]->name)) return cpu_runs(tables[i]) ? tables[i] : NULL;
    return NULL;
}

const bn_tern_kernels *bn_cpu_ternary(void) {
    if (atomic_load_explicit(&chosen, memory_order_acquire))
        return atomic_load_explicit(&current, memory_order_relaxed);
    /* every thread that gets here computes the same answer */
    const bn_tern_kernels *t = best();
    const char *env = getenv("BITNET_CPU_TERNARY");
    if (env && *env && strcmp(env, "auto")) t = bn_cpu_ternary_table(env); /* unknown: reference */
    atomic_store_explicit(&current, t, memory_order_relaxed);
    atomic_store_explicit(&chosen, 1, memory_order_release);
    return t;
}

const bn_tern_kernels *bn_cpu_ternary_select(const char *name, bool *ok) {
    const bn_tern_kernels *t = NULL;
    bool good = true;
    if (!name) name = "auto";
    if (strcmp(name, "reference")) {
        t = bn_cpu_ternary_table(name);
        good = t != NULL;
    }
    if (ok) *ok = good;
    atomic_store_explicit(&current, t, memory_order_relaxed);
    atomic_store_explicit(&chosen, 1, memory_order_release);
    return t;
}

const char *bn_cpu_ternary_name(void) {
    const bn_tern_kernels *t = bn_cpu_ternary();
    return t ? t->name : "reference";
}
