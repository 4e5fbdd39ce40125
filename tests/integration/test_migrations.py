"""Migrations on each database: upgrade from empty, match the models exactly, downgrade to nothing.

If the comparison finds differences, a model changed without a migration: run Alembic's autogenerate
against a database at head and review the new revision."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from hub.config import DatabaseSettings
from hub.registry import FLOW_TABLES  # noqa: F401  (every flow's tables join the metadata)
from hub.spine.db import make_engine
from hub.spine.migrations import MIGRATIONS_DIR, alembic_config, current, upgrade
from hub.spine.tables import metadata


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    made = make_engine(DatabaseSettings(url=url, pool_size=2))
    yield made
    made.dispose()


def head() -> str:
    heads = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    assert len(heads) == 1, f"migrations must have one head, found {heads}"
    return heads[0]


def user_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_reaches_head(engine: Engine) -> None:
    assert current(engine) is None
    upgrade(engine)
    assert current(engine) == head()
    assert user_tables(engine) == set(metadata.tables)


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    assert current(engine) == head()


def test_models_and_migrations_agree(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "render_as_batch": conn.dialect.name == "sqlite"},
        )
        diff = compare_metadata(context, metadata)
    assert diff == [], f"models differ from migrations: {diff}"


def test_downgrade_to_base_removes_everything(engine: Engine) -> None:
    upgrade(engine)
    command.downgrade(alembic_config(engine), "base")
    assert current(engine) is None
    assert user_tables(engine) == set()
    # and the way back up still works
    upgrade(engine)
    assert current(engine) == head()
