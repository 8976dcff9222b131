/* test_planner_config.c — AGX_* configuration: defaults, backend selection
 * (explicit, implied by a model path, unknown values), malformed values named
 * in the error, per-role model paths, and the backend factory. */
#include "agx_test.h"

#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"

static const char *const all_vars[] = {
    "AGX_BACKEND", "AGX_ECHO_MODEL", "AGX_DELTA_MODEL", "AGX_MODEL_PATH", "AGX_MODEL_ROLE",
    "AGX_DEVICE", "AGX_CANDLE_TEMPERATURE", "AGX_CANDLE_TOP_P", "AGX_CANDLE_MAX_TOKENS",
    "AGX_CANDLE_SEED", "AGX_CANDLE_CONTEXT_SIZE", "AGX_THREADS", "AGX_OLLAMA_MODEL",
    "AGX_OLLAMA_HOST", "OLLAMA_HOST", "AGX_OLLAMA_TIMEOUT_SECS", "AGX_OPENAI_BASE_URL",
    "AGX_OPENAI_MODEL", "AGX_OPENAI_API_KEY", "AGX_OPENAI_TIMEOUT_SECS", "AGX_PLAN_PATH",
};

static int clean_env(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++) unsetenv(all_vars[i]);
    setenv("TMPDIR", "/var/tmp/agx-test", 1);
    return 0;
}

static void test_defaults(void **state) {
    (void)state;
    agx_planner_config cfg;
    agx_error err;
    assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_OK);
    assert_int_equal(cfg.backend, AGX_BACKEND_RULES);
    assert_false(cfg.backend_explicit);
    assert_null(cfg.echo_model);
    assert_null(cfg.delta_model);
    assert_null(cfg.model_path);
    assert_int_equal(cfg.role, AGX_ROLE_ECHO);
    assert_string_equal(cfg.device, "auto");
    assert_true(cfg.temperature > 0.69 && cfg.temperature < 0.71);
    assert_true(cfg.top_p > 0.89 && cfg.top_p < 0.91);
    assert_int_equal(cfg.max_tokens, 2048);
    assert_int_equal(cfg.context_size, 2048);
    assert_false(cfg.seed_set);
    assert_int_equal(cfg.threads, 0);
    assert_string_equal(cfg.ollama_model, "phi3:mini");
    assert_string_equal(cfg.ollama_host, "http://127.0.0.1:11434");
    assert_int_equal(cfg.ollama_timeout_secs, 300);
    assert_int_equal(cfg.openai_timeout_secs, 300);
    assert_null(cfg.openai_base_url);
    assert_null(cfg.openai_api_key);
    assert_string_equal(cfg.plan_path, "/var/tmp/agx-test/agx-plan.json");
    agx_planner_config_free(&cfg);
    unsetenv("TMPDIR");
    assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_OK);
    assert_string_equal(cfg.plan_path, "/tmp/agx-plan.json");
    agx_planner_config_free(&cfg);
}

