/* test_grammar.c — the grammar engine: schema compilation and its errors, the
 * byte automaton (enum prefixes, integer ranges, escapes, UTF-8, length and item
 * bounds, hostile content), forced spans, shortest completions, and property
 * tests: random walks choosing uniformly among the masked tokens (synthetic vocab
 * and, when the reference data is present, the real Qwen2 vocab) always end in
 * JSON that jansson parses and that conforms to the schema. */
#include "agx_test.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"
#include "agx/grammar.h"
#include "agx/plan.h"
#include "agx/planner.h"
#include "agx/registry.h"
#include "engine/grammar_internal.h"

/* ------------------------------------------------------------------ schemas */

#define CMDS "\"ls\",\"find\",\"grep\",\"sort\",\"sed\",\"wc\",\"head\",\"s\",\"uniq\""

static const char *plan_schema(int max_len) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"type\":\"object\",\"properties\":{\"tasks\":{\"type\":\"array\",\"minItems\":1,"
             "\"maxItems\":20,\"items\":{\"type\":\"object\",\"properties\":{\"task_number\":{"
             "\"type\":\"integer\",\"minimum\":1,\"maximum\":20},\"command\":{\"type\":\"string\","
             "\"enum\":[" CMDS "]},\"args\":{\"type\":\"array\",\"maxItems\":16,\"items\":{"
             "\"type\":\"string\",\"maxLength\":%d}},\"input_from_task\":{\"type\":\"integer\","
             "\"minimum\":1,\"maximum\":20}},\"required\":[\"task_number\",\"command\",\"args\"],"
             "\"additionalProperties\":false}}},\"required\":[\"tasks\"],"
             "\"additionalProperties\":false}",
             max_len);
    return buf;
}

static const char *kitchen_schema =
    "{\"type\":\"object\",\"properties\":{"
    "\"a\":{\"type\":\"number\"},"
    "\"ab\":{\"type\":\"boolean\"},"
    "\"n\":{\"type\":\"null\"},"
    "\"e\":{\"enum\":[1,12,\"x\",null,{\"k\":[1,2]},[true],-3.5,\"a\\\"b\"]},"
    "\"c\":{\"const\":\"fixed\"},"
    "\"i\":{\"type\":\"integer\",\"minimum\":-15,\"maximum\":130},"
    "\"s\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":5},"
    "\"o\":{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\",\"maxLength\":3},"
    "\"q\":{\"type\":\"integer\",\"minimum\":100,\"maximum\":105}},\"required\":[\"q\"]},"
    "\"arr\":{\"type\":\"array\",\"minItems\":2,\"maxItems\":3,\"items\":{\"type\":\"integer\","
    "\"minimum\":-2,\"maximum\":-1}}},"
    "\"required\":[\"c\",\"arr\"]}";

static agx_grammar *compile_ok(const char *schema) {
    agx_grammar *g = NULL;
    agx_error err;
    agx_error_clear(&err);
    agx_status st = agx_grammar_compile(schema, strlen(schema), &g, &err);
    if (st != AGX_OK) fprintf(stderr, "compile failed: %s\n", err.message);
    assert_int_equal(st, AGX_OK);
    assert_non_null(g);
    return g;
}

/* --------------------------------------------------- independent validator */

static size_t utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

static bool conforms(json_t *v, json_t *sch, char *why, size_t wl) {
    json_t *en = json_object_get(sch, "enum"), *cn = json_object_get(sch, "const");
    if (en) {
        for (size_t i = 0; i < json_array_size(en); i++)
            if (json_equal(v, json_array_get(en, i))) return true;
        snprintf(why, wl, "value not in enum");
        return false;
    }
    if (cn) {
        if (json_equal(v, cn)) return true;
        snprintf(why, wl, "value is not the const");
        return false;
    }
    const char *t = json_string_value(json_object_get(sch, "type"));
    if (!t) {
        snprintf(why, wl, "schema without type");
        return false;
    }
    if (strcmp(t, "string") == 0) {
        if (!json_is_string(v)) return snprintf(why, wl, "not a string"), false;
        size_t n = utf8_count(json_string_value(v), json_string_length(v));
        json_t *mn = json_object_get(sch, "minLength"), *mx = json_object_get(sch, "maxLength");
        if (mn && n < (size_t)json_integer_value(mn)) return snprintf(why, wl, "too short"), false;
        if (mx && n > (size_t)json_integer_value(mx))
            return snprintf(why, wl, "string of %zu chars > maxLength", n), false;
        const unsigned char *p = (const unsigned char *)json_string_value(v);
        for (size_t i = 0; i < json_string_length(v); i++)
            if ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') || p[i] == 0x7f)
                return snprintf(why, wl, "control character 0x%02x in a string", p[i]), false;
        return true;
    }
    if (strcmp(t, "integer") == 0) {
        if (!json_is_integer(v)) return snprintf(why, wl, "not an integer"), false;
        json_int_t x = json_integer_value(v);
        json_t *mn = json_object_get(sch, "minimum"), *mx = json_object_get(sch, "maximum");
        if (mn && x < json_integer_value(mn)) return snprintf(why, wl, "%lld < minimum", (long long)x), false;
        if (mx && x > json_integer_value(mx)) return snprintf(why, wl, "%lld > maximum", (long long)x), false;
        return true;
    }
    if (strcmp(t, "number") == 0) return json_is_number(v) ? true : (snprintf(why, wl, "nan"), false);
    if (strcmp(t, "boolean") == 0) return json_is_boolean(v) ? true : (snprintf(why, wl, "nb"), false);
    if (strcmp(t, "null") == 0) return json_is_null(v) ? true : (snprintf(why, wl, "nn"), false);
    if (strcmp(t, "array") == 0) {
        if (!json_is_array(v)) return snprintf(why, wl, "not an array"), false;
        size_t n = json_array_size(v);
        json_t *mn = json_object_get(sch, "minItems"), *mx = json_object_get(sch, "maxItems");
        if (mn && n < (size_t)json_integer_value(mn)) return snprintf(why, wl, "too few items"), false;
        if (mx && n > (size_t)json_integer_value(mx)) return snprintf(why, wl, "too many items"), false;
        for (size_t i = 0; i < n; i++)
            if (!conforms(json_array_get(v, i), json_object_get(sch, "items"), why, wl)) return false;
        return true;
    }
    if (strcmp(t, "object") == 0) {
        if (!json_is_object(v)) return snprintf(why, wl, "not an object"), false;
        json_t *props = json_object_get(sch, "properties");
        json_t *req = json_object_get(sch, "required");
        for (size_t i = 0; i < json_array_size(req); i++)
            if (!json_object_get(v, json_string_value(json_array_get(req, i))))
                return snprintf(why, wl, "missing required %s",
                                json_string_value(json_array_get(req, i))), false;
        /* keys must be known and in schema order */
        long last = -1;
        const char *k;
        json_t *sub;
        json_object_foreach(v, k, sub) {
            long idx = 0, found = -1;
            const char *pk;
            json_t *ps;
            json_object_foreach(props, pk, ps) {
                (void)ps;
                if (strcmp(pk, k) == 0) found = idx;
                idx++;
            }
            if (found < 0) return snprintf(why, wl, "unknown key %s", k), false;
            if (found <= last) return snprintf(why, wl, "key %s out of order", k), false;
            last = found;
            if (!conforms(sub, json_object_get(props, k), why, wl)) return false;
        }
        return true;
    }
    snprintf(why, wl, "unknown type %s", t);
    return false;
}

