/* test_plan_validate.c — zero-trust validation (every problem reported, with
 * "did you mean") and the uniq -> sort, uniq normalization. */
#include "agx_test.h"

#include <stdlib.h>
#include <string.h>

#include "agx/plan.h"
#include "agx/registry.h"
#include "agx/util.h"

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

static agx_plan parse(const char *text) {
    agx_plan p;
    agx_error err;
    if (agx_plan_parse_lenient(text, strlen(text), &p, &err) != AGX_OK) fail_msg("parse: %s", err.message);
    return p;
}

static bool has_problem(const agx_plan_problems *pr, int task, const char *part) {
    for (size_t i = 0; i < pr->count; i++)
        if (pr->items[i].task_number == task && strstr(pr->items[i].message, part)) return true;
    return false;
}

static void dump(const agx_plan_problems *pr) {
    for (size_t i = 0; i < pr->count; i++) print_message("  problem[%zu] task %d: %s\n", i,
                                                         pr->items[i].task_number, pr->items[i].message);
}

static void test_valid_plan(void **state) {
    (void)state;
    agx_plan p = parse("{\"plan\":[\"sort\",\"uniq -c\",\"sort -rn\",\"head -n 10\"]}");
    agx_plan_problems pr;
    agx_error err;
    assert_int_equal(agx_plan_validate(&p, &reg, NULL, &pr, &err), AGX_OK);
    assert_int_equal(pr.count, 0);
    agx_plan_problems_free(&pr);
    agx_plan_free(&p);
}

static void test_unknown_command_did_you_mean(void **state) {
    (void)state;
    agx_plan p = parse("[\"gerp foo\", \"wcc -l\", \"frobnicate\", \"/usr/bin/sort\", \"HEAD\"]");
    agx_plan_problems pr;
    agx_error err;
    assert_int_equal(agx_plan_validate(&p, &reg, NULL, &pr, &err), AGX_ERR_VALIDATION);
    dump(&pr);
    assert_true(has_problem(&pr, 1, "task 1: unknown command 'gerp' (did you mean 'grep'?)"));
    assert_true(has_problem(&pr, 2, "unknown command 'wcc' (did you mean 'wc'?)"));
    assert_true(has_problem(&pr, 3, "unknown command 'frobnicate' (not in the tool registry"));
    assert_true(has_problem(&pr, 4, "did you mean 'sort'?"));
    assert_true(has_problem(&pr, 5, "did you mean 'head'?"));
    assert_int_equal(pr.count, 5);
    /* err joins every problem */
    assert_non_null(strstr(err.message, "5 problems"));
    assert_non_null(strstr(err.message, "'gerp'"));
    assert_non_null(strstr(err.message, "'HEAD'"));
    agx_plan_problems_free(&pr);
    agx_plan_free(&p);
}

static void test_every_problem_reported(void **state) {
    (void)state;
    agx_plan p;
    agx_error err;
    agx_plan_init(&p);
    const char *a[] = {"x"};
    assert_int_equal(agx_plan_add_task(&p, "sort", a, 1, 2, &err), AGX_OK); /* forward ref */
    assert_int_equal(agx_plan_add_task(&p, "uniq", a, 1, 2, &err), AGX_OK); /* self ref */
    assert_int_equal(agx_plan_add_task(&p, "catt", a, 1, 1, &err), AGX_OK);
    assert_int_equal(agx_plan_add_task(&p, "wc", a, 1, -1, &err), AGX_OK);
    p.tasks[2].task_number = 7;
    p.tasks[3].timeout_secs = 0;
    free(p.tasks[3].args[0]);
    p.tasks[3].args[0] = NULL;
    agx_plan_problems pr;
    assert_int_equal(agx_plan_validate(&p, &reg, NULL, &pr, &err), AGX_ERR_VALIDATION);
    dump(&pr);
    assert_true(has_problem(&pr, 1, "the first task cannot take input"));
    assert_true(has_problem(&pr, 2, "input_from_task 2 must name an earlier task (1..1)"));
    assert_true(has_problem(&pr, 3, "numbered 7"));
    assert_true(has_problem(&pr, 3, "did you mean 'cat'?"));
    assert_true(has_problem(&pr, 4, "timeout_secs 0 is out of range 1..86400"));
    assert_true(has_problem(&pr, 4, "args[0] is missing; args must be strings"));
    assert_true(has_problem(&pr, 4, "input_from_task -1 must name an earlier task"));
    assert_int_equal(pr.count, 7);
    agx_plan_problems_free(&pr);
    /* problems may be NULL */
    assert_int_equal(agx_plan_validate(&p, &reg, NULL, NULL, &err), AGX_ERR_VALIDATION);
    agx_plan_free(&p);
}

