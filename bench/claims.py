"""How long one dispatcher claim takes with a large backlog of due deliveries (PostgreSQL).

Writes ``--backlog`` due deliveries straight into a fresh database — spread over ``--subscriptions``
webhook subscriptions, or with ``--skew`` of them all owed to one subscriber that is already at its
cap — plus a share for one AMQP subscription, then times the webhook claim (``room`` rows, the
per-subscription cap) and the AMQP claim as the dispatcher runs them, each rolled back so every
round sees the same backlog. Prints the medians and ends with one JSON line.

    python bench/claims.py [--database-url URL] [--backlog N] [--skew F]

The database URL defaults to ``G2BHUB_TEST_DATABASE_URL``."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import Figure, emit
from bench.syndication import fresh_database
from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.subscriptions import repository as store


def seed(session: object, backlog: int, subscriptions: int, skew: float, cap: int) -> None:
    from sqlalchemy.orm import Session
    assert isinstance(session, Session)
    now = datetime.now(UTC)
    sids = [str(uuid.uuid4()) for _ in range(subscriptions)]
    amqp = str(uuid.uuid4())
    for sid, channel in [*((s, "webhook") for s in sids), (amqp, "amqp")]:
        session.execute(text(
            "INSERT INTO subscriptions (id, org_id, name, channel, url, filter, routable, status, secrets,"
            " created_at, updated_at, batch) VALUES (:id, 'bench', '', :channel, 'http://127.0.0.1:9/',"
            " '{}', false, 'active', '[]', :now, :now, false)"), {"id": sid, "channel": channel, "now": now})
    hot = int(backlog * skew)
    session.execute(text(
        "INSERT INTO deliveries (subscription_id, notice_id, version, seq, kind, status, attempts,"
        " next_attempt_at, created_at, updated_at)"
        " SELECT CASE WHEN g <= CAST(:hot AS int) THEN CAST(:first AS text)"
        " ELSE (CAST(:sids AS text[]))[1 + g % CAST(:n AS int)] END, 'N' || g, 1 + g % 2, g,"
        " 'original', 'pending', 0, :due - (:backlog - g) * interval '1 millisecond', :due, :due"
        " FROM generate_series(1, CAST(:backlog AS int)) AS g"),
        {"hot": hot, "first": sids[0], "sids": sids, "n": len(sids), "backlog": backlog,
         "due": now - timedelta(seconds=1)})
    session.execute(text(  # the AMQP subscriber's share: a tenth of the backlog
        "INSERT INTO deliveries (subscription_id, notice_id, version, seq, kind, status, attempts,"
        " next_attempt_at, created_at, updated_at)"
        " SELECT :sid, 'A' || g, 1, CAST(:backlog AS int) + g, 'original', 'pending', 0, CAST(:due AS timestamptz),"
        " CAST(:due AS timestamptz), CAST(:due AS timestamptz)"
        " FROM generate_series(1, CAST(:m AS int)) AS g"),
        {"sid": amqp, "backlog": backlog, "m": backlog // 10, "due": now - timedelta(seconds=1)})
    if skew:  # the hot subscriber is at its cap already
        session.execute(text(
            "UPDATE deliveries SET lease_until = :until, lease_owner = 'other' WHERE id IN"
            " (SELECT id FROM deliveries WHERE subscription_id = :sid ORDER BY seq LIMIT :cap)"),
            {"until": now + timedelta(hours=1), "sid": sids[0], "cap": cap})
    session.commit()
    session.execute(text("ANALYZE deliveries"))
    session.execute(text("ANALYZE subscriptions"))
    session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("G2BHUB_TEST_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--skew", type=float, default=0.0, help="share of the backlog owed to one capped subscriber")
    parser.add_argument("--room", type=int, default=64)
    parser.add_argument("--cap", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    lease = timedelta(seconds=60)
    with fresh_database(args.database_url) as url:
        hub = bootstrap(Settings(database={"url": url}, broker={"kind": "inprocess", "namespace": "benchclaims"}),
                        migrate=True)
        try:
            with hub.session_factory() as session:
                seed(session, args.backlog, args.subscriptions, args.skew, args.cap)
            timings: dict[str, list[float]] = {"webhook": [], "amqp": []}
            counts: dict[str, int] = {}
            for _ in range(args.rounds):
                with hub.session_factory() as session:
                    start = time.perf_counter()
                    ids = store.claim_due(session, args.room, lease, owner="bench", webhooks=True,
                                          webhook_cap=args.cap)
                    timings["webhook"].append(time.perf_counter() - start)
                    counts["webhook"] = len(ids)
                    session.rollback()
                    start = time.perf_counter()
                    ids = store.claim_due(session, args.batch, lease, owner="bench", webhooks=False)
                    timings["amqp"].append(time.perf_counter() - start)
                    counts["amqp"] = len(ids)
                    session.rollback()
        finally:
            hub.close()
    tag = f"{args.backlog}" + (f"_skew{args.skew:g}" if args.skew else "")
    figures: dict[str, Figure] = {}
    for kind, values in timings.items():
        figures[f"{kind}_claim_ms_at_backlog_{tag}"] = round(statistics.median(values) * 1000, 1)
        figures[f"{kind}_claimed_at_backlog_{tag}"] = counts[kind]
        print(f"{kind} claim: median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms,"
              f" {counts[kind]} claimed")
    emit("claims", figures)


if __name__ == "__main__":
    main()
