/* test_cli.c — the agx command run as a subprocess with AGX_PLAN_PATH and HOME
 * in a scratch directory: every plan subcommand, tools, health, --help and
 * --version, exit codes, and what goes to stdout versus stderr. */
#include "agx_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"

typedef struct {
    char *dir;
    char *plan;
} fixture;

static fixture fx;

static int setup(void **state) {
    (void)state;
    fx.dir = agx_test_tmpdir();
    assert_non_null(fx.dir);
    fx.plan = agx_sprintf("%s/plan.json", fx.dir);
    /* a clean configuration: nothing from the developer's environment leaks in */
    static const char *const vars[] = {"AGX_BACKEND", "AGX_ECHO_MODEL", "AGX_DELTA_MODEL",
                                       "AGX_MODEL_PATH", "AGX_TOOLS_FILE", "AGX_HOME",
                                       "AGX_MODEL_ROLE", "AGX_DEVICE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    setenv("AGX_PLAN_PATH", fx.plan, 1);
    setenv("HOME", fx.dir, 1); /* no ~/.agx/tools.json */
    return 0;
}

static int teardown(void **state) {
    (void)state;
    agx_test_rmtree(fx.dir);
    free(fx.dir);
    free(fx.plan);
    return 0;
}

typedef agx_test_cli_result result;

/* Runs "agx <args>" (args is shell text, already quoted) with optional stdin. */
static result agx(const char *args, const char *stdin_data) { return agx_test_cli(NULL, args, stdin_data); }

static json_t *buffer_json(void) {
    result r = agx("plan preview --json", NULL);
    assert_int_equal(r.rc, 0);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    if (!j) fail_msg("preview --json is not JSON (%s): %s", je.text, r.out);
    agx_test_cli_result_free(&r);
    return j;
}

static char *buffer_text(void) {
    result r = agx("plan preview --json", NULL);
    assert_int_equal(r.rc, 0);
    free(r.err);
    return r.out;
}

static size_t buffer_tasks(void) {
    json_t *j = buffer_json();
    size_t n = json_array_size(json_object_get(j, "tasks"));
    json_decref(j);
    return n;
}

static void test_help_and_version(void **state) {
    (void)state;
    result r = agx("--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "Usage: agx"));
    assert_non_null(strstr(r.out, "AGX_PLAN_PATH"));
    assert_string_equal(r.err, "");
    agx_test_cli_result_free(&r);
    r = agx("--version", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "agx " AGX_VERSION "\n");
    agx_test_cli_result_free(&r);
    r = agx("plan --help", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "preview [--json]"));
    agx_test_cli_result_free(&r);
    static const char *const usage_errors[] = {"nonsense", "plan", "plan bogus", "plan add",
                                               "plan preview --yaml", "plan new extra",
                                               "tools --bogus", "health --bogus",
                                               "plan validate extra"};
    for (size_t i = 0; i < sizeof usage_errors / sizeof usage_errors[0]; i++) {
        r = agx(usage_errors[i], NULL);
        if (r.rc != AGX_EXIT_USAGE) fail_msg("agx %s: exit %d, expected 2", usage_errors[i], r.rc);
        assert_string_equal(r.out, "");
        assert_true(strlen(r.err) > 0);
        agx_test_cli_result_free(&r);
    }
}

static void test_plan_flow(void **state) {
    (void)state;
    result r = agx("plan new", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    agx_test_cli_result_free(&r);
    r = agx("plan preview", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "empty"));
    agx_test_cli_result_free(&r);
    assert_int_equal(buffer_tasks(), 0);

    /* the default (unconfigured) backend is rules, with one note on stderr */
    r = agx("plan add 'find all TODO comments under src and count them per file'", NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(agx_test_count(r.err, "note:"), 1);
    assert_non_null(strstr(r.err, "AGX_ECHO_MODEL"));
    assert_non_null(strstr(r.out, "grep"));
    assert_non_null(strstr(r.out, "uniq"));
    assert_null(strstr(r.out, "note:"));
    agx_test_cli_result_free(&r);
    json_t *j = buffer_json();
    json_t *tasks = json_object_get(j, "tasks");
    assert_int_equal(json_array_size(tasks), 5);
    json_t *t1 = json_array_get(tasks, 0);
    assert_string_equal(json_string_value(json_object_get(t1, "command")), "grep");
    assert_string_equal(json_string_value(json_array_get(json_object_get(t1, "args"), 1)), "TODO");
    assert_int_equal(json_integer_value(json_object_get(t1, "timeout_secs")), 300);
    assert_null(json_object_get(t1, "input_from_task"));
    json_t *t5 = json_array_get(tasks, 4);
    assert_int_equal(json_integer_value(json_object_get(t5, "input_from_task")), 4);
    json_decref(j);

    /* piped input: the new task reads stdin and takes no file operand; explicit rules: no note */
    r = agx("plan add show the first 2 lines", "alpha\nbeta\ngamma\n");
    assert_int_equal(r.rc, 0);
    agx_test_cli_result_free(&r);
    setenv("AGX_BACKEND", "rules", 1);
    r = agx("plan add 'count words'", "one two\n");
    unsetenv("AGX_BACKEND");
    assert_int_equal(r.rc, 0);
    assert_int_equal(agx_test_count(r.err, "note:"), 0);
    agx_test_cli_result_free(&r);
    j = buffer_json();
    tasks = json_object_get(j, "tasks");
    assert_int_equal(json_array_size(tasks), 7);
    json_t *t6 = json_array_get(tasks, 5);
    assert_string_equal(json_string_value(json_object_get(t6, "command")), "head");
    json_t *args6 = json_object_get(t6, "args");
    assert_int_equal(json_array_size(args6), 2);
    assert_string_equal(json_string_value(json_array_get(args6, 1)), "2");
    assert_null(json_object_get(t6, "input_from_task"));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(tasks, 6), "task_number")), 7);
    json_decref(j);

    /* the human preview shows every task */
    r = agx("plan preview", NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(agx_test_count(r.out, "\n"), 8); /* header + 7 tasks */
    assert_non_null(strstr(r.out, "task 4"));
    agx_test_cli_result_free(&r);

    r = agx("plan validate", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "valid (7 tasks)"));
    agx_test_cli_result_free(&r);

    /* an instruction nothing matches: data error, buffer unchanged, nothing on stdout */
    r = agx("plan add 'make me a sandwich'", NULL);
    assert_int_equal(r.rc, AGX_EXIT_DATA);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "no tool matches 'make me a sandwich'"));
    agx_test_cli_result_free(&r);
    assert_int_equal(buffer_tasks(), 7);

    /* "--" ends the options: what follows is the instruction even if it looks like one */
    r = agx("plan add -- --help", NULL);
    assert_int_equal(r.rc, AGX_EXIT_DATA);
    assert_non_null(strstr(r.err, "no tool matches '--help'"));
    agx_test_cli_result_free(&r);
    r = agx("plan add --help", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "Usage: agx plan"));
    agx_test_cli_result_free(&r);

    /* the rules planner cannot review a plan: refinement is a config error that
     * says how to configure a model, and the buffer is left as it was */
    char *before = buffer_text();
    r = agx("plan validate --refine", NULL);
    assert_int_equal(r.rc, AGX_EXIT_CONFIG);
    assert_non_null(strstr(r.err, "AGX_DELTA_MODEL"));
    assert_non_null(strstr(r.err, "left unchanged"));
    agx_test_cli_result_free(&r);
    char *after = buffer_text();
    assert_string_equal(before ? before : "", after ? after : "");
    free(before);
    free(after);

    r = agx("plan new", NULL);
    assert_int_equal(r.rc, 0);
    agx_test_cli_result_free(&r);
    assert_int_equal(buffer_tasks(), 0);
}

