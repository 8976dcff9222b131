/* backend.c — NULL-safe wrappers over agx_backend_ops, plan context and
 * generated-plan lifetimes, and the metadata JSON. */
#include <jansson.h>
#include <stdlib.h>

#include "agx/backend.h"

void agx_plan_context_init(agx_plan_context *ctx, const agx_registry *registry) {
    ctx->registry = registry;
    ctx->input = NULL;
    ctx->existing = NULL;
    ctx->max_tasks = 20;
    ctx->cancel = NULL;
}

void agx_generated_plan_init(agx_generated_plan *gp) {
    agx_plan_init(&gp->plan);
    gp->meta.model = NULL;
    gp->meta.backend = NULL;
    gp->meta.prompt_tokens = -1;
    gp->meta.tokens = -1;
    gp->meta.latency_ms = 0;
}

void agx_generated_plan_free(agx_generated_plan *gp) {
    if (!gp) return;
    agx_plan_free(&gp->plan);
    free(gp->meta.model);
    free(gp->meta.backend);
    gp->meta.model = gp->meta.backend = NULL;
}

agx_status agx_backend_generate_plan(agx_backend *b, const char *instruction,
                                     const agx_plan_context *ctx, agx_generated_plan *out,
                                     agx_error *err) {
    return b->ops->generate_plan(b, instruction, ctx, out, err);
}

const char *agx_backend_type(const agx_backend *b) { return b->ops->backend_type(b); }

const char *agx_backend_model_name(const agx_backend *b) { return b->ops->model_name(b); }

agx_status agx_backend_health_check(agx_backend *b, agx_error *err) {
    return b->ops->health_check(b, err);
}

void agx_backend_destroy(agx_backend *b) {
    if (b) b->ops->destroy(b);
}

char *agx_plan_metadata_to_json(const agx_plan_metadata *meta) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "model", meta->model ? json_string(meta->model) : json_null());
    json_object_set_new(o, "backend", meta->backend ? json_string(meta->backend) : json_null());
    json_object_set_new(o, "prompt_tokens", json_integer(meta->prompt_tokens));
    json_object_set_new(o, "tokens", json_integer(meta->tokens));
    json_object_set_new(o, "latency_ms", json_integer(meta->latency_ms));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}
