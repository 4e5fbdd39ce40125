"""One configuration: config/*.yaml (package data) < the G2BHUB_CONFIG file < G2BHUB_* environment <
arguments, every section typed, and one line per problem naming the file or variable and the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from hub.config import ConfigError, Settings, deep_merge, load_settings, redact_url, shipped_files, with_overrides


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from the defaults whatever the shell exported (test-only G2BHUB_TEST_* included)."""
    for name in list(os.environ):
        if name.startswith("G2BHUB_"):
            monkeypatch.delenv(name)


def write_config(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_defaults_come_from_the_packaged_yaml() -> None:
    [default] = [entry for entry in shipped_files() if entry.name == "default.yaml"]
    defaults = yaml.safe_load(default.read_text(encoding="utf-8"))
    settings = Settings()
    assert settings.database.url == defaults["database"]["url"]
    assert settings.broker.kind == "inprocess"
    assert settings.broker.delivery_limit == defaults["broker"]["delivery_limit"]
    assert settings.api.port == defaults["api"]["port"]
    assert settings.logging.json_format is defaults["logging"]["json"]


def test_config_file_overrides_defaults_key_by_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, {"broker": {"kind": "rabbitmq", "prefetch": 7}, "api": {"port": 9100}})
    monkeypatch.setenv("G2BHUB_CONFIG", str(path))
    settings = Settings()
    assert settings.broker.kind == "rabbitmq"
    assert settings.broker.prefetch == 7
    assert settings.api.port == 9100
    # siblings the file does not name keep their defaults (deep merge, not replacement)
    assert settings.broker.namespace == "g2bhub"
    assert settings.api.host == "127.0.0.1"


def test_environment_overrides_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, {"broker": {"prefetch": 7, "delivery_limit": 9}})
    monkeypatch.setenv("G2BHUB_CONFIG", str(path))
    monkeypatch.setenv("G2BHUB_BROKER__PREFETCH", "3")
    settings = Settings()
    assert settings.broker.prefetch == 3  # env wins
    assert settings.broker.delivery_limit == 9  # file still wins over defaults


def test_nested_environment_names_use_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_DATABASE__URL", "postgresql://hub:pw@db.internal:5432/hub")
    monkeypatch.setenv("G2BHUB_BROKER__KIND", "rabbitmq")
    monkeypatch.setenv("G2BHUB_RELAY__BATCH_SIZE", "50")
    monkeypatch.setenv("G2BHUB_LOGGING__JSON", "false")
    settings = Settings()
    assert settings.database.url == "postgresql://hub:pw@db.internal:5432/hub"
    assert settings.broker.kind == "rabbitmq"
    assert settings.relay.batch_size == 50
    assert settings.logging.json_format is False


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_BROKER__KIND", "kafka")
    with pytest.raises(ValueError, match="kind"):
        Settings()


def test_a_config_file_must_be_a_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    monkeypatch.setenv("G2BHUB_CONFIG", str(path))
    with pytest.raises(ValueError, match="mapping"):
        Settings()


def test_explicit_arguments_win_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_API__PORT", "9200")
    assert Settings(api={"port": 9300}).api.port == 9300  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://hub:s3cret@db:5432/hub", "postgresql://hub:***@db:5432/hub"),
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("amqps://u:p%40ss@mq.example:5671/vh?heartbeat=30", "amqps://u:***@mq.example:5671/vh?heartbeat=30"),
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
        ("sqlite:///./var/g2bhub.db", "sqlite:///./var/g2bhub.db"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_every_shipped_file_is_package_data_and_feeds_a_typed_section() -> None:
    names = [entry.name for entry in shipped_files()]
    assert names[0] == "default.yaml" and {"connectors.yaml", "suppliers.yaml"} <= set(names)
    settings = load_settings()
    assert settings.connectors["nts"].endpoint.startswith("http")
    assert settings.suppliers.applicable_systems["lei"] == ["gleif"]
    assert settings.suppliers.scheduler.interval_s == 60
    assert settings.syndication.publication.ocid_prefix == "ocds-g2bhub"  # a model default, no file


def test_sections_keep_their_names_in_files_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, {
        "connectors": {"nts": {"endpoint": "https://nts.example/api/"}},
        "suppliers": {"scheduler": {"interval_s": 5}, "applicable_systems": {"lei": []}},
        "syndication": {"time_scale": 0.5, "publication": {"ocid_prefix": "ocds-abc123"}},
    })
    monkeypatch.setenv("G2BHUB_CONFIG", str(path))
    key = "Wh1ecsGSA8xFQgxX2Y4ljG5nZ7Ki0-5PpZL8bqAmnqE="
    monkeypatch.setenv("G2BHUB_SYNDICATION__SECRET_KEYS", f'["{key}"]')
    monkeypatch.setenv("G2BHUB_SUPPLIERS__SCHEDULER__INTERVAL_S", "7")
    monkeypatch.setenv("G2BHUB_CONNECTORS__GLEIF__CONCURRENCY", "2")
    settings = load_settings()
    assert settings.connectors["nts"].endpoint == "https://nts.example/api"
    assert settings.connectors["nts"].kind == "rest" and settings.connectors["nts"].mapping is not None
    assert settings.connectors["gleif"].concurrency == 2
    assert settings.suppliers.scheduler.interval_s == 7  # env beats the file
    assert settings.suppliers.scheduler.max_claims_per_run == 1000  # the shipped file still fills the rest
    # a scheme's list is replaced as a whole; the other schemes keep the shipped lists
    assert settings.suppliers.applicable_systems["lei"] == []
    assert settings.suppliers.applicable_systems["eu_vat"] == ["vies"]
    assert settings.syndication.time_scale == 0.5
    assert settings.syndication.publication.ocid_prefix == "ocds-abc123"
    assert settings.syndication.secret_box().encrypts


