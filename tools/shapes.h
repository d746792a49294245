/* shapes.h - named model shapes: BitNet's benchmark sizes and the real models'
 * shapes, used by `bitnet gen` (and to plan a shape without a file). */
#ifndef BN_SHAPES_H
#define BN_SHAPES_H

#include <stdbool.h>

typedef struct bn_shape {
    const char *name;
    const char *arch; /* general.architecture */
    int n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, n_ctx;
    float rope_freq_base;
    bool untied_output; /* llama layout: output.weight, no sub-norms */
    const char *about;
} bn_shape;

const bn_shape *bn_shape_find(const char *name);
const bn_shape *bn_shape_list(int *n);

#endif
