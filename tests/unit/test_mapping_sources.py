"""Every shipped mapping on realistic payloads written from the contracts (../shared/contracts)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.config import PROJECT_ROOT
from mappings.engine import Credential, SourceMapping, load_mapping
from tests.support.connectors import apply_raw

FETCHED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def mapping(name: str) -> SourceMapping:
    return load_mapping(PROJECT_ROOT / "mappings" / f"{name}.yaml")


def apply(name: str, raw: bytes | str | object, identifier: str) -> list[Credential]:
    if not isinstance(raw, bytes | str):
        raw = json.dumps(raw, ensure_ascii=False)
    body = raw.encode() if isinstance(raw, str) else raw
    return apply_raw(mapping(name), body, identifier=identifier, fetched_at=FETCHED, response_sha256="f" * 64)


NTS = {
    "request_cnt": 4,
    "match_cnt": 3,
    "status_code": "OK",
    "data": [
        {
            "b_no": "1234567891",
            "b_stt": "계속사업자",
            "b_stt_cd": "01",
            "tax_type": "부가가치세 일반과세자",
            "tax_type_cd": "01",
            "end_dt": "",
            "utcc_yn": "N",
            "tax_type_change_dt": "",
            "invoice_apply_dt": "",
            "rbf_tax_type": "해당없음",
            "rbf_tax_type_cd": "99",
        },
        {
            "b_no": "2208162517",
            "b_stt": "휴업자",
            "b_stt_cd": "02",
            "tax_type": "부가가치세 간이과세자",
            "tax_type_cd": "02",
            "end_dt": "",
            "utcc_yn": "N",
            "tax_type_change_dt": "20230701",
            "invoice_apply_dt": "20240701",
            "rbf_tax_type": "해당없음",
            "rbf_tax_type_cd": "99",
        },
        {
            "b_no": "1048137225",
            "b_stt": "폐업자",
            "b_stt_cd": "03",
            "tax_type": "부가가치세 일반과세자",
            "tax_type_cd": "01",
            "end_dt": "20250131",
            "utcc_yn": "Y",
            "tax_type_change_dt": "",
            "invoice_apply_dt": "",
            "rbf_tax_type": "해당없음",
            "rbf_tax_type_cd": "99",
        },
        {
            "b_no": "1111111119",
            "b_stt": "",
            "b_stt_cd": "",
            "tax_type": "국세청에 등록되지 않은 사업자등록번호입니다.",
            "tax_type_cd": "",
            "end_dt": "",
            "utcc_yn": "",
            "tax_type_change_dt": "",
            "invoice_apply_dt": "",
            "rbf_tax_type": "",
            "rbf_tax_type_cd": "",
        },
    ],
}


def test_nts_one_credential_per_business_number_with_value_map_and_dates() -> None:
    creds = {c.subject: c for c in apply("nts", NTS, "batch")}
    assert {s: c.status for s, c in creds.items()} == {
        "1234567891": "active",
        "2208162517": "suspended",
        "1048137225": "closed",
        "1111111119": "unregistered",
    }
    closed = creds["1048137225"]
    assert closed.type == "tax_status" and closed.source == "nts"
    assert closed.attributes["closed_on"] == "2025-01-31" and closed.attributes["unit_taxation_closure"] is True
    assert creds["2208162517"].attributes["invoice_applies_from"] == "2024-07-01"
    assert creds["1111111119"].attributes["tax_type_code"] is None
    # validity: a week from the fetch
    assert closed.valid_from == FETCHED and closed.valid_until == FETCHED + timedelta(days=7)
    assert closed.evidence.pointer == "data[][2]" and closed.evidence.response_sha256 == "f" * 64


def test_nts_unknown_code_maps_to_default() -> None:
    [cred] = apply("nts", {"data": [{"b_no": "1234567891", "b_stt_cd": "09"}]}, "1234567891")
    assert cred.status == "unknown"


def vies_body(valid: str, name: str, address: str, vat: str = "123456788") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header/><env:Body>
<ns2:checkVatResponse xmlns:ns2="urn:ec.europa.eu:taxud:vies:services:checkVat:types">
<ns2:countryCode>DE</ns2:countryCode><ns2:vatNumber>{vat}</ns2:vatNumber>
<ns2:requestDate>2022-09-04+02:00</ns2:requestDate><ns2:valid>{valid}</ns2:valid>
<ns2:name>{name}</ns2:name><ns2:address>{address}</ns2:address>
</ns2:checkVatResponse></env:Body></env:Envelope>"""


