/* cmd_health.c — 'agx health [--json]': builds the configured backend and runs
 * its health check; exit 0 only when it is healthy. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
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
        if (json) {
            /* names only: never keys or URLs with credentials */
            json_t *o = json_pack("{s:s, s:s, s:b}", "backend", type ? type : "", "model",
                                  model ? model : "", "healthy", s == AGX_OK);
            char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
            if (text) printf("%s\n", text);
            free(text);
            json_decref(o);
        } else {
            printf("backend: %s\nmodel: %s\nstatus: %s\n", type, model ? model : "-",
                   s == AGX_OK ? "healthy" : "unhealthy");
        }
        if (s != AGX_OK) {
            if (err.code == AGX_OK) agx_error_set(&err, AGX_ERR_HEALTH_CHECK, "the backend is not healthy");
            rc = agx_cli_fail(&err);
        }
    }
    agx_backend_destroy(backend);
    agx_planner_config_free(&cfg);
    return rc;
}
