/* chat.h — chat templates: detect the family of a model's Jinja chat template
 * (tokenizer.chat_template) and render system / user / assistant messages
 * byte-exact with what transformers' apply_chat_template produces for it.
 * Hand-written renderers per family; no Jinja interpreter. */
#ifndef AGX_CHAT_H
#define AGX_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "agx/error.h"
#include "agx/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum agx_chat_family {
    AGX_CHAT_CHATML = 0,      /* <|im_start|>role\n...<|im_end|>\n (Qwen2/2.5: default system prompt read from the template) */
    AGX_CHAT_QWEN3,           /* ChatML + Qwen3 <think> handling of assistant turns */
    AGX_CHAT_LLAMA3,          /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    AGX_CHAT_LLAMA31,         /* Llama 3.1+: system header with "Cutting Knowledge Date" */
    AGX_CHAT_LLAMA2,          /* <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] */
    AGX_CHAT_MISTRAL_V1,      /* <s>[INST] ... [/INST] (Mistral 7B v0.1 style) */
    AGX_CHAT_MISTRAL_V3,      /* <s>[INST] ...[/INST] (v0.3) */
    AGX_CHAT_MISTRAL_TEKKEN,  /* <s>[INST]...[/INST] (Mistral-Nemo, v3-tekken) */
    AGX_CHAT_PHI3,            /* <|user|>\n...<|end|>\n<|assistant|>\n */
    AGX_CHAT_FAMILY_COUNT
} agx_chat_family;

typedef struct agx_chat_msg {
    const char *role;         /* "system" | "user" | "assistant" (| "tool" for ChatML/Qwen3) */
    const char *content;
} agx_chat_msg;

/* Family of a Jinja template source. *known is false when nothing matched
 * (the result is then AGX_CHAT_CHATML). NULL/empty source: ChatML, unknown. */
agx_chat_family agx_chat_detect(const char *template_source, bool *known);
/* "chatml", "qwen3", "llama3", "llama3.1", "llama2", "mistral-v1", "mistral-v3",
 * "mistral-v3-tekken", "phi3" */
const char *agx_chat_family_name(agx_chat_family f);
/* Family from a name above (for --chat-template-family style options); -1 if none. */
int agx_chat_family_from_name(const char *name);

/* Renders messages with the template's family. template_source may be NULL
 * (ChatML). An unknown template falls back to ChatML and logs a warning.
 * bos/eos: the literal bos_token/eos_token texts ("" when the model has none).
 * *out is malloc'ed, NUL-terminated. Fails (AGX_ERR_VALIDATION) where the
 * template itself raises (e.g. Llama 2 roles not alternating user/assistant). */
agx_status agx_chat_render(const char *template_source, const char *bos, const char *eos,
                           const agx_chat_msg *msgs, size_t n, bool add_generation_prompt,
                           char **out, agx_error *err);
/* Same with an explicit family (template_source still supplies details such as
 * Qwen2's default system prompt; may be NULL). */
agx_status agx_chat_render_family(agx_chat_family family, const char *template_source,
                                  const char *bos, const char *eos, const agx_chat_msg *msgs,
                                  size_t n, bool add_generation_prompt, char **out, agx_error *err);

/* Renders with the tokenizer's template (tmpl NULL) or tmpl, and encodes the
 * prompt for generation: special tokens written by the template are parsed,
 * those inside message contents are not (a user cannot inject <|im_start|>);
 * otherwise identical to encoding the whole prompt with parse_special. BOS is
 * added when the model adds one and the template did not write it.
 * *prompt (optional, may be NULL) receives the rendered text; caller frees both. */
agx_status agx_chat_tokenize(const agx_tokenizer *t, const char *tmpl, const agx_chat_msg *msgs, size_t n,
                             bool add_generation_prompt, char **prompt, int32_t **ids, size_t *n_ids,
                             agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
