/* ternary_gemm_check.h - the check of a ternary GEMM micro-kernel
 * (bn_tern_kernels.gemm, backends/cpu/ternary.h), shared by
 * test_ternary_kernels.c (cmocka) and arm/test_ternary_neon.c (cross-compiled
 * for Arm64, no cmocka): each fills the codes and activations its own way and
 * reports a mismatch its own way; the kernel calls and the expected sums are
 * here, once. Header only (one static function), no test framework. */
#ifndef BT_TERNARY_GEMM_CHECK_H
#define BT_TERNARY_GEMM_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "../backends/cpu/ternary.h"

/* Runs ks->gemm on codes (BN_TERN_MR rows of stride ldc, codes 0..3) and the
 * BN_TERN_NT activation rows q[t] (kn each) for every nr = 1..BN_TERN_MR and
 * nt = 1..BN_TERN_NT, in row mode (which adds to what out held) and, when kn
 * is a multiple of 256, in group mode. Each output must equal the sum of
 * codes[r][i] * q[t][i] over the row (or the 256-group), computed here in
 * int64. Returns how many outputs differ; the first is described in why. */
static int bt_gemm_mismatches(const bn_tern_kernels *ks, const uint8_t *codes, size_t ldc,
                              int8_t *const *q, int64_t kn, char *why, size_t why_len) {
    int bad = 0;
    const int64_t ng = kn / 256;
    for (int nr = 1; nr <= BN_TERN_MR; nr++)
        for (int nt = 1; nt <= BN_TERN_NT; nt++)
            for (int group = 0; group < 2; group++) {
                if (group && kn % 256) continue;
                int32_t out[BN_TERN_NT * BN_TERN_MR * 64];
                for (int i = 0; i < BN_TERN_NT * BN_TERN_MR * 64; i++) out[i] = 1000 + i;
                ks->gemm(codes, ldc, nr, (const int8_t *const *)q, nt, kn, out, BN_TERN_MR, group);
                for (int t = 0; t < nt; t++)
                    for (int r = 0; r < nr; r++)
                        for (int64_t g = 0; g < (group ? ng : 1); g++) {
                            int64_t e = 0;
                            const int64_t i0 = group ? 256 * g : 0, i1 = group ? i0 + 256 : kn;
                            for (int64_t i = i0; i < i1; i++)
                                e += (int64_t)codes[r * ldc + i] * q[t][i];
                            /* row mode adds to what was there */
                            const int64_t got = group ? out[(t * nr + r) * ng + g]
                                                      : (int64_t)out[t * BN_TERN_MR + r] -
                                                            (1000 + t * BN_TERN_MR + r);
                            if (got != e && bad++ == 0)
                                snprintf(why, why_len,
                                         "%s gemm kn %lld nr %d nt %d group %d: t %d r %d g %lld: "
                                         "%lld, want %lld",
                                         ks->name, (long long)kn, nr, nt, group, t, r, (long long)g,
                                         (long long)got, (long long)e);
                        }
            }
    return bad;
}

#endif
