/* test_plan_parse.c — the lenient parser: every accepted shape, repairs, and a
 * corpus of malformed model outputs that must be repaired or refused with a
 * reason (never a crash; ASan/UBSan run these too). */
#include "agx_test.h"

#include <stdlib.h>
#include <string.h>

#include "agx/plan.h"
#include "agx/registry.h"
#include "agx/util.h"

static char *parse_json(const char *text, agx_status *st_out, agx_error *err) {
    agx_plan p;
    agx_status st = agx_plan_parse_lenient(text, strlen(text), &p, err);
    if (st_out) *st_out = st;
    if (st != AGX_OK) {
        assert_int_equal(p.n_tasks, 0); /* nothing half-built is handed back */
        return NULL;
    }
    char *j = agx_plan_to_json(&p, AGX_JSON_COMPACT);
    agx_plan_free(&p);
    assert_non_null(j);
    return j;
}

static void expect_plan(const char *text, const char *want) {
    agx_error err;
    agx_status st;
    char *got = parse_json(text, &st, &err);
    if (!got) fail_msg("parse failed for <<%s>>: %s", text, err.message);
    if (strcmp(got, want) != 0) fail_msg("input <<%s>>\n got  %s\n want %s", text, got, want);
    free(got);
}

static void expect_reject(const char *text, const char *reason_part) {
    agx_error err;
    agx_status st;
    char *got = parse_json(text, &st, &err);
    if (got) fail_msg("expected rejection of <<%s>>, got %s", text, got);
    assert_int_equal(st, AGX_ERR_PARSE);
    if (!strstr(err.message, reason_part))
        fail_msg("reason for <<%s>> lacks '%s': %s", text, reason_part, err.message);
}

#define T1(cmd, args) "{\"task_number\":1,\"command\":\"" cmd "\",\"args\":" args ",\"timeout_secs\":300}"
#define TN(n, cmd, args, from)                                                                 \
    "{\"task_number\":" #n ",\"command\":\"" cmd "\",\"args\":" args ",\"timeout_secs\":300," \
    "\"input_from_task\":" #from "}"

static const char *SORT_UNIQ =
    "{\"tasks\":[" T1("sort", "[]") "," TN(2, "uniq", "[\"-c\"]", 1) "]}";

/* ---------------------------------------------------------- accepted forms */

static void test_canonical_form(void **state) {
    (void)state;
    expect_plan(SORT_UNIQ, SORT_UNIQ);
    expect_plan("{\"plan_id\":\"p1\",\"plan_description\":\"count\",\"tasks\":[" T1("wc", "[\"-l\"]") "]}",
                "{\"plan_id\":\"p1\",\"plan_description\":\"count\",\"tasks\":[" T1("wc", "[\"-l\"]") "]}");
}

static void test_legacy_plan_objects(void **state) {
    (void)state;
    expect_plan("{\"plan\":[{\"cmd\":\"sort\",\"args\":[]},{\"cmd\":\"uniq\",\"args\":[\"-c\"],"
                "\"input_from_step\":1,\"timeout_secs\":300}]}",
                SORT_UNIQ);
    /* timeout kept, null reference = none */
    expect_plan("{\"plan\":[{\"cmd\":\"ls\",\"args\":[\"-l\"],\"input_from_step\":null,\"timeout_secs\":12}]}",
                "{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"args\":[\"-l\"],\"timeout_secs\":12}]}");
}

static void test_plan_of_strings_is_a_pipeline(void **state) {
    (void)state;
    expect_plan("{\"plan\":[\"sort\",\"uniq -c\"]}", SORT_UNIQ);
    expect_plan("[\"sort\", \"uniq -c\"]", SORT_UNIQ);
}

static void test_bare_array_of_steps(void **state) {
    (void)state;
    expect_plan("[{\"command\":\"sort\"},{\"command\":\"uniq\",\"args\":[\"-c\"],\"input_from_task\":1}]",
                SORT_UNIQ);
    expect_plan("[{\"tool\":\"sort\",\"args\":[]},{\"tool\":\"uniq\",\"arguments\":[\"-c\"],\"input_from\":1}]",
                SORT_UNIQ);
}

