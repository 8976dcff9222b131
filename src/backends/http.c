/* http.c — libcurl wrapper for the remote backends: JSON requests with a total
 * timeout, a bounded reply buffer, 429/503 retries (exponential backoff capped,
 * Retry-After honoured) and curl failures mapped to agx errors that say what
 * failed and what to do. Secrets (the bearer token, URL credentials) never reach
 * a message: the token is only ever put in a request header and is scrubbed
 * from any body excerpt we quote. */
#include "backends/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "agx/util.h"

#define EXCERPT_MAX 200

/* curl_global_init is the one piece of process-wide state; done once. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- options ---- */

agx_status agx_http_options_from_env(agx_http_options *opt, long timeout_secs, agx_error *err) {
    long max_bytes, retries, backoff, max_delay;
    agx_status st;
    if ((st = agx_env_long("AGX_HTTP_MAX_RESPONSE_BYTES", (long)AGX_HTTP_DEFAULT_MAX_RESPONSE,
                           &max_bytes, err)) ||
        (st = agx_env_long("AGX_HTTP_RETRIES", AGX_HTTP_DEFAULT_RETRIES, &retries, err)) ||
        (st = agx_env_long("AGX_HTTP_BACKOFF_MS", AGX_HTTP_DEFAULT_BACKOFF_MS, &backoff, err)) ||
        (st =
             agx_env_long("AGX_HTTP_MAX_DELAY_MS", AGX_HTTP_DEFAULT_MAX_DELAY_MS, &max_delay, err)))
        return st;
    if (max_bytes < 1024)
        return agx_error_set(err, AGX_ERR_CONFIG,
                             "AGX_HTTP_MAX_RESPONSE_BYTES=%ld is too small (at least 1024)",
                             max_bytes);
    if (retries < 0 || retries > 10)
        return agx_error_set(err, AGX_ERR_CONFIG, "AGX_HTTP_RETRIES=%ld must be 0..10", retries);
    if (backoff < 0 || backoff > 3600000 || max_delay < 0 || max_delay > 3600000)
        return agx_error_set(err, AGX_ERR_CONFIG,
                             "AGX_HTTP_BACKOFF_MS=%ld and AGX_HTTP_MAX_DELAY_MS=%ld must be "
                             "0..3600000 (one hour)",
                             backoff, max_delay);
    if (timeout_secs <= 0 || timeout_secs > 86400)
        return agx_error_set(err, AGX_ERR_CONFIG, "timeout of %ld s is out of range (1..86400)",
                             timeout_secs);
    opt->timeout_ms = timeout_secs * 1000;
    opt->max_response_bytes = (size_t)max_bytes;
    opt->max_retries = (int)retries;
    opt->backoff_ms = backoff;
    opt->max_delay_ms = max_delay;
    opt->timeout_var = NULL;
    return AGX_OK;
}

/* ---- small helpers ---- */

char *agx_http_redact_url(const char *url) {
    if (!url) return agx_strdup("(null)");
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@') at = p;
    if (!at) return agx_strdup(url);
    return agx_sprintf("%.*s%s", (int)(auth - url), url, at + 1);
}

long agx_http_parse_retry_after(const char *v) {
    if (!v) return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v) return -1;
    if (isdigit((unsigned char)*v)) {
        char *end;
        errno = 0;
        unsigned long long secs = strtoull(v, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end) return -1;
        if (errno || secs > 86400ULL * 365) return 86400L * 1000; /* absurd: clamp, caller caps */
        return (long)secs * 1000;
    }
    time_t when = curl_getdate(v, NULL);
    if (when == (time_t)-1) return -1;
    time_t now = time(NULL);
    if (when <= now) return 0;
    double d = difftime(when, now);
    return d > 86400.0 ? 86400L * 1000 : (long)d * 1000;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Replaces every occurrence of secret in s (in place) with '*'. */
static void scrub_secret(char *s, const char *secret) {
    if (!s || !secret || strlen(secret) < 4) return;
    size_t n = strlen(secret);
    for (char *p = strstr(s, secret); p; p = strstr(p + n, secret))
        memset(p, '*', n);
}

