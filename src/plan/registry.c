/* registry.c — the tool registry: the built-in table of read-only Unix text
 * tools (with the phrases that suggest each one, used by the rules backend and
 * the prompts), the user's JSON file that adds or overrides tools by id, lookup,
 * "did you mean" by edit distance, and the `agx tools --json` form. */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agx/registry.h"
#include "agx/util.h"
#include "plan/plan_internal.h"

#define MAX_PATTERNS 16
#define MAX_EXIT_CODES 8
#define TOOLS_FILE_MAX_BYTES (1u << 20)
#define TOOL_ID_MAX 64

/* Patterns are lower-case phrases matched word by word against the instruction
 * (case-insensitively); the word "N" stands for any number ("first N lines").
 * They are deliberately specific: a generic word like "show" would make every
 * instruction match everything. Longer phrases are stronger evidence. */
typedef struct builtin_tool {
    const char *id;
    const char *description;
    const char *patterns[MAX_PATTERNS];
    int ok[MAX_EXIT_CODES];
    size_t n_ok;
} builtin_tool;

static const builtin_tool builtins[] = {
    {"ls", "List directory contents (names, sizes, dates)",
     {"list files", "list the files", "list directory", "list the directory", "list all files",
      "show files", "directory listing", "what files", "which files", "files in", "contents of the directory",
      "ls"},
     {0}, 1},
    {"find", "Search a directory tree for files by name, type, size or age",
     {"find files", "find all files", "search for files", "files named", "files matching",
      "locate files", "recursively", "under the directory", "files larger than", "files modified",
      "files with extension", "directory tree", "find"},
     {0}, 1},
    {"cat", "Print files, or concatenate several into one stream",
     {"show the contents", "print the file", "print the contents", "display the file", "read the file",
      "concatenate", "combine files", "dump the file", "output the file", "cat"},
     {0}, 1},
    {"head", "Print the first lines (or bytes) of the input",
     {"first N lines", "first N", "top N", "first lines", "first line", "first few", "first",
      "top lines", "top", "beginning of", "start of the file", "head"},
     {0}, 1},
    {"tail", "Print the last lines (or bytes) of the input",
     {"last N lines", "last N", "bottom N", "last lines", "last line", "last few", "last",
      "end of the file", "bottom lines", "most recent lines", "tail", "final lines"},
     {0}, 1},
    {"wc", "Count lines, words, characters or bytes",
     {"count lines", "count the lines", "how many lines", "number of lines", "line count",
      "count words", "how many words", "word count", "count characters", "count bytes",
      "how many", "count", "number of"},
     {0}, 1},
    {"sort", "Sort lines (alphabetically, numerically, by a field, reversed)",
     {"sort", "sorted", "order by", "alphabetical", "alphabetically", "in order", "ascending",
      "descending", "reverse order", "largest", "smallest", "rank", "numerically"},
     {0}, 1},
    {"uniq", "Collapse or count repeated adjacent lines (sort first)",
     {"unique", "uniq", "distinct", "deduplicate", "remove duplicates", "duplicate lines",
      "duplicates", "count occurrences", "occurrences of each", "frequency", "how often",
      "per file", "each unique"},
     {0}, 1},
    {"grep", "Print lines that match a pattern (regular expression)",
     {"search for", "lines containing", "lines that contain", "lines matching", "containing",
      "matching", "grep", "filter lines", "look for", "occurrences of", "mentions", "that contain",
      "lines with", "pattern", "regex"},
     {0, 1}, 2},
    {"cut", "Select fields or character columns from each line",
     {"column", "columns", "field", "fields", "cut", "delimiter", "comma separated", "csv",
      "extract the", "first column", "second column", "tab separated"},
     {0}, 1},
    {"tr", "Translate, squeeze or delete characters",
     {"uppercase", "lowercase", "upper case", "lower case", "translate characters",
      "replace characters", "delete characters", "squeeze", "remove characters", "convert to upper",
      "convert to lower", "tr"},
     {0}, 1},
    {"sed", "Stream editor: substitute text, delete or print line ranges",
     {"replace", "substitute", "substitution", "rename text", "change every", "swap", "edit the text",
      "delete lines", "strip", "sed", "lines between", "line range"},
     {0}, 1},
    {"awk", "Pattern scanning: compute on fields (sums, averages, filters by column)",
     {"sum", "total", "average", "mean", "add up", "compute", "calculate", "print the column",
      "print field", "where the column", "greater than", "less than", "awk", "aggregate"},
     {0}, 1},
    {"jq", "Query and transform JSON",
     {"json", "jq", "json field", "parse json", "from the json", "pretty print json", "keys of",
      "json array", "json object", "extract the field"},
     {0}, 1},
    {"xargs", "Run a command for each input item (build command lines from input)",
     {"for each file", "for every file", "each of these files", "xargs", "apply to each",
      "run on each", "for each line", "in each file", "in every file", "in those files"},
     {0}, 1},
    {"du", "Disk usage of files and directories",
     {"disk usage", "size of the directory", "directory size", "folder size", "how big",
      "space used", "biggest directories", "largest directories", "du", "how much space"},
     {0}, 1},
    {"df", "Free and used space of mounted file systems",
     {"free space", "disk space", "filesystem usage", "file system usage", "space left",
      "mounted", "df", "disk free"},
     {0}, 1},
    {"tac", "Print lines in reverse order (last line first)",
     {"reverse the lines", "reverse line order", "lines in reverse", "last line first",
      "upside down", "tac", "reverse the order of lines", "reverse the order of the lines"},
     {0}, 1},
    {"nl", "Number the lines of the input",
     {"number the lines", "line numbers", "add line numbers", "numbered lines", "nl",
      "with line numbers"},
     {0}, 1},
    {"paste", "Merge lines of files side by side, or join lines with a delimiter",
     {"side by side", "merge lines", "join lines", "paste", "combine columns", "join with commas",
      "into one line", "single line"},
     {0}, 1},
    {"diff", "Compare files line by line",
     {"difference between", "differences", "diff", "compare", "what changed", "changes between"},
     {0, 1}, 2},
    {"comm", "Compare two sorted files: lines only in one, only in the other, or in both",
     {"common lines", "lines in both", "only in", "in common", "comm", "not in the other"},
     {0}, 1},
    {"file", "Guess the type of files",
     {"file type", "type of file", "what kind of file", "what type", "mime type", "file types"},
     {0}, 1},
    {"stat", "Show file metadata: size, permissions, timestamps",
     {"permissions", "modification time", "file size", "last modified", "metadata", "owner of",
      "stat", "timestamps"},
     {0}, 1},
    {"basename", "Strip directories (and optionally a suffix) from a path",
     {"file name only", "filename only", "strip the directory", "base name", "basename",
      "without the path"},
     {0}, 1},
    {"dirname", "Strip the last component from a path",
     {"directory part", "parent directory", "dirname", "directory name of", "without the file name"},
     {0}, 1},
    {"rev", "Reverse the characters of each line",
     {"reverse each line", "reverse the characters", "backwards", "mirror", "rev"},
     {0}, 1},
    {"fold", "Wrap long lines to a width",
     {"wrap", "wrap lines", "line width", "fold", "break long lines"},
     {0}, 1},
    {"shuf", "Shuffle lines; -n N picks N random lines",
     {"shuffle", "random order", "random lines", "random line", "at random", "randomly", "random sample",
      "shuf"},
     {0}, 1},
    {"md5sum", "MD5 checksum of files or of the input",
     {"md5", "md5sum", "md5 checksum", "md5 hash", "md5 sums"},
     {0}, 1},
    {"sha256sum", "SHA-256 checksum of files or of the input",
     {"sha256", "sha256sum", "checksum", "checksums", "sha256 hash", "hash of each file"},
     {0}, 1},
    {"base64", "Base64 encode, or decode with -d",
     {"base64", "base 64", "base64 encode", "base64 encoded"},
     {0}, 1},
    {"od", "Dump bytes (-A x -t x1z: a hex dump)",
     {"hex dump", "hexdump", "octal dump", "raw bytes", "byte values", "od"},
     {0}, 1},
    {"seq", "Print numbers: seq [FIRST [STEP]] LAST",
     {"sequence of numbers", "number sequence", "numbers from", "seq"},
     {0}, 1},
    {"join", "Join two files sorted on a key field (-j N)",
     {"join the files", "join two files", "join files", "relational join", "join"},
     {0}, 1},
};