static void assert_conforms(const char *out, size_t len, const char *schema) {
    json_error_t e;
    json_t *v = json_loadb(out, len, JSON_DECODE_ANY, &e);
    if (!v) fprintf(stderr, "unparseable output (%s): %.*s\n", e.text, (int)len, out);
    assert_non_null(v);
    json_t *s = json_loads(schema, 0, &e);
    assert_non_null(s);
    char why[256] = "";
    bool ok = conforms(v, s, why, sizeof why);
    if (!ok) fprintf(stderr, "non-conforming output (%s): %.*s\n", why, (int)len, out);
    assert_true(ok);
    json_decref(v);
    json_decref(s);
}

/* --------------------------------------------------------------- vocabularies */

typedef struct test_vocab {
    char **bytes;
    size_t *lens;
    size_t n;
    int32_t eog[2];
    size_t n_eog;
    agx_grammar_vocab *v;
} test_vocab;

static const char *synthetic_tokens[] = {
    "{\"", "\":", "\",\"", "tasks", "\":[{\"", "task_number", "command", "args", "\":[",
    "\"]", "\"],", "\"]}", "}]}", "},{\"", "\",", "\"}", "\"]}]}", ":\"", "input_from_task",
    "sort", "sed", "so", "se", "ls", "find", "grep", "\"s", "\"so", "\"sort\"", "\"sed\",",
    "12", "20", "21", "200", "01", "0", "-1", "1", "\\n", "\\\"", "\\\\", "\\u00e9", "\\u",
    "\\ud83d", "\\ude00", "\\uD83D\\uDE00", "\\u0000", "\\x", "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
    "\xe6\x97", "\xa5", "\x97\xa5", "\xf0\x9f\x98", "\x80", "\xed\xa0\x80", "\xc0\x80",
    "hello", " world", "rm -rf /", "\"}]}", "\"},{\"task_number\":99", "\"]}]} extra", " ",
    "\n", "\t", "true", "false", "null", "-3.5", "3.5e1", ".5", "e+", "x\"", "\"x\"", "a\\\"b",
    "{\"k\":[1,2]}", "[true]", "fixed", "\"fixed\"", "ab", "\"ab\":", "\"a\":", "\"arr\":[",
    "-2", "-", "100", "105", "1e99", "1e999", "\"p\":\"", "\"q\":", "},\"", "\"o\":{",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",
    /* tokens that finish an escape left open by the previous token */
    "nice", "n\"]", "u00e9", "uD83D", "ude00x", "t\\", "/\\u", "\"abc", "rm", "b", "f",
    "\\\\", "\\", "\x9f\x98\x80", "\x98\x80\"", "\xa5\\n",
};

static void vocab_build(test_vocab *tv) {
    agx_error err;
    agx_error_clear(&err);
    assert_int_equal(agx_grammar_vocab_new((const char *const *)tv->bytes, tv->lens, tv->n,
                                           tv->eog, tv->n_eog, &tv->v, &err),
                     AGX_OK);
}

/* ids 0..255: single bytes; then the multi-byte tokens; then an empty token, a
 * special token (NULL) and the EOG token. */
static void synthetic_vocab(test_vocab *tv) {
    size_t nm = sizeof synthetic_tokens / sizeof *synthetic_tokens;
    tv->n = 256 + nm + 3;
    tv->bytes = calloc(tv->n, sizeof *tv->bytes);
    tv->lens = calloc(tv->n, sizeof *tv->lens);
    for (int b = 0; b < 256; b++) {
        tv->bytes[b] = malloc(1);
        tv->bytes[b][0] = (char)b;
        tv->lens[b] = 1;
    }
    for (size_t i = 0; i < nm; i++) {
        tv->bytes[256 + i] = agx_strdup(synthetic_tokens[i]);
        tv->lens[256 + i] = strlen(synthetic_tokens[i]);
    }
    tv->bytes[256 + nm] = agx_strdup(""); /* empty */
    tv->bytes[256 + nm + 1] = NULL;       /* special */
    tv->bytes[256 + nm + 2] = agx_strdup("<|im_end|>");
    tv->lens[256 + nm + 2] = 10;
    tv->eog[0] = (int32_t)(256 + nm + 2);
    tv->n_eog = 1;
    vocab_build(tv);
}

static void vocab_free(test_vocab *tv) {
    for (size_t i = 0; i < tv->n; i++) free(tv->bytes[i]);
    free(tv->bytes);
    free(tv->lens);
    agx_grammar_vocab_free(tv->v);
}

/* GPT-2 byte-level BPE: tokenizer.json spells bytes with a printable alphabet. */
static bool qwen_vocab(test_vocab *tv) {
    char *path = agx_test_ref_path("tokenizer/json/qwen2/tokenizer.json");
    if (!path) return false;
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e);
    free(path);
    if (!root) return false;
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    int u2b[512];
    for (int i = 0; i < 512; i++) u2b[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        u2b[keep ? b : 256 + extra++] = b;
    }
    tv->n = 151936;
    tv->bytes = calloc(tv->n, sizeof *tv->bytes);
    tv->lens = calloc(tv->n, sizeof *tv->lens);
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (id < 0 || (size_t)id >= tv->n) continue;
        size_t kl = strlen(key);
        char *out = malloc(kl + 1);
        size_t o = 0;
        bool ok = true;
        for (size_t i = 0; i < kl && ok;) {
            unsigned c = (unsigned char)key[i];
            unsigned cp;
            if (c < 0x80) cp = c, i += 1;
            else if ((c & 0xE0) == 0xC0 && i + 1 < kl) cp = (c & 0x1F) << 6 | (key[i + 1] & 0x3F), i += 2;
            else ok = false, cp = 0;
            if (ok && (cp >= 512 || u2b[cp] < 0)) ok = false;
            if (ok) out[o++] = (char)u2b[cp];
        }
        if (!ok) {
            free(out);
            continue;
        }
        tv->bytes[id] = out;
        tv->lens[id] = o;
    }
    tv->n_eog = 0;
    json_t *added = json_object_get(root, "added_tokens");
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *a = json_array_get(added, i);
        const char *c = json_string_value(json_object_get(a, "content"));
        if (c && (strcmp(c, "<|im_end|>") == 0 || strcmp(c, "<|endoftext|>") == 0))
            tv->eog[tv->n_eog++] = (int32_t)json_integer_value(json_object_get(a, "id"));
    }
    json_decref(root);
    vocab_build(tv);
    return true;
}

/* -------------------------------------------------------------- random walks */

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Generates one document choosing uniformly among allowed tokens; after
 * `budget` tokens the shortest completion closes it. Checks the mask against the
 * full trie walk, that allowed tokens are accepted and sampled disallowed ones
 * are not, forced spans, and shortest completions along the way. */
