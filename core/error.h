/* error.h - how every function in the engine reports failure.
 *
 * A function returns a bn_status and, when it fails, writes a one-line message
 * into the caller's bn_err. The CLI prints it as "error: <msg>". Messages name
 * what failed (file, key, tensor, byte offset) so a user can act on them. */
#ifndef BN_ERROR_H
#define BN_ERROR_H

#include "bitnet.h"

typedef struct bn_err {
    bn_status code;
    char msg[512];
} bn_err;

/* Fills e (which may be NULL) with code and a printf-style message; returns code. */
bn_status bn_fail(bn_err *e, bn_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (to add context while unwinding). */
void bn_err_prefix(bn_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
