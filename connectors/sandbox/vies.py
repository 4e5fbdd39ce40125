"""VIES twin: the Commission's ``checkVatService`` (SOAP 1.1 document/literal, checkVat and
checkVatApprox), served from the Commission's own WSDL with the address pointed at the twin.

Mirrors the live service's habits the connector must cope with: ``requestDate`` as a date with a
zone offset, Germany answering ``---`` for name and address, invalid numbers with empty name and
address, and every fault (INVALID_INPUT and the transient ones) as HTTP 500 with the code in
``faultstring``.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.sandbox import soap
from connectors.sandbox.common import BodyTooLarge, TwinState, control_routes, read_capped_body
from connectors.sandbox.faults import FaultDecision
from connectors.sandbox.records import VatRecord

__all__ = ["SERVICE_PATH", "TRANSIENT_FAULTS", "VIES_TYPES_NS", "build_vies_app"]

VIES_TYPES_NS = "urn:ec.europa.eu:taxud:vies:services:checkVat:types"
SERVICE_PATH = "/checkVatService"
WSDL_FILE = "vies_checkVatService.wsdl"
TRANSIENT_FAULTS = (
    "SERVICE_UNAVAILABLE", "MS_UNAVAILABLE", "TIMEOUT", "GLOBAL_MAX_CONCURRENT_REQ", "MS_MAX_CONCURRENT_REQ",
)
# VIES member-state codes: Greece is EL; XI is Northern Ireland.
MEMBER_STATES = frozenset((
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI",
))
_COUNTRY = re.compile(r"[A-Z]{2}")
_VAT_NUMBER = re.compile(r"[0-9A-Za-z+*.]{2,12}")


def request_date() -> str:
    """Today in Brussels as ``YYYY-MM-DD+HH:MM`` (xsd:date with offset), as VIES writes it."""
    now = datetime.now(ZoneInfo("Europe/Brussels"))
    offset = now.strftime("%z")
    return f"{now.date().isoformat()}{offset[:3]}:{offset[3:]}"


def _el(parent: etree._Element, name: str, text: str | None) -> None:
    child = etree.SubElement(parent, f"{{{VIES_TYPES_NS}}}{name}")
    child.text = text


def _injected_fault(decision: FaultDecision) -> Response:
    if decision.kind == "outage":
        code = "SERVICE_UNAVAILABLE"
    elif decision.kind == "timeout":
        code = "TIMEOUT"
    else:
        code = decision.fault_code or TRANSIENT_FAULTS[int(decision.draw * len(TRANSIENT_FAULTS))]
    return soap.fault_response(code)


def build_vies_app(state: TwinState) -> Starlette:
    async def service(request: Request) -> Response:
        if request.method == "GET":
            if "wsdl" in {key.lower() for key in request.query_params}:
                return soap.wsdl_response(WSDL_FILE, request)
            return Response("checkVatService: POST SOAP 1.1 requests; WSDL at ?wsdl", media_type="text/plain")
        state.stats.add("requests")
        try:
            raw = await read_capped_body(request, state.max_body_bytes)
            operation = soap.soap_body_child(soap.parse_untrusted_xml(raw, state.max_body_bytes))
        except (BodyTooLarge, soap.UntrustedXmlError):
            state.stats.add("rejected")
            return soap.fault_response("INVALID_INPUT", faultcode="env:Client")
        name = etree.QName(operation)
        if name.namespace != VIES_TYPES_NS or name.localname not in ("checkVat", "checkVatApprox"):
            state.stats.add("rejected")
            return soap.fault_response("INVALID_INPUT", faultcode="env:Client")
        state.stats.add(f"operation:{name.localname}")
        country = soap.child_text(operation, VIES_TYPES_NS, "countryCode") or ""
        number = soap.child_text(operation, VIES_TYPES_NS, "vatNumber") or ""
        state.stats.add(f"member_state:{country}" if country in MEMBER_STATES else "member_state:other")
        # Faults may strike one member state only (``only_for``), as MS_UNAVAILABLE does in life.
        decision, fault = await state.inject_faults(_injected_fault, key=country)
        if fault is not None:
            return fault
        if not (_COUNTRY.fullmatch(country) and country in MEMBER_STATES and _VAT_NUMBER.fullmatch(number)):
            state.stats.add("fault:INVALID_INPUT")
            return soap.fault_response("INVALID_INPUT")
        if decision.kind == "malformed":
            state.stats.add("fault:malformed")
            return soap.malformed_response()
        record = state.dataset.vat(country, number.upper())
        state.stats.add("ok")
        if name.localname == "checkVat":
            return soap.soap_response(_check_vat_response(country, number, record))
        return soap.soap_response(_approx_response(operation, country, number, record, state))

    return Starlette(routes=[Route(SERVICE_PATH, service, methods=["GET", "POST"]), *control_routes(state)])


def _check_vat_response(country: str, number: str, record: VatRecord | None) -> etree._Element:
    valid = record is not None and record.valid
    response = etree.Element(f"{{{VIES_TYPES_NS}}}checkVatResponse", nsmap={"ns2": VIES_TYPES_NS})
    _el(response, "countryCode", country)
    _el(response, "vatNumber", number)
    _el(response, "requestDate", request_date())
    _el(response, "valid", "true" if valid else "false")
    _el(response, "name", record.name if record is not None and valid else "")
    _el(response, "address", record.address if record is not None and valid else "")
    return response


def _match(given: str | None, actual: str) -> str:
    """VIES match codes: 1 VALID, 2 INVALID, 3 NOT_PROCESSED (nothing given, or data undisclosed)."""
    if not given or actual in ("", "---"):
        return "3"
    return "1" if given.strip().casefold() in actual.casefold() else "2"


def _approx_response(
    operation: etree._Element, country: str, number: str, record: VatRecord | None, state: TwinState
) -> etree._Element:
    valid = record is not None and record.valid
    name = record.name if record is not None and valid else ""
    address = record.address if record is not None and valid else ""
    response = etree.Element(f"{{{VIES_TYPES_NS}}}checkVatApproxResponse", nsmap={"ns2": VIES_TYPES_NS})
    _el(response, "countryCode", country)
    _el(response, "vatNumber", number)
    _el(response, "requestDate", request_date())
    _el(response, "valid", "true" if valid else "false")
    _el(response, "traderName", name)
    _el(response, "traderAddress", address)
    if valid:
        _el(response, "traderNameMatch", _match(soap.child_text(operation, VIES_TYPES_NS, "traderName"), name))
    requester = soap.child_text(operation, VIES_TYPES_NS, "requesterVatNumber")
    sequence = state.stats.count("operation:checkVatApprox")
    _el(response, "requestIdentifier", f"WAPIAAAA{sequence:08d}" if requester else "")
    return response
