/* shapes.c - the table of named shapes (see shapes.h). Benchmark sizes follow
 * BitNet's hidden/ffn/layers/heads; they use the `bitnet` layout (SiLU FFN,
 * sub-norms, tied output) with a 32002-token vocabulary. */
#include "shapes.h"

#include <string.h>

static const bn_shape shapes[] = {
    {"tiny", "bitnet-b1.58", 256, 512, 2, 4, 2, 1024, 256, 10000.0f, false,
     "for tests: 2 layers, GQA 4/2, ReLU^2, under 5 MB"},
    {"125m", "bitnet", 768, 3072, 11, 12, 12, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"350m", "bitnet", 1024, 3072, 24, 16, 16, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"1b", "bitnet", 2048, 3584, 24, 32, 32, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"1.5b", "bitnet", 1536, 9216, 28, 32, 32, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"2.7b", "bitnet", 3072, 7680, 24, 32, 32, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"3.8b", "bitnet", 3840, 8192, 24, 32, 32, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"7b", "bitnet", 4096, 12032, 32, 32, 32, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"13b", "bitnet", 5120, 13824, 40, 40, 40, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"30b", "bitnet", 6656, 16384, 60, 52, 52, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"70b", "bitnet", 8192, 24576, 80, 64, 64, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"100b", "bitnet", 8192, 45568, 72, 64, 64, 32002, 2048, 10000.0f, false, "benchmark size"},
    {"large", "bitnet", 1536, 4096, 24, 16, 16, 32002, 2048, 10000.0f, false, "bitnet_b1_58-large"},
    {"3b", "bitnet", 3200, 8640, 26, 32, 32, 32002, 2048, 10000.0f, false, "bitnet_b1_58-3B"},
    {"2b4t", "bitnet-b1.58", 2560, 6912, 30, 20, 5, 128256, 4096, 500000.0f, false,
     "BitNet-b1.58-2B-4T: GQA 20/5, ReLU^2"},
    {"8b", "llama", 4096, 14336, 32, 32, 8, 128256, 8192, 500000.0f, true, "Llama3-8B-1.58"},
};

const bn_shape *bn_shape_find(const char *name) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, name)) return &shapes[i];
    return NULL;
}

const bn_shape *bn_shape_list(int *n) {
    *n = (int)(sizeof shapes / sizeof shapes[0]);
    return shapes;
}
