"""Companies House twin: ``GET /company/{company_number}`` with HTTP Basic auth (API key as user
name, empty password), the live API's 404 body for unknown companies, and 429 with ``Retry-After``
as its rate limiter answers."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.common import TwinState, control_routes
from connectors.sandbox.faults import FaultDecision
from connectors.sandbox.records import CompanyRecord

__all__ = ["build_companies_house_app", "company_profile"]


def _authorised(request: Request, key: str | None) -> bool:
    if key is None:
        return True
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, _password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return user == key


def company_profile(record: CompanyRecord) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "company_name": record.company_name,
        "company_number": record.company_number,
        "company_status": record.company_status,
        "date_of_creation": record.date_of_creation.isoformat(),
        "type": record.type,
        "jurisdiction": record.jurisdiction,
        "sic_codes": record.sic_codes,
        "registered_office_address": {"address_line_1": record.address_line_1, "locality": record.locality,
                                      "postal_code": record.postal_code, "country": "United Kingdom"},
        "accounts": {"next_due": record.accounts_next_due.isoformat(), "overdue": False,
                     "accounting_reference_date": {"day": "31", "month": "03"}},
        "confirmation_statement": {"next_due": record.confirmation_statement_next_due.isoformat(),
                                   "overdue": False},
        "has_insolvency_history": record.has_insolvency_history,
        "has_charges": False,
        "can_file": record.company_status == "active",
        "links": {"self": f"/company/{record.company_number}",
                  "filing_history": f"/company/{record.company_number}/filing-history",
                  "officers": f"/company/{record.company_number}/officers"},
    }
    if record.date_of_cessation is not None:
        profile["date_of_cessation"] = record.date_of_cessation.isoformat()
    canonical = json.dumps(profile, sort_keys=True, ensure_ascii=False).encode("utf-8")
    profile["etag"] = hashlib.sha1(canonical, usedforsecurity=False).hexdigest()
    return profile


def _service_error(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"type": "ch:service", "error": error}]}, status_code=status, headers=headers)


def _injected_fault(decision: FaultDecision) -> Response:
    retry = {"Retry-After": str(decision.retry_after_s)}
    if decision.kind == "outage":
        return _service_error(503, "service-unavailable", retry)
    if decision.kind == "timeout":
        return _service_error(504, "gateway-timeout")
    code = decision.fault_code or "429"
    status = int(code) if code.isdigit() else 500
    if status == 429:
        return JSONResponse({"error": "Too Many Requests", "type": "ch:service"}, status_code=429, headers=retry)
    return _service_error(status, code if not code.isdigit() else "internal-server-error")


def build_companies_house_app(state: TwinState) -> Starlette:
    async def company(request: Request) -> Response:
        state.stats.add("requests")
        if not _authorised(request, state.api_key):
            state.stats.add("rejected:auth")
            return JSONResponse({"error": "Invalid Authorization", "type": "ch:service"}, status_code=401)
        decision, fault = await state.inject_faults(_injected_fault)
        if fault is not None:
            return fault
        record = state.dataset.company(request.path_params["number"])
        if record is None:
            state.stats.add("not_found")
            return _service_error(404, "company-profile-not-found")
        if decision.kind == "malformed":
            state.stats.add("fault:malformed")
            return Response('{"company_name": "', media_type="application/json")
        state.stats.add("ok")
        return JSONResponse(company_profile(record))

    return Starlette(routes=[Route("/company/{number}", company, methods=["GET"]), *control_routes(state)])
