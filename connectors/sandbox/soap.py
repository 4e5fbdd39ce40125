"""SOAP 1.1 plumbing for the SOAP twins: request parsing and envelope/fault builders.

Requests are untrusted: they go through the connectors' one hardened parser (``connectors.xmlsafe``),
so an entity bomb or an external-entity probe is answered with a fault without being expanded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from connectors.xmlsafe import UnsafeXmlError, XmlSyntaxError, parse_xml

__all__ = [
    "SOAP_ENV",
    "UntrustedXmlError",
    "build_envelope",
    "fault_response",
    "parse_untrusted_xml",
    "soap_response",
    "wsdl_response",
]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_DIR = Path(__file__).resolve().parent.parent / "wsdl"
_SOAP_ADDRESS = "{http://schemas.xmlsoap.org/wsdl/soap/}address"
_XML_CONTENT_TYPE = "text/xml; charset=utf-8"


class UntrustedXmlError(ValueError):
    """The request body is not a well-formed, DTD-free XML document within limits."""


def parse_untrusted_xml(body: bytes, max_bytes: int) -> etree._Element:
    try:
        return parse_xml(body, max_bytes=max_bytes)
    except (UnsafeXmlError, XmlSyntaxError) as exc:
        raise UntrustedXmlError(str(exc)) from None


def soap_body_child(envelope: etree._Element) -> etree._Element:
    """The single payload element of a SOAP 1.1 envelope."""
    if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
        raise UntrustedXmlError("not a SOAP 1.1 Envelope")
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    if body is None:
        raise UntrustedXmlError("no SOAP Body")
    children = [child for child in body if isinstance(child.tag, str)]
    if len(children) != 1:
        raise UntrustedXmlError("SOAP Body must hold exactly one element")
    return children[0]


def child_text(element: etree._Element, namespace: str, name: str) -> str | None:
    found = element.find(f"{{{namespace}}}{name}")
    if found is None:
        return None
    return (found.text or "").strip()


def build_envelope(payload: etree._Element) -> bytes:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"env": SOAP_ENV})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(payload)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def soap_response(payload: etree._Element) -> Response:
    return Response(build_envelope(payload), media_type=_XML_CONTENT_TYPE)


def fault_response(
    faultstring: str, faultcode: str = "env:Server", detail: etree._Element | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A SOAP 1.1 Fault; SOAP 1.1 over HTTP delivers every fault with status 500."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"env": SOAP_ENV})
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = faultcode
    etree.SubElement(fault, "faultstring").text = faultstring
    if detail is not None:
        etree.SubElement(fault, "detail").append(detail)
    content = bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))
    return Response(content, status_code=500, media_type=_XML_CONTENT_TYPE, headers=dict(headers or {}))


def malformed_response() -> Response:
    """A 200 whose body breaks off mid-element, as a proxy cutting a response would leave it."""
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{SOAP_ENV}"><env:Body><resp',
        media_type=_XML_CONTENT_TYPE,
    )


def wsdl_response(file_name: str, request: Request) -> Response:
    """Serve a WSDL with its soap:address pointed at this twin, so zeep calls us, not production."""
    tree = parse_xml((WSDL_DIR / file_name).read_bytes()).getroottree()
    location = str(request.url.replace(query="", fragment=""))
    for address in tree.iter(_SOAP_ADDRESS):
        address.set("location", location)
    content = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    return Response(content, media_type=_XML_CONTENT_TYPE)
