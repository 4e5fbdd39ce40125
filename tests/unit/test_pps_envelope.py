"""The PPS result header in every shape it comes in: the service's envelope, the gateway's key-error
envelope and data.go.kr's common XML error answer (../shared/contracts/pps/SPEC.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.pps_envelope import (
    BAD_REQUEST,
    KEY_ERRORS,
    NO_DATA,
    RATE_LIMITED,
    TRANSIENT,
    PpsGatewayStatus,
    read_pps_envelope,
)

KEY_ERROR = {
    "nkoneps.com.response.ResponseError": {
        "header": {"resultCode": "30", "resultMsg": "SERVICE KEY IS NOT REGISTERED ERROR"}
    }
}
OPENAPI_XML = """<OpenAPI_ServiceResponse>
  <cmmMsgHeader>
    <errMsg>SERVICE ERROR</errMsg>
    <returnAuthMsg>SERVICE_KEY_IS_NOT_REGISTERED_ERROR</returnAuthMsg>
    <returnReasonCode>30</returnReasonCode>
  </cmmMsgHeader>
</OpenAPI_ServiceResponse>"""


def answer(code: Any, message: str = "", items: Any = "") -> dict[str, Any]:
    return {
        "response": {
            "header": {"resultCode": code, "resultMsg": message},
            "body": {"items": items, "numOfRows": 10, "pageNo": 1, "totalCount": 0},
        }
    }


def test_a_normal_answer_reports_nothing() -> None:
    assert read_pps_envelope(answer("00", "정상")) is None
    assert read_pps_envelope(answer("00", "NORMAL SERVICE.", [{"bidNtceNo": "R25BK00012345"}])) is None
    assert read_pps_envelope({"response": {"header": {}, "body": {"items": []}}}) is None  # no code: normal


@pytest.mark.parametrize(
    "document",
    [
        [{"bidNtceNo": "R25BK00012345"}],
        {"items": []},
        {"response": "x"},
        {"response": {"body": {}}},
        None,
        42,
        "not a body",
        b"",
        "<items/>",
    ],
)
def test_what_is_no_envelope_with_a_header_reports_nothing(document: object) -> None:
    assert read_pps_envelope(document) is None


def test_the_service_envelope_reports_its_code_and_message() -> None:
    status = read_pps_envelope(answer("22", "LIMITED NUMBER OF SERVICE REQUESTS EXCEEDS ERROR."))
    assert status == PpsGatewayStatus("22", "LIMITED NUMBER OF SERVICE REQUESTS EXCEEDS ERROR.")
    assert status.rate_limited and not status.key_error and not status.no_data


def test_nodata_is_reported_for_the_caller_to_treat_as_an_empty_page() -> None:
    status = read_pps_envelope(answer("03", "NODATA_ERROR"))
    assert status is not None and status.code == NO_DATA and status.no_data


def test_the_gateway_key_error_envelope() -> None:
    status = read_pps_envelope(KEY_ERROR)
    assert status == PpsGatewayStatus("30", "SERVICE KEY IS NOT REGISTERED ERROR")
    assert status.key_error and str(status) == "PPS result 30: SERVICE KEY IS NOT REGISTERED ERROR"
    bare = read_pps_envelope({"x.ResponseError": {"resultCode": 31, "resultMsg": "EXPIRED"}})
    assert bare == PpsGatewayStatus("31", "EXPIRED")  # header members directly under the error
    unnamed = read_pps_envelope({"nkoneps.com.response.ResponseError": {"header": {}}})
    assert unnamed == PpsGatewayStatus("99", "")  # an error envelope is never "normal"


def test_the_data_go_kr_common_error_as_a_dictionary_and_as_xml() -> None:
    expected = PpsGatewayStatus("30", "SERVICE_KEY_IS_NOT_REGISTERED_ERROR")
    as_dict = {
        "OpenAPI_ServiceResponse": {
            "cmmMsgHeader": {
                "errMsg": "SERVICE ERROR",
                "returnAuthMsg": "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
                "returnReasonCode": "30",
            }
        }
    }
    assert read_pps_envelope(as_dict) == expected
    assert read_pps_envelope(OPENAPI_XML) == expected
    assert read_pps_envelope(OPENAPI_XML.encode()) == expected
    only_err = {"OpenAPI_ServiceResponse": {"cmmMsgHeader": {"errMsg": "SERVICE ERROR", "returnReasonCode": "12"}}}
    assert read_pps_envelope(only_err) == PpsGatewayStatus("12", "SERVICE ERROR")


def test_bodies_as_text() -> None:
    assert read_pps_envelope(json.dumps(KEY_ERROR)) == PpsGatewayStatus("30", "SERVICE KEY IS NOT REGISTERED ERROR")
    assert read_pps_envelope(json.dumps(answer("00")).encode()) is None
    xml = "<response><header><resultCode>03</resultCode><resultMsg>NODATA_ERROR</resultMsg></header><body/></response>"
    assert read_pps_envelope(xml) == PpsGatewayStatus("03", "NODATA_ERROR")
    assert read_pps_envelope("<response><header><resultCode>00</resultCode></header></response>") is None


def test_hostile_or_broken_xml_is_no_envelope() -> None:
    hostile = '<!DOCTYPE r [<!ENTITY x "y">]><OpenAPI_ServiceResponse>&x;</OpenAPI_ServiceResponse>'
    assert read_pps_envelope(hostile) is None
    assert read_pps_envelope("<OpenAPI_ServiceResponse><cmmMsgHeader>") is None
    assert read_pps_envelope("{not json") is None


@pytest.mark.parametrize(("raw", "code"), [(3, "03"), ("3", "03"), (" 22 ", "22"), (30, "30"), ("ERR", "ERR")])
def test_codes_are_normalised_to_two_digits(raw: object, code: str) -> None:
    status = read_pps_envelope(answer(raw))
    assert status is not None and status.code == code


def test_the_code_classes_do_not_overlap_and_leave_out_normal_and_nodata() -> None:
    classes = [KEY_ERRORS, RATE_LIMITED, TRANSIENT, BAD_REQUEST]
    everything = set().union(*classes)
    assert sum(len(c) for c in classes) == len(everything)
    assert not everything & {"00", NO_DATA}
    assert PpsGatewayStatus("21", "TEMPORARILY DISABLE THE SERVICEKEY ERROR").transient
    assert PpsGatewayStatus("07", "").bad_request and not PpsGatewayStatus("99", "").bad_request
