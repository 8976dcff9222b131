/* cmd_tokenize.c — 'agx tokenize', 'agx detokenize', 'agx template': the
 * model's tokenizer and chat template from the command line.
 *   agx tokenize -m MODEL [--special] [--no-bos] [--json] (TEXT | --file F)
 *   agx detokenize -m MODEL --tokens 1,2,3 [--json]
 *   agx template -m MODEL --messages FILE.json [--chat-template FILE] [--json]
 * Text output is the exact bytes (a newline is added only on a terminal);
 * --json makes the output unambiguous. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agx/chat.h"
#include "agx/tokenizer.h"
#include "cli.h"

#define MAX_INPUT_BYTES (256u << 20)

typedef struct {
    const char *model, *file, *text, *tokens, *messages, *chat_template;
    bool special, no_bos, json;
} tok_args;

/* Parses the flags shared by the three commands; allowed says which apply. */
static int parse_args(int argc, char **argv, const char *allowed, tok_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *flag = NULL;
        const char **val = NULL;
        if (strcmp(s, "-m") == 0 || strcmp(s, "--model") == 0) { flag = "m"; val = &a->model; }
        else if (strcmp(s, "--file") == 0 || strcmp(s, "-f") == 0) { flag = "f"; val = &a->file; }
        else if (strcmp(s, "--tokens") == 0) { flag = "t"; val = &a->tokens; }
        else if (strcmp(s, "--messages") == 0) { flag = "M"; val = &a->messages; }
        else if (strcmp(s, "--chat-template") == 0) { flag = "c"; val = &a->chat_template; }
        else if (strcmp(s, "--special") == 0) { flag = "s"; a->special = true; }
        else if (strcmp(s, "--no-bos") == 0) { flag = "b"; a->no_bos = true; }
        else if (strcmp(s, "--json") == 0) { flag = "j"; a->json = true; }
        else if (s[0] == '-' && s[1] != '\0' && strcmp(s, "--") != 0) {
            return agx_cli_usage("%s: unknown option '%s'", argv[0], s);
        } else {
            if (strcmp(s, "--") == 0 && i + 1 < argc) s = argv[++i];
            if (!strchr(allowed, 'T') || a->text)
                return agx_cli_usage("%s: unexpected argument '%s'", argv[0], s);
            a->text = s;
            continue;
        }
        if (!strchr(allowed, flag[0])) return agx_cli_usage("%s: option '%s' does not apply", argv[0], s);
        if (val) {
            if (i + 1 >= argc) return agx_cli_usage("%s: option '%s' needs a value", argv[0], s);
            *val = argv[++i];
        }
    }
    if (!a->model) return agx_cli_usage("%s: -m MODEL is required", argv[0]);
    return -1;
}

static int load_tokenizer(const char *model, agx_tokenizer **tok) {
    agx_error err;
    agx_error_clear(&err);
    agx_status st = agx_tokenizer_load_for_model(model, NULL, tok, &err);
    if (st != AGX_OK) return agx_cli_fail(&err);
    return -1;
}

static void write_exact(const char *s, size_t n) {
    fwrite(s, 1, n, stdout);
    if (isatty(STDOUT_FILENO)) fputc('\n', stdout);
}

static int print_json_string(const char *key, const char *s, size_t n) {
    json_t *o = json_object();
    json_t *v = json_stringn(s, n);
    if (!v) {
        /* invalid UTF-8 in decoded bytes: JSON cannot carry it, so say so */
        json_decref(o);
        agx_error err;
        agx_error_set(&err, AGX_ERR_TOKENIZER, "the %s is not valid UTF-8; use the raw output without --json", key);
        return agx_cli_fail(&err);
    }
    json_object_set_new(o, key, v);
    char *d = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!d) return AGX_EXIT_INTERNAL;
    printf("%s\n", d);
    free(d);
    return AGX_EXIT_OK;
}