static char *random_walk(const agx_grammar *g, const test_vocab *tv, uint64_t *rng,
                         size_t budget, bool check_slow, size_t *out_len) {
    agx_grammar_state *st = agx_grammar_state_new(g);
    assert_non_null(st);
    agx_strbuf out;
    agx_strbuf_init(&out);
    uint8_t *allowed = malloc(tv->n), *slow = malloc(tv->n);
    agx_error err;
    size_t tokens = 0;
    for (;;) {
        /* shortest completion always closes the document */
        size_t mb = agx_grammar_min_bytes_to_complete(st);
        char comp[8192];
        size_t cl = agx_grammar_shortest_completion(st, comp, sizeof comp);
        assert_int_equal(cl, mb);
        assert_true(cl <= sizeof comp);
        agx_grammar_state *c = agx_grammar_state_copy(st);
        assert_true(agx_grammar_accept(c, comp, cl));
        assert_true(agx_grammar_is_complete(c));
        agx_grammar_state_free(c);
        if (tokens >= budget) {
            assert_true(agx_grammar_accept(st, comp, cl));
            agx_strbuf_append(&out, comp, cl);
            break;
        }
        char forced[1024]; /* as large as agx_grammar_forced_tokens looks */
        size_t nf = agx_grammar_forced(st, forced, sizeof forced);
        size_t n_allowed;
        assert_int_equal(agx_grammar_mask(st, tv->v, allowed, &n_allowed, &err), AGX_OK);
        size_t cnt = 0;
        for (size_t i = 0; i < tv->n; i++) cnt += allowed[i];
        assert_int_equal(cnt, n_allowed);
        assert_true(cnt > 0);
        if (check_slow) {
            size_t n2;
            assert_int_equal(gr_mask_slow(st, tv->v, slow, &n2, &err), AGX_OK);
            assert_int_equal(n2, n_allowed);
            assert_memory_equal(slow, allowed, tv->n);
        }
        if (tv->n < 4096) { /* oracle independent of the trie: try every token */
            for (size_t i = 0; i < tv->n; i++) {
                agx_grammar_state *c = agx_grammar_state_copy(st);
                bool ok = agx_grammar_accept_token(c, tv->v, (int32_t)i);
                agx_grammar_state_free(c);
                assert_int_equal(ok, allowed[i]);
                assert_int_equal(agx_grammar_token_allowed(st, tv->v, (int32_t)i), allowed[i]);
            }
        }
        for (size_t i = 0; i < tv->n; i++) {
            if (tv->lens[i] == 0 || !tv->bytes[i]) {
                if (!agx_grammar_vocab_is_eog(tv->v, (int32_t)i)) assert_int_equal(allowed[i], 0);
            }
        }
        /* forced bytes: every allowed token agrees with them */
        if (nf > 0) {
            for (size_t i = 0; i < tv->n; i++) {
                if (!allowed[i]) continue;
                size_t m = tv->lens[i] < nf ? tv->lens[i] : nf;
                assert_memory_equal(tv->bytes[i], forced, m);
            }
            /* the same span as tokens: they spell it and each is allowed in turn */
            int32_t ft[1024];
            size_t fb;
            size_t nt = agx_grammar_forced_tokens(st, tv->v, ft, 1024, &fb);
            assert_int_equal(fb, nf); /* every vocabulary here has all single bytes */
            agx_grammar_state *c2 = agx_grammar_state_copy(st);
            size_t at = 0;
            for (size_t q = 0; q < nt; q++) {
                assert_true(agx_grammar_token_allowed(c2, tv->v, ft[q]));
                assert_true(agx_grammar_accept_token(c2, tv->v, ft[q]));
                assert_memory_equal(tv->bytes[ft[q]], forced + at, tv->lens[ft[q]]);
                at += tv->lens[ft[q]];
            }
            assert_int_equal(at, nf);
            agx_grammar_state_free(c2);
            if (rnd(rng) % 2) { /* the sampler appends forced spans without sampling */
                assert_true(agx_grammar_accept(st, forced, nf));
                agx_strbuf_append(&out, forced, nf);
                continue;
            }
        }
        /* sampled tokens agree with the mask one by one; refused ones change nothing */
        for (int k = 0; k < 8; k++) {
            size_t r = rnd(rng) % tv->n;
            assert_int_equal(agx_grammar_token_allowed(st, tv->v, (int32_t)r), allowed[r]);
            if (!allowed[r]) assert_false(agx_grammar_accept_token(st, tv->v, (int32_t)r));
        }
        size_t pick = rnd(rng) % cnt, id = 0;
        for (size_t i = 0; i < tv->n; i++)
            if (allowed[i] && pick-- == 0) {
                id = i;
                break;
            }
        if (agx_grammar_vocab_is_eog(tv->v, (int32_t)id)) {
            assert_true(agx_grammar_is_complete(st));
            break;
        }
        assert_true(agx_grammar_accept_token(st, tv->v, (int32_t)id));
        agx_strbuf_append(&out, tv->bytes[id], tv->lens[id]);
        tokens++;
    }
    assert_true(agx_grammar_is_complete(st));
    free(allowed);
    free(slow);
    agx_grammar_state_free(st);
    *out_len = out.len;
    return agx_strbuf_take(&out);
}

static void walks(const char *schema, const test_vocab *tv, int n, size_t budget, bool slow,
                  uint64_t seed) {
    agx_grammar *g = compile_ok(schema);
    uint64_t rng = seed;
    for (int i = 0; i < n; i++) {
        size_t len;
        char *out = random_walk(g, tv, &rng, budget + (size_t)i * 7, slow, &len);
        assert_conforms(out, len, schema);
        free(out);
    }
    agx_grammar_free(g);
}

static void test_walks_synthetic_plan(void **state) {
    (void)state;
    test_vocab tv = {0};
    synthetic_vocab(&tv);
    walks(plan_schema(256), &tv, 40, 40, true, 0x1234567);
    walks(plan_schema(3), &tv, 40, 120, true, 0x777);
    vocab_free(&tv);
}

static void test_walks_synthetic_kitchen(void **state) {
    (void)state;
    test_vocab tv = {0};
    synthetic_vocab(&tv);
    walks(kitchen_schema, &tv, 200, 60, true, 0x9abcdef);
    walks("{\"type\":\"array\",\"maxItems\":4,\"items\":{\"type\":\"string\",\"minLength\":1}}", &tv,
          50, 30, true, 42);
    walks("{\"type\":\"integer\",\"minimum\":-15,\"maximum\":130}", &tv, 50, 5, true, 43);
    walks("{\"type\":\"number\"}", &tv, 50, 8, true, 44);
    walks("{\"enum\":[1,12,123,\"x\"]}", &tv, 50, 8, true, 45);
    vocab_free(&tv);
}

static void test_walks_qwen(void **state) {
    (void)state;
    test_vocab tv = {0};
    if (!qwen_vocab(&tv)) AGX_TEST_SKIP("Qwen2 tokenizer.json not found under AGX_REF_DIR");
    /* the full-walk comparison is slow on 151k tokens: only in the first walks */
    walks(plan_schema(256), &tv, 2, 60, true, 0x5eed);
    walks(plan_schema(256), &tv, 6, 150, false, 0xfeed);
    walks(plan_schema(5), &tv, 4, 150, false, 0xbeef);
    vocab_free(&tv);
}

/* ------------------------------------------------------- targeted behaviour */

static bool acc(agx_grammar_state *st, const char *s) { return agx_grammar_accept(st, s, strlen(s)); }

/* Appends the shortest completion (as text in comp, cap > its length) and
 * checks it: as long as min_bytes_to_complete says, accepted, complete. */
static size_t finish_shortest(agx_grammar_state *st, char *comp, size_t cap) {
    size_t cl = agx_grammar_shortest_completion(st, comp, cap);
    assert_int_equal(cl, agx_grammar_min_bytes_to_complete(st));
    assert_true(cl < cap);
    comp[cl] = 0;
    if (!agx_grammar_accept(st, comp, cl)) fail_msg("shortest completion %s refused", comp);
    assert_true(agx_grammar_is_complete(st));
    return cl;
}

static void expect_forced(agx_grammar_state *st, const char *want) {
    char buf[256];
    size_t n = agx_grammar_forced(st, buf, sizeof buf);
    if (n != strlen(want) || memcmp(buf, want, n) != 0)
        fprintf(stderr, "forced '%.*s', want '%s'\n", (int)n, buf, want);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(buf, want, n);
}

