"""Pure pieces of the API plumbing: problem documents, JSON pointers, error slugs, request ids and the
redaction of API keys from log lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from hub.api.middleware import sane_request_id
from hub.api.problems import (
    PROBLEM_CONTENT_TYPE,
    field_errors_from_validation,
    json_pointer,
    line_and_column,
    malformed_json_detail,
    problem_response,
    service_error_slug,
)
from hub.config import LoggingSettings
from hub.spine.errors import Conflict, NotFound, Rejected, ServiceError
from hub.spine.observability.logging import RequestIdFilter, configure_logging, redact_api_keys, request_id_var


def test_json_pointer_escapes_per_rfc_6901() -> None:
    assert json_pointer(("body", "name")) == "#/body/name"
    assert json_pointer(("body", "items", 0, "a/b~c")) == "#/body/items/0/a~1b~0c"


def test_validation_errors_become_field_errors_without_the_input() -> None:
    errors = field_errors_from_validation(
        [
            {"loc": ("body", "name"), "msg": "Field required", "input": {"secret": "s3cr3t"}},
            {"loc": ("query", "kind"), "msg": "Input should be 'agency'", "input": "emperor"},
            {"loc": ("body",), "msg": "Field required"},
        ]
    )
    assert [(e.pointer, e.field) for e in errors] == [
        ("#/body/name", "name"),
        ("#/query/kind", "kind"),
        ("#/body", "body"),
    ]
    assert "s3cr3t" not in json.dumps([e.model_dump() for e in errors])


def test_validation_messages_lose_pydantics_prefix() -> None:
    errors = field_errors_from_validation([
        {"loc": ("body", "currency"), "msg": "Value error, expected an ISO 4217 currency code such as KRW"},
        {"loc": ("body", "lots", 0), "msg": "Assertion failed, lot ids differ"},
        {"loc": ("body", "title"), "msg": "String should have at least 1 character"},
    ])
    assert [e.message for e in errors] == ["expected an ISO 4217 currency code such as KRW", "lot ids differ",
                                           "String should have at least 1 character"]


def test_malformed_json_is_located_by_line_and_column() -> None:
    document = '{\n  "name": "x",\n  "kind": agency\n}'
    offset = document.index("agency")
    assert line_and_column(document, offset) == (3, 11)
    assert line_and_column("[1,]", 3) == (1, 4)
    error = {"type": "json_invalid", "loc": ("body", offset), "msg": "JSON decode error",
             "ctx": {"error": "Expecting value"}}
    assert malformed_json_detail(error, document) == (
        "the body is not well-formed JSON: Expecting value at line 3, column 11")
    assert malformed_json_detail(error, document.encode()).endswith("line 3, column 11")
    assert malformed_json_detail({"loc": ("body",)}, None) == "the body is not well-formed JSON: invalid JSON"


class UpstreamUnavailable(ServiceError):
    status = 503


class PaymentRequired(ServiceError):
    status = 402
    slug = "quota-exhausted"


@pytest.mark.parametrize(
    ("error", "slug"),
    [
        (NotFound("organisation", "x"), "not-found"),
        (Rejected("name", "blank"), "rejected"),
        (Conflict("taken"), "conflict"),
        (ServiceError("bad"), "bad-request"),
        (UpstreamUnavailable("down"), "upstream-unavailable"),
        (PaymentRequired("no"), "quota-exhausted"),
    ],
)
def test_service_errors_get_stable_problem_types(error: ServiceError, slug: str) -> None:
    assert service_error_slug(error) == slug


def test_problem_response_shape() -> None:
    response = problem_response(404, detail="organisation 'x' not found", instance="/api/v1/orgs/x", request_id="r1")
    assert response.status_code == 404
    assert response.media_type == PROBLEM_CONTENT_TYPE
    assert json.loads(bytes(response.body)) == {
        "type": "https://g2b-hub.dev/problems/not-found",
        "title": "Not found",
        "status": 404,
        "detail": "organisation 'x' not found",
        "instance": "/api/v1/orgs/x",
        "request_id": "r1",
    }
    odd = json.loads(bytes(problem_response(418).body))
    assert odd["type"].endswith("/http-418") and odd["status"] == 418


def test_extension_members_join_the_problem_but_never_replace_a_standard_one() -> None:
    response = problem_response(422, slug="pps-gateway-error", detail="resultCode 30",
                                extensions={"pps_result_code": "30", "status": 200, "type": "x"})
    body = json.loads(bytes(response.body))
    assert body["pps_result_code"] == "30"
    assert (body["status"], body["type"]) == (422, "https://g2b-hub.dev/problems/pps-gateway-error")


@pytest.mark.parametrize("good", ["abc", "9f1c-22", "trace:1.2_3", "A" * 64])
def test_sane_request_ids_are_kept(good: str) -> None:
    assert sane_request_id(good) == good


@pytest.mark.parametrize("bad", [None, "", "A" * 65, "with space", "new\nline", 'q"uote', "-dash", "ünï"])
def test_insane_request_ids_are_dropped(bad: str | None) -> None:
    assert sane_request_id(bad) is None


def test_api_keys_are_redacted_to_their_id() -> None:
    key = "g2b_0123abcd4567ef89_Zx-9_yQ" + "a" * 30
    assert redact_api_keys(f"token {key} used") == "token g2b_0123abcd4567ef89_*** used"
    assert redact_api_keys("nothing to hide") == "nothing to hide"


def test_configured_handler_writes_json_with_request_id_and_redacts() -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        configure_logging(LoggingSettings(level="DEBUG", json=True), stream=stream)
        configure_logging(LoggingSettings(level="DEBUG", json=True), stream=stream)  # idempotent
        assert sum(1 for h in root.handlers if h not in before[0]) == 1
        token = request_id_var.set("rid-7")
        try:
            logging.getLogger("hub.test").info("key g2b_00ff_secretpart seen", extra={"org_id": "o1"})
        finally:
            request_id_var.reset(token)
        logging.getLogger("hub.test").info("outside a request")
    finally:
        for handler in list(root.handlers):
            if handler not in before[0]:
                root.removeHandler(handler)
        root.setLevel(before[1])
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["request_id"] == "rid-7" and first["org_id"] == "o1" and first["level"] == "INFO"
    assert first["message"] == "key g2b_00ff_*** seen" and first["logger"] == "hub.test" and "time" in first
    assert second["request_id"] is None


def test_request_id_filter_keeps_an_explicit_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.request_id = "given"
    token = request_id_var.set("ambient")
    try:
        assert RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    assert getattr(record, "request_id", None) == "given"


def test_flow_errors_carry_no_http_status_and_the_api_maps_each_kind() -> None:
    from hub.api.problems import service_error_status
    from hub.notices.formats.base import ContentTooLarge
    from hub.notices.idempotency import IdempotencyKeyReused
    from hub.spine.errors import Conflict, NotFound, Rejected, RejectedFields, ServiceError

    assert not hasattr(ServiceError, "status")
    cases = [(NotFound("notice", "n1"), 404), (Conflict("cancelled"), 409), (ContentTooLarge("rows"), 413),
             (Rejected("name", "blank"), 422), (RejectedFields([("a", "b")]), 422),
             (IdempotencyKeyReused("other body"), 422), (ServiceError("bad"), 400)]
    assert [service_error_status(error) for error, _ in cases] == [status for _, status in cases]
