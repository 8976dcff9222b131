/* model_info.h — a summary of a GGUF model file for `agx model info`: the
 * hyper-parameters, parameter count, tensor types (count and bytes per ggml
 * type), tokenizer kind and chat-template presence, as text or JSON. */
#ifndef AGX_MODEL_INFO_H
#define AGX_MODEL_INFO_H

#include <stdbool.h>
#include <stdint.h>

#include "agx/arch.h"
#include "agx/device.h"
#include "agx/error.h"
#include "agx/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_model_type_stat {
    uint64_t count;   /* tensors of this ggml type */
    uint64_t bytes;   /* their data bytes */
} agx_model_type_stat;

typedef struct agx_model_info {
    char *path;
    agx_hparams hp;
    uint32_t gguf_version;
    uint64_t file_size, alignment, data_offset;
    uint64_t n_kv, n_tensors;
    uint64_t n_params;                    /* elements over all tensors */
    uint64_t tensor_bytes;                /* data bytes over all tensors */
    agx_model_type_stat types[AGX_TYPE_COUNT];
    char *name;                           /* general.name, NULL when absent */
    char *file_type;                      /* from general.file_type ("Q4_K_M"), NULL when absent/unknown */
    char *tokenizer_model;                /* tokenizer.ggml.model ("gpt2", "llama"), NULL when absent */
    char *tokenizer_pre;                  /* tokenizer.ggml.pre, NULL when absent */
    bool has_chat_template;
    char *tokenizer_source;               /* "gguf" or the tokenizer.json path (AGX_TOKENIZER=json) */
    int64_t bos_id, eos_id;               /* -1 when absent */
    /* The device a context would run on here (agx_model_info_set_device; not
     * part of the report until set): the selection, or why it failed. */
    bool has_device;
    agx_device_info device;
    char *device_error;                   /* NULL unless the selection failed */
} agx_model_info;

/* Opens the GGUF, loads and validates the hyper-parameters; fills *out. */
agx_status agx_model_info_load(const char *path, agx_model_info **out, agx_error *err);
void agx_model_info_free(agx_model_info *mi);
/* Adds the device to the report: dev (the selection) or error (its message). */
void agx_model_info_set_device(agx_model_info *mi, const agx_device_info *dev, const char *error);
/* Malloc'ed JSON object (keys documented in docs/gguf.md) / human-readable text. */
char *agx_model_info_json(const agx_model_info *mi);
char *agx_model_info_text(const agx_model_info *mi);

#ifdef __cplusplus
}
#endif
#endif