int agx_cmd_tokenize(int argc, char **argv) {
    tok_args a;
    int rc = parse_args(argc, argv, "mfsbjT", &a);
    if (rc >= 0) return rc;
    if (!!a.file == !!a.text) return agx_cli_usage("tokenize: give either TEXT or --file F");
    char *buf = NULL;
    size_t len = 0;
    agx_error err;
    agx_error_clear(&err);
    if (a.file) {
        agx_status st = strcmp(a.file, "-") == 0
                            ? agx_stream_read_all(STDIN_FILENO, MAX_INPUT_BYTES, &buf, &len, NULL, &err)
                            : agx_file_read_all(a.file, MAX_INPUT_BYTES, &buf, &len, &err);
        if (st != AGX_OK) return agx_cli_fail(&err);
    }
    agx_tokenizer *tok = NULL;
    if ((rc = load_tokenizer(a.model, &tok)) >= 0) {
        free(buf);
        return rc;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    const char *text = a.file ? buf : a.text;
    if (!a.file) len = strlen(a.text);
    agx_status st = agx_tokenizer_encode(tok, text, len, !a.no_bos, a.special, &ids, &n, &err);
    free(buf);
    agx_tokenizer_free(tok);
    if (st != AGX_OK) return agx_cli_fail(&err);
    if (a.json) fputs("{\"tokens\":[", stdout);
    for (size_t i = 0; i < n; i++) printf(i ? (a.json ? ",%d" : " %d") : "%d", ids[i]);
    fputs(a.json ? "]}\n" : "\n", stdout);
    free(ids);
    return AGX_EXIT_OK;
}

int agx_cmd_detokenize(int argc, char **argv) {
    tok_args a;
    int rc = parse_args(argc, argv, "mtsj", &a);
    if (rc >= 0) return rc;
    if (!a.tokens) return agx_cli_usage("detokenize: --tokens 1,2,3 is required");
    size_t cap = 16, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return AGX_EXIT_INTERNAL;
    for (const char *p = a.tokens; *p;) {
        if (*p == ',' || *p == ' ' || *p == '[' || *p == ']' || *p == '\n' || *p == '\t') {
            p++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            free(ids);
            return agx_cli_usage("detokenize: --tokens must be comma-separated non-negative ids (at '%.20s')", p);
        }
        if (n == cap) {
            int32_t *q = realloc(ids, (cap *= 2) * sizeof *q);
            if (!q) {
                free(ids);
                return AGX_EXIT_INTERNAL;
            }
            ids = q;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    agx_tokenizer *tok = NULL;
    if ((rc = load_tokenizer(a.model, &tok)) >= 0) {
        free(ids);
        return rc;
    }
    agx_error err;
    agx_error_clear(&err);
    char *out = NULL;
    size_t outn = 0;
    agx_status st = agx_tokenizer_decode(tok, ids, n, false, &out, &outn, &err);
    free(ids);
    agx_tokenizer_free(tok);
    if (st != AGX_OK) return agx_cli_fail(&err);
    rc = AGX_EXIT_OK;
    if (a.json) rc = print_json_string("text", out, outn);
    else write_exact(out, outn);
    free(out);
    return rc;
}

int agx_cmd_template(int argc, char **argv) {
    tok_args a;
    int rc = parse_args(argc, argv, "mMcj", &a);
    if (rc >= 0) return rc;
    if (!a.messages) return agx_cli_usage("template: --messages FILE.json is required");
    agx_error err;
    agx_error_clear(&err);
    json_error_t je;
    json_t *root = json_load_file(a.messages, 0, &je);
    if (!root) {
        agx_error_set(&err, AGX_ERR_JSON, "cannot read messages '%s': %s (line %d)", a.messages, je.text, je.line);
        return agx_cli_fail(&err);
    }
    json_t *arr = json_is_object(root) ? json_object_get(root, "messages") : root;
    if (!json_is_array(arr)) {
        json_decref(root);
        agx_error_set(&err, AGX_ERR_JSON, "'%s' must hold an array of {\"role\",\"content\"} messages", a.messages);
        return agx_cli_fail(&err);
    }
    size_t n = json_array_size(arr);
    agx_chat_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
    if (!msgs) {
        json_decref(root);
        return AGX_EXIT_INTERNAL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(arr, i);
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_string(role) || !json_is_string(content)) {
            free(msgs);
            json_decref(root);
            agx_error_set(&err, AGX_ERR_JSON, "'%s': message %zu needs string \"role\" and \"content\"", a.messages, i);
            return agx_cli_fail(&err);
        }
        msgs[i].role = json_string_value(role);
        msgs[i].content = json_string_value(content);
    }
    char *tmpl_file = NULL;
    if (a.chat_template) {
        size_t tl;
        if (agx_file_read_all(a.chat_template, 16u << 20, &tmpl_file, &tl, &err) != AGX_OK) {
            free(msgs);
            json_decref(root);
            return agx_cli_fail(&err);
        }
    }
    agx_tokenizer *tok = NULL;
    if ((rc = load_tokenizer(a.model, &tok)) >= 0) {
        free(tmpl_file);
        free(msgs);
        json_decref(root);
        return rc;
    }
    const char *tmpl = tmpl_file ? tmpl_file : agx_tokenizer_chat_template(tok);
    char *prompt = NULL;
    agx_status st = agx_chat_render(tmpl, agx_tokenizer_bos_text(tok), agx_tokenizer_eos_text(tok), msgs, n, true,
                                    &prompt, &err);
    agx_tokenizer_free(tok);
    free(tmpl_file);
    free(msgs);
    json_decref(root);
    if (st != AGX_OK) return agx_cli_fail(&err);
    rc = AGX_EXIT_OK;
    if (a.json) rc = print_json_string("prompt", prompt, strlen(prompt));
    else write_exact(prompt, strlen(prompt));
    free(prompt);
    return rc;
}
