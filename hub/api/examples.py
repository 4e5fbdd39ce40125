"""Request examples for the OpenAPI document: one per request body, so /docs opens every write with a
body that works as it stands (each JSON example validates against its route's body model; the tests
check that). Keyed by the route's function name; :func:`document_examples` puts them on the routes."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.routing import APIRoute

__all__ = ["REQUEST_EXAMPLES", "document_examples"]

_NOTICE: dict[str, Any] = {
    "title": "Road resurfacing in Jongno-gu",
    "description": "Resurfacing of 12 km of district roads, including drainage works",
    "category": "works",
    "classifications": [{"scheme": "CPV", "code": "45233140-2"}],
    "delivery_region": "KR-11",
    "estimated_value": "1250000000",
    "currency": "KRW",
    "procedure": "open",
    "dates": {
        "published": "2026-03-02T09:00:00+09:00",
        "clarification_deadline": "2026-03-09T18:00:00+09:00",
        "submission_deadline": "2026-03-16T10:00:00+09:00",
        "opening": "2026-03-16T11:00:00+09:00",
    },
    "lots": [{"id": "L1", "title": "North section", "value": "700000000"}],
    "eligibility": [{"kind": "national_certificate", "type": "SME"}],
    "documents": [{"title": "Specification", "url": "https://files.example.kr/spec.pdf"}],
    "buyer": {"id": "KR-GOV-3000000", "name": "Jongno-gu Office"},
}

_PPS_ITEM: dict[str, str] = {
    "bidNtceNo": "R26BK00012345",
    "bidNtceOrd": "000",
    "ntceKindNm": "등록공고",
    "bsnsDivNm": "공사",
    "bidNtceDt": "2026-03-03 09:30:12",
    "bidNtceNm": "2026년 관내 도로 재포장 공사",
    "ntceInsttCd": "6110000",
    "ntceInsttNm": "서울특별시",
    "dminsttCd": "3000000",
    "dminsttNm": "서울특별시 종로구",
    "bidMethdNm": "전자입찰",
    "cntrctCnclsMthdNm": "제한경쟁",
    "bidBeginDt": "2026-03-10 09:00:00",
    "bidClseDt": "2026-03-14 10:00:00",
    "opengDt": "2026-03-14 11:00:00",
    "presmptPrce": "1250000000",
    "prtcptLmtRgnNm": "서울특별시",
    "indstrytyLmtYn": "Y",
}

_OCDS_PACKAGE: dict[str, Any] = {
    "uri": "https://tenders.example.org/ocds/2026-0042.json",
    "publishedDate": "2026-04-02T09:00:00Z",
    "version": "1.1",
    "publisher": {"name": "Example Procurement Portal"},
    "releases": [
        {
            "ocid": "ocds-abc123-2026-0042",
            "id": "2026-0042-tender-1",
            "date": "2026-04-02T09:00:00Z",
            "tag": ["tender"],
            "initiationType": "tender",
            "buyer": {"id": "EX-GOV-77", "name": "Example City Council"},
            "tender": {
                "id": "2026-0042",
                "title": "School meals, 2026-2027",
                "status": "active",
                "mainProcurementCategory": "services",
                "procurementMethod": "open",
                "items": [{"id": "1", "classification": {"scheme": "CPV", "id": "55524000-9"}}],
                "value": {"amount": 480000, "currency": "EUR"},
                "tenderPeriod": {"startDate": "2026-04-02T09:00:00Z", "endDate": "2026-05-04T12:00:00Z"},
            },
        }
    ],
}

_CSV = (
    "title,category,classifications,delivery_region,estimated_value,currency,published,submission_deadline\n"
    'Office chairs,goods,CPV:39113000-7,KR-30,"84,500,000",KRW,2026-04-01T10:00:00+09:00,'
    "2026-04-14T10:00:00+09:00\n"
)

JSON = "application/json"

REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    # organisations and keys
    "create_organisation": {
        JSON: {"name": "Seoul Metropolitan Government", "kind": "institution", "key_label": "publishing system"}
    },
    "issue_key": {JSON: {"label": "nightly PPS import", "scopes": ["notices:write"]}},
    "replay_dead_letters": {JSON: {"ids": [42, 43]}},
    # suppliers
    "register": {
        JSON: {
            "identifiers": {"kr_brn": "5647276302", "lei": "529900T8BM49AURSDO55"},
            "legal_name": "Hanbit Engineering Co., Ltd.",
            "consent": True,
        }
    },
    "retry_fetch": {JSON: {"reason": "the NTS service key was renewed"}},
    "request_challenge": {JSON: {"scheme": "kr_brn"}},
    "submit_proof": {
        JSON: {
            "challenge_id": "0f6b3c1e-8a52-4f0e-9a47-3d0c2b1f9e11",
            "method": "x509",
            "certificate_chain": "-----BEGIN CERTIFICATE-----\nMIIB…\n-----END CERTIFICATE-----\n",
            "signature": "MEUCIQDx…",
        }
    },
    "approve": {
        JSON: {
            "scheme": "kr_brn",
            "evidence": "registration certificate checked against the NTS record",
            "reference": "TICKET-2026-0142",
            "approved_by": "J. Kim, supplier desk",
        }
    },
    "release_claim": {JSON: {"reason": "the company was dissolved; its number is free again"}},
    "transfer_claim": {
        JSON: {
            "reason": "merger: the number passed to the acquiring company",
            "to_org_id": "7d9f2c4a-1b3e-4f5a-9c8d-2e1f0a3b4c5d",
        }
    },
    "query_eligibility": {
        JSON: {"requirements": [{"kind": "national_certificate", "type": "SME"}], "on": "2026-03-16"}
    },
    # notices
    "publish_notice": {JSON: _NOTICE},
    "amend_notice": {
        JSON: {
            "reason": "deadline extended",
            "changes": {
                "dates": {"submission_deadline": "2026-03-20T10:00:00+09:00", "opening": "2026-03-20T11:00:00+09:00"}
            },
        }
    },
    "cancel_notice": {JSON: {"reason": "budget withdrawn"}},
    "import_pps": {JSON: {"items": [_PPS_ITEM]}},
    "import_ocds": {JSON: _OCDS_PACKAGE},
    "bulk_publish": {"text/csv": _CSV, "multipart/form-data": {"file": _CSV}},
    # subscriptions
    "create_subscription": {
        JSON: {
            "name": "Seoul works",
            "filter": {"categories": ["works"], "regions": ["KR-11"]},
            "channel": {"type": "webhook", "url": "https://agency.example.kr/hooks/g2b"},
        }
    },
    "update_subscription": {JSON: {"status": "active", "catch_up": False}},
    "replay_deliveries": {JSON: {"delivery_ids": [101, 102]}},
    # batched webhook endpoints
    "register_endpoint": {JSON: {"name": "supplier alerts", "url": "https://alerts.example.kr/hooks/g2b",
                                 "batch": True}},
    "update_endpoint": {JSON: {"status": "active", "catch_up": True}},
    "create_endpoint_subscription": {JSON: {"name": "supplier 42: Seoul works",
                                            "filter": {"categories": ["works"], "regions": ["KR-11"]}}},
    "replay_endpoint_deliveries": {JSON: {"delivery_ids": [101, 102]}},
}


def document_examples(route: APIRoute) -> None:
    """Adds the route's request examples to its OpenAPI ``requestBody`` (FastAPI merges ``openapi_extra``
    into the generated operation). Running it twice changes nothing."""
    examples = REQUEST_EXAMPLES.get(route.name)
    if examples is None:
        return
    extra = copy.deepcopy(route.openapi_extra or {})  # shared dicts (PUBLIC_ROUTE) stay untouched
    content = extra.setdefault("requestBody", {}).setdefault("content", {})
    for media_type, example in examples.items():
        content.setdefault(media_type, {}).setdefault("example", example)
    route.openapi_extra = extra
