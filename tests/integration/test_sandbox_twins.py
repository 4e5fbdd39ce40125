"""Every sandbox twin over real loopback HTTP, through the clients the hub's connectors will use
(zeep from the served WSDL, httpx for REST)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.transports import Transport

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.nts import UNREGISTERED_MESSAGE
from connectors.sandbox.server import SandboxServer

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
VIES_NS = "urn:ec.europa.eu:taxud:vies:services:checkVat:types"
ZEEP_SETTINGS = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
                              xml_huge_tree=False)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(seed=11, suppliers=300)) as server:
        yield server


@pytest.fixture
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """A client per test; the sandbox is reset afterwards so no test sees another's faults or changes."""
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as client:
        yield client
        client.post("/_control/reset").raise_for_status()


def soap_client(wsdl_url: str) -> zeep.Client:
    transport = Transport(timeout=5, operation_timeout=5)  # type: ignore[no-untyped-call]
    return zeep.Client(wsdl_url, settings=ZEEP_SETTINGS, transport=transport)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def vies(sandbox: SandboxServer) -> zeep.Client:
    return soap_client(sandbox.endpoints["vies_wsdl"])


@pytest.fixture(scope="module")
def national(sandbox: SandboxServer) -> zeep.Client:
    return soap_client(sandbox.endpoints["national_certs_wsdl"])


def nts_key(sandbox: SandboxServer) -> dict[str, str]:
    return {"serviceKey": str(sandbox.api_keys["nts"])}


# -- VIES ---------------------------------------------------------------------------------------------
def test_vies_wsdl_points_at_the_twin(sandbox: SandboxServer, http: httpx.Client) -> None:
    wsdl = etree.fromstring(http.get("/vies/checkVatService", params={"wsdl": ""}).content)
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None and address.get("location") == sandbox.endpoints["vies_endpoint"]


def test_vies_valid_and_invalid_numbers(sandbox: SandboxServer, vies: zeep.Client, http: httpx.Client) -> None:
    valid = next(s.identifiers["eu_vat"] for s in sandbox.dataset.with_scenario("vies:valid")
                 if not s.identifiers["eu_vat"].startswith("DE"))
    answer = vies.service.checkVat(countryCode=valid[:2], vatNumber=valid[2:])
    assert answer.valid is True and answer.name and answer.name != "---"
    german = next(s.identifiers["eu_vat"] for s in sandbox.dataset.with_scenario("vies:valid")
                  if s.identifiers["eu_vat"].startswith("DE"))
    hidden = vies.service.checkVat(countryCode="DE", vatNumber=german[2:])
    assert hidden.valid is True and hidden.name == "---" and hidden.address == "---"
    invalid = next(s.identifiers["eu_vat"] for s in sandbox.dataset.with_scenario("vies:invalid"))
    answer = vies.service.checkVat(countryCode=invalid[:2], vatNumber=invalid[2:])
    assert answer.valid is False and not answer.name and not answer.address
    raw = http.post("/vies/checkVatService", content=_check_vat_body(valid[:2], valid[2:]),
                    headers={"Content-Type": "text/xml; charset=utf-8"})
    date_text = etree.fromstring(raw.content).findtext(f".//{{{VIES_NS}}}requestDate")
    assert date_text is not None and len(date_text) == 16 and date_text[10] in "+-"


def test_vies_approx_reports_name_match(sandbox: SandboxServer, vies: zeep.Client) -> None:
    vat = next(s.identifiers["eu_vat"] for s in sandbox.dataset.with_scenario("vies:valid")
               if s.identifiers["eu_vat"].startswith("FR"))
    record = sandbox.dataset.vat(vat[:2], vat[2:])
    assert record is not None
    answer = vies.service.checkVatApprox(countryCode="FR", vatNumber=vat[2:], traderName=record.name.title())
    assert answer.valid is True and answer.traderNameMatch == "1"