char *agx_http_excerpt(const char *text, size_t len, size_t max, const char *secret) {
    char *src = agx_strndup(text ? text : "", text ? len : 0);
    if (!src) return NULL;
    size_t n = strlen(src); /* an embedded NUL ends the excerpt */
    scrub_secret(src, secret);
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    size_t i = 0;
    bool space = false, ok = true;
    while (ok && i < n && sb.len < max) {
        unsigned char c = (unsigned char)src[i];
        if (c <= 0x20 || c == 0x7f) { /* runs of blanks and controls: one space */
            if (!space && sb.len) ok = agx_strbuf_putc(&sb, ' ');
            space = true;
            i++;
            continue;
        }
        space = false;
        utf8proc_int32_t cp;
        utf8proc_ssize_t clen =
            utf8proc_iterate((const utf8proc_uint8_t *)src + i, (utf8proc_ssize_t)(n - i), &cp);
        if (clen <= 0) { /* invalid UTF-8: show a replacement, stay printable */
            ok = agx_strbuf_puts(&sb, "?");
            i++;
            continue;
        }
        ok = agx_strbuf_append(&sb, src + i, (size_t)clen);
        i += (size_t)clen;
    }
    if (ok && i < n) agx_strbuf_puts(&sb, "...");
    explicit_bzero(src, n);
    free(src);
    /* nothing appended: agx_strbuf_take would hand out an unterminated buffer */
    if (!sb.data) return agx_strdup("");
    char *out = agx_strbuf_take(&sb);
    return out ? out : agx_strdup("");
}

/* The excerpt of an error reply: its "error"/"error.message"/"message"/"detail"
 * text when the body is JSON, else the raw body. Caller frees. */
static char *body_excerpt(const char *body, size_t len, const char *secret) {
    if (!body || !len) return agx_strdup("(empty body)");
    json_t *j = json_loadb(body, len, 0, NULL);
    if (j) {
        json_t *e = json_object_get(j, "error");
        if (json_is_object(e)) e = json_object_get(e, "message");
        if (!json_is_string(e)) e = json_object_get(j, "message");
        if (!json_is_string(e)) e = json_object_get(j, "detail");
        char *out = json_is_string(e) ? agx_http_excerpt(json_string_value(e),
                                                         json_string_length(e), EXCERPT_MAX, secret)
                                      : NULL;
        json_decref(j);
        if (out) return out;
    }
    return agx_http_excerpt(body, len, EXCERPT_MAX, secret);
}

/* ---- one transfer ---- */

typedef struct sink {
    agx_strbuf buf;
    size_t limit;
    bool overflow;
    long retry_after_ms;
} sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp) {
    sink *s = userp;
    size_t n = size * nmemb;
    if (s->buf.len + n > s->limit) {
        s->overflow = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (!agx_strbuf_append(&s->buf, data, n)) return 0;
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp) {
    sink *s = userp;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && n < 256 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char value[256];
        memcpy(value, data + sizeof name - 1, n - (sizeof name - 1));
        value[n - (sizeof name - 1)] = '\0';
        s->retry_after_ms = agx_http_parse_retry_after(value);
    } else if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        s->retry_after_ms = -1; /* a new status line (e.g. after 100-continue) */
    }
    return n;
}

/* What a curl failure means for the user, as data: kind + advice. */
typedef struct curl_failure {
    CURLcode code;
    agx_http_failure kind;
    agx_status status;
    const char *what;
    const char *advice;
} curl_failure;

