/* sampler.c — token sampling (see sampler.h). Order of operations: allowed-mask,
 * repetition penalty, then greedy argmax or temperature -> top-k -> top-p ->
 * min-p -> draw. Truncation never sorts the whole vocab: top-k quick-selects,
 * top-p buckets the logits and sorts only the boundary bucket. */
#include "agx/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agx/util.h"

enum { TOPP_BUCKETS = 4096 };
#define TOPP_RANGE 64.0f   /* logit span bucketed for top-p; below it one overflow bucket */

typedef struct cand {
    int32_t id;
    float logit;
    float p;
    int32_t bucket;   /* top-p histogram bucket */
} cand;

struct agx_sampler {
    agx_sampler_params p;
    uint64_t seed;
    uint64_t rng[4];   /* xoshiro256** state */
    int32_t *hist;     /* ring of the last repeat_last_n accepted tokens */
    int hist_len, hist_pos;
    cand *cands;
    float *work;       /* logits after mask and penalties */
    int32_t cap;
    double *bucket_mass;
};

agx_sampler_params agx_sampler_default_params(void) {
    agx_sampler_params p = {.temperature = 0.7f, .top_k = 0, .top_p = 0.9f, .min_p = 0.0f,
                            .repeat_penalty = 1.1f, .repeat_last_n = 64,
                            .seed = AGX_SAMPLER_SEED_RANDOM};
    return p;
}

agx_status agx_sampler_params_from_env(agx_sampler_params *out, agx_error *err) {
    agx_sampler_params p = agx_sampler_default_params();
    double t, tp;
    long seed;
    agx_status st;
    if ((st = agx_env_double("AGX_CANDLE_TEMPERATURE", p.temperature, &t, err)) != AGX_OK) return st;
    if ((st = agx_env_double("AGX_CANDLE_TOP_P", p.top_p, &tp, err)) != AGX_OK) return st;
    if ((st = agx_env_long("AGX_CANDLE_SEED", -1, &seed, err)) != AGX_OK) return st;
    if (t < 0 || !isfinite(t))
        return agx_error_set(err, AGX_ERR_CONFIG, "AGX_CANDLE_TEMPERATURE must be >= 0 (got %g)", t);
    if (!(tp > 0 && tp <= 1))
        return agx_error_set(err, AGX_ERR_CONFIG, "AGX_CANDLE_TOP_P must be in (0, 1] (got %g)", tp);
    p.temperature = (float)t;
    p.top_p = (float)tp;
    if (seed >= 0) p.seed = (uint64_t)seed;
    *out = p;
    return AGX_OK;
}

/* ---- RNG: splitmix64 seeding + xoshiro256** ---- */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rng_next(uint64_t s[4]) {
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

void agx_sampler_reset(agx_sampler *s) {
    uint64_t x = s->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    s->hist_len = s->hist_pos = 0;
}

agx_status agx_sampler_create(const agx_sampler_params *p, agx_sampler **out, agx_error *err) {
    *out = NULL;
    agx_sampler_params d = agx_sampler_default_params();
    if (!p) p = &d;
    if (!(p->temperature >= 0) || !(p->top_p > 0) || !(p->min_p >= 0) || !(p->repeat_penalty > 0) ||
        p->repeat_last_n < 0 || p->repeat_last_n > 1 << 20)
        return agx_error_set(err, AGX_ERR_CONFIG,
                             "invalid sampler settings (temperature %g, top_p %g, min_p %g, repeat "
                             "penalty %g, last_n %d): temperature/min_p must be >= 0, top_p and the "
                             "penalty > 0",
                             p->temperature, p->top_p, p->min_p, p->repeat_penalty, p->repeat_last_n);
    agx_sampler *s = calloc(1, sizeof *s);
    if (!s) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory creating the sampler");
    s->bucket_mass = malloc(sizeof(double) * TOPP_BUCKETS);
    if (!s->bucket_mass) {
        free(s);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory creating the sampler");
    }
    s->p = *p;
    if (p->repeat_last_n > 0) {
        s->hist = malloc(sizeof(int32_t) * (size_t)p->repeat_last_n);
        if (!s->hist) {
            free(s);
            return agx_error_set(err, AGX_ERR_NOMEM, "out of memory creating the sampler");
        }
    }
    if (p->seed == AGX_SAMPLER_SEED_RANDOM) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        s->seed = splitmix64(&x) & 0x7fffffffffffffffull;
    } else {
        s->seed = p->seed;
    }
    agx_sampler_reset(s);
    *out = s;
    return AGX_OK;
}

