"""The ``pps:`` section and the puller's windows: what a deployment can and cannot configure."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from urllib.parse import quote

import pytest
from pydantic import ValidationError

from hub.config import Settings, known_secrets
from hub.notices.pps_config import SANDBOX_PPS_KEY, PpsSettings
from hub.notices.pps_puller import KST, windows

LIVE = "https://apis.data.go.kr/1230000/ad/BidPublicInfoService"


def test_the_defaults_point_at_the_sandbox_and_pull_nothing_on_schedule() -> None:
    pps = Settings().pps
    assert not pps.enabled and pps.endpoint.startswith("http://127.0.0.1:8900/pps/")
    assert pps.key_env == "G2BHUB_PPS_KEY" and pps.inquiry_div == 3 and len(pps.operations) == 4


def test_enabling_needs_an_organisation_and_a_real_key_for_a_real_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("G2BHUB_PPS_KEY", raising=False)
    with pytest.raises(ValidationError, match=r"pps\.org_id"):
        PpsSettings(enabled=True)
    with pytest.raises(ValidationError, match="set G2BHUB_PPS_KEY"):
        PpsSettings(enabled=True, org_id="org-1", endpoint=LIVE)
    monkeypatch.setenv("G2BHUB_PPS_KEY", "real%2Bkey%3D%3D")
    assert PpsSettings(enabled=True, org_id="org-1", endpoint=LIVE).sandbox_key_elsewhere() is False
    assert PpsSettings(enabled=True, org_id="org-1").service_key() is not None


def test_windows_stay_within_the_service_limit_and_operations_are_bid_notice_lists() -> None:
    with pytest.raises(ValidationError):
        PpsSettings(window_h=24 * 29)
    with pytest.raises(ValidationError, match="not bid-notice lists"):
        PpsSettings(operations=["getSomethingElse"])
    assert PpsSettings(inquiry="registration").inquiry_div == 1


def test_both_forms_of_the_key_are_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("G2BHUB_PPS_KEY", "abc+def/ghi==")
    secrets = known_secrets(Settings())
    assert {"abc+def/ghi==", quote("abc+def/ghi==", safe="")} <= secrets
    monkeypatch.delenv("G2BHUB_PPS_KEY")
    assert SANDBOX_PPS_KEY in known_secrets(Settings())


def test_windows_cut_a_range_into_whole_minutes_without_gaps() -> None:
    start = datetime(2026, 3, 1, 0, 0, tzinfo=KST)
    cut = list(windows(start, start + timedelta(days=2, hours=5), timedelta(hours=24)))
    assert [(a.day, a.hour, b.day, b.hour) for a, b in cut] == [(1, 0, 2, 0), (2, 0, 3, 0), (3, 0, 3, 5)]
    assert all(b == c for (_, b), (c, _) in pairwise(cut))
    assert list(windows(start, start, timedelta(hours=1))) == []