static void test_values_are_read(void **state) {
    (void)state;
    setenv("AGX_CANDLE_TEMPERATURE", "0.2", 1);
    setenv("AGX_CANDLE_TOP_P", "0.5", 1);
    setenv("AGX_CANDLE_MAX_TOKENS", "64", 1);
    setenv("AGX_CANDLE_SEED", "42", 1);
    setenv("AGX_CANDLE_CONTEXT_SIZE", "4096", 1);
    setenv("AGX_THREADS", "3", 1);
    setenv("AGX_MODEL_ROLE", "Delta", 1);
    setenv("AGX_DEVICE", "CPU", 1);
    setenv("OLLAMA_HOST", "http://ollama:1", 1);
    setenv("AGX_OLLAMA_MODEL", "qwen2:0.5b", 1);
    setenv("AGX_OPENAI_BASE_URL", "http://vllm:8000/v1", 1);
    setenv("AGX_OPENAI_API_KEY", "sk-secret", 1);
    setenv("AGX_PLAN_PATH", "/x/y.json", 1);
    agx_planner_config cfg;
    agx_error err;
    assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_OK);
    assert_true(cfg.temperature > 0.19 && cfg.temperature < 0.21);
    assert_true(cfg.top_p > 0.49 && cfg.top_p < 0.51);
    assert_int_equal(cfg.max_tokens, 64);
    assert_true(cfg.seed_set);
    assert_int_equal(cfg.seed, 42);
    assert_int_equal(cfg.context_size, 4096);
    assert_int_equal(cfg.threads, 3);
    assert_int_equal(cfg.role, AGX_ROLE_DELTA);
    assert_string_equal(cfg.device, "cpu");
    assert_string_equal(cfg.ollama_host, "http://ollama:1"); /* OLLAMA_HOST as fallback */
    assert_string_equal(cfg.ollama_model, "qwen2:0.5b");
    assert_string_equal(cfg.openai_base_url, "http://vllm:8000/v1");
    assert_string_equal(cfg.openai_api_key, "sk-secret");
    assert_string_equal(cfg.plan_path, "/x/y.json");
    agx_planner_config_free(&cfg);
    assert_null(cfg.openai_api_key);
    setenv("AGX_OLLAMA_HOST", "http://mine:2", 1); /* AGX_ wins over OLLAMA_HOST */
    assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_OK);
    assert_string_equal(cfg.ollama_host, "http://mine:2");
    agx_planner_config_free(&cfg);
}

static void test_backend_selection(void **state) {
    (void)state;
    agx_planner_config cfg;
    agx_error err;
    static const char *const model_vars[] = {"AGX_ECHO_MODEL", "AGX_DELTA_MODEL", "AGX_MODEL_PATH"};
    for (size_t i = 0; i < 3; i++) {
        clean_env(NULL);
        setenv(model_vars[i], "/models/m.gguf", 1);
        assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_OK);
        assert_int_equal(cfg.backend, AGX_BACKEND_NATIVE); /* a model implies native */
        assert_false(cfg.backend_explicit);
        agx_planner_config_free(&cfg);
    }
    static const struct {
        const char *value;
        agx_backend_kind kind;
    } names[] = {{"native", AGX_BACKEND_NATIVE}, {"candle", AGX_BACKEND_NATIVE},
                 {"Ollama", AGX_BACKEND_OLLAMA}, {"openai", AGX_BACKEND_OPENAI},
                 {" rules ", AGX_BACKEND_RULES}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        setenv("AGX_BACKEND", names[i].value, 1); /* the model from above stays set */
        assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_OK);
        assert_int_equal(cfg.backend, names[i].kind);
        assert_true(cfg.backend_explicit);
        agx_planner_config_free(&cfg);
    }
    setenv("AGX_BACKEND", "llamacpp", 1);
    assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "AGX_BACKEND='llamacpp'"));
    static const char *const valid[] = {"native", "candle", "ollama", "openai", "rules"};
    for (size_t i = 0; i < 5; i++) assert_non_null(strstr(err.message, valid[i]));
    assert_int_equal(agx_status_exit_code(err.code), AGX_EXIT_CONFIG);
    assert_string_equal(agx_backend_kind_name(AGX_BACKEND_NATIVE), "native");
    assert_string_equal(agx_backend_kind_name(AGX_BACKEND_OLLAMA), "ollama");
    assert_string_equal(agx_backend_kind_name(AGX_BACKEND_OPENAI), "openai");
    assert_string_equal(agx_backend_kind_name(AGX_BACKEND_RULES), "rules");
}