/* ---------------------------------------------------------------- tools -- */

static void tool_free(agx_tool *t) {
    free(t->id);
    free(t->command);
    free(t->description);
    agx_plan_free_words(t->patterns, t->n_patterns);
    free(t->ok_exit_codes);
    memset(t, 0, sizeof *t);
}

void agx_registry_free(agx_registry *reg) {
    if (!reg) return;
    for (size_t i = 0; i < reg->count; i++) tool_free(&reg->tools[i]);
    free(reg->tools);
    memset(reg, 0, sizeof *reg);
}

static agx_tool *registry_push(agx_registry *reg) {
    if (reg->count == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 32;
        agx_tool *t = realloc(reg->tools, cap * sizeof *t);
        if (!t) return NULL;
        reg->tools = t;
        reg->cap = cap;
    }
    agx_tool *t = &reg->tools[reg->count++];
    memset(t, 0, sizeof *t);
    return t;
}

agx_status agx_registry_builtin(agx_registry *out, agx_error *err) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) {
        const builtin_tool *b = &builtins[i];
        agx_tool *t = registry_push(out);
        if (!t) goto oom;
        size_t np = 0;
        while (np < MAX_PATTERNS && b->patterns[np]) np++;
        t->id = agx_strdup(b->id);
        t->command = agx_strdup(b->id);
        t->description = agx_strdup(b->description);
        t->patterns = calloc(np ? np : 1, sizeof *t->patterns);
        t->ok_exit_codes = calloc(b->n_ok, sizeof *t->ok_exit_codes);
        if (!t->id || !t->command || !t->description || !t->patterns || !t->ok_exit_codes) goto oom;
        for (size_t p = 0; p < np; p++) {
            t->patterns[p] = agx_strdup(b->patterns[p]);
            if (!t->patterns[p]) goto oom;
            t->n_patterns++;
        }
        memcpy(t->ok_exit_codes, b->ok, b->n_ok * sizeof *b->ok);
        t->n_ok_exit_codes = b->n_ok;
    }
    return AGX_OK;
