"""Rules of subscriptions and delivery: signatures (against the reference verifier), the retry schedule,
the SSRF guard, AMQP routing, filter parsing and signing secrets at rest."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError
from standardwebhooks import Webhook

from hub.config import Settings
from hub.spine.errors import Rejected
from hub.subscriptions.config import STANDARD_RETRY_SCHEDULE_S, SyndicationSettings
from hub.subscriptions.filters import SubscriptionFilter
from hub.subscriptions.model import binding_keys, filter_json, is_routable, notice_routing_key, parse_filter
from hub.subscriptions.retry import is_success, next_delay_s, parse_retry_after
from hub.subscriptions.secret_box import SecretBox, SecretsUnreadable
from hub.subscriptions.sender import encode_body
from hub.subscriptions.signing import new_secret, webhook_headers
from hub.subscriptions.ssrf import PinnedTarget, UnsafeTarget, check_target, pin, resolve_host

BODY = json.dumps({"type": "notice.published", "data": {"notice_id": "N-1"}}).encode()


def test_signature_verifies_with_the_reference_implementation() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    headers = webhook_headers([secret], "dlv_1", int(datetime.now(UTC).timestamp()), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(Exception):
        Webhook(new_secret()).verify(BODY, headers)
    with pytest.raises(Exception):
        Webhook(secret).verify(BODY + b" ", headers)


def test_rotation_signs_with_every_active_secret() -> None:
    old, new = new_secret(), new_secret()
    headers = webhook_headers([new, old], "dlv_2", int(datetime.now(UTC).timestamp()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)


def test_retry_schedule_is_the_standard_one_compressed_and_jittered() -> None:
    exact = SyndicationSettings(jitter=0)
    delays = [next_delay_s(n, exact) for n in range(len(STANDARD_RETRY_SCHEDULE_S))]
    assert delays == list(STANDARD_RETRY_SCHEDULE_S)
    assert next_delay_s(len(STANDARD_RETRY_SCHEDULE_S), exact) is None  # spent: the delivery is dead
    fast = SyndicationSettings(time_scale=0.001, jitter=0.1)
    rng = random.Random(3)
    for attempts, base in enumerate(STANDARD_RETRY_SCHEDULE_S):
        delay = next_delay_s(attempts, fast, rng=rng)
        assert delay is not None and base * 0.001 * 0.9 <= delay <= base * 0.001 * 1.1


def test_retry_after_lengthens_but_is_capped() -> None:
    settings = SyndicationSettings(jitter=0, max_retry_after_s=600)
    assert next_delay_s(1, settings, retry_after_s=120) == 120  # schedule says 5 s
    assert next_delay_s(2, settings, retry_after_s=1) == 300  # never shortens
    assert next_delay_s(1, settings, retry_after_s=10**6) == 600
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("30") == 30
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_only_2xx_is_success() -> None:
    assert is_success(200) and is_success(204)
    assert not any(is_success(s) for s in (199, 301, 302, 304, 400, 410, 500))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8080/x", "http://10.1.2.3/", "http://192.168.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://0.0.0.0/", "http://224.0.0.1/",
    "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/",
])
def test_private_and_special_targets_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_target(url, resolve_host)


@pytest.mark.parametrize("url", [
    "ftp://8.8.8.8/", "file:///etc/passwd", "http://user:pw@8.8.8.8/", "gopher://8.8.8.8/", "http:///nohost",
    "http://8.8.8.8/#frag", "http://8.8.8.8:99999/",
])
def test_bad_schemes_credentials_and_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_target(url, resolve_host, allow_private=True)


def test_public_addresses_pass_and_configuration_allows_loopback() -> None:
    assert check_target("https://8.8.8.8/hook", resolve_host) == ["8.8.8.8"]
    assert check_target("http://127.0.0.1:9/hook", resolve_host, allow_private=True) == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("url", "address", "expected"),
    [
        ("https://hooks.example.kr/in?x=1", "203.0.113.7",
         PinnedTarget("https://203.0.113.7/in?x=1", "hooks.example.kr", "hooks.example.kr")),
        ("http://hooks.example.kr:8080/in", "203.0.113.7",
         PinnedTarget("http://203.0.113.7:8080/in", "hooks.example.kr:8080", None)),
        ("https://hooks.example.kr/in", "2001:db8::7",
         PinnedTarget("https://[2001:db8::7]/in", "hooks.example.kr", "hooks.example.kr")),
        ("https://203.0.113.9/in", "203.0.113.9", PinnedTarget("https://203.0.113.9/in", "203.0.113.9", None)),
    ],
)
def test_the_request_goes_to_the_checked_address_under_the_original_name(
    url: str, address: str, expected: PinnedTarget
) -> None:
    assert pin(url, address) == expected


def test_routing_keys_carry_category_and_region() -> None:
    assert notice_routing_key("works", "KR-11") == "notice.works.KR.KR-11"
    assert notice_routing_key("goods", None) == "notice.goods.none.none"
    routable = SubscriptionFilter(categories=("works", "goods"), regions=("KR-11", "JP"))
    assert is_routable(routable)
    assert binding_keys(routable) == ["notice.goods.*.KR-11", "notice.goods.JP.*", "notice.works.*.KR-11",
                                      "notice.works.JP.*"]
    assert binding_keys(SubscriptionFilter()) == ["notice.*.*.*"]
    assert not is_routable(SubscriptionFilter(regions=("KR",), keywords=("road",)))
    assert not is_routable(SubscriptionFilter(classifications=("45",)))


def test_filter_parsing_names_the_bad_field_and_round_trips() -> None:
    with pytest.raises(Rejected) as caught:
        parse_filter({"classifications": ["x"], "regions": ["KR-11"]})
    assert caught.value.field == "filter.classifications.0"
    with pytest.raises(Rejected):
        parse_filter({"colour": "red"})
    flt = parse_filter({"classifications": ["cpv:45"], "min_value": 1000, "currency": "KRW", "keywords": [" Road "]})
    assert SubscriptionFilter.parse(filter_json(flt)) == flt


def test_oversized_notices_are_sent_as_links() -> None:
    payload = {"type": "notice.published", "data": {"notice_id": "N-1", "notice": {"description": "x" * 5000}}}
    body = json.loads(encode_body(payload, 1024, "https://hub/api/v1/notices/N-1"))
    assert body["data"]["notice"] is None and body["data"]["truncated"] is True
    assert body["data"]["notice_url"].endswith("/N-1")
    assert json.loads(encode_body(payload, 10_000, "u"))["data"]["notice"]["description"] == "x" * 5000


def test_sealed_secrets_open_under_any_configured_key_and_rotate() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = SecretBox([old]).seal("whsec_abc")
    assert "secret" not in sealed and "whsec_abc" not in sealed["enc"]
    assert SecretBox([new, old]).open(sealed) == "whsec_abc"  # a new key first: old secrets still read
    assert SecretBox([new]).seal("x") != SecretBox([new]).seal("x")  # fresh IV each time
    with pytest.raises(SecretsUnreadable):
        SecretBox([new]).open(sealed)
    with pytest.raises(SecretsUnreadable):
        SecretBox([]).open(sealed)
    assert SecretBox([]).seal("whsec_plain") == {"secret": "whsec_plain"}
    assert SecretBox([old]).open({"secret": "whsec_legacy"}) == "whsec_legacy"  # rows from before keys


def test_a_bad_key_is_refused_with_its_position() -> None:
    with pytest.raises(ValidationError, match=r"secret_keys\[1\] is not a Fernet key"):
        Settings(syndication={"secret_keys": [Fernet.generate_key().decode(), "short"]})
