/* cmd_model.c — 'agx model info MODEL [--json]': GGUF model summary, plus the
 * device a context would run on here (AGX_DEVICE). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/model_info.h"
#include "cli.h"

static int model_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "-m") == 0 || strcmp(argv[i], "--model") == 0) {
            if (i + 1 >= argc) return agx_cli_usage("'%s' needs a model file", argv[i]);
            if (path) return agx_cli_usage("agx model info takes one model file");
            path = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) return agx_cli_usage("unknown option '%s' for agx model info", argv[i]);
        else if (path) return agx_cli_usage("agx model info takes one model file");
        else path = argv[i];
    }
    if (!path) return agx_cli_usage("agx model info MODEL.gguf [--json]");
    agx_error err;
    agx_error_clear(&err);
    agx_model_info *mi;
    if (agx_model_info_load(path, &mi, &err) != AGX_OK) return agx_cli_fail(&err);
    /* the device a context would run on (AGX_DEVICE); a selection that fails
     * (AGX_DEVICE=cuda without a GPU) is reported, not fatal: this command only
     * reads the file */
    agx_device_info dev;
    agx_error derr = {0};
    if (agx_device_select(NULL, &dev, &derr) == AGX_OK)
        agx_model_info_set_device(mi, &dev, NULL);
    else
        agx_model_info_set_device(mi, NULL, derr.message);
    char *s = json ? agx_model_info_json(mi) : agx_model_info_text(mi);
    agx_model_info_free(mi);
    if (!s) {
        agx_error_set(&err, AGX_ERR_NOMEM, "out of memory formatting model info");
        return agx_cli_fail(&err);
    }
    fputs(s, stdout);
    if (json) fputc('\n', stdout);
    free(s);
    return AGX_EXIT_OK;
}

int agx_cmd_model(int argc, char **argv) {
    /* argv[0] is "model" when called from the dispatch table */
    int i = (argc > 0 && strcmp(argv[0], "model") == 0) ? 1 : 0;
    if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
        fprintf(i >= argc ? stderr : stdout, "Usage: agx model info MODEL.gguf [--json]\n");
        return i >= argc ? AGX_EXIT_USAGE : AGX_EXIT_OK;
    }
    if (strcmp(argv[i], "info") == 0) return model_info(argc - i - 1, argv + i + 1);
    return agx_cli_usage("unknown 'agx model' subcommand '%s' (expected: info)", argv[i]);
}
