"""Generic SOAP connector: WSDL-driven envelopes, fault classification table, hostile XML, against a
scripted loopback server speaking SOAP 1.1 as VIES and the national registry do."""

from __future__ import annotations

import pytest
from lxml import etree

from connectors.config import PROJECT_ROOT, ConnectorsConfig
from connectors.errors import NotFoundUpstream, PermanentUpstreamError, TransientUpstreamError, UpstreamAuthError
from connectors.registry import build_connectors
from tests.support.connectors import VIES_FAULTS, InMemoryCallRecorder, Reply, ScriptedServer, build_vies

NC_WSDL = str(PROJECT_ROOT / "connectors" / "wsdl" / "national_certificates.wsdl")
NC_FAULTS = {"HOLDER_NOT_FOUND": "not_found", "INVALID_INPUT": "permanent", "SERVICE_UNAVAILABLE": "transient"}
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
VIES_OK = f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="{ENV}"><env:Body>
<ns2:checkVatResponse xmlns:ns2="urn:ec.europa.eu:taxud:vies:services:checkVat:types">
<ns2:countryCode>DE</ns2:countryCode><ns2:vatNumber>123456788</ns2:vatNumber>
<ns2:requestDate>2022-09-04+02:00</ns2:requestDate><ns2:valid>true</ns2:valid>
<ns2:name>ACME GMBH</ns2:name><ns2:address>Musterstr. 1, Berlin</ns2:address>
</ns2:checkVatResponse></env:Body></env:Envelope>""".encode()


def fault(faultstring: str, faultcode: str = "env:Server") -> Reply:
    body = (
        f'<?xml version="1.0"?><env:Envelope xmlns:env="{ENV}"><env:Body><env:Fault>'
        f"<faultcode>{faultcode}</faultcode><faultstring>{faultstring}</faultstring>"
        "</env:Fault></env:Body></env:Envelope>"
    ).encode()
    return Reply(500, body, content_type="text/xml; charset=utf-8")


def test_envelope_is_built_from_the_wsdl_and_sent_to_the_configured_endpoint() -> None:
    with ScriptedServer([Reply(200, VIES_OK, content_type="text/xml")]) as server:
        registry = build_vies(server.url + "/vies/checkVatService")
        result = registry["vies"].fetch("DE123456788", purpose="registration", requested_by="org-1")
        [seen] = server.requests
    assert seen.path == "/vies/checkVatService"  # not the WSDL's ec.europa.eu address
    assert seen.headers["Content-Type"].startswith("text/xml") and seen.headers["SOAPAction"] == '""'
    body = etree.fromstring(seen.body)
    ns = {"t": "urn:ec.europa.eu:taxud:vies:services:checkVat:types"}
    assert body.findtext(".//t:countryCode", namespaces=ns) == "DE"
    assert body.findtext(".//t:vatNumber", namespaces=ns) == "123456788"
    assert result.raw == VIES_OK and result.http_status == 200 and result.attempts == 1


@pytest.mark.parametrize(("faultstring", "outcome"), sorted(VIES_FAULTS.items()))
def test_vies_fault_classification(faultstring: str, outcome: str) -> None:
    with ScriptedServer([fault(faultstring)]) as server:
        registry = build_vies(server.url)
        with pytest.raises(PermanentUpstreamError if outcome == "permanent" else TransientUpstreamError) as caught:
            registry["vies"].fetch("DE123456788", purpose="p", requested_by="o")
        assert caught.value.code == faultstring and caught.value.http_status == 500
        assert server.count == (1 if outcome == "permanent" else 3)


@pytest.mark.parametrize(
    ("faultstring", "faultcode", "error", "attempts"),
    [
        ("HOLDER_NOT_FOUND", "env:Client", NotFoundUpstream, 1),
        ("INVALID_INPUT", "env:Client", PermanentUpstreamError, 1),
        ("SERVICE_UNAVAILABLE", "env:Server", TransientUpstreamError, 3),
        ("SOMETHING_NEW", "env:Server", TransientUpstreamError, 3),  # unknown server fault: default
        ("SOMETHING_NEW", "env:Client", PermanentUpstreamError, 1),  # unknown client fault: our fault
    ],
)
def test_national_certs_fault_classification(faultstring: str, faultcode: str, error: type, attempts: int) -> None:
    entry = {
        "kind": "soap",
        "wsdl": NC_WSDL,
        "operation": "getCertificates",
        "identifier_pattern": "^[0-9]{10}$",
        "arguments": {"holderId": "{identifier}"},
        "fault_codes": NC_FAULTS,
    }
    with ScriptedServer([fault(faultstring, faultcode)]) as server:
        registry = build_connectors(
            ConnectorsConfig(systems={"nc": {**entry, "endpoint": server.url}}),
            recorder=InMemoryCallRecorder(),
            sleep=lambda _s: None,
        )
        with pytest.raises(error) as caught:
            registry["nc"].fetch("1234567890", purpose="p", requested_by="o")
        assert type(caught.value) is error and server.count == attempts


def test_identifier_is_checked_before_the_envelope_is_built() -> None:
    with ScriptedServer() as server:
        registry = build_vies(server.url)
        with pytest.raises(PermanentUpstreamError) as caught:
            registry["vies"].fetch("de<x/>", purpose="p", requested_by="o")
        assert caught.value.code == "invalid_identifier" and server.count == 0


HOSTILE = {
    "entity_bomb": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><env:Envelope xmlns:env="'
    + ENV.encode()
    + b'"><env:Body>&lol3;</env:Body></env:Envelope>',
    "external_entity": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<env:Envelope xmlns:env="' + ENV.encode() + b'"><env:Body>&xxe;</env:Body></env:Envelope>',
}


def test_an_html_page_with_a_doctype_is_an_unreadable_reply_not_an_attack() -> None:
    page = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon</body></html>"
    with ScriptedServer([Reply(200, page, content_type="text/html; charset=utf-8")]) as server:
        registry = build_vies(server.url)
        with pytest.raises(TransientUpstreamError) as caught:
            registry["vies"].fetch("DE123456788", purpose="p", requested_by="o")
        assert caught.value.code == "unreadable_reply"
    # An entity declaration stays hostile, whatever the content type says.
    with ScriptedServer([Reply(200, HOSTILE["external_entity"], content_type="text/html")]) as server:
        registry = build_vies(server.url)
        with pytest.raises(PermanentUpstreamError) as hostile:
            registry["vies"].fetch("DE123456788", purpose="p", requested_by="o")
        assert hostile.value.code == "unsafe_response"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_xml_is_rejected_permanently(name: str) -> None:
    with ScriptedServer([Reply(200, HOSTILE[name], content_type="text/xml")]) as server:
        registry = build_vies(server.url)
        with pytest.raises(PermanentUpstreamError) as caught:
            registry["vies"].fetch("DE123456788", purpose="p", requested_by="o")
        assert caught.value.code == "unsafe_response" and server.count == 1
        assert "root:" not in str(caught.value)


def test_oversize_and_truncated_soap_bodies() -> None:
    padding = b"<!-- " + b"x" * 10_000 + b" -->"
    with ScriptedServer([Reply(200, VIES_OK + padding, content_type="text/xml")]) as server:
        registry = build_vies(server.url, max_response_bytes=4096)
        with pytest.raises(PermanentUpstreamError) as caught:
            registry["vies"].fetch("DE123456788", purpose="p", requested_by="o")
        assert caught.value.code == "response_too_large"
    with ScriptedServer([Reply(200, VIES_OK[:200], content_type="text/xml")]) as server:
        registry = build_vies(server.url)
        with pytest.raises(TransientUpstreamError) as caught_t:
            registry["vies"].fetch("DE123456788", purpose="p", requested_by="o")
        assert caught_t.value.code == "malformed_response" and server.count == 3


def test_non_xml_error_page_is_classified_by_status() -> None:
    with ScriptedServer([Reply(502, b"<html>Bad gateway", content_type="text/html")]) as server:
        registry = build_vies(server.url)
        with pytest.raises(TransientUpstreamError) as caught:
            registry["vies"].fetch("DE123456788", purpose="p", requested_by="o")
        assert caught.value.code == "http_502" and server.count == 3


def test_unknown_operation_fails_at_build_time() -> None:
    with pytest.raises(ValueError, match="noSuchOp"):
        build_vies("http://127.0.0.1:9", operation="noSuchOp")


def test_a_soap_service_refusing_the_key_is_misconfigured_not_the_identifiers_fault() -> None:
    client_fault = fault("Authentication failed", "env:Client")
    refusals = [Reply(401, client_fault.body, content_type="text/xml"),  # a fault carried by 401
                Reply(403, b"<html>Forbidden", content_type="text/html")]  # a proxy's page
    for reply in refusals:
        with ScriptedServer([reply]) as server:
            registry = build_vies(server.url)
            with pytest.raises(UpstreamAuthError) as caught:
                registry["vies"].fetch("DE123456788", purpose="p", requested_by="o")
            assert caught.value.outcome == "misconfigured" and server.count == 1
            assert set(registry.misconfigured()) == {"vies"}
