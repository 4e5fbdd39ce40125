"""hub.spine.text: what counts as a control character, depth without recursion, and the Atom writer's
half (stripping what XML 1.0 cannot carry), plus the CSV cell limit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from hub.notices.atom import AtomEntry, build_feed
from hub.notices.formats import DocumentError
from hub.notices.formats.csv import parse_csv
from hub.notices.model import NoticeContent, NoticeValidationError
from hub.spine.errors import Rejected
from hub.spine.text import control_character_problem, control_character_problems, depth_problem, json_depth, xml_safe
from hub.subscriptions.filters import SubscriptionFilter
from hub.subscriptions.model import Subscription

NOW = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1f", "\x7f", "\ud800"])
def test_control_characters_are_named(char: str) -> None:
    assert control_character_problem(f"a{char}b") == f"control character U+{ord(char):04X} is not allowed"


@pytest.mark.parametrize("text", ["plain", "tab\there", "lines\r\nand\n", "한국어 €", "\u0085 NEL", "\U0001f600"])
def test_ordinary_text_passes(text: str) -> None:
    assert control_character_problem(text) is None


def test_problems_are_found_at_any_depth_without_recursion() -> None:
    assert control_character_problems({"a": [{"b": "x\x00"}], "ok": "fine", "k\x01": 1}) == [
        ("", "member name: control character U+0001 is not allowed"),
        ("a.0.b", "control character U+0000 is not allowed"),
    ]
    deep: object = "x\x02"
    for _ in range(10_000):
        deep = [deep]
    assert control_character_problems(deep)[0][1].startswith("control character U+0002")
    assert json_depth(deep) == 10_000 and json_depth(deep, stop_above=32) == 33
    assert depth_problem(deep) == "nested more than 32 levels deep"
    assert json_depth("x") == 0 and json_depth({}) == 1 and json_depth({"a": [1]}) == 2


def test_the_atom_writer_drops_what_xml_cannot_carry() -> None:
    assert xml_safe("a\x00b\x01c\x1b\tt\ufffe\ufffful\ud800") == "abc\ttul"
    feed = build_feed(feed_id="urn:x", title="T\x00", updated=NOW, self_url="https://h/\x01", author="A\x7f",
                      entries=[AtomEntry(id="urn:e", title="Road\x00works\x1b", updated=NOW, summary="s\x07",
                                         categories=[("works\x02", None, "l\x03")])])
    parsed = etree.fromstring(feed)
    assert parsed.findtext("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}title") == "Roadworks"


def test_notice_content_refuses_control_characters_naming_each_field() -> None:
    data = {"title": "Road\x00", "category": "works", "dates": {"published": NOW.isoformat()},
            "lots": [{"id": "L1", "title": "ok"}, {"id": "L2", "title": "bad\x1b"}],
            "eligibility": [{"kind": "national_certificate", "type": "SME\x01"}]}
    with pytest.raises(NoticeValidationError) as caught:
        NoticeContent.parse(data, prefix="content")
    paths = {path for path, _ in caught.value.problems}
    assert {"content.title", "content.lots.1.title", "content.eligibility.0.type"} <= paths


def test_notice_content_refuses_deep_eligibility_before_walking_it() -> None:
    deep: object = {"kind": "all"}
    for _ in range(5_000):
        deep = {"all": [deep]}
    data = {"title": "Road", "category": "works", "dates": {"published": NOW.isoformat()}, "eligibility": [deep]}
    with pytest.raises(NoticeValidationError) as caught:
        NoticeContent.parse(data)
    assert caught.value.problems == [("eligibility", "nested more than 32 levels deep")]


def test_a_csv_cell_over_the_limit_names_row_and_column() -> None:
    text = "title,category,description\nRoad,works,short\nBridge,works," + "x" * 200_000 + "\n"
    with pytest.raises(DocumentError) as caught:
        parse_csv(text, max_rows=10, now=NOW, max_field_chars=10_000)
    assert caught.value.problems == [("description", "row 3: the cell has 200000 characters; at most 10000 per cell")]
    assert len(parse_csv(text, max_rows=10, now=NOW, max_field_chars=300_000)) == 2


def test_a_subscription_name_refuses_control_characters() -> None:
    with pytest.raises(Rejected) as caught:
        Subscription.new("s1", "o1", "roads\x00", "amqp", SubscriptionFilter(), None, NOW)
    assert caught.value.field == "name"
    subscription = Subscription.new("s1", "o1", " roads ", "amqp", SubscriptionFilter(), None, NOW)
    with pytest.raises(Rejected):
        subscription.rename("x\x1b[2J", NOW)
    assert subscription.name == "roads"