@pytest.mark.parametrize(
    ("data", "origin_is_file", "line"),
    [
        ({"broker": {"kind": "kafka"}}, True, "broker.kind: Input should be 'inprocess' or 'rabbitmq'"),
        ({"syndicaton": {"time_scale": 0.5}}, True, "syndicaton: unknown key (did you mean 'syndication'?)"),
        ({"database": {"ur": "sqlite://"}}, True, "database.ur: unknown key (did you mean 'url'?)"),
        ({"syndication": {"time_scalex": 0.5}}, True, "syndication.time_scalex: unknown key (did you mean "
                                                      "'time_scale'?)"),
        ({"connectors": {"nts": {"timeouts": {"raed_s": 3}}}}, True,
         "connectors.nts.timeouts.raed_s: unknown key (did you mean 'read_s'?)"),
        ({"logging": {"jsn": True}}, True, "logging.jsn: unknown key (did you mean 'json'?)"),
        ({"api": {"zzz": 1}}, True, "api.zzz: unknown key"),
        ({"api": {"port": 70000}}, True, "api.port: Input should be less than or equal to 65535"),
        ({"api": {"port": 0}}, True, "api.port: Input should be greater than or equal to 1"),
        ({"broker": {"connection_attempts": 0}}, True, "broker.connection_attempts:"),
        ({"database": {"pool_size": 0}}, True, "database.pool_size:"),
        ({"syndication": {"retry_schedule_s": [0, -5]}}, True, "syndication.retry_schedule_s[1]:"),
        ({"connectors": {"nts": {"not_found_statuses": [40]}}}, True, "connectors.nts.not_found_statuses[0]:"),
        ({"connectors": {"nts": {"identifier_pattern": "("}}}, True,
         "connectors.nts.identifier_pattern: not a regular expression"),
        ({"database": {"url": "mysql://user:pw@db/hub"}}, True,
         "database.url: mysql:// is not a supported database: use sqlite:///PATH or postgresql://"),
        ({"connectors": {"nts": {"retry": {"max_attempts": 0}}}}, True, "connectors.nts.retry.max_attempts:"),
        ({"connectors": {"newsys": {"kind": "rest"}}}, True, "connectors.newsys.endpoint: Field required"),
        ({"suppliers": {"fetch": {"deadline_s": -1}}}, True, "suppliers.fetch.deadline_s:"),
        ({"suppliers": {"applicable_systems": {"lei": ["gleif", "nowhere"]}}}, True,
         "suppliers: applicable_systems.lei names systems without a connectors entry: ['nowhere']"),
        ({"syndication": {"publication": {"page_size": 0}}}, True, "syndication.publication.page_size:"),
    ],
)
def test_a_bad_file_value_is_one_line_naming_the_file_and_key(
    data: dict[str, object], origin_is_file: bool, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, data)
    monkeypatch.setenv("G2BHUB_CONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}: {line}")
    assert "\n" not in problem


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        ("G2BHUB_BROKER__PREFETCH", "many", "G2BHUB_BROKER__PREFETCH: broker.prefetch: Input should be a valid"),
        ("G2BHUB_SYNDICATION__TIME_SCALE", "2", "G2BHUB_SYNDICATION__TIME_SCALE: syndication.time_scale:"),
        ("G2BHUB_CONNECTORS__NTS__ENDPOINT", "ftp://x", "G2BHUB_CONNECTORS__NTS__ENDPOINT: connectors.nts.endpoint: "
                                                        "must be an http(s) URL"),
        ("G2BHUB_SYNDICATION__SECRET_KEYS", '["short"]', "G2BHUB_SYNDICATION__SECRET_KEYS: syndication.secret_keys: "
                                                         "secret_keys[0] is not a Fernet key"),
        ("G2BHUB_SYNDICATION__SECRET_KEYS", '["unclosed"', "G2BHUB_SYNDICATION__SECRET_KEYS: not valid JSON"),
    ],
)
def test_a_bad_environment_value_is_one_line_naming_the_variable_and_key(
    name: str, value: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the file sets the same section: the variable still wins, so it is the one named
    monkeypatch.setenv("G2BHUB_CONFIG", str(write_config(tmp_path, {"broker": {"prefetch": 4}})))
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.startswith(line) and "\n" not in problem


def test_every_problem_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_CONFIG", str(write_config(tmp_path, {"api": {"port": "x"}})))
    monkeypatch.setenv("G2BHUB_RELAY__BATCH_SIZE", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert sorted(p.split(":")[0] for p in caught.value.problems) == sorted([str(tmp_path / "override.yaml"),
                                                                              "G2BHUB_RELAY__BATCH_SIZE"])


def test_a_missing_or_broken_config_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.yaml"
    monkeypatch.setenv("G2BHUB_CONFIG", str(missing))
    with pytest.raises(ConfigError, match=f"^G2BHUB_CONFIG={missing}: cannot read the file"):
        load_settings()
    broken = tmp_path / "broken.yaml"
    broken.write_text("api:\n  port: [1\n", encoding="utf-8")
    monkeypatch.setenv("G2BHUB_CONFIG", str(broken))
    with pytest.raises(ConfigError, match=f"^{broken}: not valid YAML \\(line 3\\)"):
        load_settings()


def test_unrelated_g2bhub_variables_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_NTS_KEY", "a connector key_env")
    monkeypatch.setenv("G2BHUB_TEST_DATABASE_URL", "postgresql://x")
    assert load_settings().api.port == 8000


def test_one_deep_merge_merges_mappings_and_replaces_everything_else() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # inputs untouched


def test_with_overrides_validates_the_merged_copy() -> None:
    settings = load_settings()
    changed = with_overrides(settings, {"connectors": {"nts": {"endpoint": "http://127.0.0.1:9/nts/"}}})
    assert changed.connectors["nts"].endpoint == "http://127.0.0.1:9/nts"  # the validator ran
    assert changed.connectors["nts"].key is not None  # siblings kept
    assert settings.connectors["nts"].endpoint != changed.connectors["nts"].endpoint
    with pytest.raises(ValueError, match="endpoint"):
        with_overrides(settings, {"connectors": {"nts": {"endpoint": "ftp://x"}}})


@pytest.mark.parametrize("url", ["sqlite:///./x.db", "sqlite://", "postgresql://u:p@h:5432/db",
                                 "postgres://u@h/db", "postgresql+psycopg://u@h/db"])
def test_the_supported_database_urls_are_accepted(url: str) -> None:
    assert load_settings(database={"url": url}).database.url == url


def test_an_unsupported_database_url_hides_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(database={"url": "oracle://scott:tiger@db/hub"})
    [problem] = caught.value.problems
    assert problem.startswith("arguments: database.url: oracle:// is not a supported database")
    assert "tiger" not in problem


def test_a_variable_that_switches_a_kind_is_named_not_the_file_that_set_the_other_kinds_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("G2BHUB_CONNECTORS__NTS__KIND", "soap")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    keys_of_rest = [p for p in caught.value.problems if " takes no key " in p]
    assert keys_of_rest and all(p.startswith("G2BHUB_CONNECTORS__NTS__KIND: connectors.nts.kind: soap takes no key ")
                                and p.endswith("config/connectors.yaml)") for p in keys_of_rest)


def test_a_key_of_another_kind_set_by_a_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_CONNECTORS__NTS__OPERATION", "checkVat")  # a SOAP key on a REST system
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == ["G2BHUB_CONNECTORS__NTS__OPERATION: connectors.nts.operation: unknown key"]


@pytest.mark.parametrize(
    ("url", "migrate_on_start", "flag", "expected"),
    [
        ("sqlite:///./hub.db", None, None, True),
        ("postgresql://u@h/db", None, None, False),
        ("postgresql://u@h/db", True, None, True),
        ("sqlite:///./hub.db", False, None, False),
        ("sqlite:///./hub.db", True, False, False),
        ("postgresql://u@h/db", False, True, True),
    ],
)
def test_serve_migrates_as_migrate_on_start_says_unless_the_flag_does(
    url: str, migrate_on_start: bool | None, flag: bool | None, expected: bool
) -> None:
    from hub.cli.runtime import should_migrate

    settings = load_settings(database={"url": url, "migrate_on_start": migrate_on_start})
    assert should_migrate(settings, flag) is expected