static void test_single_step_object(void **state) {
    (void)state;
    expect_plan("{\"command\":\"ls\",\"args\":[\"-la\"]}", "{\"tasks\":[" T1("ls", "[\"-la\"]") "]}");
}

static void test_fenced_and_prose(void **state) {
    (void)state;
    expect_plan("Sure! Here is the plan:\n```json\n" "{\"plan\":[\"sort\",\"uniq -c\"]}" "\n```\nLet me know.",
                SORT_UNIQ);
    expect_plan("```\n[\"sort\",\"uniq -c\"]\n```", SORT_UNIQ);
    /* Bracketed prose and non-plan JSON before the plan are skipped. */
    expect_plan("Steps [see below] use {braces}; config {\"x\": 1} and [1, 2]:\n"
                "{\"tasks\":[{\"command\":\"sort\"},{\"command\":\"uniq\",\"args\":[\"-c\"],\"input_from_task\":1}]}",
                SORT_UNIQ);
    /* The first plan wins over a later one. */
    expect_plan("{\"tasks\":[{\"command\":\"ls\"}]} or maybe {\"tasks\":[{\"command\":\"cat\"}]}",
                "{\"tasks\":[" T1("ls", "[]") "]}");
}

static void test_renumbering_and_reference_mapping(void **state) {
    (void)state;
    /* Numbers 10, 20, 30 become 1..3 and references follow their tasks. */
    expect_plan("{\"tasks\":[{\"task_number\":10,\"command\":\"sort\"},"
                "{\"task_number\":20,\"command\":\"uniq\",\"args\":[\"-c\"],\"input_from_task\":10},"
                "{\"task_number\":30,\"command\":\"sort\",\"args\":[\"-rn\"],\"input_from_task\":20}]}",
                "{\"tasks\":[" T1("sort", "[]") "," TN(2, "uniq", "[\"-c\"]", 1) ","
                TN(3, "sort", "[\"-rn\"]", 2) "]}");
    /* 0-based steps: input_from_step 0 means step 0. */
    expect_plan("{\"plan\":[{\"step\":0,\"cmd\":\"sort\"},{\"step\":1,\"cmd\":\"uniq\",\"args\":[\"-c\"],"
                "\"input_from_step\":0}]}",
                SORT_UNIQ);
    /* Unnumbered steps: references are positions. */
    expect_plan("{\"plan\":[{\"cmd\":\"sort\"},{\"cmd\":\"uniq\",\"args\":[\"-c\"],\"input_from_step\":1}]}",
                SORT_UNIQ);
}

static void test_command_with_inline_args(void **state) {
    (void)state;
    expect_plan("[{\"command\":\"grep -rn\",\"args\":[\"TODO\",\"src\"]}]",
                "{\"tasks\":[" T1("grep", "[\"-rn\",\"TODO\",\"src\"]") "]}");
    /* args as one string: split with shell quoting */
    expect_plan("[{\"command\":\"find\",\"args\":\"-name '*.c' -type f\"}]",
                "{\"tasks\":[" T1("find", "[\"-name\",\"*.c\",\"-type\",\"f\"]") "]}");
    /* empty quoted words are kept as empty arguments */
    expect_plan("[\"grep '' notes.txt\"]", "{\"tasks\":[" T1("grep", "[\"\",\"notes.txt\"]") "]}");
    /* a pipeline string becomes chained tasks */
    expect_plan("[\"grep -c 'a b' notes.txt | sort -n\"]",
                "{\"tasks\":[" T1("grep", "[\"-c\",\"a b\",\"notes.txt\"]") ","
                TN(2, "sort", "[\"-n\"]", 1) "]}");
}

static void test_numeric_strings_and_reals_accepted_for_numbers(void **state) {
    (void)state;
    expect_plan("[{\"command\":\"sort\"},{\"command\":\"uniq\",\"args\":[\"-c\"],\"input_from_task\":\"1\","
                "\"timeout_secs\":300.0}]",
                SORT_UNIQ);
}

