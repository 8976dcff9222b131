/* error.h — status codes and the agx_error record every fallible function fills.
 * The kinds mirror the seed's ModelError variants; the message is written for a
 * person and says what failed and what to do. */
#ifndef AGX_ERROR_H
#define AGX_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum agx_status {
    AGX_OK = 0,
    AGX_ERR_LOAD,          /* model file missing/unreadable/corrupt */
    AGX_ERR_INFERENCE,     /* generation failed */
    AGX_ERR_PARSE,         /* model output could not be turned into a plan */
    AGX_ERR_CONFIG,        /* bad AGX_* setting, unknown backend, unavailable feature */
    AGX_ERR_HEALTH_CHECK,  /* backend not healthy */
    AGX_ERR_IO,            /* file system / network I/O */
    AGX_ERR_JSON,          /* malformed JSON (config files, buffers, replies) */
    AGX_ERR_ENGINE,        /* native engine internal failure */
    AGX_ERR_TOKENIZER,     /* tokenizer load/encode/decode */
    AGX_ERR_VALIDATION,    /* plan failed validation */
    AGX_ERR_USAGE,         /* bad command-line usage */
    AGX_ERR_NOMEM,         /* allocation failed */
    AGX_ERR_UNAVAILABLE,   /* backend/server unreachable, feature not built */
    AGX_STATUS_COUNT
} agx_status;

#define AGX_ERROR_MSG_MAX 1024

typedef struct agx_error {
    agx_status code;
    char message[AGX_ERROR_MSG_MAX];
} agx_error;

/* Records code + formatted message in err (err may be NULL) and returns code. */
agx_status agx_error_set(agx_error *err, agx_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
agx_status agx_error_setv(agx_error *err, agx_status code, const char *fmt, va_list ap);
/* Prefixes the existing message with more context ("loading X: <old message>"). */
agx_status agx_error_prefix(agx_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void agx_error_clear(agx_error *err);

/* Stable lower-case name: "load", "inference", "parse", ... */
const char *agx_status_name(agx_status code);

/* Documented process exit codes (README "Exit codes"). */
enum {
    AGX_EXIT_OK = 0,
    AGX_EXIT_INTERNAL = 1,    /* bug, out of memory, engine failure */
    AGX_EXIT_USAGE = 2,       /* bad flags or arguments */
    AGX_EXIT_CONFIG = 3,      /* bad AGX_* configuration, feature not built */
    AGX_EXIT_DATA = 4,        /* invalid plan, unparseable model output, corrupt file, no tool matches */
    AGX_EXIT_BACKEND = 5,     /* backend unavailable/unhealthy, model failed to load or generate */
    AGX_EXIT_IO = 6           /* file system error */
};
int agx_status_exit_code(agx_status code);

#ifdef __cplusplus
}
#endif
#endif
