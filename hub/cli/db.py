"""``g2bhub db``: schema migrations. Run ``upgrade`` once per release before starting new processes;
API processes never migrate a shared PostgreSQL themselves (N of them would race)."""

from __future__ import annotations

import typer

from hub.cli._common import fail, load_settings, quiet, sqlite_path

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


def _describe(revision: str | None) -> str:
    from alembic.script import ScriptDirectory

    from hub.spine.migrations import MIGRATIONS_DIR

    heads = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    if revision is None:
        return "none (empty database)"
    return f"{revision} (head)" if revision in heads else f"{revision} (behind head {', '.join(heads)})"


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: head) and print the resulting revision."""
    from hub.config import redact_url
    from hub.spine.db import make_engine
    from hub.spine.migrations import current
    from hub.spine.migrations import upgrade as run_upgrade

    settings = load_settings(find_demo=False)
    engine = make_engine(settings.database)
    try:
        try:
            run_upgrade(engine, revision)
        except Exception as exc:
            fail(f"migration of {redact_url(settings.database.url)} failed: {exc}")
        with quiet("alembic"):
            reached = current(engine)
        typer.echo(f"database {redact_url(settings.database.url)} is at revision {_describe(reached)}")
    finally:
        engine.dispose()


@app.command("current")
def show_current() -> None:
    """Print the revision the database is at."""
    from hub.config import redact_url
    from hub.spine.db import make_engine
    from hub.spine.migrations import current

    settings = load_settings()
    missing = sqlite_path(settings.database.url)
    if missing is not None and not missing.exists():  # said, not created
        typer.echo(f"none (no database at {missing.resolve()})")
        return
    engine = make_engine(settings.database)
    try:
        try:
            with quiet("alembic"):
                revision = current(engine)
        except Exception as exc:
            fail(f"cannot reach the database {redact_url(settings.database.url)}: {exc}")
        typer.echo(_describe(revision))
    finally:
        engine.dispose()