void agx_sampler_free(agx_sampler *s) {
    if (!s) return;
    free(s->hist);
    free(s->cands);
    free(s->work);
    free(s->bucket_mass);
    free(s);
}

uint64_t agx_sampler_seed(const agx_sampler *s) { return s->seed; }

void agx_sampler_accept(agx_sampler *s, int32_t token) {
    if (s->p.repeat_last_n <= 0) return;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->hist_len < s->p.repeat_last_n) s->hist_len++;
}

/* higher logit first; equal logits: lower id first (deterministic ties) */
static int cand_before(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}
static int cand_cmp(const void *x, const void *y) {
    const cand *a = x, *b = y;
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}
/* Moves the k best candidates to the front (unordered), Hoare-style quickselect. */
static void select_top(cand *c, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        cand pivot = c[lo + (hi - lo) / 2];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (cand_before(&c[i], &pivot)) i++;
            while (cand_before(&pivot, &c[j])) j--;
            if (i <= j) {
                cand t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            return;
    }
}

/* Top-p without a full sort: candidates are bucketed by logit distance from
 * the max (buckets are monotone in probability), the buckets' masses walked
 * from the top, and only the bucket where the cumulative mass crosses top_p
 * is sorted. Keeps exactly the set a full sort would; returns how many, moved
 * to the front of c. */

static int32_t top_p_unsorted(agx_sampler *s, cand *c, int32_t n, float maxl, float top_p) {
    double *mass = s->bucket_mass;
    memset(mass, 0, sizeof(double) * TOPP_BUCKETS);
    const float scale = (float)TOPP_BUCKETS / TOPP_RANGE;
    for (int32_t i = 0; i < n; i++) {
        float d = (maxl - c[i].logit) * scale;
        int b = d < (float)(TOPP_BUCKETS - 1) ? (int)d : TOPP_BUCKETS - 1;
        c[i].bucket = b;
        mass[b] += c[i].p;
    }
    double cum = 0.0;
    int bstar = 0;
    for (; bstar < TOPP_BUCKETS; bstar++) {
        if (cum + mass[bstar] >= top_p) break;
        cum += mass[bstar];
    }
    if (bstar == TOPP_BUCKETS) return n;   /* rounding: the whole mass is below top_p */
    /* buckets above b* to the front, then b*'s members, sorted */
    int32_t front = 0;
    for (int32_t i = 0; i < n; i++)
        if (c[i].bucket < bstar) {
            cand t = c[front];
            c[front++] = c[i];
            c[i] = t;
        }
    int32_t mid = front;
    for (int32_t i = front; i < n; i++)
        if (c[i].bucket == bstar) {
            cand t = c[mid];
            c[mid++] = c[i];
            c[i] = t;
        }
    qsort(c + front, (size_t)(mid - front), sizeof(cand), cand_cmp);
    int32_t keep = front;
    while (keep < mid) {
        cum += c[keep++].p;
        if (cum >= top_p) break;
    }
    return keep;
}

