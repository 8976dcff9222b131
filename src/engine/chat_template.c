/* chat_template.c — chat template families: detection from the Jinja source
 * and one hand-written renderer per family that reproduces what the family's
 * template renders (transformers: trim_blocks, lstrip_blocks; Python string
 * semantics for strip/trim). Verified byte-exact against the reference
 * renderings for Qwen3 (ChatML), Llama 3 and Llama 2; the Mistral and Phi-3
 * renderers follow the published templates and llama.cpp (unverified here). */
#include "agx/chat.h"

#include <stdlib.h>
#include <string.h>

#include "agx/tokenizer.h"
#include "agx/util.h"

static const char *const FAMILY_NAMES[AGX_CHAT_FAMILY_COUNT] = {
    [AGX_CHAT_CHATML] = "chatml",
    [AGX_CHAT_QWEN3] = "qwen3",
    [AGX_CHAT_LLAMA3] = "llama3",
    [AGX_CHAT_LLAMA31] = "llama3.1",
    [AGX_CHAT_LLAMA2] = "llama2",
    [AGX_CHAT_MISTRAL_V1] = "mistral-v1",
    [AGX_CHAT_MISTRAL_V3] = "mistral-v3",
    [AGX_CHAT_MISTRAL_TEKKEN] = "mistral-v3-tekken",
    [AGX_CHAT_PHI3] = "phi3",
};

const char *agx_chat_family_name(agx_chat_family f) {
    return (unsigned)f < AGX_CHAT_FAMILY_COUNT ? FAMILY_NAMES[f] : "unknown";
}

int agx_chat_family_from_name(const char *name) {
    for (int i = 0; name && i < AGX_CHAT_FAMILY_COUNT; i++)
        if (strcmp(name, FAMILY_NAMES[i]) == 0) return i;
    return -1;
}

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

agx_chat_family agx_chat_detect(const char *t, bool *known) {
    *known = true;
    if (t && *t) {
        if (has(t, "<|im_start|>")) {
            if (has(t, "reasoning_content") || has(t, "</think>")) return AGX_CHAT_QWEN3;
            return AGX_CHAT_CHATML;
        }
        if (has(t, "<|start_header_id|>")) {
            if (has(t, "Cutting Knowledge Date")) return AGX_CHAT_LLAMA31;
            return AGX_CHAT_LLAMA3;
        }
        if (has(t, "[INST]")) {
            if (has(t, "<<SYS>>")) return AGX_CHAT_LLAMA2;
            /* llama.cpp's rules for the official Mistral templates */
            if (has(t, "\"[INST]\"")) return AGX_CHAT_MISTRAL_TEKKEN;
            if (has(t, " [INST]") || has(t, "'[INST] '")) return AGX_CHAT_MISTRAL_V1;
            return AGX_CHAT_MISTRAL_V3;
        }
        if (has(t, "<|user|>") && has(t, "<|end|>")) return AGX_CHAT_PHI3;
    }
    *known = false;
    return AGX_CHAT_CHATML;
}

/* ---- Python string helpers (str.strip / lstrip / rstrip) ---- */

typedef struct {
    const char *p;
    size_t n;
} span;

static span sp(const char *s) { return (span){s ? s : "", s ? strlen(s) : 0}; }

/* Python str.isspace() characters, as UTF-8. */
static size_t ws_at(const char *s, size_t n) {
    unsigned char c = (unsigned char)s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return 1;
    if (n >= 2 && c == 0xC2 && ((unsigned char)s[1] == 0x85 || (unsigned char)s[1] == 0xA0)) return 2;
    if (n >= 3) {
        unsigned c1 = (unsigned char)s[1], c2 = (unsigned char)s[2];
        uint32_t cp = ((c & 0x0Fu) << 12) | ((c1 & 0x3Fu) << 6) | (c2 & 0x3Fu);
        if ((c & 0xF0) == 0xE0 && (c1 & 0xC0) == 0x80 && (c2 & 0xC0) == 0x80 &&
            (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
             cp == 0x202F || cp == 0x205F || cp == 0x3000))
            return 3;
    }
    return 0;
}

static span lstrip_ws(span s) {
    size_t k;
    while (s.n && (k = ws_at(s.p, s.n)) > 0) {
        s.p += k;
        s.n -= k;
    }
    return s;
}

