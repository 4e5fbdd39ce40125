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

A field is a path string or ``{path | const, transform, map, unmapped: default|keep, default, many,
required}``. ``valid_until`` is the field ``until`` when present, else ``from + ttl_days``; a date means
"through that day", stored as the next midnight UTC (exclusive).
"""

from __future__ import annotations

import json
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
from mappings.credentials import CANONICAL_TYPES, Credential, Evidence
from mappings.transforms import TransformError, compile_transform, end_of_day, start_of_day, to_date, to_datetime

if TYPE_CHECKING:
    from connectors.base import FetchResult

__all__ = [
    "CANONICAL_TYPES",
    "Credential",
    "Evidence",
    "MappingDataError",
    "MappingError",
    "SourceMapping",
    "load_mapping",
]

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
_FILE_KEYS = {"source", "format", "namespaces", "credentials", "description"}
_CRED_KEYS = {"type", "records", "when", "subject", "status", "attributes", "validity", "description"}
_FIELD_KEYS = {"path", "const", "transform", "map", "unmapped", "default", "many", "required"}
_VALIDITY_KEYS = {"from", "until", "ttl_days"}


class MappingError(ValueError):
    """A mapping file is invalid; the message starts with ``file: field.path:``."""


class MappingDataError(ValueError):
    """A payload did not fit its mapping (missing required value, untransformable value, bad body)."""


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

    def resolve(self, record: Any) -> Any:
        value = self.const if self.evaluate is None else self.evaluate(record)
        try:
            for transform in self.transforms:
                value = transform(value)
        except TransformError as exc:
            raise MappingDataError(f"{self.where}: {exc}") from exc
        if self.value_map is not None and value is not None:
            key = _map_key(value)
            value = self.value_map.get(key, value if self.keep_unmapped else None)
        if value is None:
            value = self.default
        if value is None and self.required:
            raise MappingDataError(f"{self.where}: required value is missing")
        return value


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


@dataclass(frozen=True)
class SourceMapping:
    file: str
    source: str
    format: Literal["json", "xml"]
    namespaces: dict[str, str]
    credentials: tuple[CredentialSpec, ...] = field(default_factory=tuple)

    def apply(self, result: FetchResult) -> list[Credential]:
        return self.apply_raw(
            result.raw,
            identifier=result.identifier,
            fetched_at=result.fetched_at,
            response_sha256=result.response_sha256,
            raw_sha256=result.raw_sha256,
            system=result.system,
        )

    def apply_raw(
        self,
        raw: bytes,
        *,
        identifier: str,
        fetched_at: datetime,
        response_sha256: str | None = None,
        raw_sha256: str | None = None,
        system: str | None = None,
    ) -> list[Credential]:
        document = self._parse(raw)
        out: list[Credential] = []
        for spec in self.credentials:
            for pointer, record in self._select(spec, document):
                if spec.when is not None and not _truthy(spec.when(record)):
                    continue
                evidence = Evidence(system or self.source, identifier, fetched_at, response_sha256, raw_sha256, pointer)
                out.append(self._credential(spec, record, identifier, fetched_at, evidence))
        return out

    def _parse(self, raw: bytes) -> Any:
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise MappingDataError(f"{self.file}: payload of {len(raw)} bytes is over the cap")
        try:
            if self.format == "xml":
                return parse_xml(raw, max_bytes=MAX_PAYLOAD_BYTES)
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise MappingDataError(f"{self.file}: payload is not acceptable {self.format}: {exc}") from exc

    def _select(self, spec: CredentialSpec, document: Any) -> Iterable[tuple[str, Any]]:
        if spec.records is None:
            return [("/" if self.format == "xml" else "@", document)]
        selected = spec.records(document)
        if self.format == "xml":
            nodes = [n for n in selected if isinstance(n, etree._Element)] if isinstance(selected, list) else []
            return [(n.getroottree().getpath(n), n) for n in nodes]
        if selected is None:
            return []
        if isinstance(selected, list):
            return [(f"{spec.records_expr}[{i}]", r) for i, r in enumerate(selected)]
        return [(spec.records_expr, selected)]

    def _credential(
        self, spec: CredentialSpec, record: Any, identifier: str, fetched_at: datetime, evidence: Evidence
    ) -> Credential:
        subject = spec.subject.resolve(record) if spec.subject else None
        valid_from = _instant(spec.valid_from.resolve(record), start_of_day) if spec.valid_from else fetched_at
        until = _instant(spec.valid_until.resolve(record), end_of_day) if spec.valid_until else None
        if until is None and spec.ttl_days is not None:
            until = (valid_from or fetched_at) + timedelta(days=spec.ttl_days)
        return Credential(
            type=spec.type,
            subject=str(subject) if subject not in (None, "") else identifier,
            status=str(spec.status.resolve(record)),
            attributes={name: _jsonable(f.resolve(record)) for name, f in spec.attributes.items()},
            valid_from=valid_from,
            valid_until=until,
            source=self.source,
            evidence=evidence,
        )


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
        if ("path" in spec) == ("const" in spec):
            raise self.fail(where, "needs exactly one of 'path' or 'const'")
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
        )

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
        )


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
    top = probe.keys("(top)", document, _FILE_KEYS, required=("source", "format", "credentials"))
    fmt = top["format"]
    if fmt not in ("json", "xml"):
        raise probe.fail("format", "must be 'json' or 'xml'")
    namespaces = top.get("namespaces", {}) or {}
    if not isinstance(namespaces, dict) or not all(isinstance(v, str) for v in namespaces.values()):
        raise probe.fail("namespaces", "must map prefixes to namespace URIs")
    if namespaces and fmt != "xml":
        raise probe.fail("namespaces", "only meaningful for format 'xml'")
    loader = _Loader(file, fmt, {str(k): v for k, v in namespaces.items()})
    creds = top["credentials"]
    if not isinstance(creds, list) or not creds:
        raise loader.fail("credentials", "must be a non-empty list")
    specs = tuple(loader.credential(f"credentials[{i}]", node) for i, node in enumerate(creds))
    source = str(top["source"])
    return SourceMapping(file=file, source=source, format=fmt, namespaces=loader.namespaces, credentials=specs)
