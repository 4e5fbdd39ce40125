"""Publishing notices (scope ``notices:write``): publish, amend, cancel, and import in an inbound format
(PPS items, OCDS release packages, CSV bulk upload; see :mod:`hub.notices.formats`).

Every write takes an optional ``Idempotency-Key`` header: a retried request with the same key and body
gets the original answer (``Idempotent-Replayed: true``) and creates nothing. An institution reaches only
its own notices; another institution's notice answers 404. The open, keyless read side is in
:mod:`hub.api.routes.notices_public` and is mounted on the same router.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from hub.api.auth import Principal
from hub.api.deps import BusDep, HubDep, problem_doc, require_scope
from hub.api.problems import Forbidden, problem_response
from hub.api.routes import notices_public
from hub.api.schemas import Input, JsonBody
from hub.notices.commands import AmendNotice, CancelNotice, ImportNotices, PublishNotice
from hub.notices.formats import DocumentError
from hub.notices.idempotency import IdempotencyKeyRaced, IdempotencyTicket, Receipt, check_key, request_hash
from hub.notices.model import NoticeContent, NoticeValidationError
from hub.organisations.model import OrgKind, Scope

__all__ = ["router"]

router = APIRouter(tags=["notices"])

_notices_write = require_scope(Scope.NOTICES_WRITE)


def require_institution(caller: Annotated[Principal, Depends(_notices_write)]) -> Principal:
    """Notices are published, amended, cancelled and imported by the institution that owns them: the
    scope alone is not enough (an operator holds every scope, yet must not publish as an institution)."""
    if caller.org_kind is not OrgKind.INSTITUTION:
        raise Forbidden("only an institution organisation publishes notices")
    return caller


NoticesWrite = Annotated[Principal, Depends(require_institution)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Retry-safe writes: same key + same request → the same answer"),
]
_KEY_LIMIT = problem_doc(
    "A new `Idempotency-Key` while the organisation already holds "
    "`syndication.publication.idempotency_max_keys_per_org` unexpired keys (type `.../idempotency-key-limit`); "
    "nothing was stored. Retry once older keys expire (`idempotency_ttl_h`) or without the header")
_RECEIPT: dict[int | str, dict[str, Any]] = {
    201: {"description": "Stored; `Location` names the notice or the new version"},
    409: _KEY_LIMIT,
}
_CHANGE_RECEIPT: dict[int | str, dict[str, Any]] = {
    **_RECEIPT,
    409: problem_doc("The notice no longer takes this change (cancelled), or: " + _KEY_LIMIT["description"]),
}


class AmendmentIn(Input):
    reason: str = Field(min_length=1, max_length=4000)
    content: NoticeContent | None = Field(None, description="The complete new content, or…")
    changes: JsonBody | None = Field(None, description="…an RFC 7396 merge patch of the current content")


class CancellationIn(Input):
    reason: str = Field(min_length=1, max_length=4000)


def _invalid(problems: list[tuple[tuple[str | int, ...], str]]) -> RequestValidationError:
    """Rendered by the API's validation handler: one ``errors`` entry, with a JSON pointer, per field."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in problems])


def _ticket(key: str | None, request: Request, body: Any) -> IdempotencyTicket | None:
    if key is None:
        return None
    if problem := check_key(key):
        raise _invalid([(("header", "Idempotency-Key"), problem)])
    return IdempotencyTicket(key=key, request_hash=request_hash(request.method, request.url.path, body))


def _dispatch(bus: Any, command: Any) -> Receipt:
    try:
        try:
            receipt: Receipt = bus.handle(command)
        except IdempotencyKeyRaced:
            # A concurrent request with the same key committed first; handled again, this one replays it.
            receipt = bus.handle(command)
    except NoticeValidationError as error:
        raise _invalid([(("body", *path.split(".")), message) for path, message in error.problems]) from None
    except DocumentError as error:
        raise _invalid([(("body", *filter(None, path.split("."))), message) for path, message in error.problems]) \
            from None
    return receipt


def _send(bus: Any, command: Any) -> JSONResponse:
    receipt = _dispatch(bus, command)
    headers = {"Location": receipt.location} if receipt.location else {}
    if receipt.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(receipt.body, status_code=receipt.status_code, headers=headers)


