/* test_chat_template.c — every case of ref/tokenizer/<fam>.chat.json: the
 * rendered prompt byte-exact (library and 'agx template --json'), and its ids
 * (library and 'agx tokenize --special --no-bos --json --file'). */
#include "agx_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"
#include "agx/chat.h"
#include "agx/gguf.h"
#include "agx/tokenizer.h"

static const char *const FAMS[] = {"qwen2", "llama3", "llama2"};

static json_t *load_ref(const char *rel) {
    char *p = agx_test_ref_path(rel);
    if (!p) return NULL;
    json_error_t je;
    json_t *v = json_load_file(p, JSON_ALLOW_NUL, &je);
    free(p);
    return v;
}

static agx_tokenizer *load_tok(const char *fam, bool json) {
    char rel[96];
    agx_error err;
    agx_tokenizer *t = NULL;
    if (json) {
        snprintf(rel, sizeof rel, "tokenizer/json/%s/tokenizer.json", fam);
        char *p = agx_test_ref_path(rel);
        assert_int_equal(agx_tokenizer_load_json(p, &t, &err), AGX_OK);
        free(p);
    } else {
        snprintf(rel, sizeof rel, "tokenizer/%s.vocab.gguf", fam);
        char *p = agx_test_ref_path(rel);
        assert_int_equal(agx_tokenizer_load_for_model(p, NULL, &t, &err), AGX_OK);
        free(p);
    }
    return t;
}

static void test_render_library(void **state) {
    (void)state;
    if (!agx_test_ref_dir()) AGX_TEST_SKIP("tokenizer reference data (AGX_REF_DIR) not found");
    int fails = 0;
    for (size_t f = 0; f < 3; f++) {
        char rel[64];
        snprintf(rel, sizeof rel, "tokenizer/%s.chat.json", FAMS[f]);
        json_t *ref = load_ref(rel);
        if (!ref) AGX_TEST_SKIP("%s missing", rel);
        const char *ref_tmpl = json_string_value(json_object_get(ref, "chat_template"));
        for (int path = 0; path < 2; path++) {
            agx_tokenizer *t = load_tok(FAMS[f], path == 1);
            /* the GGUF's own template where it has one (qwen2, llama3); llama2 has none */
            const char *tmpl = agx_tokenizer_chat_template(t);
            if (strcmp(FAMS[f], "llama2") == 0) {
                assert_null(tmpl);
                tmpl = ref_tmpl;
            } else {
                assert_non_null(tmpl);
                assert_string_equal(tmpl, ref_tmpl);
            }
            bool known;
            agx_chat_detect(tmpl, &known);
            assert_true(known);
            size_t i;
            json_t *c;
            json_array_foreach(json_object_get(ref, "cases"), i, c) {
                json_t *ms = json_object_get(c, "messages");
                size_t n = json_array_size(ms);
                agx_chat_msg msgs[16];
                assert_true(n <= 16);
                for (size_t k = 0; k < n; k++) {
                    msgs[k].role = json_string_value(json_object_get(json_array_get(ms, k), "role"));
                    msgs[k].content = json_string_value(json_object_get(json_array_get(ms, k), "content"));
                }
                char *out = NULL;
                agx_error err;
                assert_int_equal(agx_chat_render(tmpl, agx_tokenizer_bos_text(t), agx_tokenizer_eos_text(t), msgs, n,
                                                 true, &out, &err), AGX_OK);
                const char *want = json_string_value(json_object_get(c, "prompt"));
                if (strcmp(out, want) != 0) {
                    fprintf(stderr, "  %s %s: prompt differs\n   got: %s\n  want: %s\n", FAMS[f],
                            json_string_value(json_object_get(c, "name")), out, want);
                    fails++;
                }
                int32_t *ids;
                size_t nid;
                assert_int_equal(agx_tokenizer_encode(t, want, strlen(want), false, true, &ids, &nid, &err), AGX_OK);
                json_t *rids = json_object_get(c, "ids");
                bool same = json_array_size(rids) == nid;
                for (size_t k = 0; same && k < nid; k++) same = json_integer_value(json_array_get(rids, k)) == ids[k];
                if (!same) {
                    fprintf(stderr, "  %s %s (%s): prompt ids differ\n", FAMS[f],
                            json_string_value(json_object_get(c, "name")), path ? "json" : "gguf");
                    fails++;
                }
                free(ids);
                /* the generation path: render + encode with contents guarded */
                char *prompt = NULL;
                const char *tmpl_arg = strcmp(FAMS[f], "llama2") == 0 ? ref_tmpl : NULL;
                assert_int_equal(agx_chat_tokenize(t, tmpl_arg, msgs, n, true, &prompt, &ids, &nid, &err), AGX_OK);
                assert_string_equal(prompt, want);
                same = json_array_size(rids) == nid;
                for (size_t k = 0; same && k < nid; k++) same = json_integer_value(json_array_get(rids, k)) == ids[k];
                if (!same) {
                    fprintf(stderr, "  %s %s (%s): agx_chat_tokenize ids differ\n", FAMS[f],
                            json_string_value(json_object_get(c, "name")), path ? "json" : "gguf");
                    fails++;
                }
                free(ids);
                free(prompt);
                free(out);
            }
            agx_tokenizer_free(t);
        }
        json_decref(ref);
    }
    assert_int_equal(fails, 0);
}

