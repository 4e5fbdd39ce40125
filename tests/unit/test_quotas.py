"""Token-bucket maths (hub.spine.quotas) with the clock passed in: burst, steady refill, all-or-nothing
charges, the draft RateLimit headers, and the in-memory store."""

from __future__ import annotations

import pytest

from hub.spine.budgets import Budgets
from hub.spine.quota_config import QuotaSettings
from hub.spine.quotas import Bucket, InMemoryBuckets, Policy, charge, rate_limit_headers, refill

PER_MINUTE = Policy("default", 60, 60)  # one unit a second


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_new_bucket_is_full_and_lets_the_whole_burst_through() -> None:
    bucket = None
    allowed = []
    for _ in range(61):
        buckets, (decision,) = charge([(PER_MINUTE, bucket)], now=0.0)
        bucket = buckets[0]
        allowed.append(decision.allowed)
    assert allowed == [True] * 60 + [False]


def test_refill_is_steady_and_capped_at_the_limit() -> None:
    empty = Bucket(0.0, 100.0)
    assert refill(PER_MINUTE, empty, 110.5).tokens == pytest.approx(10.5)
    assert refill(PER_MINUTE, empty, 10_000.0).tokens == 60
    assert refill(Policy("slow", 6, 3600), empty, 820.0).tokens == pytest.approx(1.2)


def test_a_clock_that_steps_back_refills_nothing_and_takes_nothing() -> None:
    bucket = Bucket(5.0, 100.0)
    stepped_back = refill(PER_MINUTE, bucket, 50.0)
    assert stepped_back.tokens == 5.0
    assert stepped_back.updated_at == 100.0  # the next refill counts from the later instant


def test_a_refusal_says_when_to_come_back_and_spends_nothing() -> None:
    policy = Policy("key-writes", 2, 60)  # a unit every 30 s
    bucket = Bucket(0.4, 0.0)
    (after,), (decision,) = charge([(policy, bucket)], now=0.0)
    assert not decision.allowed
    assert decision.remaining == 0
    assert decision.retry_after_s == 18  # 0.6 of a unit at 1/30 a second
    assert after.tokens == pytest.approx(0.4)
    (after,), (decision,) = charge([(policy, after)], now=18.0)
    assert decision.allowed and after.tokens == pytest.approx(0.0)


def test_remaining_and_reset_after_an_allowed_request() -> None:
    _, (decision,) = charge([(Policy("p", 10, 100), None)], now=0.0)
    assert decision.allowed and decision.remaining == 9
    assert decision.reset_s == 10  # one unit back every 10 s
    (_,), (full,) = charge([(Policy("p", 10, 100), Bucket(10.0, 0.0))], now=0.0, cost=0)
    assert full.remaining == 10 and full.reset_s == 0


def test_several_buckets_are_charged_all_or_nothing() -> None:
    key, org = Policy("key-reads", 10, 60), Policy("org-reads", 1, 60)
    buckets, decisions = charge([(key, Bucket(10.0, 0.0)), (org, Bucket(0.0, 0.0))], now=0.0)
    assert [d.allowed for d in decisions] == [True, False]
    assert buckets[0].tokens == 10.0  # the key's budget is not spent for a refused request
    assert decisions[0].remaining == 10


def test_headers_follow_the_ratelimit_draft() -> None:
    key, org = Policy("key-reads", 600, 60), Policy("org-reads", 1200, 60)
    _, decisions = charge([(key, None), (org, None)], now=0.0)
    headers = rate_limit_headers(decisions)
    assert headers == {
        "RateLimit-Policy": '"key-reads";q=600;w=60, "org-reads";q=1200;w=60',
        "RateLimit": '"key-reads";r=599;t=1',
    }
    _, refused = charge([(Policy("anonymous", 1, 60), Bucket(0.0, 0.0))], now=0.0)
    headers = rate_limit_headers(refused)
    assert headers["RateLimit"] == '"anonymous";r=0;t=60'
    assert headers["Retry-After"] == "60"
    assert rate_limit_headers([]) == {}


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        Policy("p", 0, 60)
    with pytest.raises(ValueError):
        Policy("p", 1, 0)
    with pytest.raises(ValueError):
        charge([(PER_MINUTE, None)], now=0.0, cost=-1)