def test_vies_valid_number() -> None:
    [cred] = apply("vies", vies_body("true", " ACME GMBH ", "Musterstr. 1\n10115 Berlin"), "DE123456788")
    assert (cred.type, cred.subject, cred.status) == ("vat_registration", "DE123456788", "valid")
    assert cred.attributes["name"] == "ACME GMBH" and cred.attributes["request_date"] == "2022-09-04"
    assert cred.valid_until == FETCHED + timedelta(days=30)
    assert cred.evidence.pointer.endswith("checkVatResponse")


def test_vies_invalid_number_with_empty_echo_and_undisclosed_name() -> None:
    [cred] = apply("vies", vies_body("false", "---", "---", vat=""), "DE999999999")
    assert cred.subject == "DE999999999" and cred.status == "invalid"
    assert cred.attributes["name"] is None and cred.attributes["vat_number"] is None


GLEIF = {
    "meta": {"goldenCopy": {"publishDate": "2026-02-28T08:00:00Z"}},
    "data": {
        "type": "lei-records",
        "id": "5299000J2N45DDNE4Y28",
        "attributes": {
            "lei": "5299000J2N45DDNE4Y28",
            "entity": {
                "legalName": {"name": "Beispiel Holding GmbH", "language": "de"},
                "otherNames": [],
                "legalAddress": {
                    "language": "de",
                    "addressLines": ["Hauptstraße 5"],
                    "addressNumber": None,
                    "city": "München",
                    "region": "DE-BY",
                    "country": "DE",
                    "postalCode": "80331",
                },
                "registeredAt": {"id": "RA000242", "other": None},
                "registeredAs": "HRB 123456",
                "jurisdiction": "DE",
                "category": "GENERAL",
                "legalForm": {"id": "2HBR", "other": None},
                "status": "ACTIVE",
                "expiration": {"date": None, "reason": None},
                "creationDate": "2001-05-14T00:00:00Z",
            },
            "registration": {
                "initialRegistrationDate": "2014-02-10T14:05:00Z",
                "lastUpdateDate": "2025-12-01T09:00:00+01:00",
                "status": "ISSUED",
                "nextRenewalDate": "2026-12-01T00:00:00Z",
                "managingLou": "5299000J2N45DDNE4Y28",
                "corroborationLevel": "FULLY_CORROBORATED",
            },
        },
        "relationships": {},
        "links": {"self": "https://api.gleif.org/api/v1/lei-records/5299000J2N45DDNE4Y28"},
    },
}


def test_gleif_lei_valid_until_next_renewal() -> None:
    [cred] = apply("gleif", GLEIF, "5299000J2N45DDNE4Y28")
    assert (cred.type, cred.status, cred.subject) == ("lei_registration", "issued", "5299000J2N45DDNE4Y28")
    assert cred.valid_until == datetime(2026, 12, 1, tzinfo=UTC)
    assert cred.attributes["legal_address"]["city"] == "München"
    assert cred.attributes["entity_status"] == "active" and cred.attributes["last_update_date"] == "2025-12-01"


def test_gleif_lapsed() -> None:
    lapsed = json.loads(json.dumps(GLEIF))
    lapsed["data"]["attributes"]["registration"]["status"] = "LAPSED"
    lapsed["data"]["attributes"]["registration"]["nextRenewalDate"] = "2025-06-30T00:00:00Z"
    [cred] = apply("gleif", lapsed, "5299000J2N45DDNE4Y28")
    assert cred.status == "lapsed" and cred.valid_until is not None and cred.valid_until <= FETCHED


CH = {
    "company_name": "EXAMPLE TRADING LIMITED",
    "company_number": "09446231",
    "company_status": "liquidation",
    "date_of_creation": "2015-02-18",
    "type": "ltd",
    "jurisdiction": "england-wales",
    "sic_codes": ["46900"],
    "registered_office_address": {"address_line_1": "1 High Street", "locality": "Leeds", "postal_code": "LS1 1AA"},
    "accounts": {"overdue": True},
    "confirmation_statement": {"overdue": False},
    "has_insolvency_history": True,
    "etag": "abc",
    "links": {"self": "/company/09446231"},
}


@pytest.mark.parametrize(
    ("raw_status", "status"),
    [("active", "active"), ("dissolved", "closed"), ("liquidation", "insolvency"), ("registered", "registered")],
)
def test_companies_house_status_map_keeps_unknown_values(raw_status: str, status: str) -> None:
    [cred] = apply("companies_house", {**CH, "company_status": raw_status}, "09446231")
    assert cred.type == "company_registration" and cred.status == status
    assert cred.attributes["company_status"] == raw_status


