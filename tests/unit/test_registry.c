/* test_registry.c — built-in tools, lookup and "did you mean", the user tools
 * file (add, override, every kind of malformed file) and the JSON listing. */
#include "agx_test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agx/registry.h"
#include "agx/util.h"

static void test_builtin_tools(void **state) {
    (void)state;
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    const char *required[] = {"ls", "find", "cat", "head", "tail", "wc", "sort", "uniq",
                              "grep", "cut", "tr", "sed", "awk", "jq", "xargs"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        const agx_tool *t = agx_registry_find(&reg, required[i]);
        if (!t) fail_msg("built-in tool '%s' missing", required[i]);
        assert_string_equal(t->command, required[i]);
        assert_true(strlen(t->description) > 10);
        assert_true(t->n_patterns >= 4);
        assert_true(t->n_ok_exit_codes >= 1);
        assert_int_equal(t->ok_exit_codes[0], 0);
    }
    /* ids unique, patterns lower case and non-empty, nothing destructive */
    for (size_t i = 0; i < reg.count; i++) {
        for (size_t j = i + 1; j < reg.count; j++) assert_string_not_equal(reg.tools[i].id, reg.tools[j].id);
        for (size_t p = 0; p < reg.tools[i].n_patterns; p++) {
            const char *s = reg.tools[i].patterns[p];
            assert_true(*s);
            /* lower case, except the number placeholder word "N" */
            for (const char *q = s; *q; q++)
                if (*q >= 'A' && *q <= 'Z')
                    assert_true(*q == 'N' && (q == s || q[-1] == ' ') && (q[1] == ' ' || !q[1]));
        }
    }
    const char *forbidden[] = {"rm", "mv", "dd", "chmod", "tee", "sh", "bash"};
    for (size_t i = 0; i < sizeof forbidden / sizeof *forbidden; i++)
        assert_null(agx_registry_find(&reg, forbidden[i]));
    const agx_tool *grep = agx_registry_find(&reg, "grep");
    assert_int_equal(grep->n_ok_exit_codes, 2);
    assert_int_equal(grep->ok_exit_codes[1], 1);
    assert_int_equal(agx_registry_find(&reg, "wc")->n_ok_exit_codes, 1);
    assert_null(agx_registry_find(&reg, "GREP"));
    assert_null(agx_registry_find(&reg, NULL));
    agx_registry_free(&reg);
}

static bool tool_has_pattern(const agx_registry *reg, const char *id, const char *pat) {
    const agx_tool *t = agx_registry_find(reg, id);
    for (size_t i = 0; t && i < t->n_patterns; i++)
        if (!strcmp(t->patterns[i], pat)) return true;
    return false;
}

static void test_patterns_name_everyday_phrases(void **state) {
    (void)state;
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    assert_true(tool_has_pattern(&reg, "wc", "count lines"));
    assert_true(tool_has_pattern(&reg, "wc", "how many lines"));
    assert_true(tool_has_pattern(&reg, "head", "first lines"));
    assert_true(tool_has_pattern(&reg, "head", "first N lines"));
    assert_true(tool_has_pattern(&reg, "tail", "last N lines"));
    assert_true(tool_has_pattern(&reg, "tail", "last lines"));
    assert_true(tool_has_pattern(&reg, "sort", "sort"));
    assert_true(tool_has_pattern(&reg, "uniq", "remove duplicates"));
    assert_true(tool_has_pattern(&reg, "grep", "lines containing"));
    assert_true(tool_has_pattern(&reg, "find", "files named"));
    agx_registry_free(&reg);
}

static void test_closest(void **state) {
    (void)state;
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    assert_string_equal(agx_registry_closest(&reg, "gerp"), "grep");
    assert_string_equal(agx_registry_closest(&reg, "grpe"), "grep");
    assert_string_equal(agx_registry_closest(&reg, "sortt"), "sort");
    assert_string_equal(agx_registry_closest(&reg, "Sort"), "sort");
    assert_string_equal(agx_registry_closest(&reg, "/bin/cat"), "cat");
    assert_string_equal(agx_registry_closest(&reg, "xarg"), "xargs");
    assert_null(agx_registry_closest(&reg, "python"));
    assert_null(agx_registry_closest(&reg, ""));
    assert_null(agx_registry_closest(&reg, NULL));
    agx_registry_free(&reg);
}

static char *write_tmp(const char *dir, const char *name, const char *content) {
    char *path = agx_sprintf("%s/%s", dir, name);
    agx_error err;
    assert_int_equal(agx_file_write_atomic(path, content, strlen(content), &err), AGX_OK);
    return path;
}

