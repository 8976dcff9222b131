/* device.c — device selection for the native engine (AGX_DEVICE) and the
 * device-info line reported by health / model info / bench. This file is the
 * only place that decides between the CPU and a GPU backend; the forward pass
 * asks it once per context (see docs/cuda.md, "Hooking into the model"). */
#include "agx/device.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "agx/quant.h"
#include "agx/util.h"
#ifdef AGX_HAVE_CUDA
#include "engine/cuda/agx_cuda.h"
#endif

static const char *const k_kind_names[AGX_DEVICE_KIND_COUNT] = {"cpu", "cuda", "metal"};
/* Display names for messages ("Failed to initialize CUDA"). */
static const char *const k_kind_titles[AGX_DEVICE_KIND_COUNT] = {"the CPU", "CUDA", "Metal"};

const char *agx_device_kind_name(agx_device_kind k) {
    return (unsigned)k < AGX_DEVICE_KIND_COUNT ? k_kind_names[k] : "?";
}

bool agx_device_compiled(agx_device_kind k) {
    switch (k) {
    case AGX_DEVICE_CPU: return true;
#ifdef AGX_HAVE_CUDA
    case AGX_DEVICE_CUDA: return true;
#endif
    default: return false;
    }
}

agx_status agx_device_parse(const char *value, agx_device_request *out, agx_error *err) {
    static const struct { const char *name; agx_device_request req; } k_values[] = {
        {"auto", AGX_DEVICE_REQ_AUTO}, {"cpu", AGX_DEVICE_REQ_CPU},
        {"cuda", AGX_DEVICE_REQ_CUDA}, {"metal", AGX_DEVICE_REQ_METAL}};
    *out = AGX_DEVICE_REQ_AUTO;
    if (!value || !*value) return AGX_OK;
    for (size_t i = 0; i < sizeof k_values / sizeof k_values[0]; i++)
        if (!strcasecmp(value, k_values[i].name)) {
            *out = k_values[i].req;
            return AGX_OK;
        }
    return agx_error_set(err, AGX_ERR_CONFIG, "AGX_DEVICE=%.64s is not one of auto, cpu, cuda, metal", value);
}

static agx_status probe_cpu(agx_device_info *info, agx_error *err) {
    (void)err;
    memset(info, 0, sizeof *info);
    info->kind = AGX_DEVICE_CPU;
    snprintf(info->name, sizeof info->name, "cpu (%s)", agx_cpu_isa_name());
    return AGX_OK;
}

static agx_status probe_not_compiled(agx_device_kind k, agx_error *err) {
    return agx_error_set(err, AGX_ERR_UNAVAILABLE, "this agx was built without %s support", k_kind_titles[k]);
}

static agx_status probe_cuda(agx_device_info *info, agx_error *err) {
#ifdef AGX_HAVE_CUDA
    memset(info, 0, sizeof *info);
    info->kind = AGX_DEVICE_CUDA;
    return agx_cuda_probe(info, err);
#else
    (void)info;
    return probe_not_compiled(AGX_DEVICE_CUDA, err);
#endif
}

static agx_status probe_metal(agx_device_info *info, agx_error *err) {
    (void)info;
    return probe_not_compiled(AGX_DEVICE_METAL, err);
}

agx_device_backends agx_device_builtin_backends(void) {
    agx_device_backends b = {.probe = {probe_cpu, probe_cuda, probe_metal}};
    for (int k = 0; k < AGX_DEVICE_KIND_COUNT; k++) b.compiled[k] = agx_device_compiled((agx_device_kind)k);
    return b;
}

agx_status agx_device_probe(agx_device_kind k, agx_device_info *info, agx_error *err) {
    if ((unsigned)k >= AGX_DEVICE_KIND_COUNT)
        return agx_error_set(err, AGX_ERR_CONFIG, "unknown device kind %d", (int)k);
    const agx_device_backends b = agx_device_builtin_backends();
    return b.probe[k](info, err);
}

/* An explicitly requested GPU backend that cannot be used. */
static agx_status explicit_failure(const agx_device_backends *b, agx_device_kind k, const char *reason,
                                   agx_error *err) {
    /* not compiled in: a configuration error (exit 3, "feature not built");
     * compiled but not usable here: the device is unavailable (exit 5) */
    if (!b->compiled[k])
        return agx_error_set(err, AGX_ERR_CONFIG,
                             "AGX_DEVICE=%s: this agx was built without %s support%s; set AGX_DEVICE=cpu "
                             "(or auto) to run on the CPU",
                             k_kind_names[k], k_kind_titles[k],
                             k == AGX_DEVICE_CUDA ? " (rebuild with -DAGX_CUDA=ON and the CUDA toolkit)" : "");
    return agx_error_set(err, AGX_ERR_UNAVAILABLE, "Failed to initialize %s: %s; set AGX_DEVICE=cpu",
                         k_kind_titles[k], reason);
}

