"""Client of the PPS open API's bid-notice lists (조달청 나라장터 BidPublicInfoService, ``contracts/pps/SPEC.md``).

One call asks one page of one list operation for a time window (``inqryDiv`` 1: registration time, 3:
change time; ``inqryBgnDt``/``inqryEndDt`` as ``YYYYMMDDHHMM`` in Korean time) and answers the
envelope as JSON (``type=json``), read by :func:`connectors.pps_envelope.read_pps_envelope` and
classified once:

- a key error (result codes 20, 30, 31, 32, 33, or HTTP 401/403) is :class:`PpsKeyError`: the deployment is
  misconfigured and asking again changes nothing until the key does;
- a quota answer (22) is :class:`PpsQuotaExceeded` and network trouble, 5xx and the service's own
  transient codes (01, 02, 04, 05, 21, 99 and any other) are transient: retried here with exponential backoff
  (tenacity) before they reach the caller;
- NODATA (03) is an empty page, and 06, 07, 10, 11, 12 are a :class:`PpsRequestError` (the request is wrong).

Portal keys come in two forms, the decoded one (``…+…/…==``) and the URL-encoded one (``…%2B…%2F…%3D%3D``).
:func:`connectors.config.decoded_portal_key` turns either into the decoded form, which httpx then encodes exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from connectors.config import Timeouts, decoded_portal_key
from connectors.errors import PermanentUpstreamError, TransientUpstreamError, UpstreamAuthError, UpstreamError
from connectors.pps_envelope import PpsGatewayStatus, read_pps_envelope
from connectors.rest import load_json, make_http_client, send_capped

__all__ = [
    "LIST_OPERATIONS",
    "PPS_SYSTEM",
    "PpsKeyError",
    "PpsOpenApiClient",
    "PpsPage",
    "PpsQuotaExceeded",
    "PpsRequestError",
    "PpsRetry",
    "page_items",
]

PPS_SYSTEM = "pps"
# The four list operations: goods, services, works, foreign procurement.
LIST_OPERATIONS = (
    "getBidPblancListInfoThng",
    "getBidPblancListInfoServc",
    "getBidPblancListInfoCnstwk",
    "getBidPblancListInfoFrgcpt",
)
_STAMP = "%Y%m%d%H%M"


class PpsKeyError(UpstreamAuthError):
    """The service key is refused (unregistered, expired, IP not registered, access denied)."""


class PpsQuotaExceeded(TransientUpstreamError):
    """Result code 22: the key's request quota is spent for now."""


class PpsRequestError(PermanentUpstreamError):
    """The service refused the request itself (bad date 06, period over a month 07, bad parameter 10 …)."""


@dataclass(frozen=True)
class PpsRetry:
    """Attempts per page: ``attempts`` for transient faults, ``quota_attempts`` for code 22 (whose
    wait usually needs to be longer), waiting ``initial_s`` doubled each time up to ``max_s``."""

    attempts: int = 4
    quota_attempts: int = 6
    initial_s: float = 2.0
    max_s: float = 60.0