static void test_limits(void **state) {
    (void)state;
    agx_plan_limits lim = agx_plan_limits_default();
    assert_int_equal(lim.max_tasks, 20);
    assert_int_equal(lim.max_timeout_secs, 86400);
    lim.max_tasks = 2;
    lim.max_args = 2;
    lim.max_arg_len = 8;
    lim.max_command_len = 3;
    lim.max_timeout_secs = 300;
    agx_plan p;
    agx_error err;
    agx_plan_init(&p);
    const char *three[] = {"a", "b", "123456789"};
    assert_int_equal(agx_plan_add_task(&p, "cat", three, 3, 0, &err), AGX_OK);
    assert_int_equal(agx_plan_add_task(&p, "sort", NULL, 0, 1, &err), AGX_OK);
    assert_int_equal(agx_plan_add_task(&p, "wc", NULL, 0, 2, &err), AGX_OK);
    p.tasks[2].timeout_secs = 301;
    agx_plan_problems pr;
    assert_int_equal(agx_plan_validate(&p, &reg, &lim, &pr, &err), AGX_ERR_VALIDATION);
    dump(&pr);
    assert_true(has_problem(&pr, 0, "the plan has 3 tasks; the limit is 2"));
    assert_true(has_problem(&pr, 1, "3 arguments; the limit is 2"));
    assert_true(has_problem(&pr, 1, "args[2] is 9 bytes; the limit is 8"));
    assert_true(has_problem(&pr, 2, "command 'sort' is 4 bytes; the limit is 3"));
    assert_true(has_problem(&pr, 3, "timeout_secs 301 is out of range 1..300"));
    assert_int_equal(pr.count, 5);
    agx_plan_problems_free(&pr);
    agx_plan_free(&p);
}

static void test_empty_plan_and_text_fields(void **state) {
    (void)state;
    agx_plan p;
    agx_error err;
    agx_plan_init(&p);
    agx_plan_problems pr;
    assert_int_equal(agx_plan_validate(&p, &reg, NULL, &pr, &err), AGX_ERR_VALIDATION);
    assert_true(has_problem(&pr, 0, "no tasks"));
    agx_plan_problems_free(&pr);
    assert_int_equal(agx_plan_add_task(&p, "ls", NULL, 0, 0, &err), AGX_OK);
    p.plan_description = strdup("bad \x1b[31m colour");
    const char *a[] = {"\xff\xfe", "tab\tok", "bell\a"};
    assert_int_equal(agx_plan_add_task(&p, "cat", a, 3, 0, &err), AGX_OK);
    assert_int_equal(agx_plan_validate(&p, &reg, NULL, &pr, &err), AGX_ERR_VALIDATION);
    dump(&pr);
    assert_true(has_problem(&pr, 0, "plan_description contains control characters"));
    assert_true(has_problem(&pr, 2, "args[0] is not valid UTF-8"));
    assert_true(has_problem(&pr, 2, "args[2] contains control characters"));
    assert_int_equal(pr.count, 3);
    agx_plan_problems_free(&pr);
    agx_plan_free(&p);
}

static void test_hostile_command_shown_safely(void **state) {
    (void)state;
    agx_plan p;
    agx_error err;
    agx_plan_init(&p);
    assert_int_equal(agx_plan_add_task(&p, "\x1b]0;pwned\a", NULL, 0, 0, &err), AGX_OK);
    agx_plan_problems pr;
    assert_int_equal(agx_plan_validate(&p, &reg, NULL, &pr, &err), AGX_ERR_VALIDATION);
    assert_int_equal(pr.count, 1);
    assert_null(strchr(pr.items[0].message, '\x1b'));
    assert_null(strchr(err.message, '\x1b'));
    assert_non_null(strstr(pr.items[0].message, "\\x1b]0;pwned\\x07"));
    agx_plan_problems_free(&pr);
    agx_plan_free(&p);
}

