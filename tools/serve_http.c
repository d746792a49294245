/* serve_http.c - the HTTP side of `bitnet serve`, on libmicrohttpd with one
 * thread per connection (so a request's thread may block on its job).
 *
 * Routes: GET /health (no key needed), GET /v1/models, POST
 * /v1/chat/completions, POST /v1/completions. Bodies are collected up to
 * --max-body bytes (413 beyond). With --api-key every route but /health needs
 * "Authorization: Bearer KEY" (401). Unknown paths are 404, wrong methods 405,
 * all with an OpenAI-style error body.
 *
 * A non-streaming request waits for its job and answers with one JSON body.
 * A streaming one answers 200 with text/event-stream at once and a content
 * reader that blocks until the job has new text, sending each piece as a
 * chunk, then the closing chunk, the usage chunk if asked, and [DONE].
 * While waiting, the connection's socket is polled: a client that has gone
 * (EOF, hang-up) cancels its job, which frees the slot at the next token or
 * drops the job from the queue. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "cli.h"
#include "serve.h"

/* What one request collects while its body arrives. */
typedef struct req {
    char *body;
    size_t len, cap;
    bool too_large;
    char method[8], url[96]; /* for the -v log */
    unsigned status;
    double t0;
} req;

/* A streaming response: the job and the event being sent. */
typedef struct stream {
    serve_server *s;
    serve_job *j;
    int fd;
    size_t seen; /* bytes of the job's text sent */
    int phase;
    char *pend; /* the current event, pend_off bytes of it sent */
    size_t pend_len, pend_off;
    double last_check; /* when the socket was last polled */
} stream;

enum { PH_FIRST, PH_TEXT, PH_USAGE, PH_DONE, PH_END };

/* ---- noticing that a client went away ---- */

#ifndef POLLRDHUP
#define POLLRDHUP 0 /* Linux: the peer closed its end; else EOF shows as readable */
#endif

static bool client_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return true;
    if (p.revents & POLLIN) {
        char c;
        ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return false;
}

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Waits, with j->mu held, until the job has text past seen or is done. False
 * (and the job cancelled) when the client went away or the server stops;
 * that is checked at least every 100 ms (*last_check: when it last was). */