static const curl_failure curl_failures[] = {
    {CURLE_COULDNT_CONNECT, AGX_HTTP_FAIL_REFUSED, AGX_ERR_UNAVAILABLE, "connection refused",
     "nothing is listening on that host and port"},
    {CURLE_COULDNT_RESOLVE_HOST, AGX_HTTP_FAIL_DNS, AGX_ERR_UNAVAILABLE, "DNS lookup failed",
     "check the host name in the URL"},
    {CURLE_COULDNT_RESOLVE_PROXY, AGX_HTTP_FAIL_DNS, AGX_ERR_UNAVAILABLE, "proxy DNS lookup failed",
     "check the proxy settings (http_proxy, https_proxy, no_proxy)"},
    {CURLE_SSL_CONNECT_ERROR, AGX_HTTP_FAIL_TLS, AGX_ERR_UNAVAILABLE, "TLS handshake failed",
     "use http:// for a plain-HTTP server, https:// only when it speaks TLS"},
    {CURLE_PEER_FAILED_VERIFICATION, AGX_HTTP_FAIL_TLS, AGX_ERR_UNAVAILABLE,
     "TLS certificate not trusted",
     "the server's certificate does not verify; fix the certificate or the host name"},
    {CURLE_SSL_CACERT_BADFILE, AGX_HTTP_FAIL_TLS, AGX_ERR_UNAVAILABLE, "TLS CA bundle unreadable",
     "check the system CA certificates"},
    {CURLE_SSL_CERTPROBLEM, AGX_HTTP_FAIL_TLS, AGX_ERR_UNAVAILABLE,
     "TLS client certificate problem", "check the TLS setup"},
    {CURLE_SSL_CIPHER, AGX_HTTP_FAIL_TLS, AGX_ERR_UNAVAILABLE, "TLS cipher mismatch",
     "check the TLS setup"},
    {CURLE_USE_SSL_FAILED, AGX_HTTP_FAIL_TLS, AGX_ERR_UNAVAILABLE, "TLS required but failed",
     "check the TLS setup"},
    {CURLE_OPERATION_TIMEDOUT, AGX_HTTP_FAIL_TIMEOUT, AGX_ERR_UNAVAILABLE, "timed out",
     NULL /* built below */},
    {CURLE_PARTIAL_FILE, AGX_HTTP_FAIL_TRANSFER, AGX_ERR_IO,
     "reply cut short (fewer bytes than announced)",
     "the server or a proxy dropped the connection; try again"},
    {CURLE_RECV_ERROR, AGX_HTTP_FAIL_TRANSFER, AGX_ERR_IO, "error while receiving the reply",
     "the connection broke; try again"},
    {CURLE_SEND_ERROR, AGX_HTTP_FAIL_TRANSFER, AGX_ERR_IO, "error while sending the request",
     "the connection broke; try again"},
    {CURLE_GOT_NOTHING, AGX_HTTP_FAIL_TRANSFER, AGX_ERR_IO,
     "server closed the connection without replying", "check the server's logs"},
    {CURLE_WEIRD_SERVER_REPLY, AGX_HTTP_FAIL_TRANSFER, AGX_ERR_IO, "reply is not HTTP",
     "is this the right port?"},
    {CURLE_UNSUPPORTED_PROTOCOL, AGX_HTTP_FAIL_OTHER, AGX_ERR_CONFIG, "unsupported URL scheme",
     "use an http:// or https:// URL"},
    {CURLE_URL_MALFORMAT, AGX_HTTP_FAIL_OTHER, AGX_ERR_CONFIG, "malformed URL",
     "give a URL like http://127.0.0.1:11434"},
};

static agx_status transport_error(const agx_http_options *opt, const agx_http_request *req,
                                  const char *url, CURLcode rc, const sink *s, const char *detail,
                                  agx_http_response *resp, agx_error *err) {
    resp->failure = AGX_HTTP_FAIL_OTHER;
    for (size_t i = 0; i < sizeof curl_failures / sizeof *curl_failures; i++)
        if (curl_failures[i].code == rc) resp->failure = curl_failures[i].kind;
    if (s->overflow || rc == CURLE_FILESIZE_EXCEEDED) resp->failure = AGX_HTTP_FAIL_TRANSFER;
    if (s->overflow || rc == CURLE_FILESIZE_EXCEEDED)
        return agx_error_set(err, AGX_ERR_IO,
                             "%s: reply from %s is larger than %zu bytes; refusing it "
                             "(raise AGX_HTTP_MAX_RESPONSE_BYTES if this is expected)",
                             req->what, url, opt->max_response_bytes);
    if (rc == CURLE_WRITE_ERROR || rc == CURLE_OUT_OF_MEMORY)
        return agx_error_set(err, AGX_ERR_NOMEM, "%s: out of memory reading the reply from %s",
                             req->what, url);
    const curl_failure *f = NULL;
    for (size_t i = 0; i < sizeof curl_failures / sizeof *curl_failures; i++)
        if (curl_failures[i].code == rc) f = &curl_failures[i];
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE,
                             "%s: %s timed out after %ld s without a complete reply; check the "
                             "server, or raise %s",
                             req->what, url, opt->timeout_ms / 1000,
                             opt->timeout_var ? opt->timeout_var : "the timeout");
    if (f)
        return agx_error_set(err, f->status, "%s: %s: %s (%s); %s", req->what, url, f->what,
                             detail && *detail ? detail : curl_easy_strerror(rc), f->advice);
    return agx_error_set(err, AGX_ERR_UNAVAILABLE, "%s: request to %s failed: %s", req->what, url,
                         detail && *detail ? detail : curl_easy_strerror(rc));
}