@router.post("/notices", status_code=201, responses=_RECEIPT, summary="Publish a notice (institution)")
def publish_notice(
    body: NoticeContent, caller: NoticesWrite, bus: BusDep, request: Request, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    command = PublishNotice(institution_org_id=caller.org_id, content=body, actor_org_id=caller.org_id,
                            idempotency=_ticket(idempotency_key, request, body.model_dump(mode="json")))
    return _send(bus, command)


@router.post("/notices/{notice_id}/amendments", status_code=201, responses=_CHANGE_RECEIPT,
             summary="Amend a notice: a new version (the owning institution)")
def amend_notice(
    notice_id: str, body: AmendmentIn, caller: NoticesWrite, bus: BusDep, request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    command = AmendNotice(notice_id=notice_id, institution_org_id=caller.org_id, reason=body.reason,
                          content=body.content, changes=body.changes, actor_org_id=caller.org_id,
                          idempotency=_ticket(idempotency_key, request, body.model_dump(mode="json")))
    return _send(bus, command)


@router.post("/notices/{notice_id}/cancellation", status_code=201, responses=_CHANGE_RECEIPT,
             summary="Cancel a notice: its last version, a tombstone (the owning institution)")
def cancel_notice(
    notice_id: str, body: CancellationIn, caller: NoticesWrite, bus: BusDep, request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    command = CancelNotice(notice_id=notice_id, institution_org_id=caller.org_id, reason=body.reason,
                           actor_org_id=caller.org_id,
                           idempotency=_ticket(idempotency_key, request, body.model_dump(mode="json")))
    return _send(bus, command)


_IMPORT: dict[int | str, dict[str, Any]] = {
    409: _KEY_LIMIT,
    413: problem_doc("More items or releases than `syndication.publication.pps_max_items`, or the body over "
                     "`api.max_body_bytes`"),
}
_UPLOAD: dict[int | str, dict[str, Any]] = {
    409: _KEY_LIMIT,
    413: problem_doc("More than `csv_max_bytes` bytes or `csv_max_rows` rows"),
    415: problem_doc("Neither text/csv nor multipart/form-data with a `file` part"),
    422: problem_doc("Unusable header, a cell over `csv_max_field_chars` (named by row and column), or not UTF-8"),
}


_PPS_IMPORT: dict[int | str, dict[str, Any]] = {
    **_IMPORT,
    422: problem_doc("An item list that is not one, or the document is PPS's (or data.go.kr's) error answer: "
                     "type `.../pps-gateway-error` with `pps_result_code` and `pps_result_message` (e.g. 30, "
                     "SERVICE KEY IS NOT REGISTERED ERROR). NODATA (03) is an empty import, not an error"),
}


@router.post("/notices/import/pps", responses=_PPS_IMPORT,
             summary="Import Korean PPS open-API notices (per-item report)")
def import_pps(
    caller: NoticesWrite, bus: BusDep, request: Request,
    body: Annotated[JsonBody | list[JsonBody], Body(
        description="A BidPublicInfoService response (`{\"response\": …}`), `{\"items\": [...]}` or a list of items")],
    operation: Annotated[str | None, Query(max_length=100, description="e.g. getBidPblancListInfoCnstwk: "
                                           "decides the category when items lack bsnsDivNm")] = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Each item becomes a new notice, or a new version of the notice with its `bidNtceNo` (an order
    already imported is reported `unchanged`). Valid items are stored even when others are rejected."""
    command = ImportNotices(institution_org_id=caller.org_id, format="pps", document=body,
                            options={"operation": operation} if operation else {}, actor_org_id=caller.org_id,
                            idempotency=_ticket(idempotency_key, request, {"document": body, "operation": operation}))
    return _send(bus, command)


@router.post("/notices/import/ocds", responses=_IMPORT,
             summary="Import an OCDS 1.1 release package (per-release report)")
def import_ocds(
    caller: NoticesWrite, bus: BusDep, request: Request,
    body: Annotated[JsonBody, Body(description="An OCDS 1.1 release package (`{\"releases\": [...]}`)")],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Each contracting process (`ocid`) is one notice: its first tender release creates it, later ones
    (by `date`) amend it, and a cancelled tender cancels it. A release already imported (or an older
    one) is reported `unchanged`; releases that are not tender releases are rejected."""
    command = ImportNotices(institution_org_id=caller.org_id, format="ocds", document=body,
                            actor_org_id=caller.org_id, idempotency=_ticket(idempotency_key, request, body))
    return _send(bus, command)


_CSV_TYPES = {"text/csv", "application/csv", "text/plain"}
_CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


def _multipart_file(raw: bytes, content_type: str) -> bytes | None:
    """The ``file`` part (else the first part with a filename) of a multipart/form-data body.
    The standard library's MIME parser is enough for one uploaded file; nothing is written to disk."""
    message = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    if not message.is_multipart():
        return None
    parts = list(message.iter_parts())
    chosen = next((p for p in parts if p.get_param("name", header="content-disposition") == "file"), None)
    chosen = chosen or next((p for p in parts if p.get_filename()), None)
    if chosen is None:
        return None
    payload = chosen.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else None


@router.post("/notices/bulk", summary="Publish many notices from CSV (per-row report)", openapi_extra=_CSV_BODY,
             responses=_UPLOAD)
async def bulk_publish(
    caller: NoticesWrite, bus: BusDep, hub: HubDep, request: Request, idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Columns: see docs/notices-csv.md. Valid rows are published even when others are rejected; the
    report lists every row as `created` (with the notice id) or `rejected` (errors naming the column)."""
    limits = hub.settings.syndication.publication
    raw = await request.body()
    if len(raw) > limits.csv_max_bytes:
        return problem_response(413, detail=f"at most {limits.csv_max_bytes} bytes per upload",
                                instance=request.url.path)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        data = _multipart_file(raw, request.headers["content-type"])
        if data is None:
            raise _invalid([(("body", "file"), "a multipart upload needs a 'file' part")])
    elif media_type in _CSV_TYPES:
        data = raw
    else:
        return problem_response(415, detail="send text/csv or multipart/form-data with a 'file' part",
                                instance=request.url.path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid([(("body",), "the CSV must be UTF-8 encoded")]) from None
    command = ImportNotices(institution_org_id=caller.org_id, format="csv", document=text,
                            actor_org_id=caller.org_id, idempotency=_ticket(idempotency_key, request, data))
    return await run_in_threadpool(_send, bus, command)


router.include_router(notices_public.router)
