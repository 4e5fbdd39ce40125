"""Conditional reads of the open publication, so a CDN or a proxy can keep them: every public read and
feed carries a weak ``ETag`` and a public ``Cache-Control``; ``If-None-Match`` with the current tag
answers 304 without a body; any new version (a publication, an amendment, a cancellation) changes the
tag of every answer it could change, and the next conditional read gets the new answer with 200."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import API
from tests.support.notices import NoticesClient, notices_client


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest) -> Iterator[NoticesClient]:
    with notices_client(str(request.getfixturevalue(f"{request.param}_url"))) as client:
        yield client


FEEDS = [f"{API}/notices", f"{API}/notices?category=works&limit=5", f"{API}/feeds/changes?after=0",
         f"{API}/ocds/releases", f"{API}/feeds/notices.atom"]


def notice_reads(notice_id: str) -> list[str]:
    base = f"{API}/notices/{notice_id}"
    return [base, f"{base}/versions/1", f"{base}/ocds/releases", f"{base}/ocds/record"]


def fresh(api: NoticesClient, url: str) -> httpx.Response:
    response = api.http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["etag"].startswith('W/"')
    assert response.headers["cache-control"] == "public, max-age=5, must-revalidate"
    return response


def revalidate(api: NoticesClient, url: str, etag: str) -> httpx.Response:
    return api.http.get(url, headers={"If-None-Match": etag})


def test_200_then_304_then_a_new_version_then_200(api: NoticesClient) -> None:
    _, key = api.org()
    first = api.publish(key)["id"]
    urls = FEEDS + notice_reads(first)
    tags = {url: fresh(api, url).headers["etag"] for url in urls}
    assert len(set(tags.values())) == len(urls)  # path and query are part of the tag

    for url, tag in tags.items():
        unchanged = revalidate(api, url, tag)
        assert unchanged.status_code == 304, url
        assert unchanged.content == b""
        assert unchanged.headers["etag"] == tag
        assert "max-age=5" in unchanged.headers["cache-control"]
        assert revalidate(api, url, f'"other", {tag[2:]}').status_code == 304  # strong form, in a list
        assert revalidate(api, url, "*").status_code == 304
        assert revalidate(api, url, 'W/"stale"').status_code == 200

    amended = api.http.post(f"{API}/notices/{first}/amendments", headers=key,
                            json={"reason": "new deadline", "changes": {"title": "Road resurfacing, phase 2"}})
    assert amended.status_code == 201, amended.text
    for url, tag in tags.items():
        answer = revalidate(api, url, tag)
        assert answer.status_code == 200, url
        assert answer.headers["etag"] != tag
        if url.endswith("/notices") or url.endswith(first):
            assert "Road resurfacing, phase 2" in answer.text
        assert revalidate(api, url, answer.headers["etag"]).status_code == 304


def test_a_notice_is_revalidated_only_by_its_own_versions(api: NoticesClient) -> None:
    _, key = api.org()
    one, other = api.publish(key)["id"], api.publish(key)["id"]
    read = f"{API}/notices/{one}"
    tag = fresh(api, read).headers["etag"]
    feed_tag = fresh(api, f"{API}/feeds/changes").headers["etag"]
    assert api.http.post(f"{API}/notices/{other}/cancellation", headers=key,
                         json={"reason": "withdrawn"}).status_code == 201
    assert revalidate(api, read, tag).status_code == 304  # another notice's version leaves it as it was
    assert revalidate(api, f"{API}/feeds/changes", feed_tag).status_code == 200
    assert api.http.post(f"{API}/notices/{one}/cancellation", headers=key,
                         json={"reason": "withdrawn"}).status_code == 201
    cancelled = revalidate(api, read, tag)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_an_unknown_notice_is_404_whatever_the_tag(api: NoticesClient) -> None:
    missing = api.http.get(f"{API}/notices/no-such-notice", headers={"If-None-Match": "*"})
    assert missing.status_code == 404
    assert "etag" not in missing.headers
