"""OCDS release packages pushed through the real API: a package one hub serves is imported by an
institution of another (here the same hub, as another institution), tender releases becoming notices
and versions; Idempotency-Key, per-release report, ownership of source identifiers."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import API
from tests.support.notices import NoticesClient, notices_client

IMPORT = f"{API}/notices/import/ocds"


class Client(NoticesClient):
    def institution(self, kind: str = "institution") -> dict[str, str]:
        return self.org(kind)[1]


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[Client]:
    with notices_client(str(request.getfixturevalue(f"{request.param}_url"))) as client:
        yield Client(client.hub, client.http, client.operator_key)


NOTICE = {
    "title": "Bridge inspection services", "description": "Annual inspection of 14 bridges", "category": "services",
    "classifications": [{"scheme": "CPV", "code": "71631450-0"}], "estimated_value": "320000000", "currency": "KRW",
    "procedure": "open",
    "dates": {"published": "2026-05-04T09:00:00+09:00", "submission_deadline": "2026-05-25T10:00:00+09:00",
              "opening": "2026-05-25T11:00:00+09:00"},
    "documents": [{"title": "Terms of reference", "url": "https://files.example.kr/tor.pdf", "sha256": "ab" * 32}],
    "buyer": {"id": "KR-GOV-6260000", "name": "Busan Metropolitan City"},
}


def served_package(api: Client) -> tuple[str, dict[str, Any]]:
    """A notice published, amended and cancelled by one institution, as the hub serves it in OCDS."""
    source = api.institution()
    notice_id = api.http.post(f"{API}/notices", json=NOTICE, headers=source).json()["id"]
    moved = {"reason": "deadline extended", "changes": {"dates": {"submission_deadline": "2026-05-28T10:00:00+09:00",
                                                                 "opening": "2026-05-28T11:00:00+09:00"}}}
    assert api.http.post(f"{API}/notices/{notice_id}/amendments", json=moved, headers=source).status_code == 201
    cancel = api.http.post(f"{API}/notices/{notice_id}/cancellation", json={"reason": "budget withdrawn"},
                           headers=source)
    assert cancel.status_code == 201
    return notice_id, api.http.get(f"{API}/notices/{notice_id}/ocds/releases").json()


def test_a_served_release_package_becomes_the_same_notice_with_its_versions(api: Client) -> None:
    source_id, package = served_package(api)
    before = len(api.events())
    importer = api.institution()
    first_two = {**package, "releases": package["releases"][:2]}
    keyed = {**importer, "Idempotency-Key": "ocds-0001"}
    response = api.http.post(IMPORT, json=first_two, headers=keyed)
    assert response.status_code == 200, response.text
    report = response.json()
    assert [(r["index"], r["status"], r["version"]) for r in report["releases"]] == [
        (0, "created", 1), (1, "amended", 2)]
    assert report["releases"][0]["ocid"] == f"ocds-g2bhub-{source_id}"
    assert report["counts"] == {"created": 1, "amended": 1}
    replayed = api.http.post(IMPORT, json=first_two, headers=keyed)
    assert replayed.json() == report and replayed.headers["idempotent-replayed"] == "true"

    # the whole package again: the two known releases change nothing, the cancellation cancels
    again = api.http.post(IMPORT, json=package, headers=importer).json()["releases"]
    assert [r["status"] for r in again] == ["unchanged", "unchanged", "cancelled"]
    notice_id = again[2]["notice_id"]
    assert notice_id == report["releases"][0]["notice_id"] != source_id
    detail = api.http.get(f"{API}/notices/{notice_id}").json()
    original = api.http.get(f"{API}/notices/{source_id}").json()
    assert detail["institution_org_id"] != original["institution_org_id"]
    assert [(v["kind"], v["reason"]) for v in detail["versions"]] == [
        ("original", None), ("amendment", "deadline extended"), ("cancellation", "budget withdrawn")]
    assert detail["status"] == "cancelled" and detail["submission_deadline"] == original["submission_deadline"]
    for field in ("title", "description", "category", "classifications", "estimated_value", "currency", "buyer",
                  "documents", "procedure"):
        assert detail["content"][field] == original["content"][field], field
    assert len(api.events()) == before + 3


def test_each_release_is_reported_and_bad_ones_do_not_stop_the_rest(api: Client) -> None:
    _, package = served_package(api)
    importer = api.institution()
    first, _, cancellation = package["releases"]
    untitled = copy.deepcopy(first)
    untitled["ocid"] = "ocds-other-1"
    del untitled["tender"]["title"]
    award = {**copy.deepcopy(first), "ocid": "ocds-other-2", "tag": ["award"]}
    stray = {**copy.deepcopy(cancellation), "ocid": "ocds-other-3"}
    body = {**package, "releases": [untitled, award, stray, first]}
    rows = api.http.post(IMPORT, json=body, headers=importer).json()["releases"]
    assert [r["status"] for r in rows] == ["rejected", "rejected", "rejected", "created"]
    assert rows[0]["errors"][0]["field"] == "tender.title"
    assert rows[1]["errors"][0]["field"] == "tag"
    assert rows[2]["errors"] == [{"field": "date", "message": "cancels a notice this hub has not imported"}]

    # the same ocid from another institution is that institution's own notice
    theirs = api.http.post(IMPORT, json={**package, "releases": [first]}, headers=api.institution()).json()["releases"]
    assert theirs[0]["status"] == "created" and theirs[0]["notice_id"] != rows[3]["notice_id"]


def test_what_is_not_a_release_package_is_refused(api: Client) -> None:
    importer = api.institution()
    records = api.http.post(IMPORT, json={"records": []}, headers=importer)
    assert records.status_code == 422 and records.json()["errors"][0]["pointer"] == "#/body/records"
    assert api.http.post(IMPORT, json=[], headers=importer).status_code == 422
    assert api.http.post(IMPORT, json={"releases": []}, headers=api.institution("agency")).status_code == 403
    assert api.http.post(IMPORT, json={"releases": []}).status_code == 401
    many = {"releases": [{"ocid": "x"}] * 1001}
    assert api.http.post(IMPORT, json=many, headers=importer).status_code == 413
    assert api.events() == []


def test_openapi_declares_the_ocds_import(api: Client) -> None:
    route = api.http.get("/openapi.json").json()["paths"][IMPORT]["post"]
    assert {"ApiKeyBearer": ["notices:write"]} in route["security"]
    assert any(p["name"] == "Idempotency-Key" for p in route["parameters"])