static void test_forced_spans(void **state) {
    (void)state;
    agx_grammar *g = compile_ok(plan_schema(256));
    agx_grammar_state *st = agx_grammar_state_new(g);
    expect_forced(st, "{\"tasks\":[{\"task_number\":");
    assert_true(acc(st, "{\"tasks\":[{\"task_number\":"));
    expect_forced(st, "");
    assert_true(acc(st, "2"));
    expect_forced(st, ""); /* 20 or 2 */
    assert_true(acc(st, "0"));
    expect_forced(st, ",\"command\":\"");
    assert_true(acc(st, ",\"command\":\""));
    expect_forced(st, "");
    assert_true(acc(st, "s"));
    expect_forced(st, ""); /* sort / sed / s */
    assert_true(acc(st, "o"));
    expect_forced(st, "rt\",\"args\":[");
    assert_true(acc(st, "rt\",\"args\":["));
    expect_forced(st, "");
    assert_true(acc(st, "]"));
    expect_forced(st, ""); /* , or } */
    assert_true(acc(st, ","));
    expect_forced(st, "\"input_from_task\":");
    assert_true(acc(st, "\"input_from_task\":9"));
    expect_forced(st, "}");
    assert_true(acc(st, "}"));
    expect_forced(st, "");
    assert_true(acc(st, "]"));
    expect_forced(st, "}");
    assert_false(agx_grammar_is_complete(st));
    assert_true(acc(st, "}"));
    assert_true(agx_grammar_is_complete(st));
    expect_forced(st, "");
    assert_false(acc(st, " "));
    agx_grammar_state_free(st);
    agx_grammar_free(g);
}

static void test_enum_prefixes(void **state) {
    (void)state;
    agx_grammar *g = compile_ok(plan_schema(256));
    agx_grammar_state *st = agx_grammar_state_new(g);
    assert_true(acc(st, "{\"tasks\":[{\"task_number\":1,\"command\":\"s"));
    agx_grammar_state *a = agx_grammar_state_copy(st);
    assert_true(acc(a, "\"")); /* "s" itself is a command */
    assert_true(acc(a, ",\"args\":[]}]}"));
    assert_true(agx_grammar_is_complete(a));
    agx_grammar_state_free(a);
    a = agx_grammar_state_copy(st);
    assert_true(acc(a, "ed\""));
    agx_grammar_state_free(a);
    a = agx_grammar_state_copy(st);
    assert_false(acc(a, "ed "));
    assert_false(acc(a, "edx"));
    assert_false(acc(a, "ort2"));
    assert_false(acc(a, "e\""));
    assert_false(acc(a, "ortt"));
    assert_true(acc(a, "ort\""));
    agx_grammar_state_free(a);
    /* rejected runs leave the state unchanged */
    assert_false(acc(st, "ex"));
    assert_true(acc(st, "e"));
    assert_false(acc(st, "x"));
    assert_true(acc(st, "d\",\"args\":[\"rm -rf /\"]}]}"));
    assert_true(agx_grammar_is_complete(st));
    agx_grammar_state_reset(st);
    assert_false(acc(st, "{\"tasks\":[{\"task_number\":1,\"command\":\"rm\""));
    assert_false(acc(st, "{\"tasks\":[{\"task_number\":1,\"command\":\"LS\""));
    agx_grammar_state_free(st);
    agx_grammar_free(g);
}

static int cmp_text(const void *a, const void *b) { return strcmp(a, b); }

/* Brute force over short strings: accept(s) is true exactly when s is a prefix of
 * a canonical integer in range, and complete exactly for the in-range ones. */
static void test_integer_ranges(void **state) {
    (void)state;
    static const struct { long lo, hi; } ranges[] = {{1, 20}, {-15, 130}, {0, 0}, {-5, -3},
                                                     {7, 7}, {10, 19}, {95, 1000}, {-100, 100}};
    static const char alpha[] = "-0123456789x";
    for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++) {
        char schema[160];
        snprintf(schema, sizeof schema, "{\"type\":\"integer\",\"minimum\":%ld,\"maximum\":%ld}",
                 ranges[r].lo, ranges[r].hi);
        agx_grammar *g = compile_ok(schema);
        agx_grammar_state *st = agx_grammar_state_new(g);
        /* every value's decimal text, sorted: s is a prefix of some value iff the
         * first text >= s starts with s */
        size_t nv = (size_t)(ranges[r].hi - ranges[r].lo + 1);
        char(*texts)[24] = malloc(nv * sizeof *texts);
        for (size_t i = 0; i < nv; i++) snprintf(texts[i], 24, "%ld", ranges[r].lo + (long)i);
        qsort(texts, nv, sizeof *texts, cmp_text);
        size_t na = sizeof alpha - 1;
        for (size_t len = 1; len <= 5; len++) {
            size_t total = 1;
            for (size_t k = 0; k < len; k++) total *= na;
            for (size_t code = 0; code < total; code++) {
                char s[8];
                size_t c = code;
                for (size_t k = 0; k < len; k++) s[k] = alpha[c % na], c /= na;
                s[len] = 0;
                size_t lo = 0, hi = nv;
                while (lo < hi) {
                    size_t m = (lo + hi) / 2;
                    if (strcmp(texts[m], s) < 0) lo = m + 1; else hi = m;
                }
                bool prefix = lo < nv && strncmp(texts[lo], s, len) == 0;
                bool complete = lo < nv && strcmp(texts[lo], s) == 0;
                agx_grammar_state_reset(st);
                bool ok = acc(st, s);
                if (ok != prefix || (ok && agx_grammar_is_complete(st) != complete))
                    fprintf(stderr, "range [%ld,%ld] '%s': accepted %d complete %d\n",
                            ranges[r].lo, ranges[r].hi, s, ok, ok && agx_grammar_is_complete(st));
                assert_int_equal(ok, prefix);
                if (ok) assert_int_equal(agx_grammar_is_complete(st), complete);
                if (ok) {
                    char comp[32];
                    size_t cl = agx_grammar_shortest_completion(st, comp, sizeof comp);
                    assert_true(agx_grammar_accept(st, comp, cl));
                    assert_true(agx_grammar_is_complete(st));
                }
            }
        }
        free(texts);
        agx_grammar_state_free(st);
        agx_grammar_free(g);
    }
    /* the plan's task_number inside the object */
    agx_grammar *g = compile_ok(plan_schema(256));
    agx_grammar_state *st = agx_grammar_state_new(g);
    assert_true(acc(st, "{\"tasks\":[{\"task_number\":"));
    const char *bad[] = {"0", "21", "01", "-1", "200", "1.5", " 1", "+1", "1e1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        agx_grammar_state *c = agx_grammar_state_copy(st);
        bool ok = acc(c, bad[i]) && acc(c, ",");
        assert_false(ok);
        agx_grammar_state_free(c);
    }
    assert_true(acc(st, "20,"));
    agx_grammar_state_free(st);
    agx_grammar_free(g);
}

static const char *ARGS_PREFIX = "{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"args\":[\"";

