"""Batched webhook delivery: an endpoint serving many subscriptions gets ONE signed request per notice
version, naming every matched subscription of it.

Why: an alert service for thousands of suppliers would otherwise receive thousands of identical
notices per version, each with its own attempt, retry and log row. The matcher hands the ids it matched
to :func:`divert_batched`, which takes out those on registered endpoints and writes one delivery per
(endpoint, version) listing them (``recipients``, sorted). That delivery is a row like any other keyed
by the endpoint, so the claim, the lease, per-notice order (version n+1 never before n, per endpoint),
retries, 410 and the delivery log apply to it unchanged; the sender adds ``subscription_ids`` to the
body (:func:`batched_body`).

Amendments and cancellations reach every subscription still on the endpoint that an earlier version
went to, as for other subscriptions: the earlier recipients of a notice include the endpoint, whose
earlier batches are expanded here.

Bulk loading is :mod:`hub.subscriptions.bulk_load`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.notices.events import NoticeVersionPublished
from hub.subscriptions.repository import SubscriptionsUnitOfWork

__all__ = ["batched_body", "divert_batched"]


def divert_batched(uow: SubscriptionsUnitOfWork, matched: Sequence[str], event: NoticeVersionPublished
                   ) -> tuple[Sequence[str], int]:
    """Write this version's batched deliveries; return the matched ids left for one delivery each (the
    subscriptions with a channel of their own) and how many batched deliveries were written."""
    members, endpoints = uow.endpoints.classify(matched)
    if not members and not endpoints:
        return matched, 0
    batches: dict[str, set[str]] = {}
    for sid, endpoint_id in members.items():
        batches.setdefault(endpoint_id, set()).add(sid)
    if endpoints and event.version > 1:
        for endpoint_id, ids in uow.endpoints.earlier_batches(event.notice_id, event.version, endpoints).items():
            batches.setdefault(endpoint_id, set()).update(ids)
    rest = [sid for sid in matched if sid not in members and sid not in endpoints]
    created = uow.endpoints.add_batched({e: sorted(batches[e]) for e in sorted(batches)}, event.notice_id,
                                        event.version, event.seq, event.kind)
    return rest, created


def batched_body(body: dict[str, Any], recipients: list[str] | None) -> dict[str, Any]:
    """The notice payload as every channel sends it, plus ``subscription_ids`` for a batched delivery."""
    return body if recipients is None else {**body, "subscription_ids": recipients}
