/* ref_logits.c — see ref_logits.h. */
#include "ref_logits.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agx/util.h"
#include "agx_test.h"

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

json_t *ref_manifest_load(char **dir) {
    *dir = agx_test_ref_path("models");
    if (!*dir) return NULL;
    char *mpath = agx_sprintf("%s/manifest.json", *dir);
    json_error_t je;
    json_t *man = json_load_file(mpath, 0, &je);
    free(mpath);
    json_t *cases = json_object_get(man, "cases");
    if (!json_is_array(cases) || !json_array_size(cases)) {
        json_decref(man);
        free(*dir);
        *dir = NULL;
        return NULL;
    }
    return man;
}

void ref_case_free(ref_case *rc) {
    free(rc->ids);
    free(rc->ref_out);
    free(rc->ref);
    free(rc->ref_gen);
    free(rc->gguf);
    memset(rc, 0, sizeof *rc);
}

bool ref_case_load(const char *dir, json_t *c, ref_case *out) {
    memset(out, 0, sizeof *out);
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *quant = json_string_value(json_object_get(c, "quant"));
    if (!name || !quant) return false;
    out->name = name;
    out->exact = !strcmp(quant, "F32") || !strcmp(quant, "F16");
    char *jpath = agx_sprintf("%s/%s.json", dir, name);
    json_error_t je;
    json_t *meta = json_load_file(jpath, 0, &je);
    free(jpath);
    if (!meta) return false;
    out->n_vocab = (int)json_integer_value(json_object_get(meta, "n_vocab"));
    out->ids = ref_json_ids(json_object_get(meta, "token_ids"), &out->n_tok);
    out->ref_out = ref_json_ids(json_object_get(json_object_get(meta, "greedy"), "output_ids"), &out->n_new);
    json_decref(meta);
    char *lpath = agx_sprintf("%s/%s.logits.f32", dir, name), *gpath = agx_sprintf("%s/%s.gen.logits.f32", dir, name);
    out->ref = ref_read_f32(lpath, (size_t)out->n_tok * (size_t)out->n_vocab);
    out->ref_gen = ref_read_f32(gpath, (size_t)out->n_new * (size_t)out->n_vocab);
    free(lpath);
    free(gpath);
    out->gguf = agx_sprintf("%s/%s.gguf", dir, name);
    if (out->n_vocab <= 0 || out->n_tok <= 0 || out->n_new <= 0 || !out->ref || !out->ref_gen) {
        ref_case_free(out);
        return false;
    }
    return true;
}
