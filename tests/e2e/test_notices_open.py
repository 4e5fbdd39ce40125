"""Open publication through the real API on SQLite and PostgreSQL, without a key: filtered lists with
cursors, OCDS packages valid against the official schemas, the Atom feed (read with feedparser) and the
changes feed, which replays the same history from any cursor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

from tests.support.api import API
from tests.support.notices import NoticesClient, notices_client
from tests.support.ocds_validation import validate_package


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[NoticesClient]:
    with notices_client(str(request.getfixturevalue(f"{request.param}_url"))) as client:
        yield client


def seed(api: NoticesClient) -> dict[str, Any]:
    """Six notices of two institutions; one amended, one cancelled."""
    org_a, a = api.org()
    org_b, b = api.org()
    ids = {
        "roads": api.publish(a)["id"],
        "chairs": api.publish(a, title="Office chairs", description="Ergonomic chairs", category="goods",
                              classifications=[{"scheme": "UNSPSC", "code": "56112100"}], delivery_region="KR-30",
                              estimated_value="84500000", lots=[])["id"],
        "cleaning": api.publish(b, title="Cleaning of the city hall", category="services",
                                classifications=[{"scheme": "CPV", "code": "90910000-9"}], delivery_region="KR-26",
                                estimated_value="300000000", lots=[])["id"],
        "bridge": api.publish(b, title="Bridge repair", classifications=[{"scheme": "CPV", "code": "45221119-9"}],
                              estimated_value="5000000000", lots=[])["id"],
        "nationwide": api.publish(b, title="Nationwide survey 50%_off", category="services", delivery_region="KR",
                                  classifications=[], estimated_value=None, currency=None, lots=[])["id"],
        "cancelled": api.publish(a, title="Cancelled bridge", lots=[])["id"],
    }
    amended = api.http.post(f"{API}/notices/{ids['roads']}/amendments", headers=a, json={
        "reason": "deadline", "changes": {"dates": {"submission_deadline": "2026-04-01T10:00:00+09:00",
                                                    "opening": "2026-04-01T11:00:00+09:00"}}})
    assert amended.status_code == 201, amended.text
    assert api.http.post(f"{API}/notices/{ids['cancelled']}/cancellation", headers=a,
                         json={"reason": "withdrawn"}).status_code == 201
    return {"ids": ids, "org_a": org_a, "org_b": org_b}


def found(api: NoticesClient, ids: dict[str, str], **params: Any) -> set[str]:
    response = api.http.get(f"{API}/notices", params={**params, "limit": 100})
    assert response.status_code == 200, response.text
    by_id = {v: k for k, v in ids.items()}
    return {by_id[item["id"]] for item in response.json()["items"]}


def test_filters_select_what_they_say(api: NoticesClient) -> None:
    world = seed(api)
    ids = world["ids"]
    assert found(api, ids) == set(ids)
    assert found(api, ids, q="BRIDGE") == {"bridge", "cancelled"}
    assert found(api, ids, q="50%_") == {"nationwide"}
    assert found(api, ids, q="%") == {"nationwide"}
    assert found(api, ids, category="services") == {"cleaning", "nationwide"}
    assert found(api, ids, category=["goods", "services"]) == {"chairs", "cleaning", "nationwide"}
    assert found(api, ids, classification="45") == {"roads", "bridge", "cancelled"}
    assert found(api, ids, classification="CPV:4522") == {"bridge"}
    assert found(api, ids, classification="UNSPSC:45") == set()
    assert found(api, ids, classification=["UNSPSC:5611", "90"]) == {"chairs", "cleaning"}
    assert found(api, ids, region="KR-30") == {"chairs"}
    assert found(api, ids, region="KR") == set(ids)
    assert found(api, ids, institution=world["org_b"]) == {"cleaning", "bridge", "nationwide"}
    assert found(api, ids, min_value="300000000", max_value="1250000000") == {"roads", "cleaning", "cancelled"}
    assert found(api, ids, min_value="1000000000") == {"roads", "bridge", "cancelled"}
    assert found(api, ids, status="cancelled") == {"cancelled"}
    assert found(api, ids, deadline_from="2026-03-20T00:00:00+09:00") == {"roads"}
    assert found(api, ids, published_to="2000-01-01T00:00:00Z") == set()
    assert found(api, ids, published_from="2000-01-01T00:00:00Z", category="works", status="active") == {
        "roads", "bridge"}

    bad = api.http.get(f"{API}/notices", params={"classification": "CPV:abc", "min_value": "5", "max_value": "1"})
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json()["errors"]} == {"#/query/classification/0", "#/query/max_value"}
    assert api.http.get(f"{API}/notices", params={"cursor": "bogus"}).json()["errors"][0]["pointer"] == (
        "#/query/cursor")


def test_pages_have_no_duplicates_and_no_gaps(api: NoticesClient) -> None:
    ids = seed(api)["ids"]
    _, late = api.org()
    seen: list[str] = []
    url: str | None = f"{API}/notices?limit=2&region=KR"
    pages = 0
    while url:
        page = api.http.get(url).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if pages == 0:  # a notice published and one amended mid-way changes nothing for this walk
            api.publish(late, title="Late arrival")
            api.http.post(f"{API}/notices/{ids['chairs']}/cancellation", headers=late, json={"reason": "x"})
        url = page["next"]
        pages += 1
    assert len(seen) == len(set(seen)) == len(ids)
    assert set(seen) == set(ids.values())
    assert pages == 3
    capped = api.http.get(f"{API}/notices", params={"limit": 100000}).json()
    assert capped["limit"] == 200


def test_every_ocds_package_validates(api: NoticesClient, ocds_schemas: Path) -> None:
    ids = seed(api)["ids"]
    packages = []
    for notice_id in ids.values():
        releases = api.http.get(f"{API}/notices/{notice_id}/ocds/releases")
        assert releases.status_code == 200 and releases.headers["content-type"] == "application/json"
        packages.append(releases.json())
        packages.append(api.http.get(f"{API}/notices/{notice_id}/ocds/record").json())
    after = 0
    while True:
        page = api.http.get(f"{API}/ocds/releases", params={"after": after, "limit": 3}).json()
        if not page["releases"]:
            break
        packages.append(page)
        after = int(page["links"]["next"].split("after=")[1].split("&")[0])
    for package in packages:
        assert validate_package(package, ocds_schemas) == [], package["uri"]
    roads = api.http.get(f"{API}/notices/{ids['roads']}/ocds/releases").json()
    assert [r["tag"] for r in roads["releases"]] == [["tender"], ["tenderAmendment"]]
    assert roads["releases"][0]["ocid"] == f"ocds-g2bhub-{ids['roads']}"
    assert roads["publisher"]["name"] == "g2b-hub"
    record = api.http.get(f"{API}/notices/{ids['cancelled']}/ocds/record").json()["records"][0]
    assert record["compiledRelease"]["tender"]["status"] == "cancelled"
    feed_releases = [r["id"] for p in packages if "links" in p for r in p["releases"]]
    assert len(feed_releases) == len(set(feed_releases)) == 8
    assert api.http.get(f"{API}/notices/nope/ocds/record").status_code == 404


def test_atom_feed_parses_with_the_right_entries(api: NoticesClient) -> None:
    ids = seed(api)["ids"]
    response = api.http.get(f"{API}/feeds/notices.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert len(feed.entries) == 8  # one per version
    newest = feed.entries[0]
    assert newest.title == "[Cancelled] Cancelled bridge"
    assert newest.id.startswith("tag:127.0.0.1,2025:notices/") and newest.id.endswith("/versions/2")
    assert {link.rel for link in newest.links} == {"alternate", "related"}
    alternate = next(link for link in newest.links if link.rel == "alternate")
    assert alternate.href == f"http://127.0.0.1:8000{API}/notices/{ids['cancelled']}/versions/2"
    assert alternate.type == "application/json"
    assert any(link.href.endswith("/ocds/releases") for link in newest.links)
    terms = {t.term for t in newest.tags}
    assert {"works", "cancellation", "KR-11", "45233140-2"} <= terms
    assert len({e.id for e in feed.entries}) == 8

    goods = feedparser.parse(api.http.get(f"{API}/feeds/notices.atom", params={"category": "goods"}).content)
    assert [e.title for e in goods.entries] == ["Office chairs"]
    assert goods.feed.id != feed.feed.id
    amended = [e for e in feed.entries if e.title.startswith("[Amended]")]
    assert len(amended) == 1 and "deadline" in amended[0].summary


def test_changes_feed_replays_from_any_cursor(api: NoticesClient) -> None:
    ids = seed(api)["ids"]
    full = api.http.get(f"{API}/feeds/changes", params={"after": 0, "limit": 100}).json()
    changes = full["changes"]
    assert [c["seq"] for c in changes] == list(range(1, 9))
    assert full["head"] == full["next_after"] == 8
    tombstones = [c for c in changes if c.get("tombstone")]
    assert [(c["notice_id"], c["kind"]) for c in tombstones] == [(ids["cancelled"], "cancellation")]
    assert all("tombstone" not in c for c in changes if c["kind"] != "cancellation")
    for start in range(0, 9):
        replay: list[dict[str, Any]] = []
        after = start
        while True:
            page = api.http.get(f"{API}/feeds/changes", params={"after": after, "limit": 3}).json()
            assert page["head"] == 8
            replay += page["changes"]
            if page["next_after"] == after:
                break
            after = page["next_after"]
        assert replay == changes[start:]
    events = api.events()
    assert [(e["seq"], e["notice_id"], e["version"]) for e in events] == [
        (c["seq"], c["notice_id"], c["version"]) for c in changes]
    assert api.http.get(f"{API}/feeds/changes", params={"after": -1}).status_code == 422
