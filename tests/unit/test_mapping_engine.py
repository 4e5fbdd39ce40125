"""Mapping files are checked at load with errors naming the file and the field; transforms and
validity rules behave as documented."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mappings.engine import MappingDataError, MappingError, UnreadableReply, load_mapping
from mappings.transforms import TransformError, compile_transform
from tests.support.connectors import apply_raw

FETCHED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GOOD_JSON: dict[str, Any] = {
    "source": "demo",
    "format": "json",
    "credentials": [
        {
            "type": "tax_status",
            "records": "items[]",
            "subject": "id",
            "status": {"path": "state", "map": {"A": "active"}, "default": "unknown"},
            "attributes": {"since": {"path": "since", "transform": ["strip", "date_yyyymmdd"]}},
            "validity": {"ttl_days": 3},
        }
    ],
}


def write(tmp_path: Path, document: Any, name: str = "demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


def broken(change: Any) -> dict[str, Any]:
    doc = yaml.safe_load(yaml.safe_dump(GOOD_JSON))
    change(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda d: d.update(colour="red"), "(top).colour", "unknown key"),
        (lambda d: d.pop("format"), "(top).format", "is required"),
        (lambda d: d.update(format="csv"), "format", "'json' or 'xml'"),
        (lambda d: d["credentials"][0].update(typo=1), "credentials[0].typo", "unknown key"),
        (lambda d: d["credentials"][0].update(type="tax"), "credentials[0].type", "unknown credential type"),
        (lambda d: d["credentials"][0].update(records="items[?"), "credentials[0].records", "bad JMESPath"),
        (lambda d: d["credentials"][0]["status"].update(map=["A"]), "credentials[0].status.map", "must be a mapping"),
        (lambda d: d["credentials"][0]["status"].update(mapp={}), "credentials[0].status.mapp", "unknown key"),
        (
            lambda d: d["credentials"][0]["attributes"]["since"].update(transform=["strip", "date_yymmdd"]),
            "credentials[0].attributes.since.transform[1]",
            "unknown transform 'date_yymmdd'",
        ),
        (
            lambda d: d["credentials"][0]["attributes"].update(x={"const": 1, "path": "a"}),
            "credentials[0].attributes.x",
            "exactly one of",
        ),
        (lambda d: d["credentials"][0]["validity"].update(ttl_days=-1), "credentials[0].validity.ttl_days", "positive"),
        (
            lambda d: d["credentials"][0]["validity"].update(forever=True),
            "credentials[0].validity.forever",
            "unknown key",
        ),
        (lambda d: d["credentials"][0]["status"].update(unmapped="drop"), "credentials[0].status.unmapped", "keep"),
        (lambda d: d.update(credentials=[]), "credentials", "non-empty list"),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path: Path, change: Any, field: str, problem: str) -> None:
    path = write(tmp_path, broken(change))
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert problem in message


def test_xpath_errors_name_the_field(tmp_path: Path) -> None:
    doc = {
        "source": "x",
        "format": "xml",
        "namespaces": {"a": "urn:a"},
        "credentials": [
            {"type": "vat_registration", "records": "//a:r", "status": "a:s[", "attributes": {"n": "b:name"}}
        ],
    }
    with pytest.raises(MappingError, match=r"credentials\[0\]\.status\.path: bad XPath"):
        load_mapping(write(tmp_path, doc))
    doc["credentials"][0]["status"] = "a:s"
    with pytest.raises(MappingError, match=r"credentials\[0\]\.attributes\.n\.path: bad XPath 'b:name'"):
        load_mapping(write(tmp_path, doc))


def test_unreadable_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: [unclosed")
    with pytest.raises(MappingError, match=r"bad\.yaml: cannot read"):
        load_mapping(bad)


def test_apply_records_map_default_and_ttl(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, GOOD_JSON))
    raw = b'{"items": [{"id": "1", "state": "A", "since": " 20240105 "}, {"id": "2", "state": "Z"}]}'
    first, second = apply_raw(mapping, raw, identifier="batch", fetched_at=FETCHED)
    assert (first.subject, first.status, first.attributes["since"]) == ("1", "active", "2024-01-05")
    assert second.status == "unknown" and second.attributes["since"] is None
    assert first.valid_from == FETCHED and first.valid_until == FETCHED + timedelta(days=3)


def test_required_field_and_bad_values_raise_data_errors_naming_the_field(tmp_path: Path) -> None:
    doc = broken(lambda d: d["credentials"][0]["attributes"]["since"].update(required=True))
    mapping = load_mapping(write(tmp_path, doc))
    with pytest.raises(MappingDataError, match=r"credentials\[0\]\.attributes\.since: required"):
        apply_raw(mapping, b'{"items": [{"id": "1", "state": "A"}]}', identifier="1", fetched_at=FETCHED)
    with pytest.raises(MappingDataError, match=r"attributes\.since: not a YYYYMMDD date"):
        apply_raw(mapping, b'{"items": [{"id": "1", "since": "2024-01-05"}]}', identifier="1", fetched_at=FETCHED)


def test_hostile_or_malformed_payloads_are_data_errors(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, GOOD_JSON))
    with pytest.raises(MappingDataError):
        apply_raw(mapping, b"{not json", identifier="1", fetched_at=FETCHED)
    xml = load_mapping(
        write(
            tmp_path,
            {"source": "x", "format": "xml", "credentials": [{"type": "vat_registration", "status": "s"}]},
            "x.yaml",
        )
    )
    with pytest.raises(MappingDataError):
        apply_raw(
            xml, b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r><s>&e;</s></r>',
            identifier="1",
            fetched_at=FETCHED,
        )


def test_a_reply_that_is_not_the_sources_answer_is_unreadable_not_empty(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, {**GOOD_JSON, "answer": "type(items) == 'array'"}))
    assert apply_raw(mapping, b'{"items": []}', identifier="1", fetched_at=FETCHED) == []  # readable, none held
    for reply in (b'{"error": "gateway"}', b'"<html>"', b"<html><body>down</body></html>", b"null"):
        with pytest.raises(UnreadableReply):
            apply_raw(mapping, reply, identifier="1", fetched_at=FETCHED)
    without = load_mapping(write(tmp_path, GOOD_JSON, "plain.yaml"))
    with pytest.raises(UnreadableReply, match="not an object or an array"):
        apply_raw(without, b'"maintenance"', identifier="1", fetched_at=FETCHED)
    xml = load_mapping(write(tmp_path, {
        "source": "x", "format": "xml", "namespaces": {"a": "urn:a"}, "answer": "/a:answer",
        "credentials": [{"type": "vat_registration", "records": "/a:answer/a:item", "status": "a:s"}]}, "x.yaml"))
    assert apply_raw(xml, b'<answer xmlns="urn:a"/>', identifier="1", fetched_at=FETCHED) == []
    with pytest.raises(UnreadableReply, match="/a:answer finds nothing"):
        apply_raw(xml, b'<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', identifier="1",
                  fetched_at=FETCHED)


def test_answer_is_checked_at_load_and_only_for_credentials(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="answer: bad JMESPath"):
        load_mapping(write(tmp_path, {**GOOD_JSON, "answer": "items[["}))
    notices = {"source": "n", "format": "json", "answer": "a", "notices": {"fields": {"title": "t"}}}
    with pytest.raises(MappingError, match="answer: only meaningful with 'credentials'"):
        load_mapping(write(tmp_path, notices, "n.yaml"))


def test_every_shipped_credential_mapping_says_what_its_answer_looks_like() -> None:
    shipped = Path(__file__).resolve().parents[2] / "mappings"
    for name in ("companies_house", "gleif", "iaf", "national_certs", "nts", "vies"):
        assert load_mapping(shipped / f"{name}.yaml").answer is not None, name


def test_when_skips_records_and_const_fields(tmp_path: Path) -> None:
    doc = broken(lambda d: d["credentials"][0].update(when="id", attributes={"kind": {"const": "SME"}}))
    mapping = load_mapping(write(tmp_path, doc))
    creds = apply_raw(mapping, b'{"items": [{"id": ""}, {"id": "7", "state": "A"}]}', identifier="x",
                      fetched_at=FETCHED)
    assert [(c.subject, c.attributes) for c in creds] == [("7", {"kind": "SME"})]


def test_until_field_wins_over_ttl_and_ttl_is_the_fallback(tmp_path: Path) -> None:
    doc = broken(
        lambda d: d["credentials"][0].update(
            validity={
                "from": {"path": "from", "transform": "date"},
                "until": {"path": "until", "transform": "date"},
                "ttl_days": 10,
            }
        )
    )
    mapping = load_mapping(write(tmp_path, doc))
    with_until, without = apply_raw(
        mapping,
        b'{"items": [{"id": "1", "from": "2026-01-01", "until": "2026-06-30"}, {"id": "2", "from": "2026-02-01"}]}',
        identifier="x",
        fetched_at=FETCHED,
    )
    assert with_until.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert with_until.valid_until == datetime(2026, 7, 1, tzinfo=UTC)
    assert without.valid_until == datetime(2026, 2, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ("date", "2022-09-04+02:00", date(2022, 9, 4)),
        ("date", "2022-09-04Z", date(2022, 9, 4)),
        ("date", "2022-09-04", date(2022, 9, 4)),
        ("date", "2014-02-10T14:05:00Z", date(2014, 2, 10)),
        ("date_yyyymmdd", "20250131", date(2025, 1, 31)),
        ("date_format:%d.%m.%Y", "31.01.2025", date(2025, 1, 31)),
        ("datetime", "2026-12-01T00:00:00Z", datetime(2026, 12, 1, tzinfo=UTC)),
        ("datetime", "2026-12-01T00:00:00", datetime(2026, 12, 1, tzinfo=UTC)),
        ("number", "1,234.5", 1234.5),
        ("int", "42", 42),
        ("boolean", "Y", True),
        ("boolean", "false", False),
        ("strip", "  x ", "x"),
        ("upper", "de", "DE"),
        ("empty_as_null", "  ", None),
        ("null_if:---", "---", None),
        ("split::", "ISO 9001:2015", ["ISO 9001", "2015"]),
        ("first", ["a", "b"], "a"),
        ("list", "a", ["a"]),
        ("join:, ", ["a", "b"], "a, b"),
        ("strip", ["a ", " b"], ["a", "b"]),
        ("date", None, None),
    ],
)
def test_transforms(spec: str, value: Any, expected: Any) -> None:
    assert compile_transform(spec)(value) == expected


@pytest.mark.parametrize(
    ("spec", "value"),
    [("date", "04/09/2022"), ("int", "4.5"), ("boolean", "maybe"), ("number", "abc"), ("date_yyyymmdd", "2025-01-31")],
)
def test_transform_errors(spec: str, value: Any) -> None:
    with pytest.raises(TransformError):
        compile_transform(spec)(value)


def test_unknown_transform_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="date_yyyymmdd"):
        compile_transform("dat")
