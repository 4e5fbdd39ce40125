"""Scenarios for the ordering tests (unit and integration): subscriptions with filters that amendments
move notices in and out of, random publication histories, and the oracle of what each subscription is
owed, by linear scan."""

from __future__ import annotations

import random
from typing import Any

from hub.notices.model import NoticeContent
from hub.subscriptions.filters import SubscriptionFilter
from tests.support.subscriptions import content, linear_scan_match

History = list[tuple[str, int, str, dict[str, Any]]]  # (notice, version, kind, content overrides)

FILTERS: dict[str, dict[str, Any]] = {
    "everything": {},
    "seoul": {"regions": ["KR-11"]},
    "busan": {"regions": ["KR-26"]},
    "korea-works": {"regions": ["KR"], "categories": ["works"]},
    "goods": {"categories": ["goods"]},
}
REGIONS = ["KR-11", "KR-26", "KR-41"]
CATEGORIES = ["works", "goods"]


def random_history(rng: random.Random, notices: int, prefix: str = "N") -> History:
    """Versions of several notices, interleaved as institutions might publish them (each notice's in
    version order): amendments move a notice in and out of filters; some end in a cancellation."""
    lives: list[list[tuple[str, int, str, dict[str, Any]]]] = []
    for n in range(notices):
        notice_id, versions = f"{prefix}-{n}", []
        for version in range(1, rng.randint(1, 4) + 1):
            kind = "original" if version == 1 else "amendment"
            versions.append((notice_id, version, kind,
                             {"delivery_region": rng.choice(REGIONS), "category": rng.choice(CATEGORIES)}))
        if rng.random() < 0.5:
            versions.append((notice_id, len(versions) + 1, "cancellation", versions[-1][3]))
        lives.append(versions)
    history = []
    while any(lives):
        life = rng.choice([life for life in lives if life])
        history.append(life.pop(0))
    return history


def owed(history: History) -> dict[tuple[str, str], list[int]]:
    """The oracle, by linear scan: a subscription is owed a version its filter selects, and every later
    version of a notice it was owed an earlier version of."""
    filters = {sid: SubscriptionFilter.parse(flt) for sid, flt in FILTERS.items()}
    due: dict[tuple[str, str], list[int]] = {}
    for notice_id, version, kind, overrides in history:
        selected = set() if kind == "cancellation" else linear_scan_match(
            filters, NoticeContent.parse(content(**overrides)), "inst-1")
        for sid in FILTERS:
            if sid in selected or due.get((sid, notice_id)):
                due.setdefault((sid, notice_id), []).append(version)
    return {key: versions for key, versions in due.items() if versions}
