/* ref_logits.h — comparing logits with llama.cpp's reference files (shared by
 * the CPU and CUDA conformance tests): whole-array and per-row cosine, max |diff|,
 * argmax agreement overall and where the reference top1-top2 margin exceeds 2. */
#ifndef AGX_TEST_REF_LOGITS_H
#define AGX_TEST_REF_LOGITS_H

#include <jansson.h>
#include <stdbool.h>
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

/* <ref>/models/manifest.json (NULL when the folder or file is missing: the caller
 * skips loudly); *dir = <ref>/models, which the caller frees. */
json_t *ref_manifest_load(char **dir);

/* One manifest case with its reference data: prompt ids, llama.cpp's greedy
 * tokens and the logits of both (teacher-forced prompt, greedy steps). */
typedef struct ref_case {
    const char *name;   /* points into the manifest */
    bool exact;         /* F32/F16: the tight bands */
    int n_vocab, n_tok, n_new;
    int32_t *ids, *ref_out;
    float *ref, *ref_gen;   /* [n_tok][n_vocab], [n_new][n_vocab] */
    char *gguf;             /* path of the model file */
} ref_case;
/* False (and nothing to free) when a file of the case is missing or malformed. */
bool ref_case_load(const char *dir, json_t *c, ref_case *out);
void ref_case_free(ref_case *rc);

#endif