static void test_validate_reports_every_problem(void **state) {
    (void)state;
    FILE *f = fopen(fx.plan, "w");
    assert_non_null(f);
    fputs("{\"tasks\": [{\"task_number\": 1, \"command\": \"gerp\", \"args\": [\"x\"], "
          "\"timeout_secs\": 300}, {\"task_number\": 2, \"command\": \"sort\", \"args\": [], "
          "\"timeout_secs\": 300, \"input_from_task\": 2}]}\n",
          f);
    fclose(f);
    result r = agx("plan validate", NULL);
    assert_int_equal(r.rc, AGX_EXIT_DATA);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "gerp"));
    assert_non_null(strstr(r.err, "grep")); /* the closest tool */
    assert_true(agx_test_count(r.err, "\n  - ") >= 2);
    agx_test_cli_result_free(&r);
}

static void test_corrupt_buffer(void **state) {
    (void)state;
    const char torn[] = "{\"tasks\": [{\"task_number\": 1, \"command\": \"gr";
    FILE *f = fopen(fx.plan, "w");
    assert_non_null(f);
    fputs(torn, f);
    fclose(f);
    static const char *const refuse[] = {"plan add 'show the first 3 lines'", "plan preview",
                                         "plan validate", "plan preview --json"};
    for (size_t i = 0; i < sizeof refuse / sizeof refuse[0]; i++) {
        result r = agx(refuse[i], "x\n");
        if (r.rc != AGX_EXIT_DATA) fail_msg("agx %s on a corrupt buffer: exit %d", refuse[i], r.rc);
        assert_non_null(strstr(r.err, "corrupt"));
        assert_non_null(strstr(r.err, "agx plan new"));
        assert_string_equal(r.out, "");
        agx_test_cli_result_free(&r);
        char *now = NULL;
        size_t len;
        agx_error err;
        assert_int_equal(agx_file_read_all(fx.plan, 0, &now, &len, &err), AGX_OK);
        assert_string_equal(now, torn); /* kept exactly */
        free(now);
    }
    result r = agx("plan new", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.err, ".corrupt-"));
    const char *p = strstr(r.err, fx.plan);
    assert_non_null(p);
    char moved[4096];
    assert_int_equal(sscanf(p, "%4095[^']", moved), 1);
    char *kept = NULL;
    size_t len;
    agx_error err;
    assert_int_equal(agx_file_read_all(moved, 0, &kept, &len, &err), AGX_OK);
    assert_string_equal(kept, torn);
    free(kept);
    agx_test_cli_result_free(&r);
    assert_int_equal(buffer_tasks(), 0);
}

