"""The unified bid notice: what an institution publishes once, and every version it ever had.

A notice is never edited in place: each amendment (a deadline change included) and the cancellation
append a ``NoticeVersion``, so feeds, OCDS releases and subscribers can replay the whole history.
Validation problems are collected as (field path, message) pairs so that the API can answer one
problem+json document naming every bad field instead of the first one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from hub.eligibility.language import RequirementError, parse_requirements
from hub.notices.codes import (
    ClassificationScheme,
    check_classification_code,
    check_currency,
    check_region,
)
from hub.spine.text import MAX_JSON_DEPTH, control_character_problem, control_character_problems, depth_problem
from hub.spine.timestamps import UtcTimestamp

__all__ = [
    "Category",
    "Classification",
    "FieldProblem",
    "KeyDates",
    "Lot",
    "Notice",
    "NoticeContent",
    "NoticeDocument",
    "NoticeStateError",
    "NoticeStatus",
    "NoticeValidationError",
    "NoticeVersion",
    "Party",
    "Procedure",
    "VersionKind",
    "unchanged",
]

FieldProblem = tuple[str, str]  # (dotted field path such as "dates.opening" or "lots.1.id", message)


class NoticeValidationError(Exception):
    """Every problem found in one input, each naming its field; deliberately not a ValueError so that
    pydantic lets it through unchanged when raised from a cross-field validator."""

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems: list[FieldProblem] = list(problems)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.problems))

    @classmethod
    def from_pydantic(cls, error: ValidationError, prefix: str = "") -> NoticeValidationError:
        problems = []
        for item in error.errors(include_url=False):
            path = ".".join(str(part) for part in item["loc"])
            message = item["msg"].removeprefix("Value error, ")
            problems.append((_join(prefix, path), message))
        return cls(problems)

    def prefixed(self, prefix: str) -> NoticeValidationError:
        return NoticeValidationError((_join(prefix, path), message) for path, message in self.problems)


class NoticeStateError(Exception):
    """An operation the notice's history forbids (amending or cancelling a cancelled notice)."""


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix and path else prefix or path


class Category(StrEnum):
    GOODS = "goods"
    SERVICES = "services"
    WORKS = "works"


class Procedure(StrEnum):
    """The OCDS procurementMethod codelist, so the mapping to OCDS is one to one."""

    OPEN = "open"
    SELECTIVE = "selective"
    LIMITED = "limited"
    DIRECT = "direct"


class VersionKind(StrEnum):
    ORIGINAL = "original"
    AMENDMENT = "amendment"
    CANCELLATION = "cancellation"


class NoticeStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Classification(_Strict):
    scheme: ClassificationScheme
    code: str

    @field_validator("code")
    @classmethod
    def _code_fits_scheme(cls, code: str, info: Any) -> str:
        scheme = info.data.get("scheme")
        if scheme is not None and (problem := check_classification_code(scheme, code)):
            raise ValueError(problem)
        return code


class Party(_Strict):
    id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=500)


Money = Annotated[Decimal, WithJsonSchema({
    "type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "examples": ["1250000000"],
    "description": "A decimal amount in a JSON string, as the hub writes money everywhere (a JSON number "
                   "is accepted on input)",
})]
"""An amount of money: exact decimal in, a decimal string out (never a binary float)."""


class Lot(_Strict):
    id: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=1000)
    description: str | None = None
    value: Money | None = Field(default=None, ge=0)


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class NoticeDocument(_Strict):
    title: str = Field(min_length=1, max_length=1000)
    url: str = Field(min_length=1, max_length=4000)
    # Optional because imported formats (PPS) publish links without digests; the API may require it.
    sha256: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("expected an absolute http or https URL")
        return url

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, digest: str | None) -> str | None:
        if digest is None:
            return None
        digest = digest.lower()
        if not _SHA256.match(digest):
            raise ValueError("expected 64 hexadecimal characters (SHA-256)")
        return digest


class KeyDates(_Strict):
    published: UtcTimestamp
    clarification_deadline: UtcTimestamp | None = None
    submission_start: UtcTimestamp | None = None  # bids accepted from (PPS bidBeginDt); else published
    submission_deadline: UtcTimestamp | None = None
    opening: UtcTimestamp | None = None

    def order_problems(self) -> list[FieldProblem]:
        """published ≤ clarification ≤ submission deadline ≤ opening, and start ≤ deadline."""
        chain = [
            ("published", self.published),
            ("clarification_deadline", self.clarification_deadline),
            ("submission_deadline", self.submission_deadline),
            ("opening", self.opening),
        ]
        present = [(name, when) for name, when in chain if when is not None]
        problems = [
            (later, f"must not be before {earlier}")
            for (earlier, first), (later, second) in itertools.pairwise(present)
            if second < first
        ]
        start, deadline = self.submission_start, self.submission_deadline
        if start is not None and deadline is not None and deadline < start:
            problems.append(("submission_deadline", "must not be before submission_start"))
        return problems


