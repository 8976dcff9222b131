/* strbuf.c — growable NUL-terminated byte strings and string duplication helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/util.h"

void agx_strbuf_init(agx_strbuf *sb) {
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
}

void agx_strbuf_free(agx_strbuf *sb) {
    free(sb->data);
    agx_strbuf_init(sb);
}

static bool strbuf_reserve(agx_strbuf *sb, size_t extra) {
    if (extra > SIZE_MAX - sb->len - 1) return false;
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap) return true;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(sb->data, cap);
    if (!p) return false;
    sb->data = p;
    sb->cap = cap;
    return true;
}

bool agx_strbuf_append(agx_strbuf *sb, const void *data, size_t len) {
    if (!strbuf_reserve(sb, len)) return false;
    if (len) memcpy(sb->data + sb->len, data, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
    return true;
}

bool agx_strbuf_puts(agx_strbuf *sb, const char *s) { return agx_strbuf_append(sb, s, strlen(s)); }

bool agx_strbuf_putc(agx_strbuf *sb, char c) { return agx_strbuf_append(sb, &c, 1); }

bool agx_strbuf_printf(agx_strbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !strbuf_reserve(sb, (size_t)n)) {
        va_end(ap2);
        return false;
    }
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    sb->len += (size_t)n;
    return true;
}

char *agx_strbuf_take(agx_strbuf *sb) {
    if (!sb->data) {
        if (!strbuf_reserve(sb, 0)) return NULL;
        sb->data[0] = '\0';
    }
    char *p = sb->data;
    agx_strbuf_init(sb);
    return p;
}

char *agx_strdup(const char *s) { return s ? strdup(s) : NULL; }

char *agx_strndup(const char *s, size_t n) {
    if (!s) return NULL;
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *agx_sprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0) out = NULL;
    va_end(ap);
    return out;
}

bool agx_strbuf_shell_word(agx_strbuf *sb, const char *s, bool escape_controls) {
    bool plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr("-_./:=,+@%", *p);
    if (plain) return agx_strbuf_puts(sb, s);
    bool ok = agx_strbuf_putc(sb, '\'');
    for (const char *p = s; *p && ok; p++) {
        if (*p == '\'')
            ok = agx_strbuf_puts(sb, "'\\''");
        else if (escape_controls && ((unsigned char)*p < 0x20 || *p == 0x7f))
            ok = agx_strbuf_printf(sb, "\\x%02x", (unsigned char)*p);
        else
            ok = agx_strbuf_putc(sb, *p);
    }
    return ok && agx_strbuf_putc(sb, '\'');
}
