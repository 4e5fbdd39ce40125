"""NTS twin: Korea's business registration status / validation API (odcloud gateway, JSON).

Speaks the shapes in ``contracts/nts/SPEC.md``: ``POST /status`` and ``POST /validate`` with the key in
``serviceKey`` (or ``Authorization: Infuser <key>``), at most 100 numbers per call, unregistered
numbers as data items with empty codes, gateway errors as ``{"code": -4, "msg": ...}``. Requests and
items are counted (``/_control/stats``) so a test can prove the hub batches its lookups.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.common import BodyTooLarge, TwinState, control_routes, read_capped_body
from connectors.sandbox.dataset import normalise_identifier
from connectors.sandbox.faults import FaultDecision
from connectors.sandbox.records import NtsRecord

__all__ = ["MAX_ITEMS", "STATUS_NAMES", "TAX_TYPE_NAMES", "UNREGISTERED_MESSAGE", "build_nts_app"]

MAX_ITEMS = 100
UNREGISTERED_MESSAGE = "국세청에 등록되지 않은 사업자등록번호입니다."
STATUS_NAMES = {"01": "계속사업자", "02": "휴업자", "03": "폐업자"}
TAX_TYPE_NAMES = {
    "01": "부가가치세 일반과세자",
    "02": "부가가치세 간이과세자",
    "03": "부가가치세 과세특례자",
    "04": "부가가치세 면세사업자",
    "05": "수익사업을 영위하지 않는 비영리법인이거나 고유번호가 부여된 단체,국가기관 등",
    "06": "고유번호가 부여된 단체",
    "07": "부가가치세 간이과세자(세금계산서 발급사업자)",
}
_STATUS_HTTP = {"BAD_JSON_REQUEST": 400, "REQUEST_DATA_MALFORMED": 411, "TOO_LARGE_REQUEST": 413,
                "INTERNAL_ERROR": 500, "HTTP_ERROR": 500}


def status_item(b_no: str, record: NtsRecord | None) -> dict[str, str]:
    """One ``data[]`` item of ``/status``; an unregistered number keeps the shape with empty codes."""
    if record is None:
        return {"b_no": b_no, "b_stt": "", "b_stt_cd": "", "tax_type": UNREGISTERED_MESSAGE, "tax_type_cd": "",
                "end_dt": "", "utcc_yn": "", "tax_type_change_dt": "", "invoice_apply_dt": "",
                "rbf_tax_type": "", "rbf_tax_type_cd": ""}
    return {
        "b_no": b_no, "b_stt": STATUS_NAMES[record.b_stt_cd], "b_stt_cd": record.b_stt_cd,
        "tax_type": TAX_TYPE_NAMES[record.tax_type_cd], "tax_type_cd": record.tax_type_cd,
        "end_dt": record.end_dt, "utcc_yn": record.utcc_yn, "tax_type_change_dt": record.tax_type_change_dt,
        "invoice_apply_dt": record.invoice_apply_dt, "rbf_tax_type": "해당없음",
        "rbf_tax_type_cd": record.rbf_tax_type_cd,
    }


def _status_error(code: str) -> JSONResponse:
    return JSONResponse({"status_code": code}, status_code=_STATUS_HTTP.get(code, 500))


def _gateway_error(code: int, msg: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers)


def _injected_fault(decision: FaultDecision) -> Response:
    if decision.kind == "outage":
        return _gateway_error(-999, "UNKNOWN", 503, {"Retry-After": str(decision.retry_after_s)})
    if decision.kind == "timeout":
        return _gateway_error(-999, "UNKNOWN", 504)
    code = decision.fault_code or "INTERNAL_ERROR"
    if code.isdigit():
        return _gateway_error(-999, "UNKNOWN", int(code), {"Retry-After": str(decision.retry_after_s)})
    return _status_error(code)


def _authorised(request: Request, key: str | None) -> bool:
    if key is None:
        return True
    header = request.headers.get("authorization", "")
    return request.query_params.get("serviceKey") == key or header == f"Infuser {key}"


def build_nts_app(state: TwinState) -> Starlette:
    async def guarded(request: Request, field: str, operation: str) -> tuple[list[Any] | None, Response | None]:
        """Auth, body and limit checks shared by both operations; returns the item list or a reply."""
        state.stats.add("requests")
        state.stats.add(f"operation:{operation}")
        if not _authorised(request, state.api_key):
            state.stats.add("rejected:auth")
            return None, _gateway_error(-4, "등록되지 않은 인증키 입니다.", 401)
        try:
            body = json.loads(await read_capped_body(request, state.max_body_bytes))
        except BodyTooLarge:
            return None, _status_error("TOO_LARGE_REQUEST")
        except ValueError:
            return None, _status_error("BAD_JSON_REQUEST")
        items = body.get(field) if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return None, _status_error("REQUEST_DATA_MALFORMED")
        if len(items) > MAX_ITEMS:
            state.stats.add("rejected:too_large")
            return None, _status_error("TOO_LARGE_REQUEST")
        decision, fault = await state.inject_faults(_injected_fault)
        if fault is not None:
            return None, fault
        if decision.kind == "malformed":
            state.stats.add("fault:malformed")
            return None, Response('{"request_cnt": 1, "status_code": "OK", "data": [{"b_no": "',
                                  media_type="application/json")
        state.stats.add("items", len(items))
        state.stats.add("ok")
        return items, None

    async def status(request: Request) -> Response:
        items, reply = await guarded(request, "b_no", "status")
        if reply is not None or items is None:
            return reply or _status_error("INTERNAL_ERROR")
        data = []
        for raw in items:
            b_no = normalise_identifier(str(raw))
            data.append(status_item(b_no, state.dataset.nts(b_no)))
        matched = sum(1 for item in data if item["b_stt_cd"])
        return JSONResponse({"request_cnt": len(data), "match_cnt": matched, "status_code": "OK", "data": data})

    async def validate(request: Request) -> Response:
        items, reply = await guarded(request, "businesses", "validate")
        if reply is not None or items is None:
            return reply or _status_error("INTERNAL_ERROR")
        data = []
        for business in items:
            if not isinstance(business, dict) or not all(business.get(k) for k in ("b_no", "start_dt", "p_nm")):
                return _status_error("REQUEST_DATA_MALFORMED")
            b_no = normalise_identifier(str(business["b_no"]))
            record = state.dataset.nts(b_no)
            matches = record is not None and record.start_dt == business["start_dt"] and \
                record.p_nm == business["p_nm"] and business.get("b_nm") in (None, "", record.b_nm)
            item: dict[str, Any] = {"b_no": b_no, "valid": "01" if matches else "02", "request_param": business}
            if matches:
                item["status"] = status_item(b_no, record)
            else:
                item["valid_msg"] = "확인할 수 없습니다."
            data.append(item)
        valid = sum(1 for item in data if item["valid"] == "01")
        return JSONResponse({"request_cnt": len(data), "valid_cnt": valid, "status_code": "OK", "data": data})

    return Starlette(routes=[
        Route("/status", status, methods=["POST"]),
        Route("/validate", validate, methods=["POST"]),
        *control_routes(state),
    ])