class NoticeContent(_Strict):
    """What one version of a notice says. Cross-field rules run in ``parse``."""

    title: str = Field(min_length=1, max_length=1000)
    description: str = Field(default="", max_length=100_000)
    category: Category
    classifications: tuple[Classification, ...] = ()
    delivery_region: str | None = None
    estimated_value: Money | None = Field(default=None, ge=0)
    currency: str | None = None
    procedure: Procedure = Procedure.OPEN
    procedure_details: str | None = None  # the source's own wording, e.g. "제한경쟁"
    dates: KeyDates
    lots: tuple[Lot, ...] = ()
    eligibility: tuple[dict[str, Any], ...] = ()  # the requirement language of hub.eligibility, as JSON
    documents: tuple[NoticeDocument, ...] = ()
    buyer: Party | None = None
    procuring_entity: Party | None = None

    @field_validator("delivery_region")
    @classmethod
    def _region(cls, code: str | None) -> str | None:
        if code is not None and (problem := check_region(code)):
            raise ValueError(problem)
        return code

    @field_validator("eligibility", mode="before")
    @classmethod
    def _shallow(cls, requirements: Any) -> Any:
        """Checked before anything walks the (stored) requirement documents."""
        if problem := depth_problem(requirements, MAX_JSON_DEPTH):
            raise ValueError(problem)
        return requirements

    @field_validator("currency")
    @classmethod
    def _currency(cls, code: str | None) -> str | None:
        if code is not None and (problem := check_currency(code)):
            raise ValueError(problem)
        return code


    @model_validator(mode="wrap")
    @classmethod
    def _every_problem_at_once(cls, data: Any, handler: ModelWrapValidatorHandler[NoticeContent]) -> NoticeContent:
        """When fields fail, the cross-field rules (a value without currency, the order of dates, the
        eligibility requirements, …) still run over the fields that passed, and their problems join the
        field errors: a client fixes everything in one round instead of meeting the rules in stages."""
        try:
            return handler(data)
        except ValidationError as error:
            beside = _problems_beside(data, error)
            if not beside:
                raise
            details = [InitErrorDetails(type=PydanticCustomError(str(item["type"]), str(item["msg"])),
                                        loc=tuple(item["loc"]), input=item["input"])
                       for item in error.errors(include_url=False)]
            details += [InitErrorDetails(type=PydanticCustomError("value_error", message),
                                         loc=tuple(_location(path)), input=None)
                        for path, message in beside]
            raise ValidationError.from_exception_data(error.title, details) from None

    @classmethod
    def parse(cls, data: Mapping[str, Any], prefix: str = "") -> NoticeContent:
        """Validate ``data`` fully; raise ``NoticeValidationError`` listing every bad field."""
        try:
            content = cls.model_validate(data)
        except ValidationError as error:
            raise NoticeValidationError.from_pydantic(error).prefixed(prefix) from None
        problems = content.cross_field_problems()
        if problems:
            raise NoticeValidationError(problems).prefixed(prefix)
        return content

    def cross_field_problems(self) -> list[FieldProblem]:
        """Rules across fields, and the eligibility requirements (every way content enters a notice —
        parse, publish, amend — runs these)."""
        problems = control_character_problems(self.model_dump(mode="python", exclude={"dates"}))
        problems += [(f"dates.{name}", message) for name, message in self.dates.order_problems()]
        problems += _requirement_problems(list(self.eligibility))
        has_value = self.estimated_value is not None or any(lot.value is not None for lot in self.lots)
        if has_value and self.currency is None:
            problems.append(("currency", "required when a value is given"))
        seen: set[str] = set()
        for index, lot in enumerate(self.lots):
            if lot.id in seen:
                problems.append((f"lots.{index}.id", f"duplicate lot id {lot.id!r}"))
            seen.add(lot.id)
        return problems


# Valid values for required fields that failed, so the other fields' cross-field rules can still run;
# what the rules then say about a stand-in is dropped.
_STAND_INS: dict[str, Any] = {"title": "-", "category": Category.GOODS.value,
                              "dates": {"published": "2000-01-01T00:00:00Z"}}