static void test_parse(void **state) {
    (void)state;
    char *in = agx_sprintf("%s/reply.txt", fx.dir);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fputs("Sure! Here is the plan:\n```json\n{\"plan\":[{\"cmd\":\"sort\",\"args\":[\"-n\"]},"
          "{\"cmd\":\"uniq\",\"args\":[\"-c\"],\"input_from_step\":1}]}\n```\n",
          f);
    fclose(f);
    char *cmd = agx_sprintf("plan parse '%s'", in);
    result r = agx(cmd, NULL);
    free(cmd);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    assert_non_null(j);
    json_t *tasks = json_object_get(j, "tasks");
    assert_int_equal(json_array_size(tasks), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 1), "command")), "uniq");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(tasks, 1), "input_from_task")), 1);
    json_decref(j);
    agx_test_cli_result_free(&r);
    /* stdin, both "-" and no argument; compact output is one line */
    r = agx("plan parse - --compact", "[\"ls\", \"wc\"]");
    assert_int_equal(r.rc, 0);
    assert_int_equal(agx_test_count(r.out, "\n"), 1);
    assert_non_null(strstr(r.out, "\"ls\""));
    agx_test_cli_result_free(&r);
    r = agx("plan parse", "I cannot help with that.");
    assert_int_equal(r.rc, AGX_EXIT_DATA);
    assert_string_equal(r.out, "");
    assert_true(strlen(r.err) > 20);
    agx_test_cli_result_free(&r);
    r = agx("plan parse /nonexistent/reply.txt", NULL);
    assert_int_equal(r.rc, AGX_EXIT_IO);
    assert_non_null(strstr(r.err, "/nonexistent/reply.txt"));
    agx_test_cli_result_free(&r);
    free(in);
}

static void test_tools(void **state) {
    (void)state;
    result r = agx("tools", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "\ngrep "));
    assert_non_null(strstr(r.out, "ok exit codes: 0,1"));
    agx_test_cli_result_free(&r);
    r = agx("tools --json", NULL);
    assert_int_equal(r.rc, 0);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    assert_non_null(j);
    json_t *tools = json_object_get(j, "tools");
    assert_true(json_array_size(tools) >= 15);
    bool found = false;
    for (size_t i = 0; i < json_array_size(tools); i++)
        found |= strcmp(json_string_value(json_object_get(json_array_get(tools, i), "id")), "jq") == 0;
    assert_true(found);
    json_decref(j);
    agx_test_cli_result_free(&r);
    /* a malformed tools file is an error naming the file */
    char *bad = agx_sprintf("%s/tools.json", fx.dir);
    FILE *f = fopen(bad, "w");
    fputs("{\"tools\": [ {\"id\": }", f);
    fclose(f);
    setenv("AGX_TOOLS_FILE", bad, 1);
    r = agx("tools", NULL);
    unsetenv("AGX_TOOLS_FILE");
    assert_int_equal(r.rc, AGX_EXIT_DATA);
    assert_non_null(strstr(r.err, bad));
    assert_string_equal(r.out, "");
    agx_test_cli_result_free(&r);
    free(bad);
}

