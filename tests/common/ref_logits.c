/* ref_logits.c — see ref_logits.h. */
#include "ref_logits.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agx/util.h"

float *ref_read_f32(const char *path, size_t n) {
    char *data = NULL;
    size_t len = 0;
    agx_error err;
    if (agx_file_read_all(path, 0, &data, &len, &err) != AGX_OK) return NULL;
    if (len != n * sizeof(float)) {
        free(data);
        return NULL;
    }
    float *f = malloc(len);
    memcpy(f, data, len);
    free(data);
    return f;
}

int ref_argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}
double ref_margin(const float *x, int n) {
    int b = ref_argmax(x, n);
    double second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != b && x[i] > second) second = x[i];
    return x[b] - second;
}

ref_figures ref_compare(const float *ours, const float *ref, int rows, int n_vocab) {
    ref_figures f = {0};
    double dot = 0, na = 0, nb = 0;
    f.min_row_cos = 1.0;
    f.rows = rows;
    for (int r = 0; r < rows; r++) {
        const float *a = ours + (size_t)r * n_vocab, *b = ref + (size_t)r * n_vocab;
        double d = 0, x = 0, y = 0;
        for (int i = 0; i < n_vocab; i++) {
            d += (double)a[i] * b[i];
            x += (double)a[i] * a[i];
            y += (double)b[i] * b[i];
            double diff = fabs((double)a[i] - b[i]);
            if (diff > f.max_abs || isnan(diff)) f.max_abs = isnan(diff) ? INFINITY : diff;
        }
        dot += d, na += x, nb += y;
        double c = d / (sqrt(x) * sqrt(y) + 1e-30);
        if (c < f.min_row_cos || isnan(c)) f.min_row_cos = isnan(c) ? -1 : c;
        const bool same = ref_argmax(a, n_vocab) == ref_argmax(b, n_vocab);
        f.top1_same += same;
        if (ref_margin(b, n_vocab) > 2.0) {
            f.margin_rows++;
            f.margin_same += same;
        }
    }
    f.cos = dot / (sqrt(na) * sqrt(nb) + 1e-30);
    return f;
}

int32_t *ref_json_ids(json_t *arr, int *n) {
    *n = (int)json_array_size(arr);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, (size_t)i));
    return ids;
}