/* One task with the given words; returns the problems' messages joined. */
static char *problems_for(const char *const *words, size_t n) {
    agx_plan p;
    agx_error err;
    agx_plan_init(&p);
    assert_int_equal(agx_plan_add_task(&p, words[0], words + 1, n - 1, 0, &err), AGX_OK);
    agx_plan_problems pr;
    agx_status st = agx_plan_validate(&p, &reg, NULL, &pr, &err);
    assert_int_equal(st == AGX_OK, pr.count == 0);
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    agx_strbuf_puts(&sb, "");
    for (size_t i = 0; i < pr.count; i++) agx_strbuf_printf(&sb, "%s|", pr.items[i].message);
    agx_plan_problems_free(&pr);
    agx_plan_free(&p);
    return agx_strbuf_take(&sb);
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__}), sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)

static void expect_refused(const char *const *w, size_t n, const char *part) {
    char *got = problems_for(w, n);
    if (!strstr(got, part)) fail_msg("%s ...: expected a problem with '%s', got '%s'", w[0], part, got);
    free(got);
}

static void expect_allowed(const char *const *w, size_t n) {
    char *got = problems_for(w, n);
    if (*got) fail_msg("%s %s ...: expected no problem, got '%s'", w[0], n > 1 ? w[1] : "", got);
    free(got);
}

