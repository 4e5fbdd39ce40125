"""The PPS puller against the PPS twin over real HTTP: every notice with its orders as versions, a
restart mid-backfill with no gap and no duplicate, NODATA windows, a refused key, quota answers, both
forms of the key, and the lease that keeps two pullers off one operation."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from connectors.sandbox.pps import pps_dataset
from connectors.sandbox.server import SandboxServer
from hub.api.app import create_app
from hub.bootstrap import Hub, pps_puller
from hub.config import Settings
from hub.notices.pps_checkpoints import PpsCheckpointRow
from hub.notices.pps_config import PpsSettings
from hub.notices.pps_puller import KST, PageOutcome, PpsPuller
from hub.notices.tables import NoticeRow, NoticeVersionRow
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind
from tests.support.db import count
from tests.support.sandbox import reset

DATA = pps_dataset()
NOTICES = len({item["bidNtceNo"] for items in DATA.values() for item in items})
VERSIONS = sum(len(items) for items in DATA.values())
CANCELLED = sum(1 for items in DATA.values() for item in items if item["ntceKindNm"] == "취소공고")
START = datetime(2026, 3, 2, 0, 0, tzinfo=KST)
NOW = datetime(2026, 3, 9, 0, 0, tzinfo=KST)  # after the last change in the dataset


def pps_control(sandbox: SandboxServer, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = f"{sandbox.base_url}/pps/_control/pps"
    response = httpx.post(url, json=body, timeout=5) if body is not None else httpx.get(url, timeout=5)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def page_requests(sandbox: SandboxServer) -> dict[str, int]:
    stats = httpx.get(f"{sandbox.base_url}/pps/_control/stats", timeout=5).json()
    return {key: value for key, value in stats.items() if key.startswith("page:")}


@pytest.fixture
def pps_hub(sandbox: SandboxServer, make_hub: Callable[..., Hub]) -> Hub:
    reset(sandbox)
    return make_hub()


def puller(hub: Hub, sandbox: SandboxServer, org_id: str, **pps: Any) -> PpsPuller:
    config = {
        "endpoint": sandbox.endpoints["pps_base"],
        "key": sandbox.api_keys["pps"],
        "org_id": org_id,
        "start": START.isoformat(),
        "settle_minutes": 0,
        "page_size": 4,
        "window_h": 24,
        "retry": {"attempts": 2, "quota_attempts": 4, "initial_s": 0, "max_s": 0},
        **pps,
    }
    settings = hub.settings.model_copy(update={"pps": PpsSettings(**config)})
    return pps_puller(settings, hub.bus, hub.session_factory)


def institution(hub: Hub) -> str:
    org, _ = hub.bus.handle(CreateOrganisation(name="조달청 수집", kind=OrgKind.INSTITUTION))
    return str(org.id)


@pytest.mark.parametrize("shape", ["item", "list"])
def test_a_backfill_imports_every_notice_with_its_orders_as_versions(
    pps_hub: Hub, sandbox: SandboxServer, shape: str
) -> None:
    pps_control(sandbox, {"items_shape": shape})
    org = institution(pps_hub)
    run = puller(pps_hub, sandbox, org).run_once(now=NOW)
    assert run.misconfigured is None and not run.failed
    assert run.items == VERSIONS and run.versions_created == VERSIONS
    assert count(pps_hub, NoticeRow) == NOTICES
    assert count(pps_hub, NoticeVersionRow) == VERSIONS
    assert count(pps_hub, NoticeRow, NoticeRow.status == "cancelled") == CANCELLED
    assert count(pps_hub, NoticeRow, NoticeRow.institution_org_id == org) == NOTICES
    # Every operation's checkpoint stands at the end of the last window, with no window in progress.
    assert (
        count(pps_hub, PpsCheckpointRow, PpsCheckpointRow.window_start == NOW, PpsCheckpointRow.window_end.is_(None))
        == 4
    )

    again = puller(pps_hub, sandbox, org).run_once(now=NOW)
    assert again.pages == 0  # nothing new past the checkpoint
    later = puller(pps_hub, sandbox, org).run_once(now=NOW + timedelta(days=1))
    assert later.pages == 4 and later.items == 0  # one empty (NODATA) window per operation
    assert count(pps_hub, NoticeVersionRow) == VERSIONS


def test_a_restart_mid_backfill_resumes_with_no_gap_and_no_duplicate(pps_hub: Hub, sandbox: SandboxServer) -> None:
    org = institution(pps_hub)
    # One item a page; the service goes down after five good pages — three of the first window, two of
    # the second — so the run stops inside a window, as a worker killed between pages would.
    pps_control(sandbox, {"fail_after": 5, "fail_code": "503", "fail_count": -1})
    first = puller(pps_hub, sandbox, org, page_size=1).run_once(now=NOW)
    assert first.pages == 5 and set(first.failed) == set(DATA)
    assert 0 < count(pps_hub, NoticeVersionRow) < VERSIONS
    with pps_hub.session_factory() as session:
        stopped = session.get(PpsCheckpointRow, "getBidPblancListInfoCnstwk")
        assert stopped is not None and stopped.last_error is not None
        assert stopped.window_start == START + timedelta(days=1) and stopped.pages_done == 2

    pps_control(sandbox, {"fail_after": None, "fail_count": 0})
    second = puller(pps_hub, sandbox, org, page_size=1).run_once(now=NOW)
    assert not second.failed
    assert first.versions_created + second.versions_created == VERSIONS
    assert second.counts["unchanged"] == 0  # resumed after the last page imported, not before it
    assert count(pps_hub, NoticeVersionRow) == VERSIONS and count(pps_hub, NoticeRow) == NOTICES
    assert all(times == 1 for times in page_requests(sandbox).values())  # no page asked twice


def test_a_refused_key_is_a_misconfiguration_and_a_fixed_key_resumes(
    pps_hub: Hub, sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    org = institution(pps_hub)
    wrong = puller(pps_hub, sandbox, org, key="not-a-registered-key")
    with caplog.at_level(logging.ERROR, logger="hub.notices.pps_puller"):
        for _ in range(3):
            run = wrong.run_once(now=NOW)
            assert run.misconfigured is not None and "pps_30" in run.misconfigured
            assert run.pages == 0
    assert len([r for r in caplog.records if "misconfigured" in r.getMessage()]) == 1  # logged once
    assert count(pps_hub, NoticeVersionRow) == 0
    assert count(pps_hub, PpsCheckpointRow, PpsCheckpointRow.window_start == START) == 4  # nothing skipped
    assert count(pps_hub, PpsCheckpointRow, PpsCheckpointRow.leased_until.is_not(None)) == 0  # released
    pps_hub.pps = wrong  # what this hub's worker would hold
    with TestClient(create_app(hub=pps_hub)) as http:
        connectors = http.get("/readyz").json()["checks"]["connectors"]
        assert "pps_30" in connectors["misconfigured"]["pps"]["detail"]
        assert 'g2bhub_upstream_misconfigured{system="pps"} 1.0' in http.get("/metrics").text

    pps_hub.pps = puller(pps_hub, sandbox, org)
    fixed = pps_hub.pps.run_once(now=NOW)
    assert fixed.misconfigured is None and fixed.versions_created == VERSIONS
    with TestClient(create_app(hub=pps_hub)) as http:
        assert "misconfigured" not in http.get("/readyz").json()["checks"]["connectors"]
        assert 'g2bhub_upstream_misconfigured{system="pps"} 0.0' in http.get("/metrics").text


def test_an_unknown_importing_organisation_is_a_misconfiguration(pps_hub: Hub, sandbox: SandboxServer) -> None:
    run = puller(pps_hub, sandbox, "no-such-org").run_once(now=NOW)
    assert run.misconfigured is not None and "no-such-org" in run.misconfigured
    assert run.pages == 0 and page_requests(sandbox) == {}


def test_quota_answers_back_off_and_the_pull_completes(pps_hub: Hub, sandbox: SandboxServer) -> None:
    org = institution(pps_hub)
    pps_control(sandbox, {"fail_after": 3, "fail_code": "22", "fail_count": 3})
    run = puller(pps_hub, sandbox, org).run_once(now=NOW)
    assert not run.failed and run.versions_created == VERSIONS
    stats = httpx.get(f"{sandbox.base_url}/pps/_control/stats", timeout=5).json()
    assert stats["fault:scheduled:22"] == 3


def test_quota_answers_past_the_retries_stop_the_operation_where_it_is(pps_hub: Hub, sandbox: SandboxServer) -> None:
    org = institution(pps_hub)
    pps_control(sandbox, {"fail_after": 0, "fail_code": "22", "fail_count": -1})
    run = puller(pps_hub, sandbox, org).run_once(now=NOW)
    assert set(run.failed) == set(DATA) and all("pps_22" in why for why in run.failed.values())
    assert run.misconfigured is None  # a quota is not the configuration's fault
    assert count(pps_hub, PpsCheckpointRow, PpsCheckpointRow.window_start == START) == 4


@pytest.mark.parametrize("form", ["decoded", "encoded"])
def test_the_key_works_in_either_form(
    pps_hub: Hub, sandbox: SandboxServer, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = sandbox.api_keys["pps"]
    assert key is not None and "+" in key and "/" in key
    monkeypatch.setenv("G2BHUB_PPS_KEY", key if form == "decoded" else quote(key, safe=""))
    org = institution(pps_hub)
    run = puller(pps_hub, sandbox, org, key=None, operations=["getBidPblancListInfoFrgcpt"]).run_once(now=NOW)
    assert run.misconfigured is None and run.versions_created == len(DATA["getBidPblancListInfoFrgcpt"])


def test_an_operation_another_puller_holds_is_left_alone(pps_hub: Hub, sandbox: SandboxServer) -> None:
    org = institution(pps_hub)
    first = puller(pps_hub, sandbox, org)
    held = first.checkpoints.claim(["getBidPblancListInfoThng"], "another-worker", START)
    assert [c.operation for c in held] == ["getBidPblancListInfoThng"]
    run = puller(pps_hub, sandbox, org).run_once(now=NOW)
    assert run.busy == ["getBidPblancListInfoThng"]
    assert run.versions_created == VERSIONS - len(DATA["getBidPblancListInfoThng"])
    assert not any(":getBidPblancListInfoThng:" in key for key in page_requests(sandbox))


def test_a_worker_runs_the_pull_on_schedule(sandbox: SandboxServer, settings_factory: Callable[..., Settings]) -> None:
    from hub.bootstrap import bootstrap
    from tests.support.waiting import eventually

    reset(sandbox)
    probe = bootstrap(settings_factory(), migrate=True)
    org = institution(probe)
    probe.close()
    pps = {
        "enabled": True,
        "endpoint": sandbox.endpoints["pps_base"],
        "key": sandbox.api_keys["pps"],
        "org_id": org,
        "start": START.isoformat(),
        "settle_minutes": 0,
        "window_h": 672,
        "page_size": 50,
        "interval_s": 0.1,
        "operations": ["getBidPblancListInfoFrgcpt"],
    }
    hub = bootstrap(settings_factory(pps=pps))
    try:
        worker = hub.make_worker()
        worker.start()
        expected = len(DATA["getBidPblancListInfoFrgcpt"])
        eventually(lambda: count(hub, NoticeVersionRow) == expected, timeout=20)
    finally:
        hub.close()


def test_the_sandbox_key_is_never_sent_to_another_endpoint(pps_hub: Hub, sandbox: SandboxServer) -> None:
    org = institution(pps_hub)
    elsewhere = puller(pps_hub, sandbox, org, endpoint="https://apis.data.go.kr/1230000/ad/BidPublicInfoService")
    run = elsewhere.run_once(now=NOW)
    assert run.misconfigured is not None and "G2BHUB_PPS_KEY" in run.misconfigured and run.pages == 0


def test_a_record_leaving_the_window_while_it_is_paged_loses_no_other(pps_hub: Hub, sandbox: SandboxServer) -> None:
    org = institution(pps_hub)
    works = DATA["getBidPblancListInfoCnstwk"]
    first = works[0]  # corrected in place at 10:04 on the first day: the first item of the first window
    moved: list[int] = []

    def correct_the_first_record_after_page_one(page: PageOutcome) -> None:
        if page.window_start == START and page.page_no == 1 and not moved:
            moved.append(1)
            pps_control(
                sandbox,
                {
                    "change": {
                        "operation": page.operation,
                        "bidNtceNo": first["bidNtceNo"],
                        "bidNtceOrd": "000",
                        "chgDt": "2026-03-08 12:00:00",
                    }
                },
            )

    pull = puller(pps_hub, sandbox, org, page_size=1, operations=["getBidPblancListInfoCnstwk"])
    run = pull.run_once(now=NOW, on_page=correct_the_first_record_after_page_one)
    assert moved and not run.failed
    assert run.versions_created == len(works)  # the record after it did not slide past the paging
    assert run.counts["unchanged"] >= 1  # the corrected record, listed again in its new window
    assert count(pps_hub, NoticeVersionRow) == len(works)


def test_a_run_stopped_between_pages_resumes_at_the_next_page(pps_hub: Hub, sandbox: SandboxServer) -> None:
    org = institution(pps_hub)
    stop = threading.Event()
    pages: list[PageOutcome] = []

    def stop_after_four(page: PageOutcome) -> None:
        pages.append(page)
        if len(pages) == 4:
            stop.set()

    works = ["getBidPblancListInfoCnstwk"]
    first = puller(pps_hub, sandbox, org, page_size=1, operations=works).run_once(
        now=NOW, stop=stop, on_page=stop_after_four
    )
    assert first.pages == 4 and not first.failed
    second = puller(pps_hub, sandbox, org, page_size=1, operations=works).run_once(now=NOW)
    assert first.versions_created + second.versions_created == len(DATA[works[0]])
    assert second.counts["unchanged"] == 0
    assert all(times == 1 for times in page_requests(sandbox).values())
