/* fuzz_gguf.c - libFuzzer target: arbitrary bytes through the GGUF reader and,
 * for what the reader accepts, the model loader and the graph builder. Any
 * crash, leak or undefined behaviour is a bug; errors are the expected outcome. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/gguf.h"
#include "../../core/model.h"
#include "../../graph/build.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exact-size copy, so reading past the end is caught */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    gguf_file *f = NULL;
    bn_err err = {0};
    if (gguf_open_memory(buf, size, &f, &err) == BN_OK) {
        for (uint64_t i = 0; i < gguf_kv_count(f); i++) (void)gguf_kv_at(f, i);
        bn_model *m = NULL;
        if (bn_model_from_gguf(f, "fuzz", &m, &err) == BN_OK) {
            bn_kv_cache kv;
            if (m->hp.n_layer <= 64 &&
                bn_kv_cache_init(&kv, &m->hp, 4, BN_TYPE_F16, &err) == BN_OK) {
                bn_forward fwd;
                if (bn_build_forward(m, &kv, 2, false, &fwd, &err) == BN_OK) bn_forward_free(&fwd);
                bn_kv_cache_free(&kv);
            }
            bn_model_free(m);
        }
    }
    free(buf);
    return 0;
}
