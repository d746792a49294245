/* test_rss.c - weights are used from the file mapping, never copied: `bitnet
 * run` on the 2b4t shape in I2_S keeps its peak resident memory under the file
 * size + the KV cache + 100 MB. The peak is measured by this process (wait4 on
 * the child), not taken from the engine's own report. */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_rss_2b4t(void **state) {
    (void)state;
    if (getenv("BITNET_TEST_SANITIZED")) bt_skip("peak-memory check is meaningless under ASan");
    const char *model = bt_tmp_path("rss_2b4t_i2s.gguf");
    struct stat st;
    char cmd[2048];
    if (stat(model, &st) != 0) {
        snprintf(cmd, sizeof cmd,
                 "%s gen -o %s.tmp --shape 2b4t --type i2_s --seed 3 && mv %s.tmp %s", BITNET_BIN,
                 model, model, model);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(stat(model, &st), 0);
    }
    const int n_ctx = 512;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execl(BITNET_BIN, BITNET_BIN, "run", "-m", model, "--prompt-ids", "1,2,3,4", "-n", "3",
              "-c", "512", "-t", "2", "--temp", "0", (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage ru;
    assert_int_equal(wait4(pid, &status, 0, &ru), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* KV cache: 2 (K, V) x 30 layers x ctx x (5 kv heads x 128) x 2 bytes (f16) */
    double kv = 2.0 * 30 * n_ctx * 640 * 2;
    double peak = (double)ru.ru_maxrss * 1024, limit = (double)st.st_size + kv + 100e6;
    printf("peak RSS %.1f MB, file %.1f MB, KV %.1f MB, limit %.1f MB\n", peak / 1e6,
           (double)st.st_size / 1e6, kv / 1e6, limit / 1e6);
    assert_true(peak < limit);
    /* the file is big: keep the disk tidy unless asked to keep it */
    if (!getenv("BITNET_KEEP_MODELS")) unlink(model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rss_2b4t),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