static void test_merge_adds_and_overrides(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = write_tmp(dir, "tools.json",
                           "{\"tools\": [\n"
                           "  {\"id\": \"rg\", \"command\": \"/usr/bin/rg\", \"description\": \"ripgrep\",\n"
                           "   \"patterns\": [\"search fast\"], \"ok_exit_codes\": [0, 1]},\n"
                           "  {\"id\": \"wc\", \"description\": \"my wc\"},\n"
                           "  {\"id\": \"mytool\"}\n"
                           "]}\n");
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    size_t before = reg.count;
    assert_int_equal(agx_registry_merge_file(&reg, path, &err), AGX_OK);
    assert_int_equal(reg.count, before + 2);
    const agx_tool *rg = agx_registry_find(&reg, "rg");
    assert_non_null(rg);
    assert_string_equal(rg->command, "/usr/bin/rg");
    assert_int_equal(rg->n_ok_exit_codes, 2);
    assert_string_equal(rg->patterns[0], "search fast");
    const agx_tool *wc = agx_registry_find(&reg, "wc");
    assert_string_equal(wc->description, "my wc");
    assert_true(wc->n_patterns >= 4); /* fields not given are kept */
    const agx_tool *my = agx_registry_find(&reg, "mytool");
    assert_string_equal(my->command, "mytool");
    assert_int_equal(my->n_ok_exit_codes, 1);
    assert_int_equal(my->ok_exit_codes[0], 0);
    assert_int_equal(my->n_patterns, 0);
    /* the closest match considers user tools and their executables */
    assert_string_equal(agx_registry_closest(&reg, "mytol"), "mytool");
    agx_registry_free(&reg);
    free(path);
    /* "disabled": true removes a tool, built-in or added earlier in the file */
    path = write_tmp(dir, "off.json",
                     "[{\"id\": \"xargs\", \"disabled\": true}, {\"id\": \"fd\"},"
                     " {\"id\": \"fd\", \"disabled\": true}, {\"id\": \"nope\", \"disabled\": true},"
                     " {\"id\": \"sed\", \"disabled\": false, \"description\": \"kept\"}]");
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    before = reg.count;
    assert_int_equal(agx_registry_merge_file(&reg, path, &err), AGX_OK);
    assert_int_equal(reg.count, before - 1);
    assert_null(agx_registry_find(&reg, "xargs"));
    assert_null(agx_registry_find(&reg, "fd"));
    assert_string_equal(agx_registry_find(&reg, "sed")->description, "kept");
    assert_non_null(agx_registry_find(&reg, "du")); /* the one after xargs moved down intact */
    assert_string_equal(agx_registry_find(&reg, "du")->command, "du");
    agx_registry_free(&reg);
    free(path);
    /* a bare array works too */
    path = write_tmp(dir, "bare.json", "[{\"id\": \"fd\"}]");
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    assert_int_equal(agx_registry_merge_file(&reg, path, &err), AGX_OK);
    assert_non_null(agx_registry_find(&reg, "fd"));
    agx_registry_free(&reg);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

static void expect_bad_file(const char *dir, const char *content, const char *part) {
    char *path = write_tmp(dir, "bad.json", content);
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    size_t before = reg.count;
    char *wc_desc = strdup(agx_registry_find(&reg, "wc")->description);
    assert_int_equal(agx_registry_merge_file(&reg, path, &err), AGX_ERR_JSON);
    if (!strstr(err.message, part)) fail_msg("<<%s>>: message lacks '%s': %s", content, part, err.message);
    assert_non_null(strstr(err.message, path));
    /* a bad file changes nothing */
    assert_int_equal(reg.count, before);
    assert_string_equal(agx_registry_find(&reg, "wc")->description, wc_desc);
    free(wc_desc);
    agx_registry_free(&reg);
    free(path);
}

static void test_malformed_files(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    expect_bad_file(dir, "{\"tools\": [\n  {\"id\": \"x\",}\n]}", "line 2 column");
    expect_bad_file(dir, "{\"tools\": [\n\n   {\"id\" \"x\"}]}", "line 3 column");
    expect_bad_file(dir, "", "line 1");
    expect_bad_file(dir, "{\"tool\": []}", "expected {\"tools\": [...]}");
    expect_bad_file(dir, "{\"tools\": {}}", "must be an array");
    expect_bad_file(dir, "{\"tools\": [5]}", "tools[0] must be an object");
    expect_bad_file(dir, "{\"tools\": [{\"command\": \"x\"}]}", "lacks \"id\"");
    expect_bad_file(dir, "{\"tools\": [{\"id\": 3}]}", "tools[0].id must be a string, not an integer");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"a b\"}]}", "tools[0].id 'a b' must be");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"ok\"}, {\"id\": \"x\", \"patterns\": \"count\"}]}",
                    "tools[1].patterns must be an array of strings, not a string");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"x\", \"patterns\": [\"a\", 2]}]}", "patterns[1] must be a string");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"x\", \"ok_exit_codes\": [0, 300]}]}", "ok_exit_codes[1]");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"x\", \"ok_exit_codes\": []}]}", "non-empty");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"x\", \"ok_exit_code\": [0]}]}", "unknown field 'ok_exit_code'");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"x\", \"command\": \"\"}]}", "command is empty");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"x\", \"disabled\": \"yes\"}]}", "disabled must be true or false");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"x\", \"description\": \"a\\u001b[2J\"}]}", "control characters");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"wc\", \"description\": \"changed\"}, {\"id\": 1}]}",
                    "tools[1].id");
    /* raw control bytes in the file are escaped in the message */
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"x\x1b[2J\"}]}", "control character 0x1b");
    expect_bad_file(dir, "{\"tools\": [{\"id\": \"x\", \"\\u001b[2J\": 1}]}", "unknown field '\\x1b[2J'");
    agx_test_rmtree(dir);
    free(dir);
}

