/* test_core.c — core helpers: errors, strbuf, atomic writes, locks, env parsing. */
#include "agx_test.h"

#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"

static void test_error_set_and_prefix(void **state) {
    (void)state;
    agx_error err;
    agx_error_clear(&err);
    assert_int_equal(agx_error_set(&err, AGX_ERR_LOAD, "Model file not found: '%s'", "/x.gguf"),
                     AGX_ERR_LOAD);
    agx_error_prefix(&err, "echo model");
    assert_string_equal(err.message, "echo model: Model file not found: '/x.gguf'");
    assert_string_equal(agx_status_name(AGX_ERR_HEALTH_CHECK), "health_check");
    assert_int_equal(agx_status_exit_code(AGX_ERR_CONFIG), AGX_EXIT_CONFIG);
    assert_int_equal(agx_status_exit_code(AGX_ERR_VALIDATION), AGX_EXIT_DATA);
}

static void test_strbuf(void **state) {
    (void)state;
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    for (int i = 0; i < 1000; i++) assert_true(agx_strbuf_printf(&sb, "%d,", i));
    assert_true(agx_strbuf_append(&sb, "\0x", 2));
    assert_int_equal(sb.data[sb.len], '\0');
    assert_memory_equal(sb.data, "0,1,2,", 6);
    char *s = agx_strbuf_take(&sb);
    assert_null(sb.data);
    free(s);
}

static void test_atomic_write_and_read(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    assert_non_null(dir);
    char *path = agx_sprintf("%s/sub/dir/file.json", dir);
    agx_error err;
    assert_int_equal(agx_file_write_atomic(path, "hello", 5, &err), AGX_OK);
    assert_int_equal(agx_file_write_atomic(path, "world!", 6, &err), AGX_OK);
    char *data;
    size_t len;
    assert_int_equal(agx_file_read_all(path, 0, &data, &len, &err), AGX_OK);
    assert_int_equal(len, 6);
    assert_string_equal(data, "world!");
    free(data);
    assert_int_equal(agx_file_read_all(path, 3, &data, &len, &err), AGX_ERR_IO);
    assert_non_null(strstr(err.message, "limit"));
    int fd;
    assert_int_equal(agx_file_lock(path, &fd, &err), AGX_OK);
    agx_file_unlock(fd);
    char *missing = agx_sprintf("%s/nope", dir);
    assert_int_equal(agx_file_read_all(missing, 0, &data, &len, &err), AGX_ERR_IO);
    assert_non_null(strstr(err.message, "nope"));
    free(missing);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

static void test_env_parsing(void **state) {
    (void)state;
    agx_error err;
    double d;
    long l;
    setenv("AGX_TEST_NUM", "0.25", 1);
    assert_int_equal(agx_env_double("AGX_TEST_NUM", 1.0, &d, &err), AGX_OK);
    assert_true(d == 0.25);
    setenv("AGX_TEST_NUM", "abc", 1);
    assert_int_equal(agx_env_long("AGX_TEST_NUM", 5, &l, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "AGX_TEST_NUM"));
    unsetenv("AGX_TEST_NUM");
    assert_int_equal(agx_env_long("AGX_TEST_NUM", 5, &l, &err), AGX_OK);
    assert_int_equal(l, 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_and_prefix),
        cmocka_unit_test(test_strbuf),
        cmocka_unit_test(test_atomic_write_and_read),
        cmocka_unit_test(test_env_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