oom:
    agx_registry_free(out);
    return agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the tool registry");
}

const agx_tool *agx_registry_find(const agx_registry *reg, const char *id) {
    if (!reg || !id) return NULL;
    for (size_t i = 0; i < reg->count; i++)
        if (strcmp(reg->tools[i].id, id) == 0) return &reg->tools[i];
    return NULL;
}

size_t agx_plan_edit_distance(const char *a, const char *b, size_t limit) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 256 || lb > 256) return limit + 1; /* ids are short; do not spend on junk */
    if ((la > lb ? la - lb : lb - la) > limit) return limit + 1;
    /* Three rolling rows: previous-previous (for transpositions), previous, current. */
    size_t rows[3][257];
    size_t *pp = rows[0], *p = rows[1], *c = rows[2];
    for (size_t j = 0; j <= lb; j++) p[j] = j;
    for (size_t i = 1; i <= la; i++) {
        c[0] = i;
        size_t best = c[0];
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = p[j] + 1;
            if (c[j - 1] + 1 < v) v = c[j - 1] + 1;
            if (p[j - 1] + cost < v) v = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            c[j] = v;
            if (v < best) best = v;
        }
        if (best > limit) return limit + 1;
        size_t *t = pp;
        pp = p, p = c, c = t;
    }
    return p[lb] <= limit ? p[lb] : limit + 1;
}

