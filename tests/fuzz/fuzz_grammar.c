/* fuzz_grammar.c — libFuzzer target for the grammar engine: the input drives a
 * small generator of schema-ish JSON (or is used as schema text itself), then
 * its remaining bytes are fed through accept / mask / forced / completion. Traps
 * when an invariant breaks: the shortest completion must be accepted and must
 * complete the document, and every completed document must parse as JSON. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/grammar.h"

/* The library is built without coverage instrumentation (only this file gets
 * -fsanitize=fuzzer), so the grammar sources are compiled into the target: the
 * fuzzer then sees their edges. The linker takes these definitions and leaves
 * grammar.o / grammar_mask.o in libagx.a unused. */
#include "../../src/engine/grammar.c"
#include "../../src/engine/grammar_mask.c"

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static unsigned take(rd *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

static void put(char **o, size_t *len, size_t cap, const char *s) {
    size_t l = strlen(s);
    if (*len + l < cap) {
        memcpy(*o + *len, s, l);
        *len += l;
        (*o)[*len] = 0;
    }
}

static void gen(rd *r, char *o, size_t *len, size_t cap, int depth) {
    char tmp[96];
    unsigned k = take(r) % (depth > 4 ? 6 : 9);
    switch (k) {
    case 0:
        snprintf(tmp, sizeof tmp, "{\"type\":\"string\",\"minLength\":%u,\"maxLength\":%u}",
                 take(r) % 4, 4 + take(r) % 8);
        put(&o, len, cap, tmp);
        break;
    case 1: {
        int a = (int)take(r) - 128, b = a + (int)take(r) * (take(r) % 4 + 1);
        static const char *rel[] = {"", "", ",\"x-agx-item-number\":\"equal\"",
                                    ",\"x-agx-item-number\":\"below\""};
        snprintf(tmp, sizeof tmp, "{\"type\":\"integer\",\"minimum\":%d,\"maximum\":%d%s}", a,
                 b, rel[take(r) % 4]);
        put(&o, len, cap, tmp);
        break;
    }
    case 2: put(&o, len, cap, "{\"type\":\"number\"}"); break;
    case 3: put(&o, len, cap, "{\"type\":\"boolean\"}"); break;
    case 4: put(&o, len, cap, "{\"type\":\"null\"}"); break;
    case 5: {
        static const char *vals[] = {"1", "12", "\"s\"", "\"so\"", "\"sort\"", "null",
                                     "[1]", "{\"a\":1}", "-2.5", "true", "\"\\u00e9\""};
        put(&o, len, cap, "{\"enum\":[");
        unsigned n = 1 + take(r) % 4;
        for (unsigned i = 0; i < n; i++) {
            if (i) put(&o, len, cap, ",");
            put(&o, len, cap, vals[take(r) % (sizeof vals / sizeof *vals)]);
        }
        put(&o, len, cap, "]}");
        break;
    }
    case 6:
    case 7: {
        static const char *names[] = {"a", "ab", "b", "tasks", "t\\\"q", "x"};
        unsigned n = take(r) % 4, req = take(r);
        put(&o, len, cap, "{\"type\":\"object\",\"properties\":{");
        for (unsigned i = 0; i < n; i++) {
            snprintf(tmp, sizeof tmp, "%s\"%s%u\":", i ? "," : "", names[take(r) % 6], i);
            put(&o, len, cap, tmp);
            gen(r, o, len, cap, depth + 1);
        }
        put(&o, len, cap, "},\"required\":[");
        int first = 1;
        for (unsigned i = 0; i < n; i++) {
            if (!(req >> i & 1)) continue;
            /* names must match the ones above: regenerate is not possible, so
             * required refers to properties by the same index-suffixed names only
             * when they were generated from name 0 ("a") — mismatches exercise
             * the compile error path */
            snprintf(tmp, sizeof tmp, "%s\"a%u\"", first ? "" : ",", i);
            put(&o, len, cap, tmp);
            first = 0;
        }
        put(&o, len, cap, "],\"additionalProperties\":false}");
        break;
    }
    default: {
        unsigned mn = take(r) % 3, mx = mn + take(r) % 4;
        snprintf(tmp, sizeof tmp, "{\"type\":\"array\",\"minItems\":%u,\"maxItems\":%u,\"items\":",
                 mn, mx);
        put(&o, len, cap, tmp);
        gen(r, o, len, cap, depth + 1);
        put(&o, len, cap, "}");
        break;
    }
    }
}

static const char *vocab_strs[] = {"{", "}", "[", "]", ",", ":", "\"", "\\", "a", "ab", "0",
                                   "1", "12", "-", ".", "e", "true", "null", "\"a0\":",
                                   "\"s", "ort\"", "\\u00", "e9", "\xc3", "\xa9", "\xc3\xa9",
                                   "\\ud83d\\ude00", "\"}", "\"]", "x", " ", "\n", "", "<eog>"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static agx_grammar_vocab *vocab;
    static size_t n_vocab;
    if (!vocab) {
        n_vocab = sizeof vocab_strs / sizeof *vocab_strs;
        size_t lens[64];
        for (size_t i = 0; i < n_vocab; i++) lens[i] = strlen(vocab_strs[i]);
        int32_t eog = (int32_t)n_vocab - 1;
        agx_error err;
        if (agx_grammar_vocab_new(vocab_strs, lens, n_vocab, &eog, 1, &vocab, &err)) abort();
    }
    rd r = {data, size};
    char schema[4096];
    size_t slen = 0;
    schema[0] = 0;
    unsigned mode = take(&r);
    const char *stext = schema;
    if (mode % 16 == 0) { /* raw schema text: the rest up to a NUL */
        const uint8_t *z = memchr(r.p, 0, r.n);
        slen = z ? (size_t)(z - r.p) : r.n;
        stext = (const char *)r.p;
        r.p += slen;
        r.n -= slen;
    } else {
        gen(&r, schema, &slen, sizeof schema, 0);
    }
    agx_grammar *g = NULL;
    agx_error err;
    if (agx_grammar_compile(stext, slen, &g, &err) != AGX_OK) return 0;
    agx_grammar_state *st = agx_grammar_state_new(g);
    uint8_t allowed[64];
    char out[8192];
    size_t olen = 0;
    while (r.n > 0) {
        unsigned op = take(&r);
        if (op < 160) { /* a run of 1..4 raw bytes */
            size_t n = 1 + op % 4;
            if (n > r.n) n = r.n;
            if (agx_grammar_accept(st, r.p, n) && olen + n < sizeof out) {
                memcpy(out + olen, r.p, n);
                olen += n;
            }
            r.p += n;
            r.n -= n;
        } else if (op < 200) { /* sample the op-th allowed token */
            size_t na;
            if (agx_grammar_mask(st, vocab, allowed, &na, &err)) abort();
            if (na == 0) break;
            size_t pick = take(&r) % na, id = 0;
            for (size_t i = 0; i < n_vocab; i++)
                if (allowed[i] && pick-- == 0) id = i;
            if (agx_grammar_vocab_is_eog(vocab, (int32_t)id)) {
                if (!agx_grammar_is_complete(st)) abort();
                break;
            }
            size_t tl = strlen(vocab_strs[id]);
            if (!agx_grammar_accept_token(st, vocab, (int32_t)id)) abort();
            if (olen + tl < sizeof out) memcpy(out + olen, vocab_strs[id], tl);
            olen += tl;
        } else if (op < 215) { /* forced span as tokens */
            int32_t ft[64];
            size_t fb;
            size_t nt = agx_grammar_forced_tokens(st, vocab, ft, 64, &fb);
            for (size_t q = 0; q < nt; q++) {
                size_t tl = strlen(vocab_strs[ft[q]]);
                if (!agx_grammar_accept_token(st, vocab, ft[q])) abort();
                if (olen + tl < sizeof out) memcpy(out + olen, vocab_strs[ft[q]], tl);
                olen += tl;
            }
        } else if (op < 230) {
            char f[64];
            size_t nf = agx_grammar_forced(st, f, sizeof f);
            if (nf && !agx_grammar_accept(st, f, nf)) abort();
            if (olen + nf < sizeof out) memcpy(out + olen, f, nf);
            olen += nf;
        } else {
            break;
        }
        if (olen >= sizeof out / 2) break;
    }
    /* the shortest completion always closes a valid document */
    size_t need = agx_grammar_min_bytes_to_complete(st);
    if (olen < sizeof out && need < sizeof out - olen) {
        size_t cl = agx_grammar_shortest_completion(st, out + olen, sizeof out - olen);
        if (cl != need) abort();
        if (!agx_grammar_accept(st, out + olen, cl)) abort();
        if (!agx_grammar_is_complete(st)) abort();
        olen += cl;
        json_error_t je;
        json_t *v = json_loadb(out, olen, JSON_DECODE_ANY, &je);
        if (!v) {
            fprintf(stderr, "schema %.*s\noutput %.*s\n%s\n", (int)slen, stext, (int)olen, out,
                    je.text);
            abort();
        }
        json_decref(v);
    }
    agx_grammar_state_free(st);
    agx_grammar_free(g);
    return 0;
}