static void test_side_effects_refused(void **state) {
    (void)state;
    expect_refused(WORDS("find", ".", "-name", "*.tmp", "-delete"), "find '-delete' changes files");
    expect_refused(WORDS("find", ".", "-exec", "rm", "{}", ";"), "find '-exec'");
    expect_refused(WORDS("find", ".", "-fprint", "out"), "find '-fprint'");
    expect_refused(WORDS("sed", "-i", "s/a/b/", "f"), "sed '-i' edits files in place");
    expect_refused(WORDS("sed", "-ni.bak", "p", "f"), "in place");
    expect_refused(WORDS("sed", "--in-place=.orig", "s/a/b/", "f"), "in place");
    expect_refused(WORDS("sort", "-o", "f", "f"), "sort '-o' writes a file");
    expect_refused(WORDS("sort", "-rno", "f"), "writes a file");
    expect_refused(WORDS("sort", "--output=x"), "writes a file");
    expect_refused(WORDS("sort", "--compress-program=sh"), "runs a program");
    expect_refused(WORDS("uniq", "-c", "in.txt", "out.txt"), "second operand 'out.txt'");
    expect_refused(WORDS("awk", "{ system(\"rm x\") }"), "system()");
    expect_refused(WORDS("awk", "{ print | \"sh\" }"), "pipes");
    expect_refused(WORDS("awk", "BEGIN { \"id\" | getline x }"), "pipes");
    expect_refused(WORDS("awk", "{ print > \"out.txt\" }"), "redirects output");
    expect_refused(WORDS("awk", "-F", ",", "{ print >> \"o\" }", "in.csv"), "redirects output");
    expect_refused(WORDS("awk", "-l", "ext", "{print}"), "extension library");
    expect_refused(WORDS("awk", "@load \"x\"; {print}"), "loads code");
    expect_refused(WORDS("xargs", "rm"), "xargs runs 'rm', which is not in the tool registry");
    expect_refused(WORDS("xargs", "-n", "1", "gerp", "x"), "(did you mean 'grep'?)");
    expect_refused(WORDS("xargs", "-0", "sed", "-i", "s/a/b/"), "sed '-i'");
    expect_refused(WORDS("xargs", "xargs", "rm"), "'rm'");
    expect_refused(WORDS("file", "-C", "-m", "magic"), "compiled magic");
    expect_refused(WORDS("shuf", "-o", "out.txt", "in.txt"), "shuf '-o' writes a file");
    expect_refused(WORDS("shuf", "-ro", "out.txt"), "writes a file");
    expect_refused(WORDS("shuf", "--output=x", "in.txt"), "writes a file");
    expect_refused(WORDS("xargs", "-d", "\\n", "shuf", "-o", "x"), "shuf '-o'");
    /* sed scripts: commands and s flags that write files or run commands */
    expect_refused(WORDS("sed", "w /tmp/x", "f"), "writes a file (its w command)");
    expect_refused(WORDS("sed", "-n", "1,5W out.txt"), "its W command");
    expect_refused(WORDS("sed", "s/a/b/w out.txt", "f"), "the w flag of s");
    expect_refused(WORDS("sed", "s/.*/date/e"), "the e flag of s");
    expect_refused(WORDS("sed", "1e id"), "its e command");
    expect_refused(WORDS("sed", "-e", "p", "-e", "$!w log"), "its w command");
    expect_refused(WORDS("sed", "-e", "p", "-e", "p", "-e", "p", "-e", "p", "-e", "p", "-e", "p", "-e", "p", "-e", "p",
                         "-e", "p", "-e", "p", "-e", "p", "-e", "p", "-e", "p", "-e", "p", "-e", "p", "-e", "p", "-e",
                         "w f"),
                   "its w command"); /* the 17th script too */
    expect_refused(WORDS("sed", "-ne", "/x/w f", "in.txt"), "its w command");
    expect_refused(WORDS("sed", "--expression=s|a|b|gw f"), "the w flag of s");
    expect_refused(WORDS("sed", "-n", "/a/{p;w f\n}"), "its w command");
    expect_refused(WORDS("sed", "s/a/b"), "unterminated s");
    expect_refused(WORDS("sed", "-e", "-i", "f"), "a command it cannot read"); /* "-i" is the script here */
    /* awk: '>' in a print statement redirects to a file, whatever names it */
    expect_refused(WORDS("awk", "{print $1 > $2}"), "redirects output");
    expect_refused(WORDS("awk", "{system\t(\"id\")}"), "system()");
    expect_refused(WORDS("awk", "{printf(\"%s\\n\", $1) >> f}"), "redirects output");
    expect_refused(WORDS("awk", "$3 > 10 {print $1 > 3}"), "redirects output");
    /* long options abbreviated, as getopt_long takes them */
    expect_refused(WORDS("sort", "--out=x", "in.txt"), "sort '--out=x' writes a file");
    expect_refused(WORDS("sort", "--o", "x"), "writes a file");
    expect_refused(WORDS("sort", "--compress=sh"), "runs a program");
    expect_refused(WORDS("sed", "--in", "s/a/b/", "f"), "in place");
    expect_refused(WORDS("sed", "--i=.bak", "s/a/b/", "f"), "in place");
    expect_refused(WORDS("shuf", "--outp=x", "in.txt"), "writes a file");
    expect_refused(WORDS("awk", "--lo=ext", "{print}"), "extension library");
    expect_refused(WORDS("file", "--compi", "-m", "magic"), "compiled magic");
    /* awk words after "print " were read as the tail of "print" */
    expect_refused(WORDS("awk", "{print system\t(\"id\")}"), "system()");
}