static void test_thinking_and_quoted_replies(void **state) {
    (void)state;
    /* the draft inside <think> loses to the answer after it */
    expect_plan("<think>maybe {\"tasks\":[{\"command\":\"cat\"}]}? no.</think>\n"
                "{\"plan\":[\"sort\",\"uniq -c\"]}",
                SORT_UNIQ);
    /* an answer with a broken plan reports it rather than using the draft */
    expect_reject("<think>{\"tasks\":[{\"command\":\"cat\"}]}</think>[{\"command\": 5}]", "must be a string");
    /* a closing tag inside a JSON string is an argument, not the end of the thinking */
    static const char *const tag_arg =
        "{\"tasks\":[" T1("sort", "[\"</think>\"]") "," TN(2, "uniq", "[\"-c\"]", 1) "]}";
    expect_plan(tag_arg, tag_arg);
    /* ...while an unbalanced quote in the prose does not hide the tag on a later line */
    expect_plan("<think>a 5\" screen\n</think>\n{\"plan\":[\"sort\",\"uniq -c\"]}", SORT_UNIQ);
    /* thinking only: the draft is all there is */
    expect_plan("<think>{\"tasks\":[{\"command\":\"cat\"}]}</think> Done.", "{\"tasks\":[" T1("cat", "[]") "]}");
    /* the whole reply is a JSON string holding the plan */
    expect_plan("\"{\\\"plan\\\":[\\\"sort\\\",\\\"uniq -c\\\"]}\"", SORT_UNIQ);
    expect_reject("\"I cannot do that.\"", "no JSON plan");
    /* task labels as references */
    expect_plan("[{\"command\":\"sort\"},{\"command\":\"uniq\",\"args\":[\"-c\"],\"input_from_task\":\"task 1\"}]",
                SORT_UNIQ);
    expect_plan("[{\"command\":\"sort\"},{\"command\":\"uniq\",\"args\":[\"-c\"],\"input_from_step\":\"step_1\"}]",
                SORT_UNIQ);
}

/* ------------------------------------------------------------- repairs */

static void test_repair_unescaped_quotes(void **state) {
    (void)state;
    expect_plan("{\"tasks\":[{\"command\":\"awk\",\"args\":[\"-e\", \"say \"hi\"\"]}]}",
                "{\"tasks\":[" T1("awk", "[\"-e\",\"say \\\"hi\\\"\"]") "]}");
    expect_plan("[{\"command\":\"grep\",\"args\":[\"\"quoted words\" here\", \"f.txt\"]}]",
                "{\"tasks\":[" T1("grep", "[\"\\\"quoted words\\\" here\",\"f.txt\"]") "]}");
}

static void test_repair_trailing_commas_and_comments(void **state) {
    (void)state;
    expect_plan("{\"tasks\":[{\"command\":\"ls\",\"args\":[\"-l\",],},],}", "{\"tasks\":[" T1("ls", "[\"-l\"]") "]}");
    expect_plan("{\n  // list files\n  \"tasks\": [ /* one */ {\"command\": \"ls\"} ]\n}",
                "{\"tasks\":[" T1("ls", "[]") "]}");
}

static void test_repair_single_quotes_python_literals(void **state) {
    (void)state;
    expect_plan("{'tasks': [{'command': 'sort', 'args': [], 'input_from_task': None}, "
                "{'command': 'uniq', 'args': ['-c'], 'input_from_task': 1}]}",
                SORT_UNIQ);
    expect_plan("[{'command': 'grep', 'args': ['it\\'s', 'say \"x\"']}]",
                "{\"tasks\":[" T1("grep", "[\"it's\",\"say \\\"x\\\"\"]") "]}");
}

static void test_repair_raw_newlines_and_bad_escapes(void **state) {
    (void)state;
    expect_plan("[{\"command\":\"awk\",\"args\":[\"{ print $1\n}\"]}]",
                "{\"tasks\":[" T1("awk", "[\"{ print $1\\n}\"]") "]}");
    expect_plan("[{\"command\":\"grep\",\"args\":[\"-E\",\"\\d+\\.log\"]}]",
                "{\"tasks\":[" T1("grep", "[\"-E\",\"\\\\d+\\\\.log\"]") "]}");
}