const char *agx_registry_closest(const agx_registry *reg, const char *id) {
    if (!reg || !id || !*id) return NULL;
    /* A path or different case names the tool outright: "/usr/bin/grep", "GREP". */
    const char *base = strrchr(id, '/');
    base = base && base[1] ? base + 1 : id;
    char lower[TOOL_ID_MAX + 1];
    size_t n = strlen(base);
    if (n > TOOL_ID_MAX) return NULL;
    for (size_t i = 0; i <= n; i++) lower[i] = (char)tolower((unsigned char)base[i]);
    for (size_t i = 0; i < reg->count; i++)
        if (strcmp(reg->tools[i].id, lower) == 0) return reg->tools[i].id;
    /* Tools whose executable is what the plan named ("jq" when the id is "json"). */
    for (size_t i = 0; i < reg->count; i++)
        if (reg->tools[i].command && strcmp(reg->tools[i].command, base) == 0) return reg->tools[i].id;
    size_t limit = n <= 3 ? 1 : n <= 6 ? 2 : 3;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < reg->count; i++) {
        size_t d = agx_plan_edit_distance(lower, reg->tools[i].id, limit);
        /* Never suggest by deleting the whole word ("x" -> "ls" is no hint). */
        if (d < best_d && d < strlen(reg->tools[i].id)) {
            best_d = d;
            best = reg->tools[i].id;
        }
    }
    return best;
}

/* ------------------------------------------------------------ user file -- */

static bool valid_id(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > TOOL_ID_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '_' || c == '-' || c == '.' || c == '+')) return false;
    }
    return true;
}

static bool has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

/* Checks one entry fully before touching the registry, so a bad file changes nothing. */
static agx_status check_entry(const char *path, size_t i, json_t *e, agx_error *err) {
    if (!json_is_object(e))
        return agx_error_set(err, AGX_ERR_JSON, "tools file '%s': tools[%zu] must be an object, not %s",
                             path, i, agx_plan_json_type_name(e));
    const char *key;
    json_t *v;
    json_object_foreach(e, key, v) {
        if (!strcmp(key, "id") || !strcmp(key, "command") || !strcmp(key, "description")) {
            if (!json_is_string(v))
                return agx_error_set(err, AGX_ERR_JSON,
                                     "tools file '%s': tools[%zu].%s must be a string, not %s", path,
                                     i, key, agx_plan_json_type_name(v));
            if (has_control(json_string_value(v)))
                return agx_error_set(err, AGX_ERR_JSON,
                                     "tools file '%s': tools[%zu].%s contains control characters",
                                     path, i, key);
        } else if (!strcmp(key, "patterns")) {
            if (!json_is_array(v))
                return agx_error_set(err, AGX_ERR_JSON,
                                     "tools file '%s': tools[%zu].patterns must be an array of "
                                     "strings, not %s",
                                     path, i, agx_plan_json_type_name(v));
            size_t k;
            json_t *p;
            json_array_foreach(v, k, p) {
                if (!json_is_string(p))
                    return agx_error_set(err, AGX_ERR_JSON,
                                         "tools file '%s': tools[%zu].patterns[%zu] must be a "
                                         "string, not %s",
                                         path, i, k, agx_plan_json_type_name(p));
            }
        } else if (!strcmp(key, "ok_exit_codes")) {
            if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 256)
                return agx_error_set(err, AGX_ERR_JSON,
                                     "tools file '%s': tools[%zu].ok_exit_codes must be a non-empty "
                                     "array of integers 0..255, not %s",
                                     path, i, agx_plan_json_type_name(v));
            size_t k;
            json_t *p;
            json_array_foreach(v, k, p) {
                if (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > 255)
                    return agx_error_set(err, AGX_ERR_JSON,
                                         "tools file '%s': tools[%zu].ok_exit_codes[%zu] must be an "
                                         "integer 0..255",
                                         path, i, k);
            }
        } else if (!strcmp(key, "disabled")) {
            if (!json_is_boolean(v))
                return agx_error_set(err, AGX_ERR_JSON,
                                     "tools file '%s': tools[%zu].disabled must be true or false, not %s",
                                     path, i, agx_plan_json_type_name(v));
        } else {
            return agx_error_set(err, AGX_ERR_JSON,
                                 "tools file '%s': tools[%zu] has unknown field '%s' (known: id, "
                                 "command, description, patterns, ok_exit_codes, disabled)",
                                 path, i, key);
        }
    }
    json_t *id = json_object_get(e, "id");
    if (!id)
        return agx_error_set(err, AGX_ERR_JSON, "tools file '%s': tools[%zu] lacks \"id\"", path, i);
    if (!valid_id(json_string_value(id)))
        return agx_error_set(err, AGX_ERR_JSON,
                             "tools file '%s': tools[%zu].id '%.64s' must be 1..%d characters of "
                             "letters, digits, '_', '-', '.', '+'",
                             path, i, json_string_value(id), TOOL_ID_MAX);
    json_t *cmd = json_object_get(e, "command");
    if (cmd && json_string_length(cmd) == 0)
        return agx_error_set(err, AGX_ERR_JSON, "tools file '%s': tools[%zu].command is empty", path, i);
    return AGX_OK;
}

