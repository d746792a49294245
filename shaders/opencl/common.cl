/* common.cl - definitions shared by every OpenCL program of the backend; the
 * host prepends this text to each program's source (backends/opencl/cl_program.c).
 *
 * OpenCL C 1.2. Build options the host may pass:
 *   -DUSE_FP64   the device has cl_khr_fp64: combinations that the CPU
 *                reference does in double (ternary scale products, RMS sums,
 *                RoPE angles) are done in double too, so results match it bit
 *                for bit in practice; without it they are f32.
 *   -DUSE_DOT    the device has cl_khr_integer_dot_product (4x8-bit inputs):
 *                the ternary kernels use the built-in dot(char4, char4).
 *   -DWG=n       work-group size of the 1-D kernels (a power of two).
 *   -DLPR=n      lanes per row of the matmul kernels (a power of two <= WG).
 *
 * Tensors are passed as a buffer and a byte offset (ulong), so one arena
 * buffer holds many tensors without sub-buffer alignment rules. Contraction
 * of a*b+c into fma is off: every device then rounds like the C reference. */
#pragma OPENCL FP_CONTRACT OFF

#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double real; /* wide accumulator for reference-matching combinations */
#else
typedef float real;
#endif

#ifndef WG
#define WG 64
#endif
#ifndef LPR
#define LPR 16
#endif

/* A typed pointer at byte offset off of a buffer. */
#define AT(type, base, off) ((global type *)((global char *)(base) + (off)))
#define CAT(type, base, off) ((global const type *)((global const char *)(base) + (off)))

/* bfloat16 (the upper half of an f32) to float. */
inline float bf16_to_f32(ushort h) {
    return as_float((uint)h << 16);
}

/* DOT_BUILTIN: the integer dot product built-ins of cl_khr_integer_dot_product
 * (dot(char4, char4), ...) are declared; the host builds with -cl-std=CL3.0
 * for such devices, where the feature macro says so. */
#ifdef USE_DOT
#if defined(__opencl_c_integer_dot_product_input_4x8bit) || defined(cl_khr_integer_dot_product)
#define DOT_BUILTIN 1
#endif
#endif

/* Work-group reductions over WG items (every item of the group must call
 * them; buf holds WG elements). The result is returned to every item. One
 * tree for every type and combining operation: WG_REDUCE(name, T, COMBINE). */
#define WG_REDUCE(name, T, COMBINE)                                                                \
    inline T name(local T *buf, T v) {                                                             \
        const int l = get_local_id(0);                                                             \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        buf[l] = v;                                                                                \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        for (int s = WG / 2; s > 0; s >>= 1) {                                                     \
            if (l < s) buf[l] = COMBINE(buf[l], buf[l + s]);                                       \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
        }                                                                                          \
        return buf[0];                                                                             \
    }
#define WG_ADD(a, b) ((a) + (b))
WG_REDUCE(wg_sum_f, float, WG_ADD)
WG_REDUCE(wg_max_f, float, fmax)
WG_REDUCE(wg_sum_i, int, WG_ADD)

#ifdef USE_FP64
WG_REDUCE(wg_sum_d, double, WG_ADD)
#define wg_sum_real wg_sum_d
#else
#define wg_sum_real wg_sum_f
#endif

/* REDUCE_LANES(T, acc, NT), in a matmul kernel's body: the LPR lanes of each
 * row (item l, lane = l % LPR) reduce their partial sums acc[0 .. NT-1] (of
 * type T) into lane 0 by a tree in local memory; nothing where LPR is 1. */
#if LPR > 1
#define REDUCE_LANES(T, acc, NT)                                                                   \
    local T red_[WG * NT];                                                                         \
    for (int tt = 0; tt < NT; tt++) red_[tt * WG + l] = acc[tt];                                   \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                  \
    for (int s_ = LPR / 2; s_ > 0; s_ >>= 1) {                                                     \
        if (lane < s_)                                                                             \
            for (int tt = 0; tt < NT; tt++) red_[tt * WG + l] += red_[tt * WG + l + s_];           \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
    }                                                                                              \
    for (int tt = 0; tt < NT; tt++) acc[tt] = red_[tt * WG + l];
#else
#define REDUCE_LANES(T, acc, NT)
#endif

/* The ACT_Q8 row layout (core/types.h bn_act_row): f32 s, i32 sum of q, then
 * K int8 q, padded to a multiple of 8 bytes. */
inline ulong act_row_bytes(int K) {
    return ((ulong)K + 8 + 7) & ~(ulong)7;
}
