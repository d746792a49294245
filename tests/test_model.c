/* test_model.c - model loading refuses what the graph builder cannot run, each
 * time with a message naming the key or tensor: missing hyperparameters, head
 * counts that do not divide, missing or mis-shaped tensors, unsupported
 * architectures and tensor types, bad ternary data; and accepts a valid file. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/gguf.h"
#include "../core/model.h"
#include "../core/types.h"

enum { E = 128, F = 256, V = 16 };

/* What to break in the generated file. */
typedef struct variant {
    const char *arch;     /* general.architecture */
    const char *skip_key; /* hyperparameter suffix not written */
    int head_count, head_count_kv;
    const char *skip_tensor; /* tensor not written */
    const char *bad_shape;   /* tensor written with its rows halved */
    uint32_t proj_type;
    bool code3; /* an I2_S code 3 in blk.0.attn_q */
} variant;

static void write_model(const char *path, const variant *v) {
    gguf_writer *w = gguf_writer_new();
    const char *a = v->arch;
    char key[128];
#define KEY(s) (snprintf(key, sizeof key, "%s.%s", a, s), key)
    gguf_writer_set_str(w, "general.architecture", a);
    const char *ints[] = {"block_count",         "context_length",       "embedding_length",
                          "feed_forward_length", "attention.head_count", "attention.head_count_kv"};
    uint32_t vals[] = {1, 32, E, F, (uint32_t)v->head_count, (uint32_t)v->head_count_kv};
    for (int i = 0; i < 6; i++)
        if (!v->skip_key || strcmp(v->skip_key, ints[i]))
            gguf_writer_set_u32(w, KEY(ints[i]), vals[i]);
#undef KEY
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    const char *toks[V];
    char names[V][8];
    for (int i = 0; i < V; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        toks[i] = names[i];
    }
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, V);

    struct {
        const char *name;
        uint32_t type;
        int64_t ne0, ne1;
    } t[] = {
        {"token_embd.weight", BN_TYPE_F16, E, V},
        {"output_norm.weight", BN_TYPE_F32, E, 1},
        {"blk.0.attn_norm.weight", BN_TYPE_F32, E, 1},
        {"blk.0.attn_q.weight", v->proj_type, E, E},
        {"blk.0.attn_k.weight", v->proj_type, E, E / 2},
        {"blk.0.attn_v.weight", v->proj_type, E, E / 2},
        {"blk.0.attn_output.weight", v->proj_type, E, E},
        {"blk.0.attn_sub_norm.weight", BN_TYPE_F32, E, 1},
        {"blk.0.ffn_norm.weight", BN_TYPE_F32, E, 1},
        {"blk.0.ffn_gate.weight", v->proj_type, E, F},
        {"blk.0.ffn_up.weight", v->proj_type, E, F},
        {"blk.0.ffn_down.weight", v->proj_type, F, E},
        {"blk.0.ffn_sub_norm.weight", BN_TYPE_F32, F, 1},
    };
    int n = (int)(sizeof t / sizeof t[0]);
    bn_err err = {0};
    size_t sizes[16];
    for (int i = 0; i < n; i++) {
        if (v->skip_tensor && !strcmp(v->skip_tensor, t[i].name)) {
            sizes[i] = 0;
            continue;
        }
        int64_t ne[4] = {t[i].ne0, t[i].ne1, 1, 1};
        if (v->bad_shape && !strcmp(v->bad_shape, t[i].name)) ne[1] /= 2;
        assert_int_equal(bn_tensor_bytes(t[i].type, ne, &sizes[i], &err), BN_OK);
        assert_int_equal(
            gguf_writer_add_tensor(w, t[i].name, t[i].type, ne[1] > 1 ? 2 : 1, ne, &err), BN_OK);
    }
    assert_int_equal(gguf_writer_begin(w, path, &err), BN_OK);
    for (int i = 0; i < n; i++) {
        if (!sizes[i]) continue;
        uint8_t *data = calloc(1, sizes[i]);
        if (t[i].type == BN_TYPE_I2_S) memset(data, 0x55, sizes[i] - BN_I2S_TAIL); /* code 1: 0 */
        if (v->code3 && !strcmp(t[i].name, "blk.0.attn_q.weight")) data[7] = 0xC0;
        assert_int_equal(gguf_writer_write_tensor(w, data, sizes[i], &err), BN_OK);
        free(data);
    }
    assert_int_equal(gguf_writer_finish(w, &err), BN_OK);
    gguf_writer_free(w);
}

