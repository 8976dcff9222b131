/* file.c — whole-file reads, atomic writes (temp + fsync + rename) and advisory
 * locks for every file agx owns (plan buffer, REPL state, history). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agx/util.h"

agx_status agx_file_read_all(const char *path, size_t max_bytes, char **out, size_t *out_len,
                             agx_error *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return agx_error_set(err, AGX_ERR_IO, "'%s' is a directory, not a file", path);
    }
    bool truncated = false;
    agx_status s = agx_stream_read_all(fd, max_bytes, out, out_len, &truncated, err);
    close(fd);
    if (s != AGX_OK) return agx_error_prefix(err, "reading '%s'", path);
    if (truncated) {
        free(*out);
        *out = NULL;
        return agx_error_set(err, AGX_ERR_IO, "'%s' is larger than the %zu-byte limit", path,
                             max_bytes);
    }
    return AGX_OK;
}

agx_status agx_stream_read_all(int fd, size_t max_bytes, char **out, size_t *out_len,
                               bool *truncated, agx_error *err) {
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    char chunk[65536];
    if (truncated) *truncated = false;
    for (;;) {
        size_t want = sizeof chunk;
        if (max_bytes && sb.len + want > max_bytes) want = max_bytes - sb.len;
        if (want == 0) {
            char probe;
            ssize_t extra = read(fd, &probe, 1);
            if (extra > 0 && truncated) *truncated = true;
            break;
        }
        ssize_t n = read(fd, chunk, want);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            agx_strbuf_free(&sb);
            return agx_error_set(err, AGX_ERR_IO, "read failed: %s", strerror(e));
        }
        if (n == 0) break;
        if (!agx_strbuf_append(&sb, chunk, (size_t)n)) {
            agx_strbuf_free(&sb);
            return agx_error_set(err, AGX_ERR_NOMEM, "out of memory reading input");
        }
    }
    if (out_len) *out_len = sb.len;
    *out = agx_strbuf_take(&sb);
    if (!*out) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory reading input");
    return AGX_OK;
}

agx_status agx_mkdirs(const char *dir, agx_error *err) {
    char tmp[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0) return AGX_OK;
    if (n >= sizeof tmp) return agx_error_set(err, AGX_ERR_IO, "path too long: '%s'", dir);
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return agx_error_set(err, AGX_ERR_IO, "cannot create directory '%s': %s", tmp,
                                 strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return agx_error_set(err, AGX_ERR_IO, "cannot create directory '%s': %s", tmp,
                             strerror(errno));
    return AGX_OK;
}

static char *parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return agx_strdup(".");
    if (slash == path) return agx_strdup("/");
    return agx_strndup(path, (size_t)(slash - path));
}

agx_status agx_file_write_atomic(const char *path, const void *data, size_t len, agx_error *err) {
    char *dir = parent_dir(path);
    if (!dir) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    agx_status s = agx_mkdirs(dir, err);
    if (s != AGX_OK) {
        free(dir);
        return s;
    }
    char *tmp = agx_sprintf("%s.tmp.%ld.XXXXXX", path, (long)getpid());
    if (!tmp) {
        free(dir);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        s = agx_error_set(err, AGX_ERR_IO, "cannot create temporary file next to '%s': %s", path,
                          strerror(errno));
        goto out;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            s = agx_error_set(err, AGX_ERR_IO, "writing '%s' failed: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        s = agx_error_set(err, AGX_ERR_IO, "flushing '%s' failed: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        s = agx_error_set(err, AGX_ERR_IO, "cannot replace '%s': %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    /* Make the rename itself durable. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
out:
    free(tmp);
    free(dir);
    return s;
}

bool agx_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

char *agx_file_corrupt_name(const char *path) {
    char stamp[32];
    const time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    char *name = agx_sprintf("%s.corrupt-%s", path, stamp);
    for (int i = 2; name && agx_file_exists(name) && i < 1000; i++) {
        free(name);
        name = agx_sprintf("%s.corrupt-%s-%d", path, stamp, i);
    }
    return name;
}

agx_status agx_file_lock(const char *path, int *lock_fd, agx_error *err) {
    *lock_fd = -1;
    char *dir = parent_dir(path);
    if (!dir) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    agx_status s = agx_mkdirs(dir, err);
    free(dir);
    if (s != AGX_OK) return s;
    char *lock_path = agx_sprintf("%s.lock", path);
    if (!lock_path) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        s = agx_error_set(err, AGX_ERR_IO, "cannot open lock file '%s': %s", lock_path,
                          strerror(errno));
        free(lock_path);
        return s;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        s = agx_error_set(err, AGX_ERR_IO, "cannot lock '%s': %s", lock_path, strerror(errno));
        close(fd);
        free(lock_path);
        return s;
    }
    free(lock_path);
    *lock_fd = fd;
    return AGX_OK;
}

void agx_file_unlock(int lock_fd) {
    if (lock_fd < 0) return;
    flock(lock_fd, LOCK_UN);
    close(lock_fd);
}
