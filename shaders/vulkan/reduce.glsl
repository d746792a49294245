// reduce.glsl - workgroup-wide reductions (included after `const uint WG` is declared).
//
// Every invocation of the workgroup must call these in uniform control flow; each returns
// the reduction of the values of all WG invocations to every one of them. With
// USE_SUBGROUP the subgroups reduce first (subgroupAdd/subgroupMax) and one value per
// subgroup goes through shared memory; without it a shared-memory tree (WG a power of two).
// Integer sums are exact in any order; float sums are reassociated (tests allow for that).
// wg_sum_r / wg_max_r reduce REAL (double with USE_FP64, through a shared-memory tree).
//
// Each variant is one body for every type and operation: WG_REDUCE_TREE(T, name, red,
// COMBINE) and WG_REDUCE_SUBGROUP(T, name, red, SG_OP, COMBINE, INIT, FIRST), where red is
// a shared T[WG] and the subgroup partials are combined in order as s = INIT, then
// s = COMBINE(s, red[i]) for i = FIRST .. gl_NumSubgroups - 1.

#define WG_ADD(a, b) ((a) + (b))

#define WG_REDUCE_TREE(T, name, red, COMBINE)                                                  \
    T name(T v) {                                                                              \
        const uint l = gl_LocalInvocationIndex;                                                \
        red[l] = v;                                                                            \
        barrier();                                                                             \
        for (uint s = WG / 2u; s > 0u; s >>= 1) {                                              \
            if (l < s) red[l] = COMBINE(red[l], red[l + s]);                                   \
            barrier();                                                                         \
        }                                                                                      \
        T r = red[0];                                                                          \
        barrier();                                                                             \
        return r;                                                                              \
    }

#define WG_REDUCE_SUBGROUP(T, name, red, SG_OP, COMBINE, INIT, FIRST)                          \
    T name(T v) {                                                                              \
        v = SG_OP(v);                                                                          \
        if (subgroupElect()) red[gl_SubgroupID] = v;                                           \
        barrier();                                                                             \
        T s = INIT;                                                                            \
        for (uint i = FIRST; i < gl_NumSubgroups; i++) s = COMBINE(s, red[i]);                 \
        barrier();                                                                             \
        return s;                                                                              \
    }

shared float red_f[WG];
shared int red_i[WG];

#if USE_SUBGROUP
WG_REDUCE_SUBGROUP(float, wg_sum_f, red_f, subgroupAdd, WG_ADD, 0.0, 0u)
WG_REDUCE_SUBGROUP(float, wg_max_f, red_f, subgroupMax, max, red_f[0], 1u)
WG_REDUCE_SUBGROUP(int, wg_sum_i, red_i, subgroupAdd, WG_ADD, 0, 0u)
#else
WG_REDUCE_TREE(float, wg_sum_f, red_f, WG_ADD)
WG_REDUCE_TREE(float, wg_max_f, red_f, max)
WG_REDUCE_TREE(int, wg_sum_i, red_i, WG_ADD)
#endif

#if USE_FP64
shared double red_d[WG];
WG_REDUCE_TREE(double, wg_sum_r, red_d, WG_ADD)
WG_REDUCE_TREE(double, wg_max_r, red_d, max)
#else
#define wg_sum_r wg_sum_f
#define wg_max_r wg_max_f
#endif
