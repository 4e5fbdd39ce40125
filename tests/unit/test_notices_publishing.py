"""Pure pieces of publishing: Idempotency-Key semantics, list cursors, CSV rows with per-column errors,
Atom building and amendments as merge patches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import feedparser
import pytest

from hub.notices.atom import build_feed, entry_for_version, tag_uri
from hub.notices.formats.base import ContentTooLarge, DocumentError
from hub.notices.formats.csv import column_for, parse_csv
from hub.notices.idempotency import (
    IdempotencyKeyReused,
    IdempotencyTicket,
    Receipt,
    StoredRequest,
    check_key,
    remember,
    replay,
    request_hash,
)
from hub.notices.model import NoticeValidationError
from hub.notices.queries import NoticeQuery, decode_cursor, encode_cursor
from hub.notices.services import merge_patch
from tests.support.fakes import InMemoryIdempotencyStore

NOW = datetime(2026, 4, 1, 10, tzinfo=timezone(timedelta(hours=9)))


# -- Idempotency-Key -----------------------------------------------------------------------------------
def test_first_request_is_not_a_replay_and_is_remembered() -> None:
    store = InMemoryIdempotencyStore()
    ticket = IdempotencyTicket(key="k1", request_hash=request_hash("POST", "/n", {"a": 1}))
    assert replay(store, "org", ticket) is None
    stored = remember(store, "org", ticket, Receipt(201, {"id": "n1"}, "/n/n1"))
    again = replay(store, "org", ticket)
    assert again == Receipt(201, {"id": "n1"}, "/n/n1", replayed=True) and not stored.replayed


def test_same_key_with_another_request_is_refused_and_keys_are_per_org() -> None:
    store = InMemoryIdempotencyStore()
    remember(store, "org", IdempotencyTicket(key="k", request_hash="h1"), Receipt(201, {}))
    with pytest.raises(IdempotencyKeyReused):
        replay(store, "org", IdempotencyTicket(key="k", request_hash="h2"))
    assert replay(store, "other-org", IdempotencyTicket(key="k", request_hash="h2")) is None
    assert replay(store, "org", None) is None
    assert remember(store, "org", None, Receipt(200, {"x": 1})) == Receipt(200, {"x": 1})


def test_an_expired_key_is_forgotten_and_free_again() -> None:
    store = InMemoryIdempotencyStore()
    ticket = IdempotencyTicket(key="k", request_hash="h1")
    store.put("org", "k", StoredRequest("h1", Receipt(201, {}), datetime.now(UTC) - timedelta(hours=49)))
    assert replay(store, "org", ticket, timedelta(hours=50)) == Receipt(201, {}, replayed=True)
    assert replay(store, "org", IdempotencyTicket(key="k", request_hash="h2"), timedelta(hours=48)) is None
    assert store.get("org", "k") is None


def test_request_hash_is_canonical_and_covers_method_and_path() -> None:
    assert request_hash("post", "/a", {"x": 1, "y": [1, 2]}) == request_hash("POST", "/a", {"y": [1, 2], "x": 1})
    assert request_hash("POST", "/a", {"x": 1}) != request_hash("POST", "/b", {"x": 1})
    assert request_hash("POST", "/a", b"raw") != request_hash("PUT", "/a", b"raw")
    assert check_key("retry-7f3a") is None and check_key("") and check_key("has space") and check_key("x" * 256)


# -- cursors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("position", [0, 1, 42, 2**62])
def test_cursor_round_trip(position: int) -> None:
    cursor = encode_cursor(position)
    assert str(position) not in cursor or position < 10
    assert decode_cursor(cursor) == position


@pytest.mark.parametrize("bogus", ["", "abc", "!!!", encode_cursor(10**19), "bjE6LTE", "eDox"])
def test_foreign_cursors_are_refused(bogus: str) -> None:
    with pytest.raises(ValueError):
        decode_cursor(bogus)


def test_query_validates_classification_prefixes_and_value_range() -> None:
    with pytest.raises(NoticeValidationError) as caught:
        NoticeQuery(classifications=("45", "CPV:x"), min_value=None, max_value=None)
    assert caught.value.problems[0][0] == "classification.1"
    from decimal import Decimal

    with pytest.raises(NoticeValidationError):
        NoticeQuery(min_value=Decimal(5), max_value=Decimal(1))
    assert len(NoticeQuery(q="x", categories=("goods",), regions=("KR",)).conditions()) == 3


# -- CSV -------------------------------------------------------------------------------------------------
HEADER = "title,category,classifications,delivery_region,estimated_value,currency,published,submission_deadline,"\
         "opening,buyer_id,buyer_name,document_title,document_url,document_sha256\n"


def test_valid_row_becomes_content() -> None:
    text = "\ufeff" + HEADER + (
        'Desks,goods,CPV:39121100-7;UNSPSC:56101700,KR-30,"1,250,000",KRW,2026-04-01T10:00:00+09:00,'
        "2026-04-14T10:00:00+09:00,2026-04-14T11:00:00+09:00,KR-1,Daejeon,Spec,https://f.example.kr/s.pdf," + "ab" * 32
        + "\n")
    [row] = parse_csv(text, max_rows=10, now=NOW)
    assert row.row == 2 and row.errors == [] and row.content is not None
    content = row.content
    assert [c.code for c in content.classifications] == ["39121100-7", "56101700"]
    assert str(content.estimated_value) == "1250000" and content.buyer and content.buyer.name == "Daejeon"
    assert content.documents[0].sha256 == "ab" * 32


def test_every_problem_names_its_column() -> None:
    text = HEADER + "Desks,food,39121100,Seoul,-1,,2026-04-01T10:00:00,2026-03-01T10:00:00+09:00,,KR-1,,,,ff\n"
    [row] = parse_csv(text, max_rows=10, now=NOW)
    columns = {column for column, _ in row.errors}
    assert {"category", "classifications", "delivery_region", "estimated_value", "published",
            "document_url"} <= columns
    assert row.content is None


def test_published_defaults_to_now_and_cross_field_rules_name_columns() -> None:
    text = "title,category,submission_deadline,opening\nA,works,2026-04-14T10:00:00+09:00,2026-04-13T10:00:00+09:00\n"
    [row] = parse_csv(text, max_rows=10, now=NOW)
    assert row.errors == [("opening", "must not be before submission_deadline")]
    [ok] = parse_csv("title,category\nA,works\n", max_rows=10, now=NOW)
    assert ok.content is not None and ok.content.dates.published == NOW


def test_header_problems_reject_the_file_and_rows_are_capped() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_csv("title,colour,title\n", max_rows=10, now=NOW)
    assert set(caught.value.problems) == {("colour", "unknown column"), ("title", "duplicate column"),
                                          ("category", "required column missing")}
    with pytest.raises(DocumentError):
        parse_csv("", max_rows=10, now=NOW)
    with pytest.raises(ContentTooLarge):
        parse_csv("title,category\n" + "a,goods\n" * 3, max_rows=2, now=NOW)
    rows = parse_csv("title,category\n\na,goods,extra\n,\nb,goods\n", max_rows=2, now=NOW)
    assert [(r.row, bool(r.errors)) for r in rows] == [(3, True), (5, False)]


@pytest.mark.parametrize(("path", "column"), [
    ("dates.opening", "opening"), ("buyer.name", "buyer_name"), ("buyer", "buyer_id"),
    ("documents.0.url", "document_url"), ("documents.0", "document_url"), ("classifications.1.code",
                                                                          "classifications"), ("title", "title"),
])
def test_content_paths_map_to_columns(path: str, column: str) -> None:
    assert column_for(path) == column


# -- Atom ------------------------------------------------------------------------------------------------
def test_atom_feed_is_valid_for_feedparser() -> None:
    content = {"title": "Desks & chairs <urgent>", "category": "goods", "delivery_region": "KR-30",
               "description": "x" * 5000, "classifications": [{"scheme": "CPV", "code": "39121100-7"}],
               "dates": {"submission_deadline": "2026-04-14T10:00:00+09:00"}}
    when = datetime(2026, 4, 2, tzinfo=UTC)
    entry = entry_for_version(
        notice_id="n1", number=2, kind="amendment", content=content, published_at=when,
        first_published_at=when - timedelta(days=1), reason="new deadline", author="Daejeon",
        links={"json": "https://hub.example/api/v1/notices/n1/versions/2",
               "notice": "https://hub.example/api/v1/notices/n1"},
        authority="hub.example", tag_date="2025",
    )
    xml = build_feed(feed_id=tag_uri("hub.example", "2025", "feeds/notices"), title="Notices", updated=when,
                     self_url="https://hub.example/api/v1/feeds/notices.atom", author="hub", entries=[entry])
    feed = feedparser.parse(xml)
    assert not feed.bozo
    [parsed] = feed.entries
    assert parsed.id == "tag:hub.example,2025:notices/n1/versions/2"
    assert parsed.title == "[Amended] Desks & chairs <urgent>"
    assert parsed.updated_parsed[:3] == (2026, 4, 2) and parsed.author == "Daejeon"
    assert {(t.term, t.scheme) for t in parsed.tags} >= {("goods", "tag:hub.example,2025:schemes/category"),
                                                         ("39121100-7", "tag:hub.example,2025:schemes/CPV")}
    assert parsed.summary.startswith("Amendment: new deadline") and len(parsed.summary) <= 2000
    assert feed.feed.links[0].rel == "self"


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
    assert merge_patch(target, {"b": {"c": None, "x": 4}, "e": [2], "a": None}) == {"b": {"d": 3, "x": 4}, "e": [2]}
    assert merge_patch(target, ["replaced"]) == ["replaced"]
    assert target == {"a": 1, "b": {"c": 2, "d": 3}, "e": [1]}
