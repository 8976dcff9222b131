/* buffer.c — the persisted plan buffer: locked load/change/atomic-save cycles,
 * corruption detection (never overwritten, only moved aside by a reset). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agx/buffer.h"
#include "agx/util.h"

/* Reads the file; *missing says the file does not exist (an empty buffer). */
static agx_status read_buffer(const char *path, char **text, size_t *len, bool *missing,
                              agx_error *err) {
    *missing = false;
    *text = NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            *missing = true;
            return AGX_OK;
        }
        return agx_error_set(err, AGX_ERR_IO, "cannot read plan buffer '%s': %s", path, strerror(errno));
    }
    /* far more than any plan agx writes: damaged, not a buffer to load */
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > AGX_BUFFER_MAX_BYTES)
        return agx_error_set(err, AGX_ERR_JSON, "the file is %llu bytes, more than the %u-byte limit",
                             (unsigned long long)st.st_size, AGX_BUFFER_MAX_BYTES);
    return agx_file_read_all(path, AGX_BUFFER_MAX_BYTES, text, len, err);
}

static bool only_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

agx_status agx_buffer_load(const char *path, agx_plan *out, agx_error *err) {
    agx_plan_init(out);
    char *text;
    size_t len = 0;
    bool missing;
    agx_error perr;
    agx_error_clear(&perr);
    agx_status s = read_buffer(path, &text, &len, &missing, &perr);
    if (s == AGX_OK && missing) return AGX_OK;
    if (s != AGX_OK && s != AGX_ERR_JSON) {
        if (err) *err = perr;
        return s;
    }
    /* (AGX_ERR_JSON here: too large, and perr says so.) An empty file is what a
     * crash between create and write would leave with a non-atomic writer; agx
     * never writes one, so it is corrupt too. */
    if (s == AGX_OK)
        s = only_space(text, len) ? agx_error_set(&perr, AGX_ERR_JSON, "the file is empty")
                                  : agx_plan_from_json(text, len, out, &perr);
    free(text);
    if (s != AGX_OK) {
        agx_plan_free(out);
        agx_plan_init(out);
        return agx_error_set(err, AGX_ERR_JSON,
                             "plan buffer '%s' is corrupt (%s); it was left untouched: inspect it, "
                             "or run 'agx plan new' to move it aside and start an empty plan",
                             path, perr.message);
    }
    return AGX_OK;
}

/* Serializes and writes; the caller holds the lock. */
static agx_status write_plan(const char *path, const agx_plan *plan, agx_error *err) {
    char *json = agx_plan_to_json(plan, AGX_JSON_PRETTY);
    if (!json) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory serializing the plan");
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    bool ok = agx_strbuf_puts(&sb, json) && agx_strbuf_putc(&sb, '\n');
    free(json);
    if (!ok) {
        agx_strbuf_free(&sb);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory serializing the plan");
    }
    agx_status s = agx_file_write_atomic(path, sb.data, sb.len, err);
    agx_strbuf_free(&sb);
    if (s != AGX_OK) agx_error_prefix(err, "saving plan buffer");
    return s;
}

agx_status agx_buffer_save(const char *path, const agx_plan *plan, agx_error *err) {
    int lock;
    agx_status s = agx_file_lock(path, &lock, err);
    if (s != AGX_OK) return s;
    s = write_plan(path, plan, err);
    agx_file_unlock(lock);
    return s;
}

agx_status agx_buffer_update(const char *path, agx_buffer_change_fn change, void *user,
                             agx_plan *result, agx_error *err) {
    if (result) agx_plan_init(result);
    int lock;
    agx_status s = agx_file_lock(path, &lock, err);
    if (s != AGX_OK) return s;
    agx_plan plan;
    s = agx_buffer_load(path, &plan, err);
    if (s == AGX_OK) s = change(&plan, user, err);
    if (s == AGX_OK) s = write_plan(path, &plan, err);
    agx_file_unlock(lock);
    if (s == AGX_OK && result)
        *result = plan; /* hand over ownership */
    else
        agx_plan_free(&plan);
    return s;
}

typedef struct {
    const agx_plan *steps;
    int first_new;
} append_job;

static agx_status append_change(agx_plan *plan, void *user, agx_error *err) {
    append_job *job = user;
    job->first_new = (int)plan->n_tasks + 1;
    return agx_plan_append(plan, job->steps, err);
}

agx_status agx_buffer_append(const char *path, const agx_plan *steps, int *first_new,
                             agx_plan *result, agx_error *err) {
    append_job job = {steps, 0};
    agx_status s = agx_buffer_update(path, append_change, &job, result, err);
    if (first_new) *first_new = s == AGX_OK ? job.first_new : 0;
    return s;
}

agx_status agx_buffer_reset(const char *path, char **moved_to, agx_error *err) {
    if (moved_to) *moved_to = NULL;
    int lock;
    agx_status s = agx_file_lock(path, &lock, err);
    if (s != AGX_OK) return s;
    agx_plan old;
    agx_error lerr;
    agx_status ls = agx_buffer_load(path, &old, &lerr);
    agx_plan_free(&old);
    if (ls == AGX_ERR_JSON) {
        char *dest = agx_file_corrupt_name(path);
        if (!dest) {
            s = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        } else if (rename(path, dest) != 0) {
            s = agx_error_set(err, AGX_ERR_IO, "cannot move the corrupt buffer '%s' aside to '%s': %s",
                              path, dest, strerror(errno));
            free(dest);
        } else if (moved_to) {
            *moved_to = dest;
        } else {
            free(dest);
        }
    } else if (ls != AGX_OK) {
        s = ls; /* unreadable (permissions, too large): do not touch it */
        if (err) *err = lerr;
    }
    if (s == AGX_OK) {
        agx_plan empty;
        agx_plan_init(&empty);
        s = write_plan(path, &empty, err);
        agx_plan_free(&empty);
    }
    agx_file_unlock(lock);
    return s;
}
