/* cpu_target.h - compiles a stretch of a file for CPU features beyond the
 * build's baseline (AVX2, AVX-512 VNNI, the Arm dot product), so one binary
 * carries every kernel table and ternary_dispatch.c / float_dispatch.c pick
 * one at run time:
 *
 *   BN_TARGET_PUSH(BN_TARGET_AVX2)     ... code ...     BN_TARGET_POP
 *
 * Nothing between the two may run before the dispatch has checked the CPU.
 * GCC and Clang spell the feature lists alike except for the Arm dot product,
 * hence the pairs (Clang's, GCC's). */
#ifndef BN_CPU_TARGET_H
#define BN_CPU_TARGET_H

#define BN_TARGET_AVX2 "avx2,fma,f16c", "avx2,fma,f16c"
#define BN_TARGET_AVX512VNNI                                                                       \
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",                                          \
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define BN_TARGET_ARM_DOTPROD "dotprod", "arch=armv8.2-a+dotprod"

#define BN_PRAGMA(x) _Pragma(#x)
#define BN_TARGET_PUSH(...) BN_TARGET_PUSH_(__VA_ARGS__)
#if defined(__clang__)
#define BN_TARGET_PUSH_(clang_t, gcc_t)                                                            \
    BN_PRAGMA(clang attribute push(__attribute__((target(clang_t))), apply_to = function))
#define BN_TARGET_POP BN_PRAGMA(clang attribute pop)
#elif defined(__GNUC__)
#define BN_TARGET_PUSH_(clang_t, gcc_t) BN_PRAGMA(GCC push_options) BN_PRAGMA(GCC target(gcc_t))
#define BN_TARGET_POP BN_PRAGMA(GCC pop_options)
#else
#define BN_TARGET_PUSH_(clang_t, gcc_t)
#define BN_TARGET_POP
#endif

#endif