static bool set_string(char **dst, json_t *v) {
    char *s = agx_strdup(json_string_value(v));
    if (!s) return false;
    free(*dst);
    *dst = s;
    return true;
}

/* Applies a checked entry: fields present replace the tool's, others are kept. */
static bool apply_entry(agx_registry *reg, json_t *e) {
    const char *id = json_string_value(json_object_get(e, "id"));
    agx_tool *t = (agx_tool *)agx_registry_find(reg, id);
    if (json_is_true(json_object_get(e, "disabled"))) {
        /* "disabled": true takes the tool out, built-in or not. */
        if (t) {
            size_t idx = (size_t)(t - reg->tools);
            tool_free(t);
            memmove(t, t + 1, (reg->count - idx - 1) * sizeof *t);
            reg->count--;
        }
        return true;
    }
    if (!t) {
        t = registry_push(reg);
        if (!t) return false;
        t->id = agx_strdup(id);
        t->command = agx_strdup(id);
        t->description = agx_strdup("");
        t->patterns = calloc(1, sizeof *t->patterns);
        t->ok_exit_codes = calloc(1, sizeof *t->ok_exit_codes);
        if (!t->id || !t->command || !t->description || !t->patterns || !t->ok_exit_codes) {
            tool_free(t);
            reg->count--;
            return false;
        }
        t->n_ok_exit_codes = 1; /* 0 */
    }
    json_t *v;
    if ((v = json_object_get(e, "command")) && !set_string(&t->command, v)) return false;
    if ((v = json_object_get(e, "description")) && !set_string(&t->description, v)) return false;
    if ((v = json_object_get(e, "patterns"))) {
        size_t n = json_array_size(v);
        char **p = calloc(n ? n : 1, sizeof *p);
        if (!p) return false;
        for (size_t k = 0; k < n; k++) {
            p[k] = agx_strdup(json_string_value(json_array_get(v, k)));
            if (!p[k]) {
                agx_plan_free_words(p, k);
                return false;
            }
        }
        agx_plan_free_words(t->patterns, t->n_patterns);
        t->patterns = p;
        t->n_patterns = n;
    }
    if ((v = json_object_get(e, "ok_exit_codes"))) {
        size_t n = json_array_size(v);
        int *c = calloc(n, sizeof *c);
        if (!c) return false;
        for (size_t k = 0; k < n; k++) c[k] = (int)json_integer_value(json_array_get(v, k));
        free(t->ok_exit_codes);
        t->ok_exit_codes = c;
        t->n_ok_exit_codes = n;
    }
    return true;
}

static agx_status merge_file(agx_registry *reg, const char *path, agx_error *err);

agx_status agx_registry_merge_file(agx_registry *reg, const char *path, agx_error *err) {
    agx_status st = merge_file(reg, path, err);
    return st == AGX_OK ? st : (agx_plan_sanitize_error(err), st);
}

