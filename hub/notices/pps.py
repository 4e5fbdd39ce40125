"""Korean PPS open-API bid notices (BidPublicInfoService items) → unified notice versions.

The field correspondence lives in ``mappings/pps_notice.yaml`` so it can be read and corrected without
touching code; this module only interprets it. A PPS notice keeps its number (``bidNtceNo``) across
orders (``bidNtceOrd`` 000, 001, …): each order becomes one version of the same hub notice.
Problems name the PPS source field (``bidClseDt``) so that a bulk import's per-row report points at
the column the institution actually sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from hub.notices.model import FieldProblem, NoticeContent, NoticeValidationError, VersionKind

__all__ = ["DEFAULT_MAPPING", "PpsError", "PpsNotice", "load_mapping", "map_pps_item", "pps_items"]

DEFAULT_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "pps_notice.yaml"
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y/%m/%d %H:%M:%S",
                 "%Y-%m-%d", "%Y%m%d")


class PpsError(Exception):
    """The PPS API answered with an error result code (or a gateway error envelope)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"PPS result {code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PpsNotice:
    """One PPS item as a hub notice version: which notice, which order, what kind, what it says."""

    notice_no: str
    order: int
    kind: VersionKind
    content: NoticeContent
    published_at: datetime
    reason: str | None
    institution_code: str


@lru_cache(maxsize=8)
def load_mapping(path: Path = DEFAULT_MAPPING) -> Mapping[str, Any]:
    with path.open(encoding="utf-8") as handle:
        loaded: Mapping[str, Any] = yaml.safe_load(handle)
    return loaded


