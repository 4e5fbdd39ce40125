"""What was published, and what each subscriber received, turned into the counts a delivery promise is
judged by: every version delivered exactly once in effect, in order per notice, nothing lost.

"In effect" is what a receiver that dedupes on ``webhook-id`` (as Standard Webhooks asks) sees: a
retried request with the same id changes nothing, so it counts only as a *raw* duplicate. The same
notice version under two different ids would be acted on twice: that is a duplicate in effect."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from tests.support.receiver import Receiver

__all__ = [
    "FeedCheck", "Key", "Ledger", "Published", "Tally", "check_feed", "delivered_keys", "first_arrivals", "tally",
]

Key = tuple[str, int]  # (notice_id, version)


@dataclass(frozen=True)
class Published:
    notice_id: str
    version: int
    kind: str
    region: str
    seq: int
    at: float  # time.monotonic() once committed

    @property
    def key(self) -> Key:
        return self.notice_id, self.version


@dataclass
class Ledger:
    """Every notice version committed by the publisher, in commit order (thread-safe)."""

    entries: list[Published] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: Published) -> None:
        with self.lock:
            self.entries.append(entry)

    def snapshot(self) -> list[Published]:
        with self.lock:
            return list(self.entries)

    def __len__(self) -> int:
        with self.lock:
            return len(self.entries)

    def expected(self, regions: Iterable[str] | None = None, until: float | None = None,
                 since: float | None = None) -> set[Key]:
        """The versions a subscriber filtering on ``regions`` (None: every region) is owed, optionally
        only those committed after ``since`` and by ``until`` (``time.monotonic()`` values)."""
        wanted = set(regions) if regions is not None else None
        return {e.key for e in self.snapshot()
                if (wanted is None or e.region in wanted) and (until is None or e.at <= until)
                and (since is None or e.at > since)}


@dataclass
class Tally:
    """One subscription's account."""

    subscription: str
    expected: int
    delivered: int  # expected versions delivered in effect
    lost: int  # expected versions never delivered
    duplicated: int  # extra deliveries in effect: the same version under another webhook-id
    duplicated_raw: int  # repeated requests with a webhook-id already answered 2xx
    out_of_order: int  # versions whose first delivery came after a later version of the same notice
    unexpected: int  # versions delivered that the subscriber is not owed
    refused: int  # requests the receiver answered with an error status
    unverified: int  # requests whose signature did not verify
    examples: dict[str, list[Key]] = field(default_factory=dict)  # a few lost / late versions, to look into

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order or self.unexpected or self.unverified)

    def figures(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if isinstance(v, int)}


def effective(receiver: Receiver) -> tuple[list[Key], int]:
    """Versions in the order a deduping receiver acted on them (first 2xx per webhook-id), and the
    number of raw duplicates it ignored."""
    seen: set[str] = set()
    order: list[Key] = []
    raw = 0
    for received in receiver.delivered():
        if received.webhook_id in seen:
            raw += 1
            continue
        seen.add(received.webhook_id)
        data = received.body["data"]
        order.append((data["notice_id"], int(data["version"])))
    return order, raw


def delivered_keys(receiver: Receiver) -> set[Key]:
    return set(effective(receiver)[0])


def first_arrivals(receiver: Receiver) -> dict[Key, float]:
    """When (``time.monotonic()``) each version was first delivered in effect."""
    arrivals: dict[Key, float] = {}
    for received in receiver.delivered():
        data = received.body["data"]
        arrivals.setdefault((data["notice_id"], int(data["version"])), received.at)
    return arrivals


def tally(name: str, receiver: Receiver, expected: set[Key]) -> Tally:
    order, raw = effective(receiver)
    counts = Counter(order)
    got = set(order)
    late: list[Key] = []
    highest: dict[str, int] = {}
    first: set[Key] = set()
    for key in order:
        if key in first:
            continue
        first.add(key)
        notice_id, version = key
        if version < highest.get(notice_id, 0):
            late.append(key)
        highest[notice_id] = max(version, highest.get(notice_id, 0))
    with receiver.lock:
        refused = sum(1 for r in receiver.received if not 200 <= r.answered < 300)
        unverified = receiver.unverified
    return Tally(
        subscription=name, expected=len(expected), delivered=len(got & expected), lost=len(expected - got),
        duplicated=sum(c - 1 for c in counts.values()), duplicated_raw=raw, out_of_order=len(late),
        unexpected=len(got - expected), refused=refused, unverified=unverified,
        examples={"lost": sorted(expected - got)[:5], "late": late[:5]},
    )


@dataclass
class FeedCheck:
    """The changes feed against the ledger: every published version present once, seqs strictly
    increasing, each notice's versions in order."""

    entries: int
    missing: int  # published versions absent from the feed
    extra: int  # feed entries the publisher never committed
    repeated: int  # versions listed more than once
    unordered: int  # seqs not strictly increasing, or a notice's versions out of order

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.repeated or self.unordered)


def check_feed(changes: list[dict[str, Any]], published: Iterable[Published]) -> FeedCheck:
    keys = [(c["notice_id"], int(c["version"])) for c in changes]
    wanted = {p.key for p in published}
    unordered = sum(1 for a, b in pairwise(changes) if b["seq"] <= a["seq"])
    highest: dict[str, int] = {}
    for notice_id, version in keys:
        if version <= highest.get(notice_id, 0):
            unordered += 1
        highest[notice_id] = max(version, highest.get(notice_id, 0))
    return FeedCheck(entries=len(changes), missing=len(wanted - set(keys)), extra=len(set(keys) - wanted),
                     repeated=len(keys) - len(set(keys)), unordered=unordered)