def test_vies_rejects_gr_and_bad_numbers_with_invalid_input(vies: zeep.Client) -> None:
    for country, number in (("GR", "094259216"), ("DE", "!")):
        with pytest.raises(Fault) as raised:
            vies.service.checkVat(countryCode=country, vatNumber=number)
        assert raised.value.message == "INVALID_INPUT"


def test_vies_injected_fault_is_a_soap_fault_with_http_500(vies: zeep.Client, http: httpx.Client) -> None:
    http.post("/vies/_control/faults", json={"error_rate": 1.0, "fault_code": "MS_UNAVAILABLE"}).raise_for_status()
    with pytest.raises(Fault) as raised:
        vies.service.checkVat(countryCode="DE", vatNumber="136695976")
    assert raised.value.message == "MS_UNAVAILABLE"
    raw = http.post("/vies/checkVatService", content=_check_vat_body("DE", "136695976"),
                    headers={"Content-Type": "text/xml"})
    assert raw.status_code == 500
    assert etree.fromstring(raw.content).findtext(f".//{{{SOAP_ENV}}}Fault/faultstring") == "MS_UNAVAILABLE"


def test_vies_outage_then_recovery(vies: zeep.Client, http: httpx.Client) -> None:
    http.post("/vies/_control/faults", json={"outage": True}).raise_for_status()
    with pytest.raises(Fault) as raised:
        vies.service.checkVat(countryCode="DE", vatNumber="136695976")
    assert raised.value.message == "SERVICE_UNAVAILABLE"
    http.post("/vies/_control/faults", json={"outage": False}).raise_for_status()
    assert vies.service.checkVat(countryCode="DE", vatNumber="136695976").valid is False


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:urn="urn:ec.europa.eu:taxud:vies:services:checkVat:types"><soapenv:Body><urn:checkVat>
<urn:countryCode>DE</urn:countryCode><urn:vatNumber>&lol5;</urn:vatNumber></urn:checkVat></soapenv:Body>
</soapenv:Envelope>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:urn="urn:ec.europa.eu:taxud:vies:services:checkVat:types"><soapenv:Body><urn:checkVat>
<urn:countryCode>DE</urn:countryCode><urn:vatNumber>&xxe;</urn:vatNumber></urn:checkVat></soapenv:Body>
</soapenv:Envelope>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["entity-bomb", "external-entity"])
def test_vies_rejects_hostile_xml_without_expanding_it(
    sandbox: SandboxServer, http: httpx.Client, body: bytes
) -> None:
    response = http.post("/vies/checkVatService", content=body, headers={"Content-Type": "text/xml"})
    assert response.status_code == 500
    assert len(response.content) < 1000
    assert b"lollol" not in response.content and b"root:" not in response.content
    fault = etree.fromstring(response.content).find(f".//{{{SOAP_ENV}}}Fault")
    assert fault is not None and fault.findtext("faultstring") == "INVALID_INPUT"
    assert http.get("/vies/_control/stats").json()["rejected"] == 1


def test_vies_refuses_an_oversized_body(http: httpx.Client) -> None:
    padding = b"<!-- " + b"x" * (300 * 1024) + b" -->"
    response = http.post("/vies/checkVatService", content=_check_vat_body("DE", "136695976") + padding,
                         headers={"Content-Type": "text/xml"})
    assert response.status_code == 500 and b"INVALID_INPUT" in response.content


def _check_vat_body(country: str, number: str) -> bytes:
    return (
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:urn="{VIES_NS}"><soapenv:Body><urn:checkVat>'
        f"<urn:countryCode>{country}</urn:countryCode><urn:vatNumber>{number}</urn:vatNumber>"
        "</urn:checkVat></soapenv:Body></soapenv:Envelope>"
    ).encode()


