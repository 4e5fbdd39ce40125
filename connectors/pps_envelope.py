"""The result header of a PPS open-API answer (data.go.kr gateway, 나라장터 BidPublicInfoService).

One reader for every shape the header comes in, shared by whatever receives PPS answers (the notice
import, a puller):

- the service's own envelope ``{"response": {"header": {"resultCode", "resultMsg"}, "body": …}}``
  (JSON, or ``<response><header>…`` in XML);
- the gateway's key-error envelope ``{"nkoneps.com.response.ResponseError": {"header": {…}}}`` (any
  member whose name ends in ``ResponseError``);
- data.go.kr's common error answer ``<OpenAPI_ServiceResponse><cmmMsgHeader>`` with ``errMsg``,
  ``returnAuthMsg`` and ``returnReasonCode`` (XML, or the same as a dictionary).

Result codes (docs/contracts/pps-bid-public-info.md): 00 normal, 03 no data (an empty page, not a fault), the
rest sorted into the classes below so a caller decides without a table of its own. Plain Python: the
only import beyond the standard library is the hardened XML parse, for bodies given as text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.xmlsafe import UnsafeXmlError, XmlSyntaxError, parse_xml

__all__ = [
    "BAD_REQUEST",
    "KEY_ERRORS",
    "NORMAL",
    "NO_DATA",
    "RATE_LIMITED",
    "TRANSIENT",
    "PpsGatewayStatus",
    "read_pps_envelope",
]

NORMAL = "00"
NO_DATA = "03"  # 데이터없음: the query matched nothing
KEY_ERRORS = frozenset({"20", "30", "31", "32", "33"})  # access denied, unregistered/expired key, IP, unsigned
RATE_LIMITED = frozenset({"22"})  # 요청제한 횟수 초과: the key's daily quota is spent
TRANSIENT = frozenset({"01", "02", "04", "05", "21"})  # application, DB, HTTP, connection; key briefly unusable
BAD_REQUEST = frozenset({"06", "07", "10", "11", "12"})  # date format, window too long, parameters, no service

_UNKNOWN = "99"  # 기타: an error envelope that names no code


@dataclass(frozen=True)
class PpsGatewayStatus:
    """A result header that is not ``00``: the code as PPS gives it (two digits) and its message."""

    code: str
    message: str

    @property
    def no_data(self) -> bool:
        return self.code == NO_DATA

    @property
    def key_error(self) -> bool:
        return self.code in KEY_ERRORS

    @property
    def rate_limited(self) -> bool:
        return self.code in RATE_LIMITED

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT

    @property
    def bad_request(self) -> bool:
        return self.code in BAD_REQUEST

    def __str__(self) -> str:
        return f"PPS result {self.code}: {self.message}" if self.message else f"PPS result {self.code}"


def read_pps_envelope(document: object) -> PpsGatewayStatus | None:
    """The status a PPS answer reports, or None when it reports ``00`` or is no envelope with a header
    (a bare list of items, ``{"items": [...]}``, anything else). ``document``: parsed JSON, or the body
    as ``bytes``/``str`` (JSON or XML; a body that parses as neither is no envelope)."""
    if isinstance(document, bytes | bytearray | str):
        return _from_text(bytes(document, "utf-8") if isinstance(document, str) else bytes(document))
    if not isinstance(document, Mapping):
        return None
    response = document.get("response")
    if isinstance(response, Mapping):
        header = response.get("header")
        if isinstance(header, Mapping):
            return _status(header.get("resultCode"), header.get("resultMsg"), default=NORMAL)
        return None
    for key, value in document.items():
        if isinstance(key, str) and key.endswith("ResponseError") and isinstance(value, Mapping):
            header = value.get("header")
            header = header if isinstance(header, Mapping) else value
            return _status(header.get("resultCode"), header.get("resultMsg"), default=_UNKNOWN)
    service = document.get("OpenAPI_ServiceResponse")
    if isinstance(service, Mapping):
        header = service.get("cmmMsgHeader")
        header = header if isinstance(header, Mapping) else service
        message = _text(header.get("returnAuthMsg")) or _text(header.get("errMsg"))
        return _status(header.get("returnReasonCode"), message, default=_UNKNOWN)
    return None


def _status(code: Any, message: Any, *, default: str) -> PpsGatewayStatus | None:
    normalised = _code(code) or default
    if normalised == NORMAL:
        return None
    return PpsGatewayStatus(normalised, _text(message))


def _code(value: Any) -> str:
    """``"30"``, ``30``, ``" 3 "`` → two digits; anything else as given (trimmed)."""
    if isinstance(value, bool) or value is None:
        return ""
    text = str(value).strip()
    return text.zfill(2) if text.isdigit() and len(text) < 2 else text


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value).strip())


def _from_text(body: bytes) -> PpsGatewayStatus | None:
    start = body.lstrip()[:1]
    if start in (b"{", b"["):
        try:
            return read_pps_envelope(json.loads(body))
        except ValueError:
            return None
    if start != b"<":
        return None
    try:
        root = parse_xml(body)
    except (UnsafeXmlError, XmlSyntaxError):
        return None
    return read_pps_envelope({_local(root.tag): _children(root)})


def _local(tag: Any) -> str:
    name = str(tag)
    return name.rsplit("}", 1)[-1]


def _children(element: Any) -> dict[str, Any] | str:
    """An element as a dictionary of its children (first of each name), or its text when it has none."""
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        return (element.text or "").strip()
    found: dict[str, Any] = {}
    for child in children:
        found.setdefault(_local(child.tag), _children(child))
    return found
