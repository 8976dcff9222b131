/* ref_logits.h — comparing logits with llama.cpp's reference files (shared by
 * the CPU and CUDA conformance tests): whole-array and per-row cosine, max |diff|,
 * argmax agreement overall and where the reference top1-top2 margin exceeds 2. */
#ifndef AGX_TEST_REF_LOGITS_H
#define AGX_TEST_REF_LOGITS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ref_figures {
    double cos, min_row_cos, max_abs;
    int top1_same, rows, margin_rows, margin_same;
} ref_figures;

/* Reads exactly n little-endian floats, NULL when the file is missing or of another size. */
float *ref_read_f32(const char *path, size_t n);
int ref_argmax(const float *x, int n);
/* top1 - top2 of a row */
double ref_margin(const float *x, int n);
ref_figures ref_compare(const float *ours, const float *ref, int rows, int n_vocab);
/* A JSON array of token ids as a malloc'ed int32 array. */
int32_t *ref_json_ids(json_t *arr, int *n);

#endif
