/* float_dispatch.c - chooses the CPU backend's float kernel table at run time
 * (float_kernels.h): "avx512vnni" when the CPU has AVX-512 VL/BW/VNNI besides
 * AVX2, FMA and F16C, else "avx2" when it has those three, else the plain-C
 * reference. This file is compiled for the baseline instruction set, so it
 * runs on any CPU. BITNET_CPU_FLOAT=scalar (or a table's name) forces a
 * choice, to compare speeds or to rule the fast kernels out when hunting a
 * bug. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/os.h"
#include "float_kernels.h"

/* 0: not chosen yet; 1: chosen (the pointer below is valid, NULL = scalar). */
static atomic_int chosen;
static const bn_cpu_float_ops *_Atomic current;

#if defined(__x86_64__) || defined(__i386__)
/* The AVX2 table with the AVX-512 VNNI Q6_K mat-vec; built once. */
static bn_cpu_float_ops avx512vnni;
static pthread_once_t avx512vnni_once = PTHREAD_ONCE_INIT;

static void make_avx512vnni(void) {
    avx512vnni = bn_cpu_float_avx2;
    avx512vnni.isa = "avx512vnni";
    avx512vnni.q6k_matvec = bn_cpu_q6k_matvec_avx512vnni;
}

static bool has_avx2(void) {
    const unsigned need = BN_CPU_AVX2 | BN_CPU_FMA | BN_CPU_F16C;
    return (bn_cpu_features() & need) == need;
}

static bool has_avx512vnni(void) {
    const unsigned need = BN_CPU_AVX512F | BN_CPU_AVX512BW | BN_CPU_AVX512VL | BN_CPU_AVX512VNNI;
    return has_avx2() && (bn_cpu_features() & need) == need;
}
#endif

/* A table by name ("auto": the best), if this CPU can run it, else NULL;
 * *known says whether the name is one. */
static const bn_cpu_float_ops *by_name(const char *name, int *known) {
    *known = 1;
    if (!strcmp(name, "scalar")) return NULL;
    const bool is_auto = !strcmp(name, "auto");
#if defined(__x86_64__) || defined(__i386__)
    if ((is_auto || !strcmp(name, "avx512vnni")) && has_avx512vnni()) {
        pthread_once(&avx512vnni_once, make_avx512vnni);
        return &avx512vnni;
    }
    if ((is_auto || !strcmp(name, "avx2")) && has_avx2()) return &bn_cpu_float_avx2;
    if (!strcmp(name, "avx2") || !strcmp(name, "avx512vnni")) return NULL;
#endif
    if (!is_auto) *known = 0;
    return NULL;
}

const bn_cpu_float_ops *bn_cpu_float(void) {
    if (atomic_load_explicit(&chosen, memory_order_acquire))
        return atomic_load_explicit(&current, memory_order_relaxed);
    /* every thread that gets here computes the same answer */
    int known;
    const bn_cpu_float_ops *t = by_name("auto", &known);
    const char *env = getenv("BITNET_CPU_FLOAT");
    if (env && *env) {
        const bn_cpu_float_ops *e = by_name(env, &known);
        if (known) t = e;
    }
    atomic_store_explicit(&current, t, memory_order_relaxed);
    atomic_store_explicit(&chosen, 1, memory_order_release);
    return t;
}

const bn_cpu_float_ops *bn_cpu_float_select(const char *name) {
    int known;
    const bn_cpu_float_ops *t = by_name(name ? name : "auto", &known);
    atomic_store_explicit(&current, t, memory_order_relaxed);
    atomic_store_explicit(&chosen, 1, memory_order_release);
    return t;
}

const char *bn_cpu_float_name(void) {
    const bn_cpu_float_ops *t = bn_cpu_float();
    return t ? t->isa : "scalar";
}