static void test_load_default_env(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    agx_registry reg;
    agx_error err;
    /* AGX_TOOLS_FILE set but missing: a config error naming it */
    char *missing = agx_sprintf("%s/nope.json", dir);
    setenv("AGX_TOOLS_FILE", missing, 1);
    assert_int_equal(agx_registry_load_default(&reg, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "AGX_TOOLS_FILE"));
    assert_non_null(strstr(err.message, missing));
    /* AGX_TOOLS_FILE set and valid */
    char *good = write_tmp(dir, "t.json", "{\"tools\":[{\"id\":\"rg\"}]}");
    setenv("AGX_TOOLS_FILE", good, 1);
    assert_int_equal(agx_registry_load_default(&reg, &err), AGX_OK);
    assert_non_null(agx_registry_find(&reg, "rg"));
    agx_registry_free(&reg);
    /* AGX_TOOLS_FILE malformed */
    char *bad = write_tmp(dir, "b.json", "{\"tools\":[\n{\"id\":\"rg\"\n]}");
    setenv("AGX_TOOLS_FILE", bad, 1);
    assert_int_equal(agx_registry_load_default(&reg, &err), AGX_ERR_JSON);
    assert_non_null(strstr(err.message, "line 3"));
    /* unset: the default file under AGX_HOME is optional... */
    unsetenv("AGX_TOOLS_FILE");
    setenv("AGX_HOME", dir, 1);
    assert_int_equal(agx_registry_load_default(&reg, &err), AGX_OK);
    assert_null(agx_registry_find(&reg, "rg"));
    agx_registry_free(&reg);
    /* ...and used when present */
    char *def = write_tmp(dir, "tools.json", "[{\"id\":\"fd\"}]");
    assert_int_equal(agx_registry_load_default(&reg, &err), AGX_OK);
    assert_non_null(agx_registry_find(&reg, "fd"));
    agx_registry_free(&reg);
    unsetenv("AGX_HOME");
    free(def);
    free(bad);
    free(good);
    free(missing);
    agx_test_rmtree(dir);
    free(dir);
}

static void test_to_json(void **state) {
    (void)state;
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    for (int pretty = 0; pretty <= 1; pretty++) {
        char *j = agx_registry_to_json(&reg, pretty);
        assert_non_null(j);
        json_error_t jerr;
        json_t *root = json_loads(j, 0, &jerr);
        assert_non_null(root);
        json_t *tools = json_object_get(root, "tools");
        assert_int_equal(json_array_size(tools), reg.count);
        json_t *first = json_array_get(tools, 0);
        /* stable key order */
        const char *keys[] = {"id", "command", "description", "patterns", "ok_exit_codes"};
        void *it = json_object_iter(first);
        for (size_t k = 0; k < 5; k++, it = json_object_iter_next(first, it))
            assert_string_equal(json_object_iter_key(it), keys[k]);
        assert_null(it);
        /* grep lists both exit codes */
        for (size_t i = 0; i < json_array_size(tools); i++) {
            json_t *t = json_array_get(tools, i);
            if (!strcmp(json_string_value(json_object_get(t, "id")), "grep"))
                assert_int_equal(json_array_size(json_object_get(t, "ok_exit_codes")), 2);
        }
        assert_true(pretty ? strchr(j, '\n') != NULL : strchr(j, '\n') == NULL);
        json_decref(root);
        free(j);
    }
    agx_registry_free(&reg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_tools),
        cmocka_unit_test(test_patterns_name_everyday_phrases),
        cmocka_unit_test(test_closest),
        cmocka_unit_test(test_merge_adds_and_overrides),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_load_default_env),
        cmocka_unit_test(test_to_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