/* The worker running a plan may hold API keys in its environment. */
static void test_environment_reads_refused(void **state) {
    (void)state;
    const char *why = "may hold secrets such as API keys";
    expect_refused(WORDS("jq", "-n", "env"), why);
    expect_refused(WORDS("jq", "-n", "env.AGX_OPENAI_API_KEY"), "jq filter reads the environment");
    expect_refused(WORDS("jq", "-r", "$ENV.HOME"), why);
    expect_refused(WORDS("jq", "-n", "$ ENV"), why);
    expect_refused(WORDS("jq", "-n", "{$ENV}"), why);
    expect_refused(WORDS("jq", "-n", "[env]"), why);
    expect_refused(WORDS("jq", "-n", ".a, env, .b"), why);
    expect_refused(WORDS("jq", "-n", "{a: (.x, env)}"), why);
    expect_refused(WORDS("jq", "-n", "{env: env}"), why);
    expect_refused(WORDS("jq", "-r", "\"key=\\($ENV.KEY)\""), why);             /* in an interpolation */
    expect_refused(WORDS("jq", "-r", "\"\\(\")\") \\(env | keys[0])\""), why); /* ")" in a nested string */
    expect_refused(WORDS("jq", "--arg", "k", "v", "--indent", "2", "-c", "env", "in.json"), why);
    expect_refused(WORDS("jq", "--", "env"), why);
    expect_refused(WORDS("xargs", "jq", "-n", "env"), why);
    expect_refused(WORDS("awk", "BEGIN { print ENVIRON[\"HOME\"] }"), "awk program reads the environment (ENVIRON)");
    expect_refused(WORDS("awk", "{ for (k in ENVIRON) print k }"), why);
    expect_refused(WORDS("cat", "/proc/self/environ"), "args[0] names a process environment");
    expect_refused(WORDS("grep", "-a", "KEY", "/proc/1/environ"), "args[2] names a process environment");
    expect_refused(WORDS("tr", "\\0", "\\n", "--", "../proc//self/./environ"), why);
    expect_refused(WORDS("grep", "--file=/proc/thread-self/environ", "x"), why);
    expect_refused(WORDS("awk", "BEGIN { while ((getline l < \"/proc/self/environ\") > 0) print l }"), why);
    expect_refused(WORDS("sed", "1r /proc/1/environ", "f"), why);
    expect_refused(WORDS("jq", "--rawfile", "e", "/proc/self/environ", "-n", "$e"), why);
    /* what is not the environment */
    expect_allowed(WORDS("jq", "-n", ".env"));
    expect_allowed(WORDS("jq", "-c", "{env: 1}"));
    expect_allowed(WORDS("jq", "-c", "{env}"));
    expect_allowed(WORDS("jq", "-c", "{a: .b, env}"));
    expect_allowed(WORDS("jq", "-r", ".[] | select(.name == \"env\") | \"$ENV\""));
    expect_allowed(WORDS("jq", "-r", "$env"));
    expect_allowed(WORDS("jq", "-r", ".environment # env"));
    expect_allowed(WORDS("jq", "--arg", "x", "env", "-n", "$x"));
    expect_allowed(WORDS("jq", "-f", "env", "in.json")); /* a filter file named env (not read) */
    expect_allowed(WORDS("awk", "{ print \"ENVIRON\", $1 }"));
    expect_allowed(WORDS("awk", "{ ENVIRONMENT = 1; print MY_ENVIRON }"));
    expect_allowed(WORDS("cat", "/proc/cpuinfo", "environ", "proc/environment", "/proc/self/environ_notes"));
}

