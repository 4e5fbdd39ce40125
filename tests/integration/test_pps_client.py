"""The PPS open-API client against the PPS twin over real HTTP: the key in either of the portal's forms
(and only ever encoded once), envelopes read and classified, retries of transient faults."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr

from connectors.config import decoded_portal_key
from connectors.pps_openapi import (
    PpsKeyError,
    PpsOpenApiClient,
    PpsQuotaExceeded,
    PpsRequestError,
    PpsRetry,
    page_items,
)
from connectors.sandbox.pps import pps_dataset
from connectors.sandbox.server import SandboxServer
from tests.support.sandbox import reset

GOODS = "getBidPblancListInfoThng"
BEGIN, END = datetime(2026, 3, 2, 0, 0), datetime(2026, 3, 8, 23, 59)


def client(sandbox: SandboxServer, key: str) -> PpsOpenApiClient:
    retry = PpsRetry(attempts=2, quota_attempts=2, initial_s=0, max_s=0)
    return PpsOpenApiClient(sandbox.endpoints["pps_base"], SecretStr(key), retry=retry)


def control(sandbox: SandboxServer, **body: object) -> None:
    httpx.post(f"{sandbox.base_url}/pps/_control/pps", json=body, timeout=5).raise_for_status()


def test_decoded_portal_key_unquotes_only_an_encoded_key() -> None:
    assert decoded_portal_key("ab+c/d==") == "ab+c/d=="
    assert decoded_portal_key("ab%2Bc%2Fd%3D%3D") == "ab+c/d=="
    assert decoded_portal_key(" ab%2bc%2fd%3d%3d\n") == "ab+c/d=="


@pytest.mark.parametrize("form", ["decoded", "encoded"])
def test_either_form_of_the_key_is_accepted(sandbox: SandboxServer, form: str) -> None:
    reset(sandbox)
    key = sandbox.api_keys["pps"]
    assert key is not None
    pps = client(sandbox, key if form == "decoded" else quote(key, safe=""))
    try:
        page = pps.list_page(GOODS, inquiry_div=3, begin=BEGIN, end=END, page_no=1, rows=5)
    finally:
        pps.close()
    assert page.total_count == len(pps_dataset()[GOODS]) and len(page.items) == 5 and page.last_page == 5


def test_a_key_encoded_twice_is_a_key_error(sandbox: SandboxServer) -> None:
    reset(sandbox)
    key = sandbox.api_keys["pps"]
    assert key is not None
    pps = client(sandbox, quote(quote(key, safe=""), safe=""))
    with pytest.raises(PpsKeyError) as raised:
        pps.list_page(GOODS, inquiry_div=3, begin=BEGIN, end=END, page_no=1, rows=5)
    assert raised.value.code == "pps_30" and "NOT REGISTERED" in raised.value.detail


def test_nodata_request_errors_and_retries(sandbox: SandboxServer) -> None:
    reset(sandbox)
    key = sandbox.api_keys["pps"]
    assert key is not None
    pps = client(sandbox, key)
    empty = pps.list_page(GOODS, inquiry_div=1, begin=datetime(2025, 1, 1), end=datetime(2025, 1, 2), page_no=1, rows=5)
    assert empty.items == [] and empty.total_count == 0
    with pytest.raises(PpsRequestError) as raised:
        pps.list_page(GOODS, inquiry_div=1, begin=datetime(2026, 1, 1), end=datetime(2026, 3, 1), page_no=1, rows=5)
    assert raised.value.code == "pps_07"
    control(sandbox, fail_after=0, fail_code="503", fail_count=1)  # one outage, then fine
    assert len(pps.list_page(GOODS, inquiry_div=3, begin=BEGIN, end=END, page_no=1, rows=5).items) == 5
    control(sandbox, fail_after=0, fail_code="22", fail_count=-1)
    with pytest.raises(PpsQuotaExceeded):
        pps.list_page(GOODS, inquiry_div=3, begin=BEGIN, end=END, page_no=1, rows=5)
    stats = httpx.get(f"{sandbox.base_url}/pps/_control/stats", timeout=5).json()
    assert stats["fault:scheduled:22"] == 2  # quota_attempts
    pps.close()


def test_items_are_read_in_every_shape() -> None:
    item = {"bidNtceNo": "R26BK00000001"}
    for items in ([item], {"item": [item]}, {"item": item}):
        assert page_items({"response": {"body": {"items": items, "totalCount": "1"}}}) == ([item], 1)
    assert page_items({"response": {"body": {"items": "", "totalCount": 0}}}) == ([], 0)
