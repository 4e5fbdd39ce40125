"""IAF CertSearch twin: ``GET /certificate/{cert_id}`` and ``GET /company/{ce_id[,ce_id...]}`` (up to
100 ids) behind the ``x-http-authorization`` key header; errors are RFC 7807 problem objects with a
``code`` (unauthorized, not_found, too_many_ids, insufficient_credit, service_unavailable).

The company lookup answers a JSON array with one object per *known* id, each carrying its
certificates; unknown ids are left out, and if none is known the answer is a 404 problem.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.common import TwinState, control_routes
from connectors.sandbox.faults import FaultDecision
from connectors.sandbox.records import IafCertificate

__all__ = ["MAX_COMPANY_IDS", "build_iaf_app", "certificate_document", "problem"]

MAX_COMPANY_IDS = 100
PROBLEM_JSON = "application/problem+json"
_TITLES = {400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
           404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable", 504: "Gateway Timeout"}
_CODE_STATUS = {"unauthorized": 401, "forbidden": 403, "insufficient_credit": 402, "not_found": 404,
                "too_many_requests": 429, "service_unavailable": 503, "internal_error": 500}


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": f"https://www.iafcertsearch.org/problems/{code}", "title": _TITLES.get(status, "Error"),
            "status": status, "detail": detail, "code": code}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def certificate_document(cert: IafCertificate) -> dict[str, Any]:
    return {
        "certification_number": cert.cert_id,
        "certification_status": cert.status,
        "certification_scope": cert.scope,
        "certification_standards_scheme": [
            {"standard_name": cert.standard, "scheme_name": cert.scheme, "is_accredited_mla": True}],
        "certification_bodies_name": cert.certification_body,
        "accreditation_bodies_name": cert.accreditation_body,
        "original_certification_date": cert.original_issue_date.isoformat(),
        "expiry_date": cert.expiry_date.isoformat(),
        "certified_entities": [{"ce_id": cert.ce_id, "name": cert.entity_name, "country": cert.country}],
        "sites": [{"country": cert.country, "is_main_site": True}],
        "updated_at": f"{cert.updated_at.isoformat()}T00:00:00Z",
    }


def _injected_fault(decision: FaultDecision) -> Response:
    retry = {"Retry-After": str(decision.retry_after_s)}
    if decision.kind == "outage":
        return problem(503, "service_unavailable", "CertSearch is unavailable", retry)
    if decision.kind == "timeout":
        return problem(504, "gateway_timeout", "upstream timed out")
    code = decision.fault_code or "internal_error"
    status = int(code) if code.isdigit() else _CODE_STATUS.get(code, 500)
    return problem(status, code, "injected error", retry if status in (429, 503) else None)


def build_iaf_app(state: TwinState) -> Starlette:
    async def guard(request: Request) -> Response | None:
        state.stats.add("requests")
        if state.api_key is not None and request.headers.get("x-http-authorization") != state.api_key:
            state.stats.add("rejected:auth")
            return problem(401, "unauthorized", "missing or unknown x-http-authorization key")
        decision, fault = await state.inject_faults(_injected_fault)
        if fault is not None:
            return fault
        if decision.kind == "malformed":
            state.stats.add("fault:malformed")
            return Response('{"certification_number": ', media_type="application/json")
        return None

    async def certificate(request: Request) -> Response:
        refused = await guard(request)
        if refused is not None:
            return refused
        cert = state.dataset.iaf_certificate(request.path_params["cert_id"])
        if cert is None:
            state.stats.add("not_found")
            return problem(404, "not_found", "certificate not found")
        state.stats.add("ok")
        return JSONResponse(certificate_document(cert))

    async def company(request: Request) -> Response:
        ce_ids = [part.strip() for part in request.path_params["ce_ids"].split(",") if part.strip()]
        if len(ce_ids) > MAX_COMPANY_IDS:
            state.stats.add("requests")
            return problem(400, "too_many_ids", f"at most {MAX_COMPANY_IDS} ids per request")
        refused = await guard(request)
        if refused is not None:
            return refused
        state.stats.add("items", len(ce_ids))
        companies = []
        for ce_id in dict.fromkeys(ce_ids):
            certs = state.dataset.iaf_certificates_of(ce_id)
            if certs:
                companies.append({"ce_id": ce_id, "name": certs[0].entity_name, "country": certs[0].country,
                                  "certificates": [certificate_document(c) for c in certs]})
        if not companies:
            state.stats.add("not_found")
            return problem(404, "not_found", "no certified entity found")
        state.stats.add("ok")
        return JSONResponse(companies)

    return Starlette(routes=[
        Route("/certificate/{cert_id}", certificate, methods=["GET"]),
        Route("/company/{ce_ids}", company, methods=["GET"]),
        *control_routes(state),
    ])