def test_in_memory_store_keeps_buckets_apart_and_refills_with_its_clock() -> None:
    clock = Clock()
    store = InMemoryBuckets(clock)
    policy = Policy("p", 2, 10)
    assert [store.take([("a", policy)])[0].allowed for _ in range(3)] == [True, True, False]
    assert store.take([("b", policy)])[0].allowed  # another bucket, another budget
    clock.now += 5
    assert store.take([("a", policy)])[0].allowed
    assert not store.take([("a", policy)])[0].allowed


def test_in_memory_store_forgets_full_buckets_past_its_size() -> None:
    clock = Clock()
    store = InMemoryBuckets(clock, max_buckets=10)
    policy = Policy("p", 1, 1)
    for i in range(10):
        store.take([(f"addr:{i}", policy)])
    clock.now += 5  # every one of them is full again
    store.take([("addr:new", policy)])
    assert len(store._buckets) <= 10


def test_budgets_name_buckets_per_key_org_and_kind_of_request() -> None:
    clock = Clock()
    settings = QuotaSettings.model_validate({"key_writes": {"limit": 2, "window_s": 60},
                                             "org_writes": {"limit": 3, "window_s": 60}})
    budgets = Budgets(settings, InMemoryBuckets(clock))
    assert all(d.allowed for d in budgets.caller("k1", "o1", write=True))
    assert all(d.allowed for d in budgets.caller("k1", "o1", write=True))
    refused = budgets.caller("k1", "o1", write=True)
    assert [d.policy.name for d in refused if not d.allowed] == ["key-writes"]
    assert all(d.allowed for d in budgets.caller("k1", "o1", write=False))  # reads are a budget apart
    assert all(d.allowed for d in budgets.caller("k2", "o1", write=True))  # the org's third write
    assert [d.policy.name for d in budgets.caller("k3", "o1", write=True) if not d.allowed] == ["org-writes"]
    assert all(d.allowed for d in budgets.caller("k4", "o2", write=True))  # another org is untouched


def test_failed_auth_is_looked_at_before_and_charged_after() -> None:
    clock = Clock()
    settings = QuotaSettings.model_validate({"failed_auth": {"limit": 2, "window_s": 60}})
    budgets = Budgets(settings, InMemoryBuckets(clock))
    for _ in range(2):
        looked = budgets.failed_auth("10.0.0.1", spend=False)
        assert looked is not None and looked.allowed
        budgets.failed_auth("10.0.0.1", spend=True)
    looked = budgets.failed_auth("10.0.0.1", spend=False)
    assert looked is not None and not looked.allowed and looked.retry_after_s == 30
    other = budgets.failed_auth("10.0.0.2", spend=False)
    assert other is not None and other.allowed


def test_disabled_quotas_decide_nothing() -> None:
    budgets = Budgets(QuotaSettings(enabled=False), InMemoryBuckets())
    assert budgets.caller("k", "o", write=True) == []
    assert budgets.upstream("nts") is None and budgets.refresh("s") is None


def test_upstream_budgets_per_system_with_a_default() -> None:
    settings = QuotaSettings.model_validate({"upstream": {"nts": {"limit": 1, "window_s": 60}}})
    budgets = Budgets(settings, InMemoryBuckets(Clock()))
    first, second = budgets.upstream("nts"), budgets.upstream("nts")
    assert first is not None and first.allowed and first.policy.name == "upstream-nts"
    assert second is not None and not second.allowed and second.retry_after_s == 60
    gleif = budgets.upstream("gleif")
    assert gleif is not None and gleif.allowed and gleif.policy.limit == settings.upstream_default.limit


def test_idle_buckets_are_forgotten_after_the_longest_window() -> None:
    clock = Clock()
    settings = QuotaSettings.model_validate({"refresh_per_supplier": {"limit": 1, "window_s": 7200}})
    budgets = Budgets(settings, InMemoryBuckets(clock))
    assert budgets.longest_window_s() == 7200
    budgets.refresh("s1")
    clock.now += 3600
    budgets.anonymous("192.0.2.1")
    assert budgets.forget_idle() == 0
    clock.now += 3601
    assert budgets.forget_idle() == 1  # s1's bucket; the address's is younger than the longest window
    refreshed = budgets.refresh("s1")
    assert refreshed is not None and refreshed.allowed


def test_a_peek_charges_nothing_and_stores_nothing() -> None:
    store = InMemoryBuckets(Clock())
    policy = Policy("p", 1, 60)
    assert store.peek("a", policy).allowed
    assert store._buckets == {}
    store.take([("a", policy)])
    looked = store.peek("a", policy)
    assert not looked.allowed and looked.retry_after_s == 60
    assert not store.take([("a", policy)])[0].allowed
