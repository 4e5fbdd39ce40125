"""Structured logs: one JSON object per line, each carrying the id of the request being handled.

Why: one ``grep <request id>`` then finds the access line, every line the handlers wrote and the
correlation id of every event the request raised (the API passes the request id to the bus). The id
travels in a :class:`~contextvars.ContextVar`, which Starlette copies into the worker threads that run
sync endpoints, so code deep in the service layer needs no extra argument.

API keys must never reach a log: every formatted line passes through :func:`redact_api_keys`, a last
line of defence behind the rule that nobody logs a key in the first place.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from hub.spine.settings import LoggingSettings

__all__ = [
    "RedactingJsonFormatter",
    "RedactingTextFormatter",
    "RequestIdFilter",
    "configure_logging",
    "redact_api_keys",
    "request_id_var",
]

request_id_var: ContextVar[str | None] = ContextVar("g2bhub_request_id", default=None)

# ``g2b_<key id>_<secret>``: keep the key id (useful, not secret), hide the secret.
_API_KEY = re.compile(r"\bg2b_([0-9A-Za-z]+)_[0-9A-Za-z_\-]+")
_HANDLER_MARK = "_g2bhub_handler"


def redact_api_keys(text: str) -> str:
    return _API_KEY.sub(r"g2b_\1_***", text)


class RequestIdFilter(logging.Filter):
    """Stamp ``request_id`` on every record that passes; attach it to any handler that should carry it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class RedactingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_api_keys(super().format(record))


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_api_keys(super().format(record))


def _formatter(json_format: bool) -> logging.Formatter:
    if json_format:
        formatter: Any = RedactingJsonFormatter(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
        return formatter  # type: ignore[no-any-return]
    return RedactingTextFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def configure_logging(settings: LoggingSettings, stream: IO[str] | None = None) -> None:
    """Install one handler on the root logger (replacing the one a previous call installed).

    Idempotent, so an app factory and a CLI entrypoint may both call it. ``stream`` defaults to stderr.
    """
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, _HANDLER_MARK, False):
            root.removeHandler(existing)
            existing.close()
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(_formatter(settings.json_format))
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