def test_companies_house_attributes() -> None:
    [cred] = apply("companies_house", CH, "09446231")
    assert cred.attributes["sic_codes"] == ["46900"] and cred.attributes["has_insolvency_history"] is True
    assert cred.attributes["registered_office"]["postal_code"] == "LS1 1AA"
    assert cred.attributes["created_on"] == "2015-02-18" and cred.attributes["ceased_on"] is None


def iaf_cert(number: str, standard: str, status: str, expiry: str) -> dict[str, object]:
    return {
        "certification_number": number,
        "certification_status": status,
        "certification_scope": "Design of X",
        "certification_standards_scheme": [
            {"standard_name": standard, "scheme_name": "QMS", "is_accredited_mla": True}
        ],
        "certification_bodies_name": "CB Ltd",
        "accreditation_bodies_name": "UKAS",
        "original_certification_date": "2023-01-10",
        "expiry_date": expiry,
        "certified_entities": [{"ce_id": "ce-1", "name": "Example", "country": "GB"}],
        "sites": [],
        "updated_at": "2025-11-01T00:00:00Z",
    }


def test_iaf_one_credential_per_certificate_valid_until_expiry() -> None:
    body = [
        {
            "ce_id": "ce-1",
            "name": "Example",
            "country": "GB",
            "certificates": [
                iaf_cert("Q-1", "ISO 9001:2015", "active", "2027-01-09"),
                iaf_cert("E-2", "ISO 14001:2015", "Withdrawn", "2026-05-01"),
            ],
        }
    ]
    q, e = apply("iaf", body, "ce-1")
    assert (q.type, q.status, q.attributes["scheme"], q.attributes["standard"]) == (
        "management_system_certificate",
        "active",
        "ISO 9001",
        "ISO 9001:2015",
    )
    assert q.valid_until == datetime(2027, 1, 10, tzinfo=UTC) and q.attributes["accredited"] is True
    assert e.status == "withdrawn" and e.attributes["scheme"] == "ISO 14001"
    assert q.evidence.pointer == "[].certificates[][0]"


NATIONAL = """<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<nc:getCertificatesResponse xmlns:nc="urn:g2bhub:national-certificates:v1">
<nc:holderId>1234567891</nc:holderId><nc:holderName>(주)예시</nc:holderName>
<nc:responseTime>2026-03-01T09:30:00+09:00</nc:responseTime>
<nc:certificates>
<nc:certificate><nc:type>SME</nc:type><nc:number>SME-1</nc:number><nc:issuer>중소벤처기업부</nc:issuer>
<nc:status>valid</nc:status><nc:validFrom>2025-04-01</nc:validFrom><nc:validUntil>2026-03-31</nc:validUntil>
</nc:certificate>
<nc:certificate><nc:type>ISO9001</nc:type><nc:number>ISO-2</nc:number><nc:issuer>KAB</nc:issuer>
<nc:status>revoked</nc:status><nc:validFrom>2024-01-01+09:00</nc:validFrom>
<nc:validUntil xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/>
<nc:scope>Furniture</nc:scope></nc:certificate>
</nc:certificates></nc:getCertificatesResponse></soap:Body></soap:Envelope>"""


def test_national_certificates_each_with_kind_and_validity() -> None:
    sme, iso = apply("national_certs", NATIONAL, "1234567891")
    assert (sme.type, sme.subject, sme.status, sme.attributes["kind"]) == (
        "national_certificate",
        "1234567891",
        "valid",
        "SME",
    )
    assert sme.valid_from == datetime(2025, 4, 1, tzinfo=UTC)
    assert sme.valid_until == datetime(2026, 4, 1, tzinfo=UTC)  # through 31 March (valid_until is exclusive)
    assert iso.status == "revoked" and iso.valid_until is None and iso.attributes["scope"] == "Furniture"
    assert iso.attributes["holder_name"] == "(주)예시" and iso.attributes["valid_from"] == "2024-01-01"


def test_national_certificates_without_list_wrapper_and_empty_list() -> None:
    unwrapped = NATIONAL.replace("<nc:certificates>", "").replace("</nc:certificates>", "")
    assert len(apply("national_certs", unwrapped, "1234567891")) == 2
    empty = (
        NATIONAL.split("<nc:certificates>")[0]
        + "<nc:certificates/></nc:getCertificatesResponse></soap:Body></soap:Envelope>"
    )
    assert apply("national_certs", empty, "1234567891") == []


def test_dates_are_json_friendly_in_attributes() -> None:
    [cred] = apply("gleif", GLEIF, "5299000J2N45DDNE4Y28")
    json.dumps(cred.attributes)
    assert date.fromisoformat(cred.attributes["next_renewal_date"]) == date(2026, 12, 1)