def _problems_beside(data: Any, error: ValidationError) -> list[FieldProblem]:
    """The cross-field problems of the fields of ``data`` that passed, ``error`` having failed others."""
    if not isinstance(data, Mapping):
        return []
    failed = {str(item["loc"][0]) for item in error.errors(include_url=False) if item["loc"]}
    if not failed or failed - set(NoticeContent.model_fields):
        return []  # unknown fields, or the input as a whole: nothing to check beside them
    passed = {name: value for name, value in data.items() if name not in failed}
    try:
        content = NoticeContent.model_validate({**{name: _STAND_INS[name] for name in failed & _STAND_INS.keys()},
                                                **passed})
    except ValidationError:
        return []
    return [(path, message) for path, message in content.cross_field_problems()
            if path.split(".", 1)[0] not in failed]


def _location(path: str) -> list[str | int]:
    """``"lots.1.id"`` → ``["lots", 1, "id"]``, as pydantic locates items of a list."""
    return [int(part) if part.isdigit() else part for part in path.split(".")]


def _requirement_problems(eligibility: object) -> list[FieldProblem]:
    """Eligibility is checked with the requirement language of hub.eligibility, whatever else fails."""
    if not eligibility:
        return []
    try:
        parse_requirements(eligibility, prefix="eligibility")
    except RequirementError as error:
        return error.problems
    return []


class NoticeVersion(_Strict):
    number: int = Field(ge=1)
    kind: VersionKind
    content: NoticeContent
    published_at: AwareDatetime
    reason: str | None = None
    changed_fields: tuple[str, ...] = ()  # top-level content fields (and dates.*) that differ from before


def changed_fields(before: NoticeContent, after: NoticeContent) -> tuple[str, ...]:
    """Which fields an amendment touched; dates are itemised so 'deadline moved' is visible."""
    changed: list[str] = []
    for name in type(after).model_fields:
        old, new = getattr(before, name), getattr(after, name)
        if name == "dates":
            changed += [f"dates.{d}" for d in KeyDates.model_fields if getattr(old, d) != getattr(new, d)]
        elif old != new:
            changed.append(name)
    return tuple(changed)


def unchanged(before: NoticeContent, after: NoticeContent) -> bool:
    """Whether ``after`` says exactly what ``before`` says (as published: the JSON form)."""
    return before.model_dump(mode="json") == after.model_dump(mode="json")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Notice:
    """The aggregate: a notice's identity, its publishing institution and its append-only versions."""

    id: str
    institution_id: str
    versions: list[NoticeVersion] = field(default_factory=list)

    @classmethod
    def publish(
        cls, notice_id: str, institution_id: str, content: NoticeContent, at: datetime | None = None
    ) -> Notice:
        _check_content(content)
        first = NoticeVersion(
            number=1, kind=VersionKind.ORIGINAL, content=content, published_at=_aware(at or _now())
        )
        return cls(id=notice_id, institution_id=institution_id, versions=[first])

    @property
    def current(self) -> NoticeVersion:
        return self.versions[-1]

    @property
    def content(self) -> NoticeContent:
        return self.current.content

    @property
    def status(self) -> NoticeStatus:
        if self.current.kind is VersionKind.CANCELLATION:
            return NoticeStatus.CANCELLED
        return NoticeStatus.ACTIVE

    def amend(self, content: NoticeContent, reason: str, at: datetime | None = None) -> NoticeVersion:
        """Append an amendment; a changed deadline is an amendment like any other change."""
        self._require_active("amend")
        _check_content(content)
        return self._append(VersionKind.AMENDMENT, content, reason, at)

    def cancel(self, reason: str, at: datetime | None = None) -> NoticeVersion:
        """Append the cancellation; it keeps the last content so the tombstone still says what it was."""
        self._require_active("cancel")
        return self._append(VersionKind.CANCELLATION, self.content, reason, at)

    def _require_active(self, action: str) -> None:
        if self.status is NoticeStatus.CANCELLED:
            raise NoticeStateError(f"notice {self.id} is cancelled; cannot {action} it")

    def _append(
        self, kind: VersionKind, content: NoticeContent, reason: str, at: datetime | None
    ) -> NoticeVersion:
        if not reason or not reason.strip():
            raise NoticeValidationError([("reason", f"an {kind.value} needs a reason")])
        if problem := control_character_problem(reason):
            raise NoticeValidationError([("reason", problem)])
        when = _aware(at or _now())
        if when < self.current.published_at:
            raise NoticeValidationError([("published_at", "must not be before the previous version")])
        version = NoticeVersion(
            number=self.current.number + 1,
            kind=kind,
            content=content,
            published_at=when,
            reason=reason.strip(),
            changed_fields=changed_fields(self.content, content),
        )
        self.versions.append(version)
        return version


def _check_content(content: NoticeContent) -> None:
    problems = content.cross_field_problems()
    if problems:
        raise NoticeValidationError(problems)


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise NoticeValidationError([("published_at", "must be timezone-aware")])
    return when
