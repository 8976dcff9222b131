/* tokenizer_internal.h — the tokenizer's in-memory form shared by the loaders
 * (tokenizer_gguf.c, tokenizer_json.c), the pre-tokenizer (pretokenizer.c) and
 * the encode/decode core (tokenizer.c). Not a public contract. */
#ifndef AGX_TOKENIZER_INTERNAL_H
#define AGX_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "agx/tokenizer.h"
#include "agx/util.h"

typedef enum { AGX_TOKM_BPE_BYTE = 0, AGX_TOKM_SPM = 1 } agx_tok_model;

/* Open-addressing string -> id map over the token arena. */
typedef struct {
    uint32_t *slots;   /* id + 1, 0 = empty */
    uint32_t mask;
} agx_tok_strmap;

/* (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t *keys;    /* (a << 32 | b) + 1, 0 = empty */
    uint32_t *rank;
    int32_t *merged;
    uint32_t mask;
} agx_tok_pairmap;

/* Byte trie over added/special tokens for leftmost-longest matching. */
typedef struct {
    uint32_t first_child, next_sibling;  /* node indices, 0 = none (0 is the root) */
    int32_t token;                       /* token ending here, -1 none */
    uint8_t byte;
} agx_tok_trie_node;

struct agx_tokenizer {
    agx_tok_model model;
    const char *source;        /* "gguf" | "tokenizer.json" */
    char model_name[16];
    char pre_name[32];

    int32_t n_vocab;
    char *text;                /* arena of token spellings, each NUL-terminated */
    size_t text_used, text_cap;
    uint32_t *text_off, *text_len;
    uint8_t *dec;              /* arena of decoded bytes */
    size_t dec_used, dec_cap;
    uint32_t *dec_off, *dec_len;
    uint8_t *type;             /* agx_token_type */
    uint8_t *special;          /* 1 = control-like: matched only with parse_special */
    uint8_t *strip;            /* added-token lstrip (1) / rstrip (2) from tokenizer.json; NULL when none */
    uint8_t *skip;             /* 1 = dropped by decode's skip_special (json: the "special" flag, as HF) */
    float *score;              /* SPM scores (GGUF); NULL otherwise */

    agx_tok_strmap vocab;
    agx_tok_pairmap merges;    /* empty for GGUF SPM (scores instead) */
    bool have_merges;
    int32_t byte_tok[256];     /* token of each byte: byte-level char or <0xNN>; -1 none */
    uint8_t bl_utf8[256][2];   /* byte-level alphabet: UTF-8 of each byte's character */
    uint8_t bl_len[256];
    int32_t eog[8];            /* end-of-generation tokens */
    int n_eog;
    char *bos_text, *eos_text;

    agx_tok_trie_node *trie;   /* added tokens */
    uint32_t n_trie, cap_trie;
    bool trie_first[256];

    /* pre-tokenization */
    pcre2_code *re;            /* NULL: no split (SPM) */
    pcre2_code *re_wide;       /* same with Unicode 15/16 letters and numbers; NULL if not needed */
    bool nfc;
    bool ignore_merges;
    bool add_space_prefix;     /* SPM: prepend "▁" to each text segment */
    bool byte_fallback;
    bool spm_prefix_first_only;  /* Metaspace prepend_scheme "first": only the text's first segment */
    bool spm_strip_leading_space;
    bool spm_metaspace_decoder;  /* HF Metaspace decoder instead of Strip */
    bool spm_metaspace;          /* Metaspace pre-tokenizer: no prefix when the segment starts with a space */
    bool spm_split;              /* Metaspace split=true: each "▁" starts a new word */

    int32_t bos, eos, eot, pad, unk;
    bool add_bos, add_eos;
    char *chat_template;
    size_t cache_min_len;      /* encode caches pre-tokens for texts at least this long (tests vary it) */
};

/* tokenizer.c */
agx_tokenizer *agx_tok_alloc(int32_t n_vocab);
/* Sets token i's spelling (copied into a growing arena) and type. */
bool agx_tok_set_token(agx_tokenizer *t, int32_t id, const char *s, size_t len, int type);
/* Builds the vocab map, decoded pieces, byte table and the special trie after all
 * tokens are set. Adds merges separately with agx_tok_add_merge (before or after). */
agx_status agx_tok_finish(agx_tokenizer *t, agx_error *err);
/* After bos/eos/eot are known: end-of-generation list and bos/eos text. */
agx_status agx_tok_finish_specials(agx_tokenizer *t, agx_error *err);
bool agx_tok_pairmap_init(agx_tok_pairmap *m, size_t n);
bool agx_tok_add_merge(agx_tokenizer *t, const char *left, size_t llen, const char *right,
                       size_t rlen, uint32_t rank);
bool agx_tok_looks_special(const char *s, size_t len);

/* pretokenizer.c */
/* The Split pattern of a GGUF tokenizer.ggml.pre value (NULL when unknown). */
const char *agx_pretok_pattern_for(const char *pre, bool *nfc, bool *ignore_merges);
agx_status agx_pretok_compile(agx_tokenizer *t, const char *pattern, agx_error *err);
/* Calls fn for each pre-token piece of [s, s+len): regex matches and the gaps
 * between them (HF Split "Isolated"). Invalid UTF-8 never matches and ends up in gaps. */
typedef bool (*agx_pretok_fn)(void *ctx, const char *piece, size_t len);
agx_status agx_pretok_split(const agx_tokenizer *t, pcre2_match_data *md, const char *s,
                            size_t len, agx_pretok_fn fn, void *ctx, agx_error *err);
/* NFC of the valid UTF-8 runs of [s, len); invalid bytes are copied. Appends to sb. */
bool agx_pretok_nfc(const char *s, size_t len, agx_strbuf *sb);

/* gpt2 byte <-> unicode alphabet */
uint32_t agx_pretok_byte_to_cp(uint8_t b);
int agx_pretok_cp_to_byte(uint32_t cp);   /* -1 when not in the alphabet */

#endif