static void test_repair_missing_commas_and_unquoted_keys(void **state) {
    (void)state;
    expect_plan("{\"tasks\": [ {\"command\": \"ls\" \"args\": [\"-l\" \"-a\"] } ]}",
                "{\"tasks\":[" T1("ls", "[\"-l\",\"-a\"]") "]}");
    /* one object per line, no commas */
    expect_plan("[\n{\"command\": \"sort\"}\n{\"command\": \"uniq\", \"args\": [\"-c\"], \"input_from_task\": 1}\n]",
                SORT_UNIQ);
    expect_plan("{\"tasks\": [{\"command\": \"head\", \"args\": [\"-n\", \"5\"] \"timeout_secs\": 30 \"input_from_task\": null}]}",
                "{\"tasks\":[{\"task_number\":1,\"command\":\"head\",\"args\":[\"-n\",\"5\"],\"timeout_secs\":30}]}");
    /* JavaScript-style keys */
    expect_plan("Plan: {tasks: [{command: \"sort\"}, {command: \"uniq\", args: [\"-c\"], input_from_task: 1}]}",
                SORT_UNIQ);
    /* numbers stay whole: 1.5e3 is one value, not three */
    expect_plan("[{\"command\": \"ls\", \"timeout_secs\": 1.5e3,}]",
                "{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"args\":[],\"timeout_secs\":1500}]}");
}

/* A valid plan is never "repaired": escapes and quotes stay as the model wrote them. */
static void test_valid_input_untouched(void **state) {
    (void)state;
    expect_plan("{\"tasks\":[{\"task_number\":1,\"command\":\"sed\",\"args\":[\"s/,]/x/\",\"a\\\"b\"],"
                "\"timeout_secs\":300}]}",
                "{\"tasks\":[" T1("sed", "[\"s/,]/x/\",\"a\\\"b\"]") "]}");
}

/* --------------------------------------------------- malformed outputs */

typedef struct bad_case {
    const char *text;
    const char *reason; /* substring of the error; NULL = must be repaired into some plan */
} bad_case;

static const bad_case bad_cases[] = {
    {"", "no JSON plan"},
    {"I cannot help with that.", "no JSON plan"},
    {"{", "no JSON plan"},
    {"[[[[[[[[[[", "no parseable JSON plan"},
    {"{\"tasks\": [{\"command\": \"ls\"}", "incomplete"}, /* cut off: no partial plan */
    {"Plan: [\"sort\", \"uniq -c", "incomplete"},
    {"{\"tasks\": []}", "no tasks"},
    {"[]", "no tasks"},
    {"{\"tasks\": {\"command\": 5}}", "\"command\" must be a string"},
    {"{\"tasks\": \"ls\"}", "\"tasks\" must be an array"},
    {"[{\"args\": [\"-l\"]}]", "no \"command\""},
    {"[{\"command\": \"\"}]", "empty command"},
    {"[\"''\"]", "empty command"},
    {"[{\"command\": \"'' -l\"}]", "empty command"},
    {"[{\"command\": 42}]", "must be a string"},
    {"[{\"command\": \"head\", \"args\": [\"-n\", 20]}]", "args[1] is a number (20), not a string"},
    {"[{\"command\": \"head\", \"args\": [true]}]", "is a boolean"},
    {"[{\"command\": \"head\", \"args\": [[\"-n\"]]}]", "is an array"},
    {"[{\"command\": \"head\", \"args\": {\"n\": \"20\"}}]", "must be an array of strings"},
    {"[{\"command\": \"ls; rm -rf /\"}]", "shell operator ';'"},
    {"[\"cat x && rm x\"]", "shell operator '&'"},
    {"[\"echo $(id)\"]", "shell operator '$'"},
    {"[\"ls || true\"]", "'||'"},
    {"[\"cat 'unterminated\"]", "unterminated single quote"},
    {"[{\"command\": \"sort\"}, {\"command\": \"uniq\", \"input_from_task\": 7}]", "names no task"},
    {"[{\"command\": \"sort\"}, {\"command\": \"uniq\", \"input_from_task\": \"first\"}]",
     "must be a task number"},
    {"[{\"command\": \"sort\"}, {\"command\": \"uniq\", \"input_from_task\": -2}]", "must be a task number, not -2"},
    {"[{\"task_number\": 1, \"command\": \"sort\"}, {\"task_number\": 1, \"command\": \"ls\"},"
     " {\"task_number\": 3, \"command\": \"uniq\", \"input_from_task\": 1}]",
     "ambiguous"},
    {"[{\"command\": \"ls\", \"timeout_secs\": \"soon\"}]", "whole number of seconds"},
    {"[{\"command\": \"ls\", \"timeout_secs\": 1e300}]", "whole number of seconds"},
    {"[{\"command\": \"ls\"}, 7]", "step 2 is a number"},
    {"{\"tasks\": [{\"command\": \"ls\"}, {\"command\": 1}, {\"args\": 2}]}", "step 3"},
    {"[{\"command\": \"ls\", \"args\": [\"\\u0000x\"]}]", "not allowed"},   /* NUL */
    {"```json\n{\"tasks\": [ {\"command\": \"ls\", \"args\": [] } }\n```", "malformed JSON plan"},
    {"{\"tasks\": [{\"command\": \"ls\"}, {\"command\": \"wc\" \"input_from_task\" 1}]}", "malformed JSON plan"},
    /* These are broken but unambiguous: they must come back as plans. */
    {"{\"tasks\": [{\"command\": \"ls\",},]}", NULL},
    {"{'tasks': [{'command': 'ls'}]}", NULL},
    {"Plan:\n```json\n[{\"command\": \"echo\", \"args\": [\"she said \"no\"\"]}]\n```", NULL},
};

