/* cmd_health.c — 'agx health [--json]': builds the configured backend and runs
 * its health check; exit 0 only when it is healthy. The native backend adds
 * its details, including the device its context runs on. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "agx/device.h"
#include "agx/native.h"
#include "cli_planner.h"

int agx_cmd_health(int argc, char **argv) {
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("Usage: agx health [--json]\n\nChecks the configured backend (AGX_BACKEND, "
                   "AGX_*_MODEL, ...). Exit 0 only when it is healthy.\n");
            return AGX_EXIT_OK;
        } else {
            return agx_cli_usage("'agx health' takes only --json, not '%s'", argv[i]);
        }
    }
    agx_planner_config cfg;
    int rc = agx_cli_config(&cfg);
    if (rc != AGX_EXIT_OK) return rc;
    agx_backend *backend = NULL;
    rc = agx_cli_backend(&cfg, cfg.role, &backend);
    if (rc == AGX_EXIT_OK) {
        agx_error err;
        agx_error_clear(&err);
        agx_status s = agx_backend_health_check(backend, &err);
        const char *type = agx_backend_type(backend), *model = agx_backend_model_name(backend);
        /* The native backend also reports architecture, device, threads and timings. */
        char *details = NULL;
        if (s == AGX_OK && type && strcmp(type, "native") == 0)
            s = agx_backend_native_describe(backend, &details, &err);
        if (json) {
            /* names only: never keys or URLs with credentials */
            json_t *o = json_pack("{s:s, s:s, s:b}", "backend", type ? type : "", "model",
                                  model ? model : "", "healthy", s == AGX_OK);
            if (o && details) json_object_set_new(o, "details", json_string(details));
            /* the native engine's device (after a possible auto fallback) and
             * the device memory its context holds (0 on the CPU) */
            agx_error derr;
            agx_native_engine *e = o && details ? agx_backend_native_engine(backend, &derr) : NULL;
            if (e) {
                const agx_context *ctx = agx_native_engine_context(e);
                json_object_set_new(o, "device", agx_device_info_json(agx_context_device(ctx)));
                json_object_set_new(o, "device_mem_used", json_integer((json_int_t)agx_context_device_bytes(ctx)));
            }
            char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
            if (text) printf("%s\n", text);
            free(text);
            json_decref(o);
        } else {
            printf("backend: %s\nmodel: %s\nstatus: %s\n", type, model ? model : "-",
                   s == AGX_OK ? "healthy" : "unhealthy");
            if (details) fputs(details, stdout);
            if (details && details[0] && details[strlen(details) - 1] != '\n') putchar('\n');
        }
        free(details);
        if (s != AGX_OK) {
            if (err.code == AGX_OK) agx_error_set(&err, AGX_ERR_HEALTH_CHECK, "the backend is not healthy");
            rc = agx_cli_fail(&err);
        }
    }
    agx_backend_destroy(backend);
    agx_planner_config_free(&cfg);
    return rc;
}