static void test_ordinary_uses_allowed(void **state) {
    (void)state;
    expect_allowed(WORDS("find", ".", "-name", "*.c", "-type", "f", "-mtime", "-7"));
    expect_allowed(WORDS("sed", "-n", "s/a/b/p", "f"));
    expect_allowed(WORDS("sed", "-e", "s/-i//", "f")); /* "-i" is in the script here */
    expect_allowed(WORDS("sed", "-E", "s/(x)/\\1/"));
    expect_allowed(WORDS("sort", "-t", "o", "-k2,2nr", "f"));
    expect_allowed(WORDS("sort", "-rn"));
    expect_allowed(WORDS("uniq", "-c", "-f", "2", "in.txt"));
    expect_allowed(WORDS("awk", "-F|", "{ print $2 }"));
    expect_allowed(WORDS("awk", "-F", "|", "-v", "OFS=|", "$3 > 10 || $1 == \"x\" { print $1, $3 }", "a|b.txt"));
    expect_allowed(WORDS("awk", "{ n = split($0, a, \"|\"); if ($0 ~ /a|b/) print n }"));
    expect_allowed(WORDS("awk", "{ s += $2 } END { print s / NR }"));
    expect_allowed(WORDS("xargs", "wc", "-l"));
    expect_allowed(WORDS("xargs", "-I", "{}", "grep", "-l", "main", "{}"));
    expect_allowed(WORDS("xargs"));
    expect_allowed(WORDS("file", "-b", "x"));
    expect_allowed(WORDS("shuf", "-n", "3", "in.txt"));
    /* sed scripts that only read, as the rules planner and models write them */
    expect_allowed(WORDS("sed", "-n", "1p;$p"));
    expect_allowed(WORDS("sed", "/^$/d", "notes.txt"));
    expect_allowed(WORDS("sed", "s/^[[:lower:]]/\\U&/"));
    expect_allowed(WORDS("sed", "-E", "s/(a|b)\\/w/\\1e/g", "f")); /* w and e inside the parts */
    expect_allowed(WORDS("sed", "-n", "10,20p", "a.txt"));
    expect_allowed(WORDS("sed", "s/.*\\.//"));
    expect_allowed(WORDS("sed", "-n", "/start/,/end/{/x/d;p}"));
    expect_allowed(WORDS("sed", ":a;N;$!ba;s/\\n/ /g"));
    expect_allowed(WORDS("sed", "0~3d;s#/usr#/opt#2p"));
    expect_allowed(WORDS("sed", "\\,foo,d;y/abc/xyz/"));
    expect_allowed(WORDS("sed", "1i header\nr other.txt\n$a footer"));
    expect_allowed(WORDS("sed", "-f", "script.sed", "in.txt"));
    expect_allowed(WORDS("sed", "-e", "s/a/b/", "w.txt")); /* an input file named w.txt */
    expect_allowed(WORDS("awk", "{print ($1 > 3), $2}"));
    expect_allowed(WORDS("awk", "/system/ {n++; s = \"system\"} END {print n, s, systems}"));
    expect_allowed(WORDS("awk", "{ print \"system(\" $1 \")\" }")); /* a string, not a call */
    expect_allowed(WORDS("awk", "{if ($1 > 3) print $1; n = $2 > 1}"));
    expect_allowed(WORDS("awk", "{x = sprintf(\"%d\", $1 > 2); print x}"));
    expect_allowed(WORDS("sort", "--numeric-sort", "--reverse", "--key=2", "--check"));
    expect_allowed(WORDS("sed", "--quiet", "--expression=s/a/b/p", "f"));
    expect_allowed(WORDS("file", "--brief", "--compress", "x"));
    expect_allowed(WORDS("shuf", "-n3"));
    expect_allowed(WORDS("shuf", "-i", "1-10", "-n", "-o")); /* "-o" is -n's value (a bad count, not a file) */
    expect_allowed(WORDS("shuf", "-n", "1", "-e", "a", "b"));
    expect_allowed(WORDS("xargs", "-d", "\\n", "sha256sum"));
    expect_allowed(WORDS("base64", "-d"));
    expect_allowed(WORDS("od", "-A", "x", "-t", "x1z", "-v"));
}

/* ------------------------------------------------------------ normalize */

static char *normalized(const char *text) {
    agx_plan p = parse(text);
    agx_error err;
    assert_int_equal(agx_plan_normalize(&p, &err), AGX_OK);
    char *j = agx_plan_to_json(&p, AGX_JSON_COMPACT);
    agx_plan_free(&p);
    return j;
}

static void expect_normalized(const char *text, const char *want) {
    char *got = normalized(text);
    if (strcmp(got, want)) fail_msg("normalize <<%s>>\n got  %s\n want %s", text, got, want);
    free(got);
}

#define T(n, cmd, args) "{\"task_number\":" #n ",\"command\":\"" cmd "\",\"args\":" args ",\"timeout_secs\":300"
#define END "}"
#define FROM(n) ",\"input_from_task\":" #n "}"

static void test_lone_uniq_gets_sort(void **state) {
    (void)state;
    expect_normalized("[\"uniq -c\"]",
                      "{\"tasks\":[" T(1, "sort", "[]") END "," T(2, "uniq", "[\"-c\"]") FROM(1) "]}");
    /* uniq's input file moves to the sort that now reads it */
    expect_normalized("[\"uniq -c -f 2 names.txt\"]",
                      "{\"tasks\":[" T(1, "sort", "[\"names.txt\"]") END ","
                      T(2, "uniq", "[\"-c\",\"-f\",\"2\"]") FROM(1) "]}");
}

