"""CSV bulk upload as an inbound format: one new notice per row, every problem named by its column
(``docs/notices-csv.md``).

Parsing is pure: rows come back valid (with their content) or rejected (with per-column errors), so the
import handler publishes the valid ones and reports the rest. Problems in the header (an unknown or
missing column) reject the whole file, since every row would be read wrongly. The columns are the hub's
own field names, so this format needs no mapping file.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub.notices.codes import ClassificationScheme
from hub.notices.formats.base import ContentTooLarge, DocumentError, ImportedNotice
from hub.notices.model import NoticeContent, NoticeValidationError
from hub.notices.publication import PublicationSettings

__all__ = ["COLUMNS", "REQUIRED_COLUMNS", "CsvFormat", "CsvRow", "column_for", "parse_csv"]

COLUMNS: tuple[str, ...] = (
    "title", "description", "category", "classifications", "delivery_region", "estimated_value", "currency",
    "procedure", "procedure_details", "published", "clarification_deadline", "submission_start",
    "submission_deadline", "opening", "buyer_id", "buyer_name", "procuring_entity_id", "procuring_entity_name",
    "document_title", "document_url", "document_sha256",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("title", "category")
_DATES = ("published", "clarification_deadline", "submission_start", "submission_deadline", "opening")
_PARTIES = ("buyer", "procuring_entity")
_SCHEMES = "|".join(re.escape(scheme.value) for scheme in ClassificationScheme)
_CLASSIFICATION = re.compile(rf"^({_SCHEMES}):(\S+)$", re.IGNORECASE)
_THOUSANDS = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")


@dataclass
class CsvRow:
    row: int  # record number in the file; the header is row 1
    content: NoticeContent | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (column, message)


def column_for(path: str) -> str:
    """A content field path (``dates.opening``, ``buyer.name``, ``documents.0.url``) → its CSV column."""
    head, *rest = path.split(".")
    if head == "dates" and rest:
        return rest[0]
    if head in _PARTIES:
        return f"{head}_{rest[0]}" if rest and rest[0] in {"id", "name"} else f"{head}_id"
    if head == "documents":
        leaf = rest[-1] if rest and not rest[-1].isdigit() else "url"
        return f"document_{leaf}"
    if head == "classifications":
        return "classifications"
    return head


class CsvFormat:
    name = "csv"
    report_key = "rows"
    problem_key = "column"
    order_field = "row"

    def check(self) -> None:
        """Nothing to load: the columns are fixed."""

    def read(self, document: Any, options: Mapping[str, str], limits: PublicationSettings) -> list[ImportedNotice]:
        """``document``: the CSV text."""
        rows = parse_csv(str(document), max_rows=limits.csv_max_rows, now=datetime.now(UTC),
                         max_field_chars=limits.csv_max_field_chars)
        return [ImportedNotice({"row": row.row}, content=row.content, problems=tuple(row.errors)) for row in rows]


def parse_csv(text: str, *, max_rows: int, now: datetime, max_field_chars: int = 10_000) -> list[CsvRow]:
    """Rows of ``text`` (header first); blank lines are skipped. ``now`` fills an empty ``published``.
    Raises DocumentError naming the columns when the header is unusable, and naming the row and column
    of a cell longer than ``max_field_chars``."""
    _allow_fields_of(len(text))
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        return _parse(reader, max_rows=max_rows, now=now, max_field_chars=max_field_chars)
    except csv.Error as error:
        raise DocumentError([("", f"row {reader.line_num}: {error}")]) from None


def _allow_fields_of(size: int) -> None:
    """The csv module's own cell limit (131,072 characters, process-wide) would raise mid-file; it is
    raised to the size of the text so that the hub's per-cell limit, which names the cell, decides."""
    if csv.field_size_limit() < size + 1:
        csv.field_size_limit(size + 1)


def _parse(reader: Any, *, max_rows: int, now: datetime, max_field_chars: int) -> list[CsvRow]:
    header = next(reader, None)
    if header is None:
        raise DocumentError([("header", "the file is empty; the first line must name the columns")])
    names = [name.strip().lower() for name in header]
    problems = [(n, "unknown column") for n in names if n and n not in COLUMNS]
    problems += [(n, "duplicate column") for i, n in enumerate(names) if n and n in names[:i]]
    problems += [(n, "required column missing") for n in REQUIRED_COLUMNS if n not in names]
    if problems:
        raise DocumentError(problems)
    rows: list[CsvRow] = []
    for index, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) >= max_rows:
            raise ContentTooLarge(f"at most {max_rows} rows per upload")
        for name, cell in zip(names, cells, strict=False):
            if len(cell) > max_field_chars:
                raise DocumentError([(name or "", f"row {index}: the cell has {len(cell)} characters; at most "
                                                  f"{max_field_chars} per cell")])
        if len(cells) > len(names):
            rows.append(CsvRow(index, errors=[("", f"{len(cells)} cells but {len(names)} columns")]))
            continue
        values = {name: cell.strip() for name, cell in zip(names, cells, strict=False) if name and cell.strip()}
        rows.append(_row(index, values, now))
    return rows


def _row(index: int, values: Mapping[str, str], now: datetime) -> CsvRow:
    errors: list[tuple[str, str]] = []
    data: dict[str, Any] = {}
    for name in ("title", "description", "category", "delivery_region", "currency", "procedure",
                 "procedure_details"):
        if name in values:
            data[name] = values[name]
    if "estimated_value" in values:
        raw = values["estimated_value"]
        data["estimated_value"] = raw.replace(",", "") if _THOUSANDS.match(raw) else raw
    data["dates"] = {name: values[name] for name in _DATES if name in values}
    data["dates"].setdefault("published", now.isoformat())
    classifications = []
    for part in re.split(r"[;\s]+", values.get("classifications", "")):
        if not part:
            continue
        found = _CLASSIFICATION.match(part)
        if found is None:
            errors.append(("classifications", f"{part!r}: expected SCHEME:CODE, e.g. CPV:45233140-2"))
        else:
            classifications.append({"scheme": found.group(1).upper(), "code": found.group(2)})
    data["classifications"] = classifications
    for party in _PARTIES:
        fields = {key: values[f"{party}_{key}"] for key in ("id", "name") if f"{party}_{key}" in values}
        if fields:
            data[party] = fields
    if "document_url" in values:
        url = values["document_url"]
        document = {"url": url, "title": values.get("document_title") or url.rstrip("/").rsplit("/", 1)[-1] or url}
        if "document_sha256" in values:
            document["sha256"] = values["document_sha256"]
        data["documents"] = [document]
    elif "document_title" in values or "document_sha256" in values:
        errors.append(("document_url", "required when document_title or document_sha256 is given"))
    try:
        content = NoticeContent.parse(data)
    except NoticeValidationError as error:
        errors += [(column_for(path), message) for path, message in error.problems]
        content = None
    if errors:
        return CsvRow(index, errors=_unique(errors))
    return CsvRow(index, content=content)


def _unique(errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(errors))
