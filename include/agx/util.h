/* util.h — small core helpers shared by every layer: growable strings, whole-file
 * reads, atomic writes and advisory locks for files agx owns, monotonic time,
 * environment lookups and stderr logging. */
#ifndef AGX_UTIL_H
#define AGX_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agx/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- growable byte string (always NUL-terminated when data != NULL) ---- */
typedef struct agx_strbuf {
    char *data;
    size_t len;
    size_t cap;
} agx_strbuf;

void agx_strbuf_init(agx_strbuf *sb);
void agx_strbuf_free(agx_strbuf *sb);
/* Returns false only on allocation failure. */
bool agx_strbuf_append(agx_strbuf *sb, const void *data, size_t len);
bool agx_strbuf_puts(agx_strbuf *sb, const char *s);
bool agx_strbuf_putc(agx_strbuf *sb, char c);
bool agx_strbuf_printf(agx_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the buffer to the caller (free()) and resets sb. Never NULL unless OOM. */
char *agx_strbuf_take(agx_strbuf *sb);
/* Appends s as one POSIX shell word: as is when it is plain (letters, digits,
 * -_./:=,+@%), else in single quotes. escape_controls: control bytes become
 * \xNN so a one-line display stays one line (no longer a shell word then). */
bool agx_strbuf_shell_word(agx_strbuf *sb, const char *s, bool escape_controls);

char *agx_strdup(const char *s);              /* NULL-safe strdup */
char *agx_strndup(const char *s, size_t n);
char *agx_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- files ---- */
/* Reads a whole file. Fails with AGX_ERR_IO naming the path, or when the file
 * is larger than max_bytes (0 = no limit). *out is NUL-terminated. */
agx_status agx_file_read_all(const char *path, size_t max_bytes, char **out, size_t *out_len,
                             agx_error *err);
/* Reads all of an open stream (stdin) up to max_bytes; *truncated says whether more followed. */
agx_status agx_stream_read_all(int fd, size_t max_bytes, char **out, size_t *out_len,
                               bool *truncated, agx_error *err);
/* Writes via a temp file in the same directory + fsync + rename, so readers
 * see either the old or the new content, never a torn file. Creates parent
 * directories as needed (mode 0700). */
agx_status agx_file_write_atomic(const char *path, const void *data, size_t len, agx_error *err);
/* mkdir -p */
agx_status agx_mkdirs(const char *dir, agx_error *err);
bool agx_file_exists(const char *path);
/* Where a corrupt file agx owns is moved aside: "<path>.corrupt-20260101T120000Z"
 * (UTC), with "-N" added when that name is taken. NULL when out of memory. */
char *agx_file_corrupt_name(const char *path);

/* Exclusive advisory lock on "<path>.lock" (flock), blocking. Returns fd >= 0
 * in *lock_fd; release with agx_file_unlock. */
agx_status agx_file_lock(const char *path, int *lock_fd, agx_error *err);
void agx_file_unlock(int lock_fd);

/* ---- time ---- */
int64_t agx_time_ms(void);   /* monotonic milliseconds */
int64_t agx_time_us(void);   /* monotonic microseconds */

/* ---- environment ---- */
/* Returns the value or NULL when unset or empty. */
const char *agx_env(const char *name);
/* Parses a numeric env var; unset -> default. A malformed value is a config error naming it. */
agx_status agx_env_double(const char *name, double def, double *out, agx_error *err);
agx_status agx_env_long(const char *name, long def, long *out, agx_error *err);
/* $HOME/.agx (or AGX_HOME); never NULL (falls back to "."). Caller frees. */
char *agx_home_dir(void);

/* ---- logging to stderr ---- */
typedef enum { AGX_LOG_ERROR, AGX_LOG_WARN, AGX_LOG_INFO, AGX_LOG_DEBUG } agx_log_level;
/* Level threshold from AGX_LOG (error|warn|info|debug; default warn). */
void agx_log(agx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
