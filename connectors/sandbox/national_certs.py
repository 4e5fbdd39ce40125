"""National certificates registry twin: implements g2b-hub's own ``national_certificates.wsdl``
(SOAP 1.1 document/literal ``getCertificates``) over the sandbox's Korean suppliers.

Faults follow the WSDL: faultstring is the code, ``detail`` carries the typed fault element, so
zeep raises ``Fault`` with ``message`` HOLDER_NOT_FOUND / INVALID_INPUT / SERVICE_UNAVAILABLE.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.sandbox import soap
from connectors.sandbox.common import BodyTooLarge, TwinState, control_routes, read_capped_body
from connectors.sandbox.faults import FaultDecision

__all__ = ["NATIONAL_CERTS_NS", "SERVICE_PATH", "build_national_certs_app"]

NATIONAL_CERTS_NS = "urn:g2bhub:national-certificates:v1"
SERVICE_PATH = "/NationalCertificatesService"
WSDL_FILE = "national_certificates.wsdl"
_FAULT_ELEMENTS = {
    "HOLDER_NOT_FOUND": ("holderNotFound", "env:Client"),
    "INVALID_INPUT": ("invalidInput", "env:Client"),
    "SERVICE_UNAVAILABLE": ("serviceUnavailable", "env:Server"),
}
_BRN = re.compile(r"[0-9]{10}")


def _q(name: str) -> str:
    return f"{{{NATIONAL_CERTS_NS}}}{name}"


def registry_fault(code: str, message: str, retry_after_s: int | None = None) -> Response:
    element_name, faultcode = _FAULT_ELEMENTS.get(code, ("serviceUnavailable", "env:Server"))
    detail = etree.Element(_q(element_name), nsmap={"nc": NATIONAL_CERTS_NS})
    etree.SubElement(detail, _q("code")).text = code if code in _FAULT_ELEMENTS else "SERVICE_UNAVAILABLE"
    etree.SubElement(detail, _q("message")).text = message
    headers = {}
    if retry_after_s is not None:
        etree.SubElement(detail, _q("retryAfterSeconds")).text = str(retry_after_s)
        headers["Retry-After"] = str(retry_after_s)
    return soap.fault_response(code, faultcode=faultcode, detail=detail, headers=headers)


def _injected_fault(decision: FaultDecision) -> Response:
    code = decision.fault_code if decision.kind == "error" and decision.fault_code else "SERVICE_UNAVAILABLE"
    return registry_fault(code, f"injected {decision.kind}", retry_after_s=decision.retry_after_s)


def build_national_certs_app(state: TwinState) -> Starlette:
    async def service(request: Request) -> Response:
        if request.method == "GET":
            if "wsdl" in {key.lower() for key in request.query_params}:
                return soap.wsdl_response(WSDL_FILE, request)
            return Response("NationalCertificatesService: POST SOAP 1.1; WSDL at ?wsdl", media_type="text/plain")
        state.stats.add("requests")
        try:
            raw = await read_capped_body(request, state.max_body_bytes)
            operation = soap.soap_body_child(soap.parse_untrusted_xml(raw, state.max_body_bytes))
        except (BodyTooLarge, soap.UntrustedXmlError) as exc:
            state.stats.add("rejected")
            return registry_fault("INVALID_INPUT", str(exc) or "request rejected")
        if operation.tag != _q("getCertificates"):
            state.stats.add("rejected")
            return registry_fault("INVALID_INPUT", f"unknown operation {etree.QName(operation).localname}")
        decision, fault = await state.inject_faults(_injected_fault)
        if fault is not None:
            return fault
        holder = soap.child_text(operation, NATIONAL_CERTS_NS, "holderId") or ""
        if not _BRN.fullmatch(holder):
            state.stats.add("fault:INVALID_INPUT")
            return registry_fault("INVALID_INPUT", "holderId must be 10 digits")
        if not state.dataset.national_holder_known(holder):
            state.stats.add("fault:HOLDER_NOT_FOUND")
            return registry_fault("HOLDER_NOT_FOUND", f"no holder {holder}")
        if decision.kind == "malformed":
            state.stats.add("fault:malformed")
            return soap.malformed_response()
        wanted = {(e.text or "").strip() for e in operation.findall(_q("certificateType"))}
        state.stats.add("ok")
        return soap.soap_response(_response(state, holder, wanted))

    return Starlette(routes=[Route(SERVICE_PATH, service, methods=["GET", "POST"]), *control_routes(state)])


def _response(state: TwinState, holder: str, wanted: set[str]) -> etree._Element:
    response = etree.Element(_q("getCertificatesResponse"), nsmap={"nc": NATIONAL_CERTS_NS})
    etree.SubElement(response, _q("holderId")).text = holder
    supplier = state.dataset.find_supplier(holder)
    if supplier is not None:
        etree.SubElement(response, _q("holderName")).text = supplier.name
    etree.SubElement(response, _q("responseTime")).text = datetime.now(UTC).isoformat(timespec="seconds")
    for cert in sorted(state.dataset.national_certificates_of(holder), key=lambda c: c.number):
        if wanted and cert.type not in wanted:
            continue
        item = etree.SubElement(response, _q("certificate"))
        etree.SubElement(item, _q("type")).text = cert.type
        etree.SubElement(item, _q("number")).text = cert.number
        etree.SubElement(item, _q("issuer")).text = cert.issuer
        etree.SubElement(item, _q("status")).text = cert.status
        etree.SubElement(item, _q("validFrom")).text = cert.valid_from.isoformat()
        etree.SubElement(item, _q("validUntil")).text = cert.valid_until.isoformat()
        if cert.scope:
            etree.SubElement(item, _q("scope")).text = cert.scope
    return response
