/* test_input.c — the input summary: counts, binary detection, the safe excerpt
 * (escaping, UTF-8 boundaries, size and line caps), bounded fd reading, and
 * the prompt paragraph. */
#include "agx_test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agx/input.h"
#include "agx/util.h"

static agx_input_summary sum(const char *data, size_t len) {
    agx_input_summary s;
    agx_error err;
    assert_int_equal(agx_input_summarize(data, len, &s, &err), AGX_OK);
    return s;
}

static void test_counts(void **state) {
    (void)state;
    agx_input_summary s = sum("a\nb\nc\n", 6);
    assert_int_equal(s.bytes, 6);
    assert_int_equal(s.lines, 3);
    assert_false(s.is_binary);
    assert_false(s.truncated);
    assert_string_equal(s.excerpt, "a\nb\nc");
    agx_input_summary_free(&s);
    s = sum("a\nb", 3); /* unterminated last line counts */
    assert_int_equal(s.lines, 2);
    agx_input_summary_free(&s);
    s = sum("", 0);
    assert_int_equal(s.lines, 0);
    assert_string_equal(s.excerpt, "");
    agx_input_summary_free(&s);
    s = sum(NULL, 5);
    assert_int_equal(s.bytes, 0);
    agx_input_summary_free(&s);
    agx_input_summary_free(&s); /* idempotent */
}

static void test_binary_detection(void **state) {
    (void)state;
    agx_input_summary s = sum("text\0more", 9);
    assert_true(s.is_binary);
    assert_string_equal(s.excerpt, "");
    agx_input_summary_free(&s);
    /* mostly invalid UTF-8 */
    unsigned char junk[256];
    for (int i = 0; i < 256; i++) junk[i] = (unsigned char)(0x80 + (i * 37) % 0x7f + 1);
    s = sum((const char *)junk, sizeof junk);
    assert_true(s.is_binary);
    agx_input_summary_free(&s);
    /* Latin-1 word in UTF-8 text is still text */
    const char *t = "caf\xe9 au lait, plenty of plain ASCII text around it\n";
    s = sum(t, strlen(t));
    assert_false(s.is_binary);
    assert_non_null(strstr(s.excerpt, "caf\\xe9 au"));
    agx_input_summary_free(&s);
    /* valid multibyte text is text */
    t = "na\xc3\xafve \xe2\x9c\x93 \xf0\x9f\x98\x80\n";
    s = sum(t, strlen(t));
    assert_false(s.is_binary);
    assert_string_equal(s.excerpt, "na\xc3\xafve \xe2\x9c\x93 \xf0\x9f\x98\x80");
    agx_input_summary_free(&s);
}

static void test_excerpt_escapes_terminal_controls(void **state) {
    (void)state;
    const char *t = "red \x1b[31mX\x1b[0m\tok\r\nbell\a del\x7f c1\xc2\x9b bidi\xe2\x80\xae!\n";
    agx_input_summary s = sum(t, strlen(t));
    assert_false(s.is_binary);
    assert_string_equal(s.excerpt,
                        "red \\x1b[31mX\\x1b[0m\tok\nbell\\x07 del\\x7f c1\\x9b bidi\\u202e!");
    for (const char *p = s.excerpt; *p; p++)
        assert_false((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t');
    agx_input_summary_free(&s);
}

static bool valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        if (!n) return false;
        for (int i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80) return false;
        p += n;
    }
    return true;
}

static void test_excerpt_bounded_at_character_boundary(void **state) {
    (void)state;
    /* one long line of 3-byte characters: cut below 1 KiB on a boundary */
    size_t n = 3 * 1000;
    char *t = malloc(n + 1);
    for (size_t i = 0; i < n; i += 3) memcpy(t + i, "\xe2\x82\xac", 3);
    t[n] = '\0';
    agx_input_summary s = sum(t, n);
    size_t el = strlen(s.excerpt);
    assert_true(el <= 1024);
    assert_true(el >= 1020);
    assert_int_equal(el % 3, 0);
    assert_true(valid_utf8(s.excerpt));
    agx_input_summary_free(&s);
    free(t);
    /* many lines: at most 10 in the excerpt */
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    for (int i = 0; i < 50; i++) agx_strbuf_printf(&sb, "line %d\n", i);
    s = sum(sb.data, sb.len);
    assert_int_equal(s.lines, 50);
    size_t nl = 0;
    for (const char *p = s.excerpt; *p; p++) nl += *p == '\n';
    assert_int_equal(nl, 9);
    assert_non_null(strstr(s.excerpt, "line 9"));
    assert_null(strstr(s.excerpt, "line 10"));
    agx_input_summary_free(&s);
    agx_strbuf_free(&sb);
    /* escapes count toward the cap and are never split */
    t = malloc(2000);
    memset(t, 0x01, 2000);
    s = sum(t, 2000);
    assert_true(strlen(s.excerpt) <= 1024);
    assert_int_equal(strlen(s.excerpt) % 4, 0);
    agx_input_summary_free(&s);
    free(t);
}