static void test_uniq_fed_by_other_task_gets_sort_between(void **state) {
    (void)state;
    /* grep -> uniq -> wc: sort goes between; wc's reference follows uniq */
    expect_normalized("[\"grep -o x f\", \"uniq\", \"wc -l\"]",
                      "{\"tasks\":[" T(1, "grep", "[\"-o\",\"x\",\"f\"]") END ","
                      T(2, "sort", "[]") FROM(1) "," T(3, "uniq", "[]") FROM(2) ","
                      T(4, "wc", "[\"-l\"]") FROM(3) "]}");
}

static void test_uniq_after_sort_untouched(void **state) {
    (void)state;
    const char *ok = "{\"tasks\":[" T(1, "sort", "[]") END "," T(2, "uniq", "[\"-c\"]") FROM(1) "]}";
    expect_normalized("[\"sort\", \"uniq -c\"]", ok);
    /* sortedness survives grep/head in between */
    char *got = normalized("[\"sort\", \"grep -v x\", \"uniq\"]");
    assert_null(strstr(got, "\"task_number\":4"));
    free(got);
    /* ...but not cut */
    got = normalized("[\"sort\", \"cut -c1-3\", \"uniq\"]");
    assert_non_null(strstr(got, "\"task_number\":4"));
    free(got);
}

static void test_uniq_not_connected_to_sort(void **state) {
    (void)state;
    /* sort and uniq both read the input (no reference): uniq is not fed by sort */
    char *got = normalized("[{\"command\":\"sort\",\"args\":[\"a\"]},{\"command\":\"uniq\",\"args\":[\"b\"]}]");
    assert_string_equal(got, "{\"tasks\":[" T(1, "sort", "[\"a\"]") END "," T(2, "sort", "[\"b\"]") END ","
                             T(3, "uniq", "[]") FROM(2) "]}");
    free(got);
}

static void test_two_uniqs_and_references_after(void **state) {
    (void)state;
    agx_plan p = parse("[{\"command\":\"uniq\"},{\"command\":\"uniq\",\"args\":[\"-d\"]},"
                       "{\"command\":\"cat\",\"input_from_task\":2},{\"command\":\"wc\",\"input_from_task\":1}]");
    agx_error err;
    assert_int_equal(agx_plan_normalize(&p, &err), AGX_OK);
    assert_int_equal(p.n_tasks, 6);
    const char *cmds[] = {"sort", "uniq", "sort", "uniq", "cat", "wc"};
    int from[] = {0, 1, 0, 3, 4, 2};
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(p.tasks[i].command, cmds[i]);
        assert_int_equal(p.tasks[i].task_number, (int)i + 1);
        assert_int_equal(p.tasks[i].input_from_task, from[i]);
    }
    assert_int_equal(agx_plan_validate(&p, &reg, NULL, NULL, &err), AGX_OK);
    /* normalizing again changes nothing */
    char *once = agx_plan_to_json(&p, 0);
    assert_int_equal(agx_plan_normalize(&p, &err), AGX_OK);
    char *twice = agx_plan_to_json(&p, 0);
    assert_string_equal(once, twice);
    free(once);
    free(twice);
    agx_plan_free(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_plan),
        cmocka_unit_test(test_unknown_command_did_you_mean),
        cmocka_unit_test(test_every_problem_reported),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_empty_plan_and_text_fields),
        cmocka_unit_test(test_hostile_command_shown_safely),
        cmocka_unit_test(test_side_effects_refused),
        cmocka_unit_test(test_ordinary_uses_allowed),
        cmocka_unit_test(test_environment_reads_refused),
        cmocka_unit_test(test_lone_uniq_gets_sort),
        cmocka_unit_test(test_uniq_fed_by_other_task_gets_sort_between),
        cmocka_unit_test(test_uniq_after_sort_untouched),
        cmocka_unit_test(test_uniq_not_connected_to_sort),
        cmocka_unit_test(test_two_uniqs_and_references_after),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