static bool wait_job(serve_server *s, serve_job *j, int fd, size_t seen, double *last_check) {
    for (;;) {
        double t = now_sec();
        if (t - *last_check >= 0.1) {
            *last_check = t;
            if (atomic_load(&s->shutdown) || client_gone(fd)) {
                atomic_store(&j->cancel, true);
                return false;
            }
        }
        if (j->done || j->text_len > seen) return true;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
}

/* ---- responses ---- */

/* The status of the response this thread queued last (one thread per connection). */
static _Thread_local unsigned queued_status;

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, char *body,
                                 const char *type) {
    queued_status = status;
    if (!body) {
        static char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                            "\"param\":null,\"code\":null}}";
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result ret = MHD_queue_response(c, 500, r);
        MHD_destroy_response(r);
        return ret;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(serve_server *s, struct MHD_Connection *c, const serve_error *e) {
    atomic_fetch_add(&s->n_errors, 1);
    if (e->http >= 500) fprintf(stderr, "serve: error %d: %s\n", e->http, e->msg);
    return send_body(c, (unsigned)e->http, serve_json_error(e), "application/json");
}

__attribute__((format(printf, 6, 7))) static enum MHD_Result
fail(serve_server *s, struct MHD_Connection *c, int http, const char *type, const char *code,
     const char *fmt, ...) {
    serve_error e;
    serve_error_set(&e, http, type, code, NULL, "%s", "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    return send_error(s, c, &e);
}

/* ---- streaming ---- */

/* Prepares the next event of the stream; false on a gone client or no memory. */
static bool next_event(stream *st) {
    serve_job *j = st->j;
    switch (st->phase) {
    case PH_FIRST:
        st->phase = PH_TEXT;
        if (j->kind == SERVE_CHAT) {
            st->pend = serve_sse_chunk(st->s, j, "", 0, true, false);
            break;
        }
        /* completions have no opening chunk */
        __attribute__((fallthrough));
    case PH_TEXT: {
        pthread_mutex_lock(&j->mu);
        if (!wait_job(st->s, j, st->fd, st->seen, &st->last_check)) {
            pthread_mutex_unlock(&j->mu);
            return false;
        }
        size_t len;
        char *text = serve_job_take(j, &st->seen, &len);
        bool done = j->done && !text;
        pthread_mutex_unlock(&j->mu);
        if (text) {
            st->pend = serve_sse_chunk(st->s, j, text, len, false, false);
            free(text);
        } else if (done && j->failed) {
            serve_error e;
            serve_error_set(&e, 500, "server_error", NULL, NULL, "%s", j->error);
            char *body = serve_json_error(&e);
            if (body && (st->pend = malloc(strlen(body) + 9)))
                sprintf(st->pend, "data: %s\n\n", body);
            free(body);
            st->phase = PH_DONE;
        } else if (done) {
            st->pend = serve_sse_chunk(st->s, j, "", 0, false, true);
            st->phase = j->include_usage ? PH_USAGE : PH_DONE;
        }
        break;
    }
    case PH_USAGE:
        st->pend = serve_sse_usage(st->s, j);
        st->phase = PH_DONE;
        break;
    case PH_DONE:
        st->pend = strdup("data: [DONE]\n\n");
        st->phase = PH_END;
        break;
    }
    if (!st->pend) return false;
    st->pend_len = strlen(st->pend);
    st->pend_off = 0;
    return true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream *st = cls;
    (void)pos;
    while (st->pend_off >= st->pend_len) {
        free(st->pend);
        st->pend = NULL;
        st->pend_len = st->pend_off = 0;
        if (st->phase == PH_END) return MHD_CONTENT_READER_END_OF_STREAM;
        if (!next_event(st)) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = st->pend_len - st->pend_off;
    if (n > max) n = max;
    memcpy(buf, st->pend + st->pend_off, n);
    st->pend_off += n;
    return (ssize_t)n;
}

/* Called when the response is done with, sent or not: a job still running
 * belongs to a client that went away. */
static void stream_free(void *cls) {
    stream *st = cls;
    atomic_store(&st->j->cancel, true);
    serve_job_release(st->j);
    free(st->pend);
    free(st);
}

/* ---- the completion endpoints ---- */

static int connection_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

static enum MHD_Result completion(serve_server *s, struct MHD_Connection *c, serve_kind kind,
                                  const req *r) {
    serve_error e;
    serve_job *j = serve_parse_request(s, kind, r->body ? r->body : "", r->len, &e);
    if (!j) return send_error(s, c, &e);
    if (!serve_submit(s, j)) {
        serve_job_release(j);
        return fail(s, c, 503, "server_error", NULL, "%s", "the server is shutting down");
    }
    int fd = connection_fd(c);
    if (j->stream) {
        stream *st = calloc(1, sizeof *st);
        struct MHD_Response *resp = st ? MHD_create_response_from_callback(
                                             MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free)
                                       : NULL;
        if (!resp) {
            free(st);
            atomic_store(&j->cancel, true);
            serve_job_release(j);
            return MHD_NO;
        }
        st->s = s;
        st->j = j; /* the stream now owns the connection's reference */
        st->fd = fd;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        queued_status = 200;
        enum MHD_Result ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    pthread_mutex_lock(&j->mu);
    bool ok = true;
    double last_check = 0;
    while (ok && !j->done) ok = wait_job(s, j, fd, j->text_len, &last_check);
    pthread_mutex_unlock(&j->mu);
    enum MHD_Result ret;
    if (!ok) {
        ret = MHD_NO; /* the client is gone: close the connection */
    } else if (j->failed) {
        serve_error err;
        serve_error_set(&err, 500, "server_error", NULL, NULL, "%s", j->error);
        ret = send_error(s, c, &err);
    } else {
        ret = send_body(c, 200, serve_json_response(s, j), "application/json");
    }
    serve_job_release(j);
    return ret;
}

/* ---- routing ---- */

static bool authorized(serve_server *s, struct MHD_Connection *c) {
    if (!s->o.api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    size_t a = strlen(h), b = strlen(s->o.api_key);
    unsigned diff = a != b;
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)h[i] ^ (unsigned char)s->o.api_key[i % b];
    return diff == 0;
}

static enum MHD_Result route(serve_server *s, struct MHD_Connection *c, const char *url,
                             const char *method, const req *r) {
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    static const struct {
        const char *path;
        bool post;
    } routes[] = {{"/health", false},
                  {"/v1/models", false},
                  {"/v1/chat/completions", true},
                  {"/v1/completions", true}};
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(url, routes[i].path)) k = i;
    if (k < 0)
        return fail(s, c, 404, "invalid_request_error", "not_found", "no route for '%.200s'", url);
    if (routes[k].post ? !post : !get)
        return fail(s, c, 405, "invalid_request_error", "method_not_allowed",
                    routes[k].post ? "%s needs POST" : "%s needs GET", routes[k].path);
    if (k != 0 && !authorized(s, c))
        return fail(s, c, 401, "invalid_request_error", "invalid_api_key", "%s",
                    "Invalid or missing API key: send 'Authorization: Bearer KEY'");
    if (r->too_large)
        return fail(s, c, 413, "invalid_request_error", "request_too_large",
                    "the body is larger than %zu bytes (--max-body)", s->o.max_body);
    switch (k) {
    case 0:
        return send_body(c, 200, serve_json_health(s), "application/json");
    case 1:
        return send_body(c, 200, serve_json_models(s), "application/json");
    case 2:
        return completion(s, c, SERVE_CHAT, r);
    default:
        return completion(s, c, SERVE_COMPLETION, r);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    serve_server *s = cls;
    (void)version;
    req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->url, sizeof r->url, "%s", url);
        r->t0 = now_sec();
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->len + n > s->o.max_body) {
            r->too_large = true;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1) cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b) return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&s->n_requests, 1);
    queued_status = 0;
    enum MHD_Result ret = route(s, c, url, method, r);
    r->status = queued_status;
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    serve_server *s = cls;
    (void)c;
    req *r = *con_cls;
    if (r && s->o.verbose)
        fprintf(stderr, "serve: %s %s: %u, %zu bytes in, %.3f s%s\n", r->method, r->url, r->status,
                r->len, now_sec() - r->t0,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed)");
    if (r) {
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
}

/* libmicrohttpd's messages (with -v): mostly clients that went away. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    serve_server *s = cls;
    if (!s->o.verbose) return;
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n') buf[--n] = 0;
    fprintf(stderr, "serve: %s\n", buf);
}

/* ---- start and stop ---- */

int serve_http_start(serve_server *s) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->o.port);
    int rc = getaddrinfo(s->o.host, port, &hints, &ai);
    if (rc != 0 || !ai)
        return cli_error("cannot resolve --host '%s': %s", s->o.host, gai_strerror(rc));
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_conns, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024), MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->mhd)
        return cli_error("cannot listen on %s:%d (in use, or not an address of this machine?)",
                         s->o.host, s->o.port);
    return 0;
}

int serve_http_port(serve_server *s) {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : s->o.port;
}

void serve_http_stop(serve_server *s) {
    atomic_store(&s->shutdown, true);
    if (s->mhd) MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
}