static agx_status status_error(const agx_http_request *req, const char *url, long code,
                               const char *body, size_t body_len, agx_error *err) {
    char *ex = body_excerpt(body, body_len, req->bearer_token);
    agx_status st = code >= 500 || code == 429     ? AGX_ERR_UNAVAILABLE
                    : (code == 401 || code == 403) ? AGX_ERR_CONFIG
                                                   : AGX_ERR_INFERENCE;
    const char *hint = code == 401 || code == 403 ? " (check the API key)"
                       : code == 429              ? " (rate limited; retries exhausted)"
                       : code == 503              ? " (server busy or loading; retries exhausted)"
                                                  : "";
    agx_error_set(err, st, "%s: HTTP %ld from %s%s: %s", req->what, code, url, hint, ex ? ex : "");
    free(ex);
    return st;
}

static bool retryable(long code) { return code == 429 || code == 503; }

agx_status agx_http_send(const agx_http_options *opt, const agx_http_request *req,
                         agx_http_response *resp, agx_error *err) {
    memset(resp, 0, sizeof *resp);
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "%s: libcurl failed to initialise: %s",
                             req->what, curl_easy_strerror(curl_init_rc));
    char *url = agx_http_redact_url(req->url);
    if (!url) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");

    struct curl_slist *hdrs = NULL;
    char *auth = NULL;
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (req->json_body) hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (req->bearer_token) {
        auth = agx_sprintf("Authorization: Bearer %s", req->bearer_token);
        hdrs = auth ? curl_slist_append(hdrs, auth) : NULL;
    }
    agx_status st = AGX_OK;
    if (!hdrs) {
        st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        goto done;
    }

    /* One deadline for all attempts: retries never stretch a request past the timeout. */
    const int64_t deadline = agx_time_ms() + opt->timeout_ms;
    for (int attempt = 0;; attempt++) {
        long left = (long)(deadline - agx_time_ms());
        if (left < 1) left = 1;
        sink s = {.limit = opt->max_response_bytes, .retry_after_ms = -1};
        agx_strbuf_init(&s.buf);
        char detail[CURL_ERROR_SIZE] = "";
        CURL *c = curl_easy_init();
        if (!c) {
            st = agx_error_set(err, AGX_ERR_NOMEM, "%s: curl_easy_init failed", req->what);
            goto done;
        }
        long connect_ms = left < 10000 ? left : 10000;
        curl_easy_setopt(c, CURLOPT_URL, req->url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, left);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)opt->max_response_bytes);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "agx/0.1");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        if (req->json_body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->json_body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req->json_body));
        } else {
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        }
        CURLcode rc = curl_easy_perform(c);
        long code = 0;
        if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        resp->attempts = attempt + 1;

        if (rc != CURLE_OK) {
            st = transport_error(opt, req, url, rc, &s, detail, resp, err);
            agx_strbuf_free(&s.buf);
            goto done;
        }
        long delay = -1;
        if (retryable(code) && attempt < opt->max_retries) {
            delay = s.retry_after_ms >= 0 ? s.retry_after_ms
                                          : opt->backoff_ms << (attempt < 20 ? attempt : 20);
            if (delay > opt->max_delay_ms) delay = opt->max_delay_ms;
            if (agx_time_ms() + delay >= deadline) delay = -1; /* no time left to retry */
        }
        if (delay >= 0) {
            agx_log(AGX_LOG_INFO, "%s: HTTP %ld from %s, retrying in %ld ms (attempt %d of %d)",
                    req->what, code, url, delay, attempt + 2, opt->max_retries + 1);
            agx_strbuf_free(&s.buf);
            sleep_ms(delay);
            continue;
        }
        resp->status = code;
        resp->body_len = s.buf.len;
        resp->body = s.buf.data ? agx_strbuf_take(&s.buf) : agx_strdup("");
        if (!resp->body) {
            st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (code < 200 || code > 299) resp->failure = AGX_HTTP_FAIL_STATUS;
        if (code < 200 || code > 299)
            st = status_error(req, url, code, resp->body, resp->body_len, err);
        goto done;
    }
done:
    curl_slist_free_all(hdrs);
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    free(url);
    return st;
}

void agx_http_response_free(agx_http_response *resp) {
    if (!resp) return;
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}
