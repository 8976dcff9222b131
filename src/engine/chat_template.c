/* chat_template.c — chat template families: detection from the Jinja source
 * and one hand-written renderer per family that reproduces what the family's
 * template renders (transformers: trim_blocks, lstrip_blocks; Python string
 * semantics for strip/trim). Verified byte-exact against the reference
 * renderings (Qwen3, Llama 3, Llama 2) and against jinja2 renderings of the
 * published templates on random conversations (all families; docs/tokenizer.md). */
#include "agx/chat.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Content as a JSON string, as Python's json.dumps(s, ensure_ascii=False). */
static void put_json_c(out_t *o, const char *s) {
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    bool ok = agx_strbuf_putc(&sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++) {
        switch (*p) {
        case '"': ok = agx_strbuf_puts(&sb, "\\\""); break;
        case '\\': ok = agx_strbuf_puts(&sb, "\\\\"); break;
        case '\n': ok = agx_strbuf_puts(&sb, "\\n"); break;
        case '\r': ok = agx_strbuf_puts(&sb, "\\r"); break;
        case '\t': ok = agx_strbuf_puts(&sb, "\\t"); break;
        case '\b': ok = agx_strbuf_puts(&sb, "\\b"); break;
        case '\f': ok = agx_strbuf_puts(&sb, "\\f"); break;
        default:
            ok = *p < 0x20 ? agx_strbuf_printf(&sb, "\\u%04x", *p) : agx_strbuf_putc(&sb, (char)*p);
        }
    }
    ok = ok && agx_strbuf_putc(&sb, '"');
    if (!ok) o->oom = true;
    else puts_c(o, (span){sb.data, sb.len});
    agx_strbuf_free(&sb);
}

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

