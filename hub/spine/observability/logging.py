"""Structured logs: one JSON object per line, each carrying the id of the request being handled.

Why: one ``grep <request id>`` then finds the access line, every line the handlers wrote and the
correlation id of every event the request raised (the API passes the request id to the bus). The id
travels in a :class:`~contextvars.ContextVar`, which Starlette copies into the worker threads that run
sync endpoints, so code deep in the service layer needs no extra argument.

Secrets must never reach a log, whoever writes the line (the hub, httpx logging a request URL, uvicorn,
pika, SQLAlchemy): the hub's handler carries a :class:`RedactingFilter` that rewrites every record —
message, arguments, exception text — and its formatters redact every field again before a line is
written. What is hidden: API keys (``g2b_<id>_***``), query values of key parameters
(``?serviceKey=***``: ``DEFAULT_REDACT_QUERY_PARAMS`` and ``logging.redact_query_params``), ``Authorization`` /
``Proxy-Authorization`` values, URL passwords (``user:***@``) and every known secret value (the
settings register theirs with :func:`register_secrets` when they load). It is a last line of defence
behind the rule that nobody logs a secret in the first place.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import IO, Any
from urllib.parse import quote, quote_plus

from pythonjsonlogger.json import JsonFormatter

from hub.spine.settings import DEFAULT_REDACT_QUERY_PARAMS, LoggingSettings

__all__ = [
    "RedactingFilter",
    "RedactingJsonFormatter",
    "RedactingTextFormatter",
    "Redactor",
    "RequestIdFilter",
    "adopt_loggers",
    "configure_logging",
    "redact",
    "redact_api_keys",
    "register_secrets",
    "request_id_var",
]

request_id_var: ContextVar[str | None] = ContextVar("g2bhub_request_id", default=None)

MASK = "***"
# Shorter values are too likely to occur in ordinary text (``guest``); they are still hidden wherever the
# structure gives them away (a URL password, a key parameter, an Authorization header).
MIN_SECRET_LENGTH = 8

# ``g2b_<key id>_<secret>``: keep the key id (useful, not secret), hide the secret.
_API_KEY = re.compile(r"\bg2b_([0-9A-Za-z]+)_[0-9A-Za-z_\-]+")
# ``scheme://user:password@host``: keep the user, hide the password.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@'\"]*):[^\s/@'\"]*@")
# ``Authorization: Bearer abc``, ``'authorization': 'Basic abc'``, ``Proxy-Authorization=abc``: keep the
# scheme word when there is one, hide the credentials.
_AUTHORIZATION = re.compile(
    r"(?i)(\b(?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)"
    r"(?:(basic|bearer|digest|token|negotiate|infuser)\s+)?[^\s'\",}]+")
# Fields of structured data (``extra={"headers": {...}}``) whose whole value is a secret.
_SECRET_FIELD = re.compile(r"(?i)authorization|password|passwd|secret|token|api[_-]?key|cookie|^key$")
_HANDLER_MARK = "_g2bhub_handler"


def redact_api_keys(text: str) -> str:
    return _API_KEY.sub(r"g2b_\1_***", text)


def _query_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    alternatives = "|".join(re.escape(name) for name in sorted(set(names), key=len, reverse=True) if name)
    if not alternatives:
        return None
    # a query value (``?``/``&``/``;`` before the name), up to the next separator, quote or space
    return re.compile(rf"(?i)([?&;](?:{alternatives})=)[^&#;\s'\"]*")


class Redactor:
    """Rewrites text so no secret it knows the shape or the value of survives. Thread-safe."""

    def __init__(self, query_params: Iterable[str] = DEFAULT_REDACT_QUERY_PARAMS,
                 secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._known: re.Pattern[str] | None = None
        self._query = _query_pattern(query_params)
        self.add_secrets(secrets)

    def set_query_params(self, names: Iterable[str]) -> None:
        self._query = _query_pattern(names)

    def add_secrets(self, values: Iterable[str]) -> None:
        """Remember values to hide wherever they occur, also as they appear URL-encoded."""
        fresh = set()
        for value in values:
            if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
                continue
            fresh |= {value, quote(value, safe=""), quote_plus(value, safe="")}
        with self._lock:
            if fresh <= self._secrets:
                return
            self._secrets |= fresh
            ordered = sorted(self._secrets, key=len, reverse=True)  # longest first: no partial leftovers
            self._known = re.compile("|".join(re.escape(value) for value in ordered))

    def redact(self, text: str) -> str:
        known = self._known
        if known is not None:
            text = known.sub(MASK, text)
        text = redact_api_keys(text)
        text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
        text = _AUTHORIZATION.sub(lambda m: m.group(1) + (f"{m.group(2)} " if m.group(2) else "") + MASK, text)
        query = self._query
        if query is not None:
            text = query.sub(rf"\1{MASK}", text)
        return text

    def redact_value(self, value: Any) -> Any:
        """Strings redacted, mappings and sequences walked; anything else as it is."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {key: (MASK if isinstance(item, str) and item and _SECRET_FIELD.search(str(key))
                          else self.redact_value(item)) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.redact_value(item) for item in value)
        return value


