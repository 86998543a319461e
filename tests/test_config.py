"""config.py: built-in defaults < parameters.json < environment < overrides, typed and checked."""

import json

import pytest

from predictionservice import defaults
from predictionservice.config import ConfigError, load_parameters, parameters_path, settings_markdown
from predictionservice.defaults import SETTINGS


def write(tmp_path, content, name="parameters.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_an_empty_file_and_no_environment_give_the_built_in_defaults(tmp_path):
    params = load_parameters(write(tmp_path, {}), environ={})
    assert params == {key: setting.default for key, setting in SETTINGS.items()}
    assert params["port"] == 5000 and params["host"] == "127.0.0.1"
    assert params["algorithms"] == ["LogisticRegressionWrapper", "LinearRegressionWrapper", "RandomForestWrapper"]
    assert params["mongodb_allowed_hosts"] == [] and params["redis_timeout"] == 5.0
    assert params["access_log"] is True and params["autoreload"] is False


def test_defaults_returns_fresh_lists():
    first = defaults.defaults()
    first["algorithms"].append("Other")
    first["mongodb_allowed_hosts"].append("evil:1")
    assert SETTINGS["algorithms"].default == [
        "LogisticRegressionWrapper",
        "LinearRegressionWrapper",
        "RandomForestWrapper",
    ]
    assert SETTINGS["mongodb_allowed_hosts"].default == []
    assert defaults.defaults()["algorithms"] == [
        "LogisticRegressionWrapper",
        "LinearRegressionWrapper",
        "RandomForestWrapper",
    ]


def test_the_file_overrides_defaults(tmp_path):
    file = write(
        tmp_path,
        {
            "_comment": "ignored",
            "port": 6001,
            "host": "0.0.0.0",
            "autoreload": True,
            "redis_timeout": 2.5,
            "algorithms": ["A", "B"],
        },
    )
    params = load_parameters(file, environ={})
    assert params["port"] == 6001 and params["host"] == "0.0.0.0"
    assert params["autoreload"] is True and params["redis_timeout"] == 2.5
    assert params["algorithms"] == ["A", "B"]
    assert "_comment" not in params
    assert params["threads"] == 16  # untouched keys keep their default


def test_the_environment_wins_over_the_file_and_overrides_win_over_both(tmp_path):
    file = write(tmp_path, {"port": 6001, "log_level": "DEBUG"})
    params = load_parameters(file, environ={"PORT": "7002"})
    assert params["port"] == 7002
    assert params["log_level"] == "DEBUG"
    params = load_parameters(file, environ={"PORT": "7002"}, overrides={"port": 7003})
    assert params["port"] == 7003


def test_parameters_file_is_found_through_the_environment(tmp_path):
    file = write(tmp_path, {"threads": 3}, name="other.json")
    assert parameters_path(None, {"PARAMETERS_FILE": str(file)}) == file
    assert load_parameters(environ={"PARAMETERS_FILE": str(file)})["threads"] == 3
    # an explicit argument beats the environment variable
    second = write(tmp_path, {"threads": 4}, name="second.json")
    assert load_parameters(second, environ={"PARAMETERS_FILE": str(file)})["threads"] == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("false", False), ("Off", False)],
)
def test_bool_settings_from_environment_strings(tmp_path, text, expected):
    params = load_parameters(write(tmp_path, {}), environ={"AUTORELOAD": text, "ACCESS_LOG": text})
    assert params["autoreload"] is expected and params["access_log"] is expected


def test_empty_bool_variable_means_false(tmp_path):
    assert load_parameters(write(tmp_path, {}), environ={"ACCESS_LOG": ""})["access_log"] is False


def test_int_float_and_list_settings_from_environment_strings(tmp_path):
    params = load_parameters(
        write(tmp_path, {}),
        environ={
            "PORT": "8080",
            "MODELS_DB": "3",
            "REDIS_TIMEOUT": "0.25",
            "SPARK_PARTITION_MB": "8",
            "ALGORITHMS": " A, B ,,C ",
            "MONGODB_ALLOWED_HOSTS": "db1.example.com:27018,db2",
            "AUTH_TOKEN": "s3cret",
        },
    )
    assert params["port"] == 8080 and type(params["port"]) is int
    assert params["models_db"] == 3
    assert params["redis_timeout"] == 0.25 and type(params["redis_timeout"]) is float
    assert params["spark_partition_mb"] == 8.0 and type(params["spark_partition_mb"]) is float
    assert params["algorithms"] == ["A", "B", "C"]
    assert params["mongodb_allowed_hosts"] == ["db1.example.com:27018", "db2"]
    assert params["auth_token"] == "s3cret"


