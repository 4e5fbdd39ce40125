"""GLEIF twin: ``GET /api/v1/lei-records/{lei}`` as JSON:API (``application/vnd.api+json``), with
the attribute layout of the live API (absent address parts are null) and a JSON:API ``errors`` array
for unknown LEIs."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.common import TwinState, control_routes
from connectors.sandbox.faults import FaultDecision
from connectors.sandbox.records import LeiRecord

__all__ = ["JSON_API", "build_gleif_app", "lei_document"]

JSON_API = "application/vnd.api+json"


def _errors(status: int, title: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"status": str(status), "title": title}]}, status_code=status,
                        media_type=JSON_API, headers=headers)


def _address(record: LeiRecord) -> dict[str, Any]:
    return {"language": record.legal_name_language, "addressLines": record.address_lines,
            "addressNumber": None, "addressNumberWithinBuilding": None, "mailRouting": None,
            "city": record.city, "region": record.region, "country": record.country,
            "postalCode": record.postal_code}


def lei_document(record: LeiRecord, base_url: str) -> dict[str, Any]:
    """The ``data`` document of one LEI record."""
    self_url = f"{base_url}/api/v1/lei-records/{record.lei}"
    return {
        "meta": {"goldenCopy": {"publishDate": f"{record.last_update_date.isoformat()}T08:00:00Z"}},
        "data": {
            "type": "lei-records",
            "id": record.lei,
            "attributes": {
                "lei": record.lei,
                "entity": {
                    "legalName": {"name": record.legal_name, "language": record.legal_name_language},
                    "otherNames": [], "transliteratedOtherNames": [],
                    "legalAddress": _address(record), "headquartersAddress": _address(record),
                    "registeredAt": {"id": record.registered_at_id, "other": None},
                    "registeredAs": record.registered_as,
                    "jurisdiction": record.country,
                    "category": record.category,
                    "legalForm": {"id": record.legal_form_id, "other": None},
                    "associatedEntity": {"lei": None, "name": None},
                    "status": record.entity_status,
                    "expiration": {"date": None, "reason": None},
                    "successorEntities": [],
                    "creationDate": f"{record.creation_date.isoformat()}T00:00:00Z",
                    "subCategory": None,
                },
                "registration": {
                    "initialRegistrationDate": f"{record.initial_registration_date.isoformat()}T00:00:00Z",
                    "lastUpdateDate": f"{record.last_update_date.isoformat()}T00:00:00Z",
                    "status": record.registration_status,
                    "nextRenewalDate": f"{record.next_renewal_date.isoformat()}T00:00:00Z",
                    "managingLou": record.managing_lou,
                    "corroborationLevel": record.corroboration_level,
                    "validatedAt": {"id": record.registered_at_id, "other": None},
                    "validatedAs": record.registered_as,
                },
                "bic": None, "mic": None, "ocid": None, "spglobal": [], "conformityFlag": "CONFORMING",
            },
            "relationships": {
                "managing-lou": {"links": {"related": f"{self_url}/managing-lou"}},
                "direct-parent": {"links": {"reporting-exception": f"{self_url}/direct-parent-reporting-exception"}},
            },
            "links": {"self": self_url},
        },
    }


def _injected_fault(decision: FaultDecision) -> Response:
    retry = {"Retry-After": str(decision.retry_after_s)}
    if decision.kind == "outage":
        return _errors(503, "Service Unavailable", retry)
    if decision.kind == "timeout":
        return _errors(504, "Gateway Timeout")
    status = int(decision.fault_code) if decision.fault_code and decision.fault_code.isdigit() else 500
    return _errors(status, "Injected error", retry if status in (429, 503) else None)


def build_gleif_app(state: TwinState) -> Starlette:
    async def lei_record(request: Request) -> Response:
        state.stats.add("requests")
        decision, fault = await state.inject_faults(_injected_fault)
        if fault is not None:
            return fault
        record = state.dataset.lei(request.path_params["lei"])
        if record is None:
            state.stats.add("not_found")
            return _errors(404, "Not Found")
        if decision.kind == "malformed":
            state.stats.add("fault:malformed")
            return Response('{"data": {"type": "lei-records", "attributes": {', media_type=JSON_API)
        state.stats.add("ok")
        base = str(request.base_url).rstrip("/") + request.scope.get("root_path", "")
        return JSONResponse(lei_document(record, base.rstrip("/")), media_type=JSON_API)

    return Starlette(routes=[Route("/api/v1/lei-records/{lei}", lei_record, methods=["GET"]),
                             *control_routes(state)])