def pps_items(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Items of a PPS response in any of the shapes clients report: ``items`` as a list, as
    ``{"item": [...]}``, as ``{"item": {...}}`` or ``""`` when empty. Error envelopes raise PpsError."""
    body_holder = response.get("response")
    if not isinstance(body_holder, Mapping):
        for key, value in response.items():  # gateway errors: {"<x>.ResponseError": {"header": {...}}}
            if key.endswith("ResponseError") and isinstance(value, Mapping):
                header = value.get("header", {})
                raise PpsError(str(header.get("resultCode", "99")), str(header.get("resultMsg", "")))
        raise PpsError("99", "not a PPS response envelope")
    header = body_holder.get("header", {})
    code = str(header.get("resultCode", "00"))
    if code == "03":  # NODATA
        return []
    if code != "00":
        raise PpsError(code, str(header.get("resultMsg", "")))
    items = (body_holder.get("body") or {}).get("items")
    if isinstance(items, Mapping):
        items = items.get("item", [])
    if isinstance(items, Mapping):
        return [dict(items)]
    if not items:
        return []
    return [dict(item) for item in items]


def map_pps_item(
    item: Mapping[str, Any], operation: str | None = None, mapping: Mapping[str, Any] | None = None
) -> PpsNotice:
    """Map one item; ``operation`` (e.g. ``getBidPblancListInfoCnstwk``) decides the category."""
    spec = mapping if mapping is not None else load_mapping()
    reader = _Reader(item, timezone(timedelta(hours=int(spec.get("utc_offset_hours", 9)))))
    identity = spec["identity"]
    notice_no = reader.text(identity["notice_no"])
    order_text = reader.text(identity["order"]) or "0"
    if not notice_no:
        reader.problems.append((identity["notice_no"], "required"))
    if not order_text.isdigit():
        reader.problems.append((identity["order"], "expected digits such as 000"))
    order = int(order_text) if order_text.isdigit() else 0

    data: dict[str, Any] = {"currency": spec.get("currency")}
    sources: dict[str, str] = {}
    for target, field_spec in spec["fields"].items():
        value, source = reader.field(field_spec)
        sources[target] = source
        if value is not None:
            _put(data, target, value)
    data["category"] = _category(spec["category"], reader, operation)
    data["description"] = "\n".join(
        f"{line['label']}: {text}" for line in spec.get("description", []) if (text := reader.text(line["from"]))
    )
    data["classifications"] = _classifications(spec.get("classifications", []), reader)
    data["documents"] = _documents(spec.get("documents", {}), reader)
    data["eligibility"] = _eligibility(spec.get("eligibility", []), reader)
    for party in ("buyer", "procuring_entity"):
        if not all(data.get(party, {}).get(key) for key in ("id", "name")):
            data.pop(party, None)
    if data.get("estimated_value") is None:
        data.pop("currency")
    if reader.problems:
        raise NoticeValidationError(reader.problems)
    try:
        content = NoticeContent.parse(data)
    except NoticeValidationError as error:
        raise NoticeValidationError(
            (_source_name(path, sources), message) for path, message in error.problems
        ) from None
    kind = _version_kind(spec["version_kind"], reader, order)
    reason = None if kind is VersionKind.ORIGINAL else f"{reader.text('ntceKindNm') or kind.value} (차수 {order_text})"
    return PpsNotice(
        notice_no=notice_no,
        order=order,
        kind=kind,
        content=content,
        published_at=content.dates.published,
        reason=reason,
        institution_code=reader.text(identity["institution"]),
    )


class _Reader:
    """Reads PPS string fields, recording a problem per unreadable source field."""

    def __init__(self, item: Mapping[str, Any], tz: timezone) -> None:
        self.item = item
        self.tz = tz
        self.problems: list[FieldProblem] = []

    def text(self, name: str) -> str:
        value = self.item.get(name)
        return "" if value is None else str(value).strip()

    def field(self, spec: str | Mapping[str, Any]) -> tuple[Any, str]:
        if isinstance(spec, str):
            return (self.text(spec) or None), spec
        names: Sequence[str] = spec.get("first_of") or [spec["from"]]
        source = next((name for name in names if self.text(name)), names[0])
        raw = self.text(source)
        if not raw:
            return spec.get("default"), source
        converted = self._convert(raw, spec.get("as", "text"), source)
        if "map" in spec:
            converted = spec["map"].get(converted, spec.get("default"))
        elif "contains" in spec:
            converted = next((v for k, v in spec["contains"].items() if k in raw), spec.get("default"))
        elif "prefix" in spec:
            converted = _by_prefix(raw, spec["prefix"], spec.get("default"))
        return converted, source

    def _convert(self, raw: str, kind: str, source: str) -> Any:
        if kind == "kst_datetime":
            return self.when(raw, source)
        if kind == "amount":
            return self.amount(raw, source)
        return raw

    def when(self, raw: str, source: str) -> datetime | None:
        for pattern in _DATE_FORMATS:
            try:
                return datetime.strptime(raw, pattern).replace(tzinfo=self.tz)
            except ValueError:
                continue
        self.problems.append((source, f"unreadable date {raw!r} (expected YYYY-MM-DD HH:MM:SS or YYYYMMDDHHMM)"))
        return None

    def amount(self, raw: str, source: str) -> Decimal | None:
        try:
            value = Decimal(raw.replace(",", ""))
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value < 0:
            self.problems.append((source, f"expected a non-negative amount, got {raw!r}"))
            return None
        return value


def _by_prefix(raw: str, table: Mapping[str, str], default: Any) -> Any:
    """Each comma-separated part maps by its prefix; one distinct result wins, several fall back."""
    found = set()
    for part in (p.strip() for p in re.split(r"[,/]", raw)):
        code = next((v for k, v in table.items() if part.startswith(k)), None)
        if code is not None:
            found.add(code)
    return found.pop() if len(found) == 1 else default


def _put(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        data = data.setdefault(name, {})
    data[leaf] = value


def _source_name(path: str, sources: Mapping[str, str]) -> str:
    """``dates.submission_deadline`` → ``bidClseDt`` when the mapping says where it came from."""
    for target, source in sources.items():
        if path == target or path.startswith(target + "."):
            return source
    return path


def _category(spec: Mapping[str, Any], reader: _Reader, operation: str | None) -> str | None:
    if operation:
        for marker, category in spec["by_operation"].items():
            if marker in operation:
                return str(category)
    value = spec["values"].get(reader.text(spec["by_field"]))
    if value is None:
        reader.problems.append(("category", f"unknown: pass the operation or {spec['by_field']}"))
        return None
    return str(value)


def _classifications(specs: Sequence[Mapping[str, Any]], reader: _Reader) -> list[dict[str, str]]:
    found = []
    for spec in specs:
        raw = re.sub(r"\D", "", reader.text(spec["from"]))
        digits = int(spec.get("digits", 8))
        if len(raw) >= digits:
            found.append({"scheme": spec["scheme"], "code": raw[:digits]})
        elif raw:
            reader.problems.append((spec["from"], f"expected at least {digits} digits"))
    return found


def _documents(spec: Mapping[str, Any], reader: _Reader) -> list[dict[str, str]]:
    pairs: list[tuple[str, str]] = []
    if numbered := spec.get("numbered"):
        for n in range(int(numbered["first"]), int(numbered["last"]) + 1):
            pairs.append((numbered["url"].format(n=n), numbered["title"].format(n=n)))
    docs, seen = [], set()
    for url_field, title_field in pairs:
        url = reader.text(url_field)
        if url and url not in seen:
            seen.add(url)
            docs.append({"url": url, "title": reader.text(title_field) or url.rsplit("/", 1)[-1] or url})
    for single in spec.get("single", []):
        url = reader.text(single["url"])
        if url and url not in seen:
            seen.add(url)
            docs.append({"url": url, "title": single["title"]})
    return docs


def _eligibility(specs: Sequence[Mapping[str, Any]], reader: _Reader) -> list[dict[str, Any]]:
    requirements = []
    for spec in specs:
        equals = spec.get("when_equals", {})
        if any(reader.text(name) != expected for name, expected in equals.items()):
            continue
        if "when_present" in spec and not reader.text(spec["when_present"]):
            continue
        details = {key: text for key, source in spec.get("copy", {}).items() if (text := reader.text(source))}
        requirements.append({"kind": "stated_condition", "condition": spec["condition"], "details": details})
    return requirements


def _version_kind(spec: Mapping[str, Any], reader: _Reader, order: int) -> VersionKind:
    def hit(rule: Mapping[str, Sequence[str]]) -> bool:
        return any(word in reader.text(name) for name, words in rule.items() for word in words)

    if hit(spec.get("cancellation_when_contains", {})):
        return VersionKind.CANCELLATION
    if order > 0 or hit(spec.get("amendment_when_contains", {})):
        return VersionKind.AMENDMENT
    return VersionKind.ORIGINAL
