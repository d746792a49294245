/* fuzz_convert.c - libFuzzer target: arbitrary bytes as the config.json of a
 * Hugging Face checkpoint, converted by `bitnet convert` with a valid
 * safetensors file and tokenizer beside it (BITNET_FUZZ_CKPT names such a
 * checkpoint; scripts/fuzz.sh writes one with tools/train/make_test_checkpoints.py).
 * Exercises the JSON reading of config.json and everything it decides. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../tools/cli.h"

static char dir[256], out[300];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *ckpt = getenv("BITNET_FUZZ_CKPT");
    if (!ckpt) {
        fprintf(stderr, "fuzz_convert: set BITNET_FUZZ_CKPT to a checkpoint directory\n");
        exit(1);
    }
    snprintf(dir, sizeof dir, "/dev/shm/bitnet-fuzz-convert-%d", (int)getpid());
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    mkdir(dir, 0700);
    const char *keep[] = {"model.safetensors", "tokenizer.json", "tokenizer.model"};
    for (int i = 0; i < 3; i++) {
        char src[1024], dst[512];
        snprintf(src, sizeof src, "%s/%s", ckpt, keep[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, keep[i]);
        if (access(src, R_OK) == 0 && symlink(src, dst) != 0 && access(dst, R_OK) != 0) {
            fprintf(stderr, "fuzz_convert: cannot link %s\n", src);
            exit(1);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *f = fopen(cfg, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    char *argv[] = {"convert", dir, "-o", out, "--type", "i2_s", NULL};
    cmd_convert(6, argv);
    unlink(out);
    return 0;
}
