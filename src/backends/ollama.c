/* ollama.c — the ollama backend (placeholder until its issue lands: returns a clear config error). */
#include "agx/planner.h"

agx_status agx_backend_ollama_create(const agx_planner_config *cfg, agx_model_role role,
                                     agx_backend **out, agx_error *err) {
    (void)cfg;
    (void)role;
    *out = NULL;
    return agx_error_set(err, AGX_ERR_CONFIG,
                         "the ollama backend is not available in this build yet; "
                         "use AGX_BACKEND=rules (see the README status table)");
}