static void test_malformed_outputs(void **state) {
    (void)state;
    size_t n = sizeof bad_cases / sizeof *bad_cases;
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        if (bad_cases[i].reason) {
            expect_reject(bad_cases[i].text, bad_cases[i].reason);
        } else {
            agx_error err;
            agx_status st;
            char *got = parse_json(bad_cases[i].text, &st, &err);
            if (!got) fail_msg("case %zu <<%s>> not repaired: %s", i, bad_cases[i].text, err.message);
            free(got);
        }
    }
}

static void test_reject_lists_several_reasons(void **state) {
    (void)state;
    agx_error err;
    char *got = parse_json("[{\"command\": \"head\", \"args\": [\"-n\", 5]}, {\"command\": 3}, {}]", NULL, &err);
    assert_null(got);
    assert_non_null(strstr(err.message, "step 1"));
    assert_non_null(strstr(err.message, "step 2"));
    assert_non_null(strstr(err.message, "step 3"));
}

/* Error messages quote model output; they must never carry raw terminal escapes. */
static void test_errors_are_terminal_safe(void **state) {
    (void)state;
    const char *texts[] = {
        "[\"ls \x1b]0;owned\x07 | x; y\"]",
        "{\"tasks\": [{\"command\": \"ls\", \"args\": [\"\x1b[2J\" : 1]}]}",
        "[{\"command\": \"cat \x9b\xff 'x\"}]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        agx_plan p;
        agx_error err;
        assert_int_equal(agx_plan_parse_lenient(texts[i], strlen(texts[i]), &p, &err), AGX_ERR_PARSE);
        for (const unsigned char *m = (const unsigned char *)err.message; *m; m++)
            if (*m < 0x20 || *m == 0x7f || *m == 0xff) fail_msg("raw byte 0x%02x in: %s", *m, err.message);
    }
    agx_plan p;
    agx_error err;
    const char *t = "[\"ls \x1b]0;x\x07; y\"]";
    assert_int_equal(agx_plan_parse_lenient(t, strlen(t), &p, &err), AGX_ERR_PARSE);
    assert_non_null(strstr(err.message, "\\x1b]0;x\\x07"));
}

static void test_size_bound(void **state) {
    (void)state;
    size_t n = (1u << 20) + 1;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "[\"ls\"]", 6);
    big[n] = '\0';
    agx_plan p;
    agx_error err;
    assert_int_equal(agx_plan_parse_lenient(big, n, &p, &err), AGX_ERR_PARSE);
    assert_non_null(strstr(err.message, "bytes"));
    /* Just under the bound still parses. */
    assert_int_equal(agx_plan_parse_lenient(big, n - 1, &p, &err), AGX_OK);
    assert_int_equal(p.n_tasks, 1);
    agx_plan_free(&p);
    free(big);
}

