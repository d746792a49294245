/* test_reference.c - the engine computes what the demo model means: its logits on the
 * committed models/demo.gguf match the PyTorch reference forward pass of the checkpoint it was
 * converted from (tests/fixtures/demo_ref.bin, written by tools/train/reference.py; format in
 * that script). For every prompt of the fixture: the same top-1 token at every position, and
 * max |logit difference| at most 1 % of the range of the reference logits. Needs no Python. */
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/model.h"
#include "../core/types.h"
#include "../graph/context.h"
#include "testutil.h"

static char src_dir[4096];

static const char *path_in_repo(const char *rel) {
    static char buf[2][4096 + 256];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/../%s", src_dir, rel);
    return buf[k];
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void check_model(const char *model_path, uint32_t kv_type) {
    size_t size = 0;
    uint8_t *fx = (uint8_t *)bt_read_file(path_in_repo("tests/fixtures/demo_ref.bin"), &size);
    assert_non_null(fx);
    assert_true(size >= 16 && !memcmp(fx, "BNREF1\0\0", 8));
    uint32_t n_prompts = rd32(fx + 8), V = rd32(fx + 12);
    bn_err err = {0};
    bn_model *m = NULL;
    assert_int_equal(bn_model_load(model_path, &m, &err), BN_OK);
    assert_int_equal(m->hp.n_vocab, (int)V);
    size_t off = 16;
    for (uint32_t p = 0; p < n_prompts; p++) {
        assert_true(off + 4 <= size);
        uint32_t n = rd32(fx + off);
        off += 4;
        assert_true(n > 0 && off + 4ull * n + 4ull * n * V <= size);
        int32_t *ids = malloc(sizeof(int32_t) * n);
        float *ref = malloc(sizeof(float) * n * V), *got = malloc(sizeof(float) * n * V);
        assert_non_null(ids);
        assert_non_null(ref);
        assert_non_null(got);
        memcpy(ids, fx + off, 4ull * n);
        off += 4ull * n;
        memcpy(ref, fx + off, 4ull * n * V);
        off += 4ull * n * V;

        bn_context_params cp;
        bn_context_params_default(&cp);
        cp.n_ctx = (int)n;
        cp.n_threads = 1;
        cp.kv_type = kv_type;
        bn_context *ctx = NULL;
        assert_int_equal(bn_context_new(m, &cp, &ctx, &err), BN_OK);
        assert_int_equal(bn_context_eval(ctx, ids, (int)n, true, got, &err), BN_OK);
        bn_context_free(ctx);

        float lo = ref[0], hi = ref[0], worst = 0;
        for (size_t i = 0; i < (size_t)n * V; i++) {
            lo = fminf(lo, ref[i]);
            hi = fmaxf(hi, ref[i]);
        }
        int top_bad = 0;
        for (uint32_t t = 0; t < n; t++) {
            const float *r = ref + (size_t)t * V, *g = got + (size_t)t * V;
            uint32_t ar = 0, ag = 0;
            for (uint32_t k = 0; k < V; k++) {
                if (r[k] > r[ar]) ar = k;
                if (g[k] > g[ag]) ag = k;
                worst = fmaxf(worst, fabsf(r[k] - g[k]));
            }
            if (ar != ag) {
                printf("prompt %u position %u: top-1 %u, reference %u\n", p, t, ag, ar);
                top_bad++;
            }
        }
        printf("%s, kv %s, prompt %u: %u tokens, max |diff| %.5f = %.3f %% of the range %.3f\n",
               model_path, bn_type_name(kv_type), p, n, worst, 100.0 * worst / (hi - lo), hi - lo);
        assert_int_equal(top_bad, 0);
        assert_true(worst <= 0.01f * (hi - lo));
        free(ids);
        free(ref);
        free(got);
    }
    bn_model_free(m);
    free(fx);
}

static void test_demo_f16_kv(void **state) {
    (void)state;
    check_model(path_in_repo("models/demo.gguf"), BN_TYPE_F16);
}

static void test_demo_f32_kv(void **state) {
    (void)state;
    check_model(path_in_repo("models/demo.gguf"), BN_TYPE_F32);
}

int main(void) {
    char file[4096];
    snprintf(file, sizeof file, "%s", __FILE__);
    snprintf(src_dir, sizeof src_dir, "%s", dirname(file));
    FILE *f = fopen(path_in_repo("models/demo.gguf"), "rb");
    if (!f) {
        printf("FAIL: %s is missing (it is committed with the repository)\n",
               path_in_repo("models/demo.gguf"));
        return 1;
    }
    fclose(f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_f16_kv),
        cmocka_unit_test(test_demo_f32_kv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
