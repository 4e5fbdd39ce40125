"""No secret reaches a log line, whoever writes it: the hub's handler redacts key parameters in URLs,
Authorization values, URL passwords and every secret value the settings hold, in the message, its
arguments, its extra fields and the exception text, for third-party loggers too."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from hub.cli.config_cmd import effective
from hub.config import Settings, known_secrets
from hub.spine.observability.logging import RedactingFilter, Redactor, configure_logging, register_secrets
from hub.spine.settings import LoggingSettings, redact_url


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "pika", "uvicorn.error")}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def captured(json_format: bool = True, **settings: Any) -> io.StringIO:
    logs = io.StringIO()
    configure_logging(LoggingSettings(level="INFO", json=json_format, **settings), stream=logs)
    return logs


@pytest.mark.parametrize(("text", "expected"), [
    ("POST http://nts.example/api/status?serviceKey=abc%2Bdef&page=1 200",
     "POST http://nts.example/api/status?serviceKey=***&page=1 200"),
    ("GET https://x.example/?ServiceKey=abc", "GET https://x.example/?ServiceKey=***"),
    ("GET https://x.example/a?page=2&api_key=abc#top", "GET https://x.example/a?page=2&api_key=***#top"),
    ("postgresql://hub@db/hub?sslmode=require&sslpassword=s3cr3t", "postgresql://hub@db/hub?sslmode=require&sslpassword=***"),
    ("'https://x.example/?token=abc'", "'https://x.example/?token=***'"),
    ("postgresql://hub:pw@db:5432/hub", "postgresql://hub:***@db:5432/hub"),
    ("Authorization: Bearer eyJhbGciOi.xyz", "Authorization: Bearer ***"),
    ("{'authorization': 'Basic dXNlcjpwdw==', 'accept': 'json'}", "{'authorization': 'Basic ***', 'accept': 'json'}"),
    ('"Proxy-Authorization": "tok123"', '"Proxy-Authorization": "***"'),
    ("x-http-authorization=abc", "x-http-authorization=***"),
    ("key g2b_0a1b_SeCrEt-part", "key g2b_0a1b_***"),
    ("?monkey=1&keyboard=2 the key=value in prose", "?monkey=1&keyboard=2 the key=value in prose"),
])
def test_shapes_of_secrets_are_redacted(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


def test_known_values_are_redacted_wherever_they_occur_also_url_encoded() -> None:
    redactor = Redactor(secrets=["abc+def/ghi=", "short"])
    assert redactor.redact("key abc+def/ghi= then abc%2Bdef%2Fghi%3D") == "key *** then ***"
    assert redactor.redact("short is too short to hunt in prose") == "short is too short to hunt in prose"


def test_third_party_records_are_redacted_message_args_extra_and_exception(restore_logging: None) -> None:
    register_secrets(["CANARY-KNOWN-0001"])
    logs = captured(levels={"httpx": "INFO"})
    url = "http://nts.example/api/status?serviceKey=CANARY-QS-0001"
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s %d %s"', "POST", url, "HTTP/1.1", 200, "OK")
    logging.getLogger("pika.adapters").warning("connecting to amqp://hub:CANARY-PW-0001@mq.example:5672/")
    logging.getLogger("hub.test").info("config", extra={"headers": {"Authorization": "Bearer CANARY-AUTH-0001"},
                                                         "note": "the value CANARY-KNOWN-0001 again"})
    try:
        raise RuntimeError(f"upstream {url} refused CANARY-KNOWN-0001")
    except RuntimeError:
        logging.getLogger("sqlalchemy.pool").exception("checkout failed for %s", url)
    text = logs.getvalue()
    assert "CANARY" not in text, text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["message"] == 'HTTP Request: POST http://nts.example/api/status?serviceKey=*** "HTTP/1.1 200 OK"'
    assert "amqp://hub:***@mq.example:5672/" in lines[1]["message"]
    assert lines[2]["headers"] == {"Authorization": "***"} and lines[2]["note"] == "the value *** again"
    assert "RuntimeError: upstream http://nts.example/api/status?serviceKey=*** refused ***" in lines[3]["exc_info"]


def test_text_format_is_redacted_too(restore_logging: None) -> None:
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.addHandler(logging.StreamHandler(io.StringIO()))  # as uvicorn's own dictConfig leaves it
    uvicorn.propagate = False
    logs = captured(json_format=False)  # takes the uvicorn loggers back
    try:
        raise ValueError("dsn postgresql://u:CANARY-PW-0002@db/x?sslpassword=CANARY-SSL-0002")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("failed: %r", {"Authorization": "Basic CANARY-B-0002"})
    text = logs.getvalue()
    assert "CANARY" not in text and "postgresql://u:***@db/x?sslpassword=***" in text and "Basic ***" in text


def test_arguments_that_do_not_fit_the_format_are_redacted_too() -> None:
    record = logging.LogRecord("pika", logging.WARNING, __file__, 1, "two %s %s",
                               ("http://x.example/?token=CANARY-ARG-0004",), None)
    assert RedactingFilter().filter(record)
    assert record.args == () and "CANARY" not in record.msg and "http://x.example/?token=***" in record.msg


def test_httpx_request_lines_are_quiet_by_default(restore_logging: None) -> None:
    logs = captured()
    logging.getLogger("httpx").info("HTTP Request: GET http://x.example/")
    assert logs.getvalue() == ""
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING


def test_extra_query_params_can_be_configured(restore_logging: None) -> None:
    logs = captured(redact_query_params=["crtfcKey"])
    logging.getLogger("hub.test").warning("GET http://dart.example/api?crtfcKey=abc123&corp=1&serviceKey=x")
    # the configured name is added; the defaults stay
    assert json.loads(logs.getvalue())["message"] == "GET http://dart.example/api?crtfcKey=***&corp=1&serviceKey=***"
    configure_logging(LoggingSettings())  # back to the defaults for the rest of the process


def canary_settings() -> Settings:
    return Settings(
        database={"url": "postgresql://hub:CANARY-DB-PW-0003@db.example:5432/hub?sslpassword=CANARY-DB-SSL-0003"},
        connectors={
            "nts": {"endpoint": "http://nts.example/api?serviceKey=CANARY-SK-EP-0003", "key": "CANARY-SK-0003",
                    "key_env": None},
            "gleif": {"headers": {"Authorization": "Bearer CANARY-AUTH-0003", "Accept": "application/json",
                                  "X-Tenant-Token": "CANARY-TENANT-0003"}},
        },
        syndication={"secret_keys": ["Q0FOQVJZLUZFUk5FVC0wMDAzLTAwMDAwMDAwMDAwMDA="]},
    )


def test_settings_know_their_secrets() -> None:
    secrets = known_secrets(canary_settings())
    assert {"CANARY-DB-PW-0003", "CANARY-DB-SSL-0003", "CANARY-SK-EP-0003", "CANARY-SK-0003", "CANARY-AUTH-0003",
            "CANARY-TENANT-0003", "Q0FOQVJZLUZFUk5FVC0wMDAzLTAwMDAwMDAwMDAwMDA="} <= secrets
    assert "application/json" not in secrets  # hunted in every log line otherwise


def test_config_show_redacts_by_value_and_keeps_flags() -> None:
    shown = effective(canary_settings())
    assert "CANARY" not in json.dumps(shown) and "Q0FOQVJZ" not in json.dumps(shown)
    assert shown["database"]["url"] == "postgresql://hub:***@db.example:5432/hub?sslpassword=***"
    assert shown["connectors"]["nts"]["endpoint"] == "http://nts.example/api?serviceKey=***"
    # config show hides every header value all the same
    assert shown["connectors"]["gleif"]["headers"] == {"Authorization": "***", "Accept": "***", "X-Tenant-Token": "***"}
    assert shown["syndication"]["allow_private_targets"] is False
    assert shown["database"]["pool_size"] == 10


def test_redact_url_hides_key_parameters_too() -> None:
    assert redact_url("postgresql://hub:pw@db/hub?sslmode=require&sslpassword=x") == (
        "postgresql://hub:***@db/hub?sslmode=require&sslpassword=***")
    assert redact_url("https://nts.example/api?ServiceKey=x&page=1") == "https://nts.example/api?ServiceKey=***&page=1"


def test_a_level_that_is_no_level_is_refused() -> None:
    with pytest.raises(ValueError, match="httpx: 'LOUD' is not a log level"):
        LoggingSettings(levels={"httpx": "LOUD"})
