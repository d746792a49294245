/* api.c - the embeddable API of include/bitnet.h over the engine: devices
 * (backends/backend.h), models (core/model.h), contexts (graph/context.h),
 * sampling (core/sampler.h) and generation with prompt-prefix reuse and
 * streamed tokens.
 *
 * Thread safety rests on two facts: a loaded model is never written (its
 * weights are a read-only mapping, its vocabulary and hyperparameters are
 * filled at load), and each bn_ctx owns everything it writes: the engine
 * context (KV cache, graphs, its own opened backends and CPU thread pool), the
 * logits, the token history and the sampler. The error message is per thread.
 * Making and freeing contexts and listing devices are serialized by one lock:
 * device discovery and backends' one-time set-up are not made for concurrency. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/os.h"
#include "../core/types.h"
#include "lib.h"

struct bn_ctx {
    const bn_llm *llm;
    bn_context *ctx;
    int n_vocab;
    float *logits;
    bool have_logits;
    int32_t *hist; /* the n_past ids in the cache */
    bn_sampler *smp;
};

static pthread_mutex_t ctx_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- errors ---- */

static _Thread_local char last_error[512];

bn_status bn_lib_set_error(const bn_err *err) {
    snprintf(last_error, sizeof last_error, "%s", err->msg);
    return err->code != BN_OK ? err->code : BN_ERR_INTERNAL;
}

