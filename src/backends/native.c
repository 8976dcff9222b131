/* native.c — the native backend (AGX_BACKEND=native, alias candle): plans from a
 * local GGUF model through the constrained generation loop (src/engine/
 * generate.c). Owns the seed's configuration and troubleshooting messages, the
 * plan pipeline (prompt -> schema grammar -> parse -> normalize -> validate,
 * with refused arguments removed), the health report and the grammar bench. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agx/buffer.h"
#include "agx/device.h"
#include "agx/grammar.h"
#include "agx/native.h"
#include "agx/util.h"

#define DEFAULT_MAX_TASKS 20

typedef struct native_backend {
    agx_backend base;
    agx_model_role role;
    char *path;
    char *name;          /* file name, for metadata */
    char *device;        /* AGX_DEVICE as asked ("auto", "cpu", "cuda", "metal"); the device used is the context's */
    char *cache_dir;     /* prompt cache (AGX_PROMPT_CACHE), NULL = off */
    agx_native_params params;
    agx_gen_options gen;
    agx_native_engine *engine;
    agx_gen_stats last;
    bool have_last;
} native_backend;

static const char *role_name(agx_model_role r) { return r == AGX_ROLE_DELTA ? "delta" : "echo"; }
static const char *role_var(agx_model_role r) {
    return r == AGX_ROLE_DELTA ? "AGX_DELTA_MODEL" : "AGX_ECHO_MODEL";
}

/* ------------------------------------------------------- plan pipeline -- */

static void free_task(agx_task *t) {
    free(t->command);
    for (size_t i = 0; i < t->n_args; i++) free(t->args[i]);
    free(t->args);
    memset(t, 0, sizeof *t);
}

/* Problems the validator reports for task num (1-based). */
static size_t task_problems(const agx_plan *plan, const agx_plan_context *ctx,
                            const agx_plan_limits *lim, int num) {
    agx_plan_problems pr;
    agx_error err;
    agx_plan_validate(plan, ctx->registry, lim, &pr, &err);
    size_t n = 0;
    for (size_t i = 0; i < pr.count; i++) n += pr.items[i].task_number == num;
    agx_plan_problems_free(&pr);
    return n;
}

/* Removes one argument of task num: the first whose removal alone leaves
 * fewer problems (sed -i, find -delete), else the last one. */
static void drop_one_arg(agx_plan *plan, const agx_plan_context *ctx, const agx_plan_limits *lim,
                         int num) {
    agx_task *t = &plan->tasks[num - 1];
    size_t before = task_problems(plan, ctx, lim, num), pick = t->n_args - 1;
    for (size_t j = 0; j + 1 < t->n_args; j++) {
        char *saved = t->args[j];
        memmove(t->args + j, t->args + j + 1, (t->n_args - j - 1) * sizeof *t->args);
        t->n_args--;
        size_t after = task_problems(plan, ctx, lim, num);
        t->n_args++;
        memmove(t->args + j + 1, t->args + j, (t->n_args - j - 1) * sizeof *t->args);
        t->args[j] = saved;
        if (after < before) {
            pick = j;
            break;
        }
    }
    free(t->args[pick]);
    memmove(t->args + pick, t->args + pick + 1, (t->n_args - pick - 1) * sizeof *t->args);
    t->n_args--;
}

/* The grammar fixed the shape and numbering; what the validator can still
 * refuse is an argument's meaning (find -delete, xargs rm, sed -i, awk
 * system(), control characters from \b escapes) or tasks a normalization
 * added past the limit. Refused arguments are removed (the one whose removal
 * helps, else from the end) until the task validates (an empty argument list
 * always does), so the plan stays harmless whatever the weights wrote. */
