/* serve_openai.c - the OpenAI API's JSON for `bitnet serve`, with cJSON:
 * request bodies of /v1/chat/completions and /v1/completions become jobs
 * (validated field by field: a wrong type or range is a 400 naming the
 * field), and jobs become responses, server-sent-event chunks and errors in
 * OpenAI's shapes.
 *
 * Supported request fields: model, messages (text content, or text parts) /
 * prompt (a string or token ids), stream, stream_options.include_usage,
 * max_tokens / max_completion_tokens, temperature, top_p, stop (a string or
 * up to 4), seed, n (1 only); extensions top_k, min_p, repeat_penalty.
 * presence_penalty, frequency_penalty and user are accepted and ignored;
 * logprobs are refused. Other fields are ignored. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "serve.h"

void serve_error_set(serve_error *e, int http, const char *type, const char *code,
                     const char *param, const char *fmt, ...) {
    e->http = http;
    e->type = type;
    e->code = code;
    e->param = param;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

#define BAD(param, ...) serve_error_set(e, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

/* cJSON keeps its last parse error in a global: parse one body at a time. */
static pthread_mutex_t parse_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- field helpers: absent and null are the same; false with e set on a bad value ---- */

static const cJSON *field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static bool get_number(const cJSON *o, const char *key, double lo, double hi, double *out,
                       serve_error *e) {
    const cJSON *v = field(o, key);
    if (!v) return true;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        BAD(key, "'%s' must be a number", key);
        return false;
    }
    if (v->valuedouble < lo || v->valuedouble > hi) {
        BAD(key, "'%s' must be between %g and %g, not %g", key, lo, hi, v->valuedouble);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

static bool get_int(const cJSON *o, const char *key, double lo, double hi, long long *out,
                    serve_error *e) {
    const cJSON *v = field(o, key);
    if (!v) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
        BAD(key, "'%s' must be an integer", key);
        return false;
    }
    if (v->valuedouble < lo || v->valuedouble > hi) {
        BAD(key, "'%s' must be between %.0f and %.0f", key, lo, hi);
        return false;
    }
    *out = (long long)v->valuedouble;
    return true;
}

