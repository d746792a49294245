/* serve.h - what the parts of `bitnet serve` share.
 *
 *   cmd_serve.c     options, start-up, signals, shutdown
 *   serve_http.c    libmicrohttpd: routing, bodies, auth, responses, SSE streaming,
 *                   noticing clients that go away
 *   serve_openai.c  the OpenAI JSON (cJSON): requests -> jobs, jobs -> responses and
 *                   chunks, error bodies
 *   serve_slots.c   the slots: one bn_ctx (own KV cache) and worker thread each, a
 *                   FIFO queue for requests beyond them, stop strings, cancellation
 *
 * Threads: libmicrohttpd runs one thread per connection; a request's thread
 * parses it into a job, queues it and waits on the job (or streams from it).
 * A slot's worker runs the job and appends its text to the job under the
 * job's lock. A job is shared by two owners (connection and worker), counted
 * in refs; whoever drops the last reference frees it. */
#ifndef BN_SERVE_H
#define BN_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/bitnet.h"
#include "cli_devices.h"

#define SERVE_MAX_STOP 4

typedef struct serve_opts {
    const char *model, *host, *api_key, *alias, *chat_template;
    cli_device_opts dev; /* --backend, --devices, ... */
    int port, parallel, n_ctx, n_threads, n_batch;
    int max_tokens;  /* default when a request gives none; -1: until the context is full */
    size_t max_body; /* bytes */
    int max_conns;   /* simultaneous connections (queued requests included) */
    bool kv_f32, verbose;
} serve_opts;

typedef enum serve_kind { SERVE_CHAT, SERVE_COMPLETION } serve_kind;

typedef struct serve_job {
    /* the request: written before the job is queued, read-only afterwards */
    serve_kind kind;
    bool stream, include_usage;
    int32_t *prompt;
    int n_prompt;
    bn_ctx_gen_params gen;
    char *stop[SERVE_MAX_STOP];
    int n_stop;
    char id[48];
    long long created;

    /* the result, under mu; cv is signalled on every change */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *text; /* text that is final (no stop string can still cut it), NUL-terminated */
    size_t text_len, text_cap;
    bool done, oom;
    const char *finish; /* "stop" or "length" once done */
    int n_generated, n_reused;
    int slot;
    bool failed;
    char error[512];

    atomic_bool cancel; /* the client went away or the server stops */
    atomic_int refs;

    /* the worker's own */
    char *raw; /* every byte generated; text is a prefix of it */
    size_t raw_len, raw_cap;
    bool stopped; /* a stop string was found */
    struct serve_job *next;
} serve_job;

typedef struct serve_server serve_server;

/* An error for the client: HTTP status and the OpenAI error fields. */
typedef struct serve_error {
    int http;
    const char *type; /* "invalid_request_error", "server_error", ... */
    const char *code; /* NULL or e.g. "model_not_found" */
    const char *param;
    char msg[512];
} serve_error;

void serve_error_set(serve_error *e, int http, const char *type, const char *code,
                     const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- serve_slots.c ---- */

struct serve_server {
    serve_opts o;
    bn_llm *llm;
    bn_llm_info info;
    char model_id[256];
    long long started;
    int n_ctx; /* positions per slot */

    pthread_mutex_t mu; /* the queue and the slots' assignments */
    struct serve_slot *slots;
    int n_slots;
    serve_job *q_head, *q_tail;
    int q_len;
    unsigned long clock;
    bool stopping;
    atomic_bool shutdown; /* seen by waiting connections */

    atomic_long n_requests, n_errors, n_tokens;
    struct MHD_Daemon *mhd;
};

/* Loads the model and starts the slots. */
int serve_slots_start(serve_server *s);
/* Cancels every job, stops the workers, frees the slots and the model. */
void serve_slots_stop(serve_server *s);
/* Queues a job (taking a reference for the worker). False when stopping. */
bool serve_submit(serve_server *s, serve_job *j);
/* Counts for /health. */
void serve_slots_status(serve_server *s, int *idle, int *queued);

serve_job *serve_job_new(void);
void serve_job_release(serve_job *j);
/* Copies the final text from *seen onward into a malloc'd string (NULL if
 * nothing new), advancing *seen; call with j->mu held. */
char *serve_job_take(serve_job *j, size_t *seen, size_t *len);

/* ---- serve_openai.c ---- */

/* Parses a request body into a job (chat or completion); NULL with e set. */
serve_job *serve_parse_request(serve_server *s, serve_kind kind, const char *body, size_t len,
                               serve_error *e);
/* Response bodies, malloc'd NUL-terminated JSON (NULL when out of memory). */
char *serve_json_response(const serve_server *s, const serve_job *j);
/* One SSE event "data: {...}\n\n": the opening (role) chunk, a text chunk, the
 * closing chunk with finish_reason, the usage chunk. */
char *serve_sse_chunk(const serve_server *s, const serve_job *j, const char *text, size_t len,
                      bool first, bool last);
char *serve_sse_usage(const serve_server *s, const serve_job *j);
char *serve_json_error(const serve_error *e);
char *serve_json_models(const serve_server *s);
char *serve_json_health(serve_server *s);

/* ---- serve_http.c ---- */

int serve_http_start(serve_server *s);
void serve_http_stop(serve_server *s);
/* The bound port (after start). */
int serve_http_port(serve_server *s);

#endif