static void test_malformed_values_name_the_variable(void **state) {
    (void)state;
    static const struct {
        const char *var, *value;
    } bad[] = {
        {"AGX_CANDLE_TEMPERATURE", "hot"}, {"AGX_CANDLE_TEMPERATURE", "-1"},
        {"AGX_CANDLE_TOP_P", "1.5"},       {"AGX_CANDLE_MAX_TOKENS", "0"},
        {"AGX_CANDLE_MAX_TOKENS", "12x"},  {"AGX_CANDLE_SEED", "seed"},
        {"AGX_CANDLE_CONTEXT_SIZE", "-5"}, {"AGX_THREADS", "-2"},
        {"AGX_OLLAMA_TIMEOUT_SECS", "0"},  {"AGX_OPENAI_TIMEOUT_SECS", "soon"},
        {"AGX_MODEL_ROLE", "gamma"},       {"AGX_DEVICE", "tpu"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clean_env(NULL);
        setenv(bad[i].var, bad[i].value, 1);
        agx_planner_config cfg;
        agx_error err;
        agx_error_clear(&err);
        assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_ERR_CONFIG);
        if (!strstr(err.message, bad[i].var)) fail_msg("%s=%s: '%s'", bad[i].var, bad[i].value, err.message);
        assert_null(cfg.plan_path); /* nothing leaks on failure */
    }
}

static void test_model_for_role(void **state) {
    (void)state;
    agx_planner_config cfg;
    agx_error err;
    setenv("AGX_MODEL_PATH", "/m/any.gguf", 1);
    assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_OK);
    assert_string_equal(agx_planner_model_for_role(&cfg, AGX_ROLE_ECHO), "/m/any.gguf");
    assert_string_equal(agx_planner_model_for_role(&cfg, AGX_ROLE_DELTA), "/m/any.gguf");
    agx_planner_config_free(&cfg);
    setenv("AGX_ECHO_MODEL", "/m/echo.gguf", 1);
    setenv("AGX_DELTA_MODEL", "/m/delta.gguf", 1);
    assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_OK);
    assert_string_equal(agx_planner_model_for_role(&cfg, AGX_ROLE_ECHO), "/m/echo.gguf");
    assert_string_equal(agx_planner_model_for_role(&cfg, AGX_ROLE_DELTA), "/m/delta.gguf");
    agx_planner_config_free(&cfg);
    clean_env(NULL);
    assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_OK);
    assert_null(agx_planner_model_for_role(&cfg, AGX_ROLE_ECHO));
    agx_planner_config_free(&cfg);
}

static void test_factory_builds_rules(void **state) {
    (void)state;
    agx_planner_config cfg;
    agx_error err;
    assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_OK);
    for (int role = AGX_ROLE_ECHO; role <= AGX_ROLE_DELTA; role++) {
        agx_backend *b = NULL;
        assert_int_equal(agx_planner_create_backend(&cfg, (agx_model_role)role, &b, &err), AGX_OK);
        assert_non_null(b);
        assert_string_equal(agx_backend_type(b), "rules");
        assert_int_equal(agx_backend_health_check(b, &err), AGX_OK);
        agx_backend_destroy(b);
    }
    /* every other kind either builds a backend of that type or says why not as a config error */
    static const agx_backend_kind others[] = {AGX_BACKEND_NATIVE, AGX_BACKEND_OLLAMA, AGX_BACKEND_OPENAI};
    for (size_t i = 0; i < 3; i++) {
        cfg.backend = others[i];
        agx_backend *b = NULL;
        agx_error_clear(&err);
        agx_status s = agx_planner_create_backend(&cfg, AGX_ROLE_ECHO, &b, &err);
        if (s == AGX_OK) {
            assert_string_equal(agx_backend_type(b), agx_backend_kind_name(others[i]));
            agx_backend_destroy(b);
        } else {
            assert_null(b);
            assert_true(strlen(err.message) > 10);
            assert_int_not_equal(err.code, AGX_OK);
        }
    }
    agx_planner_config_free(&cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clean_env),
        cmocka_unit_test_setup(test_values_are_read, clean_env),
        cmocka_unit_test_setup(test_backend_selection, clean_env),
        cmocka_unit_test_setup(test_malformed_values_name_the_variable, clean_env),
        cmocka_unit_test_setup(test_model_for_role, clean_env),
        cmocka_unit_test_setup(test_factory_builds_rules, clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
