/* test_encodings.c - one generated model in four encodings (I2_S, TQ2_0, TQ1_0,
 * F16) holds the same weights, so `bitnet eval` must give the same logits up
 * to float reordering (NMSE <= 1e-9) and `bitnet run --temp 0` the same ids.
 * Runs the bitnet command as a user would. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *types[4] = {"i2_s", "tq2_0", "tq1_0", "f16"};
static const char *prompt = "1,300,45,977,12,600,7,88";

static void sh(const char *cmd) {
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    assert_int_equal(rc, 0);
}

static void test_same_logits_and_ids(void **state) {
    (void)state;
    char cmd[8192], model[4][1024], logits[4][1100];
    for (int i = 0; i < 4; i++) {
        snprintf(model[i], sizeof model[i], "%s", bt_tmp_path(types[i]));
        strcat(model[i], ".gguf");
        snprintf(logits[i], sizeof logits[i], "%s.logits", model[i]);
        snprintf(cmd, sizeof cmd, "%s gen -o %s --shape tiny --type %s --seed 1", BITNET_BIN,
                 model[i], types[i]);
        sh(cmd);
        snprintf(cmd, sizeof cmd, "%s eval -m %s --prompt-ids %s --logits-out %s -t 2", BITNET_BIN,
                 model[i], prompt, logits[i]);
        sh(cmd);
    }
    size_t n0;
    float *ref = (float *)bt_read_file(logits[0], &n0);
    assert_non_null(ref);
    assert_int_equal(n0, 8 * 1024 * sizeof(float)); /* 8 tokens x the tiny vocabulary */
    for (int i = 1; i < 4; i++) {
        size_t n;
        float *l = (float *)bt_read_file(logits[i], &n);
        assert_non_null(l);
        assert_int_equal(n, n0);
        double nmse = bt_nmse_f32(l, ref, n / sizeof(float));
        printf("%s vs i2_s: logits NMSE %.3g\n", types[i], nmse);
        assert_true(nmse <= 1e-9);
        free(l);
    }
    free(ref);

    char ids[4][4096];
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd,
                 "%s run -m %s --prompt-ids %s --temp 0 -n 32 --print-ids 2>/dev/null", BITNET_BIN,
                 model[i], prompt);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t n = fread(ids[i], 1, sizeof ids[i] - 1, p);
        ids[i][n] = 0;
        assert_int_equal(pclose(p), 0);
        int count = 0;
        char copy[4096];
        memcpy(copy, ids[i], sizeof copy);
        for (char *s = strtok(copy, " \n"); s; s = strtok(NULL, " \n")) count++;
        printf("%s: %d ids: %s", types[i], count, ids[i]);
        assert_int_equal(count, 32);
        assert_string_equal(ids[i], ids[0]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_logits_and_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
