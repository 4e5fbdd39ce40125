"""What every command shares: layered settings, logging, opening the hub, and plain-text output.

Commands print results to stdout (tables, ids, keys) and log to stderr, so scripts can pipe the
former while an operator still sees the latter."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer

from hub.config import Settings

__all__ = [
    "config_errors",
    "configure_logging_for",
    "echo_json",
    "fail",
    "load_settings",
    "open_hub",
    "print_table",
    "quiet",
    "service_errors",
]


def load_settings(configure: bool = True) -> Settings:
    """Read and validate the layered settings, then configure logging from them (every command starts
    here, so nothing — no migration either — runs on a configuration that does not validate)."""
    from hub.config import load_settings as load

    with config_errors():
        settings = load()
    if configure:
        configure_logging_for(settings)
    return settings


def configure_logging_for(settings: Settings) -> None:
    from hub.spine.observability.logging import configure_logging

    configure_logging(settings.logging)
    # Alembic announces every plugin it loads at INFO; an operator needs none of that.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


@contextmanager
def config_errors() -> Iterator[None]:
    """A configuration the hub refuses (when read, or at start-up: a sandbox key aimed at a real
    service, a mapping file the settings name that cannot be read) ends the command with one line per
    problem and exit code 1, not a traceback."""
    from hub.config import ConfigError
    from mappings.engine import MappingError

    try:
        yield
    except ConfigError as exc:
        fail("\n".join(f"invalid configuration: {problem}" for problem in exc.problems))
    except MappingError as exc:  # the message starts with the mapping file's path
        fail(f"invalid configuration: {exc}")


@contextmanager
def quiet(logger_name: str) -> Iterator[None]:
    """Silence a chatty logger for a moment (the schema-revision probe every command makes)."""
    chatty = logging.getLogger(logger_name)
    level = chatty.level
    chatty.setLevel(logging.WARNING)
    try:
        yield
    finally:
        chatty.setLevel(level)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def open_hub(settings: Settings) -> Iterator[Any]:
    """A bootstrapped hub on a migrated database; a clear message instead of SQL errors otherwise."""
    from hub.bootstrap import bootstrap
    from hub.config import redact_url
    from hub.spine.migrations import current

    with config_errors():
        hub = bootstrap(settings)
    try:
        try:
            with quiet("alembic"):
                revision = current(hub.engine)
        except Exception as exc:
            fail(f"cannot reach the database {redact_url(settings.database.url)}: {exc}")
        if revision is None:
            fail("the database has no schema yet; run `g2bhub db upgrade` first")
        yield hub
    finally:
        hub.close()


@contextmanager
def service_errors() -> Iterator[None]:
    """Turn the service layer's refusals (not found, rejected, conflict) into exit code 1."""
    from hub.spine.errors import ServiceError

    try:
        yield
    except ServiceError as exc:
        fail(str(exc))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Left-aligned columns, never truncated: ids and keys must stay copyable."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    typer.echo(line.rstrip())
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def echo_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
