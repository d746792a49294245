/* error.c - status names and error-message formatting (see error.h). */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *bn_status_str(bn_status s) {
    switch (s) {
    case BN_OK:
        return "ok";
    case BN_ERR_IO:
        return "i/o error";
    case BN_ERR_FORMAT:
        return "format error";
    case BN_ERR_UNSUPPORTED:
        return "unsupported";
    case BN_ERR_OOM:
        return "out of memory";
    case BN_ERR_DEVICE:
        return "device error";
    case BN_ERR_INVALID_ARG:
        return "invalid argument";
    case BN_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown status";
}

bn_status bn_fail(bn_err *e, bn_status code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

void bn_err_prefix(bn_err *e, const char *fmt, ...) {
    if (!e) return;
    char buf[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t used = strlen(buf);
    if (used + 2 < sizeof buf) {
        memcpy(buf + used, ": ", 2);
        used += 2;
        size_t rest = strlen(e->msg);
        if (rest > sizeof buf - 1 - used) rest = sizeof buf - 1 - used;
        memcpy(buf + used, e->msg, rest);
        used += rest;
    }
    buf[used] = 0;
    memcpy(e->msg, buf, used + 1);
}