static span rstrip_ws(span s) {
    for (;;) {
        size_t k = 0;
        for (size_t back = 1; back <= 3 && back <= s.n; back++) {
            size_t w = ws_at(s.p + s.n - back, back);
            if (w == back) {
                k = back;
                break;
            }
        }
        if (!k) return s;
        s.n -= k;
    }
}

static span strip_ws(span s) { return rstrip_ws(lstrip_ws(s)); }

static span lstrip_nl(span s) {
    while (s.n && s.p[0] == '\n') { s.p++; s.n--; }
    return s;
}

static span rstrip_nl(span s) {
    while (s.n && s.p[s.n - 1] == '\n') s.n--;
    return s;
}

static const char *find_in(span s, const char *needle, bool last) {
    size_t k = strlen(needle);
    const char *found = NULL;
    for (size_t i = 0; i + k <= s.n; i++) {
        if (memcmp(s.p + i, needle, k) == 0) {
            found = s.p + i;
            if (!last) return found;
        }
    }
    return found;
}

static bool starts_with(span s, const char *p) { size_t k = strlen(p); return s.n >= k && memcmp(s.p, p, k) == 0; }
static bool ends_with(span s, const char *p) { size_t k = strlen(p); return s.n >= k && memcmp(s.p + s.n - k, p, k) == 0; }

/* ---- output ---- */

typedef struct {
    agx_strbuf sb;
    bool oom;
    size_t *spans;     /* [start, end) pairs of message content in sb */
    size_t n_spans, cap_spans;
} out_t;

static void put(out_t *o, const char *s) {
    if (!o->oom && !agx_strbuf_puts(&o->sb, s)) o->oom = true;
}
static void puts_span(out_t *o, span s) {
    if (!o->oom && !agx_strbuf_append(&o->sb, s.p, s.n)) o->oom = true;
}

/* Message content: recorded as a span so that agx_chat_tokenize can keep
 * control tokens written in it from being parsed. */
static void puts_c(out_t *o, span s) {
    size_t start = o->sb.len;
    puts_span(o, s);
    if (o->oom || s.n == 0) return;
    if (o->n_spans == o->cap_spans) {
        size_t cap = o->cap_spans ? o->cap_spans * 2 : 16;
        size_t *p = realloc(o->spans, cap * 2 * sizeof *p);
        if (!p) {
            o->oom = true;
            return;
        }
        o->spans = p;
        o->cap_spans = cap;
    }
    o->spans[2 * o->n_spans] = start;
    o->spans[2 * o->n_spans + 1] = o->sb.len;
    o->n_spans++;
}
static void put_c(out_t *o, const char *s) { puts_c(o, sp(s)); }

static bool role_is(const agx_chat_msg *m, const char *r) { return m->role && strcmp(m->role, r) == 0; }

/* ---- ChatML (Qwen2 / Qwen2.5 / generic) ---- */

/* Default system prompt written literally in the template, e.g. Qwen2.5's
 * '<|im_start|>system\nYou are Qwen, ...<|im_end|>\n' (NULL when none). */
static char *chatml_default_system(const char *tmpl) {
    if (!tmpl) return NULL;
    static const char KEY[] = "<|im_start|>system\\n";
    for (const char *p = strstr(tmpl, KEY); p; p = strstr(p + 1, KEY)) {
        const char *b = p + strlen(KEY);
        const char *e = strstr(b, "<|im_end|>");
        if (!e) return NULL;
        bool literal = e > b;
        for (const char *q = b; q < e && literal; q++)
            if (*q == '\'' || *q == '"' || *q == '+' || *q == '{' || *q == '}') literal = false;
        if (!literal) continue;
        agx_strbuf sb;
        agx_strbuf_init(&sb);
        for (const char *q = b; q < e; q++) {
            char c = *q;
            if (c == '\\' && q + 1 < e) {
                q++;
                c = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q;
            }
            if (!agx_strbuf_putc(&sb, c)) {
                agx_strbuf_free(&sb);
                return NULL;
            }
        }
        return agx_strbuf_take(&sb);
    }
    return NULL;
}

