"""What every command shares: layered settings, logging, opening the hub, and plain-text output.

Commands print results to stdout (tables, ids, keys) and log to stderr, so scripts can pipe the
former while an operator still sees the latter."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer

from hub.config import Settings

__all__ = [
    "DATA_DIR_ENV",
    "DEMO_DATABASE",
    "DEMO_DATA_DIR",
    "choose_data_dir",
    "chosen_data_dir",
    "config_errors",
    "configure_logging_for",
    "demo_database_fallback",
    "demo_database_url",
    "echo_json",
    "fail",
    "load_settings",
    "locate_database",
    "open_hub",
    "print_table",
    "quiet",
    "require_database_file",
    "service_errors",
    "sqlite_path",
]


# Where ``g2bhub demo`` keeps its data unless told otherwise, and its SQLite file in there.
DEMO_DATA_DIR = Path("var/demo")
DEMO_DATABASE = "hub.db"
# The variable behind ``g2bhub --data-dir``: the commands then work on that demo's database.
DATA_DIR_ENV = "G2BHUB_DATA_DIR"

_data_dir: list[Path] = []


def choose_data_dir(path: Path | None) -> None:
    """Set by ``g2bhub --data-dir`` (or its variable) before any command runs."""
    _data_dir[:] = [] if path is None else [path.expanduser().resolve()]


def chosen_data_dir() -> Path | None:
    return _data_dir[0] if _data_dir else None


def demo_database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir.expanduser().resolve() / DEMO_DATABASE}"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (None for another database or an in-memory one)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def locate_database(settings: Settings, find_demo: bool = True) -> tuple[Settings, str | None]:
    """The settings with the database the command should use, and a note saying why when it is not the
    configured one: ``--data-dir`` names a demo's data directory; with no database configured (the
    shipped default URL, whose file does not exist) and a demo database in the demo's default data
    directory, that one — so ``g2bhub orgs list`` right after ``g2bhub demo`` lists the demo's."""
    chosen = chosen_data_dir()
    url = demo_database_url(chosen) if chosen is not None else None
    note: str | None = None
    if url is None and find_demo:
        url = demo_database_fallback(settings)
        if url is not None:
            note = (
                f"no database configured: using the demo's, {(DEMO_DATA_DIR / DEMO_DATABASE).resolve()} "
                "(another: g2bhub --data-dir DIR, or G2BHUB_DATABASE__URL)"
            )
    if url is None:
        return settings, None
    return settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})}), note


def demo_database_fallback(settings: Settings, demo_must_exist: bool = True) -> str | None:
    """The demo's default database, when no database is configured (the shipped default URL, whose file
    does not exist) and the demo's default data directory holds one (or, ``demo_must_exist=False``, will
    hold one); else None."""
    from hub.config import shipped_defaults

    shipped_url = (shipped_defaults().get("database") or {}).get("url")
    configured = sqlite_path(settings.database.url)
    if settings.database.url != shipped_url or configured is None or configured.exists():
        return None
    found = (DEMO_DATA_DIR / DEMO_DATABASE).exists() or not demo_must_exist
    return demo_database_url(DEMO_DATA_DIR) if found else None


def load_settings(configure: bool = True, find_demo: bool = True) -> Settings:
    """Read and validate the layered settings, then configure logging from them (every command starts
    here, so nothing — no migration either — runs on a configuration that does not validate).

    ``find_demo``: with no database configured, use the demo's (:func:`locate_database`); the long-running
    processes and ``db upgrade`` pass False, they must not quietly take over a demo's database."""
    from hub.config import load_settings as load

    with config_errors():
        settings = load()
    settings, note = locate_database(settings, find_demo)
    if configure:
        configure_logging_for(settings)
    if note is not None:
        logging.getLogger("hub.cli").info(note)
    return settings


def require_database_file(settings: Settings) -> None:
    """A SQLite file that does not exist is not created by a command that only works on data: it would
    be an empty database the next command finds instead of the real one."""
    from hub.config import redact_url

    path = sqlite_path(settings.database.url)
    if path is not None and not path.exists():
        fail(
            f"no database at {path.resolve()} (database.url {redact_url(settings.database.url)}). Create it "
            f"with `g2bhub db upgrade`, or point at another: `g2bhub --data-dir DIR ...` for a demo's data "
            f"directory (the demo's default: {DEMO_DATA_DIR}), or G2BHUB_DATABASE__URL"
        )


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

    require_database_file(settings)
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