# -- national certificates -------------------------------------------------------------------------
def test_national_certificates_via_zeep(sandbox: SandboxServer, national: zeep.Client) -> None:
    snap = sandbox.dataset.snapshot()
    holder = next(iter(snap.national_certs.values())).holder_brn
    answer = national.service.getCertificates(holderId=holder)
    expected = {c.number: c for c in sandbox.dataset.national_certificates_of(holder)}
    assert answer.holderId == holder
    assert {c.number for c in answer.certificate} == set(expected)
    for cert in answer.certificate:
        assert cert.status == expected[cert.number].status and cert.validUntil == expected[cert.number].valid_until
    only_sme = national.service.getCertificates(holderId=holder, certificateType=["SME"])
    assert all(c.type == "SME" for c in only_sme.certificate)
    assert len(only_sme.certificate) == sum(1 for c in expected.values() if c.type == "SME")
    never_certified = next(b for b in sorted(snap.national_holders) if not sandbox.dataset.national_certificates_of(b))
    assert national.service.getCertificates(holderId=never_certified).certificate == []


def test_national_certificates_faults(sandbox: SandboxServer, national: zeep.Client, http: httpx.Client) -> None:
    unknown = next(i.value for i in sandbox.dataset.labelled_identifiers
                   if i.scheme == "kr_brn" and i.label == "unknown")
    with pytest.raises(Fault) as raised:
        national.service.getCertificates(holderId=unknown)
    assert raised.value.message == "HOLDER_NOT_FOUND" and raised.value.detail is not None
    with pytest.raises(Fault) as raised:
        national.service.getCertificates(holderId="12345")
    assert raised.value.message == "INVALID_INPUT"
    http.post("/national-certs/_control/faults", json={"outage": True}).raise_for_status()
    with pytest.raises(Fault) as raised:
        national.service.getCertificates(holderId=unknown)
    assert raised.value.message == "SERVICE_UNAVAILABLE"


# -- NTS -------------------------------------------------------------------------------------------
def test_nts_batch_of_100_and_item_counters(sandbox: SandboxServer, http: httpx.Client) -> None:
    http.delete("/nts/_control/stats")
    numbers = (list(sandbox.dataset.snapshot().nts) * 2)[:99]
    unregistered = next(i.value for i in sandbox.dataset.labelled_identifiers
                        if i.scheme == "kr_brn" and i.label == "unknown")
    response = http.post("/nts/status", params=nts_key(sandbox), json={"b_no": [*numbers, unregistered]})
    assert response.status_code == 200
    body = response.json()
    assert body["request_cnt"] == 100 and body["status_code"] == "OK" and body["match_cnt"] == 99
    last = body["data"][-1]
    assert last["b_no"] == unregistered and last["b_stt_cd"] == "" and last["tax_type"] == UNREGISTERED_MESSAGE
    stats = http.get("/nts/_control/stats").json()
    assert stats["requests"] == 1 and stats["items"] == 100


