/* device.h — which compute device the native engine runs on. The single place
 * that decides: AGX_DEVICE=auto|cpu|cuda|metal (default auto). auto picks
 * CUDA > Metal > CPU among the backends compiled into this build AND usable at
 * run time; a CUDA build on a machine without a GPU or driver falls back to the
 * CPU in auto mode (one warning line), while an explicit AGX_DEVICE=cuda fails
 * with "Failed to initialize CUDA: <reason>; set AGX_DEVICE=cpu".
 * The info struct (name, memory, compute capability) is what `agx health`,
 * `agx model info` and `agx bench` report. */
#ifndef AGX_DEVICE_H
#define AGX_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agx/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum agx_device_kind {
    AGX_DEVICE_CPU = 0,
    AGX_DEVICE_CUDA = 1,
    AGX_DEVICE_METAL = 2,   /* named by the seed; no Metal backend exists yet (never compiled in) */
    AGX_DEVICE_KIND_COUNT
} agx_device_kind;

/* What AGX_DEVICE asked for. */
typedef enum agx_device_request {
    AGX_DEVICE_REQ_AUTO = 0,
    AGX_DEVICE_REQ_CPU,
    AGX_DEVICE_REQ_CUDA,
    AGX_DEVICE_REQ_METAL
} agx_device_request;

#define AGX_DEVICE_NAME_MAX 128
#define AGX_DEVICE_NOTE_MAX 384

typedef struct agx_device_info {
    agx_device_kind kind;
    char name[AGX_DEVICE_NAME_MAX];   /* "NVIDIA H100 80GB HBM3"; CPU: "cpu (avx512)" */
    uint64_t mem_total, mem_free;     /* device memory in bytes; 0 for the CPU (unknown/shared) */
    int cc_major, cc_minor;           /* CUDA compute capability; 0.0 otherwise */
    int index;                        /* device ordinal (CUDA), 0 otherwise */
    /* Why this device was chosen when it is not the one asked for, e.g. auto
     * falling back to the CPU: "CUDA not usable (no CUDA-capable device is
     * detected); running on the CPU". Empty otherwise. */
    char note[AGX_DEVICE_NOTE_MAX];
} agx_device_info;

/* "cpu" | "cuda" | "metal" ("?" when out of range). */
const char *agx_device_kind_name(agx_device_kind k);
/* True when this build contains the backend (CPU always; CUDA with -DAGX_CUDA=ON). */
bool agx_device_compiled(agx_device_kind k);

/* Parses an AGX_DEVICE value (case-insensitive; NULL or "" = auto).
 * Anything else is an AGX_ERR_CONFIG error listing the accepted values. */
agx_status agx_device_parse(const char *value, agx_device_request *out, agx_error *err);

/* Probes one backend: fills info when it is compiled in and usable now.
 * Errors: AGX_ERR_UNAVAILABLE with the reason (not compiled in, no device, no
 * driver, ...). The CPU probe never fails. */
typedef agx_status (*agx_device_probe_fn)(agx_device_info *info, agx_error *err);
agx_status agx_device_probe(agx_device_kind k, agx_device_info *info, agx_error *err);

/* The backends the selection chooses from: compiled flags + probes. Tests pass
 * their own table to exercise every situation (e.g. a CUDA build without a GPU)
 * in any build; the product uses agx_device_builtin_backends(). */
typedef struct agx_device_backends {
    bool compiled[AGX_DEVICE_KIND_COUNT];
    agx_device_probe_fn probe[AGX_DEVICE_KIND_COUNT];
} agx_device_backends;
agx_device_backends agx_device_builtin_backends(void);

/* Decides the device for `request` (NULL: the AGX_DEVICE environment value).
 *   auto:  first usable of CUDA > Metal > CPU; a compiled-in GPU backend that
 *          fails its probe is reported once as an AGX_LOG_WARN line and in
 *          info->note, and the CPU is used.
 *   cuda:  compiled in and usable, else AGX_ERR_UNAVAILABLE
 *          "Failed to initialize CUDA: <reason>; set AGX_DEVICE=cpu"; in a
 *          build without CUDA, AGX_ERR_CONFIG saying so and how to fall back.
 *   metal: likewise (never compiled in today).
 *   cpu:   always the CPU, no GPU probing at all.
 * A malformed value is AGX_ERR_CONFIG. */
agx_status agx_device_select(const char *request, agx_device_info *out, agx_error *err);
agx_status agx_device_select_from(const agx_device_backends *b, const char *request, agx_device_info *out,
                                  agx_error *err);

/* One line for reports: "cuda:0 NVIDIA H100 80GB HBM3, cc 9.0, 79.1 GiB (78.5 free)" or
 * "cpu (avx512)". Returns buf. */
char *agx_device_describe(const agx_device_info *info, char *buf, size_t n);

/* The info as a JSON object for --json reports (health, model info, bench):
 * {"kind": "cuda", "name": ..., "index": 0, "mem_total": bytes, "mem_free": bytes,
 *  "cc": "9.0" (null off CUDA), "note": "..." (null when empty), "describe": the line above}.
 * A new jansson reference (NULL on out of memory). */
struct json_t;
struct json_t *agx_device_info_json(const agx_device_info *info);

#ifdef __cplusplus
}
#endif
#endif
