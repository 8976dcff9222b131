/* fuzz_gguf.c — libFuzzer target for the GGUF reader: any byte string must
 * open cleanly or fail with AGX_ERR_LOAD; on success every getter, array
 * element, tensor and the architecture/hparams loader are exercised. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "agx/arch.h"
#include "agx/gguf.h"

/* The library is built without coverage instrumentation; compiling the reader
 * and the architecture loader into this target gives libFuzzer their edges
 * (the linker then takes these definitions instead of libagx's). */
#include "../../src/engine/arch.c"
#include "../../src/engine/gguf.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    agx_gguf *g = NULL;
    agx_error err;
    agx_status s = agx_gguf_open_memory(data, size, &g, &err);
    if (s != AGX_OK) {
        if (g || (s != AGX_ERR_LOAD && s != AGX_ERR_NOMEM)) abort();
        return 0;
    }
    volatile uint64_t sink = 0;
    for (size_t i = 0; i < agx_gguf_n_kv(g); i++) {
        const agx_gguf_kv *kv = agx_gguf_kv_at(g, i);
        char key[128];
        size_t n = kv->key.len < sizeof key - 1 ? (size_t)kv->key.len : sizeof key - 1;
        for (size_t k = 0; k < n; k++) key[k] = kv->key.ptr[k] ? kv->key.ptr[k] : '?';
        key[n] = '\0';
        uint64_t u;
        int64_t v;
        float f;
        bool b;
        agx_gguf_str str;
        sink += agx_gguf_get_u64(g, key, &u) + agx_gguf_get_i64(g, key, &v) + agx_gguf_get_f32(g, key, &f) +
                agx_gguf_get_bool(g, key, &b) + agx_gguf_get_str(g, key, &str);
        free(agx_gguf_get_strdup(g, key));
        if (kv->type != AGX_GGUF_ARRAY) continue;
        uint64_t lim = kv->arr_len < 64 ? kv->arr_len : 64;
        for (uint64_t k = 0; k < lim; k++) {
            double d;
            agx_gguf_kv sub;
            if (agx_gguf_arr_str(g, kv, kv->arr_len - 1 - k, &str)) sink += str.len ? (uint8_t)str.ptr[str.len - 1] : 0;
            sink += agx_gguf_arr_i64(kv, k, &v) + agx_gguf_arr_f64(kv, k, &d);
            if (agx_gguf_arr_sub(kv, k, &sub)) {
                sink += sub.arr_len;
                if (agx_gguf_arr_str(g, &sub, 0, &str)) sink += str.len;
                if (agx_gguf_arr_i64(&sub, 0, &v)) sink += (uint64_t)v;
            }
        }
    }
    for (size_t i = 0; i < agx_gguf_n_tensors(g); i++) {
        const agx_gguf_tensor *t = agx_gguf_tensor_at(g, i);
        if (t->nbytes) sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    agx_hparams hp;
    sink += agx_hparams_load(g, &hp, &err);
    (void)sink;
    agx_gguf_close(g);
    return 0;
}
