"""What ``g2bhub demo`` does on its data directory, run component by component on a real hub (SQLite,
the in-process broker, the sandbox twins over HTTP): its keys kept in ``demo-keys.json`` across
restarts, a banner with real keys and no Python reprs, and the PPS puller importing the twin's notices."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.pps import pps_dataset
from connectors.sandbox.server import SandboxServer
from hub.bootstrap import bootstrap
from hub.cli.demo import banner_lines, demo_settings
from hub.cli.demo_components import DemoContext, DemoOrganisations
from hub.cli.demo_keys import KEYS_FILE, read_keys
from hub.cli.demo_pps import DemoPps, demo_pps_settings, twin_dataset_start
from hub.cli.demo_suppliers import SandboxSuppliers
from hub.config import ConfigError, Settings, load_settings
from hub.notices import queries
from hub.notices.pps_config import SANDBOX_PPS_KEY
from hub.organisations.model import OrgKind, parse_api_key


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("G2BHUB_"):
            monkeypatch.delenv(name)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Any]:
    settings = Settings(database={"url": f"sqlite:///{tmp_path / 'hub.db'}"}, broker={"kind": "inprocess"})
    made = bootstrap(settings, migrate=True)
    yield made
    made.close()


def context(hub: Any, data_dir: Path) -> DemoContext:
    return DemoContext(hub=hub, settings=hub.settings, data_dir=data_dir, base_url="http://127.0.0.1:8003")


def active_key_ids(hub: Any, kind: OrgKind) -> set[str]:
    with hub.uow() as uow:
        (org,) = [o for o in uow.organisations.list(kind) if o.name.startswith("Demo ")]
        return {k.id for k in org.api_keys if k.active}


def test_keys_are_written_owner_only_and_kept_across_restarts(hub: Any, tmp_path: Path) -> None:
    first = context(hub, tmp_path)
    DemoOrganisations().start(first)
    path = tmp_path / KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["base_url"] == "http://127.0.0.1:8003"
    assert {kind: entry["api_key"] for kind, entry in saved["keys"].items()} == {
        kind.value: key for kind, key in first.keys.items()
    }
    title, lines = first.sections[0]
    assert str(path) in title and first.keys[OrgKind.SUPPLIER] in "\n".join(lines)

    second = context(hub, tmp_path)
    restarted = DemoOrganisations()
    restarted.start(second)
    assert second.keys == first.keys  # the commands copied from the first banner keep working
    assert restarted.reused == set(OrgKind)
    for kind, key in first.keys.items():
        parsed = parse_api_key(key)
        assert parsed is not None and active_key_ids(hub, kind) == {parsed[0]}


def test_a_lost_or_revoked_key_is_issued_afresh_and_the_file_rewritten(hub: Any, tmp_path: Path) -> None:
    first = context(hub, tmp_path)
    DemoOrganisations().start(first)
    (tmp_path / KEYS_FILE).unlink()

    second = context(hub, tmp_path)
    DemoOrganisations().start(second)
    for kind in OrgKind:
        assert second.keys[kind] != first.keys[kind]
        old, new = parse_api_key(first.keys[kind]), parse_api_key(second.keys[kind])
        assert old is not None and new is not None
        assert active_key_ids(hub, kind) == {new[0]}  # the key nobody can read any more is revoked
    assert {k: e["api_key"] for k, e in read_keys(tmp_path).items()} == {
        kind.value: key for kind, key in second.keys.items()
    }


def test_a_damaged_key_file_means_fresh_keys_not_a_failed_start(hub: Any, tmp_path: Path) -> None:
    (tmp_path / KEYS_FILE).write_text("{not json")
    ctx = context(hub, tmp_path)
    DemoOrganisations().start(ctx)
    assert set(read_keys(tmp_path)) == {kind.value for kind in OrgKind}


def test_banner_shows_real_keys_plain_identifiers_and_the_pending_wait(hub: Any, tmp_path: Path) -> None:
    settings = demo_settings(load_settings(), tmp_path, "127.0.0.1", 8003)
    suppliers = SandboxSuppliers()
    try:
        settings = suppliers.configure(settings, tmp_path)
        made = bootstrap(settings.model_copy(update={"database": hub.settings.database}), migrate=True)
        try:
            ctx = DemoContext(hub=made, settings=settings, data_dir=tmp_path, base_url=settings.api.public_base_url)
            DemoOrganisations().start(ctx)
            suppliers.start(ctx)
            text = "\n".join(banner_lines(ctx))
        finally:
            made.close()
    finally:
        suppliers.stop()
    assert "http://127.0.0.1:8003/api/v1" in text and ":8000" not in text
    assert "{'" not in text and "<supplier key>" not in text and "<operator key>" not in text
    assert f"Bearer {ctx.keys[OrgKind.SUPPLIER]}" in text and f"Bearer {ctx.keys[OrgKind.OPERATOR]}" in text
    supplier_lines = [line for line in text.splitlines() if "(control approved: demo seed)" in line]
    assert supplier_lines and all("=" in line for line in supplier_lines)
    backoff, scheduler = settings.suppliers.backoff, settings.suppliers.scheduler
    assert f"fetched again {backoff.initial_s:g} s after the failed fetch" in text
    assert f"scheduler that runs every {scheduler.interval_s:g} s" in text
    assert "g2bhub sandbox suppliers --scenario" in text


def test_the_demo_pulls_the_pps_twins_notices_as_the_demo_institution(hub: Any, tmp_path: Path) -> None:
    ctx = context(hub, tmp_path)
    DemoOrganisations().start(ctx)
    pps = DemoPps()
    with SandboxServer() as server:
        ctx.sandbox = server
        pps.configure(hub.settings, tmp_path)
        try:
            pps.start(ctx)
            assert pps.first_pull.wait(60), "the pull at start did not finish"
        finally:
            pps.stop()
    with hub.session_factory() as session:
        changes = queries.changes_after(session, 0, 1000)
    # every order of every notice of the twin's dataset, each once
    assert len(changes) == sum(len(items) for items in pps_dataset().values())
    with hub.uow() as uow:
        notices = {c.notice_id: uow.notices.get(c.notice_id) for c in changes}
    assert {n.institution_id for n in notices.values() if n is not None} == {_institution_id(hub)}
    assert pps.settings is not None and pps.settings.endpoint == server.endpoints["pps_base"]
    title, lines = ctx.sections[-1]
    assert "PPS" in title and any(server.endpoints["pps_base"] in line for line in lines)
    assert any("2026-03-01T00:00:00+09:00" in line for line in lines)


def _institution_id(hub: Any) -> str:
    with hub.uow() as uow:
        (org,) = [o for o in uow.organisations.list(OrgKind.INSTITUTION) if o.name.startswith("Demo ")]
        return str(org.id)


def test_pps_settings_on_the_twin_start_where_its_dataset_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_PPS_KEY", "a-real-key-never-sent-to-a-twin")
    pps = demo_pps_settings(load_settings().pps, "org-1", "http://127.0.0.1:1/pps/x", SANDBOX_PPS_KEY)
    assert pps.enabled and pps.org_id == "org-1" and pps.endpoint == "http://127.0.0.1:1/pps/x"
    assert pps.service_key() is not None and pps.service_key().get_secret_value() == SANDBOX_PPS_KEY  # type: ignore[union-attr]
    assert pps.start == twin_dataset_start() and pps.start.isoformat() == "2026-03-01T00:00:00+09:00"
    assert pps.window_h * 4 >= 24 * 90 and pps.interval_s <= 60  # months of data in a handful of windows


def test_a_configured_pps_endpoint_is_kept_with_its_key_and_org(monkeypatch: pytest.MonkeyPatch) -> None:
    real = "https://apis.data.go.kr/1230000/ad/BidPublicInfoService"
    monkeypatch.setenv("G2BHUB_PPS__ENDPOINT", real)
    monkeypatch.setenv("G2BHUB_PPS__ORG_ID", "their-institution")
    monkeypatch.setenv("G2BHUB_PPS_KEY", "real-key")
    configured = load_settings().pps
    pps = demo_pps_settings(configured, "org-1", "http://127.0.0.1:1/pps/x", SANDBOX_PPS_KEY)
    assert pps.endpoint == real and pps.org_id == "their-institution"
    assert pps.service_key().get_secret_value() == "real-key"  # type: ignore[union-attr]
    assert pps.start == configured.start and pps.interval_s == configured.interval_s


def test_a_configured_pps_endpoint_without_its_key_stops_the_demo_at_configure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("G2BHUB_PPS__ENDPOINT", "https://apis.data.go.kr/1230000/ad/BidPublicInfoService")
    with pytest.raises(ConfigError, match="G2BHUB_PPS_KEY"):
        DemoPps().configure(load_settings(), tmp_path)
