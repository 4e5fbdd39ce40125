"""Korean PPS open-API bid notices (BidPublicInfoService items) as an inbound format.

The field correspondence lives in ``mappings/pps_notice.yaml`` (a notice mapping on the connectors'
engine); this module only unwraps the API's envelopes. A PPS notice keeps its number (``bidNtceNo``)
across orders (``bidNtceOrd`` 000, 001, …): each order becomes one version of the same hub notice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.pps_envelope import PpsGatewayStatus, read_pps_envelope
from hub.notices.formats.base import ContentTooLarge, DocumentError, ImportedNotice
from hub.notices.formats.mapped import load_notice_mapping, mapping_path, read_notice
from hub.notices.model import NoticeValidationError
from hub.notices.publication import PublicationSettings
from hub.spine.errors import Unacceptable

__all__ = ["MAPPING", "PpsError", "PpsFormat", "PpsGatewayError", "map_pps_item", "pps_items"]

MAPPING = "pps_notice.yaml"


class PpsError(Exception):
    """The PPS API answered with an error result code (or a gateway error envelope)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"PPS result {code}: {message}")
        self.code = code
        self.message = message


class PpsGatewayError(Unacceptable):
    """An imported document that is PPS's (or data.go.kr's) error answer rather than notices: its result
    code and message are what the sender needs (a key not registered, the quota spent, a window too
    long), so the problem names them (``pps_result_code``, ``pps_result_message``)."""

    slug = "pps-gateway-error"
    title = "PPS answered with an error"

    def __init__(self, status: PpsGatewayStatus, location: tuple[str, ...]) -> None:
        super().__init__(f"the document is a PPS error answer, not notices: resultCode {status.code}"
                         + (f" ({status.message})" if status.message else ""))
        self.status = status
        self.problem_locations = [(location, str(status))] if location else []
        self.problem_extensions = {"pps_result_code": status.code, "pps_result_message": status.message}


def pps_items(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Items of a PPS response in any of the shapes clients report: ``items`` as a list, as
    ``{"item": [...]}``, as ``{"item": {...}}`` or ``""`` when empty. NODATA (03) is no items; any other
    result code, or a gateway error envelope, raises PpsError."""
    status = read_pps_envelope(response)
    if status is not None and not status.no_data:
        raise PpsError(status.code, status.message)
    body_holder = response.get("response")
    if not isinstance(body_holder, Mapping):
        raise PpsError("99", "not a PPS response envelope")
    if status is not None:  # NODATA
        return []
    items = (body_holder.get("body") or {}).get("items")
    if isinstance(items, Mapping):
        items = items.get("item", [])
    if isinstance(items, Mapping):
        return [dict(items)]
    if not items:
        return []
    return [dict(item) for item in items]


def _record(item: Mapping[str, Any], operation: str | None) -> dict[str, Any]:
    return {**item, "operation": operation} if operation else dict(item)


def map_pps_item(item: Mapping[str, Any], operation: str | None = None) -> ImportedNotice:
    """One item; ``operation`` (e.g. ``getBidPblancListInfoCnstwk``) decides the category. Raises
    NoticeValidationError naming the PPS fields at fault."""
    mapped = read_notice(load_notice_mapping(mapping_path(MAPPING)), _record(item, operation), {})
    if mapped.problems:
        raise NoticeValidationError(mapped.problems)
    return mapped


class PpsFormat:
    name = "pps"
    report_key = "items"
    problem_key = "field"
    order_field = "bidNtceOrd"

    def check(self) -> None:
        load_notice_mapping(mapping_path(MAPPING))

    def read(self, document: Any, options: Mapping[str, str], limits: PublicationSettings) -> list[ImportedNotice]:
        """``document``: a BidPublicInfoService response, ``{"items": [...]}`` or a list of items."""
        items = self._items(document)
        if len(items) > limits.pps_max_items:
            raise ContentTooLarge(f"at most {limits.pps_max_items} items per import")
        if not all(isinstance(item, dict) for item in items):
            raise DocumentError([("items", "every item must be an object")])
        mapping = load_notice_mapping(mapping_path(MAPPING))
        operation = options.get("operation")
        return [
            read_notice(mapping, _record(item, operation), {"index": index, "bidNtceNo": str(item.get("bidNtceNo", "")),
                                                            "bidNtceOrd": str(item.get("bidNtceOrd", ""))})
            for index, item in enumerate(items)
        ]

    @staticmethod
    def _items(document: Any) -> list[Any]:
        if isinstance(document, list):
            return document
        status = read_pps_envelope(document)
        if status is not None and not status.no_data:
            raise PpsGatewayError(status, _code_location(document))
        if isinstance(document, dict) and "response" in document:
            try:
                return pps_items(document)
            except PpsError as error:
                raise DocumentError([("response", str(error))]) from None
        if isinstance(document, dict) and isinstance(document.get("items"), list):
            return list(document["items"])
        raise DocumentError([("", "expected a PPS response, {\"items\": [...]} or a list of items")])


def _code_location(document: Any) -> tuple[str, ...]:
    """Where the result code sits in the document (the problem's field)."""
    if not isinstance(document, Mapping):
        return ()
    if "response" in document:
        return ("response", "header", "resultCode")
    for key, value in document.items():
        if isinstance(key, str) and key.endswith("ResponseError"):
            return (key, "header", "resultCode") if isinstance(value, Mapping) and "header" in value else (key,)
    if "OpenAPI_ServiceResponse" in document:
        return ("OpenAPI_ServiceResponse", "cmmMsgHeader", "returnReasonCode")
    return ()
