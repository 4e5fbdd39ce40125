"""Declarative mappings: one YAML file per source turns its raw payload into canonical credentials.

Why declarative: a new upstream system must be configuration plus a mapping file, reviewable by
someone who knows the source's contract but not the hub's code. The file is checked completely when it
is loaded (unknown keys, XPath/JMESPath syntax, unknown transforms), with errors that name the file and
the field, so a bad mapping stops start-up instead of producing wrong credentials at 3 a.m.

File shape (see ``mappings/nts.yaml``)::

    source: nts                       # system name, also the credential's source
    format: json                      # json (JMESPath) | xml (XPath 1.0, lxml hardened parser)
    namespaces: {v: "urn:..."}        # xml only: prefixes usable in every XPath
    credentials:
      - type: tax_status
        records: "data[]"             # record selection: one payload → many records (default: whole doc)
        when: "b_no"                  # optional: skip records where this is empty/false
        subject: {path: b_no}         # default: the identifier that was fetched
        status: {path: b_stt_cd, map: {"01": active}, default: unknown}
        attributes: {closed_on: {path: end_dt, transform: [empty_as_null, date_yyyymmdd]}}
        validity: {from: fetched_at, until: {path: ...}, ttl_days: 7}
        standing: {in_force: [active], not_in_force: [suspended, closed, unregistered]}

``answer:`` (credentials files) is a path that finds something in every reply the source gives — the
element or member that makes it this source's answer (``/soap:Envelope/soap:Body/v:checkVatResponse``,
``type(data) == 'array'``). A reply where it finds nothing (a gateway's HTML page, a JSON error object
answered with 200) is *unreadable*: :class:`UnreadableReply`, never "the source reports no credentials".
Without it, a JSON reply must at least be an object or an array.

A field is a path string or ``{path | first_of | const, transform, map, match, unmapped: default|keep,
default, many, required}``. ``valid_until`` is the field ``until`` when present, else ``from + ttl_days``;
a date means "through that day", stored as the next midnight UTC (exclusive).

Standing and validity (docs/register-once.md, "Standing and validity"): ``standing:`` classifies the
credential's (mapped) status as ``in_force`` or ``not_in_force`` (anything else is ``unknown``);
``not_in_force_when: {attribute: [values]}`` puts a record out of force by an attribute (GLEIF's entity
status). The validity window is the span the source's statement covers:

- ``valid_from`` is the source's own start date (``from:``) or the fetch time;
- ``valid_until`` is the source's own end date (``until:``), else ``valid_from`` + ``ttl_days``;
- a stated end at or before the fetch time makes the credential ``not_in_force`` whatever its status
  word (the source's own dates say it ended) and the end is kept, in the past, as stated;
- ``valid_from`` never passes ``valid_until``: a start after the end is moved back to the end.

Extensions (backwards compatible: files without them read as before):

- ``first_of: [path, ...]`` instead of ``path``: the first non-empty value wins (and is the one a
  problem names);
- ``match: exact | contains | prefix`` says how ``map`` keys meet the value: equal to it (the default),
  found inside it, or starting it (first key in file order wins). With ``contains`` or ``prefix`` a
  list value (say after ``split_any:,/``) maps element by element, and the result is the one distinct
  value they map to; none or several fall to ``default``;
- ``notices:`` instead of ``credentials:``: the file maps each record its format module picks to a JSON document (a
  bid notice, read by ``hub.notices.formats``) instead of canonical credentials::

      notices:
        fields: {title: tender.title, dates.opening: {path: ..., transform: datetime}}   # dotted target
        lists:                             # a list target built from groups of fields, each kept when
          documents:                       #   its ``when`` field is true or non-empty
            - {when: url1, fields: {url: url1, title: name1}}
        text:                              # labelled lines joined into one text target
          description: [{label: Method, field: methodName}]

  Reading a record never stops at the first bad field: every problem is collected, named by the
  source path (or by the target when the path is an expression). Absent values (null, empty string,
  empty list or object) are left out of the document at every depth.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jmespath
import yaml
from jmespath.exceptions import JMESPathError
from lxml import etree

from connectors.xmlsafe import parse_xml
from mappings.credentials import CANONICAL_TYPES, Credential, Evidence, Standing
from mappings.transforms import TransformError, compile_transform, end_of_day, start_of_day, to_date, to_datetime

if TYPE_CHECKING:
    from connectors.base import FetchResult

__all__ = [
    "CANONICAL_TYPES",
    "Credential",
    "DocumentReading",
    "DocumentSpec",
    "Evidence",
    "MappingDataError",
    "MappingError",
    "SourceMapping",
    "UnreadableReply",
    "load_mapping",
]

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
_FILE_KEYS = {"source", "format", "namespaces", "answer", "credentials", "notices", "description"}
_CRED_KEYS = {"type", "records", "when", "subject", "status", "attributes", "validity", "standing", "description"}
_STANDING_KEYS = {"in_force", "not_in_force", "not_in_force_when", "description"}
_FIELD_KEYS = {"path", "first_of", "const", "transform", "map", "match", "unmapped", "default", "many", "required"}
_VALIDITY_KEYS = {"from", "until", "ttl_days"}
_DOCUMENT_KEYS = {"fields", "lists", "text", "description"}
_GROUP_KEYS = {"when", "fields"}
_LINE_KEYS = {"label", "field"}
_MATCHES = ("exact", "contains", "prefix")
_SIMPLE_PATH = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$")


class MappingError(ValueError):
    """A mapping file is invalid; the message starts with ``file: field.path:``."""


class MappingDataError(ValueError):
    """A payload did not fit its mapping (missing required value, untransformable value, bad body).
    ``source`` names the payload field at fault when one is known, ``problem`` says what is wrong."""

    def __init__(self, message: str, *, source: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.problem = problem or message


class UnreadableReply(MappingDataError):
    """The reply is not this source's answer at all (not parseable, over the cap, or its ``answer``
    path finds nothing): a fault of the exchange, not a statement that there are no credentials."""


Evaluator = Callable[[Any], Any]


@dataclass(frozen=True)
class FieldSpec:
    where: str
    evaluate: Evaluator | None
    const: Any
    transforms: tuple[Callable[[Any], Any], ...]
    value_map: dict[str, Any] | None
    keep_unmapped: bool
    default: Any
    required: bool
    first_of: tuple[tuple[str, Evaluator], ...] = ()
    match: str = "exact"
    path: str | None = None  # the path expression, when the field has one

    def resolve(self, record: Any) -> Any:
        return self.read(record)[0]

    def read(self, record: Any) -> tuple[Any, str | None]:
        """The value and the payload field it came from (None for a constant or an expression)."""
        value, source = self._raw(record)
        try:
            for transform in self.transforms:
                value = transform(value)
        except TransformError as exc:
            raise MappingDataError(f"{self.where}: {exc}", source=source, problem=str(exc)) from exc
        if self.value_map is not None and value is not None:
            value = self._mapped(value)
        if value is None:
            value = self.default
        if value is None and self.required:
            raise MappingDataError(f"{self.where}: required value is missing", source=source, problem="required")
        return value, source

    def _raw(self, record: Any) -> tuple[Any, str | None]:
        try:
            if self.first_of:
                for path, evaluate in self.first_of:
                    value = evaluate(record)
                    if not _empty(value):
                        return value, path
                return None, self.first_of[0][0]
            source = self.path if self.path is not None and _SIMPLE_PATH.match(self.path) else None
            return (self.const if self.evaluate is None else self.evaluate(record)), source
        except JMESPathError as exc:  # a type error met on this payload (the syntax was checked at load)
            raise MappingDataError(f"{self.where}: {exc}", problem=str(exc)) from exc

    def _mapped(self, value: Any) -> Any:
        assert self.value_map is not None
        if self.match == "exact":
            return self.value_map.get(_map_key(value), value if self.keep_unmapped else None)
        if isinstance(value, list):
            found = {self._matched(v) for v in value if v is not None} - {None}
            return found.pop() if len(found) == 1 else None
        matched = self._matched(value)
        return value if matched is None and self.keep_unmapped else matched

    def _matched(self, value: Any) -> Any:
        text = _map_key(value)
        for key, mapped in self.value_map.items() if self.value_map else ():
            if (key in text) if self.match == "contains" else text.startswith(key):
                return mapped
        return None


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


@dataclass(frozen=True)
class CredentialSpec:
    type: str
    records: Evaluator | None
    records_expr: str
    when: Evaluator | None
    subject: FieldSpec | None
    status: FieldSpec
    attributes: dict[str, FieldSpec]
    valid_from: FieldSpec | None
    valid_until: FieldSpec | None
    ttl_days: float | None
    standing: StandingSpec | None = None


@dataclass(frozen=True)
class StandingSpec:
    """Which (mapped) statuses say the registration is in force, which say it is not, and attribute
    values that put an otherwise in-force record out of force."""

    in_force: frozenset[str]
    not_in_force: frozenset[str]
    not_in_force_when: dict[str, frozenset[str]]

    def of(self, status: str, attributes: dict[str, Any]) -> Standing:
        if status in self.not_in_force:
            return Standing.NOT_IN_FORCE
        if any(_map_key(attributes.get(name)) in values for name, values in self.not_in_force_when.items()):
            return Standing.NOT_IN_FORCE
        return Standing.IN_FORCE if status in self.in_force else Standing.UNKNOWN


@dataclass(frozen=True)
class GroupSpec:
    when: FieldSpec | None
    fields: dict[str, FieldSpec]


@dataclass
class DocumentReading:
    """One record read into a document: what was found, every problem as (source, message), and for
    each field target the payload field it came from (so later checks can name it too)."""

    pointer: str
    record: Any
    data: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentSpec:
    """The ``notices:`` section: one record (the format module picks them) → a nested JSON document."""

    fields: dict[str, FieldSpec]
    lists: dict[str, tuple[GroupSpec, ...]]
    text: dict[str, tuple[tuple[str, FieldSpec], ...]]

    def read(self, record: Any, pointer: str = "@") -> DocumentReading:
        reading = DocumentReading(pointer, record)
        for target, spec in self.fields.items():
            _put(reading.data, target, self._value(reading, target, spec))
        for target, groups in self.lists.items():
            items: list[dict[str, Any]] = []
            for group in groups:
                if group.when is not None and not _truthy(self._value(reading, target, group.when)):
                    continue
                item: dict[str, Any] = {}
                for name, spec in group.fields.items():
                    _put(item, name, self._value(reading, f"{target}.{len(items)}.{name}", spec))
                items.append(item)
            _put(reading.data, target, items)
        for target, lines in self.text.items():
            parts = [f"{label}: {value}" for label, spec in lines
                     if not _empty(value := self._value(reading, target, spec))]
            _put(reading.data, target, "\n".join(parts))
        return reading

    @staticmethod
    def _value(reading: DocumentReading, target: str, spec: FieldSpec) -> Any:
        try:
            value, source = spec.read(reading.record)
        except MappingDataError as exc:
            reading.problems.append((exc.source or target, exc.problem))
            return None
        reading.sources[target] = source or target
        return _pruned(value)


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: v for k, v in ((k, _pruned(v)) for k, v in value.items()) if not _empty(v)}
        return kept or None
    if isinstance(value, list):
        return [v for v in (_pruned(v) for v in value) if not _empty(v)] or None
    return None if isinstance(value, str) and not value.strip() else value


def _put(data: dict[str, Any], dotted: str, value: Any) -> None:
    if _empty(value):
        return
    *parents, leaf = dotted.split(".")
    for name in parents:
        data = data.setdefault(name, {})
    data[leaf] = value


@dataclass(frozen=True)
class SourceMapping:
    file: str
    source: str
    format: Literal["json", "xml"]
    namespaces: dict[str, str]
    credentials: tuple[CredentialSpec, ...] = field(default_factory=tuple)
    notices: DocumentSpec | None = None
    answer: Evaluator | None = None
    answer_expr: str = ""

    def apply(self, result: FetchResult) -> list[Credential]:
        document = self._parse(result.raw)
        self._recognise(document)
        out: list[Credential] = []
        for spec in self.credentials:
            for pointer, record in _select(spec.records, spec.records_expr, document, self.format == "xml"):
                if spec.when is not None and not _truthy(spec.when(record)):
                    continue
                evidence = Evidence(result.system or self.source, result.identifier, result.fetched_at,
                                    result.response_sha256, result.raw_sha256, pointer)
                out.append(self._credential(spec, record, result.identifier, result.fetched_at, evidence))
        return out

    def _parse(self, raw: bytes) -> Any:
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise UnreadableReply(f"{self.file}: payload of {len(raw)} bytes is over the cap")
        try:
            if self.format == "xml":
                return parse_xml(raw, max_bytes=MAX_PAYLOAD_BYTES)
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise UnreadableReply(f"{self.file}: payload is not acceptable {self.format}: {exc}") from exc

    def _recognise(self, document: Any) -> None:
        """Refuse a document that is not this source's answer, before any record is looked for: an
        empty selection must mean "the source holds nothing", never "the reply was something else"."""
        if self.answer is None:
            if self.format == "json" and not isinstance(document, dict | list):
                raise UnreadableReply(f"{self.file}: the reply is a JSON {type(document).__name__}, "
                                      "not an object or an array")
            return
        try:
            found = self.answer(document)
        except JMESPathError as exc:
            raise UnreadableReply(f"{self.file}: answer: {exc}") from exc
        if found is None or found is False or (isinstance(found, list | str) and not found):
            raise UnreadableReply(f"{self.file}: the reply is not a {self.source} answer "
                                  f"({self.answer_expr} finds nothing)")

    def _credential(
        self, spec: CredentialSpec, record: Any, identifier: str, fetched_at: datetime, evidence: Evidence
    ) -> Credential:
        subject = spec.subject.resolve(record) if spec.subject else None
        status = str(spec.status.resolve(record))
        attributes = {name: _jsonable(f.resolve(record)) for name, f in spec.attributes.items()}
        stated_from = _instant(spec.valid_from.resolve(record), start_of_day) if spec.valid_from else None
        stated_until = _instant(spec.valid_until.resolve(record), end_of_day) if spec.valid_until else None
        standing = spec.standing.of(status, attributes) if spec.standing else Standing.UNKNOWN
        if stated_until is not None and stated_until <= fetched_at:
            standing = Standing.NOT_IN_FORCE  # the source's own end date had passed when it was asked
        valid_from = stated_from or fetched_at
        until = stated_until
        if until is None and spec.ttl_days is not None:
            until = valid_from + timedelta(days=spec.ttl_days)
        if until is not None and valid_from > until:
            valid_from = until
        return Credential(
            type=spec.type,
            subject=str(subject) if subject not in (None, "") else identifier,
            status=status,
            attributes=attributes,
            valid_from=valid_from,
            valid_until=until,
            source=self.source,
            evidence=evidence,
            standing=standing,
        )


def _select(records: Evaluator | None, expr: str, document: Any, xml: bool) -> list[tuple[str, Any]]:
    """The records a ``records`` expression picks, each with its pointer (XPath or JMESPath)."""
    if records is None:
        return [("/" if xml else "@", document)]
    selected = records(document)
    if xml:
        nodes = [n for n in selected if isinstance(n, etree._Element)] if isinstance(selected, list) else []
        return [(n.getroottree().getpath(n), n) for n in nodes]
    if selected is None:
        return []
    if isinstance(selected, list):
        return [(f"{expr}[{i}]", r) for i, r in enumerate(selected)]
    return [(expr, selected)]


def _map_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _truthy(value: Any) -> bool:
    return bool(value) and value != "false"


def _instant(value: Any, for_date: Callable[[date], datetime]) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return for_date(value)
    try:
        text = str(value)
        return to_datetime(text) if "T" in text else for_date(to_date(text))
    except TransformError as exc:
        raise MappingDataError(f"validity: {exc}") from exc


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


# -- loading and checking -------------------------------------------------------------------------


class _Loader:
    def __init__(self, file: str, fmt: str, namespaces: dict[str, str]) -> None:
        self.file, self.format, self.namespaces = file, fmt, namespaces

    def fail(self, where: str, problem: str) -> MappingError:
        return MappingError(f"{self.file}: {where}: {problem}")

    def keys(self, where: str, node: Any, allowed: set[str], required: Iterable[str] = ()) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise self.fail(where, "must be a mapping")
        unknown = sorted(set(node) - allowed)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in node:
                raise self.fail(f"{where}.{key}", "is required")
        return node

    def mapping(self, where: str, node: Any, *, optional: bool = False) -> dict[str, Any]:
        if node is None and optional:
            return {}
        if not isinstance(node, dict) or not node:
            raise self.fail(where, "must be a non-empty mapping")
        return node

    def path(self, where: str, expr: Any, *, many: bool = False) -> Evaluator:
        if not isinstance(expr, str) or not expr.strip():
            raise self.fail(where, "must be a non-empty path expression")
        if self.format == "json":
            try:
                compiled = jmespath.compile(expr)
            except JMESPathError as exc:
                raise self.fail(where, f"bad JMESPath {expr!r}: {exc}") from exc
            search: Evaluator = compiled.search
            return search
        try:
            xpath = etree.XPath(expr, namespaces=self.namespaces, smart_strings=False)
            xpath(etree.Element("probe"))  # undefined prefixes only show on evaluation
        except etree.XPathError as exc:
            raise self.fail(where, f"bad XPath {expr!r}: {exc}") from exc
        return xpath if many else (lambda node: _xml_value(xpath(node)))

    def field(self, where: str, node: Any) -> FieldSpec:
        if isinstance(node, str):
            node = {"path": node}
        spec = self.keys(where, node, _FIELD_KEYS)
        if sum(key in spec for key in ("path", "first_of", "const")) != 1:
            raise self.fail(where, "needs exactly one of 'path', 'first_of' or 'const'")
        first_of = spec.get("first_of", [])
        if "first_of" in spec and (not isinstance(first_of, list) or not first_of):
            raise self.fail(f"{where}.first_of", "must be a non-empty list of paths")
        match = spec.get("match", "exact")
        if match not in _MATCHES:
            raise self.fail(f"{where}.match", f"must be one of {', '.join(_MATCHES)}")
        if match != "exact" and "map" not in spec:
            raise self.fail(f"{where}.match", "only meaningful with 'map'")
        transforms_raw = spec.get("transform", [])
        transforms_raw = [transforms_raw] if isinstance(transforms_raw, str) else transforms_raw
        if not isinstance(transforms_raw, list):
            raise self.fail(f"{where}.transform", "must be a name or a list of names")
        transforms = []
        for i, name in enumerate(transforms_raw):
            try:
                transforms.append(compile_transform(str(name)))
            except KeyError as exc:
                raise self.fail(f"{where}.transform[{i}]", str(exc.args[0])) from exc
        value_map = spec.get("map")
        if value_map is not None and not isinstance(value_map, dict):
            raise self.fail(f"{where}.map", "must be a mapping of source value to canonical value")
        unmapped = spec.get("unmapped", "default")
        if unmapped not in ("default", "keep"):
            raise self.fail(f"{where}.unmapped", "must be 'default' or 'keep'")
        many = spec.get("many", False)
        evaluate = self.path(f"{where}.path", spec["path"], many=bool(many)) if "path" in spec else None
        if many and evaluate is not None and self.format == "xml":
            xpath = evaluate
            evaluate = lambda node: [_xml_scalar(v) for v in _as_list(xpath(node))]  # noqa: E731
        return FieldSpec(
            where=f"{self.file}: {where}",
            evaluate=evaluate,
            const=spec.get("const"),
            transforms=tuple(transforms),
            value_map={_map_key(k): v for k, v in value_map.items()} if value_map else None,
            keep_unmapped=unmapped == "keep",
            default=spec.get("default"),
            required=bool(spec.get("required", False)),
            first_of=tuple((str(p), self.path(f"{where}.first_of[{i}]", p)) for i, p in enumerate(first_of)),
            match=match,
            path=str(spec["path"]) if "path" in spec else None,
        )

    def document(self, where: str, node: Any) -> DocumentSpec:
        spec = self.keys(where, node, _DOCUMENT_KEYS, required=("fields",))
        fields = self.mapping(f"{where}.fields", spec["fields"])
        lists: dict[str, tuple[GroupSpec, ...]] = {}
        for target, groups in self.mapping(f"{where}.lists", spec.get("lists"), optional=True).items():
            if not isinstance(groups, list) or not groups:
                raise self.fail(f"{where}.lists.{target}", "must be a non-empty list of {when, fields}")
            lists[target] = tuple(self.group(f"{where}.lists.{target}[{i}]", g) for i, g in enumerate(groups))
        text: dict[str, tuple[tuple[str, FieldSpec], ...]] = {}
        for target, lines in self.mapping(f"{where}.text", spec.get("text"), optional=True).items():
            if not isinstance(lines, list) or not lines:
                raise self.fail(f"{where}.text.{target}", "must be a non-empty list of {label, field}")
            text[target] = tuple(self.line(f"{where}.text.{target}[{i}]", line) for i, line in enumerate(lines))
        return DocumentSpec(
            fields={str(t): self.field(f"{where}.fields.{t}", f) for t, f in fields.items()},
            lists=lists,
            text=text,
        )

    def group(self, where: str, node: Any) -> GroupSpec:
        spec = self.keys(where, node, _GROUP_KEYS, required=("fields",))
        members = self.mapping(f"{where}.fields", spec["fields"])
        return GroupSpec(
            when=self.field(f"{where}.when", spec["when"]) if "when" in spec else None,
            fields={str(n): self.field(f"{where}.fields.{n}", f) for n, f in members.items()},
        )

    def line(self, where: str, node: Any) -> tuple[str, FieldSpec]:
        spec = self.keys(where, node, _LINE_KEYS, required=("label", "field"))
        return str(spec["label"]), self.field(f"{where}.field", spec["field"])

    def credential(self, where: str, node: Any) -> CredentialSpec:
        spec = self.keys(where, node, _CRED_KEYS, required=("type", "status"))
        ctype = spec["type"]
        if ctype not in CANONICAL_TYPES and not (isinstance(ctype, str) and ctype.startswith("x_")):
            raise self.fail(f"{where}.type", f"unknown credential type {ctype!r} (custom types start with 'x_')")
        attributes = spec.get("attributes", {}) or {}
        if not isinstance(attributes, dict):
            raise self.fail(f"{where}.attributes", "must be a mapping of name to field")
        validity = self.keys(f"{where}.validity", spec.get("validity", {}) or {}, _VALIDITY_KEYS)
        ttl = validity.get("ttl_days")
        if ttl is not None and (not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0):
            raise self.fail(f"{where}.validity.ttl_days", "must be a positive number")
        valid_from = validity.get("from", "fetched_at")
        records = spec.get("records")
        return CredentialSpec(
            type=ctype,
            records=self.path(f"{where}.records", records, many=True) if records is not None else None,
            records_expr=str(records or ""),
            when=self.path(f"{where}.when", spec["when"]) if "when" in spec else None,
            subject=self.field(f"{where}.subject", spec["subject"]) if "subject" in spec else None,
            status=self.field(f"{where}.status", spec["status"]),
            attributes={name: self.field(f"{where}.attributes.{name}", f) for name, f in attributes.items()},
            valid_from=None if valid_from == "fetched_at" else self.field(f"{where}.validity.from", valid_from),
            valid_until=self.field(f"{where}.validity.until", validity["until"]) if "until" in validity else None,
            ttl_days=float(ttl) if ttl is not None else None,
            standing=self.standing(f"{where}.standing", spec["standing"]) if "standing" in spec else None,
        )

    def standing(self, where: str, node: Any) -> StandingSpec:
        spec = self.keys(where, node, _STANDING_KEYS)
        lists = {name: self.words(f"{where}.{name}", spec.get(name, [])) for name in ("in_force", "not_in_force")}
        both = sorted(lists["in_force"] & lists["not_in_force"])
        if both:
            raise self.fail(f"{where}.not_in_force", f"{both[0]!r} is also listed as in_force")
        when = self.mapping(f"{where}.not_in_force_when", spec.get("not_in_force_when"), optional=True)
        return StandingSpec(
            in_force=lists["in_force"],
            not_in_force=lists["not_in_force"],
            not_in_force_when={str(name): self.words(f"{where}.not_in_force_when.{name}", values)
                               for name, values in when.items()},
        )

    def words(self, where: str, node: Any) -> frozenset[str]:
        if not isinstance(node, list) or not all(isinstance(v, str | bool | int) for v in node):
            raise self.fail(where, "must be a list of status values")
        return frozenset(_map_key(v) for v in node)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _xml_scalar(value: Any) -> Any:
    if isinstance(value, etree._Element):
        if value.get("{http://www.w3.org/2001/XMLSchema-instance}nil") in ("true", "1"):
            return None
        return "".join(value.itertext())
    return value


def _xml_value(result: Any) -> Any:
    """First node's text (or the scalar an XPath function returned); None when nothing matched."""
    if isinstance(result, list):
        return _xml_scalar(result[0]) if result else None
    return result


