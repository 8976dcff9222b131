/* agx_test.c — implementation of the shared test helpers (see agx_test.h). */

#include "agx_test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agx/util.h"

void agx_test_print_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\n*** SKIPPED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " ***\n");
    va_end(ap);
}

const char *agx_test_ref_dir(void) {
    static char path[4096];
    const char *env = getenv("AGX_REF_DIR");
    if (env && *env)
        snprintf(path, sizeof path, "%s", env);
    else
        snprintf(path, sizeof path, "%s/../shared/ref", AGX_SOURCE_DIR);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        agx_test_print_skip("reference data folder '%s' not found (set AGX_REF_DIR)", path);
        return NULL;
    }
    return path;
}

char *agx_test_ref_path(const char *relative) {
    const char *dir = agx_test_ref_dir();
    if (!dir) return NULL;
    char *out = NULL;
    if (asprintf(&out, "%s/%s", dir, relative) < 0) return NULL;
    return out;
}

const char *agx_test_cli_path(void) {
    const char *env = getenv("AGX_CLI");
    return (env && *env) ? env : AGX_CLI_PATH;
}

const char *agx_test_gen_model_path(void) {
    const char *env = getenv("AGX_GEN_MODEL");
    return (env && *env) ? env : AGX_BINARY_DIR "/agx_gen_model";
}

char *agx_test_gen_model(const char *dir, const char *file, const char *args) {
    char *path = agx_sprintf("%s/%s", dir, file);
    char *cmd = agx_sprintf("'%s' --quiet %s -o '%s'", agx_test_gen_model_path(), args, path);
    char *errout = NULL;
    const int rc = agx_test_run(cmd, NULL, NULL, &errout);
    if (rc != 0) {
        fprintf(stderr, "%s -> %d: %s\n", cmd, rc, errout ? errout : "");
        free(path);
        path = NULL;
    }
    free(errout);
    free(cmd);
    return path;
}

char *agx_test_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char *tmpl = NULL;
    if (asprintf(&tmpl, "%s/agx-test-XXXXXX", (base && *base) ? base : "/tmp") < 0) return NULL;
    if (!mkdtemp(tmpl)) {
        free(tmpl);
        return NULL;
    }
    return tmpl;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void agx_test_rmtree(const char *dir) {
    if (dir) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *slurp_fd(int fd) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            char *p = realloc(buf, cap);
            if (!p) break;
            buf = p;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0) break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

int agx_test_run(const char *cmdline, const char *stdin_data, char **out, char **errout) {
    char *dir = agx_test_tmpdir();
    if (!dir) return -1;
    char *in_path = NULL, *out_path = NULL, *err_path = NULL, *full = NULL;
    int rc = -1;
    if (asprintf(&in_path, "%s/in", dir) < 0 || asprintf(&out_path, "%s/out", dir) < 0 ||
        asprintf(&err_path, "%s/err", dir) < 0)
        goto done;
    FILE *f = fopen(in_path, "wb");
    if (!f) goto done;
    if (stdin_data) fwrite(stdin_data, 1, strlen(stdin_data), f);
    fclose(f);
    if (asprintf(&full, "( %s ) <%s >%s 2>%s", cmdline, stdin_data ? in_path : "/dev/null",
                 out_path, err_path) < 0)
        goto done;
    int status = system(full);
    rc = (status >= 0 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
    FILE *fo = fopen(out_path, "rb");
    if (out) *out = fo ? slurp_fd(fileno(fo)) : NULL;
    if (fo) fclose(fo);
    FILE *fe = fopen(err_path, "rb");
    if (errout) *errout = fe ? slurp_fd(fileno(fe)) : NULL;
    if (fe) fclose(fe);
done:
    free(full);
    free(in_path);
    free(out_path);
    free(err_path);
    agx_test_rmtree(dir);
    free(dir);
    return rc;
}

agx_test_cli_result agx_test_cli(const char *env_prefix, const char *args, const char *stdin_data) {
    agx_test_cli_result r;
    char *cmd = env_prefix ? agx_sprintf("env %s '%s' %s", env_prefix, agx_test_cli_path(), args)
                           : agx_sprintf("'%s' %s", agx_test_cli_path(), args);
    r.rc = agx_test_run(cmd, stdin_data, &r.out, &r.err);
    free(cmd);
    if (!r.out) r.out = agx_strdup("");
    if (!r.err) r.err = agx_strdup("");
    return r;
}

void agx_test_cli_result_free(agx_test_cli_result *r) {
    free(r->out);
    free(r->err);
}

size_t agx_test_count(const char *s, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}