static bool get_bool(const cJSON *o, const char *key, bool *out, serve_error *e) {
    const cJSON *v = field(o, key);
    if (!v) return true;
    if (!cJSON_IsBool(v)) {
        BAD(key, "'%s' must be true or false", key);
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

/* ---- the parts of a request ---- */

static bool parse_stop(const cJSON *root, serve_job *j, serve_error *e) {
    const cJSON *v = field(root, "stop");
    if (!v) return true;
    const cJSON *items[SERVE_MAX_STOP + 1];
    int n = 0;
    if (cJSON_IsString(v)) {
        items[n++] = v;
    } else if (cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            if (n == SERVE_MAX_STOP) {
                BAD("stop", "'stop' has more than %d strings", SERVE_MAX_STOP);
                return false;
            }
            if (!cJSON_IsString(it)) {
                BAD("stop", "'stop' must be a string or an array of strings");
                return false;
            }
            items[n++] = it;
        }
    } else {
        BAD("stop", "'stop' must be a string or an array of strings");
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (!items[i]->valuestring[0]) continue; /* an empty stop string stops nothing */
        j->stop[j->n_stop] = strdup(items[i]->valuestring);
        if (!j->stop[j->n_stop]) {
            serve_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
            return false;
        }
        j->n_stop++;
    }
    return true;
}

static bool parse_sampling(serve_server *s, const cJSON *root, serve_job *j, serve_error *e) {
    bn_ctx_gen_params *g = &j->gen;
    bn_ctx_gen_params_default(g);
    /* OpenAI's defaults: temperature 1, top_p 1, nothing else */
    g->sampling.temperature = 1.0f;
    g->sampling.top_k = 0;
    g->sampling.top_p = 1.0f;
    g->sampling.min_p = 0.0f;
    g->sampling.repeat_penalty = 1.0f;
    g->max_tokens = s->o.max_tokens;
    double d;
    long long n;
    if (!get_number(root, "temperature", 0, 2, &d, e)) return false;
    if (field(root, "temperature")) g->sampling.temperature = (float)d;
    if (!get_number(root, "top_p", 0, 1, &d, e)) return false;
    if (field(root, "top_p")) {
        if (d == 0)
            g->sampling.temperature = 0; /* only the most likely token */
        else
            g->sampling.top_p = (float)d;
    }
    if (!get_number(root, "min_p", 0, 1, &d, e)) return false;
    if (field(root, "min_p")) g->sampling.min_p = (float)d;
    if (!get_number(root, "repeat_penalty", 1e-3, 100, &d, e)) return false;
    if (field(root, "repeat_penalty")) g->sampling.repeat_penalty = (float)d;
    if (!get_int(root, "top_k", 0, 1e9, &n, e)) return false;
    if (field(root, "top_k")) g->sampling.top_k = (int)n;
    if (!get_number(root, "presence_penalty", -2, 2, &d, e)) return false;
    if (!get_number(root, "frequency_penalty", -2, 2, &d, e)) return false;
    const char *mt = field(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (!get_int(root, mt, 0, 1e9, &n, e)) return false;
    if (field(root, mt)) g->max_tokens = (int)n;
    if (!get_int(root, "n", 1, 1, &n, e)) return false;
    if (field(root, "seed")) {
        if (!get_int(root, "seed", -9007199254740992.0, 9007199254740992.0, &n, e)) return false;
        g->sampling.seed = (uint64_t)n;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        g->sampling.seed = (uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)ts.tv_sec ^
                           (uint64_t)atomic_load(&s->n_requests) << 32;
    }
    const cJSON *lp = field(root, "logprobs");
    if (lp && !cJSON_IsFalse(lp)) {
        BAD("logprobs", "logprobs are not supported by this server");
        return false;
    }
    if (!get_bool(root, "stream", &j->stream, e)) return false;
    const cJSON *so = field(root, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) {
            BAD("stream_options", "'stream_options' must be an object");
            return false;
        }
        if (!get_bool(so, "include_usage", &j->include_usage, e)) return false;
    }
    return parse_stop(root, j, e);
}

/* The text of a message's content: a string, or an array of {"type":"text"} parts
 * (joined with newlines). Returns malloc'd text or NULL with e set. */
static char *message_text(const cJSON *content, int i, bool may_be_null, serve_error *e) {
    if (!content) {
        if (may_be_null) return strdup("");
        BAD("messages", "messages[%d] has no 'content'", i);
        return NULL;
    }
    if (cJSON_IsString(content)) return strdup(content->valuestring);
    if (!cJSON_IsArray(content)) {
        BAD("messages", "messages[%d].content must be a string or an array of parts", i);
        return NULL;
    }
    size_t len = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text)) {
            BAD("messages",
                "messages[%d].content: only parts {\"type\": \"text\", \"text\": ...} "
                "are supported",
                i);
            return NULL;
        }
        len += strlen(text->valuestring) + 1;
    }
    char *out = malloc(len + 1), *p = out;
    if (!out) return NULL;
    cJSON_ArrayForEach(part, content) {
        const char *t = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
        if (p != out) *p++ = '\n';
        size_t l = strlen(t);
        memcpy(p, t, l);
        p += l;
    }
    *p = 0;
    return out;
}

static bool parse_messages(serve_server *s, const cJSON *root, serve_job *j, serve_error *e) {
    const cJSON *msgs = field(root, "messages");
    if (!msgs) {
        BAD("messages", "'messages' is required");
        return false;
    }
    int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : -1;
    if (n <= 0) {
        BAD("messages", "'messages' must be a non-empty array of messages");
        return false;
    }
    bn_llm_chat_msg *cm = calloc((size_t)n, sizeof *cm);
    char **texts = calloc((size_t)n, sizeof *texts);
    bool ok = cm && texts;
    if (!ok) serve_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    for (int i = 0; ok && i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        const cJSON *role = cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, "role") : NULL;
        if (!cJSON_IsString(role)) {
            BAD("messages", "messages[%d] must be an object with a string 'role'", i);
            ok = false;
            break;
        }
        const char *r = role->valuestring;
        if (!strcmp(r, "developer")) r = "system";
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")) {
            BAD("messages", "messages[%d]: role '%.40s' is not supported (system, user, assistant)",
                i, r);
            ok = false;
            break;
        }
        texts[i] = message_text(field(m, "content"), i, !strcmp(r, "assistant"), e);
        if (!texts[i]) {
            if (!e->http) serve_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
            ok = false;
            break;
        }
        cm[i].role = r;
        cm[i].content = texts[i];
    }
    if (ok) {
        int need = 0;
        if (bn_llm_chat_tokenize(s->llm, cm, n, true, NULL, 0, &need) != BN_OK ||
            !(j->prompt = malloc(sizeof(int32_t) * (size_t)(need ? need : 1))) ||
            bn_llm_chat_tokenize(s->llm, cm, n, true, j->prompt, need, &j->n_prompt) != BN_OK) {
            BAD("messages", "%s", bn_last_error());
            ok = false;
        }
    }
    for (int i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(cm);
    return ok;
}

