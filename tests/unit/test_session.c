/* test_session.c — the REPL session state: persistence round trip, corrupt
 * files moved aside, validated edits, removal with reference splicing, word
 * splitting, settings. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"
#include "agx/session.h"
#include "agx_test.h"

static agx_registry reg;

static int setup(void **state) {
    (void)state;
    agx_error err;
    return agx_registry_builtin(&reg, &err) == AGX_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    agx_registry_free(&reg);
    return 0;
}

static void add(agx_plan *p, const char *cmd, const char *a1, int input) {
    agx_error err;
    const char *args[1] = {a1};
    assert_int_equal(agx_plan_add_task(p, cmd, args, a1 ? 1 : 0, input, &err), AGX_OK);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Number of "<base>.corrupt-*" files in dir; *found gets the first (caller frees). */
static int count_corrupt(const char *dir, char **found) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "repl-state.json.corrupt-", 24) == 0) {
            if (found && !*found) *found = agx_sprintf("%s/%s", dir, e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static void test_roundtrip(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = agx_sprintf("%s/sub/repl-state.json", dir);
    agx_error err;
    agx_session s;
    char *moved = NULL, *why = NULL;
    assert_int_equal(agx_session_load(&s, path, &moved, &why, &err), AGX_OK);
    assert_null(moved);
    assert_int_equal(s.plan.n_tasks, 0);
    assert_int_equal(s.editor, AGX_EDITOR_EMACS);
    assert_false(agx_file_exists(path)); /* nothing written before a change */

    agx_plan steps;
    agx_plan_init(&steps);
    add(&steps, "grep", "TODO", 0);
    add(&steps, "wc", "-l", 1);
    int first = 0;
    assert_int_equal(agx_session_append(&s, &steps, "count TODO lines", &reg, &first, NULL, &err),
                     AGX_OK);
    assert_int_equal(first, 1);
    assert_true(agx_file_exists(path));
    assert_int_equal(agx_session_append(&s, &steps, "again", &reg, &first, NULL, &err), AGX_OK);
    assert_int_equal(first, 3);
    assert_int_equal(s.plan.tasks[3].input_from_task, 3); /* shifted reference */
    assert_int_equal(agx_session_set(&s, "editor", "vi", &err), AGX_OK);
    assert_int_equal(agx_session_set(&s, "stream", "off", &err), AGX_OK);
    agx_plan_free(&steps);

    agx_session t;
    assert_int_equal(agx_session_load(&t, path, &moved, &why, &err), AGX_OK);
    assert_null(moved);
    assert_int_equal(t.plan.n_tasks, 4);
    assert_string_equal(t.plan.tasks[1].command, "wc");
    assert_string_equal(t.plan.tasks[1].args[0], "-l");
    assert_int_equal(t.plan.tasks[3].input_from_task, 3);
    assert_int_equal(t.editor, AGX_EDITOR_VI);
    assert_false(t.stream);
    assert_int_equal(t.n_instructions, 2);
    char *req = agx_session_request(&t);
    assert_string_equal(req, "count TODO lines; then again");
    free(req);
    char *a = agx_session_to_json(&s), *b = agx_session_to_json(&t);
    assert_string_equal(a, b);
    free(a);
    free(b);

    assert_int_equal(agx_session_clear(&t, &err), AGX_OK);
    assert_null(agx_session_request(&t));
    agx_session u;
    assert_int_equal(agx_session_load(&u, path, NULL, NULL, &err), AGX_OK);
    assert_int_equal(u.plan.n_tasks, 0);
    assert_int_equal(u.editor, AGX_EDITOR_VI); /* clear keeps the settings */
    agx_session_free(&u);
    agx_session_free(&t);
    agx_session_free(&s);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

static void test_corrupt_moved_aside(void **state) {
    (void)state;
    static const char *bad[] = {
        "{not json",
        "[]",
        "{\"version\":2,\"plan\":{\"tasks\":[]}}",
        "{\"version\":1}",
        "{\"version\":1,\"plan\":{\"tasks\":[{\"task_number\":1}]}}",
        "{\"version\":1,\"settings\":{\"editor\":\"nano\"},\"plan\":{\"tasks\":[]}}",
        "{\"version\":1,\"instructions\":[1],\"plan\":{\"tasks\":[]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *dir = agx_test_tmpdir();
        char *path = agx_sprintf("%s/repl-state.json", dir);
        write_file(path, bad[i]);
        agx_session s;
        agx_error err;
        char *moved = NULL, *why = NULL;
        assert_int_equal(agx_session_load(&s, path, &moved, &why, &err), AGX_OK);
        assert_non_null(moved);
        assert_non_null(why);
        assert_non_null(strstr(moved, "repl-state.json.corrupt-"));
        assert_false(agx_file_exists(path));
        char *found = NULL;
        assert_int_equal(count_corrupt(dir, &found), 1);
        assert_string_equal(found, moved);
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(agx_file_read_all(moved, 0, &text, &len, &err), AGX_OK);
        assert_string_equal(text, bad[i]); /* kept byte for byte */
        assert_int_equal(s.plan.n_tasks, 0);
        /* the next save writes a fresh valid state */
        assert_int_equal(agx_session_set(&s, "editor", "vi", &err), AGX_OK);
        agx_session t;
        char *moved2 = NULL;
        assert_int_equal(agx_session_load(&t, path, &moved2, NULL, &err), AGX_OK);
        assert_null(moved2);
        assert_int_equal(t.editor, AGX_EDITOR_VI);
        agx_session_free(&t);
        free(text);
        free(found);
        free(moved);
        free(why);
        agx_session_free(&s);
        free(path);
        agx_test_rmtree(dir);
        free(dir);
    }
}

static void test_edit_validated(void **state) {
    (void)state;
    agx_session s;
    agx_error err;
    assert_int_equal(agx_session_init(&s, NULL, &err), AGX_OK);
    agx_plan steps;
    agx_plan_init(&steps);
    add(&steps, "cat", "a.txt", 0);
    add(&steps, "head", "-n", 1);
    assert_int_equal(agx_session_append(&s, &steps, NULL, &reg, NULL, NULL, &err), AGX_OK);
    agx_plan_free(&steps);

    assert_int_equal(agx_session_edit(&s, 2, "grep -n 'TO DO'", &reg, NULL, &err), AGX_OK);
    assert_string_equal(s.plan.tasks[1].command, "grep");
    assert_int_equal(s.plan.tasks[1].n_args, 2);
    assert_string_equal(s.plan.tasks[1].args[1], "TO DO");
    assert_int_equal(s.plan.tasks[1].input_from_task, 1); /* kept */
    char *line = agx_session_task_line(&s, 2);
    assert_string_equal(line, "grep -n 'TO DO'");
    free(line);

    agx_plan_problems pr;
    assert_int_equal(agx_session_edit(&s, 2, "gerp x", &reg, &pr, &err), AGX_ERR_VALIDATION);
    assert_true(pr.count >= 1);
    assert_non_null(strstr(pr.items[0].message, "gerp"));
    agx_plan_problems_free(&pr);
    assert_string_equal(s.plan.tasks[1].command, "grep"); /* unchanged */
    assert_int_equal(agx_session_edit(&s, 1, "find . -delete", &reg, &pr, &err),
                     AGX_ERR_VALIDATION);
    agx_plan_problems_free(&pr);
    assert_string_equal(s.plan.tasks[0].command, "cat");
    assert_int_equal(agx_session_edit(&s, 3, "ls", &reg, NULL, &err), AGX_ERR_USAGE);
    assert_int_equal(agx_session_edit(&s, 1, "   ", &reg, NULL, &err), AGX_ERR_USAGE);
    assert_int_equal(agx_session_edit(&s, 1, "grep 'open", &reg, NULL, &err), AGX_ERR_USAGE);
    agx_session_free(&s);
}

static void test_remove_splices(void **state) {
    (void)state;
    agx_session s;
    agx_error err;
    assert_int_equal(agx_session_init(&s, NULL, &err), AGX_OK);
    agx_plan steps;
    agx_plan_init(&steps);
    add(&steps, "cat", "a.txt", 0);
    add(&steps, "grep", "x", 1);
    add(&steps, "sort", NULL, 2);
    add(&steps, "wc", "-l", 3);
    assert_int_equal(agx_session_append(&s, &steps, NULL, &reg, NULL, NULL, &err), AGX_OK);
    agx_plan_free(&steps);
    assert_int_equal(agx_session_remove(&s, 2, &err), AGX_OK);
    assert_int_equal(s.plan.n_tasks, 3);
    assert_string_equal(s.plan.tasks[1].command, "sort");
    assert_int_equal(s.plan.tasks[1].task_number, 2);
    assert_int_equal(s.plan.tasks[1].input_from_task, 1); /* read from grep, now from cat */
    assert_int_equal(s.plan.tasks[2].input_from_task, 2); /* shifted */
    assert_int_equal(agx_session_remove(&s, 1, &err), AGX_OK);
    assert_int_equal(s.plan.tasks[0].input_from_task, 0);
    assert_int_equal(s.plan.tasks[1].input_from_task, 1);
    agx_plan_limits lim = agx_plan_limits_default();
    assert_int_equal(agx_plan_validate(&s.plan, &reg, &lim, NULL, &err), AGX_OK);
    assert_int_equal(agx_session_remove(&s, 3, &err), AGX_ERR_USAGE);
    assert_int_equal(agx_session_remove(&s, 0, &err), AGX_ERR_USAGE);
    assert_int_equal(agx_session_clear(&s, &err), AGX_OK);
    assert_int_equal(agx_session_remove(&s, 1, &err), AGX_ERR_USAGE);
    assert_non_null(strstr(err.message, "empty"));
    agx_session_free(&s);
}

static void test_split_words(void **state) {
    (void)state;
    agx_error err;
    char **w;
    size_t n;
    assert_int_equal(agx_session_split_words("  grep -n 'a b' \"c \\\"d\\\"\" e\\ f '' x", &w, &n,
                                             &err),
                     AGX_OK);
    assert_int_equal(n, 7);
    assert_string_equal(w[0], "grep");
    assert_string_equal(w[2], "a b");
    assert_string_equal(w[3], "c \"d\"");
    assert_string_equal(w[4], "e f");
    assert_string_equal(w[5], "");
    assert_string_equal(w[6], "x");
    agx_session_free_words(w, n);
    assert_int_equal(agx_session_split_words("", &w, &n, &err), AGX_OK);
    assert_int_equal(n, 0);
    agx_session_free_words(w, n);
    assert_int_equal(agx_session_split_words("a \"b", &w, &n, &err), AGX_ERR_USAGE);
    assert_int_equal(agx_session_split_words("a 'b", &w, &n, &err), AGX_ERR_USAGE);
}

static void test_settings(void **state) {
    (void)state;
    agx_session s;
    agx_error err;
    assert_int_equal(agx_session_init(&s, NULL, &err), AGX_OK);
    assert_true(s.stream);
    assert_int_equal(agx_session_set(&s, "editor", "nano", &err), AGX_ERR_USAGE);
    assert_int_equal(agx_session_set(&s, "colour", "on", &err), AGX_ERR_USAGE);
    assert_int_equal(agx_session_set(&s, "stream", "maybe", &err), AGX_ERR_USAGE);
    assert_int_equal(agx_session_set(&s, "editor", "vi", &err), AGX_OK);
    assert_int_equal(s.editor, AGX_EDITOR_VI);
    agx_session_free(&s);
}

static void test_default_path(void **state) {
    (void)state;
    setenv("AGX_HOME", "/nonexistent/agx-home", 1);
    char *p = agx_session_default_path();
    assert_string_equal(p, "/nonexistent/agx-home/repl-state.json");
    free(p);
    unsetenv("AGX_HOME");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_corrupt_moved_aside),
        cmocka_unit_test(test_edit_validated), cmocka_unit_test(test_remove_splices),
        cmocka_unit_test(test_split_words),    cmocka_unit_test(test_settings),
        cmocka_unit_test(test_default_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