static void test_describe(void **state) {
    (void)state;
    agx_input_summary s = sum("x,1\ny,2\n", 8);
    char *d = agx_input_summary_describe(&s);
    assert_string_equal(d, "Input: 8 bytes, 2 lines, text. First lines:\nx,1\ny,2");
    free(d);
    agx_input_summary_free(&s);
    s = sum("\0\1\2", 3);
    d = agx_input_summary_describe(&s);
    assert_string_equal(d, "Input: 3 bytes, 1 line, binary. No excerpt (binary data).");
    free(d);
    agx_input_summary_free(&s);
    s = sum("", 0);
    d = agx_input_summary_describe(&s);
    assert_string_equal(d, "Input: empty (0 bytes).");
    free(d);
    agx_input_summary_free(&s);
    d = agx_input_summary_describe(NULL);
    assert_string_equal(d, "Input: none.");
    free(d);
}

static void test_fd_pipe(void **state) {
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char *t = "alpha\nbeta\ngamma";
    assert_int_equal(write(fds[1], t, strlen(t)), (ssize_t)strlen(t));
    close(fds[1]);
    agx_input_summary s;
    agx_error err;
    assert_int_equal(agx_input_summarize_fd(fds[0], &s, &err), AGX_OK);
    close(fds[0]);
    assert_int_equal(s.bytes, strlen(t));
    assert_int_equal(s.lines, 3);
    assert_false(s.truncated);
    assert_string_equal(s.excerpt, "alpha\nbeta\ngamma");
    agx_input_summary_free(&s);
    /* a bad fd is an I/O error, not a crash */
    assert_int_equal(agx_input_summarize_fd(-1, &s, &err), AGX_ERR_IO);
}

static void test_fd_large_file_is_bounded(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = agx_sprintf("%s/big.txt", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    assert_true(fd >= 0);
    /* 100 KiB of text lines (spanning more than one read chunk) */
    char line[101];
    memset(line, 'x', 99);
    line[99] = '\n';
    line[100] = 0;
    for (int i = 0; i < 1024; i++) assert_int_equal(write(fd, line, 100), 100);
    lseek(fd, 0, SEEK_SET);
    agx_input_summary s;
    agx_error err;
    assert_int_equal(agx_input_summarize_fd(fd, &s, &err), AGX_OK);
    assert_int_equal(s.bytes, 102400);
    assert_int_equal(s.lines, 1024);
    assert_false(s.is_binary);
    assert_false(s.truncated);
    agx_input_summary_free(&s);
    /* past the 64 MiB bound (sparse: cheap to make): truncated, counts are lower bounds */
    assert_int_equal(ftruncate(fd, (off_t)65 << 20), 0);
    lseek(fd, 0, SEEK_SET);
    assert_int_equal(agx_input_summarize_fd(fd, &s, &err), AGX_OK);
    assert_true(s.truncated);
    assert_int_equal(s.bytes, (size_t)64 << 20);
    assert_true(s.is_binary); /* the sparse tail is NUL bytes */
    char *d = agx_input_summary_describe(&s);
    assert_non_null(strstr(d, "more than"));
    free(d);
    agx_input_summary_free(&s);
    close(fd);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_binary_detection),
        cmocka_unit_test(test_excerpt_escapes_terminal_controls),
        cmocka_unit_test(test_excerpt_bounded_at_character_boundary),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_fd_pipe),
        cmocka_unit_test(test_fd_large_file_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
