/* buffer.h — the persisted plan buffer (AGX_PLAN_PATH): the plan that
 * `agx plan add` grows and `preview`/`validate` read. Every change runs under an
 * exclusive lock on "<path>.lock" as load -> change -> atomic save, so concurrent
 * writers never lose steps and a crash never leaves a torn file. A buffer that
 * does not parse is reported as corrupt and never overwritten; only
 * agx_buffer_reset moves it aside (to "<path>.corrupt-<timestamp>"). */
#ifndef AGX_BUFFER_H
#define AGX_BUFFER_H

#include "agx/error.h"
#include "agx/plan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest buffer file agx reads (bytes). */
#define AGX_BUFFER_MAX_BYTES (16u << 20)

/* Loads the buffer into out (initialized here). A missing file is an empty plan.
 * A file that is not a canonical plan is AGX_ERR_JSON "plan buffer '<path>' is
 * corrupt (...)" telling the user to inspect it or run `agx plan new`. */
agx_status agx_buffer_load(const char *path, agx_plan *out, agx_error *err);

/* Writes plan atomically (temp file + fsync + rename) under the lock. */
agx_status agx_buffer_save(const char *path, const agx_plan *plan, agx_error *err);

/* Under the lock: load, call change(plan, user, err), and save when it returns
 * AGX_OK. A corrupt buffer stops before change is called. When result is not
 * NULL it receives the saved plan (caller frees). */
typedef agx_status (*agx_buffer_change_fn)(agx_plan *plan, void *user, agx_error *err);
agx_status agx_buffer_update(const char *path, agx_buffer_change_fn change, void *user,
                             agx_plan *result, agx_error *err);

/* Under the lock: appends every task of steps (shifting its input_from_task
 * references) and saves. *first_new (may be NULL) gets the task number of the
 * first appended task. */
agx_status agx_buffer_append(const char *path, const agx_plan *steps, int *first_new,
                             agx_plan *result, agx_error *err);

/* Under the lock: replaces the buffer with an empty plan. A corrupt buffer is
 * renamed to "<path>.corrupt-<UTC timestamp>" first; *moved_to (may be NULL)
 * receives that path (caller frees) or NULL when nothing was moved. */
agx_status agx_buffer_reset(const char *path, char **moved_to, agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
