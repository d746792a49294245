// reduce.glsl - workgroup-wide reductions (included after `const uint WG` is declared).
//
// Every invocation of the workgroup must call these in uniform control flow; each returns
// the reduction of the values of all WG invocations to every one of them. With
// USE_SUBGROUP the subgroups reduce first (subgroupAdd/subgroupMax) and one value per
// subgroup goes through shared memory; without it a shared-memory tree (WG a power of two).
// Integer sums are exact in any order; float sums are reassociated (tests allow for that).
// wg_sum_r / wg_max_r reduce REAL (double with USE_FP64, through a shared-memory tree).

shared float red_f[WG];
shared int red_i[WG];

#if USE_SUBGROUP
float wg_sum_f(float v) {
    v = subgroupAdd(v);
    if (subgroupElect()) red_f[gl_SubgroupID] = v;
    barrier();
    float s = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) s += red_f[i];
    barrier();
    return s;
}

float wg_max_f(float v) {
    v = subgroupMax(v);
    if (subgroupElect()) red_f[gl_SubgroupID] = v;
    barrier();
    float s = red_f[0];
    for (uint i = 1u; i < gl_NumSubgroups; i++) s = max(s, red_f[i]);
    barrier();
    return s;
}

int wg_sum_i(int v) {
    v = subgroupAdd(v);
    if (subgroupElect()) red_i[gl_SubgroupID] = v;
    barrier();
    int s = 0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) s += red_i[i];
    barrier();
    return s;
}
#else
float wg_sum_f(float v) {
    const uint l = gl_LocalInvocationIndex;
    red_f[l] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (l < s) red_f[l] += red_f[l + s];
        barrier();
    }
    float r = red_f[0];
    barrier();
    return r;
}

float wg_max_f(float v) {
    const uint l = gl_LocalInvocationIndex;
    red_f[l] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (l < s) red_f[l] = max(red_f[l], red_f[l + s]);
        barrier();
    }
    float r = red_f[0];
    barrier();
    return r;
}

int wg_sum_i(int v) {
    const uint l = gl_LocalInvocationIndex;
    red_i[l] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (l < s) red_i[l] += red_i[l + s];
        barrier();
    }
    int r = red_i[0];
    barrier();
    return r;
}
#endif

#if USE_FP64
shared double red_d[WG];

double wg_sum_r(double v) {
    const uint l = gl_LocalInvocationIndex;
    red_d[l] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (l < s) red_d[l] += red_d[l + s];
        barrier();
    }
    double r = red_d[0];
    barrier();
    return r;
}

double wg_max_r(double v) {
    const uint l = gl_LocalInvocationIndex;
    red_d[l] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (l < s) red_d[l] = max(red_d[l], red_d[l + s]);
        barrier();
    }
    double r = red_d[0];
    barrier();
    return r;
}
#else
float wg_sum_r(float v) {
    return wg_sum_f(v);
}
float wg_max_r(float v) {
    return wg_max_f(v);
}
#endif