/* Hostile shapes that would be quadratic without the candidate bound. */
static void test_pathological_inputs_are_bounded(void **state) {
    (void)state;
    size_t n = 1u << 20;
    char *buf = malloc(n);
    assert_non_null(buf);
    /* prefix + repeated fill: deep nesting, unterminated shallow values, many
     * small non-plan values, broken strings */
    static const char *const shapes[][2] = {
        {"", "["},       {"", "[1,"},        {"", "{\"a\":"},           {"", "[\""},
        {"", "\"["},     {"[", "1, "},       {"{\"tasks\": [", "\"ls\", "}, {"", "[1] "},
        {"[\"", "a\" b "}, {"", "{\"command\": \"ls\" "},
    };
    for (size_t f = 0; f < sizeof shapes / sizeof *shapes; f++) {
        size_t pl = strlen(shapes[f][0]), fl = strlen(shapes[f][1]);
        memcpy(buf, shapes[f][0], pl);
        for (size_t i = pl; i < n; i++) buf[i] = shapes[f][1][(i - pl) % fl];
        agx_plan p;
        agx_error err;
        int64_t t0 = agx_time_ms();
        assert_int_equal(agx_plan_parse_lenient(buf, n, &p, &err), AGX_ERR_PARSE);
        assert_true(err.message[0] != '\0');
        /* ~70 ms at worst in a release build (bench_plan_parse); generous for ASan */
        int64_t ms = agx_time_ms() - t0;
        if (ms > 5000) fail_msg("shape %zu took %lld ms", f, (long long)ms);
    }
    free(buf);
}

static void test_not_nul_terminated(void **state) {
    (void)state;
    /* len is honoured: bytes after it are never read. */
    const char text[] = "[\"ls\"]XXXX";
    agx_plan p;
    agx_error err;
    assert_int_equal(agx_plan_parse_lenient(text, 6, &p, &err), AGX_OK);
    assert_int_equal(p.n_tasks, 1);
    agx_plan_free(&p);
    assert_int_equal(agx_plan_parse_lenient(NULL, 0, &p, &err), AGX_ERR_PARSE);
}

static void test_parsed_plans_validate(void **state) {
    (void)state;
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    agx_plan p;
    const char *text = "```json\n{\"plan\":[{\"cmd\":\"grep\",\"args\":[\"-rn\",\"TODO\",\"src\"]},"
                       "{\"cmd\":\"cut\",\"args\":[\"-d:\",\"-f1\"],\"input_from_step\":1},"
                       "{\"cmd\":\"sort\",\"input_from_step\":2},"
                       "{\"cmd\":\"uniq\",\"args\":[\"-c\"],\"input_from_step\":3}]}\n```";
    assert_int_equal(agx_plan_parse_lenient(text, strlen(text), &p, &err), AGX_OK);
    assert_int_equal(p.n_tasks, 4);
    assert_int_equal(agx_plan_validate(&p, &reg, NULL, NULL, &err), AGX_OK);
    agx_plan_free(&p);
    agx_registry_free(&reg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_form),
        cmocka_unit_test(test_legacy_plan_objects),
        cmocka_unit_test(test_plan_of_strings_is_a_pipeline),
        cmocka_unit_test(test_bare_array_of_steps),
        cmocka_unit_test(test_single_step_object),
        cmocka_unit_test(test_fenced_and_prose),
        cmocka_unit_test(test_renumbering_and_reference_mapping),
        cmocka_unit_test(test_command_with_inline_args),
        cmocka_unit_test(test_numeric_strings_and_reals_accepted_for_numbers),
        cmocka_unit_test(test_thinking_and_quoted_replies),
        cmocka_unit_test(test_repair_unescaped_quotes),
        cmocka_unit_test(test_repair_trailing_commas_and_comments),
        cmocka_unit_test(test_repair_single_quotes_python_literals),
        cmocka_unit_test(test_repair_raw_newlines_and_bad_escapes),
        cmocka_unit_test(test_repair_missing_commas_and_unquoted_keys),
        cmocka_unit_test(test_valid_input_untouched),
        cmocka_unit_test(test_malformed_outputs),
        cmocka_unit_test(test_reject_lists_several_reasons),
        cmocka_unit_test(test_errors_are_terminal_safe),
        cmocka_unit_test(test_size_bound),
        cmocka_unit_test(test_pathological_inputs_are_bounded),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_parsed_plans_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