static variant base(void) {
    return (variant){
        .arch = "bitnet-b1.58", .head_count = 4, .head_count_kv = 2, .proj_type = BN_TYPE_I2_S};
}

/* Loads a variant; expects status `want` and, on failure, `needle` in the message. */
static void expect(const variant *v, bn_status want, const char *needle) {
    const char *path = bt_tmp_path("model_variant.gguf");
    write_model(path, v);
    bn_model *m = NULL;
    bn_err err = {0};
    bn_status st = bn_model_load(path, &m, &err);
    if (st != want || (needle && !strstr(err.msg, needle)))
        fprintf(stderr, "got status %d (want %d), message: %s\n", st, want, err.msg);
    assert_int_equal(st, want);
    if (want == BN_OK) {
        assert_non_null(m);
        assert_int_equal(m->hp.n_layer, 1);
        assert_int_equal(m->hp.head_dim, E / 4);
        assert_int_equal(m->hp.n_head_kv, 2);
        assert_int_equal(m->hp.ffn_act, BN_FFN_RELU_SQR);
        assert_true(m->hp.tied_output && m->hp.sub_norms && m->hp.bitlinear);
        assert_int_equal(m->vocab.n_tokens, V);
        bn_model_free(m);
    } else {
        assert_null(m);
        assert_non_null(strstr(err.msg, needle));
    }
}

static void test_valid(void **s) {
    (void)s;
    variant v = base();
    expect(&v, BN_OK, NULL);
    v.arch = "bitnet";
    write_model(bt_tmp_path("model_bitnet.gguf"), &v);
    bn_model *m;
    bn_err err = {0};
    assert_int_equal(bn_model_load(bt_tmp_path("model_bitnet.gguf"), &m, &err), BN_OK);
    assert_int_equal(m->hp.ffn_act, BN_FFN_SILU);
    bn_model_free(m);
}

static void test_missing_hparams(void **s) {
    (void)s;
    const char *keys[] = {"block_count", "embedding_length", "feed_forward_length",
                          "attention.head_count", "context_length"};
    for (int i = 0; i < 5; i++) {
        variant v = base();
        v.skip_key = keys[i];
        expect(&v, BN_ERR_FORMAT, keys[i]);
    }
}

static void test_bad_heads(void **s) {
    (void)s;
    variant v = base();
    v.head_count = 3; /* 128 is not a multiple of 3 */
    expect(&v, BN_ERR_FORMAT, "head count");
    v = base();
    v.head_count_kv = 3; /* 4 heads do not share 3 kv heads */
    expect(&v, BN_ERR_FORMAT, "head_count_kv");
}

static void test_bad_tensors(void **s) {
    (void)s;
    variant v = base();
    v.skip_tensor = "blk.0.ffn_up.weight";
    expect(&v, BN_ERR_FORMAT, "blk.0.ffn_up.weight");
    v = base();
    v.bad_shape = "blk.0.attn_v.weight";
    expect(&v, BN_ERR_FORMAT, "blk.0.attn_v.weight");
    v = base();
    v.proj_type = BN_TYPE_Q8_0; /* not a projection type this engine runs */
    expect(&v, BN_ERR_UNSUPPORTED, "Q8_0");
    v = base();
    v.code3 = true;
    expect(&v, BN_ERR_FORMAT, "blk.0.attn_q.weight");
    v = base();
    v.arch = "mamba";
    expect(&v, BN_ERR_UNSUPPORTED, "mamba");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_missing_hparams),
        cmocka_unit_test(test_bad_heads),
        cmocka_unit_test(test_bad_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
