/* bitnet.h - the public interface of libbitnet.
 *
 * Everything an application needs to run a ternary LLM: status codes now;
 * loading a model, contexts, tokenizing, evaluating and sampling come with the
 * embeddable-library work. Every function returns a bn_status; on failure a
 * message naming the file, tensor or device concerned is filled in. */
#ifndef BITNET_H
#define BITNET_H

#ifdef __cplusplus
extern "C" {
#endif

#define BITNET_VERSION "0.1.0"

typedef enum bn_status {
    BN_OK = 0,
    BN_ERR_IO,          /* a file could not be opened, read, mapped or written */
    BN_ERR_FORMAT,      /* a file is malformed: truncated, out-of-range size or offset, bad magic */
    BN_ERR_UNSUPPORTED, /* well-formed but not handled: unknown tensor type, architecture, ... */
    BN_ERR_OOM,         /* an allocation failed */
    BN_ERR_DEVICE,      /* a device failed or is missing */
    BN_ERR_INVALID_ARG, /* the caller passed something invalid (shapes, options, ids) */
    BN_ERR_INTERNAL,    /* a bug: an invariant did not hold */
} bn_status;

/* A short constant name for a status ("format error", ...). */
const char *bn_status_str(bn_status s);

#ifdef __cplusplus
}
#endif
#endif
