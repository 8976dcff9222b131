/* env.c — AGX_* environment lookups, monotonic time and stderr logging. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agx/util.h"

const char *agx_env(const char *name) {
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

agx_status agx_env_double(const char *name, double def, double *out, agx_error *err) {
    const char *v = agx_env(name);
    *out = def;
    if (!v) return AGX_OK;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end)
        return agx_error_set(err, AGX_ERR_CONFIG, "%s='%s' is not a number (unset it or give e.g. %g)",
                             name, v, def);
    *out = d;
    return AGX_OK;
}

agx_status agx_env_long(const char *name, long def, long *out, agx_error *err) {
    const char *v = agx_env(name);
    *out = def;
    if (!v) return AGX_OK;
    char *end;
    errno = 0;
    long l = strtol(v, &end, 10);
    if (errno || end == v || *end)
        return agx_error_set(err, AGX_ERR_CONFIG,
                             "%s='%s' is not an integer (unset it or give e.g. %ld)", name, v, def);
    *out = l;
    return AGX_OK;
}

char *agx_home_dir(void) {
    const char *h = agx_env("AGX_HOME");
    if (h) return agx_strdup(h);
    h = agx_env("HOME");
    return h ? agx_sprintf("%s/.agx", h) : agx_strdup("./.agx");
}

int64_t agx_time_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t agx_time_ms(void) { return agx_time_us() / 1000; }

static agx_log_level log_threshold(void) {
    const char *v = agx_env("AGX_LOG");
    if (!v) return AGX_LOG_WARN;
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(v, names[i]) == 0) return (agx_log_level)i;
    return AGX_LOG_WARN;
}

void agx_log(agx_log_level level, const char *fmt, ...) {
    if (level > log_threshold()) return;
    static const char *tags[] = {"error", "warning", "info", "debug"};
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "agx: %s: ", tags[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