def load_mapping(path: Path | str) -> SourceMapping:
    file = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{file}: cannot read: {exc}") from exc
    probe = _Loader(file, "json", {})
    top = probe.keys("(top)", document, _FILE_KEYS, required=("source", "format"))
    if ("credentials" in top) == ("notices" in top):
        raise probe.fail("(top)", "needs exactly one of 'credentials' or 'notices'")
    fmt = top["format"]
    if fmt not in ("json", "xml"):
        raise probe.fail("format", "must be 'json' or 'xml'")
    namespaces = top.get("namespaces", {}) or {}
    if not isinstance(namespaces, dict) or not all(isinstance(v, str) for v in namespaces.values()):
        raise probe.fail("namespaces", "must map prefixes to namespace URIs")
    if namespaces and fmt != "xml":
        raise probe.fail("namespaces", "only meaningful for format 'xml'")
    loader = _Loader(file, fmt, {str(k): v for k, v in namespaces.items()})
    source = str(top["source"])
    if "notices" in top:
        if "answer" in top:
            raise loader.fail("answer", "only meaningful with 'credentials'")
        return SourceMapping(file=file, source=source, format=fmt, namespaces=loader.namespaces,
                             notices=loader.document("notices", top["notices"]))
    creds = top["credentials"]
    if not isinstance(creds, list) or not creds:
        raise loader.fail("credentials", "must be a non-empty list")
    specs = tuple(loader.credential(f"credentials[{i}]", node) for i, node in enumerate(creds))
    answer = top.get("answer")
    return SourceMapping(file=file, source=source, format=fmt, namespaces=loader.namespaces, credentials=specs,
                         answer=loader.path("answer", answer, many=True) if answer is not None else None,
                         answer_expr=str(answer or ""))
