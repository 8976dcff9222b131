/* test_plan.c — the plan data model (add/copy/append/renumber), the canonical
 * serializer (exact compact and pretty text, stable key order) and the strict
 * reader of the canonical form. */
#include "agx_test.h"

#include <stdlib.h>
#include <string.h>

#include "agx/plan.h"

static void build_sort_uniq(agx_plan *p) {
    agx_error err;
    agx_plan_init(p);
    assert_int_equal(agx_plan_add_task(p, "sort", NULL, 0, 0, &err), AGX_OK);
    const char *uargs[] = {"-c"};
    assert_int_equal(agx_plan_add_task(p, "uniq", uargs, 1, 1, &err), AGX_OK);
}

static void test_add_task_defaults(void **state) {
    (void)state;
    agx_plan p;
    build_sort_uniq(&p);
    assert_int_equal(p.n_tasks, 2);
    assert_int_equal(p.tasks[0].task_number, 1);
    assert_int_equal(p.tasks[1].task_number, 2);
    assert_string_equal(p.tasks[1].command, "uniq");
    assert_int_equal(p.tasks[1].n_args, 1);
    assert_string_equal(p.tasks[1].args[0], "-c");
    assert_int_equal(p.tasks[0].timeout_secs, AGX_DEFAULT_TIMEOUT_SECS);
    assert_int_equal(p.tasks[0].input_from_task, 0);
    assert_int_equal(p.tasks[1].input_from_task, 1);
    agx_error err;
    assert_int_equal(agx_plan_add_task(&p, NULL, NULL, 0, 0, &err), AGX_ERR_VALIDATION);
    assert_int_equal(p.n_tasks, 2);
    agx_plan_free(&p);
    assert_int_equal(p.n_tasks, 0);
    assert_null(p.tasks);
    agx_plan_free(&p); /* idempotent */
}

static void test_args_are_deep_copies(void **state) {
    (void)state;
    char arg[8] = "-n";
    const char *args[] = {arg, "5"};
    agx_plan p;
    agx_error err;
    agx_plan_init(&p);
    assert_int_equal(agx_plan_add_task(&p, "head", args, 2, 0, &err), AGX_OK);
    arg[1] = 'x';
    assert_string_equal(p.tasks[0].args[0], "-n");
    agx_plan c;
    assert_int_equal(agx_plan_copy(&p, &c, &err), AGX_OK);
    agx_plan_free(&p);
    assert_int_equal(c.n_tasks, 1);
    assert_string_equal(c.tasks[0].args[1], "5");
    agx_plan_free(&c);
}

static void test_compact_json_exact(void **state) {
    (void)state;
    agx_plan p;
    build_sort_uniq(&p);
    char *j = agx_plan_to_json(&p, AGX_JSON_COMPACT);
    assert_string_equal(j,
                        "{\"tasks\":[{\"task_number\":1,\"command\":\"sort\",\"args\":[],\"timeout_secs\":300},"
                        "{\"task_number\":2,\"command\":\"uniq\",\"args\":[\"-c\"],\"timeout_secs\":300,"
                        "\"input_from_task\":1}]}");
    free(j);
    p.plan_id = strdup("p-1");
    p.plan_description = strdup("count \"dupes\"\n");
    j = agx_plan_to_json(&p, AGX_JSON_COMPACT);
    const char *head = "{\"plan_id\":\"p-1\",\"plan_description\":\"count \\\"dupes\\\"\\n\",\"tasks\":[";
    if (strncmp(j, head, strlen(head)) != 0) fail_msg("got %s", j);
    free(j);
    agx_plan_free(&p);
}