def test_nts_rejects_more_than_100_and_bad_keys(sandbox: SandboxServer, http: httpx.Client) -> None:
    too_many = http.post("/nts/status", params=nts_key(sandbox), json={"b_no": ["1010100001"] * 101})
    assert too_many.status_code == 413 and too_many.json()["status_code"] == "TOO_LARGE_REQUEST"
    bad_key = http.post("/nts/status", params={"serviceKey": "nope"}, json={"b_no": ["1010100001"]})
    assert bad_key.status_code == 401 and bad_key.json() == {"code": -4, "msg": "등록되지 않은 인증키 입니다."}
    header = http.post("/nts/status", json={"b_no": ["1010100001"]},
                       headers={"Authorization": f"Infuser {sandbox.api_keys['nts']}"})
    assert header.status_code == 200
    garbage = http.post("/nts/status", params=nts_key(sandbox), content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["status_code"] == "BAD_JSON_REQUEST"


def test_nts_validate(sandbox: SandboxServer, http: httpx.Client) -> None:
    record = next(iter(sandbox.dataset.snapshot().nts.values()))
    good = {"b_no": record.b_no, "start_dt": record.start_dt, "p_nm": record.p_nm}
    bad = {**good, "p_nm": "홍길동전"}
    body = http.post("/nts/validate", params=nts_key(sandbox), json={"businesses": [good, bad]}).json()
    assert body["valid_cnt"] == 1
    assert body["data"][0]["valid"] == "01" and body["data"][0]["status"]["b_stt_cd"] == record.b_stt_cd
    assert body["data"][1]["valid"] == "02"


def test_status_change_at_the_source_is_seen_on_the_next_fetch(sandbox: SandboxServer, http: httpx.Client) -> None:
    brn = sandbox.dataset.with_scenario("nts:active")[0].identifiers["kr_brn"]
    before = http.post("/nts/status", params=nts_key(sandbox), json={"b_no": [brn]}).json()["data"][0]
    assert before["b_stt_cd"] == "01"
    changed = http.patch(f"/nts/_control/records/{brn}", json={"b_stt_cd": "03", "end_dt": "20261125"})
    assert changed.status_code == 200
    after = http.post("/nts/status", params=nts_key(sandbox), json={"b_no": [brn]}).json()["data"][0]
    assert after["b_stt_cd"] == "03" and after["b_stt"] == "폐업자" and after["end_dt"] == "20261125"
    assert http.patch(f"/nts/_control/records/{brn}", json={"b_stt_cd": "99"}).status_code == 422


def test_nts_outage_then_recovery(sandbox: SandboxServer, http: httpx.Client) -> None:
    http.post("/nts/_control/faults", json={"outage": True}).raise_for_status()
    down = http.post("/nts/status", params=nts_key(sandbox), json={"b_no": ["1010100001"]})
    assert down.status_code == 503 and "Retry-After" in down.headers
    http.delete("/nts/_control/faults").raise_for_status()
    assert http.post("/nts/status", params=nts_key(sandbox), json={"b_no": ["1010100001"]}).status_code == 200


# -- GLEIF -----------------------------------------------------------------------------------------
def test_gleif_record_and_unknown(sandbox: SandboxServer, http: httpx.Client) -> None:
    lei = sandbox.dataset.with_scenario("gleif:lapsed")[0].identifiers["lei"]
    response = http.get(f"/gleif/api/v1/lei-records/{lei}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/vnd.api+json")
    data = response.json()["data"]
    assert data["type"] == "lei-records" and data["id"] == lei
    assert data["attributes"]["registration"]["status"] == "LAPSED"
    assert data["attributes"]["entity"]["legalAddress"]["addressNumber"] is None
    unknown = next(i.value for i in sandbox.dataset.labelled_identifiers if i.scheme == "lei" and i.label == "unknown")
    missing = http.get(f"/gleif/api/v1/lei-records/{unknown}")
    assert missing.status_code == 404 and missing.json()["errors"][0]["status"] == "404"


def test_gleif_malformed_body_injection(sandbox: SandboxServer, http: httpx.Client) -> None:
    lei = sandbox.dataset.with_scenario("gleif:issued")[0].identifiers["lei"]
    http.post("/gleif/_control/faults", json={"malformed_rate": 1.0}).raise_for_status()
    response = http.get(f"/gleif/api/v1/lei-records/{lei}")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


# -- Companies House -----------------------------------------------------------------------------
def test_companies_house_auth_profile_and_not_found(sandbox: SandboxServer, http: httpx.Client) -> None:
    number = sandbox.dataset.with_scenario("companies_house:dissolved")[0].identifiers["gb_company_number"]
    key = str(sandbox.api_keys["companies_house"])
    assert http.get(f"/companies-house/company/{number}").status_code == 401
    assert http.get(f"/companies-house/company/{number}", auth=("wrong", "")).status_code == 401
    profile = http.get(f"/companies-house/company/{number}", auth=(key, ""))
    assert profile.status_code == 200
    assert profile.json()["company_status"] == "dissolved" and profile.json()["date_of_cessation"]
    unknown = next(i.value for i in sandbox.dataset.labelled_identifiers if i.scheme == "gb_company_number")
    missing = http.get(f"/companies-house/company/{unknown}", auth=(key, ""))
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"type": "ch:service", "error": "company-profile-not-found"}]}


