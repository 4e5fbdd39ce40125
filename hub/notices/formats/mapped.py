"""Notice formats described by a mapping file on the connectors' engine (``mappings/engine.py``, its
``notices:`` section): the file says where each notice field comes from, this module turns one record's
reading into an :class:`ImportedNotice`.

Targets are notice content fields (``title``, ``dates.opening``, ``buyer.id`` …) or, under
``notice.``, facts about the version: ``external_id`` (required), ``order`` (digits, or a datetime:
the sequence is then time, in microseconds since 2000-01-01 UTC), ``cancelled`` and ``amended`` (truthy
flags), ``reason``, ``published_at`` (default: ``dates.published``) and ``institution``. Problems name
the source field, so a per-item report points at what the sender actually sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib.resources import files
from typing import Any

from hub.notices.formats.base import ImportedNotice
from hub.notices.model import NoticeContent, NoticeValidationError, VersionKind
from hub.spine.text import control_character_problem
from mappings.engine import MappingError, SourceMapping, load_mapping

__all__ = ["NOTICE_TARGETS", "load_notice_mapping", "mapping_path", "read_notice"]

NOTICE_TARGETS = frozenset({"external_id", "order", "cancelled", "amended", "reason", "published_at", "institution"})
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_EXTERNAL_ID = 100  # notice_external_refs.external_id
Refine = Callable[[dict[str, Any]], None]


def mapping_path(name: str) -> str:
    """A mapping file shipped in the ``mappings`` package."""
    return str(files("mappings").joinpath(name))


@lru_cache(maxsize=16)
def load_notice_mapping(path: str) -> SourceMapping:
    """Load and check a notice mapping; every target must be a notice field (a typo stops the start)."""
    mapping = load_mapping(path)
    spec = mapping.notices
    if spec is None:
        raise MappingError(f"{path}: (top): a notice format needs a 'notices' section")
    for target in (*spec.fields, *spec.lists, *spec.text):
        head, _, rest = target.partition(".")
        known = rest in NOTICE_TARGETS if head == "notice" else head in NoticeContent.model_fields
        if not known:
            raise MappingError(f"{path}: notices.{target}: unknown target (a notice content field, or "
                               f"notice.<{'|'.join(sorted(NOTICE_TARGETS))}>)")
    if "notice.external_id" not in spec.fields:
        raise MappingError(f"{path}: notices.fields.notice.external_id: is required")
    return mapping


def read_notice(mapping: SourceMapping, record: Any, ref: Mapping[str, Any], refine: Refine | None = None,
                pointer: str = "@") -> ImportedNotice:
    """One record as an item; a record that does not fit comes back rejected with every problem."""
    assert mapping.notices is not None
    reading = mapping.notices.read(record, pointer)
    data, problems = reading.data, list(reading.problems)
    version: dict[str, Any] = data.pop("notice", {})
    external_id = str(version.get("external_id", ""))
    if len(external_id) > _MAX_EXTERNAL_ID:
        problems.append((reading.sources.get("notice.external_id", "external_id"),
                         f"at most {_MAX_EXTERNAL_ID} characters"))
    for key in ("notice.external_id", "notice.reason", "notice.institution"):
        # kept as given (the source's identifier, the amendment's reason): no control characters
        value = version.get(key.removeprefix("notice."))
        if isinstance(value, str) and (problem := control_character_problem(value)):
            problems.append((reading.sources.get(key, key.removeprefix("notice.")), problem))
    order = _order(version.get("order", 0))
    if order is None:
        problems.append((reading.sources.get("notice.order", "order"), "expected digits such as 000, or a date"))
    if problems:
        return ImportedNotice(ref, problems=tuple(problems), external_id=external_id or None)
    _drop_incomplete_parties(data)
    _title_documents(data)
    if refine is not None:
        refine(data)
    try:
        content = NoticeContent.parse(data)
    except NoticeValidationError as error:
        named = tuple((_source_name(path, reading.sources), message) for path, message in error.problems)
        return ImportedNotice(ref, problems=named, external_id=external_id)
    assert order is not None
    if version.get("cancelled"):
        kind = VersionKind.CANCELLATION
    elif version.get("amended"):
        kind = VersionKind.AMENDMENT
    else:
        kind = VersionKind.ORIGINAL
    published_at = version.get("published_at") or content.dates.published
    return ImportedNotice(
        ref, content=content, external_id=external_id, order=order, kind=kind, published_at=published_at,
        reason=None if kind is VersionKind.ORIGINAL else (str(version.get("reason", "")).strip() or None),
        institution_code=str(version["institution"]) if "institution" in version else None,
    )


def _order(value: Any) -> int | None:
    if isinstance(value, datetime):
        return (value - _EPOCH) // timedelta(microseconds=1)
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _drop_incomplete_parties(data: dict[str, Any]) -> None:
    """Sources often name a body by code only or by name only; such a party is left out, not refused."""
    for party in ("buyer", "procuring_entity"):
        found = data.get(party)
        if not (isinstance(found, dict) and found.get("id") and found.get("name")):
            data.pop(party, None)


def _title_documents(data: dict[str, Any]) -> None:
    """A document without a title is titled by its file name; the same URL is listed once."""
    documents, seen = [], set()
    for document in data.get("documents") or ():
        url = document.get("url") if isinstance(document, dict) else None
        if url in seen:
            continue
        if url:
            seen.add(url)
            document.setdefault("title", str(url).rstrip("/").rsplit("/", 1)[-1] or url)
        documents.append(document)
    if documents:
        data["documents"] = documents


def _source_name(path: str, sources: Mapping[str, str]) -> str:
    """``dates.submission_deadline`` → ``bidClseDt`` when the mapping says where it came from."""
    for target in sorted(sources, key=len, reverse=True):
        if path == target or path.startswith(target + "."):
            return sources[target]
    return path
