"""Bulk loading of subscriptions onto a registered endpoint (``g2bhub subscriptions load``).

A million supplier alerts cannot go through the API one request each: this reads JSON lines, checks
each filter exactly as the API does, and writes the rows a chunk per ``executemany`` in ONE
transaction (all or nothing). Instead of a change-log row per subscription, one full-reload entry makes
every worker's matching index reload once."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator

from hub.spine.errors import Rejected
from hub.subscriptions.endpoint_repository import subscription_row
from hub.subscriptions.events import SubscriptionChanged
from hub.subscriptions.filters import SubscriptionFilter
from hub.subscriptions.handlers import owned
from hub.subscriptions.model import Subscription, filter_json, parse_filter
from hub.subscriptions.repository import SubscriptionsUnitOfWork, utcnow

__all__ = ["LOAD_CHUNK", "load_subscriptions", "parse_line"]

LOAD_CHUNK = 5_000  # rows per executemany
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,35}$")


def parse_line(line: str, number: int) -> tuple[str | None, str, SubscriptionFilter]:
    """One JSON line of a bulk load: a filter object, or ``{"id"?, "name"?, "filter": {…}}``. Returns
    (id or None, name, filter); a bad line is rejected naming it (``line 7.filter.regions``)."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise Rejected(f"line {number}", f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Rejected(f"line {number}", "expected a JSON object")
    if "filter" in data:
        flt, sid, name = data["filter"], data.get("id"), data.get("name", "")
        if not isinstance(flt, dict):
            raise Rejected(f"line {number}.filter", "expected a JSON object")
    else:
        flt, sid, name = data, None, ""
    if sid is not None and (not isinstance(sid, str) or not _ID.match(sid)):
        raise Rejected(f"line {number}.id", "1 to 36 letters, digits, '.', '_', ':' or '-'")
    if not isinstance(name, str) or len(name) > 200:
        raise Rejected(f"line {number}.name", "a string of at most 200 characters")
    try:
        return sid, name, parse_filter(flt)
    except Rejected as exc:
        raise Rejected(f"line {number}.{exc.field}", exc.message) from exc


def _chunks(lines: Iterable[str], size: int) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            chunk.append((number, line))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_subscriptions(uow: SubscriptionsUnitOfWork, endpoint_id: str, org_id: str, lines: Iterable[str],
                       chunk: int = LOAD_CHUNK) -> int:
    """Put a subscription on ``endpoint_id`` (``org_id``'s) for each JSON line; how many. All or nothing:
    the caller commits. Lines without an ``id`` get a fresh one; an id already taken fails the load."""
    endpoint = owned(uow.subscriptions, endpoint_id, org_id, endpoint=True)
    now = utcnow()
    total = 0
    for part in _chunks(lines, chunk):
        rows = []
        for number, line in part:
            sid, name, flt = parse_line(line, number)
            try:
                sub = Subscription.on_endpoint(sid or str(uuid.uuid4()), endpoint, name, flt, now)
            except Rejected as exc:
                raise Rejected(f"line {number}.{exc.field}", exc.message) from exc
            rows.append(subscription_row(sub, filter_json(flt), now))
        uow.endpoints.add_many(rows)
        total += len(rows)
    uow.endpoints.reload_all()
    uow.publish(SubscriptionChanged(subscription_id=endpoint.id, org_id=org_id, change="subscriptions_loaded",
                                    channel=endpoint.channel.value, details={"count": total},
                                    actor_org_id=org_id))
    return total
