/* main.c — the agx command: global flags, the subcommand table and --help. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} agx_command;

static const agx_command commands[] = {
    {"plan", agx_cmd_plan, "new | add \"<instruction>\" | preview [--json] | validate [--refine] | parse [FILE|-]"},
    {"tools", agx_cmd_tools, "list the tool registry [--json]"},
    {"health", agx_cmd_health, "check the configured backend (exit 0 only when healthy)"},
    {"model", agx_cmd_model, "info MODEL [--json]: GGUF model summary"},
    {"tokenize", agx_cmd_tokenize, "-m MODEL [--special] [--no-bos] [--json] (TEXT | --file F)"},
    {"detokenize", agx_cmd_detokenize, "-m MODEL --tokens 1,2,3"},
    {"template", agx_cmd_template, "-m MODEL --messages FILE.json [--chat-template FILE] [--json]"},
    {"logits", agx_cmd_logits, "-m MODEL --tokens 1,2,3 --out FILE [-t THREADS]"},
    {"generate", agx_cmd_generate, "-m MODEL (--tokens 1,2,3 | --prompt TEXT) -n N [--greedy] [--json]"},
    {"bench", agx_cmd_bench, "-m MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--grammar] [--json]"},
    {"repl", agx_cmd_repl, "interactive planning session (also: agx with no arguments on a terminal)"},
};

static void print_help(FILE *out) {
    fprintf(out,
            "agx %s — turn an instruction into a validated JSON plan of tool invocations\n\n"
            "Usage: agx <command> [options]\n\nCommands:\n",
            AGX_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nEnvironment:\n"
            "  AGX_BACKEND             native | candle (alias of native) | ollama | openai | rules\n"
            "                          (unset: native when a model is configured, else rules)\n"
            "  AGX_ECHO_MODEL          GGUF file of the Echo (drafting) model\n"
            "  AGX_DELTA_MODEL         GGUF file of the Delta (refining) model\n"
            "  AGX_MODEL_PATH          fallback model file for both roles\n"
            "  AGX_MODEL_ROLE          echo (default) | delta\n"
            "  AGX_DEVICE              auto (default) | cpu | cuda | metal\n"
            "  AGX_THREADS             CPU threads for the native engine (default: all cores)\n"
            "  AGX_CANDLE_TEMPERATURE  sampling temperature (0.7)\n"
            "  AGX_CANDLE_TOP_P        nucleus sampling (0.9)\n"
            "  AGX_CANDLE_MAX_TOKENS   generation limit (2048)\n"
            "  AGX_CANDLE_SEED         sampling seed (reproducible generation)\n"
            "  AGX_CANDLE_CONTEXT_SIZE context length (2048, capped by the model)\n"
            "  AGX_TOKENIZER           gguf (default) | json (tokenizer.json beside the model)\n"
            "  AGX_OLLAMA_MODEL        Ollama model (phi3:mini)\n"
            "  AGX_OLLAMA_HOST         Ollama server (OLLAMA_HOST, http://127.0.0.1:11434)\n"
            "  AGX_OLLAMA_TIMEOUT_SECS Ollama request timeout (300)\n"
            "  AGX_OPENAI_BASE_URL     OpenAI-compatible server (http://127.0.0.1:8000; vLLM,\n"
            "                          llama.cpp server, hosted APIs; with or without /v1)\n"
            "  AGX_OPENAI_MODEL        model id on that server\n"
            "  AGX_OPENAI_API_KEY      bearer token (never printed)\n"
            "  AGX_OPENAI_TIMEOUT_SECS request timeout (300)\n"
            "  AGX_HTTP_RETRIES        retries after HTTP 429/503 (remote backends)\n"
            "  AGX_HTTP_BACKOFF_MS     first retry delay, doubled each time\n"
            "  AGX_HTTP_MAX_DELAY_MS   cap on one retry delay\n"
            "  AGX_HTTP_MAX_RESPONSE_BYTES  largest reply accepted from a server\n"
            "  AGX_PLAN_PATH           plan buffer ($TMPDIR/agx-plan.json)\n"
            "  AGX_TOOLS_FILE          extra/overriding tools (~/.agx/tools.json)\n"
            "  AGX_HOME                agx's own files: REPL state, history, prompt cache (~/.agx)\n"
            "  AGX_PROMPT_CACHE        prompt KV cache directory, or off (AGX_HOME/cache)\n"
            "  AGX_REPL_EDITOR         emacs (default) | vi key bindings in the REPL\n"
            "  AGX_REF_DIR             reference data for the tests (../shared/ref)\n"
            "  AGX_LOG                 error | warn (default) | info | debug\n"
            "\nExit codes: 0 ok, 1 internal error, 2 usage, 3 configuration, 4 invalid data\n"
            "(plan, model output, corrupt file, no tool matches), 5 backend unavailable or\n"
            "failed, 6 file system or network I/O error.\n");
}

int agx_cli_fail(const agx_error *err) {
    fprintf(stderr, "agx: %s error: %s\n", agx_status_name(err->code), err->message);
    return agx_status_exit_code(err->code);
}

int agx_cli_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "agx: usage error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see agx --help)\n");
    va_end(ap);
    return AGX_EXIT_USAGE;
}

int agx_cli_not_built(const char *what) {
    fprintf(stderr, "agx: config error: %s is not available in this build yet (see the README status table)\n",
            what);
    return AGX_EXIT_CONFIG;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) return agx_cmd_repl(argc, argv);
        print_help(stderr);
        return AGX_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_help(stdout);
        return AGX_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("agx %s\n", AGX_VERSION);
        return AGX_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    return agx_cli_usage("unknown command '%s'", cmd);
}
