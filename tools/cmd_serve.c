/* cmd_serve.c - `bitnet serve`: an OpenAI-compatible HTTP server on a model
 * (see serve.h for how it is put together). This file parses the options,
 * starts the slots and the listener, and shuts both down on SIGINT/SIGTERM. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/os.h"
#include "cli.h"
#include "cli_context.h"
#include "cli_devices.h"
#ifdef BITNET_HAVE_SERVER
#include "serve.h"
#endif

static void serve_usage(FILE *o) {
    fprintf(
        o, "usage: bitnet serve -m FILE [options]\n\n"
           "Serves the model over HTTP with the OpenAI API: POST /v1/chat/completions,\n"
           "POST /v1/completions (both with \"stream\": true as server-sent events),\n"
           "GET /v1/models and GET /health. Requests beyond the slots wait in a queue.\n\n"
           "options:\n"
           "  -m, --model FILE        model\n"
           "  --host ADDR             address to listen on (default 127.0.0.1, this machine only;\n"
           "                          0.0.0.0 or :: for every interface)\n"
           "  --port N                port (default 8080; 0: a free port, printed at start)\n"
           "  -np, --parallel N       slots: requests generated at once, each with its own KV\n"
           "                          cache (default 1)\n"
           "  -c, --ctx-size N        context of each slot (default: the model's, at most 4096)\n"
           "  -t, --threads N         threads of each slot (default: physical cores / slots)\n"
           "  -b, --batch-size N      prompt tokens per step (default 64)\n"
           "  --kv f16|f32            KV cache type (default f16)\n"
           "  -n, --max-tokens N      max_tokens of requests that give none (default -1: until\n"
           "                          the context is full)\n"
           "  --api-key KEY           require 'Authorization: Bearer KEY' (except on /health);\n"
           "                          the environment variable BITNET_API_KEY does the same\n"
           "  --alias NAME            the model's id in the API (default: the file name)\n"
           "  --chat-template NAME    bitnet, bitnet-old or llama3 (default: from the model)\n"
           "  --max-body BYTES        largest request body (default 8388608)\n"
           "  --max-conns N           simultaneous connections, queued ones included (default 64)\n"
           "  -v, --verbose           log every request, and libmicrohttpd's messages\n"
           "  -h, --help              this help\n"
           "Every slot runs on the same devices.\n");
    cli_device_help(o);
}

#ifndef BITNET_HAVE_SERVER
int cmd_serve(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            serve_usage(stdout);
            return 0;
        }
    return cli_error("this bitnet was built without the server: install libmicrohttpd-dev and "
                     "libcjson-dev (scripts/deps.sh) and build again");
}
#else

static int parse(int argc, char **argv, serve_opts *o) {
    const char *cmd = "serve";
    cli_context_opts context;
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->parallel = 1;
    o->max_tokens = -1;
    o->max_body = 8u << 20;
    o->max_conns = 64;
    o->api_key = getenv("BITNET_API_KEY");
    cli_context_opts_init(&context);
    cli_device_opts_init(&o->dev);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long n;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            serve_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = true;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(o->model = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--host")) {
            if (!(o->host = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--port")) {
            if (!cli_int_value(cmd, argc, argv, &i, 0, 65535, &n)) return EXIT_USAGE;
            o->port = (int)n;
        } else if (!strcmp(a, "-np") || !strcmp(a, "--parallel")) {
            if (!cli_int_value(cmd, argc, argv, &i, 1, 256, &n)) return EXIT_USAGE;
            o->parallel = (int)n;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) {
            if (!cli_int_value(cmd, argc, argv, &i, -1, 1 << 24, &n)) return EXIT_USAGE;
            o->max_tokens = (int)n;
        } else if (!strcmp(a, "--api-key")) {
            if (!(o->api_key = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--alias")) {
            if (!(o->alias = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--chat-template")) {
            if (!(o->chat_template = cli_value(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(a, "--max-body")) {
            if (!cli_int_value(cmd, argc, argv, &i, 16, 1ll << 32, &n)) return EXIT_USAGE;
            o->max_body = (size_t)n;
        } else if (!strcmp(a, "--max-conns")) {
            if (!cli_int_value(cmd, argc, argv, &i, 1, 4096, &n)) return EXIT_USAGE;
            o->max_conns = (int)n;
        } else if ((r = cli_context_option(cmd, argc, argv, &i, &context)) != 0 ||
                   (r = cli_device_option(cmd, argc, argv, &i, &o->dev)) != 0) {
            if (r != 1) return r;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        }
    }
    o->n_ctx = context.n_ctx;
    o->n_threads = context.n_threads;
    o->n_batch = context.n_batch;
    o->kv_f32 = context.kv_type == BN_TYPE_F32;
    if (!o->model) return cli_usage_error(cmd, "-m FILE is required");
    if (o->api_key && !*o->api_key) return cli_usage_error(cmd, "--api-key must not be empty");
    if (o->alias && (!*o->alias || strlen(o->alias) > 200))
        return cli_usage_error(cmd, "--alias must be 1 to 200 characters");
    if (o->max_conns < o->parallel) o->max_conns = o->parallel;
    if (!o->n_threads) {
        o->n_threads = bn_cpu_count_physical() / o->parallel;
        if (o->n_threads < 1) o->n_threads = 1;
    }
    return -1;
}

/* The model's id: --alias, else the file name without .gguf. */
static void model_id(const serve_opts *o, char *out, size_t cap) {
    if (o->alias) {
        snprintf(out, cap, "%s", o->alias);
        return;
    }
    const char *b = strrchr(o->model, '/');
    b = b ? b + 1 : o->model;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".gguf")) n -= 5;
    if (n > 200) n = 200;
    snprintf(out, cap, "%.*s", (int)n, b);
}

int cmd_serve(int argc, char **argv) {
    static serve_server s; /* large and long-lived */
    memset(&s, 0, sizeof s);
    int rc = parse(argc, argv, &s.o);
    if (rc >= 0) return rc;
    model_id(&s.o, s.model_id, sizeof s.model_id);
    s.started = (long long)time(NULL);

    /* SIGINT/SIGTERM are taken by sigwait below; every thread inherits the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    double t0 = bn_time_sec();
    if ((rc = serve_slots_start(&s))) {
        serve_slots_stop(&s);
        return rc;
    }
    if ((rc = serve_http_start(&s))) {
        serve_slots_stop(&s);
        return rc;
    }
    int port = serve_http_port(&s);
    fprintf(stderr,
            "bitnet serve: model '%s' (%s, %s, %.1f MB), %d slot%s of %d tokens, %d thread%s "
            "each, loaded in %.2f s%s\n",
            s.model_id, s.info.arch, s.info.weight_type, (double)s.info.n_bytes / 1e6, s.n_slots,
            s.n_slots == 1 ? "" : "s", s.n_ctx, s.o.n_threads, s.o.n_threads == 1 ? "" : "s",
            bn_time_sec() - t0, s.o.api_key ? ", API key required" : "");
    const char *h = s.o.host;
    bool v6 = strchr(h, ':') != NULL;
    printf("listening on http://%s%s%s:%d\n", v6 ? "[" : "", h, v6 ? "]" : "", port);
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "bitnet serve: %s, shutting down (%ld requests, %ld errors, %ld tokens)\n",
            sig == SIGINT ? "interrupted" : "terminated", atomic_load(&s.n_requests),
            atomic_load(&s.n_errors), atomic_load(&s.n_tokens));
    serve_http_stop(&s);
    serve_slots_stop(&s);
    return 0;
}
#endif