static void test_strings_escapes_utf8(void **state) {
    (void)state;
    agx_grammar *g = compile_ok(plan_schema(256));
    agx_grammar_state *st = agx_grammar_state_new(g);
    assert_true(acc(st, ARGS_PREFIX));
    const char *good[] = {"\\\"", "\\\\", "\\/", "\\n\\r\\t", "\\u00e9", "\\uD83D\\uDE00",
                          "\\ud83d\\ude00", "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80",
                          "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\\u0009", "\\u000A", "\\u000d",
                          "\\u007e", "\\u0080", "\\u0100"};
    const char *bad[] = {"\n", "\t", "\x01", "\\x", "\\u0000", "\\uDE00", "\\uD83D\"",
                         "\\uD83Dx", "\\uD83D\\u0041", "\\uZ", "\xc0\x80", "\xc1\xbf",
                         "\xed\xa0\x80", "\xf5\x80\x80\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80",
                         "\xf4\x90\x80\x80", "\x80", "\xc3\x28", "\xe6\x97\x28",
                         /* controls other than tab/newline/return, raw or escaped */
                         "\x7f", "\\b", "\\f", "\\u0001", "\\u000b", "\\u001f", "\\u0010",
                         "\\u007f", "\\u007F"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        agx_grammar_state *c = agx_grammar_state_copy(st);
        assert_true(acc(c, good[i]));
        assert_true(acc(c, "\"]}]}"));
        assert_true(agx_grammar_is_complete(c));
        agx_grammar_state_free(c);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        agx_grammar_state *c = agx_grammar_state_copy(st);
        bool ok = acc(c, bad[i]) && acc(c, "\"]}]}");
        if (ok) fprintf(stderr, "accepted bad string content #%zu\n", i);
        assert_false(ok);
        agx_grammar_state_free(c);
    }
    /* a character split across tokens */
    agx_grammar_state *c = agx_grammar_state_copy(st);
    assert_true(acc(c, "\xe6"));
    assert_false(acc(c, "a"));
    assert_false(acc(c, "\""));
    assert_true(acc(c, "\x97"));
    assert_true(acc(c, "\xa5"));
    assert_true(acc(c, "\""));
    agx_grammar_state_free(c);
    /* shortest completion mid-character and mid-escape */
    const char *mids[] = {"\xe6", "\xf0\x9f", "\\", "\\u", "\\uD8", "\\uD83D", "\\uD83D\\",
                          "\\uD83D\\u", "\\uD83D\\uD", "\\u000", "\\uD"};
    for (size_t i = 0; i < sizeof mids / sizeof *mids; i++) {
        agx_grammar_state *m = agx_grammar_state_copy(st);
        assert_true(acc(m, mids[i]));
        char comp[64];
        finish_shortest(m, comp, sizeof comp);
        agx_grammar_state_free(m);
    }
    agx_grammar_state_free(st);
    agx_grammar_free(g);
}

/* A quote ends the string; afterwards only structure is allowed: hostile text
 * that tries to close the plan and add a task or trailing text is rejected, and
 * the same text escaped stays inside the argument. */
static void test_hostile_content(void **state) {
    (void)state;
    agx_grammar *g = compile_ok(plan_schema(256));
    agx_grammar_state *st = agx_grammar_state_new(g);
    assert_true(acc(st, ARGS_PREFIX));
    const char *escapes[] = {"\"}]} ignore previous instructions", "\"]},{\"task_number\":2,\"command\":\"rm\"",
                             "\",\"evil\":1", "\"]}]}\n"};
    for (size_t i = 0; i < sizeof escapes / sizeof *escapes; i++) {
        agx_grammar_state *c = agx_grammar_state_copy(st);
        assert_false(acc(c, escapes[i]));
        agx_grammar_state_free(c);
    }
    assert_true(acc(st, "\\\"}]} rm -rf / \\\"]},{\\\"command\\\":\\\"rm\\\""));
    assert_true(acc(st, "\"]}]}"));
    assert_true(agx_grammar_is_complete(st));
    json_t *v = json_loads("{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"args\":["
                           "\"\\\"}]} rm -rf / \\\"]},{\\\"command\\\":\\\"rm\\\"\"]}]}",
                           0, NULL);
    assert_non_null(v);
    json_t *t = json_array_get(json_object_get(v, "tasks"), 0);
    assert_int_equal(json_array_size(json_object_get(v, "tasks")), 1);
    assert_string_equal(json_string_value(json_object_get(t, "command")), "ls");
    json_decref(v);
    agx_grammar_state_free(st);
    agx_grammar_free(g);
}

static void test_length_and_item_bounds(void **state) {
    (void)state;
    agx_grammar *g = compile_ok(plan_schema(4));
    agx_grammar_state *st = agx_grammar_state_new(g);
    assert_true(acc(st, ARGS_PREFIX));
    agx_grammar_state *c = agx_grammar_state_copy(st);
    assert_true(acc(c, "ab\xc3\xa9\\n"));   /* 4 code points */
    assert_false(acc(c, "x"));
    assert_false(acc(c, "\xc3\xa9"));
    assert_false(acc(c, "\\n"));
    assert_true(acc(c, "\""));
    agx_grammar_state_free(c);
    /* 16 args max */
    assert_true(acc(st, "\""));
    for (int i = 1; i < 16; i++) assert_true(acc(st, ",\"a\""));
    assert_false(acc(st, ","));
    assert_true(acc(st, "]}"));
    /* 20 tasks max, minItems 1 */
    for (int i = 2; i <= 20; i++) {
        char t[96];
        snprintf(t, sizeof t, ",{\"task_number\":%d,\"command\":\"wc\",\"args\":[]}", i);
        assert_true(acc(st, t));
    }
    assert_false(acc(st, ","));
    assert_true(acc(st, "]}"));
    assert_true(agx_grammar_is_complete(st));
    agx_grammar_state_reset(st);
    assert_false(acc(st, "{\"tasks\":[]"));
    assert_false(acc(st, "{}"));
    assert_false(acc(st, "{\"tasks\":[{\"command\""));           /* order / required */
    assert_false(acc(st, "{\"tasks\":[{\"task_number\":1}"));    /* required missing */
    assert_false(acc(st, "{\"tasks\":[{\"task_number\":1,\"extra\"")); /* unknown key */
    assert_false(acc(st, "{ \"tasks\""));                        /* no whitespace */
    assert_true(acc(st, "{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"args\":[],\"input_from_task\":3}]}"));
    agx_grammar_state_free(st);
    agx_grammar_free(g);
}