/* Token ids given directly: an array of integers in the vocabulary. */
static bool prompt_ids(serve_server *s, const cJSON *arr, serve_job *j, serve_error *e) {
    int n = cJSON_GetArraySize(arr);
    j->prompt = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!j->prompt) {
        serve_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        return false;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
            it->valuedouble < 0 || it->valuedouble >= s->info.n_vocab) {
            BAD("prompt", "prompt token ids must be integers in [0, %d)", s->info.n_vocab);
            return false;
        }
        j->prompt[j->n_prompt++] = (int32_t)it->valuedouble;
    }
    return true;
}

static bool parse_prompt(serve_server *s, const cJSON *root, serve_job *j, serve_error *e) {
    const cJSON *p = field(root, "prompt");
    if (!p) {
        BAD("prompt", "'prompt' is required");
        return false;
    }
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && !cJSON_IsNumber(p->child)) p = p->child;
    if (cJSON_IsArray(p)) {
        if (cJSON_GetArraySize(p) == 0 || !cJSON_IsNumber(p->child)) {
            BAD("prompt", "'prompt' must be a string, an array of one string, or an array of "
                          "token ids (several prompts in one request are not supported)");
            return false;
        }
        return prompt_ids(s, p, j, e);
    }
    if (!cJSON_IsString(p)) {
        BAD("prompt", "'prompt' must be a string or an array of token ids");
        return false;
    }
    const char *t = p->valuestring;
    size_t len = strlen(t);
    int flags = BN_TOKENIZE_ADD_BOS | BN_TOKENIZE_SPECIAL, need = 0;
    if (bn_llm_tokenize(s->llm, t, len, flags, NULL, 0, &need) != BN_OK ||
        !(j->prompt = malloc(sizeof(int32_t) * (size_t)(need ? need : 1))) ||
        bn_llm_tokenize(s->llm, t, len, flags, j->prompt, need, &j->n_prompt) != BN_OK) {
        BAD("prompt", "%s", bn_last_error());
        return false;
    }
    return true;
}

static void make_id(serve_server *s, serve_job *j) {
    static atomic_ulong counter;
    unsigned long c = atomic_fetch_add(&counter, 1) + 1;
    snprintf(j->id, sizeof j->id, "%s-%08x%06lx%08lx", j->kind == SERVE_CHAT ? "chatcmpl" : "cmpl",
             (unsigned)getpid(), (unsigned long)(s->started & 0xffffff), c);
    j->created = (long long)time(NULL);
}

serve_job *serve_parse_request(serve_server *s, serve_kind kind, const char *body, size_t len,
                               serve_error *e) {
    memset(e, 0, sizeof *e);
    pthread_mutex_lock(&parse_mu);
    cJSON *root = cJSON_ParseWithLength(body, len);
    pthread_mutex_unlock(&parse_mu);
    if (!root) {
        BAD(NULL, "the body is not valid JSON");
        return NULL;
    }
    serve_job *j = NULL;
    if (!cJSON_IsObject(root)) {
        BAD(NULL, "the body must be a JSON object");
        goto fail;
    }
    const cJSON *model = field(root, "model");
    if (model && !cJSON_IsString(model)) {
        BAD("model", "'model' must be a string");
        goto fail;
    }
    if (model && strcmp(model->valuestring, s->model_id)) {
        serve_error_set(e, 404, "invalid_request_error", "model_not_found", "model",
                        "The model '%.200s' does not exist; this server has '%.200s'",
                        model->valuestring, s->model_id);
        goto fail;
    }
    j = serve_job_new();
    if (!j) {
        serve_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        goto fail;
    }
    j->kind = kind;
    if (!parse_sampling(s, root, j, e)) goto fail;
    if (!(kind == SERVE_CHAT ? parse_messages(s, root, j, e) : parse_prompt(s, root, j, e)))
        goto fail;
    if (j->n_prompt == 0) {
        BAD(kind == SERVE_CHAT ? "messages" : "prompt", "the prompt is empty");
        goto fail;
    }
    if (j->n_prompt > s->n_ctx) {
        serve_error_set(e, 400, "invalid_request_error", "context_length_exceeded",
                        kind == SERVE_CHAT ? "messages" : "prompt",
                        "This model's context holds %d tokens, but the prompt has %d tokens",
                        s->n_ctx, j->n_prompt);
        goto fail;
    }
    make_id(s, j);
    cJSON_Delete(root);
    return j;
fail:
    serve_job_release(j);
    cJSON_Delete(root);
    return NULL;
}

