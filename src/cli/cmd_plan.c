/* cmd_plan.c — 'agx plan new | add | preview | validate | parse': the persisted
 * plan buffer (AGX_PLAN_PATH) seen from the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agx/buffer.h"
#include "cli.h"
#include "agx/native.h"
#include "cli_planner.h"

#define PARSE_MAX_BYTES (16u << 20)

static const char plan_usage[] =
    "Usage: agx plan <subcommand>\n\n"
    "  new                      start an empty plan (a corrupt buffer is moved aside)\n"
    "  add \"<instruction>\"      plan the instruction with the configured backend and append\n"
    "                           the steps (reads a summary of stdin when data is piped in)\n"
    "  preview [--json]         print the plan (a table, or canonical JSON)\n"
    "  validate [--refine]      check the plan; prints every problem, exit 4 when invalid;\n"
    "                           --refine: the Delta model rewrites it, kept only when it validates\n"
    "  parse [FILE|-] [--compact]\n"
    "                           turn raw model output into the canonical plan (stdout)\n\n"
    "The buffer lives at AGX_PLAN_PATH (default $TMPDIR/agx-plan.json).\n";

static bool is_help(const char *a) {
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0;
}

static int plan_new(int argc, char **argv, const agx_planner_config *cfg) {
    (void)argv;
    if (argc > 1) return agx_cli_usage("'agx plan new' takes no arguments");
    agx_error err;
    agx_error_clear(&err);
    char *moved = NULL;
    if (agx_buffer_reset(cfg->plan_path, &moved, &err) != AGX_OK) return agx_cli_fail(&err);
    if (moved) {
        fprintf(stderr, "agx: the corrupt plan buffer was moved to '%s' (kept for inspection)\n",
                moved);
        free(moved);
    }
    fprintf(stderr, "agx: new empty plan at '%s'\n", cfg->plan_path);
    return AGX_EXIT_OK;
}

/* Joins the words after 'add' so that an unquoted instruction works too. */
static char *join_words(int argc, char **argv, int from) {
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    for (int i = from; i < argc; i++) {
        if (i > from) agx_strbuf_putc(&sb, ' ');
        agx_strbuf_puts(&sb, argv[i]);
    }
    return agx_strbuf_take(&sb);
}

static int report_problems(const agx_plan_problems *problems, const agx_error *err,
                           const char *what) {
    if (problems->count == 0) return agx_cli_fail(err);
    fprintf(stderr, "agx: validation error: %s has %zu problem%s:\n", what, problems->count,
            problems->count == 1 ? "" : "s");
    for (size_t i = 0; i < problems->count; i++)
        fprintf(stderr, "  - %s\n", problems->items[i].message);
    return AGX_EXIT_DATA;
}

typedef struct {
    const agx_plan *steps;
    const agx_registry *registry;
    agx_plan_problems problems;
    int first_new;
} add_job;

/* Runs under the buffer lock: append and check the combined plan before it is saved. */
static agx_status add_change(agx_plan *plan, void *user, agx_error *err) {
    add_job *job = user;
    job->first_new = (int)plan->n_tasks + 1;
    agx_status s = agx_plan_append(plan, job->steps, err);
    if (s != AGX_OK) return s;
    agx_plan_limits limits = agx_plan_limits_default();
    return agx_plan_validate(plan, job->registry, &limits, &job->problems, err);
}

