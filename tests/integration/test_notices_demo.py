"""The demo's sample notices: published once, amended and cancelled once, however often the demo starts."""

from __future__ import annotations

from pathlib import Path

from hub.bootstrap import bootstrap
from hub.cli.demo_components import DemoContext, DemoOrganisations
from hub.cli.demo_notices import DemoNotices
from hub.config import Settings
from hub.notices import queries


def test_demo_notices_are_idempotent(sqlite_url: str, tmp_path: Path) -> None:
    settings = Settings(database={"url": sqlite_url}, broker={"kind": "inprocess"})
    hub = bootstrap(settings, migrate=True)
    try:
        for _ in range(2):
            ctx = DemoContext(hub=hub, settings=settings, data_dir=tmp_path, base_url="http://127.0.0.1:8000")
            DemoOrganisations().start(ctx)
            DemoNotices().start(ctx)
        with hub.session_factory() as session:
            kinds = [row.kind for row in queries.changes_after(session, 0, 100)]
        assert sorted(kinds) == ["amendment", "cancellation", "original", "original", "original"]
        title, lines = ctx.sections[-1]
        assert "Open publication" in title and any("/feeds/changes" in line for line in lines)
    finally:
        hub.close()