static void render_chatml(out_t *o, const char *tmpl, const agx_chat_msg *m, size_t n, bool gen) {
    char *def = chatml_default_system(tmpl);
    if (def && (n == 0 || !role_is(&m[0], "system"))) {
        put(o, "<|im_start|>system\n");
        put(o, def);
        put(o, "<|im_end|>\n");
    }
    free(def);
    for (size_t i = 0; i < n; i++) {
        put(o, "<|im_start|>");
        put(o, m[i].role);
        put(o, "\n");
        put_c(o, m[i].content);
        put(o, "<|im_end|>\n");
    }
    if (gen) put(o, "<|im_start|>assistant\n");
}

/* ---- Qwen3 ---- */

static void render_qwen3(out_t *o, const agx_chat_msg *m, size_t n, bool gen) {
    if (n && role_is(&m[0], "system")) {
        put(o, "<|im_start|>system\n");
        put_c(o, m[0].content);
        put(o, "<|im_end|>\n");
    }
    size_t last_query = n ? n - 1 : 0;
    for (size_t k = n; k-- > 0;) {
        span c = sp(m[k].content);
        if (role_is(&m[k], "user") && !(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>"))) {
            last_query = k;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        span c = sp(m[i].content);
        if (role_is(&m[i], "user") || (role_is(&m[i], "system") && i > 0)) {
            put(o, "<|im_start|>");
            put(o, m[i].role);
            put(o, "\n");
            puts_c(o, c);
            put(o, "<|im_end|>\n");
        } else if (role_is(&m[i], "assistant")) {
            span content = c, reasoning = {"", 0};
            const char *close = find_in(c, "</think>", true);
            if (close) {
                span after = {close + 8, (size_t)(c.p + c.n - close - 8)};
                content = lstrip_nl(after);
                const char *first = find_in(c, "</think>", false);
                span before = rstrip_nl((span){c.p, (size_t)(first - c.p)});
                const char *open = find_in(before, "<think>", true);
                if (open) before = (span){open + 7, (size_t)(before.p + before.n - open - 7)};
                reasoning = lstrip_nl(before);
            }
            put(o, "<|im_start|>assistant\n");
            if (i > last_query && (i == n - 1 || reasoning.n > 0)) {
                put(o, "<think>\n");
                puts_c(o, rstrip_nl(lstrip_nl(reasoning)));
                put(o, "\n</think>\n\n");
                puts_c(o, lstrip_nl(content));
            } else {
                puts_c(o, content);
            }
            put(o, "<|im_end|>\n");
        } else if (role_is(&m[i], "tool")) {
            if (i == 0 || !role_is(&m[i - 1], "tool")) put(o, "<|im_start|>user");
            put(o, "\n<tool_response>\n");
            puts_c(o, c);
            put(o, "\n</tool_response>");
            if (i == n - 1 || !role_is(&m[i + 1], "tool")) put(o, "<|im_end|>\n");
        }
    }
    if (gen) put(o, "<|im_start|>assistant\n");
}

/* ---- Llama 3 / 3.1 ---- */

static void llama3_turn(out_t *o, const char *role, span content) {
    put(o, "<|start_header_id|>");
    put(o, role);
    put(o, "<|end_header_id|>\n\n");
    puts_c(o, strip_ws(content));
    put(o, "<|eot_id|>");
}

static void render_llama3(out_t *o, const char *tmpl, const char *bos, const agx_chat_msg *m, size_t n,
                          bool gen) {
    for (size_t i = 0; i < n; i++) {
        if (i == 0) put(o, bos);
        llama3_turn(o, m[i].role, sp(m[i].content));
    }
    /* Meta's first release appends the header unconditionally */
    if (gen || (tmpl && !has(tmpl, "add_generation_prompt"))) put(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void render_llama31(out_t *o, const char *bos, const agx_chat_msg *m, size_t n, bool gen) {
    put(o, bos);
    size_t start = 0;
    span sys = {"", 0};
    if (n && role_is(&m[0], "system")) {
        sys = strip_ws(sp(m[0].content));
        start = 1;
    }
    /* date_string defaults to "26 Jul 2024" when the caller passes none */
    put(o, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
    puts_c(o, sys);
    put(o, "<|eot_id|>");
    for (size_t i = start; i < n; i++)
        llama3_turn(o, role_is(&m[i], "tool") ? "ipython" : m[i].role, sp(m[i].content));
    if (gen) put(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* ---- Llama 2 ---- */

static agx_status render_llama2(out_t *o, const char *bos, const char *eos, const agx_chat_msg *m, size_t n,
                                agx_error *err) {
    size_t start = 0;
    const char *sys = NULL;
    if (n && role_is(&m[0], "system")) {
        sys = m[0].content ? m[0].content : "";
        start = 1;
    }
    for (size_t i = start; i < n; i++) {
        size_t k = i - start;
        if (role_is(&m[i], "user") != (k % 2 == 0))
            return agx_error_set(err, AGX_ERR_VALIDATION,
                                 "Conversation roles must alternate user/assistant/user/assistant/... "
                                 "(message %zu has role '%s')", i, m[i].role ? m[i].role : "");
        agx_strbuf content;
        agx_strbuf_init(&content);
        bool ok = true;
        if (k == 0 && sys) {
            ok = agx_strbuf_puts(&content, "<<SYS>>\n") && agx_strbuf_puts(&content, sys) &&
                 agx_strbuf_puts(&content, "\n<</SYS>>\n\n");
        }
        ok = ok && agx_strbuf_puts(&content, m[i].content ? m[i].content : "");
        if (!ok) {
            agx_strbuf_free(&content);
            o->oom = true;
            return AGX_OK;
        }
        span c = strip_ws((span){content.data, content.len});
        if (role_is(&m[i], "user")) {
            put(o, bos);
            put(o, "[INST] ");
            puts_c(o, c);
            put(o, " [/INST]");
        } else if (role_is(&m[i], "assistant")) {
            put(o, " ");
            puts_c(o, c);
            put(o, " ");
            put(o, eos);
        }
        agx_strbuf_free(&content);
    }
    return AGX_OK;
}

/* ---- Mistral ---- */

static void render_mistral(out_t *o, agx_chat_family f, const char *bos, const char *eos, const agx_chat_msg *m,
                           size_t n) {
    size_t start = 0;
    const char *sys = NULL;
    if (n && role_is(&m[0], "system")) {
        sys = m[0].content;
        start = 1;
    }
    /* the system prompt goes into the first user turn (v1) or, as the HF
     * templates do, into the last message when that is a user turn (v3, tekken) */
    size_t sys_at = n;
    if (f == AGX_CHAT_MISTRAL_V1) {
        for (size_t i = start; i < n && sys_at == n; i++)
            if (role_is(&m[i], "user")) sys_at = i;
    } else if (n > start && role_is(&m[n - 1], "user")) {
        sys_at = n - 1;
    }
    put(o, bos);
    for (size_t i = start; i < n; i++) {
        if (role_is(&m[i], "user")) {
            put(o, f == AGX_CHAT_MISTRAL_TEKKEN ? "[INST]" : "[INST] ");
            if (sys && i == sys_at) {
                put_c(o, sys);
                put(o, "\n\n");
            }
            put_c(o, m[i].content);
            put(o, f == AGX_CHAT_MISTRAL_V1 ? " [/INST]" : "[/INST]");
        } else if (role_is(&m[i], "assistant")) {
            if (f == AGX_CHAT_MISTRAL_V3) {
                put(o, " ");
                puts_c(o, strip_ws(sp(m[i].content)));
            } else {
                put_c(o, m[i].content);
            }
            put(o, eos);
        }
    }
}

/* ---- Phi-3 ---- */

static void render_phi3(out_t *o, const char *eos, const agx_chat_msg *m, size_t n, bool gen) {
    for (size_t i = 0; i < n; i++) {
        const char *tag = role_is(&m[i], "system") ? "<|system|>\n"
                          : role_is(&m[i], "user") ? "<|user|>\n"
                          : role_is(&m[i], "assistant") ? "<|assistant|>\n" : NULL;
        if (!tag || (role_is(&m[i], "system") && !(m[i].content && *m[i].content))) continue;
        put(o, tag);
        put_c(o, m[i].content);
        put(o, "<|end|>\n");
    }
    put(o, gen ? "<|assistant|>\n" : eos);
}

static agx_status render_impl(agx_chat_family f, const char *tmpl, const char *bos, const char *eos,
                              const agx_chat_msg *msgs, size_t n, bool gen, char **out, size_t **spans,
                              size_t *n_spans, agx_error *err) {
    *out = NULL;
    if (spans) *spans = NULL;
    if (n_spans) *n_spans = 0;
    if (!bos) bos = "";
    if (!eos) eos = "";
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return agx_error_set(err, AGX_ERR_VALIDATION, "chat message %zu has no %s", i,
                                 msgs[i].role ? "content" : "role");
    out_t o;
    memset(&o, 0, sizeof o);
    agx_strbuf_init(&o.sb);
    agx_status st = AGX_OK;
    switch (f) {
    case AGX_CHAT_QWEN3: render_qwen3(&o, msgs, n, gen); break;
    case AGX_CHAT_LLAMA3: render_llama3(&o, tmpl, bos, msgs, n, gen); break;
    case AGX_CHAT_LLAMA31: render_llama31(&o, bos, msgs, n, gen); break;
    case AGX_CHAT_LLAMA2: st = render_llama2(&o, bos, eos, msgs, n, err); break;
    case AGX_CHAT_MISTRAL_V1:
    case AGX_CHAT_MISTRAL_V3:
    case AGX_CHAT_MISTRAL_TEKKEN: render_mistral(&o, f, bos, eos, msgs, n); break;
    case AGX_CHAT_PHI3: render_phi3(&o, eos, msgs, n, gen); break;
    case AGX_CHAT_CHATML:
    default: render_chatml(&o, tmpl, msgs, n, gen); break;
    }
    if (st == AGX_OK && !o.oom && !agx_strbuf_append(&o.sb, "", 0)) o.oom = true;
    if (st != AGX_OK || o.oom) {
        agx_strbuf_free(&o.sb);
        free(o.spans);
        return st != AGX_OK ? st : agx_error_set(err, AGX_ERR_NOMEM, "out of memory rendering the chat template");
    }
    *out = agx_strbuf_take(&o.sb);
    if (spans) {
        *spans = o.spans;
        *n_spans = o.n_spans;
    } else {
        free(o.spans);
    }
    return AGX_OK;
}

agx_status agx_chat_render_family(agx_chat_family f, const char *tmpl, const char *bos, const char *eos,
                                  const agx_chat_msg *msgs, size_t n, bool gen, char **out, agx_error *err) {
    return render_impl(f, tmpl, bos, eos, msgs, n, gen, out, NULL, NULL, err);
}

static agx_chat_family detect_warn(const char *tmpl) {
    bool known;
    agx_chat_family f = agx_chat_detect(tmpl, &known);
    if (!known)
        agx_log(AGX_LOG_WARN, "%s; rendering the prompt as ChatML (<|im_start|>role ... <|im_end|>)",
                tmpl && *tmpl ? "the model's chat template is not one agx knows"
                              : "the model has no chat template");
    return f;
}

agx_status agx_chat_tokenize(const agx_tokenizer *t, const char *tmpl, const agx_chat_msg *msgs, size_t n,
                             bool add_generation_prompt, char **prompt_out, int32_t **ids, size_t *n_ids,
                             agx_error *err) {
    *ids = NULL;
    *n_ids = 0;
    if (prompt_out) *prompt_out = NULL;
    if (!tmpl) tmpl = agx_tokenizer_chat_template(t);
    char *prompt = NULL;
    size_t *spans = NULL, n_spans = 0;
    agx_status st = render_impl(detect_warn(tmpl), tmpl, agx_tokenizer_bos_text(t), agx_tokenizer_eos_text(t), msgs,
                                n, add_generation_prompt, &prompt, &spans, &n_spans, err);
    if (st != AGX_OK) return st;
    size_t len = strlen(prompt);
    /* BOS only when the template did not write it (as llama.cpp does) */
    const char *bos = agx_tokenizer_bos_text(t);
    bool add_bos = agx_tokenizer_add_bos(t) && !(*bos && strncmp(prompt, bos, strlen(bos)) == 0);
    st = agx_tokenizer_encode_spans(t, prompt, len, add_bos, true, spans, n_spans, ids, n_ids, err);
    free(spans);
    if (st == AGX_OK && prompt_out) *prompt_out = prompt;
    else free(prompt);
    return st;
}

agx_status agx_chat_render(const char *tmpl, const char *bos, const char *eos, const agx_chat_msg *msgs,
                           size_t n, bool gen, char **out, agx_error *err) {
    return render_impl(detect_warn(tmpl), tmpl, bos, eos, msgs, n, gen, out, NULL, NULL, err);
}
