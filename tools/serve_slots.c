/* serve_slots.c - the slots of `bitnet serve`: each one a bn_ctx (its own KV
 * cache and threads) and a worker thread, fed from one FIFO queue.
 *
 * When a slot is free, the job at the head of the queue goes to the free slot
 * whose cache shares the longest prefix with the job's prompt (the least
 * recently used on a tie), so a conversation that continues lands where its
 * history is cached and bn_ctx_generate evaluates only the new tokens.
 *
 * A worker appends each piece of text to the job; stop strings are applied
 * there: text that could still be the start of a stop string is held back
 * (in raw) until it is decided, and a match ends the generation with the
 * stop string cut off. A job whose client went away is cancelled: skipped if
 * still queued, stopped at the next token if running, freeing its slot. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "serve.h"

typedef struct serve_slot {
    serve_server *srv;
    int id;
    bn_ctx *ctx;
    pthread_t thread;
    bool started;
    pthread_cond_t cv; /* a job was assigned, or stop */
    serve_job *job;    /* NULL when idle */
    unsigned long last_used;
} serve_slot;

/* ---- jobs ---- */

serve_job *serve_job_new(void) {
    serve_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancel, false);
    j->slot = -1;
    return j;
}

void serve_job_release(serve_job *j) {
    if (!j || atomic_fetch_sub(&j->refs, 1) != 1) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->prompt);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->text);
    free(j->raw);
    free(j);
}

char *serve_job_take(serve_job *j, size_t *seen, size_t *len) {
    *len = 0;
    if (j->text_len <= *seen) return NULL;
    size_t n = j->text_len - *seen;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, j->text + *seen, n);
    s[n] = 0;
    *seen = j->text_len;
    *len = n;
    return s;
}