static int plan_add(int argc, char **argv, const agx_planner_config *cfg) {
    if (argc < 2) return agx_cli_usage("'agx plan add' needs an instruction, e.g. agx plan add \"show the first 10 lines\"");
    int first = strcmp(argv[1], "--") == 0 ? 2 : 1; /* "agx plan add -- -n is odd" */
    if (first >= argc) return agx_cli_usage("'agx plan add' needs an instruction after --");
    char *instruction = join_words(argc, argv, first);
    if (!instruction) return AGX_EXIT_INTERNAL;
    int rc = AGX_EXIT_OK;
    agx_error err;
    agx_error_clear(&err);
    agx_registry reg = {0};
    agx_backend *backend = NULL;
    agx_input_summary input;
    memset(&input, 0, sizeof input);
    bool have_input = false;
    agx_plan existing;
    agx_plan_init(&existing);
    agx_generated_plan gp;
    agx_generated_plan_init(&gp);
    agx_plan saved;
    agx_plan_init(&saved);
    add_job job = {0};

    if (!*instruction) {
        rc = agx_cli_usage("the instruction is empty");
        goto out;
    }
    /* Fail fast on a corrupt buffer, before any (possibly slow) generation. */
    if (agx_buffer_load(cfg->plan_path, &existing, &err) != AGX_OK ||
        agx_registry_load_default(&reg, &err) != AGX_OK) {
        rc = agx_cli_fail(&err);
        goto out;
    }
    if ((rc = agx_cli_backend(cfg, AGX_ROLE_ECHO, &backend)) != AGX_EXIT_OK) goto out;
    if (!isatty(STDIN_FILENO)) {
        if (agx_input_summarize_fd(STDIN_FILENO, &input, &err) != AGX_OK) {
            rc = agx_cli_fail(&err);
            goto out;
        }
        have_input = input.bytes > 0; /* </dev/null is no input */
    }
    agx_plan_context ctx;
    agx_plan_context_init(&ctx, &reg);
    ctx.input = have_input ? &input : NULL;
    ctx.existing = existing.n_tasks ? &existing : NULL;
    if (agx_backend_generate_plan(backend, instruction, &ctx, &gp, &err) != AGX_OK) {
        rc = agx_cli_fail(&err);
        goto out;
    }
    agx_plan_limits limits = agx_plan_limits_default();
    if (agx_plan_validate(&gp.plan, &reg, &limits, &job.problems, &err) != AGX_OK) {
        rc = report_problems(&job.problems, &err, "the generated plan");
        goto out;
    }
    if (agx_plan_normalize(&gp.plan, &err) != AGX_OK) {
        rc = agx_cli_fail(&err);
        goto out;
    }
    job.steps = &gp.plan;
    job.registry = &reg;
    agx_plan_problems_free(&job.problems);
    memset(&job.problems, 0, sizeof job.problems);
    if (agx_buffer_update(cfg->plan_path, add_change, &job, &saved, &err) != AGX_OK) {
        rc = job.problems.count ? report_problems(&job.problems, &err, "the combined plan")
                                : agx_cli_fail(&err);
        if (job.problems.count)
            fprintf(stderr, "agx: the plan buffer was left unchanged (start over with 'agx plan new')\n");
        goto out;
    }
    agx_cli_print_plan(stdout, &saved, (size_t)(job.first_new - 1));
    fprintf(stderr, "agx: added %zu task%s (backend %s, model %s, %lld ms); the plan at '%s' has %zu\n",
            gp.plan.n_tasks, gp.plan.n_tasks == 1 ? "" : "s", gp.meta.backend ? gp.meta.backend : "?",
            gp.meta.model ? gp.meta.model : "?", (long long)gp.meta.latency_ms, cfg->plan_path,
            saved.n_tasks);
out:
    agx_plan_problems_free(&job.problems);
    agx_plan_free(&saved);
    agx_generated_plan_free(&gp);
    agx_plan_free(&existing);
    agx_input_summary_free(&input);
    agx_backend_destroy(backend);
    agx_registry_free(&reg);
    free(instruction);
    return rc;
}

static int plan_preview(int argc, char **argv, const agx_planner_config *cfg) {
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else
            return agx_cli_usage("'agx plan preview' takes only --json, not '%s'", argv[i]);
    }
    agx_error err;
    agx_error_clear(&err);
    agx_plan plan;
    if (agx_buffer_load(cfg->plan_path, &plan, &err) != AGX_OK) return agx_cli_fail(&err);
    int rc = AGX_EXIT_OK;
    if (json) {
        char *text = agx_plan_to_json(&plan, AGX_JSON_PRETTY);
        if (text) {
            printf("%s\n", text);
            free(text);
        } else {
            rc = AGX_EXIT_INTERNAL;
        }
    } else if (plan.n_tasks == 0) {
        fprintf(stderr, "agx: the plan is empty; add steps with: agx plan add \"<instruction>\"\n");
    } else {
        agx_cli_print_plan(stdout, &plan, 0);
    }
    agx_plan_free(&plan);
    return rc;
}

/* `agx plan validate --refine`: the Delta role rewrites the buffer, which is
 * replaced only when the refined plan validates (agx_native_refine_buffer
 * holds the lock and leaves the file untouched on any failure). */
static int plan_refine(const agx_planner_config *cfg, const char *instruction) {
    agx_backend *delta = NULL;
    int rc = agx_cli_backend(cfg, AGX_ROLE_DELTA, &delta);
    if (rc != AGX_EXIT_OK) return rc;
    agx_error err;
    agx_error_clear(&err);
    agx_registry reg = {0};
    agx_plan refined;
    agx_plan_init(&refined);
    if (strcmp(agx_backend_type(delta), "rules") == 0) {
        /* the rules planner maps instructions to tools; it cannot review a plan */
        agx_error_set(&err, AGX_ERR_CONFIG,
                      "refining a plan needs a model: set AGX_DELTA_MODEL=/path/model.gguf (or "
                      "AGX_BACKEND=ollama|openai); 'agx plan validate' checks the plan without one");
        rc = agx_cli_fail(&err);
        fprintf(stderr, "agx: the plan buffer was left unchanged\n");
    } else if (agx_registry_load_default(&reg, &err) != AGX_OK) {
        rc = agx_cli_fail(&err);
    } else {
        agx_plan_context ctx;
        agx_plan_context_init(&ctx, &reg);
        if (agx_native_refine_buffer(delta, cfg->plan_path, instruction, &ctx, &refined, &err) != AGX_OK) {
            rc = agx_cli_fail(&err);
            fprintf(stderr, "agx: the plan buffer was left unchanged\n");
        } else {
            fprintf(stderr, "agx: refined with %s (%s); the buffer now holds %zu task%s\n",
                    agx_backend_type(delta), agx_backend_model_name(delta), refined.n_tasks,
                    refined.n_tasks == 1 ? "" : "s");
            agx_cli_print_plan(stdout, &refined, 0);
        }
    }
    agx_plan_free(&refined);
    agx_registry_free(&reg);
    agx_backend_destroy(delta);
    return rc;
}