static char *write_tmp(const char *dir, const char *name, const char *data, size_t n) {
    char *p = agx_sprintf("%s/%s", dir, name);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    fwrite(data, 1, n, fp);
    fclose(fp);
    return p;
}

static void test_render_cli(void **state) {
    (void)state;
    if (!agx_test_ref_dir()) AGX_TEST_SKIP("tokenizer reference data (AGX_REF_DIR) not found");
    char *dir = agx_test_tmpdir();
    int fails = 0;
    for (size_t f = 0; f < 3; f++) {
        char rel[64];
        snprintf(rel, sizeof rel, "tokenizer/%s.chat.json", FAMS[f]);
        json_t *ref = load_ref(rel);
        snprintf(rel, sizeof rel, "tokenizer/%s.vocab.gguf", FAMS[f]);
        char *model = agx_test_ref_path(rel);
        const char *tmpl = json_string_value(json_object_get(ref, "chat_template"));
        char *tmpl_path = write_tmp(dir, "tmpl.jinja", tmpl, strlen(tmpl));
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(ref, "cases"), i, c) {
            char *msgs = json_dumps(json_object_get(c, "messages"), 0);
            char *msgs_path = write_tmp(dir, "msgs.json", msgs, strlen(msgs));
            free(msgs);
            char *cmd = agx_sprintf("'%s' template -m '%s' --messages '%s' %s%s%s --json", agx_test_cli_path(), model,
                                    msgs_path, strcmp(FAMS[f], "llama2") == 0 ? "--chat-template '" : "",
                                    strcmp(FAMS[f], "llama2") == 0 ? tmpl_path : "",
                                    strcmp(FAMS[f], "llama2") == 0 ? "'" : "");
            char *out = NULL;
            assert_int_equal(agx_test_run(cmd, NULL, &out, NULL), 0);
            json_error_t je;
            json_t *got = json_loads(out, 0, &je);
            assert_non_null(got);
            const char *want = json_string_value(json_object_get(c, "prompt"));
            if (!json_is_string(json_object_get(got, "prompt")) ||
                strcmp(json_string_value(json_object_get(got, "prompt")), want) != 0) {
                fprintf(stderr, "  %s %s: 'agx template' output differs: %s\n", FAMS[f],
                        json_string_value(json_object_get(c, "name")), out);
                fails++;
            }
            json_decref(got);
            free(out);
            free(cmd);

            char *prompt_path = write_tmp(dir, "prompt.txt", want, strlen(want));
            cmd = agx_sprintf("'%s' tokenize -m '%s' --special --no-bos --json --file '%s'", agx_test_cli_path(), model,
                              prompt_path);
            assert_int_equal(agx_test_run(cmd, NULL, &out, NULL), 0);
            got = json_loads(out, 0, &je);
            assert_non_null(got);
            assert_true(json_equal(json_object_get(got, "tokens"), json_object_get(c, "ids")));
            json_decref(got);
            free(out);
            free(cmd);
            free(prompt_path);
            free(msgs_path);
        }
        free(tmpl_path);
        free(model);
        json_decref(ref);
    }
    agx_test_rmtree(dir);
    free(dir);
    assert_int_equal(fails, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_library),
        cmocka_unit_test(test_render_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
