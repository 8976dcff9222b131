/* pretokenizer.c — pre-tokenization for byte-level BPE: the Split regexes of
 * each tokenizer family (PCRE2, UTF + UCP + JIT, compiled once per tokenizer),
 * the GPT-2 byte <-> unicode alphabet, and NFC normalization (utf8proc).
 *
 * The HF library runs these patterns with Oniguruma, whose \s is the Unicode
 * White_Space property; PCRE2's \s (UCP) leaves out U+0085, so \s/\S are
 * rewritten to an explicit White_Space class before compiling. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- GPT-2 byte-level alphabet ---- */

static bool bytelevel_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t agx_pretok_byte_to_cp(uint8_t b) {
    if (bytelevel_printable(b)) return b;
    /* the non-printable bytes take 256, 257, ... in byte order */
    uint32_t n = 0;
    for (unsigned i = 0; i < b; i++)
        if (!bytelevel_printable(i)) n++;
    return 256 + n;
}

int agx_pretok_cp_to_byte(uint32_t cp) {
    if (cp < 256) return bytelevel_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;   /* 68 non-printable bytes */
    uint32_t n = cp - 256;
    for (unsigned i = 0; i < 256; i++) {
        if (bytelevel_printable(i)) continue;
        if (n == 0) return (int)i;
        n--;
    }
    return -1;
}

/* ---- patterns ---- */

/* HF tokenizer.json Split patterns (the reference) for the GGUF pre types. */
static const char PAT_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Mistral-Nemo (tekken) tokenizer.json; llama.cpp's "tekken" rewrites the same
 * pattern without \p{Lu}-style classes, PCRE2 takes the original. */
