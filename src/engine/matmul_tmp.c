/* matmul_tmp.c — TEMPORARY weak stand-in for threadpool.h (serial "pool",
 * scalar agx_matmul through the type traits) so the forward pass can be tested
 * before w/quant's thread pool lands. Every symbol is weak: the real
 * definitions win when linked. Delete once w/quant's threadpool is merged. */
#include <stdlib.h>

#include "agx/quant.h"
#include "agx/threadpool.h"

struct agx_threadpool {
    int n;
};

__attribute__((weak)) agx_status agx_threadpool_create(int n_threads, agx_threadpool **out, agx_error *err) {
    *out = malloc(sizeof **out);
    if (!*out) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    (*out)->n = n_threads > 0 ? n_threads : 1;
    return AGX_OK;
}
__attribute__((weak)) void agx_threadpool_free(agx_threadpool *tp) { free(tp); }
__attribute__((weak)) int agx_threadpool_n_threads(const agx_threadpool *tp) { return tp->n; }
__attribute__((weak)) void agx_threadpool_run(agx_threadpool *tp, void (*fn)(int, int, void *), void *arg) {
    for (int i = 0; i < tp->n; i++) fn(i, tp->n, arg);
}
__attribute__((weak)) void agx_matmul(agx_threadpool *tp, uint32_t wtype, const void *w, int64_t n_rows,
                                      int64_t n_cols, const float *x, int64_t n_tok, float *y) {
    (void)tp;
    const agx_type_traits *t = agx_type_traits_get(wtype);
    const agx_type_traits *vt = agx_type_traits_get(t->vec_dot_type);
    const size_t rs = agx_type_row_size(wtype, n_cols), xs = agx_type_row_size(t->vec_dot_type, n_cols);
    void *q = malloc(xs);
    for (int64_t i = 0; i < n_tok; i++) {
        vt->from_float(x + i * n_cols, q, n_cols);
        for (int64_t r = 0; r < n_rows; r++) t->vec_dot((int)n_cols, y + i * n_rows + r, (const char *)w + r * rs, q);
    }
    free(q);
}
