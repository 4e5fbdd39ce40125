"""The unified notice: field validation that names each bad field, and append-only versioning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from hub.notices.model import (
    Category,
    Notice,
    NoticeContent,
    NoticeStateError,
    NoticeStatus,
    NoticeValidationError,
    Procedure,
    VersionKind,
)

KST = timezone(timedelta(hours=9))


def content_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "서울시 도로 포장 공사",
        "description": "Repaving of arterial roads",
        "category": "works",
        "classifications": [{"scheme": "CPV", "code": "45233140-2"}, {"scheme": "UNSPSC", "code": "72141100"}],
        "delivery_region": "KR-11",
        "estimated_value": "1250000000",
        "currency": "KRW",
        "procedure": "open",
        "dates": {
            "published": "2025-03-03T09:00:00+09:00",
            "clarification_deadline": "2025-03-10T18:00:00+09:00",
            "submission_deadline": "2025-03-17T10:00:00+09:00",
            "opening": "2025-03-17T11:00:00+09:00",
        },
        "lots": [{"id": "1", "title": "Section A", "value": "700000000"}],
        "eligibility": [
            {"kind": "stated_condition", "condition": "region_restriction", "details": {"regions": "KR-11"}},
        ],
        "documents": [{"title": "Specification", "url": "https://docs.example.kr/spec.pdf", "sha256": "A" * 64}],
        "buyer": {"id": "6110000", "name": "서울특별시"},
    }
    data.update(overrides)
    return data


def make_content(**overrides: Any) -> NoticeContent:
    return NoticeContent.parse(content_data(**overrides))


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(NoticeValidationError) as caught:
        NoticeContent.parse(data)
    return dict(caught.value.problems)


def test_valid_content_is_parsed_into_typed_fields() -> None:
    content = make_content()
    assert content.category is Category.WORKS
    assert content.procedure is Procedure.OPEN
    assert content.estimated_value == Decimal("1250000000")
    assert content.dates.opening == datetime(2025, 3, 17, 11, tzinfo=KST)
    assert content.documents[0].sha256 == "a" * 64  # normalised to lower case
    assert content.classifications[0].code == "45233140-2"


def test_every_bad_field_is_named() -> None:
    problems = problems_of(
        content_data(
            title="",
            category="food",
            classifications=[{"scheme": "CPV", "code": "4523"}, {"scheme": "UNSPSC", "code": "45233140-2"}],
            delivery_region="KR-99",
            currency="WON",
            documents=[{"title": "x", "url": "ftp://docs.example.kr/a", "sha256": "xyz"}],
            eligibility=[{"regions": ["KR-11"]}],
        )
    )
    assert set(problems) == {
        "title",
        "category",
        "classifications.0.code",
        "classifications.1.code",
        "delivery_region",
        "currency",
        "documents.0.url",
        "documents.0.sha256",
        "eligibility.0.kind",  # checked with the requirement language of hub.eligibility
    }
    assert "CPV" in problems["classifications.0.code"]


def test_negative_value_and_naive_dates_are_rejected() -> None:
    problems = problems_of(content_data(estimated_value="-1", dates={"published": "2025-03-03T09:00:00"}))
    assert set(problems) == {"estimated_value", "dates.published"}


def test_date_order_clarification_submission_opening() -> None:
    dates = {
        "published": "2025-03-03T09:00:00+09:00",
        "clarification_deadline": "2025-03-18T18:00:00+09:00",
        "submission_deadline": "2025-03-17T10:00:00+09:00",
        "opening": "2025-03-17T09:00:00+09:00",
    }
    problems = problems_of(content_data(dates=dates))
    assert set(problems) == {"dates.submission_deadline", "dates.opening"}
    assert "clarification_deadline" in problems["dates.submission_deadline"]


def test_cross_field_rules_currency_and_lot_ids() -> None:
    problems = problems_of(
        content_data(currency=None, lots=[{"id": "1", "title": "a"}, {"id": "1", "title": "b"}])
    )
    assert set(problems) == {"currency", "lots.1.id"}


def test_prefix_is_prepended_for_nested_bodies() -> None:
    with pytest.raises(NoticeValidationError) as caught:
        NoticeContent.parse(content_data(title=""), prefix="content")
    assert caught.value.problems[0][0] == "content.title"


def test_region_may_be_a_whole_country_and_optional_fields_may_be_absent() -> None:
    content = NoticeContent.parse(
        {"title": "Paper", "category": "goods", "delivery_region": "KR", "dates": {"published": "2025-01-02T00:00:00Z"}}
    )
    assert content.estimated_value is None and content.lots == () and content.buyer is None


def published_notice() -> Notice:
    return Notice.publish("N-1", "org-seoul", make_content(), at=datetime(2025, 3, 3, 9, tzinfo=KST))


def test_publish_creates_version_one() -> None:
    notice = published_notice()
    assert notice.status is NoticeStatus.ACTIVE
    assert [(v.number, v.kind) for v in notice.versions] == [(1, VersionKind.ORIGINAL)]
    assert notice.current.reason is None


def test_deadline_change_is_an_amendment_listing_changed_dates() -> None:
    notice = published_notice()
    moved = notice.content.dates.model_copy(
        update={
            "submission_deadline": datetime(2025, 3, 24, 10, tzinfo=KST),
            "opening": datetime(2025, 3, 24, 11, tzinfo=KST),
        }
    )
    version = notice.amend(
        notice.content.model_copy(update={"dates": moved}), "deadline extended", at=datetime(2025, 3, 5, tzinfo=KST)
    )
    assert (version.number, version.kind, version.reason) == (2, VersionKind.AMENDMENT, "deadline extended")
    assert version.changed_fields == ("dates.submission_deadline", "dates.opening")
    assert notice.versions[0].content.dates.opening == datetime(2025, 3, 17, 11, tzinfo=KST)  # history kept


def test_amendment_content_is_validated_across_fields() -> None:
    notice = published_notice()
    broken = notice.content.dates.model_copy(update={"opening": datetime(2025, 3, 1, tzinfo=KST)})
    with pytest.raises(NoticeValidationError) as caught:
        notice.amend(notice.content.model_copy(update={"dates": broken}), "typo")
    assert caught.value.problems[0][0] == "dates.opening"
    assert len(notice.versions) == 1


def test_cancel_appends_a_cancellation_and_blocks_further_changes() -> None:
    notice = published_notice()
    notice.amend(make_content(title="Revised"), "scope", at=datetime(2025, 3, 4, tzinfo=KST))
    version = notice.cancel("budget withdrawn", at=datetime(2025, 3, 6, tzinfo=KST))
    assert (version.number, version.kind) == (3, VersionKind.CANCELLATION)
    assert version.content.title == "Revised"  # the tombstone still says what was cancelled
    assert notice.status is NoticeStatus.CANCELLED
    with pytest.raises(NoticeStateError):
        notice.cancel("again")
    with pytest.raises(NoticeStateError):
        notice.amend(make_content(), "too late")
    assert len(notice.versions) == 3


def test_amend_and_cancel_need_a_reason_and_ordered_times() -> None:
    notice = published_notice()
    with pytest.raises(NoticeValidationError) as caught:
        notice.amend(make_content(), "  ")
    assert caught.value.problems[0][0] == "reason"
    with pytest.raises(NoticeValidationError) as caught:
        notice.cancel("x", at=datetime(2025, 3, 1, tzinfo=UTC))
    assert caught.value.problems[0][0] == "published_at"
    with pytest.raises(NoticeValidationError):
        notice.cancel("x", at=datetime(2025, 3, 4))  # naive
    assert notice.status is NoticeStatus.ACTIVE
