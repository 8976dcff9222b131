/* test_tokenizer_ref.c — every vector of ref/tokenizer/<fam>.vectors.json:
 * ids, ids_with_specials and decode, from the GGUF metadata path and from the
 * tokenizer.json path; the streaming decoder against the full decode; and
 * parse_special=false against llama.cpp where it agrees with HF. */
#include "agx_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"
#include "agx/gguf.h"
#include "agx/tokenizer.h"
#include "agx/util.h"
#include "engine/tokenizer_internal.h"

static const char *const FAMS[] = {"qwen2", "llama3", "llama2"};

static unsigned char *unhex(const char *hex, size_t *n) {
    size_t len = strlen(hex) / 2;
    unsigned char *b = malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        b[i] = (unsigned char)v;
    }
    b[len] = 0;
    *n = len;
    return b;
}

static bool ids_equal(json_t *ref, const int32_t *ids, size_t n) {
    if (json_array_size(ref) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(ref, i)) != ids[i]) return false;
    return true;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

static int32_t *ref_ids(json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *ids = malloc((*n + 1) * sizeof *ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

/* Returns the number of failing checks. */
static int check_family(const char *fam, agx_tokenizer *t, const char *path_kind, json_t *vec) {
    int fails = 0;
    size_t i;
    json_t *v;
    json_array_foreach(vec, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        size_t len;
        unsigned char *text = unhex(json_string_value(json_object_get(v, "text_utf8_hex")), &len);
        int32_t *ids = NULL;
        size_t n = 0;
        agx_error err;
        assert_int_equal(agx_tokenizer_encode(t, (const char *)text, len, false, true, &ids, &n, &err), AGX_OK);
        if (!ids_equal(json_object_get(v, "ids"), ids, n)) {
            fprintf(stderr, "  %s/%s %s (%s): ids differ\n", fam, path_kind, id,
                    json_string_value(json_object_get(v, "category")));
            print_ids("got", ids, n);
            size_t rn;
            int32_t *r = ref_ids(json_object_get(v, "ids"), &rn);
            print_ids("ref", r, rn);
            free(r);
            fails++;
        }
        free(ids);
        assert_int_equal(agx_tokenizer_encode(t, (const char *)text, len, true, true, &ids, &n, &err), AGX_OK);
        if (!ids_equal(json_object_get(v, "ids_with_specials"), ids, n)) {
            fprintf(stderr, "  %s/%s %s: ids_with_specials differ\n", fam, path_kind, id);
            fails++;
        }
        free(ids);

        /* decode of the reference ids */
        const char *keys[2][2] = {{"ids", "decoded"}, {"ids_with_specials", "decoded_with_specials"}};
        for (int k = 0; k < 2; k++) {
            size_t rn;
            int32_t *r = ref_ids(json_object_get(v, keys[k][0]), &rn);
            json_t *dj = json_object_get(v, keys[k][1]);
            char *out;
            size_t outn;
            assert_int_equal(agx_tokenizer_decode(t, r, rn, false, &out, &outn, &err), AGX_OK);
            if (outn != json_string_length(dj) || memcmp(out, json_string_value(dj), outn) != 0) {
                fprintf(stderr, "  %s/%s %s: %s differs: got '%s' want '%s'\n", fam, path_kind, id, keys[k][1],
                        out, json_string_value(dj));
                fails++;
            }
            if (k == 0) {
                /* streaming decode, one id at a time, equals the full decode */
                agx_tokenizer_stream s;
                agx_tokenizer_stream_init(&s, t, false);
                char *so = NULL;
                size_t sl = 0, sc = 0;
                for (size_t j = 0; j < rn; j++)
                    assert_int_equal(agx_tokenizer_stream_push(&s, r[j], &so, &sl, &sc, &err), AGX_OK);
                assert_int_equal(agx_tokenizer_stream_flush(&s, &so, &sl, &sc, &err), AGX_OK);
                if (sl != outn || (sl && memcmp(so, out, sl) != 0)) {
                    fprintf(stderr, "  %s/%s %s: streaming decode differs\n", fam, path_kind, id);
                    fails++;
                }
                free(so);
            }
            free(out);
            free(r);
        }

        /* parse_special=false: llama.cpp's ids where llama.cpp agrees with HF */
        if (strcmp(path_kind, "gguf") == 0 && json_is_true(json_object_get(v, "llamacpp_agrees"))) {
            assert_int_equal(agx_tokenizer_encode(t, (const char *)text, len, false, false, &ids, &n, &err), AGX_OK);
            if (!ids_equal(json_object_get(v, "llamacpp_ids_parse_special_false"), ids, n)) {
                fprintf(stderr, "  %s/%s %s: parse_special=false ids differ from llama.cpp\n", fam, path_kind, id);
                print_ids("got", ids, n);
                fails++;
            }
            free(ids);
        }
        free(text);
    }
    return fails;
}

static json_t *load_vectors(const char *fam) {
    char rel[64];
    snprintf(rel, sizeof rel, "tokenizer/%s.vectors.json", fam);
    char *p = agx_test_ref_path(rel);
    if (!p) return NULL;
    json_error_t je;
    json_t *v = json_load_file(p, JSON_ALLOW_NUL, &je);
    free(p);
    return v;
}

static void run_path(const char *path_kind) {
    if (!agx_test_ref_dir()) AGX_TEST_SKIP("tokenizer reference data (AGX_REF_DIR) not found");
    int total = 0;
    for (size_t f = 0; f < 3; f++) {
        json_t *vec = load_vectors(FAMS[f]);
        if (!vec) AGX_TEST_SKIP("tokenizer/%s.vectors.json missing", FAMS[f]);
        agx_tokenizer *t = NULL;
        agx_error err;
        char rel[64];
        agx_gguf *g = NULL;
        if (strcmp(path_kind, "gguf") == 0) {
            snprintf(rel, sizeof rel, "tokenizer/%s.vocab.gguf", FAMS[f]);
            char *p = agx_test_ref_path(rel);
            assert_int_equal(agx_gguf_open(p, &g, &err), AGX_OK);
            agx_status st = agx_tokenizer_load_gguf(g, &t, &err);
            if (st != AGX_OK) fprintf(stderr, "%s\n", err.message);
            assert_int_equal(st, AGX_OK);
            assert_string_equal(agx_tokenizer_source(t), "gguf");
            free(p);
        } else {
            snprintf(rel, sizeof rel, "tokenizer/json/%s/tokenizer.json", FAMS[f]);
            char *p = agx_test_ref_path(rel);
            agx_status st = agx_tokenizer_load_json(p, &t, &err);
            if (st != AGX_OK) fprintf(stderr, "%s\n", err.message);
            assert_int_equal(st, AGX_OK);
            assert_string_equal(agx_tokenizer_source(t), "tokenizer.json");
            free(p);
        }
        /* once with the pre-token cache on for every text, once off */
        t->cache_min_len = 0;
        int fails = check_family(FAMS[f], t, path_kind, vec);
        t->cache_min_len = SIZE_MAX;
        fails += check_family(FAMS[f], t, path_kind, vec);
        fprintf(stderr, "%s via %s: %zu vectors, %d failing checks\n", FAMS[f], path_kind, json_array_size(vec), fails);
        total += fails;
        agx_tokenizer_free(t);
        agx_gguf_close(g);
        json_decref(vec);
    }
    assert_int_equal(total, 0);
}

static void test_vectors_gguf(void **state) {
    (void)state;
    run_path("gguf");
}

static void test_vectors_json(void **state) {
    (void)state;
    run_path("json");
}

/* 'agx tokenize' / 'agx detokenize' on every 24th vector (and the NUL one), GGUF
 * and AGX_TOKENIZER=json, with and without --special / BOS. */
static void test_cli(void **state) {
    (void)state;
    if (!agx_test_ref_dir()) AGX_TEST_SKIP("tokenizer reference data (AGX_REF_DIR) not found");
    char *dir = agx_test_tmpdir();
    char *txt = agx_sprintf("%s/in.txt", dir);
    int fails = 0;
    for (size_t f = 0; f < 3; f++) {
        json_t *vec = load_vectors(FAMS[f]);
        char rel[96];
        snprintf(rel, sizeof rel, "tokenizer/%s.vocab.gguf", FAMS[f]);
        char *gguf = agx_test_ref_path(rel);
        snprintf(rel, sizeof rel, "tokenizer/json/%s/model.gguf", FAMS[f]);
        char *jmodel = agx_test_ref_path(rel);   /* only its directory is used */
        size_t i;
        json_t *v;
        json_array_foreach(vec, i, v) {
            const char *vid = json_string_value(json_object_get(v, "id"));
            if (i % 24 != 0 && strcmp(vid, "v099") != 0) continue;
            size_t len;
            unsigned char *text = unhex(json_string_value(json_object_get(v, "text_utf8_hex")), &len);
            FILE *fp = fopen(txt, "wb");
            fwrite(text, 1, len, fp);
            fclose(fp);
            for (int mode = 0; mode < 3; mode++) {
                /* 0: gguf --special --no-bos, 1: gguf --special (BOS per metadata), 2: json --special --no-bos */
                char *cmd = agx_sprintf("%s'%s' tokenize -m '%s' --special %s--json --file '%s'",
                                        mode == 2 ? "AGX_TOKENIZER=json " : "", agx_test_cli_path(),
                                        mode == 2 ? jmodel : gguf, mode == 1 ? "" : "--no-bos ", txt);
                char *out = NULL;
                assert_int_equal(agx_test_run(cmd, NULL, &out, NULL), 0);
                json_error_t je;
                json_t *got = json_loads(out, 0, &je);
                json_t *want = json_object_get(v, mode == 1 ? "ids_with_specials" : "ids");
                if (!got || !json_equal(json_object_get(got, "tokens"), want)) {
                    fprintf(stderr, "  %s %s: '%s' printed %s\n", FAMS[f], vid, cmd, out);
                    fails++;
                }
                json_decref(got);
                free(out);
                free(cmd);
            }
            /* detokenize the reference ids: exact bytes of 'decoded' */
            json_t *ids = json_object_get(v, "ids");
            agx_strbuf list;
            agx_strbuf_init(&list);
            agx_strbuf_puts(&list, "");
            for (size_t k = 0; k < json_array_size(ids); k++)
                agx_strbuf_printf(&list, k ? ",%lld" : "%lld", json_integer_value(json_array_get(ids, k)));
            if (list.len > 0) {
                char *cmd = agx_sprintf("'%s' detokenize -m '%s' --tokens %s > '%s/out.bin'", agx_test_cli_path(), gguf,
                                        list.data, dir);
                assert_int_equal(agx_test_run(cmd, NULL, NULL, NULL), 0);
                char *outp = agx_sprintf("%s/out.bin", dir);
                char *data;
                size_t dn;
                agx_error err;
                assert_int_equal(agx_file_read_all(outp, 0, &data, &dn, &err), AGX_OK);
                json_t *dj = json_object_get(v, "decoded");
                if (dn != json_string_length(dj) || memcmp(data, json_string_value(dj), dn) != 0) {
                    fprintf(stderr, "  %s %s: detokenize printed other bytes\n", FAMS[f], vid);
                    fails++;
                }
                free(data);
                free(outp);
                free(cmd);
            }
            agx_strbuf_free(&list);
            free(text);
        }
        free(gguf);
        free(jmodel);
        json_decref(vec);
    }
    /* usage errors exit 2 */
    char *cmd = agx_sprintf("'%s' tokenize --json", agx_test_cli_path());
    assert_int_equal(agx_test_run(cmd, NULL, NULL, NULL), 2);
    free(cmd);
    free(txt);
    agx_test_rmtree(dir);
    free(dir);
    assert_int_equal(fails, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_gguf),
        cmocka_unit_test(test_vectors_json),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