agx_status agx_device_select_from(const agx_device_backends *b, const char *request, agx_device_info *out,
                                  agx_error *err) {
    agx_device_request req;
    agx_status st = agx_device_parse(request, &req, err);
    if (st != AGX_OK) return st;
    memset(out, 0, sizeof *out);
    agx_error perr = {0};
    if (req == AGX_DEVICE_REQ_CUDA || req == AGX_DEVICE_REQ_METAL) {
        const agx_device_kind k = req == AGX_DEVICE_REQ_CUDA ? AGX_DEVICE_CUDA : AGX_DEVICE_METAL;
        if (!b->compiled[k]) return explicit_failure(b, k, "", err);
        if (b->probe[k](out, &perr) != AGX_OK) return explicit_failure(b, k, perr.message, err);
        out->kind = k;
        return AGX_OK;
    }
    if (req == AGX_DEVICE_REQ_AUTO) {
        /* CUDA > Metal; the first compiled-in backend that fails is the one reported */
        static const agx_device_kind k_order[] = {AGX_DEVICE_CUDA, AGX_DEVICE_METAL};
        char why[AGX_DEVICE_NOTE_MAX] = "";
        for (size_t i = 0; i < sizeof k_order / sizeof k_order[0]; i++) {
            const agx_device_kind k = k_order[i];
            if (!b->compiled[k]) continue;
            agx_device_info info;
            memset(&info, 0, sizeof info);
            if (b->probe[k](&info, &perr) == AGX_OK) {
                *out = info;
                out->kind = k;
                return AGX_OK;
            }
            if (!why[0])
                snprintf(why, sizeof why, "%s not usable (%.300s); running on the CPU", k_kind_titles[k],
                         perr.message);
        }
        st = b->probe[AGX_DEVICE_CPU](out, err);
        if (st != AGX_OK) return st;
        out->kind = AGX_DEVICE_CPU;
        if (why[0]) {
            snprintf(out->note, sizeof out->note, "%s", why);
            agx_log(AGX_LOG_WARN, "%s (set AGX_DEVICE=cpu to skip the GPU check)", why);
        }
        return AGX_OK;
    }
    st = b->probe[AGX_DEVICE_CPU](out, err);
    out->kind = AGX_DEVICE_CPU;
    return st;
}

agx_status agx_device_select(const char *request, agx_device_info *out, agx_error *err) {
    const agx_device_backends b = agx_device_builtin_backends();
    return agx_device_select_from(&b, request ? request : agx_env("AGX_DEVICE"), out, err);
}

char *agx_device_describe(const agx_device_info *info, char *buf, size_t n) {
    if (!n) return buf;
    if (info->kind == AGX_DEVICE_CPU) {
        snprintf(buf, n, "%s", info->name[0] ? info->name : "cpu");
        return buf;
    }
    const double gib = 1024.0 * 1024.0 * 1024.0;
    snprintf(buf, n, "%s:%d %s, cc %d.%d, %.1f GiB (%.1f free)", agx_device_kind_name(info->kind), info->index,
             info->name, info->cc_major, info->cc_minor, (double)info->mem_total / gib,
             (double)info->mem_free / gib);
    return buf;
}

/* A JSON string of text from a driver or a message: bytes outside printable
 * ASCII become '?', so that the object is never refused as invalid UTF-8. */
static json_t *ascii_string(const char *s) {
    char buf[AGX_DEVICE_NOTE_MAX + AGX_DEVICE_NAME_MAX];
    size_t n = 0;
    for (; s[n] && n + 1 < sizeof buf; n++) buf[n] = (unsigned char)s[n] >= 0x20 && (unsigned char)s[n] < 0x7f ? s[n] : '?';
    buf[n] = '\0';
    return json_string(buf);
}

json_t *agx_device_info_json(const agx_device_info *info) {
    char line[512], cc[32];
    snprintf(cc, sizeof cc, "%d.%d", info->cc_major, info->cc_minor);
    agx_device_describe(info, line, sizeof line);
    return json_pack("{s:s, s:o, s:i, s:I, s:I, s:o, s:o, s:o}", "kind", agx_device_kind_name(info->kind), "name",
                     ascii_string(info->name), "index", info->index, "mem_total", (json_int_t)info->mem_total,
                     "mem_free", (json_int_t)info->mem_free, "cc",
                     info->kind == AGX_DEVICE_CUDA ? json_string(cc) : json_null(), "note",
                     info->note[0] ? ascii_string(info->note) : json_null(), "describe", ascii_string(line));
}
