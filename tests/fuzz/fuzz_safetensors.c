/* fuzz_safetensors.c - libFuzzer target: arbitrary bytes as a .safetensors file
 * through the reader `bitnet convert` uses (header length, JSON header, dtypes,
 * shapes, offsets), then every accepted tensor read back as floats. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../core/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/bitnet-fuzz-%d.safetensors", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    st_model m;
    bn_err err = {0};
    if (st_open_file(path, &m, &err) == BN_OK) {
        float buf[64];
        for (int i = 0; i < m.n_tensors; i++) {
            const st_tensor *t = &m.tensors[i];
            int64_t n = t->n_elems < 64 ? t->n_elems : 64;
            if (n > 0) st_read_f32(t, 0, n, buf);
            if (t->n_elems > 64) st_read_f32(t, t->n_elems - 64, 64, buf);
        }
        st_close(&m);
    }
    unlink(path);
    return 0;
}