/* ---- responses ---- */

/* Adds text[0..len) as a string: the text is valid UTF-8 from the detokenizer;
 * NUL bytes, which a C string cannot hold, are dropped. */
static void add_text(cJSON *o, const char *key, const char *text, size_t len) {
    char *t = malloc(len + 1);
    if (!t) return;
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i]) t[k++] = text[i];
    t[k] = 0;
    cJSON_AddStringToObject(o, key, t);
    free(t);
}

static cJSON *envelope(const serve_server *s, const serve_job *j, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", s->model_id);
    cJSON_AddStringToObject(o, "system_fingerprint", "bitnet-" BITNET_VERSION);
    return o;
}

static cJSON *usage(const serve_job *j) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", j->n_generated);
    cJSON_AddNumberToObject(u, "total_tokens", j->n_prompt + j->n_generated);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", j->n_reused);
    return u;
}

static char *print(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *sse(cJSON *o) {
    char *s = print(o);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *ev = malloc(n + 9);
    if (ev) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, s, n);
        memcpy(ev + 6 + n, "\n\n", 3);
    }
    cJSON_free(s);
    return ev;
}

char *serve_json_response(const serve_server *s, const serve_job *j) {
    bool chat = j->kind == SERVE_CHAT;
    cJSON *o = envelope(s, j, chat ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (chat) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        add_text(m, "content", j->text ? j->text : "", j->text_len);
    } else {
        add_text(c, "text", j->text ? j->text : "", j->text_len);
    }
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", j->finish ? j->finish : "stop");
    cJSON_AddItemToObject(o, "usage", usage(j));
    return print(o);
}

char *serve_sse_chunk(const serve_server *s, const serve_job *j, const char *text, size_t len,
                      bool first, bool last) {
    bool chat = j->kind == SERVE_CHAT;
    cJSON *o = envelope(s, j, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (chat) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (first) cJSON_AddStringToObject(d, "role", "assistant");
        if (first || len > 0) add_text(d, "content", text ? text : "", len);
    } else {
        add_text(c, "text", text ? text : "", len);
    }
    cJSON_AddNullToObject(c, "logprobs");
    if (last)
        cJSON_AddStringToObject(c, "finish_reason", j->finish ? j->finish : "stop");
    else
        cJSON_AddNullToObject(c, "finish_reason");
    return sse(o);
}

char *serve_sse_usage(const serve_server *s, const serve_job *j) {
    cJSON *o = envelope(s, j, j->kind == SERVE_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddArrayToObject(o, "choices");
    cJSON_AddItemToObject(o, "usage", usage(j));
    return sse(o);
}

char *serve_json_error(const serve_error *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(err, "message", e->msg);
    cJSON_AddStringToObject(err, "type", e->type ? e->type : "invalid_request_error");
    if (e->param)
        cJSON_AddStringToObject(err, "param", e->param);
    else
        cJSON_AddNullToObject(err, "param");
    if (e->code)
        cJSON_AddStringToObject(err, "code", e->code);
    else
        cJSON_AddNullToObject(err, "code");
    return print(o);
}

char *serve_json_models(const serve_server *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToArray(data, m);
    cJSON_AddStringToObject(m, "id", s->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->started);
    cJSON_AddStringToObject(m, "owned_by", "bitnet");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddStringToObject(meta, "arch", s->info.arch);
    cJSON_AddStringToObject(meta, "weight_type", s->info.weight_type);
    cJSON_AddNumberToObject(meta, "n_params", (double)s->info.n_params);
    cJSON_AddNumberToObject(meta, "n_vocab", s->info.n_vocab);
    cJSON_AddNumberToObject(meta, "n_ctx", s->n_ctx);
    cJSON_AddNumberToObject(meta, "n_ctx_train", s->info.n_ctx_train);
    cJSON_AddStringToObject(meta, "chat_template", bn_llm_chat_name(s->llm));
    return print(o);
}

char *serve_json_health(serve_server *s) {
    int idle, queued;
    serve_slots_status(s, &idle, &queued);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddNumberToObject(o, "slots_idle", idle);
    cJSON_AddNumberToObject(o, "slots_total", s->n_slots);
    cJSON_AddNumberToObject(o, "requests_queued", queued);
    cJSON_AddNumberToObject(o, "requests_total", (double)atomic_load(&s->n_requests));
    cJSON_AddNumberToObject(o, "tokens_generated", (double)atomic_load(&s->n_tokens));
    return print(o);
}