__attribute__((format(printf, 2, 3))) static bn_status fail(bn_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *bn_last_error(void) {
    return last_error;
}

const char *bn_version(void) {
    return BITNET_VERSION;
}

/* ---- devices ---- */

bn_status bn_devices_list(bn_device_desc *out, int cap, int *n) {
    if (!n || cap < 0 || (cap > 0 && !out))
        return fail(BN_ERR_INVALID_ARG, "bn_devices_list: invalid argument");
    *n = 0;
    pthread_mutex_lock(&ctx_mu); /* backends initialize their drivers on first use */
    for (const bn_backend_ops *const *b = bn_backends(); *b; b++) {
        char why[256];
        int count = (*b)->device_count(why, sizeof why);
        for (int d = 0; d < count; d++) {
            bn_device_info info;
            bn_err err = {0};
            if ((*b)->device_info(d, &info, &err) != BN_OK) continue;
            if (*n < cap) {
                bn_device_desc *o = &out[*n];
                memset(o, 0, sizeof *o);
                snprintf(o->id, sizeof o->id, "%.20s:%d", (*b)->name, d);
                snprintf(o->name, sizeof o->name, "%s", info.name);
                snprintf(o->type, sizeof o->type, "%s", bn_device_type_name(info.type));
                o->mem_total = info.mem_total;
                o->mem_free = info.mem_free;
                o->unified = info.unified;
            }
            ++*n;
        }
    }
    pthread_mutex_unlock(&ctx_mu);
    return BN_OK;
}

/* ---- models ---- */

void bn_llm_params_default(bn_llm_params *p) {
    memset(p, 0, sizeof *p);
    p->gpu_layers = -1;
}

/* Copies an optional string option; false when it does not fit. */
static bool copy_opt(char *dst, size_t cap, const char *src) {
    if (!src) {
        dst[0] = 0;
        return true;
    }
    size_t n = strlen(src);
    if (n >= cap) return false;
    memcpy(dst, src, n + 1);
    return true;
}

static const char *opt(const char *s) {
    return s[0] ? s : NULL;
}
bn_status bn_llm_load(const char *path, const bn_llm_params *p, bn_llm **out) {
    if (!out) return fail(BN_ERR_INVALID_ARG, "bn_llm_load: out is NULL");
    *out = NULL;
    if (!path) return fail(BN_ERR_INVALID_ARG, "bn_llm_load: path is NULL");
    bn_llm_params def;
    if (!p) {
        bn_llm_params_default(&def);
        p = &def;
    }
    static const char *const backends[] = {"auto", "cpu", "vulkan", "opencl", "npu"};
    bool known = !p->backend;
    for (int i = 0; i < 5 && !known; i++) known = !strcmp(p->backend, backends[i]);
    if (!known)
        return fail(BN_ERR_INVALID_ARG,
                    "unknown backend '%.64s' (known: auto, cpu, vulkan, opencl, npu)", p->backend);
    bn_llm *m = calloc(1, sizeof *m);
    if (!m) return fail(BN_ERR_OOM, "out of memory");
    if (!copy_opt(m->backend, sizeof m->backend, p->backend) ||
        !copy_opt(m->devices, sizeof m->devices, p->devices) ||
        !copy_opt(m->tensor_split, sizeof m->tensor_split, p->tensor_split) ||
        !copy_opt(m->profile, sizeof m->profile, p->profile)) {
        free(m);
        return fail(BN_ERR_INVALID_ARG, "bn_llm_load: a device option is too long");
    }
    m->gpu_layers = p->gpu_layers;
    m->gpu_mem = p->gpu_mem;
    bn_err err = {0};
    if (bn_model_load(path, &m->model, &err) != BN_OK) {
        free(m);
        return bn_lib_set_error(&err);
    }
    bn_lib_chat_init(m, p->chat_template);
    if (p->chat_template && *p->chat_template && !m->has_chat) {
        bn_status bad = fail(BN_ERR_INVALID_ARG, "%s", m->chat_error);
        bn_llm_free(m);
        return bad;
    }
    *out = m;
    return BN_OK;
}

void bn_llm_free(bn_llm *m) {
    if (!m) return;
    bn_model_free(m->model);
    free(m);
}

bn_status bn_llm_get_info(const bn_llm *m, bn_llm_info *out) {
    if (!m || !out) return fail(BN_ERR_INVALID_ARG, "bn_llm_get_info: NULL argument");
    const bn_model *md = m->model;
    const bn_hparams *hp = &md->hp;
    memset(out, 0, sizeof *out);
    snprintf(out->arch, sizeof out->arch, "%s", hp->arch_name);
    const gguf_kv *kv = gguf_find_kv(md->gguf, "general.name");
    if (kv && kv->value.type == GGUF_STRING && kv->value.v.str.len > 0) {
        int l = kv->value.v.str.len < sizeof out->name ? (int)kv->value.v.str.len
                                                       : (int)sizeof out->name - 1;
        memcpy(out->name, kv->value.v.str.ptr, (size_t)l);
    } else {
        const char *slash = strrchr(md->path, '/');
        snprintf(out->name, sizeof out->name, "%.127s", slash ? slash + 1 : md->path);
    }
    snprintf(out->weight_type, sizeof out->weight_type, "%s", bn_type_name(md->weight_type));
    out->n_vocab = hp->n_vocab;
    out->n_ctx_train = hp->n_ctx_train;
    out->n_embd = hp->n_embd;
    out->n_layer = hp->n_layer;
    out->n_head = hp->n_head;
    out->n_head_kv = hp->n_head_kv;
    out->n_params = bn_model_params(md);
    out->n_bytes = bn_model_bytes(md);
    out->bos = md->vocab.bos;
    out->eos = md->vocab.eos;
    out->eot = md->vocab.eot;
    return BN_OK;
}

bool bn_llm_token_is_eog(const bn_llm *m, int32_t token) {
    if (!m || token < 0) return false;
    if (m->has_chat) return bn_chat_is_stop(&m->chat, token);
    return token == m->model->vocab.eos || token == m->model->vocab.eot;
}

/* ---- text ---- */

bn_status bn_llm_tokenize(const bn_llm *m, const char *text, size_t len, int flags, int32_t *ids,
                          int cap, int *n_ids) {
    if (!m || !n_ids || (!text && len > 0) || cap < 0 || (cap > 0 && !ids))
        return fail(BN_ERR_INVALID_ARG, "bn_llm_tokenize: invalid argument");
    *n_ids = 0;
    bn_err err = {0};
    if (bn_lib_tokenize(m->model, text ? text : "", len, flags & BN_TOKENIZE_ADD_BOS,
                        flags & BN_TOKENIZE_SPECIAL, ids, cap, n_ids, &err) != BN_OK)
        return bn_lib_set_error(&err);
    return BN_OK;
}

int bn_llm_token_piece(const bn_llm *m, int32_t token, char *buf, int cap) {
    if (!m || (cap > 0 && !buf)) return 0;
    return bn_lib_token_piece(m->model, token, buf, cap < 0 ? 0 : cap);
}

bn_status bn_llm_detokenize(const bn_llm *m, const int32_t *ids, int n, char *buf, size_t cap,
                            size_t *len) {
    if (!m || !len || n < 0 || (n > 0 && !ids) || (cap > 0 && !buf))
        return fail(BN_ERR_INVALID_ARG, "bn_llm_detokenize: invalid argument");
    bn_err err = {0};
    if (bn_lib_detokenize(m->model, ids, n, buf, cap, len, &err) != BN_OK)
        return bn_lib_set_error(&err);
    return BN_OK;
}

bn_status bn_llm_chat_tokenize(const bn_llm *m, const bn_llm_chat_msg *msgs, int n,
                               bool add_assistant, int32_t *ids, int cap, int *n_ids) {
    if (!m || !n_ids || n < 0 || (n > 0 && !msgs) || cap < 0 || (cap > 0 && !ids))
        return fail(BN_ERR_INVALID_ARG, "bn_llm_chat_tokenize: invalid argument");
    *n_ids = 0;
    bn_err err = {0};
    if (bn_lib_chat_tokenize(m, msgs, n, add_assistant, ids, cap, n_ids, &err) != BN_OK)
        return bn_lib_set_error(&err);
    return BN_OK;
}

const char *bn_llm_chat_name(const bn_llm *m) {
    return m && m->has_chat ? bn_chat_kind_name(m->chat.kind) : "";
}

/* ---- contexts ---- */

void bn_ctx_params_default(bn_ctx_params *p) {
    memset(p, 0, sizeof *p);
}

bn_status bn_ctx_new(const bn_llm *m, const bn_ctx_params *p, bn_ctx **out) {
    if (!out) return fail(BN_ERR_INVALID_ARG, "bn_ctx_new: out is NULL");
    *out = NULL;
    if (!m) return fail(BN_ERR_INVALID_ARG, "bn_ctx_new: model is NULL");
    bn_ctx_params def;
    if (!p) {
        bn_ctx_params_default(&def);
        p = &def;
    }
    if (p->n_ctx < 0 || p->n_batch < 0 || p->n_threads < 0)
        return fail(BN_ERR_INVALID_ARG,
                    "bn_ctx_new: n_ctx %d, n_batch %d, n_threads %d: none "
                    "may be negative",
                    p->n_ctx, p->n_batch, p->n_threads);
    bn_ctx *c = calloc(1, sizeof *c);
    if (!c) return fail(BN_ERR_OOM, "out of memory");
    c->llm = m;
    c->n_vocab = m->model->hp.n_vocab;
    bn_context_params cp;
    bn_context_params_default(&cp);
    cp.n_ctx = p->n_ctx;
    cp.n_batch = p->n_batch;
    cp.n_threads = p->n_threads;
    cp.kv_type = p->kv_f32 ? BN_TYPE_F32 : BN_TYPE_F16;
    cp.backend = opt(m->backend);
    cp.devices = opt(m->devices);
    cp.gpu_layers = m->gpu_layers;
    cp.gpu_mem = m->gpu_mem;
    cp.tensor_split = opt(m->tensor_split);
    cp.profile = opt(m->profile);
    bn_err err = {0};
    /* device discovery, profile caches and backends' one-time set-up are not
     * made for concurrent callers: contexts are made (and freed) one at a time */
    pthread_mutex_lock(&ctx_mu);
    bn_status st = bn_context_new(m->model, &cp, &c->ctx, &err);
    pthread_mutex_unlock(&ctx_mu);
    if (st != BN_OK) {
        free(c);
        return bn_lib_set_error(&err);
    }
    int n_ctx = bn_context_n_ctx(c->ctx);
    c->logits = malloc(sizeof(float) * (size_t)c->n_vocab);
    c->hist = malloc(sizeof(int32_t) * (size_t)n_ctx);
    bn_sampler_params sp;
    bn_sampler_params_default(&sp);
    sp.temp = 0; /* greedy until set_sampling */
    if (!c->logits || !c->hist || bn_sampler_new(&sp, c->n_vocab, &c->smp, &err) != BN_OK) {
        bn_ctx_free(c);
        return fail(BN_ERR_OOM, "out of memory for a context of %d positions", n_ctx);
    }
    *out = c;
    return BN_OK;
}

void bn_ctx_free(bn_ctx *c) {
    if (!c) return;
    bn_sampler_free(c->smp);
    pthread_mutex_lock(&ctx_mu);
    bn_context_free(c->ctx);
    pthread_mutex_unlock(&ctx_mu);
    free(c->logits);
    free(c->hist);
    free(c);
}

int bn_ctx_n_ctx(const bn_ctx *c) {
    return c ? bn_context_n_ctx(c->ctx) : 0;
}

const char *bn_ctx_plan(const bn_ctx *c) {
    return c ? bn_context_plan_text(c->ctx) : "";
}

int bn_ctx_n_past(const bn_ctx *c) {
    return c ? bn_context_n_past(c->ctx) : 0;
}

const int32_t *bn_ctx_tokens(const bn_ctx *c) {
    return c ? c->hist : NULL;
}

bn_status bn_ctx_eval(bn_ctx *c, const int32_t *ids, int n) {
    if (!c || n <= 0 || !ids)
        return fail(BN_ERR_INVALID_ARG, "bn_ctx_eval: nothing to evaluate (%d tokens)", n);
    int n_past = bn_context_n_past(c->ctx);
    bn_err err = {0};
    if (bn_context_eval(c->ctx, ids, n, false, c->logits, &err) != BN_OK) {
        /* a failure part-way: forget the batches that were evaluated */
        bn_context_truncate(c->ctx, n_past);
        c->have_logits = false;
        return bn_lib_set_error(&err);
    }
    memcpy(c->hist + n_past, ids, sizeof(int32_t) * (size_t)n);
    c->have_logits = true;
    return BN_OK;
}

const float *bn_ctx_logits(const bn_ctx *c) {
    return c && c->have_logits ? c->logits : NULL;
}

bn_status bn_ctx_rewind(bn_ctx *c, int n_keep) {
    if (!c) return fail(BN_ERR_INVALID_ARG, "bn_ctx_rewind: context is NULL");
    int n_past = bn_context_n_past(c->ctx);
    if (n_keep < 0 || n_keep > n_past)
        return fail(BN_ERR_INVALID_ARG, "bn_ctx_rewind: %d is not in [0, %d]", n_keep, n_past);
    if (n_keep < n_past) {
        bn_context_truncate(c->ctx, n_keep);
        c->have_logits = false;
    }
    return BN_OK;
}

/* ---- sampling ---- */

void bn_ctx_sampling_default(bn_ctx_sampling *s) {
    bn_sampler_params sp;
    bn_sampler_params_default(&sp);
    s->temperature = sp.temp;
    s->top_k = sp.top_k;
    s->top_p = sp.top_p;
    s->min_p = sp.min_p;
    s->repeat_penalty = sp.repeat_penalty;
    s->repeat_last_n = sp.repeat_last_n;
    s->seed = sp.seed;
}

/* A sampler for s (validated). */
static bn_status new_sampler(const bn_ctx *c, const bn_ctx_sampling *s, bn_sampler **out) {
    bn_sampler_params sp = {
        .temp = s->temperature,
        .top_k = s->top_k,
        .top_p = s->top_p,
        .min_p = s->min_p,
        .repeat_penalty = s->repeat_penalty,
        .repeat_last_n = s->repeat_last_n,
        .seed = s->seed,
    };
    bn_err err = {0};
    if (bn_sampler_new(&sp, c->n_vocab, out, &err) != BN_OK) return bn_lib_set_error(&err);
    return BN_OK;
}

/* Makes smp the context's sampler, with the cached tokens as its history. */
static void use_sampler(bn_ctx *c, bn_sampler *smp) {
    bn_sampler_free(c->smp);
    c->smp = smp;
    int n_past = bn_context_n_past(c->ctx);
    for (int i = 0; i < n_past; i++) bn_sampler_accept(c->smp, c->hist[i]);
}

bn_status bn_ctx_set_sampling(bn_ctx *c, const bn_ctx_sampling *s) {
    if (!c || !s) return fail(BN_ERR_INVALID_ARG, "bn_ctx_set_sampling: NULL argument");
    bn_sampler *smp;
    bn_status st = new_sampler(c, s, &smp);
    if (st == BN_OK) use_sampler(c, smp);
    return st;
}

bn_status bn_ctx_sample(bn_ctx *c, int32_t *token) {
    if (!c || !token) return fail(BN_ERR_INVALID_ARG, "bn_ctx_sample: NULL argument");
    if (!c->have_logits)
        return fail(BN_ERR_INVALID_ARG, "bn_ctx_sample: no logits: evaluate a token first");
    *token = bn_sampler_sample(c->smp, c->logits);
    bn_sampler_accept(c->smp, *token);
    return BN_OK;
}

/* ---- generation ---- */

void bn_ctx_gen_params_default(bn_ctx_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->max_tokens = -1;
    bn_ctx_sampling_default(&p->sampling);
}

bn_status bn_ctx_generate(bn_ctx *c, const int32_t *prompt, int n_prompt,
                          const bn_ctx_gen_params *p, bn_ctx_token_cb cb, void *user,
                          bn_ctx_gen_result *res) {
    bn_ctx_gen_result r = {.n_prompt = n_prompt};
    if (res) *res = r;
    if (!c || !prompt || n_prompt <= 0 || !p)
        return fail(BN_ERR_INVALID_ARG, "bn_ctx_generate: %s",
                    n_prompt <= 0 ? "the prompt is empty" : "NULL argument");
    int n_ctx = bn_context_n_ctx(c->ctx);
    if (n_prompt > n_ctx)
        return fail(BN_ERR_INVALID_ARG,
                    "the prompt has %d tokens but the context holds %d; use a larger context "
                    "or a shorter prompt",
                    n_prompt, n_ctx);
    /* keep the cached prefix, but evaluate at least the last prompt token for its logits */
    int keep = 0;
    if (!p->no_reuse) {
        int n_past = bn_context_n_past(c->ctx);
        int lim = n_past < n_prompt - 1 ? n_past : n_prompt - 1;
        while (keep < lim && c->hist[keep] == prompt[keep]) keep++;
    }
    bn_sampler *smp;
    bn_status st = new_sampler(c, &p->sampling, &smp);
    if (st != BN_OK) return st;
    bn_lib_stream *text = bn_lib_stream_new(c->llm->model);
    if (!text) {
        bn_sampler_free(smp);
        return fail(BN_ERR_OOM, "out of memory");
    }
    bn_ctx_rewind(c, keep);
    r.n_reused = keep;
    double t0 = bn_time_sec();
    st = bn_ctx_eval(c, prompt + keep, n_prompt - keep);
    if (st != BN_OK) {
        bn_sampler_free(smp);
        bn_lib_stream_free(text);
        return st;
    }
    r.t_prompt = bn_time_sec() - t0;
    use_sampler(c, smp);
    t0 = bn_time_sec();
    for (;;) {
        if (p->max_tokens >= 0 && r.n_generated >= p->max_tokens) {
            r.stop = BN_STOP_LENGTH;
            break;
        }
        int32_t tok;
        bn_ctx_sample(c, &tok);
        if (bn_llm_token_is_eog(c->llm, tok)) {
            r.stop = BN_STOP_EOG;
            break;
        }
        size_t len;
        const char *piece = bn_lib_stream_push(text, tok, &len);
        r.n_generated++;
        if (cb && cb(user, tok, piece, len)) {
            r.stop = BN_STOP_CALLBACK;
            break;
        }
        if (p->max_tokens >= 0 && r.n_generated >= p->max_tokens) {
            r.stop = BN_STOP_LENGTH; /* the last token is not evaluated */
            break;
        }
        if (bn_context_n_past(c->ctx) >= n_ctx) {
            r.stop = BN_STOP_CONTEXT;
            break;
        }
        st = bn_ctx_eval(c, &tok, 1);
        if (st != BN_OK) break;
    }
    if (st == BN_OK && r.stop != BN_STOP_CALLBACK) {
        /* a character left incomplete at the end comes out as U+FFFD, with token -1 */
        size_t flen;
        const char *f = bn_lib_stream_flush(text, &flen);
        if (flen > 0 && cb) cb(user, -1, f, flen);
    }
    r.t_gen = bn_time_sec() - t0;
    bn_lib_stream_free(text);
    if (res) *res = r;
    return st;
}