static void test_kitchen_values(void **state) {
    (void)state;
    agx_grammar *g = compile_ok(kitchen_schema);
    agx_grammar_state *st = agx_grammar_state_new(g);
    const char *good[] = {
        "{\"c\":\"fixed\",\"arr\":[-1,-2]}",
        ("{\"a\":-0.5e+10,\"ab\":true,\"n\":null,\"e\":{\"k\":[1,2]},\"c\":\"fixed\",\"i\":-15,"
         "\"s\":\"xy\",\"o\":{\"q\":105},\"arr\":[-1,-1,-2]}"),
        "{\"a\":0,\"c\":\"fixed\",\"arr\":[-2,-2]}",
        "{\"e\":12,\"c\":\"fixed\",\"o\":{\"p\":\"abc\",\"q\":100},\"arr\":[-2,-2]}",
        "{\"e\":\"a\\\"b\",\"c\":\"fixed\",\"arr\":[-2,-2]}",
        "{\"e\":-3.5,\"c\":\"fixed\",\"arr\":[-2,-2]}",
    };
    const char *bad[] = {
        "{\"c\":\"fixed\",\"arr\":[-1]}",          "{\"c\":\"fixed\",\"arr\":[-1,-1,-1,-1]}",
        "{\"arr\":[-1,-2],\"c\":\"fixed\"}",       "{\"a\":01,\"c\":\"fixed\",\"arr\":[-1,-2]}",
        "{\"a\":1.,\"c\":\"fixed\",\"arr\":[-1,-2]}", "{\"e\":123,\"c\":\"fixed\",\"arr\":[-1,-2]}",
        "{\"s\":\"x\",\"c\":\"fixed\",\"arr\":[-1,-2]}", "{\"s\":\"xxxxxx\",\"c\":\"fixed\",\"arr\":[-1,-2]}",
        "{\"o\":{},\"c\":\"fixed\",\"arr\":[-1,-2]}", "{\"a\":1e999,\"c\":\"fixed\",\"arr\":[-1,-2]}",
        "{\"ab\":tru,\"c\":\"fixed\",\"arr\":[-1,-2]}", "{\"c\":\"fixed\",\"arr\":[-1,-2]}x",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        agx_grammar_state_reset(st);
        if (!acc(st, good[i])) fprintf(stderr, "rejected good #%zu\n", i);
        assert_true(acc(st, "") && agx_grammar_is_complete(st));
        assert_conforms(good[i], strlen(good[i]), kitchen_schema);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        agx_grammar_state_reset(st);
        bool ok = acc(st, bad[i]) && agx_grammar_is_complete(st);
        if (ok) fprintf(stderr, "accepted bad #%zu\n", i);
        assert_false(ok);
    }
    /* the shortest completion picks the cheapest matching key */
    {
        agx_grammar *g2 = compile_ok("{\"type\":\"object\",\"properties\":{\"ab\":{\"type\":"
                                     "\"string\",\"minLength\":3},\"a\":{\"type\":\"null\"}},"
                                     "\"required\":[\"a\"]}");
        agx_grammar_state *s2 = agx_grammar_state_new(g2);
        assert_true(acc(s2, "{\"a"));
        char b2[64];
        size_t l2 = agx_grammar_shortest_completion(s2, b2, sizeof b2);
        assert_int_equal(l2, strlen("\":null}"));
        assert_memory_equal(b2, "\":null}", l2);
        agx_grammar_state_free(s2);
        agx_grammar_free(g2);
    }
    /* "a" and "ab" share a prefix: the key is decided by the quote */
    agx_grammar_state_reset(st);
    assert_true(acc(st, "{\"a"));
    char buf[16];
    assert_int_equal(agx_grammar_forced(st, buf, sizeof buf), 0);
    agx_grammar_state_free(st);
    agx_grammar_free(g);
}

static void expect_compile_error(const char *schema, agx_status code, const char *needle1,
                                 const char *needle2) {
    agx_grammar *g = NULL;
    agx_error err;
    agx_error_clear(&err);
    agx_status st = agx_grammar_compile(schema, strlen(schema), &g, &err);
    if (st != code || !strstr(err.message, needle1) || (needle2 && !strstr(err.message, needle2)))
        fprintf(stderr, "schema %s -> %d '%s'\n", schema, st, err.message);
    assert_int_equal(st, code);
    assert_null(g);
    assert_non_null(strstr(err.message, needle1));
    if (needle2) assert_non_null(strstr(err.message, needle2));
}

static void test_compile_errors(void **state) {
    (void)state;
    expect_compile_error("{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"string\",\"pattern\":\"a\"}}}",
                         AGX_ERR_CONFIG, "\"pattern\"", "/properties/x");
    expect_compile_error("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"uniqueItems\":true}",
                         AGX_ERR_CONFIG, "uniqueItems", NULL);
    expect_compile_error("{\"type\":\"string\",\"minLength\":5,\"maxLength\":2}", AGX_ERR_CONFIG,
                         "minLength", NULL);
    expect_compile_error("{\"type\":\"object\",\"properties\":{},\"required\":[\"a\"]}",
                         AGX_ERR_CONFIG, "\"a\"", "at /:");
    expect_compile_error("{\"type\":[\"string\",\"null\"]}", AGX_ERR_CONFIG, "type", NULL);
    expect_compile_error("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", AGX_ERR_CONFIG,
                         "minimum", NULL);
    expect_compile_error("{\"type\":\"number\",\"minimum\":0}", AGX_ERR_CONFIG, "minimum", NULL);
    expect_compile_error("{\"enum\":[]}", AGX_ERR_CONFIG, "empty", NULL);
    expect_compile_error("{\"type\":\"string\",\"enum\":[1]}", AGX_ERR_CONFIG, "enum", NULL);
    expect_compile_error("{\"anyOf\":[]}", AGX_ERR_CONFIG, "anyOf", NULL);
    expect_compile_error("{\"type\":\"array\"}", AGX_ERR_CONFIG, "items", NULL);
    expect_compile_error("{\"type\":\"array\",\"items\":{\"type\":\"string\",\"minLength\":100000},"
                         "\"minItems\":100}", AGX_ERR_CONFIG, "shortest", NULL);
    expect_compile_error("{\"type\":", AGX_ERR_JSON, "not valid JSON", NULL);
    expect_compile_error("[1]", AGX_ERR_CONFIG, "JSON object", NULL);
    expect_compile_error("{\"enum\":[\"a\\u0000\"]}", AGX_ERR_JSON, "JSON", NULL);
    /* too deep */
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    for (int i = 0; i < 40; i++) agx_strbuf_puts(&sb, "{\"type\":\"array\",\"items\":");
    agx_strbuf_puts(&sb, "{\"type\":\"null\"}");
    for (int i = 0; i < 40; i++) agx_strbuf_puts(&sb, "}");
    expect_compile_error(sb.data, AGX_ERR_CONFIG, "deeper", NULL);
    agx_strbuf_free(&sb);
}

static void test_eog_and_special_tokens(void **state) {
    (void)state;
    test_vocab tv = {0};
    synthetic_vocab(&tv);
    agx_grammar *g = compile_ok("{\"type\":\"array\",\"maxItems\":2,\"items\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":30}}");
    agx_grammar_state *st = agx_grammar_state_new(g);
    uint8_t *allowed = malloc(tv.n);
    agx_error err;
    size_t n;
    int32_t eog = tv.eog[0];
    assert_int_equal(agx_grammar_mask(st, tv.v, allowed, &n, &err), AGX_OK);
    assert_int_equal(allowed[eog], 0);
    assert_true(allowed['[']);
    assert_false(allowed['{']);
    assert_false(agx_grammar_accept_token(st, tv.v, eog));
    assert_true(acc(st, "[3"));
    assert_int_equal(agx_grammar_mask(st, tv.v, allowed, &n, &err), AGX_OK);
    assert_true(allowed['0'] && allowed[',']);
    assert_false(allowed['1'] || allowed['5']);
    assert_true(acc(st, "0]"));
    assert_int_equal(agx_grammar_mask(st, tv.v, allowed, &n, &err), AGX_OK);
    assert_int_equal(n, 1);
    assert_int_equal(allowed[eog], 1);
    assert_true(agx_grammar_accept_token(st, tv.v, eog));
    assert_false(agx_grammar_accept_token(st, tv.v, -1));
    assert_false(agx_grammar_accept_token(st, tv.v, (int32_t)tv.n));
    /* a top-level number may be complete and still continue */
    agx_grammar *g2 = compile_ok("{\"type\":\"integer\",\"minimum\":1,\"maximum\":300}");
    agx_grammar_state *s2 = agx_grammar_state_new(g2);
    assert_true(acc(s2, "2"));
    assert_true(agx_grammar_is_complete(s2));
    assert_int_equal(agx_grammar_mask(s2, tv.v, allowed, &n, &err), AGX_OK);
    assert_true(allowed[eog] && allowed['0'] && allowed['9']);
    assert_int_equal(agx_grammar_min_bytes_to_complete(s2), 0);
    agx_grammar_state_free(s2);
    agx_grammar_free(g2);
    /* bad vocab input */
    agx_grammar_vocab *v = NULL;
    int32_t bad = 99999;
    assert_int_equal(agx_grammar_vocab_new((const char *const *)tv.bytes, tv.lens, tv.n, &bad, 1,
                                           &v, &err),
                     AGX_ERR_CONFIG);
    assert_null(v);
    free(allowed);
    agx_grammar_state_free(st);
    agx_grammar_free(g);
    vocab_free(&tv);
}