def test_an_empty_list_variable_is_an_empty_list(tmp_path):
    assert load_parameters(write(tmp_path, {}), environ={"MONGODB_ALLOWED_HOSTS": ""})["mongodb_allowed_hosts"] == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORT", "80.5", "$PORT: setting 'port' must be a int, got '80.5'"),
        ("PORT", "http", "$PORT: setting 'port' must be a int, got 'http'"),
        ("AUTORELOAD", "maybe", "$AUTORELOAD: setting 'autoreload' must be a bool, got 'maybe'"),
        ("REDIS_TIMEOUT", "soon", "$REDIS_TIMEOUT: setting 'redis_timeout' must be a float, got 'soon'"),
    ],
)
def test_a_wrong_environment_value_is_a_config_error_naming_the_setting(tmp_path, variable, value, message):
    with pytest.raises(ConfigError) as caught:
        load_parameters(write(tmp_path, {}), environ={variable: value})
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"port": "abc"}, "setting 'port' must be a int, got 'abc'"),
        ({"port": True}, "setting 'port' must be a int, got True"),
        ({"host": 5}, "setting 'host' must be a str, got 5"),
        ({"access_log": 3}, "setting 'access_log' must be a bool, got 3"),
        ({"algorithms": [1, 2]}, "setting 'algorithms' must be a list, got [1, 2]"),
        ({"algorithms": {"a": 1}}, "setting 'algorithms' must be a list, got {'a': 1}"),
    ],
)
def test_a_wrong_type_in_the_file_is_a_config_error_naming_the_setting(tmp_path, content, message):
    file = write(tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        load_parameters(file, environ={})
    assert str(caught.value) == f"{file}: {message}"


@pytest.mark.parametrize("value", [None, [1], {"n": 1}])
def test_a_null_or_structured_value_for_a_number_setting_is_a_config_error(tmp_path, value):
    file = write(tmp_path, {"port": value})
    with pytest.raises(ConfigError, match="setting 'port' must be a int"):
        load_parameters(file, environ={})


def test_a_fractional_number_for_an_int_setting_is_refused(tmp_path):
    file = write(tmp_path, {"threads": 2.7})
    with pytest.raises(ConfigError, match=r"setting 'threads' must be a int, got 2\.7"):
        load_parameters(file, environ={})


def test_a_boolean_for_a_float_setting_is_refused(tmp_path):
    file = write(tmp_path, {"redis_timeout": True})
    with pytest.raises(ConfigError, match="setting 'redis_timeout' must be a float, got True"):
        load_parameters(file, environ={})


def test_an_unknown_key_in_the_file_is_a_config_error(tmp_path):
    file = write(tmp_path, {"port": 1, "prot": 2, "colour": "red"})
    with pytest.raises(ConfigError) as caught:
        load_parameters(file, environ={})
    assert str(caught.value) == f"{file}: unknown setting(s) colour, prot"


def test_a_file_that_is_not_a_json_object_is_a_config_error(tmp_path):
    file = write(tmp_path, [1, 2])
    with pytest.raises(ConfigError) as caught:
        load_parameters(file, environ={})
    assert str(caught.value) == f"{file}: must hold a JSON object"


def test_a_file_that_is_not_json_is_a_config_error(tmp_path):
    file = write(tmp_path, '{"port": 5000,')
    with pytest.raises(ConfigError) as caught:
        load_parameters(file, environ={})
    assert str(caught.value).startswith(f"{file}: not readable JSON (")


def test_a_missing_explicit_path_is_a_config_error(tmp_path):
    missing = tmp_path / "nowhere" / "parameters.json"
    with pytest.raises(ConfigError) as caught:
        load_parameters(missing, environ={})
    assert str(caught.value) == f"{missing}: no such file"


def test_an_unknown_override_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_parameters(write(tmp_path, {}), environ={}, overrides={"nope": 1})
    assert str(caught.value) == "unknown setting 'nope'"


def test_overrides_are_coerced_and_checked(tmp_path):
    file = write(tmp_path, {})
    assert load_parameters(file, environ={}, overrides={"port": "9000"})["port"] == 9000
    with pytest.raises(ConfigError) as caught:
        load_parameters(file, environ={}, overrides={"port": "x"})
    assert str(caught.value) == "override: setting 'port' must be a int, got 'x'"


def test_settings_markdown_lists_every_setting_with_its_environment_variable():
    lines = settings_markdown().splitlines()
    assert lines[:2] == ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    rows = lines[2:]
    assert len(rows) == len(SETTINGS)
    for (key, setting), row in zip(SETTINGS.items(), rows, strict=True):
        assert row.startswith(f"| `{key}` | `{setting.env}` | `")
        assert row.endswith(f" | {setting.doc} |")
    assert "| `port` | `PORT` | `5000` | TCP port of the web server. |" in rows
    assert rows[list(SETTINGS).index("auth_token")].startswith('| `auth_token` | `AUTH_TOKEN` | `""` |')
    assert rows[list(SETTINGS).index("algorithms")].startswith(
        "| `algorithms` | `ALGORITHMS` | `LogisticRegressionWrapper,LinearRegressionWrapper,RandomForestWrapper` |"
    )
    assert rows[list(SETTINGS).index("mongodb_allowed_hosts")].startswith(
        '| `mongodb_allowed_hosts` | `MONGODB_ALLOWED_HOSTS` | `""` |'
    )


def test_every_environment_variable_is_distinct_and_named_after_its_setting():
    envs = [s.env for s in SETTINGS.values()]
    assert len(set(envs)) == len(envs)
    assert all(s.env == key.upper() for key, s in SETTINGS.items())


def test_a_parameters_file_named_in_the_environment_must_exist(tmp_path):
    missing = tmp_path / "nowhere.json"
    with pytest.raises(ConfigError, match="no such file"):
        load_parameters(environ={"PARAMETERS_FILE": str(missing)})


def test_the_manual_s_configuration_table_is_the_generated_one():
    """The manual's table is `python -m predictionservice.config --markdown`, put in its page when
    it is built (docs/hooks.py): it cannot miss a setting."""
    from helpers import ROOT, docs_hooks

    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page.count(docs_hooks().SETTINGS_MARKER) == 1 and "| setting |" not in page  # generated, never copied
    assert docs_hooks().settings_table() == settings_markdown()


def test_relative_paths_are_the_checkout_s_or_when_installed_the_working_directory_s(tmp_path, monkeypatch):
    """In a checkout, the project folder wherever the command runs; installed from a wheel (the
    modules' folder holds no pyproject.toml), the working directory: never site-packages."""
    from predictionservice import config

    assert config.work_dir() == config.PROJECT_DIR
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(config, "PROJECT_DIR", site)
    monkeypatch.chdir(tmp_path)
    assert config.work_dir() == tmp_path
    assert parameters_path(environ={}) == tmp_path / "parameters.json"
