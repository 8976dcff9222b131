/* http.h — the small libcurl wrapper the remote backends (ollama, openai) share:
 * one JSON request with a total timeout, a bound on the reply size, retries of
 * 429/503 with bounded exponential backoff that honours Retry-After, and curl
 * failures turned into agx errors a person can act on. Internal to src/backends. */
#ifndef AGX_BACKENDS_HTTP_H
#define AGX_BACKENDS_HTTP_H

#include <stddef.h>

#include "agx/error.h"

#define AGX_HTTP_DEFAULT_MAX_RESPONSE (8u * 1024u * 1024u) /* 8 MiB */
#define AGX_HTTP_DEFAULT_RETRIES 3
#define AGX_HTTP_DEFAULT_BACKOFF_MS 500
#define AGX_HTTP_DEFAULT_MAX_DELAY_MS 30000

/* Knobs shared by every request of one backend (read once from the environment). */
typedef struct agx_http_options {
    long timeout_ms;            /* whole transfer, per attempt */
    size_t max_response_bytes;  /* larger replies fail with AGX_ERR_IO */
    int max_retries;            /* extra attempts after a 429/503 */
    long backoff_ms;            /* first delay; doubles per retry */
    long max_delay_ms;          /* cap on any single delay, Retry-After included */
    const char *timeout_var;    /* setting to raise on timeouts ("AGX_OLLAMA_TIMEOUT_SECS") */
} agx_http_options;

typedef struct agx_http_request {
    const char *method;         /* "GET" or "POST" */
    const char *url;
    const char *json_body;      /* POST body (Content-Type: application/json), or NULL */
    const char *bearer_token;   /* "Authorization: Bearer ..." when non-NULL; never logged */
    const char *what;           /* what the caller is doing, for messages: "ollama /api/chat" */
} agx_http_request;

/* Why a request failed, for callers that add backend-specific advice. */
typedef enum agx_http_failure {
    AGX_HTTP_FAIL_NONE,
    AGX_HTTP_FAIL_REFUSED,   /* nothing listens there */
    AGX_HTTP_FAIL_DNS,       /* host name does not resolve */
    AGX_HTTP_FAIL_TLS,       /* handshake or certificate */
    AGX_HTTP_FAIL_TIMEOUT,
    AGX_HTTP_FAIL_TRANSFER,  /* cut short, reset, too large, not HTTP */
    AGX_HTTP_FAIL_STATUS,    /* a non-2xx reply (status and body are set) */
    AGX_HTTP_FAIL_OTHER,
} agx_http_failure;

typedef struct agx_http_response {
    agx_http_failure failure;
    long status;                /* HTTP status, 0 when no reply was received */
    char *body;                 /* NUL-terminated, owned (may be NULL) */
    size_t body_len;
    int attempts;               /* how many requests were sent */
} agx_http_response;

/* Defaults, then AGX_HTTP_MAX_RESPONSE_BYTES, AGX_HTTP_RETRIES, AGX_HTTP_BACKOFF_MS,
 * AGX_HTTP_MAX_DELAY_MS from the environment (malformed -> AGX_ERR_CONFIG). */
agx_status agx_http_options_from_env(agx_http_options *opt, long timeout_secs, agx_error *err);

/* Sends the request. AGX_OK only for a 2xx reply. Any other HTTP status fills
 * resp (status + body, so the caller can look at it) and returns an error whose
 * message names the status and a short, secret-free excerpt of the body:
 * 401/403 -> AGX_ERR_CONFIG, 429 and 5xx -> AGX_ERR_UNAVAILABLE, other 4xx ->
 * AGX_ERR_INFERENCE.
 * Transport failures: refused/DNS/TLS/timeout -> AGX_ERR_UNAVAILABLE; a transfer
 * cut short or a reply over the bound -> AGX_ERR_IO. */
agx_status agx_http_send(const agx_http_options *opt, const agx_http_request *req,
                         agx_http_response *resp, agx_error *err);
void agx_http_response_free(agx_http_response *resp);

/* A one-line excerpt of text for messages: at most max bytes, runs of blanks
 * and control characters collapsed to one space, invalid UTF-8 shown as '?',
 * every occurrence of secret (when given) replaced by '*', "..." when cut.
 * Caller frees. */
char *agx_http_excerpt(const char *text, size_t len, size_t max, const char *secret);

/* A copy of url without "user:password@" (for messages). Caller frees. */
char *agx_http_redact_url(const char *url);

/* Parses a Retry-After value (delta-seconds or an HTTP date) into milliseconds
 * from now; -1 when absent or malformed. Exposed for tests. */
long agx_http_parse_retry_after(const char *value);

#endif