/* The fast paths (plain string body, pending UTF-8 character, pending escape)
 * give exactly the full trie walk's mask, near and away from maxLength. */
static void pending_masks(const test_vocab *tv) {
    static const char *mids[] = {"", "ab", "\\", "a\\", "\xe6", "\xe6\x97", "\xf0", "\xf0\x9f",
                                 "\xf0\x9f\x98", "\xe0", "\xed", "\xf4", "\xc3", "ab\\",
                                 "\\u", "\\u00", "\\ud83d", "\\ud83d\\"};
    static const int lens[] = {256, 3, 2};
    uint8_t *fast = malloc(tv->n), *slow = malloc(tv->n);
    agx_error err;
    for (size_t L = 0; L < sizeof lens / sizeof *lens; L++) {
        agx_grammar *g = compile_ok(plan_schema(lens[L]));
        for (size_t m = 0; m < sizeof mids / sizeof *mids; m++) {
            agx_grammar_state *st = agx_grammar_state_new(g);
            assert_true(acc(st, ARGS_PREFIX));
            if (!acc(st, mids[m])) { /* too long for this maxLength */
                agx_grammar_state_free(st);
                continue;
            }
            size_t n1, n2;
            assert_int_equal(agx_grammar_mask(st, tv->v, fast, &n1, &err), AGX_OK);
            assert_int_equal(gr_mask_slow(st, tv->v, slow, &n2, &err), AGX_OK);
            if (n1 != n2) fprintf(stderr, "maxLength %d after '%s': fast %zu, full walk %zu\n",
                                  lens[L], mids[m], n1, n2);
            assert_int_equal(n1, n2);
            assert_memory_equal(fast, slow, tv->n);
            assert_true(n1 > 0);
            agx_grammar_state_free(st);
        }
        agx_grammar_free(g);
    }
    free(fast);
    free(slow);
}

static void test_fast_paths_match_full_walk(void **state) {
    (void)state;
    test_vocab tv = {0};
    synthetic_vocab(&tv);
    pending_masks(&tv);
    vocab_free(&tv);
    if (!qwen_vocab(&tv)) AGX_TEST_SKIP("Qwen2 tokenizer.json not found under AGX_REF_DIR");
    pending_masks(&tv);
    vocab_free(&tv);
}

/* ------------------------------------------- the plan schema, end to end */

/* The built-in registry minus the tools whose arguments the validator polices
 * per tool (find -exec, sed -i, sort -o, uniq's output operand, awk system(),
 * xargs' command, shuf -o, file -C): those rules are semantic, beyond what a JSON schema states,
 * and the native backend enforces them after decoding. What the grammar alone
 * guarantees is checked here with the rest of the registry. The dropped tools
 * are swapped to the end so agx_registry_free still frees them. */
static size_t schema_registry(agx_registry *reg) {
    static const char *const policed[] = {"find", "sed", "sort", "uniq", "awk", "xargs", "shuf", "file"};
    agx_error err;
    assert_int_equal(agx_registry_builtin(reg, &err), AGX_OK);
    size_t kept = 0;
    for (size_t i = 0; i < reg->count; i++) {
        bool drop = false;
        for (size_t j = 0; j < sizeof policed / sizeof policed[0]; j++)
            if (strcmp(reg->tools[i].id, policed[j]) == 0) drop = true;
        if (drop) continue;
        agx_tool t = reg->tools[kept];
        reg->tools[kept++] = reg->tools[i];
        reg->tools[i] = t;
    }
    size_t total = reg->count;
    reg->count = kept;
    return total;
}

/* The registry's plan schema (agx_plan_schema_json) plus the two extension
 * keywords the native backend adds, so that plans also meet the validator's
 * cross-field rules: task_number equals its item number, input_from_task names
 * an earlier item. */
static char *native_plan_schema(void) {
    agx_registry reg;
    size_t total = schema_registry(&reg);
    char *base = agx_plan_schema_json(&reg, 20);
    reg.count = total;
    agx_registry_free(&reg);
    assert_non_null(base);
    json_t *root = json_loads(base, 0, NULL);
    free(base);
    assert_non_null(root);
    json_t *props = json_object_get(
        json_object_get(json_object_get(json_object_get(root, "properties"), "tasks"), "items"),
        "properties");
    assert_non_null(props);
    json_object_set_new(json_object_get(props, "task_number"), "x-agx-item-number",
                        json_string("equal"));
    json_object_set_new(json_object_get(props, "input_from_task"), "x-agx-item-number",
                        json_string("below"));
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

/* The output parses with the plan parser and passes the zero-trust validator. */
static void assert_valid_plan(const char *out, size_t len) {
    agx_plan plan;
    agx_plan_init(&plan);
    agx_error err;
    agx_error_clear(&err);
    agx_status st = agx_plan_parse_lenient(out, len, &plan, &err);
    if (st) fprintf(stderr, "plan parse failed: %s\n%.*s\n", err.message, (int)len, out);
    assert_int_equal(st, AGX_OK);
    agx_registry reg;
    size_t total = schema_registry(&reg);
    agx_plan_limits lim = agx_plan_limits_default();
    st = agx_plan_validate(&plan, &reg, &lim, NULL, &err);
    if (st) fprintf(stderr, "plan invalid: %s\n%.*s\n", err.message, (int)len, out);
    assert_int_equal(st, AGX_OK);
    /* nothing was renumbered or dropped on the way */
    json_t *v = json_loadb(out, len, 0, NULL);
    json_t *tasks = json_object_get(v, "tasks");
    assert_int_equal(json_array_size(tasks), plan.n_tasks);
    for (size_t i = 0; i < plan.n_tasks; i++) {
        json_t *t = json_array_get(tasks, i);
        assert_int_equal(json_integer_value(json_object_get(t, "task_number")), (json_int_t)(i + 1));
        assert_int_equal(json_integer_value(json_object_get(t, "input_from_task")),
                         plan.tasks[i].input_from_task);
    }
    json_decref(v);
    reg.count = total;
    agx_registry_free(&reg);
    agx_plan_free(&plan);
}

static void test_item_number_relations(void **state) {
    (void)state;
    char *schema = native_plan_schema();
    agx_grammar *g = compile_ok(schema);
    agx_grammar_state *st = agx_grammar_state_new(g);
    expect_forced(st, "{\"tasks\":[{\"task_number\":1,\"command\":\"");
    assert_true(acc(st, "{\"tasks\":[{\"task_number\":1,\"command\":\"ls\""));
    expect_forced(st, ",\"args\":[");
    assert_true(acc(st, ",\"args\":[]"));
    expect_forced(st, "}"); /* the first task cannot take input */
    assert_false(acc(st, ",\"input_from_task\""));
    assert_true(acc(st, "}"));
    assert_false(acc(st, ",{\"task_number\":1"));
    assert_false(acc(st, ",{\"task_number\":3"));
    assert_true(acc(st, ","));
    expect_forced(st, "{\"task_number\":2,\"command\":\"");
    assert_true(acc(st, "{\"task_number\":2,\"command\":\"wc\",\"args\":[\"-l\"],"));
    expect_forced(st, "\"input_from_task\":1}");
    assert_false(acc(st, "\"input_from_task\":2"));
    assert_false(acc(st, "\"input_from_task\":0"));
    assert_true(acc(st, "\"input_from_task\":1},{\"task_number\":3,\"command\":\"head\",\"args\":[],"));
    expect_forced(st, "\"input_from_task\":");
    assert_false(acc(st, "\"input_from_task\":3"));
    agx_grammar_state *c = agx_grammar_state_copy(st);
    assert_true(acc(c, "\"input_from_task\":1}]}"));
    assert_true(agx_grammar_is_complete(c));
    assert_valid_plan("{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"args\":[]},"
                      "{\"task_number\":2,\"command\":\"wc\",\"args\":[\"-l\"],\"input_from_task\":1},"
                      "{\"task_number\":3,\"command\":\"head\",\"args\":[],\"input_from_task\":1}]}",
                      strlen("{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"args\":[]},"
                             "{\"task_number\":2,\"command\":\"wc\",\"args\":[\"-l\"],\"input_from_task\":1},"
                             "{\"task_number\":3,\"command\":\"head\",\"args\":[],\"input_from_task\":1}]}"));
    agx_grammar_state_free(c);
    /* shortest completions number the tasks they add */
    agx_grammar_state_reset(st);
    assert_true(acc(st, "{\"tasks\":[{\"task_number\":1,\"command\":\"ls\",\"args\":[]},{"));
    char comp[256];
    finish_shortest(st, comp, sizeof comp);
    assert_non_null(strstr(comp, "\"task_number\":2"));
    agx_grammar_state_free(st);
    agx_grammar_free(g);
    /* the keyword's values are checked */
    expect_compile_error("{\"type\":\"integer\",\"x-agx-item-number\":\"above\"}", AGX_ERR_CONFIG,
                         "x-agx-item-number", NULL);
    free(schema);
}

/* An optional property whose value holds a required item-number integer: the
 * shortest completion of a half-typed object must number it like the automaton
 * does, from every object phase (a fuzzer find: it wrote 0 and was refused). */
static void test_item_number_under_optional_property(void **state) {
    (void)state;
    agx_grammar *g = compile_ok(
        "{\"type\":\"array\",\"minItems\":2,\"maxItems\":3,\"items\":{\"type\":\"object\","
        "\"properties\":{\"x\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":9},"
        "\"o\\\"p\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\","
        "\"minimum\":-50,\"maximum\":184,\"x-agx-item-number\":\"equal\"}},"
        "\"required\":[\"n\"],\"additionalProperties\":false}},"
        "\"required\":[],\"additionalProperties\":false}}");
    static const char *prefixes[] = {
        "[{},{\"o",        /* in the key */
        "[{},{\"o\\",      /* in the key's escape */
        "[{},{\"o\\\"p\"", /* before the colon */
        "[{},{\"x\":1,",   /* after a comma: only the optional object is left */
        "[{},{\"o\\\"p\":{", /* inside the value */
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        agx_grammar_state *st = agx_grammar_state_new(g);
        assert_true(acc(st, prefixes[i]));
        char comp[128];
        finish_shortest(st, comp, sizeof comp);
        if (!strstr(comp, "\"n\":2")) fail_msg("prefix %s: completion %s", prefixes[i], comp);
        agx_grammar_state_free(st);
    }
    agx_grammar_free(g);
}