static bool grow(char **p, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *q = realloc(*p, c);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* Makes raw[0..n) final: copies what is new into text, wakes the connection. */
static void publish(serve_job *j, size_t n) {
    pthread_mutex_lock(&j->mu);
    if (n > j->text_len) {
        if (grow(&j->text, &j->text_cap, n + 1)) {
            memcpy(j->text + j->text_len, j->raw + j->text_len, n - j->text_len);
            j->text_len = n;
            j->text[n] = 0;
        } else {
            j->oom = true;
        }
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Applies the stop strings to raw: returns true when one matched (raw is cut
 * there); else *safe is how much of raw can no longer become part of one. */
static bool find_stop(serve_job *j, size_t from, size_t *safe) {
    size_t best = SIZE_MAX;
    for (int i = 0; i < j->n_stop; i++) {
        size_t l = strlen(j->stop[i]);
        size_t start = from >= l ? from - l + 1 : 0;
        for (size_t k = start; k + l <= j->raw_len && k < best; k++)
            if (memcmp(j->raw + k, j->stop[i], l) == 0) {
                best = k;
                break;
            }
    }
    if (best != SIZE_MAX) {
        j->raw_len = best;
        return true;
    }
    /* hold back the longest tail that is a proper prefix of a stop string */
    size_t hold = 0;
    for (int i = 0; i < j->n_stop; i++) {
        size_t l = strlen(j->stop[i]);
        for (size_t t = l - 1; t > hold; t--)
            if (t <= j->raw_len && memcmp(j->raw + j->raw_len - t, j->stop[i], t) == 0) {
                hold = t;
                break;
            }
    }
    *safe = j->raw_len - hold;
    return false;
}

/* bn_ctx_generate's callback: text in, stop strings, cancellation. */
static int on_token(void *user, int32_t token, const char *piece, size_t len) {
    serve_job *j = user;
    (void)token;
    if (atomic_load(&j->cancel)) return 1;
    if (len == 0) return 0;
    if (!grow(&j->raw, &j->raw_cap, j->raw_len + len + 1)) {
        pthread_mutex_lock(&j->mu);
        j->oom = true;
        pthread_mutex_unlock(&j->mu);
        return 1;
    }
    size_t from = j->raw_len;
    memcpy(j->raw + j->raw_len, piece, len);
    j->raw_len += len;
    size_t safe = j->raw_len;
    if (j->n_stop > 0 && find_stop(j, from, &safe)) {
        j->stopped = true;
        publish(j, j->raw_len);
        return 1;
    }
    publish(j, safe);
    return 0;
}

/* Runs the job on the slot's context; the outcome is left for finish_job. */
static bn_status run_job(serve_slot *sl, serve_job *j, bn_ctx_gen_result *res) {
    memset(res, 0, sizeof *res);
    bn_status st = BN_OK;
    if (!atomic_load(&j->cancel))
        st = bn_ctx_generate(sl->ctx, j->prompt, j->n_prompt, &j->gen, on_token, j, res);
    if (st == BN_OK && !j->stopped) publish(j, j->raw_len); /* the held-back tail */
    if (st != BN_OK) snprintf(j->error, sizeof j->error, "%s", bn_last_error());
    return st;
}

/* Marks the job done (the slot is already free for the next one). */
static void finish_job(serve_slot *sl, serve_job *j, bn_status st, const bn_ctx_gen_result *res) {
    pthread_mutex_lock(&j->mu);
    j->n_generated = res->n_generated;
    j->n_reused = res->n_reused;
    j->slot = sl->id;
    if (st != BN_OK) {
        j->failed = true;
    } else if (j->oom) {
        j->failed = true;
        snprintf(j->error, sizeof j->error, "out of memory");
    }
    j->finish = j->stopped || res->stop == BN_STOP_EOG ? "stop" : "length";
    j->done = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    atomic_fetch_add(&sl->srv->n_tokens, res->n_generated);
}

/* ---- the queue ---- */

static int common_prefix(const bn_ctx *c, const int32_t *ids, int n) {
    const int32_t *t = bn_ctx_tokens(c);
    int m = bn_ctx_n_past(c), k = 0;
    while (k < m && k < n && t[k] == ids[k]) k++;
    return k;
}

/* Hands queued jobs to idle slots; s->mu held. */
static void dispatch(serve_server *s) {
    while (s->q_head) {
        serve_job *j = s->q_head;
        if (atomic_load(&j->cancel)) {
            s->q_head = j->next;
            if (!s->q_head) s->q_tail = NULL;
            s->q_len--;
            pthread_mutex_lock(&j->mu);
            j->done = true;
            j->finish = "stop";
            pthread_cond_broadcast(&j->cv);
            pthread_mutex_unlock(&j->mu);
            serve_job_release(j);
            continue;
        }
        serve_slot *best = NULL;
        int best_k = -1;
        for (int i = 0; i < s->n_slots; i++) {
            serve_slot *sl = &s->slots[i];
            if (sl->job) continue;
            int k = common_prefix(sl->ctx, j->prompt, j->n_prompt);
            if (k > best_k || (k == best_k && sl->last_used < best->last_used)) {
                best = sl;
                best_k = k;
            }
        }
        if (!best) return;
        s->q_head = j->next;
        if (!s->q_head) s->q_tail = NULL;
        s->q_len--;
        j->next = NULL;
        best->job = j;
        pthread_cond_signal(&best->cv);
    }
}

bool serve_submit(serve_server *s, serve_job *j) {
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    atomic_fetch_add(&j->refs, 1);
    j->next = NULL;
    if (s->q_tail)
        s->q_tail->next = j;
    else
        s->q_head = j;
    s->q_tail = j;
    s->q_len++;
    dispatch(s);
    pthread_mutex_unlock(&s->mu);
    return true;
}

void serve_slots_status(serve_server *s, int *idle, int *queued) {
    pthread_mutex_lock(&s->mu);
    *idle = 0;
    for (int i = 0; i < s->n_slots; i++) *idle += s->slots[i].job == NULL;
    *queued = s->q_len;
    pthread_mutex_unlock(&s->mu);
}

static void *worker(void *arg) {
    serve_slot *sl = arg;
    serve_server *s = sl->srv;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!sl->job && !s->stopping) pthread_cond_wait(&sl->cv, &s->mu);
        if (!sl->job) break; /* stopping */
        serve_job *j = sl->job;
        pthread_mutex_unlock(&s->mu);
        bn_ctx_gen_result res;
        bn_status st = run_job(sl, j, &res);
        /* free the slot before the client hears of the result, so that its next
         * request finds the slot that caches its conversation idle */
        pthread_mutex_lock(&s->mu);
        sl->job = NULL;
        sl->last_used = ++s->clock;
        dispatch(s);
        pthread_mutex_unlock(&s->mu);
        finish_job(sl, j, st, &res);
        serve_job_release(j);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- start and stop ---- */

int serve_slots_start(serve_server *s) {
    bn_llm_params lp;
    bn_llm_params_default(&lp);
    lp.backend = s->o.dev.backend;
    lp.devices = s->o.dev.devices;
    lp.gpu_layers = s->o.dev.gpu_layers;
    lp.gpu_mem = s->o.dev.gpu_mem;
    lp.tensor_split = s->o.dev.tensor_split;
    lp.profile = s->o.dev.profile;
    lp.chat_template = s->o.chat_template;
    if (bn_llm_load(s->o.model, &lp, &s->llm) != BN_OK) return cli_error("%s", bn_last_error());
    bn_llm_get_info(s->llm, &s->info);
    pthread_mutex_init(&s->mu, NULL);
    s->slots = calloc((size_t)s->o.parallel, sizeof *s->slots);
    if (!s->slots) return cli_error("out of memory");
    bn_ctx_params cp;
    bn_ctx_params_default(&cp);
    cp.n_ctx = s->o.n_ctx;
    cp.n_batch = s->o.n_batch;
    cp.n_threads = s->o.n_threads;
    cp.kv_f32 = s->o.kv_f32;
    for (int i = 0; i < s->o.parallel; i++) {
        serve_slot *sl = &s->slots[i];
        sl->srv = s;
        sl->id = i;
        pthread_cond_init(&sl->cv, NULL);
        s->n_slots = i + 1;
        if (bn_ctx_new(s->llm, &cp, &sl->ctx) != BN_OK)
            return cli_error("slot %d: %s", i, bn_last_error());
        if (pthread_create(&sl->thread, NULL, worker, sl) != 0)
            return cli_error("cannot start the thread of slot %d", i);
        sl->started = true;
    }
    s->n_ctx = bn_ctx_n_ctx(s->slots[0].ctx);
    const char *plan = bn_ctx_plan(s->slots[0].ctx);
    if (plan && *plan) fprintf(stderr, "%s%s", plan, plan[strlen(plan) - 1] == '\n' ? "" : "\n");
    return 0;
}

void serve_slots_stop(serve_server *s) {
    if (!s->slots) {
        bn_llm_free(s->llm);
        s->llm = NULL;
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    for (serve_job *j = s->q_head; j; j = j->next) atomic_store(&j->cancel, true);
    for (int i = 0; i < s->n_slots; i++) {
        if (s->slots[i].job) atomic_store(&s->slots[i].job->cancel, true);
        pthread_cond_signal(&s->slots[i].cv);
    }
    dispatch(s); /* drops the cancelled queue */
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_slots; i++) {
        serve_slot *sl = &s->slots[i];
        if (sl->started) pthread_join(sl->thread, NULL);
        bn_ctx_free(sl->ctx);
        pthread_cond_destroy(&sl->cv);
    }
    free(s->slots);
    s->slots = NULL;
    pthread_mutex_destroy(&s->mu);
    bn_llm_free(s->llm);
    s->llm = NULL;
}