# The process's one redactor: every handler the hub installs uses it, the settings feed it.
_REDACTOR = Redactor()


def redact(text: str) -> str:
    """``text`` as the hub's logs would show it."""
    return _REDACTOR.redact(text)


def register_secrets(values: Iterable[str]) -> None:
    """Hide these values in every log line from now on (connector keys, header values, passwords…)."""
    _REDACTOR.add_secrets(values)


class RequestIdFilter(logging.Filter):
    """Stamp ``request_id`` on every record that passes; attach it to any handler that should carry it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class RedactingFilter(logging.Filter):
    """Rewrite the record itself, so its message, arguments and exception text are redacted for this
    handler and every handler after it (records are shared between the handlers of a logger tree)."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor or _REDACTOR

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self._redactor
        if not isinstance(record.msg, Mapping):
            try:
                message = record.getMessage()
            except Exception:  # arguments that do not fit the format: keep both, redacted
                message = f"{record.msg} {record.args!r}"
            record.msg, record.args = redactor.redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.redact(record.exc_text)
            record.exc_info = None  # formatters would render the original exception again
        if record.stack_info:
            record.stack_info = redactor.redact(record.stack_info)
        return True


class RedactingJsonFormatter(JsonFormatter):
    """Every field redacted before serialisation (JSON escaping would hide a secret from a text match)."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        redacted: dict[str, Any] = _REDACTOR.redact_value(super().process_log_record(log_data))
        return redacted


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _REDACTOR.redact(super().format(record))


def _formatter(json_format: bool) -> logging.Formatter:
    if json_format:
        formatter: Any = RedactingJsonFormatter(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
        return formatter  # type: ignore[no-any-return]
    return RedactingTextFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


# Libraries that install handlers of their own (uvicorn's default dictConfig does, whenever a server is
# built without ``log_config=None``, e.g. the sandbox twins the demo runs in-process).
THIRD_PARTY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def adopt_loggers(names: Iterable[str] = THIRD_PARTY_LOGGERS) -> None:
    """Send these loggers' records to the root handler again: drop the handlers a library installed
    and let them propagate, so no line bypasses the redacting filter."""
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def configure_logging(settings: LoggingSettings, stream: IO[str] | None = None) -> None:
    """Install one handler on the root logger (replacing the one a previous call installed).

    Idempotent, so an app factory and a CLI entrypoint may both call it. ``stream`` defaults to stderr.
    Every logger propagates to it (third-party ones too), through the redacting filter. The levels of
    ``logging.levels`` apply to the named loggers (httpx logs each request URL at INFO: WARNING by
    default).
    """
    _REDACTOR.set_query_params(settings.query_params)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, _HANDLER_MARK, False):
            root.removeHandler(existing)
            existing.close()
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(_formatter(settings.json_format))
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    adopt_loggers()
    for name, level in settings.levels.items():
        logging.getLogger(name).setLevel(level.upper())