static void render_llama31(out_t *o, const char *tmpl, const char *bos, const agx_chat_msg *m, size_t n, bool gen) {
    put(o, bos);
    size_t start = 0;
    span sys = {"", 0};
    if (n && role_is(&m[0], "system")) {
        sys = strip_ws(sp(m[0].content));
        start = 1;
    }
    /* date_string: today's date where the template asks strftime_now (3.2,
     * as transformers renders it), else the template default */
    char date[32] = "26 Jul 2024";
    if (tmpl && has(tmpl, "strftime_now")) {
        time_t now = time(NULL);
        struct tm tm;
        if (localtime_r(&now, &tm)) strftime(date, sizeof date, "%d %b %Y", &tm);
    }
    put(o, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: ");
    put(o, date);
    put(o, "\n\n");
    puts_c(o, sys);
    put(o, "<|eot_id|>");
    for (size_t i = start; i < n; i++) {
        if (role_is(&m[i], "tool") || role_is(&m[i], "ipython")) {
            put(o, "<|start_header_id|>ipython<|end_header_id|>\n\n");
            /* the official templates test "is iterable", which a string is,
             * so tool output goes through tojson (json.dumps, ensure_ascii=False) */
            if (!tmpl || has(tmpl, "message.content | tojson")) put_json_c(o, m[i].content);
            else put_c(o, m[i].content);
            put(o, "<|eot_id|>");
        } else {
            llama3_turn(o, m[i].role, sp(m[i].content));
        }
    }
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

/* The [INST] templates differ in spacing, in where the system prompt goes and
 * in how assistant turns are written; the details are read from the template
 * text when there is one (family defaults otherwise). */
typedef struct {
    const char *open, *close;
    int assistant;      /* 0: content, 1: " " + content, 2: " " + content|trim */
    bool sys_first;     /* system prompt into the first user turn, else into the last message if a user turn */
    bool check_roles;   /* the template raises on non-alternating roles */
} mistral_style;

static bool has_q(const char *t, const char *single, const char *dbl) { return has(t, single) || has(t, dbl); }

static mistral_style mistral_style_for(agx_chat_family f, const char *t) {
    mistral_style st = {"[INST] ", "[/INST]", 2, false, true};
    if (f == AGX_CHAT_MISTRAL_V1) st = (mistral_style){" [INST] ", " [/INST]", 1, true, true};
    if (f == AGX_CHAT_MISTRAL_TEKKEN) st = (mistral_style){"[INST]", "[/INST]", 0, false, true};
    if (!t || !*t) return st;
    if (has_q(t, "' [INST] '", "\" [INST] \"")) st.open = " [INST] ";
    else if (has_q(t, "'[INST] '", "\"[INST] \"")) st.open = "[INST] ";
    else if (has_q(t, "'[INST]'", "\"[INST]\"")) st.open = "[INST]";
    if (has_q(t, "' [/INST]'", "\" [/INST]\"")) st.close = " [/INST]";
    else if (has_q(t, "'[/INST]'", "\"[/INST]\"")) st.close = "[/INST]";
    if (has_q(t, "' ' + message['content']|trim", "\" \" + message[\"content\"]|trim")) st.assistant = 2;
    else if (has_q(t, "' ' + message['content'] + eos_token", "\" \" + message[\"content\"] + eos_token")) st.assistant = 1;
    else if (has_q(t, "message['content'] + eos_token", "message[\"content\"] + eos_token")) st.assistant = 0;
    /* templates without system support would raise; agx folds it into the first turn */
    st.sys_first = !has(t, "loop.last and system_message");
    st.check_roles = has(t, "must alternate");
    return st;
}

static agx_status render_mistral(out_t *o, agx_chat_family f, const char *tmpl, const char *bos, const char *eos,
                                 const agx_chat_msg *m, size_t n, agx_error *err) {
    mistral_style st = mistral_style_for(f, tmpl);
    size_t start = 0;
    const char *sys = NULL;
    if (n && role_is(&m[0], "system")) {
        sys = m[0].content;
        start = 1;
    }
    for (size_t i = start; i < n; i++) {
        if (!role_is(&m[i], "user") && !role_is(&m[i], "assistant"))
            return agx_error_set(err, AGX_ERR_VALIDATION,
                                 "Only user and assistant roles are supported, with the exception of an initial "
                                 "optional system message! (message %zu has role '%s')", i, m[i].role);
        if (st.check_roles && role_is(&m[i], "user") != ((i - start) % 2 == 0))
            return agx_error_set(err, AGX_ERR_VALIDATION,
                                 "After the optional system message, conversation roles must alternate "
                                 "user/assistant/user/assistant/... (message %zu has role '%s')", i, m[i].role);
    }
    size_t sys_at = n;
    if (st.sys_first) {
        for (size_t i = start; i < n && sys_at == n; i++)
            if (role_is(&m[i], "user")) sys_at = i;
    } else if (n > start && role_is(&m[n - 1], "user")) {
        sys_at = n - 1;
    }
    put(o, bos);
    for (size_t i = start; i < n; i++) {
        if (role_is(&m[i], "user")) {
            put(o, st.open);
            if (sys && i == sys_at) {
                put_c(o, sys);
                put(o, "\n\n");
            }
            put_c(o, m[i].content);
            put(o, st.close);
        } else {
            if (st.assistant > 0) put(o, " ");
            if (st.assistant == 2) puts_c(o, strip_ws(sp(m[i].content)));
            else put_c(o, m[i].content);
            put(o, eos);
        }
    }
    return AGX_OK;
}

/* ---- Phi-3 ---- */

static void render_phi3(out_t *o, const char *tmpl, const char *bos, const char *eos, const agx_chat_msg *m,
                        size_t n, bool gen) {
    /* Phi-3-medium / first Phi-3-mini release: the user turn opens the
     * assistant's, there is no system role and no separate generation prompt */
    bool user_opens = tmpl && has(tmpl, "'<|end|>' + '\\n' + '<|assistant|>' + '\\n'");
    /* Phi-3.5 drops an empty system message, Phi-3-mini-4k renders it */
    bool skip_empty_system = !tmpl || has(tmpl, "message['role'] == 'system' and message['content']");
    if (tmpl && has(tmpl, "bos_token")) put(o, bos);
    for (size_t i = 0; i < n; i++) {
        if (user_opens) {
            if (role_is(&m[i], "user")) {
                put(o, "<|user|>\n");
                put_c(o, m[i].content);
                put(o, "<|end|>\n<|assistant|>\n");
            } else if (role_is(&m[i], "assistant")) {
                put_c(o, m[i].content);
                put(o, "<|end|>\n");
            }
            continue;
        }
        const char *tag = role_is(&m[i], "system") ? "<|system|>\n"
                          : role_is(&m[i], "user") ? "<|user|>\n"
                          : role_is(&m[i], "assistant") ? "<|assistant|>\n" : NULL;
        if (!tag || (skip_empty_system && role_is(&m[i], "system") && !*m[i].content)) continue;
        put(o, tag);
        put_c(o, m[i].content);
        put(o, "<|end|>\n");
    }
    if (!user_opens) put(o, gen ? "<|assistant|>\n" : eos);
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
    case AGX_CHAT_LLAMA31: render_llama31(&o, tmpl, bos, msgs, n, gen); break;
    case AGX_CHAT_LLAMA2: st = render_llama2(&o, bos, eos, msgs, n, err); break;
    case AGX_CHAT_MISTRAL_V1:
    case AGX_CHAT_MISTRAL_V3:
    case AGX_CHAT_MISTRAL_TEKKEN: st = render_mistral(&o, f, tmpl, bos, eos, msgs, n, err); break;
    case AGX_CHAT_PHI3: render_phi3(&o, tmpl, bos, eos, msgs, n, gen); break;
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