int32_t agx_sampler_sample(agx_sampler *s, const float *logits, int32_t n_vocab, const uint8_t *allowed) {
    if (n_vocab <= 0) return -1;
    if (s->cap < n_vocab) {
        cand *c = realloc(s->cands, sizeof(cand) * (size_t)n_vocab);
        if (!c) return -1;
        s->cands = c;
        float *w = realloc(s->work, sizeof(float) * (size_t)n_vocab);
        if (!w) return -1;
        s->work = w;
        s->cap = n_vocab;
    }
    /* working copy; excluded tokens (mask, NaN) become NaN */
    float *w = s->work;
    memcpy(w, logits, sizeof(float) * (size_t)n_vocab);
    if (allowed)
        for (int32_t i = 0; i < n_vocab; i++)
            if (!allowed[i]) w[i] = NAN;

    /* repetition penalty (CTRL-style, as llama.cpp/candle): each distinct recent
     * token once; positive logits divided, negative multiplied */
    if (s->p.repeat_penalty != 1.0f)
        for (int h = 0; h < s->hist_len; h++) {
            const int32_t tok = s->hist[h];
            int dup = 0;
            for (int e = 0; e < h && !dup; e++) dup = s->hist[e] == tok;
            if (dup || tok < 0 || tok >= n_vocab || isnan(w[tok])) continue;
            w[tok] = w[tok] > 0 ? w[tok] / s->p.repeat_penalty : w[tok] * s->p.repeat_penalty;
        }

    if (s->p.temperature <= 0.0f) {   /* greedy: first (lowest id) maximum */
        int32_t best = -1;
        float bv = 0.0f;
        for (int32_t i = 0; i < n_vocab; i++) {
            const float v = w[i];
            if (isnan(v)) continue;
            if (best < 0 || v > bv) best = i, bv = v;
        }
        return best;
    }

    /* temperature, then probabilities over every allowed token */
    const float inv_t = 1.0f / s->p.temperature;
    cand *c = s->cands;
    int32_t n = 0;
    float maxl = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++) {
        if (isnan(w[i])) continue;
        const float z = w[i] * inv_t;
        c[n].id = i;
        c[n].logit = z;
        n++;
        if (z > maxl) maxl = z;
    }
    if (n == 0) return -1;
    if (maxl == -INFINITY) return c[0].id;   /* every allowed logit is -inf: the first allowed */
    double part[4] = {0, 0, 0, 0};   /* independent chains: the sum is latency-bound otherwise */
    for (int32_t i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - maxl);
        part[i & 3] += c[i].p;
    }
    const double sum = (part[0] + part[1]) + (part[2] + part[3]);
    const float inv_sum = (float)(1.0 / sum);
    for (int32_t i = 0; i < n; i++) c[i].p *= inv_sum;
    const float p_max = inv_sum;   /* exp(0) / sum */

    int32_t keep = n;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        /* top-k: the k best, sorted; top-p then walks them in order */
        keep = s->p.top_k;
        select_top(c, n, keep);
        qsort(c, (size_t)keep, sizeof(cand), cand_cmp);
        if (s->p.top_p < 1.0f) {
            double cum = 0.0;
            for (int32_t i = 0; i < keep; i++) {
                cum += c[i].p;
                if (cum >= s->p.top_p) {
                    keep = i + 1;
                    break;
                }
            }
        }
    } else if (s->p.top_p < 1.0f) {
        keep = top_p_unsorted(s, c, n, maxl, s->p.top_p);
    }
    if (s->p.min_p > 0.0f) {   /* keep p >= min_p * p_max (order preserved) */
        const float thr = s->p.min_p * p_max;
        int32_t k = 0;
        for (int32_t i = 0; i < keep; i++)
            if (c[i].p >= thr) c[k++] = c[i];
        keep = k > 0 ? k : 1;
    }

    double total = 0.0;
    for (int32_t i = 0; i < keep; i++) total += c[i].p;
    const double r = rng_uniform(s->rng) * total;
    double acc = 0.0;
    for (int32_t i = 0; i < keep; i++) {
        acc += c[i].p;
        if (r < acc) return c[i].id;
    }
    return c[keep - 1].id;
}
