"""Notices as OCDS 1.1 releases, release packages and record packages.

Each notice version is one release of the contracting process ``<ocid prefix>-<notice id>``: the first
tagged ``tender``, amendments ``tenderAmendment`` and the cancellation ``tenderCancellation``. Every
release carries the complete tender as of that version, so a consumer holding one release needs no other.

Choices the core schema leaves open, recorded here so consumers can rely on them:
- lots follow the OCDS lots extension (``tender.lots``), which the packages declare in ``extensions``;
- OCDS documents have no digest field, so a document's SHA-256 goes into its ``description`` as
  ``sha256:<hex>``; document ids are derived from the URL so the same document keeps its id across
  versions and merges cleanly;
- eligibility requirements are rendered as compact JSON in ``tender.eligibilityCriteria`` (a free-text
  field) until the requirement language has its own OCDS mapping;
- ``awardPeriod.startDate`` is the bid opening, when evaluation starts;
- classifications of national schemes (the Korean PPS-GOODS and PPS-PUBLIC) are ``additionalClassifications``
  of the items classified by CPV or UNSPSC (see ``_items``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from hub.notices.codes import ClassificationScheme
from hub.notices.model import (
    Classification,
    Notice,
    NoticeContent,
    NoticeStatus,
    NoticeVersion,
    Party,
    VersionKind,
)

__all__ = [
    "LOTS_EXTENSION",
    "OCDS_VERSION",
    "compile_releases",
    "merge_releases",
    "ocid_for",
    "record_package",
    "release_for",
    "release_id",
    "release_package",
    "releases_for",
]

OCDS_VERSION = "1.1"
LOTS_EXTENSION = (
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_lots_extension/v1.1.5/extension.json"
)
_TAGS = {
    VersionKind.ORIGINAL: "tender",
    VersionKind.AMENDMENT: "tenderAmendment",
    VersionKind.CANCELLATION: "tenderCancellation",
}
# Fields the release schema marks wholeListMerge: replaced as a whole, never merged by id.
_WHOLE_LIST_FIELDS = frozenset({"additionalIdentifiers", "additionalClassifications"})
# The schemes on OCDS's classificationScheme codelist; the codelist is open, so the hub's own names
# (PPS-GOODS, PPS-PUBLIC) are used for the rest.
_CODELIST_SCHEMES = frozenset({ClassificationScheme.CPV, ClassificationScheme.UNSPSC})
_OMIT_WHEN_MERGED = ("id", "date", "tag")
_NULLABLE_TEXT = frozenset({"description", "procurementMethodDetails", "eligibilityCriteria"})
_NULLABLE_OBJECTS = frozenset({"value", "tenderPeriod", "enquiryPeriod", "awardPeriod"})


def ocid_for(prefix: str, notice_id: str) -> str:
    return f"{prefix}-{notice_id}"


def release_id(notice_id: str, version_number: int) -> str:
    """Unique per version and stable: re-serving a version yields the same release id."""
    return f"{notice_id}-v{version_number}"


def releases_for(notice: Notice, ocid_prefix: str) -> list[dict[str, Any]]:
    return [release_for(notice, version.number, ocid_prefix) for version in notice.versions]


def release_for(notice: Notice, version_number: int, ocid_prefix: str) -> dict[str, Any]:
    """The release for one version, including the amendment trail of every version up to it."""
    version = notice.versions[version_number - 1]
    content = version.content
    buyer = content.buyer or content.procuring_entity
    procuring = content.procuring_entity or content.buyer
    release: dict[str, Any] = {
        "ocid": ocid_for(ocid_prefix, notice.id),
        "id": release_id(notice.id, version.number),
        "date": _when(version.published_at),
        "tag": [_TAGS[version.kind]],
        "initiationType": "tender",
        "parties": _parties(buyer, procuring),
    }
    if buyer is not None:
        release["buyer"] = _reference(buyer)
    tender = _tender(notice, version, procuring)
    if version.number > 1:
        earlier = notice.versions[version.number - 2]
        earlier_procuring = earlier.content.procuring_entity or earlier.content.buyer
        _null_removed_fields(_tender(notice, earlier, earlier_procuring), tender)
    release["tender"] = tender
    return release


def _items(content: NoticeContent) -> list[dict[str, Any]]:
    """One item per code of a scheme on the OCDS classificationScheme codelist (CPV, UNSPSC); national
    schemes (PPS-GOODS, PPS-PUBLIC) describe the same thing, so they go to each item's
    ``additionalClassifications``, or, when the notice has no codelist code, the first of them is the
    one item's classification."""
    listed = [c for c in content.classifications if c.scheme in _CODELIST_SCHEMES]
    national = [c for c in content.classifications if c.scheme not in _CODELIST_SCHEMES]
    if not listed:
        listed, national = national[:1], national[1:]
    items = []
    for item in listed:
        entry: dict[str, Any] = {
            "id": f"{item.scheme.value}-{item.code}",
            "description": content.title,
            "classification": _classification(item),
        }
        if national:
            entry["additionalClassifications"] = [_classification(other) for other in national]
        items.append(entry)
    return items


