/* input.c — the summary of data piped into agx: byte and line counts (bounded
 * reading), binary detection, and a short excerpt that is safe to put in a
 * model prompt or on a terminal (valid UTF-8, cut at a character boundary,
 * control/C1/bidi characters escaped). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agx/input.h"
#include "agx/util.h"
#include "plan/plan_internal.h"

#define INPUT_MAX_BYTES ((size_t)64 << 20) /* stop counting after this much */
#define INPUT_SAMPLE_BYTES ((size_t)64 << 10) /* binary detection and excerpt look here */
#define EXCERPT_MAX_BYTES 1024
#define EXCERPT_MAX_LINES 10

/* Code points that must not reach a terminal or a prompt raw: C0/C1 controls,
 * DEL, and the bidirectional overrides ("Trojan Source"). */
static bool unsafe_cp(unsigned cp) {
    return (cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7f && cp <= 0x9f) ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
           cp == 0x200f || cp == 0x061c;
}

static unsigned decode(const unsigned char *p, size_t l) {
    if (l == 1) return p[0];
    unsigned cp = p[0] & (l == 2 ? 0x1F : l == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < l; i++) cp = (cp << 6) | (p[i] & 0x3F);
    return cp;
}

/* Binary when there is a NUL, or more than 10% of the sample is not text. */
static bool looks_binary(const unsigned char *p, size_t n) {
    size_t bad = 0, i = 0;
    while (i < n) {
        if (p[i] == 0) return true;
        size_t l = agx_plan_utf8_seq_len(p + i, n - i);
        if (!l) {
            if (n - i < 4 && n == INPUT_SAMPLE_BYTES) break; /* a character cut by the sample end */
            bad++;
            i++;
            continue;
        }
        unsigned cp = decode(p + i, l);
        if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r' && cp != '\f' && cp != '\v' &&
            cp != 0x1b && cp != '\b')
            bad++;
        i += l;
    }
    return bad * 10 > n;
}

static char *make_excerpt(const unsigned char *p, size_t n) {
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    size_t lines = 0, i = 0;
    char piece[16];
    while (i < n && lines < EXCERPT_MAX_LINES) {
        size_t l = agx_plan_utf8_seq_len(p + i, n - i);
        size_t plen;
        if (!l) {
            plen = (size_t)snprintf(piece, sizeof piece, "\\x%02x", p[i]);
            l = 1;
        } else {
            unsigned cp = decode(p + i, l);
            if (cp == '\n') {
                lines++;
                if (lines == EXCERPT_MAX_LINES || i + 1 == n) break;
            }
            if (!unsafe_cp(cp)) {
                memcpy(piece, p + i, l);
                plen = l;
            } else if (cp == '\r' && i + 1 < n && p[i + 1] == '\n') {
                i++; /* CRLF line ends read as plain newlines */
                continue;
            } else if (cp == '\r') {
                plen = (size_t)snprintf(piece, sizeof piece, "\\r");
            } else if (cp < 0x100) {
                plen = (size_t)snprintf(piece, sizeof piece, "\\x%02x", cp);
            } else {
                plen = (size_t)snprintf(piece, sizeof piece, "\\u%04x", cp);
            }
        }
        if (sb.len + plen > EXCERPT_MAX_BYTES) break; /* whole characters only */
        if (!agx_strbuf_append(&sb, piece, plen)) {
            agx_strbuf_free(&sb);
            return NULL;
        }
        i += l;
    }
    return agx_plan_sb_take(&sb);
}

static size_t count_newlines(const char *p, size_t n) {
    size_t c = 0;
    const char *end = p + n;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
        c++;
        p++;
    }
    return c;
}

static agx_status finish(agx_input_summary *out, const unsigned char *sample, size_t sample_len,
                         bool saw_nul, agx_error *err) {
    out->is_binary = saw_nul || looks_binary(sample, sample_len);
    out->excerpt = out->is_binary ? agx_strdup("") : make_excerpt(sample, sample_len);
    if (!out->excerpt) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory summarizing input");
    return AGX_OK;
}

agx_status agx_input_summarize(const char *data, size_t len, agx_input_summary *out,
                               agx_error *err) {
    memset(out, 0, sizeof *out);
    if (!data) len = 0;
    out->bytes = len;
    out->lines = len ? count_newlines(data, len) + (data[len - 1] != '\n') : 0;
    size_t sample = len < INPUT_SAMPLE_BYTES ? len : INPUT_SAMPLE_BYTES;
    bool nul = len && memchr(data, 0, len) != NULL;
    return finish(out, (const unsigned char *)(data ? data : ""), sample, nul, err);
}

agx_status agx_input_summarize_fd(int fd, agx_input_summary *out, agx_error *err) {
    memset(out, 0, sizeof *out);
    unsigned char *sample = malloc(INPUT_SAMPLE_BYTES);
    char *chunk = malloc(INPUT_SAMPLE_BYTES);
    if (!sample || !chunk) {
        free(sample);
        free(chunk);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory reading input");
    }
    size_t sample_len = 0, total = 0, lines = 0;
    bool nul = false;
    char last = '\n';
    agx_status st = AGX_OK;
    for (;;) {
        if (total >= INPUT_MAX_BYTES) {
            /* Do not drain an endless pipe: say the counts are lower bounds. */
            out->truncated = true;
            break;
        }
        size_t want = INPUT_SAMPLE_BYTES;
        if (want > INPUT_MAX_BYTES - total) want = INPUT_MAX_BYTES - total;
        ssize_t r = read(fd, chunk, want);
        if (r < 0) {
            if (errno == EINTR) continue;
            st = agx_error_set(err, AGX_ERR_IO, "reading input (fd %d): %s", fd, strerror(errno));
            break;
        }
        if (r == 0) break;
        size_t n = (size_t)r;
        if (sample_len < INPUT_SAMPLE_BYTES) {
            size_t take = INPUT_SAMPLE_BYTES - sample_len < n ? INPUT_SAMPLE_BYTES - sample_len : n;
            memcpy(sample + sample_len, chunk, take);
            sample_len += take;
        }
        if (!nul && memchr(chunk, 0, n)) nul = true;
        lines += count_newlines(chunk, n);
        last = chunk[n - 1];
        total += n;
    }
    free(chunk);
    if (st == AGX_OK) {
        out->bytes = total;
        out->lines = lines + (total && last != '\n' && !out->truncated);
        st = finish(out, sample, sample_len, nul, err);
    }
    free(sample);
    if (st != AGX_OK) agx_input_summary_free(out);
    return st;
}

void agx_input_summary_free(agx_input_summary *s) {
    if (!s) return;
    free(s->excerpt);
    s->excerpt = NULL;
}

char *agx_input_summary_describe(const agx_input_summary *s) {
    if (!s) return agx_strdup("Input: none.");
    if (s->bytes == 0) return agx_strdup("Input: empty (0 bytes).");
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    if (s->truncated)
        agx_strbuf_printf(&sb, "Input: more than %zu bytes (stopped counting), at least %zu lines, %s.",
                          s->bytes, s->lines, s->is_binary ? "binary" : "text");
    else
        agx_strbuf_printf(&sb, "Input: %zu bytes, %zu line%s, %s.", s->bytes, s->lines,
                          s->lines == 1 ? "" : "s", s->is_binary ? "binary" : "text");
    if (s->is_binary)
        agx_strbuf_puts(&sb, " No excerpt (binary data).");
    else if (s->excerpt && *s->excerpt)
        agx_strbuf_printf(&sb, " First lines:\n%s", s->excerpt);
    return agx_plan_sb_take(&sb);
}
