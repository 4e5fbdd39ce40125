"""What every inbound notice format gives the one import handler: items that are each a new notice or a
new version of the notice with the same source identifier, or a rejection naming the source field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from hub.notices.model import FieldProblem, NoticeContent, VersionKind
from hub.notices.publication import PublicationSettings
from hub.spine.errors import TooLarge

__all__ = ["ContentTooLarge", "DocumentError", "ImportedNotice", "NoticeFormat"]


class ContentTooLarge(TooLarge):
    slug = "content-too-large"


class DocumentError(Exception):
    """The document as a whole is unusable (not the format's envelope, a bad CSV header): (path, message)
    pairs, the path dotted from the request body's root (empty for the body itself)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" if path else message for path, message in problems))


@dataclass(frozen=True)
class ImportedNotice:
    """One item of a document. ``ref`` is how the report names it (``{"row": 2}``, ``{"index": 0,
    "bidNtceNo": …}``). Without ``external_id`` it is always a new notice; with one, ``order`` places it
    in the source's sequence for that identifier, and an order already imported changes nothing."""

    ref: Mapping[str, Any]
    content: NoticeContent | None = None
    problems: tuple[FieldProblem, ...] = ()
    external_id: str | None = None
    order: int = 0
    kind: VersionKind = VersionKind.ORIGINAL
    published_at: datetime | None = None  # the version's time; None: when it is stored
    reason: str | None = None
    institution_code: str | None = None  # the publishing body's code in the source, when it has one


class NoticeFormat(Protocol):
    name: str  # the registry key, and the source its external identifiers are kept under
    report_key: str  # the report's list member: "items", "rows", "releases"
    problem_key: str  # what a problem names: "field" or "column"
    order_field: str  # named when an item's place in the sequence is refused (cancels an unknown notice)

    def read(self, document: Any, options: Mapping[str, str], limits: PublicationSettings) -> list[ImportedNotice]:
        """Every item, valid or rejected; raises DocumentError or ContentTooLarge for the whole document."""
        ...

    def check(self) -> None:
        """Load and check what the format reads by (its mapping file): a start-up check."""
        ...
