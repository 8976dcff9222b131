/* test_buffer.c — the persisted plan buffer: round trips, appends that shift
 * references, concurrent appends from two processes, truncated (corrupt) files
 * that are reported and kept, resets that move them aside, atomic saves. */
#include "agx_test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agx/agx.h"
#include "agx/buffer.h"

static void add(agx_plan *p, const char *cmd, const char *arg, int input) {
    agx_error err;
    const char *args[1] = {arg};
    assert_int_equal(agx_plan_add_task(p, cmd, args, arg ? 1 : 0, input, &err), AGX_OK);
}

static char *read_file(const char *path, size_t *len) {
    char *data = NULL;
    agx_error err;
    assert_int_equal(agx_file_read_all(path, 0, &data, len, &err), AGX_OK);
    return data;
}

static void write_raw(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_missing_is_empty_and_round_trip(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = agx_sprintf("%s/sub/plan.json", dir);
    agx_plan p;
    agx_error err;
    assert_int_equal(agx_buffer_load(path, &p, &err), AGX_OK);
    assert_int_equal(p.n_tasks, 0);
    add(&p, "grep", "TODO", 0);
    add(&p, "wc", "-l", 1);
    assert_int_equal(agx_buffer_save(path, &p, &err), AGX_OK); /* creates sub/ */
    agx_plan q;
    assert_int_equal(agx_buffer_load(path, &q, &err), AGX_OK);
    assert_int_equal(q.n_tasks, 2);
    assert_string_equal(q.tasks[1].command, "wc");
    assert_string_equal(q.tasks[1].args[0], "-l");
    assert_int_equal(q.tasks[1].input_from_task, 1);
    /* the file is the canonical pretty JSON, newline-terminated */
    size_t len;
    char *text = read_file(path, &len);
    char *canon = agx_plan_to_json(&p, AGX_JSON_PRETTY);
    assert_int_equal(len, strlen(canon) + 1);
    assert_memory_equal(text, canon, strlen(canon));
    assert_int_equal(text[len - 1], '\n');
    free(text);
    free(canon);
    agx_plan_free(&p);
    agx_plan_free(&q);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

static void test_append_shifts_references(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = agx_sprintf("%s/plan.json", dir);
    agx_plan p, steps, result;
    agx_error err;
    agx_plan_init(&p);
    add(&p, "cat", "a.txt", 0);
    add(&p, "sort", NULL, 1);
    assert_int_equal(agx_buffer_save(path, &p, &err), AGX_OK);
    agx_plan_init(&steps);
    add(&steps, "grep", "x", 0);
    add(&steps, "wc", "-l", 1);
    int first = 0;
    assert_int_equal(agx_buffer_append(path, &steps, &first, &result, &err), AGX_OK);
    assert_int_equal(first, 3);
    assert_int_equal(result.n_tasks, 4);
    assert_int_equal(result.tasks[2].input_from_task, 0);
    assert_int_equal(result.tasks[3].input_from_task, 3); /* was 1 inside steps */
    assert_int_equal(result.tasks[3].task_number, 4);
    agx_plan_free(&result);
    agx_plan loaded;
    assert_int_equal(agx_buffer_load(path, &loaded, &err), AGX_OK);
    assert_int_equal(loaded.n_tasks, 4);
    assert_string_equal(loaded.tasks[3].command, "wc");
    agx_plan_free(&loaded);
    agx_plan_free(&p);
    agx_plan_free(&steps);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

/* Two processes append ITER single-task plans each; all 2*ITER must land. */
#define ITER 60
static void test_concurrent_appends_lose_nothing(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = agx_sprintf("%s/plan.json", dir);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            int bad = 0;
            for (int i = 0; i < ITER; i++) {
                agx_plan steps;
                agx_plan_init(&steps);
                char tag[32];
                snprintf(tag, sizeof tag, "%c%d", 'a' + k, i);
                agx_error err;
                const char *args[1] = {tag};
                if (agx_plan_add_task(&steps, "echo", args, 1, 0, &err) != AGX_OK ||
                    agx_buffer_append(path, &steps, NULL, NULL, &err) != AGX_OK)
                    bad++;
                agx_plan_free(&steps);
            }
            _exit(bad ? 1 : 0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status;
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    agx_plan p;
    agx_error err;
    assert_int_equal(agx_buffer_load(path, &p, &err), AGX_OK);
    assert_int_equal(p.n_tasks, 2 * ITER);
    int seen[2][ITER] = {{0}};
    for (size_t i = 0; i < p.n_tasks; i++) {
        const char *tag = p.tasks[i].args[0];
        int k = tag[0] - 'a', n = atoi(tag + 1);
        assert_true(k >= 0 && k < 2 && n >= 0 && n < ITER);
        seen[k][n]++;
        assert_int_equal(p.tasks[i].task_number, (int)i + 1);
    }
    /* each step exactly once, and each writer's steps in its own order */
    int last[2] = {-1, -1};
    for (size_t i = 0; i < p.n_tasks; i++) {
        const char *tag = p.tasks[i].args[0];
        int k = tag[0] - 'a', n = atoi(tag + 1);
        assert_true(n > last[k]);
        last[k] = n;
    }
    for (int k = 0; k < 2; k++)
        for (int n = 0; n < ITER; n++) assert_int_equal(seen[k][n], 1);
    agx_plan_free(&p);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

/* Every strict prefix of a buffer (a write cut short) is reported as corrupt,
 * the file is left byte-for-byte as it was, and appends refuse to touch it. */
static void test_truncated_buffer_is_detected_and_kept(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = agx_sprintf("%s/plan.json", dir);
    agx_plan p;
    agx_plan_init(&p);
    add(&p, "grep", "-rn", 0);
    add(&p, "sort", "-rn", 1);
    add(&p, "head", "-n", 2);
    char *full = agx_plan_to_json(&p, AGX_JSON_PRETTY);
    size_t n = strlen(full);
    agx_plan steps;
    agx_plan_init(&steps);
    add(&steps, "wc", "-l", 0);
    agx_error err;
    for (size_t cut = 0; cut < n - 1; cut += (cut < 40 ? 1 : 7)) {
        write_raw(path, full, cut);
        agx_plan q;
        assert_int_equal(agx_buffer_load(path, &q, &err), AGX_ERR_JSON);
        assert_non_null(strstr(err.message, "corrupt"));
        assert_non_null(strstr(err.message, path));
        assert_non_null(strstr(err.message, "agx plan new"));
        assert_int_equal(q.n_tasks, 0);
        assert_int_equal(agx_buffer_append(path, &steps, NULL, NULL, &err), AGX_ERR_JSON);
        size_t len;
        char *now = read_file(path, &len);
        assert_int_equal(len, cut);
        assert_memory_equal(now, full, cut);
        free(now);
    }
    /* garbage of other kinds: not JSON, wrong shape */
    static const char *const bad[] = {"not json", "[1,2,3]", "{\"tasks\": 5}", "\n\n  \n",
                                      "{\"tasks\":[{\"task_number\":1}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_raw(path, bad[i], strlen(bad[i]));
        agx_plan q;
        assert_int_equal(agx_buffer_load(path, &q, &err), AGX_ERR_JSON);
    }
    /* a file far larger than any buffer agx writes is corrupt too, and reset moves it */
    FILE *big = fopen(path, "wb");
    assert_non_null(big);
    assert_int_equal(ftruncate(fileno(big), (off_t)AGX_BUFFER_MAX_BYTES + 1), 0); /* sparse */
    fclose(big);
    agx_plan q;
    assert_int_equal(agx_buffer_load(path, &q, &err), AGX_ERR_JSON);
    assert_non_null(strstr(err.message, "limit"));
    char *moved = NULL;
    assert_int_equal(agx_buffer_reset(path, &moved, &err), AGX_OK);
    assert_non_null(moved);
    free(moved);
    free(full);
    agx_plan_free(&p);
    agx_plan_free(&steps);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

static void test_reset_moves_corrupt_aside(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = agx_sprintf("%s/plan.json", dir);
    agx_error err;
    char *moved = NULL;
    /* missing buffer: nothing to move */
    assert_int_equal(agx_buffer_reset(path, &moved, &err), AGX_OK);
    assert_null(moved);
    const char torn[] = "{\"tasks\": [{\"task_number\": 1, \"comm";
    write_raw(path, torn, strlen(torn));
    assert_int_equal(agx_buffer_reset(path, &moved, &err), AGX_OK);
    assert_non_null(moved);
    assert_non_null(strstr(moved, "plan.json.corrupt-"));
    size_t len;
    char *kept = read_file(moved, &len);
    assert_int_equal(len, strlen(torn));
    assert_memory_equal(kept, torn, len);
    free(kept);
    agx_plan p;
    assert_int_equal(agx_buffer_load(path, &p, &err), AGX_OK);
    assert_int_equal(p.n_tasks, 0);
    /* a second corrupt buffer in the same second gets its own name */
    write_raw(path, torn, strlen(torn));
    char *moved2 = NULL;
    assert_int_equal(agx_buffer_reset(path, &moved2, &err), AGX_OK);
    assert_non_null(moved2);
    assert_string_not_equal(moved, moved2);
    assert_true(agx_file_exists(moved) && agx_file_exists(moved2));
    /* resetting a valid buffer empties it and moves nothing */
    add(&p, "ls", NULL, 0);
    assert_int_equal(agx_buffer_save(path, &p, &err), AGX_OK);
    char *moved3 = NULL;
    assert_int_equal(agx_buffer_reset(path, &moved3, &err), AGX_OK);
    assert_null(moved3);
    agx_plan_free(&p);
    assert_int_equal(agx_buffer_load(path, &p, &err), AGX_OK);
    assert_int_equal(p.n_tasks, 0);
    agx_plan_free(&p);
    free(moved);
    free(moved2);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

/* A reader that never takes the lock still sees only whole buffers while a
 * writer keeps replacing it with plans of different sizes; no temp files stay. */
static void test_atomic_save(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = agx_sprintf("%s/plan.json", dir);
    agx_plan small, large;
    agx_plan_init(&small);
    agx_plan_init(&large);
    add(&small, "ls", NULL, 0);
    for (int i = 0; i < 20; i++) add(&large, "sort", "-rn", i);
    agx_error err;
    assert_int_equal(agx_buffer_save(path, &small, &err), AGX_OK);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        int bad = 0;
        for (int i = 0; i < 150; i++)
            bad += agx_buffer_save(path, (i & 1) ? &large : &small, &err) != AGX_OK;
        _exit(bad ? 1 : 0);
    }
    int torn = 0, reads = 0, status;
    while (waitpid(kid, &status, WNOHANG) == 0) {
        agx_plan q;
        if (agx_buffer_load(path, &q, &err) != AGX_OK) torn++;
        else assert_true(q.n_tasks == 1 || q.n_tasks == 20);
        agx_plan_free(&q);
        reads++;
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(torn, 0);
    assert_true(reads > 0);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp.")) fail_msg("temporary file left behind: %s", de->d_name);
    closedir(d);
    agx_plan_free(&small);
    agx_plan_free(&large);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_is_empty_and_round_trip),
        cmocka_unit_test(test_append_shifts_references),
        cmocka_unit_test(test_concurrent_appends_lose_nothing),
        cmocka_unit_test(test_truncated_buffer_is_detected_and_kept),
        cmocka_unit_test(test_reset_moves_corrupt_aside),
        cmocka_unit_test(test_atomic_save),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
