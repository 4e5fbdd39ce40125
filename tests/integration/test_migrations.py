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


def test_the_matching_cursor_starts_below_the_first_unmatched_version(engine: Engine) -> None:
    """An upgrade neither re-sends what was matched before it nor loses a version still in flight."""
    from datetime import UTC, datetime

    from sqlalchemy import delete, select

    from hub.bootstrap import bootstrap
    from hub.config import Settings
    from hub.notices.commands import PublishNotice
    from hub.notices.model import NoticeContent
    from hub.organisations.commands import CreateOrganisation
    from hub.organisations.model import OrgKind
    from hub.subscriptions.tables import MatchingCursorRow, PayloadRow
    from tests.support.subscriptions import content

    upgrade(engine)
    hub = bootstrap(Settings(database={"url": engine.url.render_as_string(hide_password=False)},
                             broker={"kind": "inprocess"}))
    try:
        org, _ = hub.bus.handle(CreateOrganisation(name="Institution", kind=OrgKind.INSTITUTION))
        seqs = [hub.bus.handle(PublishNotice(institution_org_id=org.id, content=NoticeContent.parse(
            content(title=f"notice {n}")))).body for n in range(3)]

        def matched(*which: int) -> None:  # as the matching consumer left them: one payload per version
            with hub.session_factory() as session:
                session.execute(delete(PayloadRow))
                for body in (seqs[i] for i in which):
                    session.add(PayloadRow(notice_id=body["id"], version=1, kind="original", seq=body["seq"],
                                           routing_key="k", body={}, created_at=datetime.now(UTC)))
                session.commit()

        def cursor_after_upgrade() -> int:
            command.downgrade(alembic_config(engine), "0006")
            upgrade(engine)
            with hub.session_factory() as session:
                return int(session.scalar(select(MatchingCursorRow.seq)) or -1)

        matched(0, 2)  # the second is still in flight
        assert cursor_after_upgrade() == seqs[1]["seq"] - 1
        matched(0, 1, 2)
        assert cursor_after_upgrade() == seqs[2]["seq"]
    finally:
        hub.close()


def test_existing_suppliers_get_unproven_claims_and_the_earliest_registrant_wins(engine: Engine) -> None:
    """0008 on a database where two organisations registered the same identifier before claims existed:
    the upgrade does not fail, the earlier registrant holds it, and nothing is proven."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert, select

    from hub.organisations.tables import organisations
    from hub.suppliers.tables import identifier_claims, suppliers

    upgrade(engine)
    command.downgrade(alembic_config(engine), "0007")
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for org in ("org-late", "org-early"):
            conn.execute(insert(organisations).values(id=org, name=org, kind="supplier", created_at=t0))
        for sid, org, ids, at in (("s-late", "org-late", {"kr_brn": "1157750731"}, t0 + timedelta(days=2)),
                                  ("s-early", "org-early", {"kr_brn": "1157750731", "lei": "213800VN0A3M6L5X2X86"},
                                   t0 + timedelta(days=1))):
            conn.execute(insert(suppliers).values(id=sid, org_id=org, identifiers=ids, identity_key=sid,
                                                  consent_given_at=at, consent_text_version="v", created_at=at))
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(identifier_claims.c.scheme, identifier_claims.c.org_id,
                                   identifier_claims.c.proven_at).order_by(identifier_claims.c.scheme)).all()
    assert [tuple(r) for r in rows] == [("kr_brn", "org-early", None), ("lei", "org-early", None)]