def test_companies_house_rate_limit_injection(sandbox: SandboxServer, http: httpx.Client) -> None:
    http.post("/companies-house/_control/faults",
              json={"error_rate": 1.0, "fault_code": "429", "retry_after_s": 7}).raise_for_status()
    limited = http.get("/companies-house/company/00000001", auth=(str(sandbox.api_keys["companies_house"]), ""))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"


# -- IAF -------------------------------------------------------------------------------------------
def test_iaf_certificates_companies_and_problems(sandbox: SandboxServer, http: httpx.Client) -> None:
    headers = {"x-http-authorization": str(sandbox.api_keys["iaf"])}
    withdrawn = next(c for c in sandbox.dataset.snapshot().iaf.values() if c.status == "withdrawn")
    unauthorised = http.get(f"/iaf/certificate/{withdrawn.cert_id}")
    assert unauthorised.status_code == 401 and unauthorised.json()["code"] == "unauthorized"
    assert unauthorised.headers["content-type"].startswith("application/problem+json")
    cert = http.get(f"/iaf/certificate/{withdrawn.cert_id}", headers=headers).json()
    assert cert["certification_status"] == "withdrawn"
    assert cert["certification_standards_scheme"][0]["standard_name"] == withdrawn.standard
    ce_ids = sorted({c.ce_id for c in sandbox.dataset.snapshot().iaf.values()})[:5]
    companies = http.get(f"/iaf/company/{','.join([*ce_ids, 'unknown-ce'])}", headers=headers).json()
    assert [c["ce_id"] for c in companies] == ce_ids
    assert http.get("/iaf/certificate/NOPE-1", headers=headers).json()["code"] == "not_found"
    too_many = http.get(f"/iaf/company/{','.join(['x'] * 101)}", headers=headers)
    assert too_many.status_code == 400 and too_many.json()["code"] == "too_many_ids"
    http.post("/iaf/_control/faults", json={"error_rate": 1.0, "fault_code": "insufficient_credit"})
    assert http.get(f"/iaf/certificate/{withdrawn.cert_id}", headers=headers).json()["code"] == "insufficient_credit"


def test_iaf_certificate_withdrawn_at_runtime(sandbox: SandboxServer, http: httpx.Client) -> None:
    headers = {"x-http-authorization": str(sandbox.api_keys["iaf"])}
    active = next(c for c in sandbox.dataset.snapshot().iaf.values() if c.status == "active")
    http.patch(f"/iaf/_control/records/{active.cert_id}", json={"status": "withdrawn"}).raise_for_status()
    cert = http.get(f"/iaf/certificate/{active.cert_id}", headers=headers).json()
    assert cert["certification_status"] == "withdrawn"


# -- cross-cutting ---------------------------------------------------------------------------------
def test_injected_timeout_outlasts_the_client(sandbox: SandboxServer, http: httpx.Client) -> None:
    http.post("/gleif/_control/faults", json={"timeout_rate": 1.0, "hang_s": 1.5}).raise_for_status()
    lei = sandbox.dataset.with_scenario("gleif:issued")[0].identifiers["lei"]
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"/gleif/api/v1/lei-records/{lei}", timeout=0.2)


def test_seeded_error_injection_repeats(sandbox: SandboxServer, http: httpx.Client) -> None:
    lei = sandbox.dataset.with_scenario("gleif:issued")[0].identifiers["lei"]

    def run() -> list[int]:
        http.post("/gleif/_control/faults", json={"error_rate": 0.5, "seed": 99}).raise_for_status()
        return [http.get(f"/gleif/api/v1/lei-records/{lei}").status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second and set(first) == {200, 500}


def test_supplier_lookup_by_any_identifier(sandbox: SandboxServer, http: httpx.Client) -> None:
    supplier = next(s for s in sandbox.dataset.suppliers if len(s.identifiers) >= 3)
    for value in supplier.identifiers.values():
        assert http.get(f"/_control/suppliers/{value}").json()["supplier_id"] == supplier.supplier_id
    assert http.get("/_control/suppliers/0000000000").status_code == 404
    assert set(http.get("/").json()) == set(sandbox.endpoints)