static int plan_validate(int argc, char **argv, const agx_planner_config *cfg) {
    bool refine = false;
    const char *instruction = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--refine") == 0)
            refine = true;
        else if (refine && !instruction)
            instruction = argv[i];
        else
            return agx_cli_usage("'agx plan validate' takes only --refine [\"<instruction>\"], not '%s'",
                                 argv[i]);
    }
    if (refine) return plan_refine(cfg, instruction);
    agx_error err;
    agx_error_clear(&err);
    agx_plan plan;
    agx_registry reg = {0};
    if (agx_buffer_load(cfg->plan_path, &plan, &err) != AGX_OK) return agx_cli_fail(&err);
    if (agx_registry_load_default(&reg, &err) != AGX_OK) {
        agx_plan_free(&plan);
        return agx_cli_fail(&err);
    }
    agx_plan_limits limits = agx_plan_limits_default();
    agx_plan_problems problems = {0};
    int rc = AGX_EXIT_OK;
    if (agx_plan_validate(&plan, &reg, &limits, &problems, &err) != AGX_OK)
        rc = report_problems(&problems, &err, "the plan");
    else
        printf("plan is valid (%zu task%s)\n", plan.n_tasks, plan.n_tasks == 1 ? "" : "s");
    agx_plan_problems_free(&problems);
    agx_registry_free(&reg);
    agx_plan_free(&plan);
    return rc;
}

static int plan_parse(int argc, char **argv) {
    bool compact = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--compact") == 0)
            compact = true;
        else if (!path)
            path = argv[i];
        else
            return agx_cli_usage("'agx plan parse' takes one FILE (or - for stdin)");
    }
    agx_error err;
    agx_error_clear(&err);
    char *text = NULL;
    size_t len = 0;
    agx_status s;
    if (!path || strcmp(path, "-") == 0) {
        bool truncated = false;
        s = agx_stream_read_all(STDIN_FILENO, PARSE_MAX_BYTES, &text, &len, &truncated, &err);
        if (s == AGX_OK && truncated) {
            free(text);
            text = NULL;
            s = agx_error_set(&err, AGX_ERR_PARSE, "the model output on stdin is larger than %u bytes",
                              PARSE_MAX_BYTES);
        }
    } else {
        s = agx_file_read_all(path, PARSE_MAX_BYTES, &text, &len, &err);
    }
    if (s != AGX_OK) return agx_cli_fail(&err);
    agx_plan plan;
    s = agx_plan_parse_lenient(text, len, &plan, &err);
    free(text);
    if (s != AGX_OK) return agx_cli_fail(&err);
    char *json = agx_plan_to_json(&plan, compact ? AGX_JSON_COMPACT : AGX_JSON_PRETTY);
    agx_plan_free(&plan);
    if (!json) return AGX_EXIT_INTERNAL;
    printf("%s\n", json);
    free(json);
    return AGX_EXIT_OK;
}

int agx_cmd_plan(int argc, char **argv) {
    if (argc < 2) {
        fputs(plan_usage, stderr);
        return AGX_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (is_help(sub)) {
        fputs(plan_usage, stdout);
        return AGX_EXIT_OK;
    }
    /* for add only right after it: "help" may be a word of the instruction */
    for (int i = 2; i < argc; i++)
        if (is_help(argv[i]) && (strcmp(sub, "add") != 0 || (i == 2 && argv[i][0] == '-'))) {
            fputs(plan_usage, stdout);
            return AGX_EXIT_OK;
        }
    if (strcmp(sub, "parse") == 0) return plan_parse(argc - 1, argv + 1); /* needs no config */
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv, const agx_planner_config *cfg);
    } subs[] = {
        {"new", plan_new}, {"add", plan_add}, {"preview", plan_preview}, {"validate", plan_validate},
    };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(sub, subs[i].name) != 0) continue;
        agx_planner_config cfg;
        int rc = agx_cli_config(&cfg);
        if (rc != AGX_EXIT_OK) return rc;
        rc = subs[i].run(argc - 1, argv + 1, &cfg);
        agx_planner_config_free(&cfg);
        return rc;
    }
    return agx_cli_usage("unknown plan subcommand '%s' (new, add, preview, validate, parse)", sub);
}