def _classification(item: Classification) -> dict[str, str]:
    return {"scheme": item.scheme.value, "id": item.code}


def _null_removed_fields(before: Mapping[str, Any], tender: dict[str, Any]) -> None:
    """A field a version drops must be nulled, or the compiled release would keep the old value
    (omission means 'unchanged' in OCDS merging). Objects are nulled member by member because the
    schema does not allow a null object."""
    for key, old in before.items():
        if key in tender:
            continue
        if key in _NULLABLE_TEXT:
            tender[key] = None
        elif key in _NULLABLE_OBJECTS:
            tender[key] = dict.fromkeys(old)


def _tender(notice: Notice, version: NoticeVersion, procuring: Party | None) -> dict[str, Any]:
    content = version.content
    cancelled = version.kind is VersionKind.CANCELLATION
    tender: dict[str, Any] = {
        "id": notice.id,
        "title": content.title,
        "status": (NoticeStatus.CANCELLED if cancelled else NoticeStatus.ACTIVE).value,
        "mainProcurementCategory": content.category.value,
        "procurementMethod": content.procedure.value,
    }
    if content.description:
        tender["description"] = content.description
    if content.procedure_details:
        tender["procurementMethodDetails"] = content.procedure_details
    if procuring is not None:
        tender["procuringEntity"] = _reference(procuring)
    if content.classifications:
        tender["items"] = _items(content)
    if content.estimated_value is not None:
        tender["value"] = _value(content.estimated_value, content.currency)
    tender.update(_periods(content))
    if content.eligibility:
        tender["eligibilityCriteria"] = json.dumps(
            list(content.eligibility), ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
    if content.lots:
        tender["lots"] = [_lot(lot, content.currency, cancelled) for lot in content.lots]
    if content.documents:
        first_seen = _document_first_seen(notice, version.number)
        tender["documents"] = [_document(doc, first_seen[doc.url]) for doc in content.documents]
    if version.number > 1:
        tender["amendments"] = [_amendment(notice, earlier) for earlier in notice.versions[1 : version.number]]
    return tender


def _periods(content: NoticeContent) -> dict[str, Any]:
    dates = content.dates
    periods: dict[str, Any] = {}
    tender_period = {"startDate": _when(dates.submission_start or dates.published)}
    if dates.submission_deadline is not None:
        tender_period["endDate"] = _when(dates.submission_deadline)
    periods["tenderPeriod"] = tender_period
    if dates.clarification_deadline is not None:
        periods["enquiryPeriod"] = {
            "startDate": _when(dates.published),
            "endDate": _when(dates.clarification_deadline),
        }
    if dates.opening is not None:
        periods["awardPeriod"] = {"startDate": _when(dates.opening)}
    return periods


def _amendment(notice: Notice, version: NoticeVersion) -> dict[str, Any]:
    return {
        "id": str(version.number - 1),
        "date": _when(version.published_at),
        "rationale": version.reason,
        "amendsReleaseID": release_id(notice.id, version.number - 1),
        "releaseID": release_id(notice.id, version.number),
    }


def _document_first_seen(notice: Notice, up_to: int) -> dict[str, datetime]:
    """A document's datePublished is the version that first carried its URL, not the latest one."""
    seen: dict[str, datetime] = {}
    for version in notice.versions[:up_to]:
        for doc in version.content.documents:
            seen.setdefault(doc.url, version.published_at)
    return seen


def _lot(lot: Any, currency: str | None, cancelled: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": lot.id, "title": lot.title, "status": "cancelled" if cancelled else "active"}
    if lot.description:
        out["description"] = lot.description
    if lot.value is not None:
        out["value"] = _value(lot.value, currency)
    return out


def _document(doc: Any, published: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": hashlib.sha256(doc.url.encode()).hexdigest()[:16],
        "documentType": "biddingDocuments",
        "title": doc.title,
        "url": doc.url,
        "datePublished": _when(published),
    }
    if doc.sha256:
        out["description"] = f"sha256:{doc.sha256}"
    return out


def _parties(buyer: Party | None, procuring: Party | None) -> list[dict[str, Any]]:
    roles: dict[str, tuple[Party, list[str]]] = {}
    for party, role in ((buyer, "buyer"), (procuring, "procuringEntity")):
        if party is not None:
            roles.setdefault(party.id, (party, []))[1].append(role)
    return [{"id": p.id, "name": p.name, "roles": r} for p, r in roles.values()]


def _reference(party: Party) -> dict[str, Any]:
    return {"id": party.id, "name": party.name}


def _value(amount: Decimal, currency: str | None) -> dict[str, Any]:
    number: int | float = int(amount) if amount == amount.to_integral_value() else float(amount)
    return {"amount": number, "currency": currency}


def _when(when: datetime) -> str:
    return when.isoformat()


def _publisher(publisher: str | Mapping[str, Any]) -> dict[str, Any]:
    return {"name": publisher} if isinstance(publisher, str) else dict(publisher)


def _package(key: str, items: list[dict[str, Any]], releases: Iterable[Mapping[str, Any]], uri: str,
             publisher: str | Mapping[str, Any], published_date: datetime) -> dict[str, Any]:
    package: dict[str, Any] = {"uri": uri, "version": OCDS_VERSION, "publishedDate": _when(published_date),
                               "publisher": _publisher(publisher), key: items}
    if any("lots" in r.get("tender", {}) for r in releases):
        package["extensions"] = [LOTS_EXTENSION]
    return package


def release_package(
    releases: list[dict[str, Any]],
    uri: str,
    publisher: str | Mapping[str, Any],
    published_date: datetime,
) -> dict[str, Any]:
    return _package("releases", releases, releases, uri, publisher, published_date)


def record_package(
    releases: list[dict[str, Any]],
    uri: str,
    publisher: str | Mapping[str, Any],
    published_date: datetime,
) -> dict[str, Any]:
    """One record per ocid with its releases embedded and its compiled release."""
    by_ocid: dict[str, list[dict[str, Any]]] = {}
    for release in releases:
        by_ocid.setdefault(release["ocid"], []).append(release)
    records = [{"ocid": ocid, "releases": group, "compiledRelease": compile_releases(group)}
               for ocid, group in by_ocid.items()]
    return _package("records", records, releases, uri, publisher, published_date)


def compile_releases(releases: list[dict[str, Any]]) -> dict[str, Any]:
    """The compiled release: releases merged oldest first, tagged ``compiled``, dated by the latest."""
    ordered = sorted(releases, key=lambda r: r["date"])  # stable: equal dates keep publication order
    compiled = merge_releases(ordered)
    latest = ordered[-1]["date"]
    return {"ocid": ordered[0]["ocid"], "id": f"{ordered[0]['ocid']}-{latest}", "date": latest,
            "tag": ["compiled"], **compiled}


def merge_releases(releases: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """OCDS merge: later values win, objects merge recursively, arrays of objects with ids merge by id,
    any other array (and wholeListMerge fields) is replaced, and a null removes the field."""
    merged: dict[str, Any] = {}
    for release in releases:
        body = {k: v for k, v in release.items() if k not in _OMIT_WHEN_MERGED}
        _merge_into(merged, body)
    return merged


def _merge_into(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping):
            current = target.get(key)
            if not isinstance(current, dict):
                current = target[key] = {}
            _merge_into(current, value)
        elif key not in _WHOLE_LIST_FIELDS and _identified_objects(value):
            target[key] = _merge_by_id(target.get(key), value)
        else:
            target[key] = copy.deepcopy(value)


def _identified_objects(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(item, Mapping) and "id" in item for item in value
    )


def _merge_by_id(current: Any, items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    existing: list[dict[str, Any]] = list(current) if _identified_objects(current) else []
    position = {str(item["id"]): index for index, item in enumerate(existing)}
    for item in items:
        key = str(item["id"])
        if key in position:
            _merge_into(existing[position[key]], item)
        else:
            fresh: dict[str, Any] = {}
            _merge_into(fresh, item)
            position[key] = len(existing)
            existing.append(fresh)
    return existing
