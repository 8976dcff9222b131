/* error.c — agx_error formatting and the status -> name / exit-code tables. */
#include "agx/error.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int exit_code;
} status_table[AGX_STATUS_COUNT] = {
    [AGX_OK] = {"ok", AGX_EXIT_OK},
    [AGX_ERR_LOAD] = {"load", AGX_EXIT_BACKEND},
    [AGX_ERR_INFERENCE] = {"inference", AGX_EXIT_BACKEND},
    [AGX_ERR_PARSE] = {"parse", AGX_EXIT_DATA},
    [AGX_ERR_CONFIG] = {"config", AGX_EXIT_CONFIG},
    [AGX_ERR_HEALTH_CHECK] = {"health_check", AGX_EXIT_BACKEND},
    [AGX_ERR_IO] = {"io", AGX_EXIT_IO},
    [AGX_ERR_JSON] = {"json", AGX_EXIT_DATA},
    [AGX_ERR_ENGINE] = {"engine", AGX_EXIT_INTERNAL},
    [AGX_ERR_TOKENIZER] = {"tokenizer", AGX_EXIT_BACKEND},
    [AGX_ERR_VALIDATION] = {"validation", AGX_EXIT_DATA},
    [AGX_ERR_USAGE] = {"usage", AGX_EXIT_USAGE},
    [AGX_ERR_NOMEM] = {"nomem", AGX_EXIT_INTERNAL},
    [AGX_ERR_UNAVAILABLE] = {"unavailable", AGX_EXIT_BACKEND},
};

agx_status agx_error_setv(agx_error *err, agx_status code, const char *fmt, va_list ap) {
    if (err) {
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
    }
    return code;
}

agx_status agx_error_set(agx_error *err, agx_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    agx_error_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

agx_status agx_error_prefix(agx_error *err, const char *fmt, ...) {
    if (!err) return AGX_OK;
    char prefix[AGX_ERROR_MSG_MAX];
    char old[AGX_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Build with strbuf-free concatenation that truncates explicitly. */
    size_t plen = strnlen(prefix, sizeof prefix);
    if (plen > sizeof err->message - 3) plen = sizeof err->message - 3;
    memcpy(err->message, prefix, plen);
    memcpy(err->message + plen, ": ", 2);
    size_t room = sizeof err->message - plen - 3;
    size_t olen = strnlen(old, room);
    memcpy(err->message + plen + 2, old, olen);
    err->message[plen + 2 + olen] = '\0';
    return err->code;
}

void agx_error_clear(agx_error *err) {
    if (err) {
        err->code = AGX_OK;
        err->message[0] = '\0';
    }
}

const char *agx_status_name(agx_status code) {
    if ((unsigned)code >= AGX_STATUS_COUNT) return "unknown";
    return status_table[code].name;
}

int agx_status_exit_code(agx_status code) {
    if ((unsigned)code >= AGX_STATUS_COUNT) return AGX_EXIT_INTERNAL;
    return status_table[code].exit_code;
}