static void test_pretty_json_exact(void **state) {
    (void)state;
    agx_plan p;
    agx_error err;
    agx_plan_init(&p);
    const char *a[] = {"-l"};
    assert_int_equal(agx_plan_add_task(&p, "wc", a, 1, 0, &err), AGX_OK);
    char *j = agx_plan_to_json(&p, AGX_JSON_PRETTY);
    assert_string_equal(j, "{\n"
                           "  \"tasks\": [\n"
                           "    {\n"
                           "      \"task_number\": 1,\n"
                           "      \"command\": \"wc\",\n"
                           "      \"args\": [\n"
                           "        \"-l\"\n"
                           "      ],\n"
                           "      \"timeout_secs\": 300\n"
                           "    }\n"
                           "  ]\n"
                           "}");
    free(j);
    agx_plan_free(&p);
    agx_plan_init(&p);
    j = agx_plan_to_json(&p, AGX_JSON_COMPACT);
    assert_string_equal(j, "{\"tasks\":[]}");
    free(j);
}

static void test_invalid_utf8_serialized_safely(void **state) {
    (void)state;
    const char *a[] = {"ok\xff\xc3("};
    agx_plan p;
    agx_error err;
    agx_plan_init(&p);
    assert_int_equal(agx_plan_add_task(&p, "grep", a, 1, 0, &err), AGX_OK);
    char *j = agx_plan_to_json(&p, AGX_JSON_COMPACT);
    assert_non_null(j);
    assert_non_null(strstr(j, "\"ok\xEF\xBF\xBD\xEF\xBF\xBD(\""));
    agx_plan back;
    assert_int_equal(agx_plan_from_json(j, strlen(j), &back, &err), AGX_OK);
    agx_plan_free(&back);
    free(j);
    agx_plan_free(&p);
}

static void test_round_trip(void **state) {
    (void)state;
    agx_plan p;
    build_sort_uniq(&p);
    p.plan_id = strdup("id");
    p.tasks[1].timeout_secs = 7;
    agx_error err;
    for (int pretty = 0; pretty <= 1; pretty++) {
        char *j = agx_plan_to_json(&p, pretty);
        agx_plan q;
        assert_int_equal(agx_plan_from_json(j, strlen(j), &q, &err), AGX_OK);
        assert_int_equal(q.n_tasks, 2);
        assert_string_equal(q.plan_id, "id");
        assert_null(q.plan_description);
        assert_int_equal(q.tasks[1].timeout_secs, 7);
        assert_int_equal(q.tasks[1].input_from_task, 1);
        char *j2 = agx_plan_to_json(&q, pretty);
        assert_string_equal(j, j2);
        free(j2);
        free(j);
        agx_plan_free(&q);
    }
    agx_plan_free(&p);
}

static void test_append_shifts_references(void **state) {
    (void)state;
    agx_plan a, b;
    agx_error err;
    build_sort_uniq(&a);
    build_sort_uniq(&b);
    assert_int_equal(agx_plan_append(&a, &b, &err), AGX_OK);
    assert_int_equal(a.n_tasks, 4);
    assert_int_equal(a.tasks[2].task_number, 3);
    assert_int_equal(a.tasks[3].task_number, 4);
    assert_int_equal(a.tasks[2].input_from_task, 0);
    assert_int_equal(a.tasks[3].input_from_task, 3);
    assert_string_equal(a.tasks[3].args[0], "-c");
    /* appending to itself duplicates once */
    assert_int_equal(agx_plan_append(&a, &a, &err), AGX_OK);
    assert_int_equal(a.n_tasks, 8);
    assert_int_equal(a.tasks[7].input_from_task, 7);
    assert_int_equal(a.tasks[5].input_from_task, 5);
    /* a reference that named no task of the source stays visibly invalid */
    b.tasks[1].input_from_task = 9;
    assert_int_equal(agx_plan_append(&a, &b, &err), AGX_OK);
    assert_int_equal(a.tasks[9].input_from_task, -1);
    agx_plan_free(&a);
    agx_plan_free(&b);
}