static agx_status merge_file(agx_registry *reg, const char *path, agx_error *err) {
    char *text = NULL;
    size_t len = 0;
    agx_status st = agx_file_read_all(path, TOOLS_FILE_MAX_BYTES, &text, &len, err);
    if (st != AGX_OK) return agx_error_prefix(err, "tools file");
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root)
        return agx_error_set(err, AGX_ERR_JSON,
                             "tools file '%s': line %d column %d: %s (fix the JSON or unset "
                             "AGX_TOOLS_FILE)",
                             path, jerr.line, jerr.column, jerr.text);
    json_t *list = root;
    if (json_is_object(root)) {
        list = json_object_get(root, "tools");
        if (!list || json_object_size(root) != 1) {
            json_decref(root);
            return agx_error_set(err, AGX_ERR_JSON,
                                 "tools file '%s': expected {\"tools\": [...]} or a bare array of "
                                 "tools",
                                 path);
        }
    }
    if (!json_is_array(list)) {
        agx_error_set(err, AGX_ERR_JSON, "tools file '%s': \"tools\" must be an array, not %s", path,
                      agx_plan_json_type_name(list));
        json_decref(root);
        return AGX_ERR_JSON;
    }
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        if ((st = check_entry(path, i, e, err)) != AGX_OK) {
            json_decref(root);
            return st;
        }
    }
    json_array_foreach(list, i, e) {
        if (!apply_entry(reg, e)) {
            json_decref(root);
            return agx_error_set(err, AGX_ERR_NOMEM, "out of memory merging tools file '%s'", path);
        }
    }
    json_decref(root);
    return AGX_OK;
}

agx_status agx_registry_load_default(agx_registry *out, agx_error *err) {
    agx_status st = agx_registry_builtin(out, err);
    if (st != AGX_OK) return st;
    const char *env = agx_env("AGX_TOOLS_FILE");
    char *path = NULL;
    if (env) {
        if (!agx_file_exists(env)) {
            agx_registry_free(out);
            return agx_error_set(err, AGX_ERR_CONFIG,
                                 "AGX_TOOLS_FILE='%s' does not exist (create it or unset "
                                 "AGX_TOOLS_FILE to use the built-in tools)",
                                 env);
        }
        path = agx_strdup(env);
    } else {
        char *home = agx_home_dir();
        if (home) path = agx_sprintf("%s/tools.json", home);
        free(home);
        if (path && !agx_file_exists(path)) {
            free(path);
            return AGX_OK; /* the default file is optional */
        }
    }
    if (!path) {
        agx_registry_free(out);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory locating the tools file");
    }
    st = agx_registry_merge_file(out, path, err);
    free(path);
    if (st != AGX_OK) agx_registry_free(out);
    return st;
}

char *agx_registry_to_json(const agx_registry *reg, int pretty) {
    json_t *root = json_object();
    json_t *tools = json_array();
    if (!root || json_object_set_new(root, "tools", tools)) {
        json_decref(root);
        return NULL;
    }
    for (size_t i = 0; i < reg->count; i++) {
        const agx_tool *t = &reg->tools[i];
        json_t *jt = json_object();
        if (!jt || json_array_append_new(tools, jt)) goto fail;
        json_t *pats = json_array(), *codes = json_array();
        if (json_object_set_new(jt, "id", json_string(t->id ? t->id : "")) ||
            json_object_set_new(jt, "command", json_string(t->command ? t->command : "")) ||
            json_object_set_new(jt, "description", json_string(t->description ? t->description : "")) ||
            json_object_set_new(jt, "patterns", pats) ||
            json_object_set_new(jt, "ok_exit_codes", codes))
            goto fail;
        for (size_t k = 0; k < t->n_patterns; k++)
            if (json_array_append_new(pats, json_string(t->patterns[k]))) goto fail;
        for (size_t k = 0; k < t->n_ok_exit_codes; k++)
            if (json_array_append_new(codes, json_integer(t->ok_exit_codes[k]))) goto fail;
    }
    char *out = json_dumps(root, JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT));
    json_decref(root);
    return out;
fail:
    json_decref(root);
    return NULL;
}