static void test_health_and_backend_config(void **state) {
    (void)state;
    result r = agx("health", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "backend: rules"));
    assert_non_null(strstr(r.out, "model: rules"));
    assert_non_null(strstr(r.out, "healthy"));
    agx_test_cli_result_free(&r);
    r = agx("health --json", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "\"healthy\": true"));
    agx_test_cli_result_free(&r);
    setenv("AGX_BACKEND", "bogus", 1);
    static const char *const cmds[] = {"health", "plan add 'show the first 2 lines'", "plan preview"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        r = agx(cmds[i], NULL);
        assert_int_equal(r.rc, AGX_EXIT_CONFIG);
        assert_string_equal(r.out, "");
        static const char *const valid[] = {"native", "candle", "ollama", "openai", "rules"};
        for (size_t k = 0; k < 5; k++) assert_non_null(strstr(r.err, valid[k]));
        agx_test_cli_result_free(&r);
    }
    unsetenv("AGX_BACKEND");
    setenv("AGX_CANDLE_TOP_P", "2", 1);
    r = agx("health", NULL);
    unsetenv("AGX_CANDLE_TOP_P");
    assert_int_equal(r.rc, AGX_EXIT_CONFIG);
    assert_non_null(strstr(r.err, "AGX_CANDLE_TOP_P"));
    agx_test_cli_result_free(&r);
    /* a secret never shows up in any output */
    setenv("AGX_OPENAI_API_KEY", "sk-very-secret-123", 1);
    setenv("AGX_BACKEND", "openai", 1);
    r = agx("health", NULL);
    assert_null(strstr(r.out, "sk-very-secret-123"));
    assert_null(strstr(r.err, "sk-very-secret-123"));
    agx_test_cli_result_free(&r);
    unsetenv("AGX_BACKEND");
    unsetenv("AGX_OPENAI_API_KEY");
}

/* Two shells run `agx plan add` in parallel loops: every step lands. */
static void test_concurrent_cli_adds(void **state) {
    (void)state;
    result r = agx("plan new", NULL);
    agx_test_cli_result_free(&r);
    const int per = 10; /* 2 * per = the validator's 20-task limit */
    char *script = agx_sprintf(
        "true; for w in a b; do ( i=1; while [ $i -le %d ]; do "
        "'%s' plan add \"show the first $i lines\" </dev/null >/dev/null 2>&1 || echo FAIL; "
        "i=$((i+1)); done ) & done; wait",
        per, agx_test_cli_path());
    char *out = NULL;
    int rc = agx_test_run(script, NULL, &out, NULL);
    assert_int_equal(rc, 0);
    assert_null(strstr(out ? out : "", "FAIL"));
    free(out);
    free(script);
    json_t *j = buffer_json();
    json_t *tasks = json_object_get(j, "tasks");
    assert_int_equal(json_array_size(tasks), (size_t)(2 * per));
    int seen[11] = {0};
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        json_t *t = json_array_get(tasks, i);
        assert_string_equal(json_string_value(json_object_get(t, "command")), "head");
        int n = atoi(json_string_value(json_array_get(json_object_get(t, "args"), 1)));
        assert_true(n >= 1 && n <= per);
        seen[n]++;
    }
    for (int n = 1; n <= per; n++) assert_int_equal(seen[n], 2);
    json_decref(j);
    /* the buffer is full: one more step is refused and nothing changes */
    r = agx("plan add 'show the last 3 lines'", NULL);
    assert_int_equal(r.rc, AGX_EXIT_DATA);
    assert_non_null(strstr(r.err, "combined plan"));
    agx_test_cli_result_free(&r);
    assert_int_equal(buffer_tasks(), (size_t)(2 * per));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_help_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validate_reports_every_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_and_backend_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_cli_adds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