@dataclass(frozen=True)
class PpsPage:
    operation: str
    page_no: int
    rows: int
    total_count: int
    items: list[dict[str, Any]]
    document: dict[str, Any]  # the envelope as answered: what the import reads

    @property
    def last_page(self) -> int:
        return max(1, -(-self.total_count // self.rows)) if self.rows else 1


def page_items(document: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The items and ``totalCount`` of an answer whose code is 00, in any ``items`` shape: a list,
    ``{"item": [...]}``, ``{"item": {...}}``, or ``""`` when empty."""
    body = document.get("response", {}).get("body") or {}
    if not isinstance(body, dict):
        return [], 0
    items: Any = body.get("items")
    if isinstance(items, dict):
        items = items.get("item", [])
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        items = []
    try:
        total = int(str(body.get("totalCount", len(items))).strip() or 0)
    except ValueError:
        total = len(items)
    return [dict(item) for item in items if isinstance(item, dict)], total


def _classified(status: PpsGatewayStatus, http_status: int) -> UpstreamError:
    """The error a result code other than 00 and 03 is: a refused key, a quota, the request's own fault,
    or (the service's transient codes, 99 and any code it may add) worth asking again."""
    code, message = f"pps_{status.code}", status.message
    if status.key_error:
        return PpsKeyError(PPS_SYSTEM, code, message, http_status=http_status)
    if status.rate_limited:
        return PpsQuotaExceeded(PPS_SYSTEM, code, message, http_status=http_status)
    if status.bad_request:
        return PpsRequestError(PPS_SYSTEM, code, message, http_status=http_status)
    return TransientUpstreamError(PPS_SYSTEM, code, message, http_status=http_status)


def _stop(retry: PpsRetry) -> Callable[[RetryCallState], bool]:
    def stop(state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None else None
        limit = retry.quota_attempts if isinstance(error, PpsQuotaExceeded) else retry.attempts
        return state.attempt_number >= limit

    return stop


@dataclass
class PpsOpenApiClient:
    """``endpoint``: the service's base, e.g. ``https://apis.data.go.kr/1230000/ad/BidPublicInfoService``."""

    endpoint: str
    service_key: SecretStr
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: PpsRetry = field(default_factory=PpsRetry)
    max_response_bytes: int = 8 * 1024 * 1024
    sleep: Callable[[float], None] = time.sleep  # tests may pass a no-op
    client: httpx.Client | None = None

    def __post_init__(self) -> None:
        self._key = decoded_portal_key(self.service_key.get_secret_value())
        self._http = self.client or make_http_client(self.timeouts, concurrency=2)

    def close(self) -> None:
        if self.client is None:
            self._http.close()

    def list_page(
        self, operation: str, *, inquiry_div: int, begin: datetime, end: datetime, page_no: int, rows: int
    ) -> PpsPage:
        """One page, retried on transient faults and quota answers; raises :class:`PpsKeyError`,
        :class:`PpsRequestError` or, once retries are spent, the last transient error."""
        retrying = Retrying(
            retry=retry_if_exception_type(TransientUpstreamError),
            stop=_stop(self.retry),
            wait=wait_exponential(multiplier=self.retry.initial_s, max=self.retry.max_s),
            reraise=True,
            sleep=self.sleep,
        )
        page: PpsPage = retrying(self._once, operation, inquiry_div, begin, end, page_no, rows)
        return page

    def _once(
        self, operation: str, inquiry_div: int, begin: datetime, end: datetime, page_no: int, rows: int
    ) -> PpsPage:
        params = {
            "serviceKey": self._key,
            "type": "json",
            "pageNo": str(page_no),
            "numOfRows": str(rows),
            "inqryDiv": str(inquiry_div),
            "inqryBgnDt": begin.strftime(_STAMP),
            "inqryEndDt": end.strftime(_STAMP),
        }
        request = self._http.build_request("GET", f"{self.endpoint.rstrip('/')}/{operation}", params=params)
        answer = send_capped(self._http, PPS_SYSTEM, request, self.max_response_bytes)
        if answer.status in (401, 403):
            raise PpsKeyError(
                PPS_SYSTEM, f"http_{answer.status}", "the service key was refused", http_status=answer.status
            )
        if answer.status == 429 or answer.status >= 500:
            raise TransientUpstreamError(
                PPS_SYSTEM, f"http_{answer.status}", http_status=answer.status, retry_after=answer.retry_after
            )
        xml = answer.body.lstrip()[:1] == b"<"  # the gateway answers some errors in XML even to type=json
        document = {} if xml else load_json(PPS_SYSTEM, answer.body)
        status = read_pps_envelope(answer.body if xml else document)
        if status is None:
            if xml or not isinstance(document, dict) or not isinstance(document.get("response"), dict):
                raise TransientUpstreamError(
                    PPS_SYSTEM, "malformed_response", "not a PPS envelope", http_status=answer.status
                )
        elif status.no_data:
            return PpsPage(operation, page_no, rows, 0, [], document)
        else:
            raise _classified(status, answer.status)
        if answer.status >= 300:
            raise PpsRequestError(PPS_SYSTEM, f"http_{answer.status}", http_status=answer.status)
        items, total = page_items(document)
        return PpsPage(operation, page_no, rows, total, items, document)