static void test_renumber_follows_references(void **state) {
    (void)state;
    agx_plan p;
    agx_error err;
    agx_plan_init(&p);
    for (int i = 0; i < 3; i++) assert_int_equal(agx_plan_add_task(&p, "cat", NULL, 0, 0, &err), AGX_OK);
    p.tasks[0].task_number = 5;
    p.tasks[1].task_number = 9;
    p.tasks[2].task_number = 7;
    p.tasks[1].input_from_task = 5;
    p.tasks[2].input_from_task = 42; /* names nothing */
    agx_plan_renumber(&p);
    assert_int_equal(p.tasks[0].task_number, 1);
    assert_int_equal(p.tasks[1].task_number, 2);
    assert_int_equal(p.tasks[2].task_number, 3);
    assert_int_equal(p.tasks[1].input_from_task, 1);
    assert_int_equal(p.tasks[2].input_from_task, -1);
    agx_plan_free(&p);
}

static void expect_strict_error(const char *text, const char *part) {
    agx_plan p;
    agx_error err;
    assert_int_equal(agx_plan_from_json(text, strlen(text), &p, &err), AGX_ERR_JSON);
    if (!strstr(err.message, part)) fail_msg("<<%s>>: message lacks '%s': %s", text, part, err.message);
    assert_int_equal(p.n_tasks, 0);
    assert_null(p.plan_id);
}

static void test_strict_reader_errors(void **state) {
    (void)state;
    /* truncated buffer (crash mid-write): position reported */
    expect_strict_error("{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"ar", "line 1 column");
    expect_strict_error("{\"tasks\":[]}\n{\"tasks\":[]}", "line 2");
    expect_strict_error("", "line 1");
    expect_strict_error("[]", "top level must be an object");
    expect_strict_error("{}", "missing \"tasks\"");
    expect_strict_error("{\"tasks\":{}}", "must be an array");
    expect_strict_error("{\"tasks\":[],\"extra\":1}", "unknown top-level key 'extra'");
    expect_strict_error("{\"tasks\":[{\"command\":\"ls\"}]}", "lacks task_number");
    expect_strict_error("{\"tasks\":[{\"task_number\":1}]}", "lacks command");
    expect_strict_error("{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"cmd\":\"x\"}]}", "unknown key 'cmd'");
    expect_strict_error("{\"tasks\":[{\"task_number\":\"1\",\"command\":\"ls\"}]}", "task_number must be an integer");
    expect_strict_error("{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"args\":[1]}]}",
                        "tasks[0].args[0] must be a string");
    expect_strict_error("{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"timeout_secs\":99999999999}]}",
                        "out of range");
    expect_strict_error("{\"tasks\":[],\"tasks\":[]}", "duplicate");
    expect_strict_error("{\"plan_id\":5,\"tasks\":[]}", "plan_id must be a string");
    expect_strict_error("```json\n{\"tasks\":[]}\n```", "line 1");
    expect_strict_error("{\"tasks\":[{\"task_number\":1,\"command\":\"l\x1bs\"}]}", "control character 0x1b");
    /* decoded escapes quoted in a message come out escaped, never raw */
    expect_strict_error("{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"\\u001b[2J\":1}]}",
                        "unknown key '\\x1b[2J'");
}

static void test_strict_reader_keeps_values(void **state) {
    (void)state;
    /* The strict reader does not renumber: the validator judges numbering. */
    const char *t = "{\"tasks\":[{\"task_number\":3,\"command\":\"ls\",\"args\":[],\"timeout_secs\":-1,"
                    "\"input_from_task\":null}]}";
    agx_plan p;
    agx_error err;
    assert_int_equal(agx_plan_from_json(t, strlen(t), &p, &err), AGX_OK);
    assert_int_equal(p.tasks[0].task_number, 3);
    assert_int_equal(p.tasks[0].timeout_secs, -1);
    assert_int_equal(p.tasks[0].input_from_task, 0);
    agx_plan_free(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_task_defaults),
        cmocka_unit_test(test_args_are_deep_copies),
        cmocka_unit_test(test_compact_json_exact),
        cmocka_unit_test(test_pretty_json_exact),
        cmocka_unit_test(test_invalid_utf8_serialized_safely),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_append_shifts_references),
        cmocka_unit_test(test_renumber_follows_references),
        cmocka_unit_test(test_strict_reader_errors),
        cmocka_unit_test(test_strict_reader_keeps_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
