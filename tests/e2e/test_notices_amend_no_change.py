"""An amendment that changes nothing is refused, through the real API on SQLite and PostgreSQL: an empty
merge patch (``"changes": {}``), a patch that repeats the current values and a full content equal to the
current one each answer 422 problem+json naming the member, and none stores a version, takes a seq or
raises a ``NoticeVersionPublished`` for the subscribers. A real change right after is stored as usual."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import API
from tests.support.notices import NoticesClient, notice_body, notices_client


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[NoticesClient]:
    with notices_client(str(request.getfixturevalue(f"{request.param}_url"))) as client:
        yield client


def refused(response: Any, member: str) -> str:
    """The one problem of a 422 naming ``member`` (at the top of the body); its message."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["pointer"] == f"#/body/{member}" and error["field"] == member, error
    return str(error["message"])


def test_an_amendment_that_changes_nothing_stores_no_version_and_tells_no_one(api: NoticesClient) -> None:
    _, headers = api.org()
    notice_id = api.publish(headers)["id"]
    url = f"{API}/notices/{notice_id}/amendments"
    feed_before = api.http.get(f"{API}/feeds/changes", params={"after": 0}).json()

    empty = api.http.post(url, json={"reason": "nothing", "changes": {}}, headers=headers)
    assert refused(empty, "changes").startswith("no change")
    same_values = {"title": "Road resurfacing in Jongno-gu", "dates": {"opening": "2026-03-16T11:00:00+09:00"}}
    repeated = api.http.post(url, json={"reason": "same again", "changes": same_values}, headers=headers)
    assert refused(repeated, "changes") == "no change: version 1 already has this content"
    whole = api.http.post(url, json={"reason": "same again", "content": notice_body()}, headers=headers)
    assert refused(whole, "content") == "no change: version 1 already has this content"

    detail = api.http.get(f"{API}/notices/{notice_id}").json()
    assert detail["current_version"] == 1 and [v["number"] for v in detail["versions"]] == [1]
    assert api.http.get(f"{API}/feeds/changes", params={"after": 0}).json() == feed_before
    assert [(e["notice_id"], e["version"]) for e in api.events()] == [(notice_id, 1)]

    changed = api.http.post(
        url, json={"reason": "new title", "changes": {"title": "Road resurfacing (revised)"}}, headers=headers
    )
    assert changed.status_code == 201, changed.text
    assert changed.json()["version"] == 2
    assert [(e["notice_id"], e["version"]) for e in api.events()] == [(notice_id, 1), (notice_id, 2)]


def test_a_cancelled_notice_still_answers_409_to_an_unchanged_amendment(api: NoticesClient) -> None:
    _, headers = api.org()
    notice_id = api.publish(headers)["id"]
    cancelled = api.http.post(f"{API}/notices/{notice_id}/cancellation", json={"reason": "withdrawn"}, headers=headers)
    assert cancelled.status_code == 201, cancelled.text
    again = api.http.post(
        f"{API}/notices/{notice_id}/amendments", json={"reason": "r", "content": notice_body()}, headers=headers
    )
    assert again.status_code == 409, again.text
    empty = api.http.post(f"{API}/notices/{notice_id}/amendments", json={"reason": "r", "changes": {}}, headers=headers)
    assert refused(empty, "changes").startswith("no change")
