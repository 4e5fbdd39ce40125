"""PPS twin: the KONEPS bid-notice list operations of BidPublicInfoService (``contracts/pps/SPEC.md``).

``GET /1230000/ad/BidPublicInfoService/{operation}`` for the four list operations (goods, services,
works, foreign), with the key in ``serviceKey`` (compared once decoded, so a key encoded twice by the
client arrives with ``%2B`` in it and is refused with the gateway's ``ResponseError`` envelope, code 30),
``inqryDiv`` 1 (registration time) or 3 (change time) with ``inqryBgnDt``/``inqryEndDt`` (``YYYYMMDDHHMM``,
both ends inclusive, at most one month apart: 07; a bad date: 06), paging by ``pageNo``/``numOfRows``
with ``totalCount``, NODATA (03) for an empty window, ``type=json`` or XML.

The dataset is fixed (:data:`DATASET_START` onwards, over several days): every operation has notices,
amendments (orders 001, 002) and one cancellation, so a backfill has pages to go through. ``items`` is
rendered ``{"item": [...]}`` (``{"item": {...}}`` for one item) or as a plain list (``items_shape``),
``""`` when empty. ``POST /_control/pps`` changes the shape, changes a record (``{"change": {"operation": …,
"bidNtceNo": …, "bidNtceOrd": …, "chgDt": …}}``) and schedules failures: after ``fail_after`` good
answers, the next ``fail_count`` requests (-1: all) answer ``fail_code`` — a data.go.kr result code
(``22`` quota, ``30`` key…) in its envelope, or an HTTP status (``"503"``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.common import TwinState, control_routes
from connectors.sandbox.faults import FaultDecision

__all__ = [
    "BASE_PATH",
    "DATASET_START",
    "KEY_ERROR_CODES",
    "OPERATIONS",
    "PpsControl",
    "build_pps_app",
    "pps_dataset",
]

BASE_PATH = "/1230000/ad/BidPublicInfoService"
ItemsShape = Literal["item", "list"]
# Operation → (notice count, kind word of the mapping's category, institution)
OPERATIONS: dict[str, tuple[int, str]] = {
    "getBidPblancListInfoThng": (14, "물품"),
    "getBidPblancListInfoServc": (11, "용역"),
    "getBidPblancListInfoCnstwk": (9, "공사"),
    "getBidPblancListInfoFrgcpt": (4, "외자"),
}
DATASET_START = datetime(2026, 3, 2, 9, 0)  # KST, as every PPS time
KEY_ERROR_CODES = frozenset({"20", "30", "31", "32"})
MESSAGES = {
    "00": "정상",
    "01": "APPLICATION_ERROR",
    "03": "NODATA_ERROR",
    "06": "INVALID_REQUEST_PARAMETER_ERROR(inqryBgnDt)",
    "07": "INVALID_REQUEST_PARAMETER_ERROR(조회기간은 1개월 이내)",
    "10": "INVALID_REQUEST_PARAMETER_ERROR",
    "11": "NO_MANDATORY_REQUEST_PARAMETERS_ERROR",
    "12": "NO_OPENAPI_SERVICE_ERROR",
    "20": "SERVICE_ACCESS_DENIED_ERROR",
    "22": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
    "30": "SERVICE KEY IS NOT REGISTERED ERROR",
    "31": "DEADLINE_HAS_EXPIRED_ERROR",
    "32": "UNREGISTERED_IP_ERROR",
    "99": "UNKNOWN_ERROR",
}
MAX_ROWS = 999
_STAMP = "%Y-%m-%d %H:%M:%S"
_INSTITUTIONS = [("1230000", "조달청"), ("6110000", "서울특별시"), ("6260000", "부산광역시"), ("1741000", "국토교통부")]
_REGIONS = ["", "서울특별시", "부산광역시", "경기도", ""]


def _item(
    operation: str,
    kind: str,
    number: str,
    order: int,
    ntce_kind: str,
    registered: datetime,
    changed: datetime,
    index: int,
) -> dict[str, str]:
    code, name = _INSTITUTIONS[index % len(_INSTITUTIONS)]
    amount = str((index + 3) * 12_500_000)
    published = registered.strftime(_STAMP)
    item = {
        "bidNtceNo": number,
        "bidNtceOrd": f"{order:03d}",
        "reNtceYn": "N",
        "rgstTyNm": "조달청 또는 나라장터 자체 공고건",
        "ntceKindNm": ntce_kind,
        "bidNtceDt": published,
        "refNo": f"{kind}-{index:04d}",
        "bidNtceNm": f"2026년 {kind} 조달 {index + 1}호" + (f" ({order}차 변경)" if ntce_kind == "변경공고" else ""),
        "ntceInsttCd": code,
        "ntceInsttNm": name,
        "dminsttCd": code,
        "dminsttNm": name,
        "bidMethdNm": "전자입찰",
        "cntrctCnclsMthdNm": "제한경쟁" if index % 3 == 0 else "일반경쟁",
        "bidBeginDt": (registered + timedelta(days=1)).strftime(_STAMP),
        "bidClseDt": (registered + timedelta(days=10 + order)).strftime(_STAMP),
        "opengDt": (registered + timedelta(days=10 + order, hours=1)).strftime(_STAMP),
        "presmptPrce": amount,
        "VAT": str(int(amount) // 10),
        "asignBdgtAmt": str(int(amount) * 11 // 10) if kind != "공사" else "",
        "bdgtAmt": str(int(amount) * 11 // 10) if kind == "공사" else "",
        "prtcptLmtRgnNm": _REGIONS[index % len(_REGIONS)],
        "indstrytyLmtYn": "Y" if index % 2 else "N",
        "chgNtceRsn": "입찰마감일 연장" if order and ntce_kind == "변경공고" else "",
        "bidNtceDtlUrl": f"https://www.g2b.go.kr/link/PNPE027_01/single/?bidPbancNo={number}&bidPbancOrd={order:03d}",
        "rgstDt": published,
        "chgDt": changed.strftime(_STAMP),
    }
    if kind in ("물품", "외자"):
        item["dtilPrdctClsfcNo"] = f"{43211500 + index:08d}{index % 100:02d}"
    if kind == "용역":
        item["pubPrcrmntClsfcNo"] = f"{81110000 + index * 10:08d}"
    return item


def pps_dataset() -> dict[str, list[dict[str, str]]]:
    """Every operation's items, orders included, in registration order. Notice ``i`` is registered
    ``5 h * i`` after the start (offset per operation), so the items spread over about three days; every
    third notice is amended a day later, every fifth again a day after that, and notice 4 (the last, if fewer) is
    cancelled; every fourth original is corrected in place half an hour after registration (a later
    ``chgDt``, same order)."""
    data: dict[str, list[dict[str, str]]] = {}
    for op_index, (operation, (count, kind)) in enumerate(OPERATIONS.items()):
        items: list[dict[str, str]] = []
        for i in range(count):
            number = f"R26BK{op_index + 1}{i + 1:07d}"
            registered = DATASET_START + timedelta(hours=5 * i, minutes=17 * op_index)
            changed = registered + timedelta(minutes=30) if i % 4 == 0 else registered
            items.append(_item(operation, kind, number, 0, "등록공고", registered, changed, i))
            order = 0
            if i % 3 == 1:
                order += 1
                when = registered + timedelta(days=1)
                items.append(_item(operation, kind, number, order, "변경공고", when, when, i))
            if i % 5 == 1:
                order += 1
                when = registered + timedelta(days=2)
                items.append(_item(operation, kind, number, order, "변경공고", when, when, i))
            if i == min(4, count - 1):
                when = registered + timedelta(days=1, hours=2)
                items.append(_item(operation, kind, number, order + 1, "취소공고", when, when, i))
        items.sort(key=lambda it: (it["rgstDt"], it["bidNtceNo"], it["bidNtceOrd"]))
        data[operation] = items
    return data


@dataclass
class PpsControl:
    """What a test changes at run time (``/_control/pps``)."""

    items_shape: ItemsShape = "item"
    fail_after: int | None = None  # good answers before the scheduled failures start
    fail_code: str = "22"
    fail_count: int = 0  # failures left (-1: until changed)
    answered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "items_shape": self.items_shape,
            "fail_after": self.fail_after,
            "fail_code": self.fail_code,
            "fail_count": self.fail_count,
            "answered": self.answered,
        }

    def update(self, changes: dict[str, Any]) -> None:
        with self.lock:
            shape = changes.get("items_shape", self.items_shape)
            if shape not in ("item", "list"):
                raise ValueError("items_shape must be 'item' or 'list'")
            self.items_shape = shape
            self.fail_after = changes.get("fail_after", self.fail_after)
            self.fail_code = str(changes.get("fail_code", self.fail_code))
            self.fail_count = int(changes.get("fail_count", self.fail_count))
            if "fail_after" in changes:
                self.answered = 0

    def scheduled_failure(self) -> str | None:
        """The code this request must fail with, if a failure is due; else counts a good answer."""
        with self.lock:
            if self.fail_after is not None and self.answered >= self.fail_after and self.fail_count != 0:
                if self.fail_count > 0:
                    self.fail_count -= 1
                return self.fail_code
            self.answered += 1
            return None


def _change_record(data: dict[str, list[dict[str, str]]], change: Any) -> None:
    """``{"operation", "bidNtceNo", "bidNtceOrd", **fields}``: fields of one listed record change at the
    source (a later ``chgDt`` moves it to another change-time window)."""
    if not isinstance(change, dict):
        raise ValueError("change must be an object")
    wanted = (change.pop("operation"), change.pop("bidNtceNo"), change.pop("bidNtceOrd"))
    for item in data[wanted[0]]:
        if (item["bidNtceNo"], item["bidNtceOrd"]) == wanted[1:]:
            item.update({str(k): str(v) for k, v in change.items()})
            return
    raise KeyError(f"no record {wanted}")


def _parse_stamp(value: str) -> datetime | None:
    if len(value) != 12 or not value.isdigit():
        return None
    try:
        return datetime.strptime(value, "%Y%m%d%H%M")
    except ValueError:
        return None


def _month_later(when: datetime) -> datetime:
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    for day in (when.day, 30, 29, 28):
        try:
            return when.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _xml_value(name: str, value: Any) -> str:
    if isinstance(value, dict):
        return f"<{name}>" + "".join(_xml_value(k, v) for k, v in value.items()) + f"</{name}>"
    if isinstance(value, list):
        return "".join(_xml_value(name, v) for v in value)
    return f"<{name}>{escape(str(value))}</{name}>"


class _Reply:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def document(self, document: dict[str, Any], status: int = 200) -> Response:
        if self.as_json:
            return JSONResponse(document, status_code=status)
        [(root, content)] = document.items()
        if root == "response" and isinstance(content.get("body", {}).get("items"), list):
            content = {**content, "body": {**content["body"], "items": {"item": content["body"]["items"]}}}
        xml = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + _xml_value(root, content)
        return Response(xml, status_code=status, media_type="application/xml")

    def result(self, code: str, status: int = 200) -> Response:
        header = {"resultCode": code, "resultMsg": MESSAGES.get(code, MESSAGES["99"])}
        if code in KEY_ERROR_CODES:
            return self.document({"nkoneps.com.response.ResponseError": {"header": header}}, status)
        return self.document({"response": {"header": header}}, status)


def _injected(reply: _Reply, code: str) -> Response:
    if code.isdigit() and len(code) == 3:
        return Response(
            "Service Unavailable", status_code=int(code), media_type="text/plain", headers={"Retry-After": "1"}
        )
    return reply.result(code)


def build_pps_app(state: TwinState, items_shape: ItemsShape = "item") -> Starlette:
    data = pps_dataset()
    control = PpsControl(items_shape=items_shape)

    def fault_reply(decision: FaultDecision) -> Response:
        if decision.kind == "outage":
            retry_after = {"Retry-After": str(decision.retry_after_s)}
            return Response("Service Unavailable", status_code=503, headers=retry_after)
        if decision.kind == "timeout":
            return Response("Gateway Timeout", status_code=504)
        return _injected(_Reply(True), decision.fault_code or "01")

    async def listing(request: Request) -> Response:
        operation = request.path_params["operation"]
        params = request.query_params
        reply = _Reply(params.get("type", "").lower() == "json")
        state.stats.add("requests")
        if operation not in data:
            return reply.result("12")
        if state.api_key is not None and params.get("serviceKey") != state.api_key:
            state.stats.add("rejected:auth")
            return reply.result("30")
        if (scheduled := control.scheduled_failure()) is not None:
            state.stats.add(f"fault:scheduled:{scheduled}")
            return _injected(reply, scheduled)
        decision, fault = await state.inject_faults(fault_reply)
        if fault is not None:
            return fault
        if not params.get("pageNo") or not params.get("numOfRows") or not params.get("inqryDiv"):
            return reply.result("11")
        if (
            not params["pageNo"].isdigit()
            or not params["numOfRows"].isdigit()
            or params["inqryDiv"] not in ("1", "3")
            or int(params["pageNo"]) < 1
            or int(params["numOfRows"]) < 1
        ):
            return reply.result("10")
        begin_raw, end_raw = params.get("inqryBgnDt", ""), params.get("inqryEndDt", "")
        if not begin_raw or not end_raw:
            return reply.result("11")
        begin, end = _parse_stamp(begin_raw), _parse_stamp(end_raw)
        if begin is None or end is None or end < begin:
            return reply.result("06")
        if end > _month_later(begin):
            return reply.result("07")
        page, rows = int(params["pageNo"]), min(int(params["numOfRows"]), MAX_ROWS)
        stamp = "chgDt" if params["inqryDiv"] == "3" else "rgstDt"
        last = end + timedelta(minutes=1)
        matching = [
            it for it in data[operation] if begin <= datetime.strptime(it[stamp] or it["rgstDt"], _STAMP) < last
        ]
        matching.sort(key=lambda it: (it[stamp] or it["rgstDt"], it["bidNtceNo"], it["bidNtceOrd"]))
        state.stats.add(f"page:{operation}:{begin_raw}:{page}")
        if not matching:
            state.stats.add("nodata")
            return reply.result("03")
        chunk = matching[(page - 1) * rows : page * rows]
        state.stats.add("ok")
        state.stats.add("items", len(chunk))
        if decision.kind == "malformed":
            state.stats.add("fault:malformed")
            return Response('{"response":{"header":{"resultCode":"00"', media_type="application/json")
        items: Any
        if not chunk:
            items = ""
        elif control.items_shape == "list":
            items = chunk
        else:
            items = {"item": chunk[0] if len(chunk) == 1 else chunk}
        header = {"resultCode": "00", "resultMsg": MESSAGES["00"]}
        body = {"items": items, "numOfRows": rows, "pageNo": page, "totalCount": len(matching)}
        return reply.document({"response": {"header": header, "body": body}})

    async def pps_control(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise ValueError("body must be a JSON object")
                if "change" in changes:
                    _change_record(data, changes.pop("change"))
                control.update(changes)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"status": 422, "detail": str(exc)}, status_code=422)
        elif request.method == "DELETE":
            request.app.state.reset()
        return JSONResponse(control.as_dict())

    app = Starlette(
        routes=[
            Route(f"{BASE_PATH}/{{operation}}", listing, methods=["GET"]),
            Route("/_control/pps", pps_control, methods=["GET", "POST", "DELETE"]),
            *control_routes(state),
        ]
    )

    def reset() -> None:
        control.update({"items_shape": items_shape, "fail_after": None, "fail_count": 0, "fail_code": "22"})
        data.clear()
        data.update(pps_dataset())

    app.state.reset = reset
    return app