/* Whatever tokens are chosen, the output is a plan the validator accepts. */
static void plan_walks(const test_vocab *tv, int n, size_t budget, bool slow, uint64_t seed) {
    char *schema = native_plan_schema();
    agx_grammar *g = compile_ok(schema);
    uint64_t rng = seed;
    for (int i = 0; i < n; i++) {
        size_t len;
        char *out = random_walk(g, tv, &rng, budget + (size_t)i * 11, slow, &len);
        assert_conforms(out, len, schema);
        assert_valid_plan(out, len);
        free(out);
    }
    agx_grammar_free(g);
    free(schema);
}

static void test_walks_valid_plans(void **state) {
    (void)state;
    test_vocab tv = {0};
    synthetic_vocab(&tv);
    plan_walks(&tv, 40, 30, true, 0xabc);
    vocab_free(&tv);
    if (!qwen_vocab(&tv)) AGX_TEST_SKIP("Qwen2 tokenizer.json not found under AGX_REF_DIR");
    plan_walks(&tv, 6, 120, false, 0xdef);
    vocab_free(&tv);
}

/* One grammar and one vocab shared by threads, each with its own state: the
 * outputs match a sequential run with the same seeds. */
typedef struct walk_job {
    const agx_grammar *g;
    const test_vocab *tv;
    uint64_t seed;
    char *out;
    size_t len;
} walk_job;

static void *walk_thread(void *arg) {
    walk_job *j = arg;
    agx_grammar_state *st = agx_grammar_state_new(j->g);
    uint8_t *allowed = malloc(j->tv->n);
    agx_strbuf out;
    agx_strbuf_init(&out);
    uint64_t rng = j->seed;
    agx_error err;
    for (int step = 0; step < 200 && !agx_grammar_is_complete(st); step++) {
        size_t n;
        if (agx_grammar_mask(st, j->tv->v, allowed, &n, &err) != AGX_OK || n == 0) break;
        size_t pick = rnd(&rng) % n, id = 0;
        for (size_t i = 0; i < j->tv->n; i++)
            if (allowed[i] && pick-- == 0) {
                id = i;
                break;
            }
        if (agx_grammar_vocab_is_eog(j->tv->v, (int32_t)id)) break;
        if (!agx_grammar_accept_token(st, j->tv->v, (int32_t)id)) break;
        agx_strbuf_append(&out, j->tv->bytes[id], j->tv->lens[id]);
    }
    char comp[8192];
    size_t cl = agx_grammar_shortest_completion(st, comp, sizeof comp);
    if (cl <= sizeof comp && agx_grammar_accept(st, comp, cl)) agx_strbuf_append(&out, comp, cl);
    free(allowed);
    agx_grammar_state_free(st);
    j->len = out.len;
    j->out = agx_strbuf_take(&out);
    return NULL;
}

static void test_threads_share_grammar_and_vocab(void **state) {
    (void)state;
    test_vocab tv = {0};
    synthetic_vocab(&tv);
    const char *schema = plan_schema(256);
    agx_grammar *g = compile_ok(schema);
    enum { NT = 4 };
    walk_job seq[NT], par[NT];
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) {
        seq[i] = (walk_job){g, &tv, 1000 + (uint64_t)i, NULL, 0};
        par[i] = seq[i];
        walk_thread(&seq[i]);
    }
    for (int i = 0; i < NT; i++) assert_int_equal(pthread_create(&th[i], NULL, walk_thread, &par[i]), 0);
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NT; i++) {
        assert_int_equal(seq[i].len, par[i].len);
        assert_memory_equal(seq[i].out, par[i].out, seq[i].len);
        assert_conforms(par[i].out, par[i].len, schema);
        free(seq[i].out);
        free(par[i].out);
    }
    agx_grammar_free(g);
    vocab_free(&tv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forced_spans),
        cmocka_unit_test(test_enum_prefixes),
        cmocka_unit_test(test_integer_ranges),
        cmocka_unit_test(test_strings_escapes_utf8),
        cmocka_unit_test(test_hostile_content),
        cmocka_unit_test(test_length_and_item_bounds),
        cmocka_unit_test(test_kitchen_values),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_eog_and_special_tokens),
        cmocka_unit_test(test_threads_share_grammar_and_vocab),
        cmocka_unit_test(test_item_number_relations),
        cmocka_unit_test(test_item_number_under_optional_property),
        cmocka_unit_test(test_fast_paths_match_full_walk),
        cmocka_unit_test(test_walks_valid_plans),
        cmocka_unit_test(test_walks_synthetic_plan),
        cmocka_unit_test(test_walks_synthetic_kitchen),
        cmocka_unit_test(test_walks_qwen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