static agx_status repair_and_validate(agx_plan *plan, const agx_plan_context *ctx,
                                      int *repaired, agx_error *err) {
    agx_plan_limits lim = agx_plan_limits_default();
    lim.max_tasks = ctx->max_tasks ? ctx->max_tasks : DEFAULT_MAX_TASKS;
    for (int iter = 0; iter < 4096; iter++) {
        agx_plan_problems pr;
        agx_status st = agx_plan_validate(plan, ctx->registry, &lim, &pr, err);
        if (st != AGX_ERR_VALIDATION) {
            agx_plan_problems_free(&pr);
            return st;
        }
        bool changed = false;
        while (plan->n_tasks > lim.max_tasks) { /* refs point backwards: dropping the tail is safe */
            free_task(&plan->tasks[--plan->n_tasks]);
            changed = true;
        }
        /* one fix per round (problems of later tasks are re-read next round) */
        for (size_t i = 0; i < pr.count && !changed; i++) {
            int num = pr.items[i].task_number;
            if (num < 1 || (size_t)num > plan->n_tasks) continue;
            agx_task *t = &plan->tasks[num - 1];
            if (t->input_from_task < 0 || t->input_from_task >= num) {
                t->input_from_task = 0;
                changed = true;
            } else if (t->n_args > 0) {
                drop_one_arg(plan, ctx, &lim, num);
                (*repaired)++;
                changed = true;
            }
        }
        agx_plan_problems_free(&pr);
        if (!changed) return st;
        agx_error_clear(err);
    }
    return agx_error_set(err, AGX_ERR_VALIDATION, "the plan could not be repaired");
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

agx_status agx_native_plan(agx_native_engine *e, agx_model_role role, const char *instruction,
                           const agx_plan_context *ctx, const agx_gen_options *opt,
                           agx_generated_plan *out, agx_gen_stats *stats, agx_error *err) {
    agx_generated_plan_init(out);
    agx_gen_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!ctx || !ctx->registry)
        return agx_error_set(err, AGX_ERR_CONFIG, "native: no tool registry to plan with");
    size_t max_tasks = ctx->max_tasks ? ctx->max_tasks : DEFAULT_MAX_TASKS;
    char *schema = agx_plan_schema_json(ctx->registry, max_tasks);
    if (!schema)
        return agx_error_set(err, AGX_ERR_CONFIG,
                             "native: the tool registry is empty (or out of memory); check the "
                             "tools file (`agx tools`)");
    agx_prompt prompt;
    agx_status st = agx_prompt_build(role, instruction, ctx, &prompt, err);
    if (st != AGX_OK) {
        free(schema);
        return st;
    }
    agx_chat_msg msgs[4];
    for (size_t i = 0; i < prompt.n_messages && i < 4; i++) {
        msgs[i].role = prompt.messages[i].role;
        msgs[i].content = prompt.messages[i].content;
    }
    agx_gen_options o = opt ? *opt : agx_gen_default_options();
    o.schema_json = schema;
    o.plan_rules = true;
    if (ctx->cancel) o.cancel = ctx->cancel;
    char *text = NULL;
    size_t len = 0;
    st = agx_native_generate(e, msgs, prompt.n_messages, &o, &text, &len, stats, err);
    agx_prompt_free(&prompt);
    free(schema);
    if (st != AGX_OK) return st;

    st = agx_plan_parse_lenient(text, len, &out->plan, err);
    if (st == AGX_OK) st = agx_plan_normalize(&out->plan, err);
    if (st == AGX_OK) st = repair_and_validate(&out->plan, ctx, &stats->repaired_args, err);
    if (st != AGX_OK) {
        agx_error_prefix(err, "native: the generated plan was rejected (%.200s)", text);
        free(text);
        agx_generated_plan_free(out);
        return st;
    }
    if (stats->repaired_args > 0)
        agx_log(AGX_LOG_WARN,
                "native: removed %d argument(s) the validator refused (side effects or control "
                "characters); review the plan",
                stats->repaired_args);
    free(text);
    out->meta.model = agx_strdup(base_name(agx_native_engine_path(e)));
    out->meta.backend = agx_strdup("native");
    out->meta.prompt_tokens = stats->prompt_tokens;
    out->meta.tokens = stats->generated_tokens;
    out->meta.latency_ms = (int64_t)(stats->total_ms + 0.5);
    if (!out->meta.model || !out->meta.backend) {
        agx_generated_plan_free(out);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    agx_log(AGX_LOG_DEBUG,
            "native: %lld prompt tokens (%lld reused) in %.0f ms, %lld tokens (%lld forced) at "
            "%.1f tok/s, mask %.1f ms, total %.0f ms",
            (long long)stats->prompt_tokens, (long long)stats->reused_tokens, stats->prefill_ms,
            (long long)stats->generated_tokens, (long long)stats->forced_tokens,
            stats->tokens_per_s, stats->mask_ms, stats->total_ms);
    return AGX_OK;
}

/* ------------------------------------------------------------ backend -- */

static const agx_backend_ops native_ops;

static native_backend *as_native(agx_backend *b) {
    return b && b->ops == &native_ops ? (native_backend *)b : NULL;
}

static agx_status load_engine(native_backend *nb, agx_error *err) {
    if (nb->engine) return AGX_OK;
    agx_status st = agx_native_engine_open(nb->path, &nb->params, &nb->engine, err);
    if (st == AGX_ERR_LOAD && strstr(err->message, "not found"))
        agx_error_set(err, AGX_ERR_LOAD,
                      "Model file not found: '%s'. Set %s (or AGX_MODEL_PATH) to a GGUF model "
                      "file, or run scripts/download-models.sh to fetch the recommended models "
                      "into ~/.agx/models",
                      nb->path, role_var(nb->role));
    else if (st != AGX_OK)
        agx_error_prefix(err, "%s model", role_name(nb->role));
    return st;
}

static agx_status native_generate(agx_backend *b, const char *instruction,
                                  const agx_plan_context *ctx, agx_generated_plan *out,
                                  agx_error *err) {
    native_backend *nb = (native_backend *)b;
    agx_generated_plan_init(out);
    agx_status st = load_engine(nb, err);
    if (st != AGX_OK) return st;
    st = agx_native_plan(nb->engine, nb->role, instruction, ctx, &nb->gen, out, &nb->last, err);
    nb->have_last = true;
    return st;
}

static const char *native_type(const agx_backend *b) {
    (void)b;
    return "native";
}

static const char *native_model(const agx_backend *b) { return ((const native_backend *)b)->name; }

/* The device line of reports: agx_device_describe of the engine's context. */
static const char *engine_device(const agx_native_engine *e, char *buf, size_t n) {
    return agx_device_describe(agx_context_device(agx_native_engine_context(e)), buf, n);
}

static agx_status native_health(agx_backend *b, agx_error *err) {
    native_backend *nb = (native_backend *)b;
    int64_t t0 = agx_time_us();
    agx_status st = load_engine(nb, err);
    double fwd_ms = 0;
    if (st == AGX_OK) st = agx_native_engine_probe(nb->engine, NULL, &fwd_ms, err);
    if (st != AGX_OK && st != AGX_ERR_LOAD) agx_error_prefix(err, "native health check");
    if (st == AGX_OK) {
        const agx_model *m = agx_native_engine_model(nb->engine);
        char dev[256];
        agx_log(AGX_LOG_INFO,
                "native: %s (%s), device %s, %d threads, forward step %.1f ms, health check %.0f ms",
                nb->name, agx_model_desc(m), engine_device(nb->engine, dev, sizeof dev),
                agx_native_engine_threads(nb->engine), fwd_ms, (double)(agx_time_us() - t0) / 1000.0);
    }
    return st;
}

static void native_destroy(agx_backend *b) {
    native_backend *nb = (native_backend *)b;
    if (!nb) return;
    agx_native_engine_free(nb->engine);
    free(nb->path);
    free(nb->name);
    free(nb->device);
    free(nb->cache_dir);
    free(nb);
}

static const agx_backend_ops native_ops = {
    .generate_plan = native_generate,
    .backend_type = native_type,
    .model_name = native_model,
    .health_check = native_health,
    .destroy = native_destroy,
};

/* AGX_DEVICE (cfg->device) is only checked here, without probing a GPU: the
 * device is chosen once per model context, when the engine loads
 * (agx_context_create -> agx_device_select; a GPU's absence in auto mode is one
 * warning line then, not one per plan). A value outside auto|cpu|cuda|metal,
 * or a backend this build does not contain, is a configuration error now;
 * "Failed to initialize CUDA: ...; set AGX_DEVICE=cpu" (a CUDA build without a
 * usable GPU) comes when the engine loads. *out is the canonical request. */
static agx_status pick_device(const char *want, const char **out, agx_error *err) {
    static const char *const k_names[] = {"auto", "cpu", "cuda", "metal"};
    agx_device_request req;
    agx_status st = agx_device_parse(want, &req, err);
    if (st != AGX_OK) return st;
    *out = k_names[req];
    const agx_device_kind k = req == AGX_DEVICE_REQ_CUDA    ? AGX_DEVICE_CUDA
                              : req == AGX_DEVICE_REQ_METAL ? AGX_DEVICE_METAL
                                                            : AGX_DEVICE_CPU;
    if (agx_device_compiled(k)) return AGX_OK;
    /* probes nothing that is not compiled in: only words the AGX_ERR_CONFIG error */
    agx_device_info info;
    return agx_device_select(*out, &info, err);
}

agx_status agx_backend_native_create(const agx_planner_config *cfg, agx_model_role role,
                                     agx_backend **out, agx_error *err) {
    *out = NULL;
    const char *device = NULL;
    agx_status st = pick_device(cfg->device, &device, err);
    if (st != AGX_OK) return st;
    const char *path = agx_planner_model_for_role(cfg, role);
    if (!path || !*path)
        return agx_error_set(err, AGX_ERR_CONFIG,
                             "no model configured for the %s role: set %s=/path/to/model.gguf (or "
                             "AGX_MODEL_PATH for both roles); scripts/download-models.sh fetches "
                             "the recommended models and prints the export lines",
                             role_name(role), role_var(role));
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return agx_error_set(err, AGX_ERR_LOAD,
                                 "Model file not found: '%s'. Set %s (or AGX_MODEL_PATH) to a "
                                 "GGUF model file, or run scripts/download-models.sh to fetch the "
                                 "recommended models into ~/.agx/models",
                                 path, role_var(role));
        return agx_error_set(err, AGX_ERR_LOAD, "Model file '%s' cannot be read: %s", path,
                             strerror(errno));
    }
    if (S_ISDIR(sb.st_mode))
        return agx_error_set(err, AGX_ERR_LOAD,
                             "Model path '%s' is a directory; set %s to the .gguf file inside it",
                             path, role_var(role));
    if (access(path, R_OK) != 0)
        return agx_error_set(err, AGX_ERR_LOAD,
                             "Model file '%s' cannot be read: %s (check its permissions)", path,
                             strerror(errno));
    native_backend *nb = calloc(1, sizeof *nb);
    if (!nb) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    nb->base.ops = &native_ops;
    nb->role = role;
    nb->path = agx_strdup(path);
    nb->name = agx_strdup(base_name(path));
    nb->device = agx_strdup(device);
    nb->params.n_ctx = (int)cfg->context_size;
    nb->params.n_threads = (int)cfg->threads;
    nb->params.device = nb->device;
    /* AGX_PROMPT_CACHE: a directory, or off; default ~/.agx/cache */
    const char *pc = agx_env("AGX_PROMPT_CACHE");
    if (!pc) {
        char *home = agx_home_dir();
        nb->cache_dir = home ? agx_sprintf("%s/cache", home) : NULL;
        free(home);
    } else if (*pc && strcmp(pc, "off") != 0 && strcmp(pc, "0") != 0) {
        nb->cache_dir = agx_strdup(pc);
    }
    nb->params.prompt_cache_dir = nb->cache_dir;
    nb->params.prompt_cache_tag = role_name(role);
    nb->gen = agx_gen_default_options();
    nb->gen.sampler.temperature = (float)cfg->temperature;
    nb->gen.sampler.top_p = (float)cfg->top_p;
    nb->gen.sampler.seed = cfg->seed_set ? (uint64_t)cfg->seed : AGX_SAMPLER_SEED_RANDOM;
    nb->gen.max_tokens = cfg->max_tokens > 0 && cfg->max_tokens < (1L << 24) ? (int)cfg->max_tokens
                                                                            : 2048;
    if (!nb->path || !nb->name || !nb->device) {
        native_destroy(&nb->base);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    *out = &nb->base;
    return AGX_OK;
}

bool agx_backend_is_native(const agx_backend *b) { return b && b->ops == &native_ops; }

agx_native_engine *agx_backend_native_engine(agx_backend *b, agx_error *err) {
    native_backend *nb = as_native(b);
    if (!nb) {
        agx_error_set(err, AGX_ERR_CONFIG, "not a native backend");
        return NULL;
    }
    return load_engine(nb, err) == AGX_OK ? nb->engine : NULL;
}

static bool same_file(const char *a, const char *b) {
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    bool same = ra && rb && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

agx_status agx_backend_native_share_model(agx_backend *b, agx_backend *from, bool *shared,
                                          agx_error *err) {
    native_backend *nb = as_native(b), *nf = as_native(from);
    if (shared) *shared = false;
    if (!nb || !nf || nb == nf || nb->engine || !nf->engine || !same_file(nb->path, nf->path))
        return AGX_OK;
    agx_status st = agx_native_engine_open_sibling(nf->engine, &nb->params, &nb->engine, err);
    if (st != AGX_OK) {
        agx_error_prefix(err, "%s model", role_name(nb->role));
        return st;
    }
    if (shared) *shared = true;
    return AGX_OK;
}

const agx_gen_stats *agx_backend_native_last_stats(const agx_backend *b) {
    const native_backend *nb = agx_backend_is_native(b) ? (const native_backend *)b : NULL;
    return nb && nb->have_last ? &nb->last : NULL;
}

void agx_backend_native_set_stream(agx_backend *b, agx_gen_text_fn fn, void *user) {
    native_backend *nb = as_native(b);
    if (!nb) return;
    nb->gen.on_text = fn;
    nb->gen.user = user;
}

agx_status agx_backend_native_describe(agx_backend *b, char **text, agx_error *err) {
    *text = NULL;
    native_backend *nb = as_native(b);
    if (!nb) return agx_error_set(err, AGX_ERR_CONFIG, "not a native backend");
    bool was_loaded = nb->engine != NULL;
    int64_t t0 = agx_time_us();
    agx_status st = load_engine(nb, err);
    if (st != AGX_OK) return st;
    double load_ms = (double)(agx_time_us() - t0) / 1000.0;
    double tok_ms = 0, fwd_ms = 0;
    st = agx_native_engine_probe(nb->engine, &tok_ms, &fwd_ms, err);
    if (st != AGX_OK) {
        agx_error_prefix(err, "native health check");
        return st;
    }
    const agx_model *m = agx_native_engine_model(nb->engine);
    const agx_model_config *mc = agx_model_get_config(m);
    const agx_tokenizer *t = agx_native_engine_tokenizer(nb->engine);
    const agx_context *ctx = agx_native_engine_context(nb->engine);
    const agx_device_info *dev = agx_context_device(ctx);
    char dline[256];
    engine_device(nb->engine, dline, sizeof dline);
    /* a GPU context: what it holds on the device; any context: why the device
     * is not the one asked for (auto falling back to the CPU) */
    char *dmem = dev->kind != AGX_DEVICE_CPU
                     ? agx_sprintf("device memory: %.1f MB used by this context (%.1f MB of weights, shared by "
                                   "the model's contexts; KV cache, scratch)\n",
                                   (double)agx_context_device_bytes(ctx) / 1e6,
                                   (double)agx_context_device_weight_bytes(ctx) / 1e6)
                     : agx_strdup("");
    char *dnote = dev->note[0] ? agx_sprintf("device note:  %s\n", dev->note) : agx_strdup("");
    if (!dmem || !dnote) {
        free(dmem);
        free(dnote);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    *text = agx_sprintf("model:        %s (%s role)\n"
                        "path:         %s\n"
                        "architecture: %s (%s)\n"
                        "tokenizer:    %s/%s, %d tokens\n"
                        "device:       %s\n"
                        "%s%s"
                        "threads:      %d\n"
                        "context:      %d tokens\n"
                        "prompt cache: %s\n"
                        "load:         %s%.0f ms\n"
                        "tokenize:     %.2f ms\n"
                        "forward step: %.1f ms (the first one also pages the weights in)\n",
                        nb->name, role_name(nb->role), nb->path, mc->arch ? mc->arch : "?",
                        agx_model_desc(m), agx_tokenizer_model_name(t), agx_tokenizer_pre_name(t),
                        agx_tokenizer_n_vocab(t), dline, dmem, dnote,
                        agx_native_engine_threads(nb->engine), agx_native_engine_n_ctx(nb->engine),
                        nb->cache_dir ? nb->cache_dir : "off", was_loaded ? "already loaded, " : "", was_loaded ? 0.0 : load_ms, tok_ms,
                        fwd_ms);
    free(dmem);
    free(dnote);
    return *text ? AGX_OK : agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
}

agx_status agx_native_refine(agx_backend *delta, const char *instruction, const agx_plan *existing,
                             const agx_plan_context *ctx, agx_generated_plan *out, agx_error *err) {
    agx_plan_context c = *ctx;
    c.existing = existing;
    return agx_backend_generate_plan(delta, instruction, &c, out, err);
}

typedef struct refine_job {
    agx_backend *delta;
    const char *instruction;
    const agx_plan_context *ctx;
} refine_job;

static agx_status refine_change(agx_plan *plan, void *user, agx_error *err) {
    refine_job *job = user;
    if (plan->n_tasks == 0)
        return agx_error_set(err, AGX_ERR_VALIDATION,
                             "the plan buffer is empty: nothing to refine (add steps with `agx "
                             "plan add` first)");
    const char *instr = job->instruction && *job->instruction ? job->instruction
                        : plan->plan_description && *plan->plan_description
                            ? plan->plan_description
                            : "Check this plan against the tools and fix any mistakes.";
    agx_generated_plan out;
    agx_status st = agx_native_refine(job->delta, instr, plan, job->ctx, &out, err);
    if (st != AGX_OK) return st;
    /* keep the buffer's id and description; take the refined tasks */
    agx_plan refined = out.plan;
    agx_plan_init(&out.plan);
    if (!refined.plan_id && plan->plan_id) {
        refined.plan_id = plan->plan_id;
        plan->plan_id = NULL;
    }
    if (!refined.plan_description && plan->plan_description) {
        refined.plan_description = plan->plan_description;
        plan->plan_description = NULL;
    }
    agx_plan_free(plan);
    *plan = refined;
    agx_generated_plan_free(&out);
    return AGX_OK;
}

agx_status agx_native_refine_buffer(agx_backend *delta, const char *plan_path,
                                    const char *instruction, const agx_plan_context *ctx,
                                    agx_plan *result, agx_error *err) {
    refine_job job = {delta, instruction, ctx};
    return agx_buffer_update(plan_path, refine_change, &job, result, err);
}

/* -------------------------------------------------------------- bench -- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}


/* A typical 7-task plan, followed by the grammar benchmark as a well-trained
 * model would write it (bench/bench_plan uses it too). */
const char agx_native_sample_plan[] =
    "{\"tasks\":[{\"task_number\":1,\"command\":\"find\",\"args\":[\"src\",\"-type\",\"f\","
    "\"-name\",\"*.c\"]},{\"task_number\":2,\"command\":\"xargs\",\"args\":[\"grep\",\"-n\","
    "\"TODO\"],\"input_from_task\":1},{\"task_number\":3,\"command\":\"cut\",\"args\":[\"-d:\","
    "\"-f1\"],\"input_from_task\":2},{\"task_number\":4,\"command\":\"sort\",\"args\":[],"
    "\"input_from_task\":3},{\"task_number\":5,\"command\":\"uniq\",\"args\":[\"-c\"],"
    "\"input_from_task\":4},{\"task_number\":6,\"command\":\"sort\",\"args\":[\"-rn\"],"
    "\"input_from_task\":5},{\"task_number\":7,\"command\":\"head\",\"args\":[\"-n\",\"10\"],"
    "\"input_from_task\":6}]}";

agx_status agx_native_bench_grammar(agx_native_engine *e, int n_tokens, agx_native_bench *out,
                                    agx_error *err) {
    memset(out, 0, sizeof *out);
    if (n_tokens <= 0) n_tokens = 64;
    agx_registry reg;
    agx_status st = agx_registry_builtin(&reg, err);
    if (st != AGX_OK) return st;
    agx_plan_context ctx;
    agx_plan_context_init(&ctx, &reg);
    agx_prompt prompt;
    const char *instr = "find all TODO comments under src and count them per file";
    st = agx_prompt_build(AGX_ROLE_ECHO, instr, &ctx, &prompt, err);
    if (st != AGX_OK) {
        agx_registry_free(&reg);
        return st;
    }
    agx_chat_msg msgs[4];
    for (size_t i = 0; i < prompt.n_messages && i < 4; i++) {
        msgs[i].role = prompt.messages[i].role;
        msgs[i].content = prompt.messages[i].content;
    }
    char *schema = agx_plan_schema_json(&reg, DEFAULT_MAX_TASKS);
    agx_gen_options o = agx_gen_default_options();
    o.sampler.seed = 1;
    o.max_tokens = n_tokens;
    agx_gen_stats su, sc;
    char *text = NULL;
    /* unconstrained: every token sampled and evaluated alone */
    st = schema ? agx_native_generate(e, msgs, prompt.n_messages, &o, &text, NULL, &su, err)
                : agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    free(text);
    text = NULL;
    if (st == AGX_OK) {
        o.schema_json = schema;
        o.plan_rules = true;
        o.guide = agx_native_sample_plan;
        o.max_tokens = 2048;
        st = agx_native_generate(e, msgs, prompt.n_messages, &o, &text, NULL, &sc, err);
        if (st == AGX_OK && strcmp(text, agx_native_sample_plan) != 0)
            st = agx_error_set(err, AGX_ERR_ENGINE,
                               "bench: the constrained run did not reproduce the guide plan: %.200s",
                               text);
        free(text);
    }
    /* one full mask at the most common place: inside an argument string */
    double times[15];
    int n_times = 0;
    agx_grammar *g = NULL;
    if (st == AGX_OK) st = agx_grammar_compile(schema, strlen(schema), &g, err);
    agx_grammar_vocab *gv = NULL;
    if (st == AGX_OK) {
        /* the engine's trie is private: rebuild one here the same way */
        const agx_tokenizer *t = agx_native_engine_tokenizer(e);
        size_t nv = (size_t)agx_model_get_config(agx_native_engine_model(e))->n_vocab;
        const char **bytes = calloc(nv, sizeof *bytes);
        size_t *lens = calloc(nv, sizeof *lens);
        if (!bytes || !lens) st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        for (size_t i = 0; st == AGX_OK && i < nv && (int32_t)i < agx_tokenizer_n_vocab(t); i++) {
            agx_token_type ty = agx_tokenizer_token_type(t, (int32_t)i);
            if (ty == AGX_TOKEN_CONTROL || agx_tokenizer_is_eog(t, (int32_t)i)) continue;
            bytes[i] = (const char *)agx_tokenizer_token_bytes(t, (int32_t)i, &lens[i]);
        }
        if (st == AGX_OK) st = agx_grammar_vocab_new(bytes, lens, nv, NULL, 0, &gv, err);
        free(bytes);
        free(lens);
        out->n_vocab = (int64_t)nv;
        uint8_t *mask = st == AGX_OK ? malloc(nv) : NULL;
        agx_grammar_state *gs = mask ? agx_grammar_state_new(g) : NULL;
        const char *pre = "{\"tasks\":[{\"task_number\":1,\"command\":\"grep\",\"args\":[\"TO";
        if (gs && agx_grammar_accept(gs, pre, strlen(pre))) {
            /* small vocabularies take well under a microsecond: time batches */
            int reps = nv < 20000 ? 200 : 1;
            for (n_times = 0; n_times < 15 && st == AGX_OK; n_times++) {
                int64_t t0 = agx_time_us();
                for (int k = 0; k < reps && st == AGX_OK; k++)
                    st = agx_grammar_mask(gs, gv, mask, NULL, err);
                times[n_times] = (double)(agx_time_us() - t0) / 1000.0 / reps;
            }
        }
        agx_grammar_state_free(gs);
        free(mask);
    }
    agx_grammar_vocab_free(gv);
    agx_grammar_free(g);
    free(schema);
    agx_prompt_free(&prompt);
    agx_registry_free(&reg);
    if (st != AGX_OK) return st;
    if (n_times > 0) {
        qsort(times, (size_t)n_times, sizeof times[0], cmp_double);
        out->full_mask_ms = times[n_times / 2];
    }
    out->n_tokens = (int)su.generated_tokens;
    if (su.generated_tokens > 0)
        out->unconstrained_ms_per_token =
            (su.total_ms - su.prefill_ms) / (double)su.generated_tokens;
    if (sc.generated_tokens > 0) {
        out->constrained_ms_per_token = (sc.total_ms - sc.prefill_ms) / (double)sc.generated_tokens;
        out->forced_share = (double)sc.forced_tokens / (double)sc.generated_tokens;
    }
    if (sc.sampled_tokens > 0) out->mask_ms_per_token = sc.mask_ms / (double)sc.sampled_tokens;
    out->plan_tokens = sc.generated_tokens;
    out->plan_ms = sc.total_ms;
    out->plan_ttft_ms = sc.ttft_ms;
    if (out->unconstrained_ms_per_token > 0) {
        out->mask_share = out->mask_ms_per_token / out->unconstrained_ms_per_token;
        out->full_mask_share = out->full_mask_ms / out->unconstrained_ms_per_token;
    }
    return AGX_OK;
}