static const char PAT_TEKKEN[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* o200k (GPT-4o, Phi-4): the tekken classes plus contractions and \p{N}{1,3} */
static const char PAT_GPT4O[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const struct {
    const char *pre;
    const char *pattern;
    bool nfc, ignore_merges;
} PRE_TABLE[] = {
    {"qwen2", PAT_QWEN2, true, false},
    {"deepseek-r1-qwen", PAT_QWEN2, true, false},   /* llama.cpp treats it as qwen2 */
    {"llama-bpe", PAT_LLAMA3, false, true},
    {"llama3", PAT_LLAMA3, false, true},
    {"falcon3", PAT_LLAMA3, false, true},
    {"smaug-bpe", PAT_LLAMA3, false, false},
    {"gpt-4o", PAT_GPT4O, false, false},
    {"tekken", PAT_TEKKEN, false, true},
    {"gpt2", PAT_GPT2, false, false},
    {"default", PAT_GPT2, false, false},
};

const char *agx_pretok_pattern_for(const char *pre, bool *nfc, bool *ignore_merges) {
    for (size_t i = 0; i < sizeof PRE_TABLE / sizeof PRE_TABLE[0]; i++) {
        if (pre && strcmp(pre, PRE_TABLE[i].pre) == 0) {
            *nfc = PRE_TABLE[i].nfc;
            *ignore_merges = PRE_TABLE[i].ignore_merges;
            return PRE_TABLE[i].pattern;
        }
    }
    return NULL;
}

/* Unicode White_Space, as Oniguruma's \s. */
static const char WS_ITEMS[] =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

/* Letters and numbers of Unicode 15/16 that PCRE2 10.42 (Unicode 14) does not
 * know but Oniguruma in the HF library does (probed one code point at a time
 * through tokenizers 0.23.2: 9272 letters, 120 numbers). */
static const char L_EXTRA[] =
    "\\x{1C89}-\\x{1C8A}\\x{A7CB}-\\x{A7CD}\\x{A7DA}-\\x{A7DC}\\x{105C0}-\\x{105F3}"
    "\\x{10D4A}-\\x{10D65}\\x{10D6F}-\\x{10D85}\\x{10EC2}-\\x{10EC4}\\x{1123F}-\\x{11240}"
    "\\x{11380}-\\x{11389}\\x{1138B}\\x{1138E}\\x{11390}-\\x{113B5}\\x{113B7}\\x{113D1}"
    "\\x{113D3}\\x{11BC0}-\\x{11BE0}\\x{11F02}\\x{11F04}-\\x{11F10}\\x{11F12}-\\x{11F33}"
    "\\x{1342F}\\x{13441}-\\x{13446}\\x{13460}-\\x{143FA}\\x{16100}-\\x{1611D}"
    "\\x{16D40}-\\x{16D6C}\\x{18CFF}\\x{1B132}\\x{1B155}\\x{1DF25}-\\x{1DF2A}"
    "\\x{1E030}-\\x{1E06D}\\x{1E4D0}-\\x{1E4EB}\\x{1E5D0}-\\x{1E5ED}\\x{1E5F0}\\x{2B739}"
    "\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}";
static const char N_EXTRA[] =
    "\\x{10D40}-\\x{10D49}\\x{116D0}-\\x{116E3}\\x{11BF0}-\\x{11BF9}\\x{11F50}-\\x{11F59}"
    "\\x{16130}-\\x{16139}\\x{16D70}-\\x{16D79}\\x{1CCF0}-\\x{1CCF9}\\x{1D2C0}-\\x{1D2D3}"
    "\\x{1E4F0}-\\x{1E4F9}\\x{1E5F1}-\\x{1E5FA}";

/* Rewrites \s and \S to the White_Space class and widens \p{L} / \p{N} with
 * the newer letters and numbers, outside and inside classes. */
static char *rewrite_pattern(const char *pat, bool wide) {
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    bool in_class = false;
    bool ok = true;
    for (size_t i = 0; pat[i] && ok; i++) {
        char c = pat[i];
        if (c == '\\' && pat[i + 1]) {
            char n = pat[i + 1];
            if (n == 's') {
                if (in_class) ok = agx_strbuf_puts(&sb, WS_ITEMS);
                else ok = agx_strbuf_putc(&sb, '[') && agx_strbuf_puts(&sb, WS_ITEMS) &&
                          agx_strbuf_putc(&sb, ']');
            } else if (wide && n == 'p' && (strncmp(pat + i, "\\p{L}", 5) == 0 || strncmp(pat + i, "\\p{N}", 5) == 0)) {
                const char *extra = pat[i + 3] == 'L' ? L_EXTRA : N_EXTRA;
                ok = (in_class || agx_strbuf_putc(&sb, '[')) && agx_strbuf_append(&sb, pat + i, 5) &&
                     agx_strbuf_puts(&sb, extra) && (in_class || agx_strbuf_putc(&sb, ']'));
                i += 3;
            } else if (n == 'S' && !in_class) {
                ok = agx_strbuf_puts(&sb, "[^") && agx_strbuf_puts(&sb, WS_ITEMS) &&
                     agx_strbuf_putc(&sb, ']');
            } else {
                ok = agx_strbuf_putc(&sb, c) && agx_strbuf_putc(&sb, n);
            }
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            ok = agx_strbuf_putc(&sb, c);
            /* a leading ^ and a leading ] belong to the class */
            if (pat[i + 1] == '^') { ok = ok && agx_strbuf_putc(&sb, '^'); i++; }
            if (pat[i + 1] == ']') { ok = ok && agx_strbuf_putc(&sb, ']'); i++; }
            continue;
        }
        if (in_class && c == ']') in_class = false;
        ok = agx_strbuf_putc(&sb, c);
    }
    if (!ok) {
        agx_strbuf_free(&sb);
        return NULL;
    }
    return agx_strbuf_take(&sb);
}

/* The same letters and numbers as code point ranges, to decide per segment
 * whether the widened pattern is needed (it runs ~3x slower under the JIT). */
static const uint32_t WIDE_CPS[][2] = {
    {0x1C89, 0x1C8A}, {0xA7CB, 0xA7CD}, {0xA7DA, 0xA7DC}, {0x105C0, 0x105F3}, {0x10D40, 0x10D65},
    {0x10D6F, 0x10D85}, {0x10EC2, 0x10EC4}, {0x1123F, 0x11240}, {0x11380, 0x11389}, {0x1138B, 0x1138B},
    {0x1138E, 0x1138E}, {0x11390, 0x113B5}, {0x113B7, 0x113B7}, {0x113D1, 0x113D1}, {0x113D3, 0x113D3},
    {0x116D0, 0x116E3}, {0x11BC0, 0x11BE0}, {0x11BF0, 0x11BF9}, {0x11F02, 0x11F02}, {0x11F04, 0x11F10},
    {0x11F12, 0x11F33}, {0x11F50, 0x11F59}, {0x1342F, 0x1342F}, {0x13441, 0x13446}, {0x13460, 0x143FA},
    {0x16100, 0x1611D}, {0x16130, 0x16139}, {0x16D40, 0x16D6C}, {0x16D70, 0x16D79}, {0x18CFF, 0x18CFF},
    {0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1CCF0, 0x1CCF9}, {0x1D2C0, 0x1D2D3}, {0x1DF25, 0x1DF2A},
    {0x1E030, 0x1E06D}, {0x1E4D0, 0x1E4EB}, {0x1E4F0, 0x1E4F9}, {0x1E5D0, 0x1E5ED}, {0x1E5F0, 0x1E5FA},
    {0x2B739, 0x2B739}, {0x2EBF0, 0x2EE5D}, {0x31350, 0x323AF},
};

static bool cp_is_wide(uint32_t cp) {
    size_t lo = 0, hi = sizeof WIDE_CPS / sizeof WIDE_CPS[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < WIDE_CPS[mid][0]) hi = mid;
        else if (cp > WIDE_CPS[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

/* Does [s, len) contain one of the newer letters/numbers? All are >= U+1C89,
 * i.e. 3- or 4-byte sequences, so most text is rejected by a byte test. */
static bool needs_wide(const uint8_t *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0xE1) continue;
        size_t k = s[i] >= 0xF0 ? 4 : 3;
        if (i + k > len) break;
        uint32_t cp = k == 3 ? ((uint32_t)(s[i] & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F)
                             : ((uint32_t)(s[i] & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                                   ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
        if (cp >= 0x1C89 && cp_is_wide(cp)) return true;
        i += k - 1;
    }
    return false;
}

static agx_status compile_one(const char *pattern, bool wide, pcre2_code **out, agx_error *err) {
    char *pat = rewrite_pattern(pattern, wide);
    if (!pat) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory compiling the pre-tokenizer");
    int ec = 0;
    PCRE2_SIZE eo = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
    free(pat);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return agx_error_set(err, AGX_ERR_TOKENIZER,
                             "pre-tokenizer regex does not compile at offset %zu: %s (pattern %.200s)", (size_t)eo,
                             (const char *)msg, pattern);
    }
    /* JIT is an optimisation: when unavailable the interpreter gives the same matches. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return AGX_OK;
}

agx_status agx_pretok_compile(agx_tokenizer *t, const char *pattern, agx_error *err) {
    pcre2_code *re = NULL, *wide = NULL;
    agx_status st = compile_one(pattern, false, &re, err);
    if (st == AGX_OK && (strstr(pattern, "\\p{L}") || strstr(pattern, "\\p{N}"))) st = compile_one(pattern, true, &wide, err);
    if (st != AGX_OK) {
        if (re) pcre2_code_free(re);
        return st;
    }
    if (t->re) pcre2_code_free(t->re);
    if (t->re_wide) pcre2_code_free(t->re_wide);
    t->re = re;
    t->re_wide = wide;
    return AGX_OK;
}

agx_status agx_pretok_split(const agx_tokenizer *t, pcre2_match_data *md, const char *s,
                            size_t len, agx_pretok_fn fn, void *ctx, agx_error *err) {
    pcre2_jit_stack *js = NULL;
    pcre2_match_context *mc = NULL;
    size_t off = 0;
    agx_status st = AGX_OK;
    const pcre2_code *re = t->re_wide && needs_wide((const uint8_t *)s, len) ? t->re_wide : t->re;
    while (off < len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, off, 0, md, mc);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !js) {
            /* pathological input: give this call a larger JIT stack and retry */
            js = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
            mc = pcre2_match_context_create(NULL);
            if (!js || !mc) {
                st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory in the pre-tokenizer");
                break;
            }
            pcre2_jit_stack_assign(mc, NULL, js);
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (!fn(ctx, s + off, len - off)) st = AGX_ERR_NOMEM;
            break;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = agx_error_set(err, AGX_ERR_TOKENIZER, "pre-tokenizer regex failed at byte %zu: %s",
                               off, (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms > off && !fn(ctx, s + off, ms - off)) { st = AGX_ERR_NOMEM; break; }
        if (me == ms) {
            /* empty match (not produced by the shipped patterns): step one byte */
            me = ms + 1;
            if (!fn(ctx, s + ms, 1)) { st = AGX_ERR_NOMEM; break; }
        } else if (!fn(ctx, s + ms, me - ms)) {
            st = AGX_ERR_NOMEM;
            break;
        }
        off = me;
    }
    if (st == AGX_ERR_NOMEM && err && err->code != AGX_ERR_NOMEM)
        agx_error_set(err, AGX_ERR_NOMEM, "out of memory while tokenizing");
    if (mc) pcre2_match_context_free(mc);
    if (js) pcre2_jit_stack_free(js);
    return st;
}

/* Length of the valid UTF-8 sequence at s (strict: no overlongs, surrogates or
 * values above U+10FFFF), 0 when invalid. */
static size_t utf8_valid_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;
        if (c == 0xED && s[1] >= 0xA0) return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;
        if (c == 0xF4 && s[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

static bool nfc_run(const uint8_t *s, size_t len, agx_strbuf *sb) {
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map(s, (utf8proc_ssize_t)len, &dst, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) return agx_strbuf_append(sb, s, len);   /* cannot happen for validated input */
    bool ok = agx_strbuf_append(sb, dst, (size_t)n);
    free(dst);
    return ok;
}

/* The HF library normalizes with Unicode 9.0 tables (unicode-normalization-
 * alignments 0.1.12); utf8proc has newer ones. Characters assigned after 9.0
 * that are combining (ccc != 0) or take part in canonical decompositions are
 * unassigned there, i.e. inert starters: they are copied unchanged and NFC
 * runs on either side of them separately, as HF does. Generated with Perl's
 * Unicode::UCD (Age > 9.0 and (ccc != 0 or in a canonical decomposition)). */
static const uint32_t POST_UNICODE9_NFC[][2] = {
    {0x07FD, 0x07FD},
    {0x0898, 0x089F},
    {0x08CA, 0x08D3},
    {0x09FE, 0x09FE},
    {0x0C3C, 0x0C3C},
    {0x0D3B, 0x0D3C},
    {0x0EBA, 0x0EBA},
    {0x1715, 0x1715},
    {0x1ABF, 0x1ACE},
    {0x1DF6, 0x1DFA},
    {0xA82C, 0xA82C},
    {0x10D24, 0x10D27},
    {0x10EAB, 0x10EAC},
    {0x10F46, 0x10F50},
    {0x10F82, 0x10F85},
    {0x11070, 0x11070},
    {0x1133B, 0x1133B},
    {0x1145E, 0x1145E},
    {0x11839, 0x1183A},
    {0x11930, 0x11930},
    {0x11935, 0x11935},
    {0x11938, 0x11938},
    {0x1193D, 0x1193E},
    {0x11943, 0x11943},
    {0x119E0, 0x119E0},
    {0x11A34, 0x11A34},
    {0x11A47, 0x11A47},
    {0x11A99, 0x11A99},
    {0x11D42, 0x11D42},
    {0x11D44, 0x11D45},
    {0x11D97, 0x11D97},
    {0x16FF0, 0x16FF1},
    {0x1E130, 0x1E136},
    {0x1E2AE, 0x1E2AE},
    {0x1E2EC, 0x1E2EF},
};

static bool nfc_inert(uint32_t cp) {
    size_t lo = 0, hi = sizeof POST_UNICODE9_NFC / sizeof POST_UNICODE9_NFC[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < POST_UNICODE9_NFC[mid][0]) hi = mid;
        else if (cp > POST_UNICODE9_NFC[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

static uint32_t utf8_cp(const uint8_t *s, size_t k) {
    switch (k) {
    case 1: return s[0];
    case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default:
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
               (s[3] & 0x3F);
    }
}

bool agx_pretok_nfc(const char *str, size_t len, agx_strbuf *sb) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len) {
        /* a run of valid UTF-8 up to an invalid byte or an inert character;
         * all-ASCII runs are already NFC */
        size_t start = i, k = 0;
        bool ascii = true;
        while (i < len) {
            k = utf8_valid_len(s + i, len - i);
            if (k == 0 || (k > 1 && nfc_inert(utf8_cp(s + i, k)))) break;
            if (k > 1) ascii = false;
            i += k;
        }
        if (i > start) {
            bool ok = ascii ? agx_strbuf_append(sb, s + start, i - start) : nfc_run(s + start, i - start, sb);
            if (!ok) return false;
        }
        if (i < len) {   /* the invalid byte or the inert character, copied */
            size_t n = k ? k : 1;
            if (!agx_strbuf_append(sb, s + i, n)) return false;
            i += n;
        }
    }
    if (!sb->data && !agx_strbuf_append(sb, "", 0)) return false;
    return true;
}
