/* session.h — the interactive session's state (agx repl): the plan being
 * crafted, the instructions that produced it and the user's settings. The
 * state persists to a JSON file (default ~/.agx/repl-state.json, AGX_HOME
 * overrides ~/.agx), written atomically after every change, so a crash or a
 * second terminal never sees a torn file. A state file that does not parse is
 * moved aside ("<path>.corrupt-<UTC time>") and reported, never lost. */
#ifndef AGX_SESSION_H
#define AGX_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "agx/error.h"
#include "agx/plan.h"
#include "agx/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest state file read (bytes). */
#define AGX_SESSION_MAX_BYTES (16u << 20)
/* Instructions remembered for the Delta request (oldest dropped first). */
#define AGX_SESSION_MAX_INSTRUCTIONS 64

typedef enum agx_editor_mode { AGX_EDITOR_EMACS, AGX_EDITOR_VI } agx_editor_mode;

typedef struct agx_session {
    agx_plan plan;
    char **instructions;     /* what each add asked for, in order */
    size_t n_instructions;
    agx_editor_mode editor;  /* line-editing keys */
    bool stream;             /* show the model's output while it generates (terminal only) */
    char *path;              /* the state file (NULL: never persisted) */
} agx_session;

/* "<agx home>/repl-state.json" (malloc'ed). */
char *agx_session_default_path(void);

/* An empty session persisted at path (may be NULL). */
agx_status agx_session_init(agx_session *s, const char *path, agx_error *err);
void agx_session_free(agx_session *s);

/* Resumes the session stored at path (initialized here). A missing file is an
 * empty session. A file that is not a valid state (bad JSON, wrong types, a
 * plan that does not read back) is renamed to "<path>.corrupt-<UTC time>" and
 * an empty session is returned with AGX_OK; *moved_to (may be NULL) receives
 * that name (caller frees) and *why the reason, or NULL when nothing moved.
 * Only I/O failures (unreadable file, rename refused) are errors. */
agx_status agx_session_load(agx_session *s, const char *path, char **moved_to, char **why,
                            agx_error *err);

/* Reads a state from JSON text into s (initialized here, never persisted).
 * AGX_ERR_JSON says what is wrong; s is then an empty session (free it either way). */
agx_status agx_session_from_json(agx_session *s, const char *text, size_t len, agx_error *err);

/* Writes the state atomically (no-op when s->path is NULL). */
agx_status agx_session_save(const agx_session *s, agx_error *err);
/* The state as JSON: {"version":1,"settings":{"editor":..,"stream":..},
 * "instructions":[..],"plan":{canonical plan}}. NULL on OOM. */
char *agx_session_to_json(const agx_session *s);

/* ---- changes (each validates, applies only when valid, then saves) ---- */

/* Appends steps (shifting their input_from_task) after the plan; the combined
 * plan must validate against registry (problems, may be NULL, lists why not).
 * instruction (may be NULL) is remembered for Delta. *first_new gets the
 * 1-based number of the first appended task. */
agx_status agx_session_append(agx_session *s, const agx_plan *steps, const char *instruction,
                              const agx_registry *registry, int *first_new,
                              agx_plan_problems *problems, agx_error *err);
/* Replaces task n's command and arguments with the words of line (shell-like
 * quoting; the first word is the command). The task keeps its input and
 * timeout. The changed plan must validate. */
agx_status agx_session_edit(agx_session *s, size_t n, const char *line,
                            const agx_registry *registry, agx_plan_problems *problems,
                            agx_error *err);
/* Removes task n; later tasks are renumbered and a task that read from the
 * removed one reads from what that one read from (or nothing). */
agx_status agx_session_remove(agx_session *s, size_t n, agx_error *err);
/* Empties the plan and forgets the instructions (settings stay). */
agx_status agx_session_clear(agx_session *s, agx_error *err);
/* Replaces the plan (after an accepted Delta refinement). */
agx_status agx_session_replace(agx_session *s, const agx_plan *plan, agx_error *err);
/* Settings: "editor" emacs|vi, "stream" on|off. */
agx_status agx_session_set(agx_session *s, const char *key, const char *value, agx_error *err);

/* ---- helpers shared with the REPL ---- */

/* Splits line into words like a POSIX shell would for simple words: blanks
 * separate, '...' is literal, "..." allows \" \\ \$ \` escapes, a backslash
 * outside quotes escapes the next character. An unterminated quote is
 * AGX_ERR_USAGE. *words is a malloc'ed array of malloc'ed strings. */
agx_status agx_session_split_words(const char *line, char ***words, size_t *n_words,
                                   agx_error *err);
void agx_session_free_words(char **words, size_t n);
/* Task n of the plan as a command line (quoted as needed for a shell); malloc'ed. */
char *agx_session_task_line(const agx_session *s, size_t n);
/* The Delta request: the remembered instructions joined with "; then ". NULL when none. */
char *agx_session_request(const agx_session *s);

#ifdef __cplusplus
}
#endif
#endif
