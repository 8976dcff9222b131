/* cmd_tools.c — 'agx tools [--json]': the tool registry (built-ins plus
 * AGX_TOOLS_FILE / ~/.agx/tools.json) as a table or as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_planner.h"

int agx_cmd_tools(int argc, char **argv) {
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("Usage: agx tools [--json]\n\nLists the tools a plan may use (built-ins plus "
                   "AGX_TOOLS_FILE, default ~/.agx/tools.json).\n");
            return AGX_EXIT_OK;
        } else {
            return agx_cli_usage("'agx tools' takes only --json, not '%s'", argv[i]);
        }
    }
    agx_error err;
    agx_error_clear(&err);
    agx_registry reg = {0};
    if (agx_registry_load_default(&reg, &err) != AGX_OK) return agx_cli_fail(&err);
    int rc = AGX_EXIT_OK;
    if (json) {
        char *text = agx_registry_to_json(&reg, 1);
        if (text) {
            printf("%s\n", text);
            free(text);
        } else {
            rc = AGX_EXIT_INTERNAL;
        }
    } else {
        size_t w = 4;
        for (size_t i = 0; i < reg.count; i++)
            if (strlen(reg.tools[i].id) > w) w = strlen(reg.tools[i].id);
        for (size_t i = 0; i < reg.count; i++) {
            const agx_tool *t = &reg.tools[i];
            agx_strbuf ok;
            agx_strbuf_init(&ok);
            for (size_t k = 0; k < t->n_ok_exit_codes; k++)
                agx_strbuf_printf(&ok, "%s%d", k ? "," : "", t->ok_exit_codes[k]);
            printf("%-*s  %s", (int)w, t->id, t->description ? t->description : "");
            if (t->command && strcmp(t->command, t->id) != 0) printf(" [runs %s]", t->command);
            if (ok.data && strcmp(ok.data, "0") != 0) printf(" (ok exit codes: %s)", ok.data);
            printf("\n");
            agx_strbuf_free(&ok);
        }
        fprintf(stderr, "agx: %zu tools\n", reg.count);
    }
    agx_registry_free(&reg);
    return rc;
}
