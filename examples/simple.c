/* simple.c - the smallest program on libbitnet: load a model, tokenize a
 * prompt, generate greedily and stream the text to stdout; the generated
 * token ids go to stderr at the end as "ids: ...".
 *
 *   cc simple.c $(pkg-config --cflags --libs bitnet) -o simple
 *   ./simple model.gguf "Once upon a time" 32
 */
#include <bitnet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The generated ids, printed at the end. */
typedef struct ids {
    int32_t v[4096];
    int n;
} ids;

/* Called for every generated token: print its text as it arrives. */
static int on_token(void *user, int32_t token, const char *piece, size_t len) {
    ids *out = user;
    if (token >= 0 && out->n < 4096) out->v[out->n++] = token;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0; /* 0: go on */
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL PROMPT [N_TOKENS]\n", argv[0]);
        return 2;
    }
    int n_tokens = argc > 3 ? atoi(argv[3]) : 32;

    bn_llm *model;
    if (bn_llm_load(argv[1], NULL, &model) != BN_OK) {
        fprintf(stderr, "error: %s\n", bn_last_error());
        return 1;
    }
    bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_threads = 1;
    bn_ctx *ctx;
    if (bn_ctx_new(model, &cp, &ctx) != BN_OK) {
        fprintf(stderr, "error: %s\n", bn_last_error());
        bn_llm_free(model);
        return 1;
    }

    /* tokenize: ask how many ids the prompt needs, then fill them in */
    const char *prompt = argv[2];
    int n = 0;
    bn_llm_tokenize(model, prompt, strlen(prompt), BN_TOKENIZE_ADD_BOS, NULL, 0, &n);
    int32_t *prompt_ids = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    int rc = 1;
    if (!prompt_ids ||
        bn_llm_tokenize(model, prompt, strlen(prompt), BN_TOKENIZE_ADD_BOS, prompt_ids, n, &n)) {
        fprintf(stderr, "error: %s\n", prompt_ids ? bn_last_error() : "out of memory");
        goto done;
    }

    bn_ctx_gen_params gp;
    bn_ctx_gen_params_default(&gp);
    gp.max_tokens = n_tokens;
    gp.sampling.temperature = 0; /* greedy */
    static ids out;
    bn_ctx_gen_result res;
    if (bn_ctx_generate(ctx, prompt_ids, n, &gp, on_token, &out, &res) != BN_OK) {
        fprintf(stderr, "\nerror: %s\n", bn_last_error());
        goto done;
    }
    printf("\n");
    fprintf(stderr, "ids:");
    for (int i = 0; i < out.n; i++) fprintf(stderr, " %d", (int)out.v[i]);
    fprintf(stderr, "\n%d prompt tokens, %d generated in %.3f s\n", res.n_prompt, res.n_generated,
            res.t_gen);
    rc = 0;
done:
    free(prompt_ids);
    bn_ctx_free(ctx);
    bn_llm_free(model);
    return rc;
}
