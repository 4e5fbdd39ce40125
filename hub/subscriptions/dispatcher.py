"""The delivery dispatcher: a worker's periodic job that claims due deliveries (leased, in notice
order), sends them — webhooks concurrently as coroutines on the dispatcher's own event loop
(:class:`~hub.subscriptions.webhook_loop.WebhookLoop`, one ``httpx.AsyncClient``), AMQP in one confirmed
batch — and records the outcomes in bulk (one statement per kind of outcome).

Webhook attempts are pipelined: the dispatcher records each outcome as its attempt completes and keeps
claiming while slower attempts are still in flight, up to ``dispatch_concurrency`` attempts at once and
``subscription_concurrency`` per subscription (counted over every dispatcher's live leases), so a slow
or hostile receiver holds a few slots until its ``attempt_deadline_s`` while everyone else's deliveries
flow. The claim never hands out version n+1 of a notice for a subscription while version n is open
(in flight counts: the row stays ``pending``/``failed`` until its outcome is recorded).

At-least-once: a row leaves ``pending``/``failed`` only after the receiver's 2xx (or the broker's
confirm) is recorded. Each claim has its own owner token and a short lease that a :class:`LeaseKeeper`
renews while its rows are in flight, so a slow receiver keeps its delivery with one dispatcher while a
dispatcher that dies leaves claims another takes within the lease. Outcomes are recorded only for rows
the token still holds; recording that fails (the database connection lost) is retried for
``record_retry_s`` before the leases are left to run out, and rows never sent are released at once.
Receivers dedupe on ``webhook-id`` (stable per delivery across retries): a send whose outcome could not
be recorded is sent again."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import CancelledError, Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import cast

import httpx
from sqlalchemy import Table, bindparam, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.config import Settings
from hub.spine.messages import Envelope
from hub.spine.retry import Backoff, Jitter
from hub.spine.unit_of_work import outbox_row
from hub.subscriptions import repository as store
from hub.subscriptions.amqp_channel import AmqpChannel
from hub.subscriptions.batching import batched_body
from hub.subscriptions.config import SyndicationSettings
from hub.subscriptions.events import SubscriptionChanged
from hub.subscriptions.model import Channel, DeliveryStatus, live_secrets
from hub.subscriptions.retry import next_delay_s
from hub.subscriptions.sender import Attempt, encode_body, make_client, send_webhook
from hub.subscriptions.ssrf import Resolver
from hub.subscriptions.tables import DeliveryRow, PayloadRow, SubscriptionRow
from hub.subscriptions.webhook_loop import WebhookLoop

__all__ = ["DeliveryDispatcher", "LeaseKeeper"]

log = logging.getLogger(__name__)

Claimed = tuple[DeliveryRow, SubscriptionRow, PayloadRow]

# While webhook attempts complete with every sender busy, claims (of AMQP deliveries then) are made at
# most this often rather than at every completion.
CLAIM_GAP_S = 0.05
QUEUED_CHECK_S = 1.0  # how long a dispatcher trusts its answer to "any AMQP subscription active?"

# Retrying to record outcomes: a dropped connection is usually replaced at the first retry.
RECORD_BACKOFF = Backoff(0.05, 2.0, jitter=Jitter.around(0.2))


def delivery_message_id(delivery_id: int) -> str:
    return f"dlv_{delivery_id}"


def is_webhook(item: Claimed) -> bool:
    return item[1].channel == Channel.WEBHOOK.value


@dataclass(frozen=True)
class Finished:
    """A claimed delivery whose attempt is over: ``attempt`` is ``None`` when it was never sent."""

    item: Claimed
    owner: str
    attempt: Attempt | None


def within_caps(claimed: Iterable[Claimed], free: int, per_subscription: int,
                in_flight: Counter[str]) -> tuple[list[Claimed], list[Claimed]]:
    """Split a claim into the rows to send now and those to release: every AMQP row is kept (they go in
    one confirmed batch); webhook rows while there is room for ``free`` more and their subscription has
    fewer than ``per_subscription`` in flight."""
    keep: list[Claimed] = []
    spare: list[Claimed] = []
    taken: Counter[str] = Counter()
    for item in claimed:
        sid = item[1].id
        if is_webhook(item) and (free <= 0 or in_flight[sid] + taken[sid] >= per_subscription):
            spare.append(item)
            continue
        if is_webhook(item):
            free -= 1
            taken[sid] += 1
        keep.append(item)
    return keep, spare


def attempt_of(delivery_id: int, future: Future[Attempt]) -> Attempt | None:
    """A finished attempt's outcome; ``None`` when it was cancelled before it was sent."""
    try:
        return future.result()
    except CancelledError:  # the pool shut down before it was sent
        return None
    except Exception as exc:  # a failure before the request went out (e.g. a secret unreadable)
        log.error("delivery %s could not be sent", delivery_id, exc_info=exc)
        return Attempt(ok=False, error=f"not sent: {exc}"[:500])


class DeliveryDispatcher:
    """``wake`` is set by the matching consumer once new deliveries are committed (bootstrap gives both
    the same object) and by the dispatcher itself when an attempt completes; ``resolve`` is the
    resolver of the SSRF check made before every send."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings, wake: threading.Event,
                 resolve: Resolver, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.wake = wake
        self.resolve = resolve
        self.config: SyndicationSettings = settings.syndication
        self.box = self.config.secret_box()
        self.transport = transport
        self.keeper = LeaseKeeper(session_factory, timedelta(seconds=self.config.lease), self.config.lease_renewal)
        self._finished: queue.SimpleQueue[Finished] = queue.SimpleQueue()
        self._in_flight: dict[int, str] = {}  # webhook deliveries started, not yet recorded: their subscription
        self._attempts: dict[int, Future[Attempt]] = {}  # the same deliveries' attempts
        self._loop: WebhookLoop | None = None
        self._amqp: AmqpChannel | None = None
        self._queued_at: tuple[float, bool] | None = None  # when AMQP subscriptions were looked for, and the answer

    @property
    def webhooks(self) -> WebhookLoop:
        """The event loop the webhook attempts run on, started on first use."""
        if self._loop is None:
            self._loop = WebhookLoop(lambda: make_client(self.config, self.transport),
                                     self.config.dispatch_concurrency)
        return self._loop

    @property
    def amqp(self) -> AmqpChannel:
        if self._amqp is None:
            self._amqp = AmqpChannel(self.settings.broker, self.settings.relay.confirm_timeout_s)
        return self._amqp

    def run_forever(self, stop: threading.Event) -> None:
        interval = self.config.dispatch_interval_s
        backoff = Backoff(2 * interval, 30.0)
        failures = 0  # in a row
        try:
            with self.keeper:
                claimed_at = 0.0
                while not stop.is_set():
                    try:
                        recorded = self.record_finished()
                        busy = False
                        pause = interval
                        # Woken by completions while every sender is still busy: nothing to claim for
                        # webhooks, so only the AMQP claim is due, and it waits up to CLAIM_GAP_S.
                        if recorded and self._room() == 0 and time.monotonic() - claimed_at < CLAIM_GAP_S:
                            pause = min(interval, CLAIM_GAP_S)
                        else:
                            claimed_at = time.monotonic()
                            busy = self.dispatch_once()
                        failures = 0
                    except Exception:  # the database or broker is down: keep the loop, back off
                        log.exception("delivery dispatch failed; retrying")
                        busy, pause = False, interval
                        failures += 1
                    if not busy:
                        self.wake.wait(backoff.delay(failures) if failures else pause)
                        self.wake.clear()
                self._drain()
        finally:
            self.close()

    def _queued(self, session: Session) -> bool:
        """Whether to run the AMQP claim: some active subscription takes queued deliveries. The answer
        is kept for :data:`QUEUED_CHECK_S`, so a webhook-only hub pays for no AMQP claim and a new AMQP
        subscription is served within that time."""
        now = time.monotonic()
        if self._queued_at is None or now - self._queued_at[0] >= QUEUED_CHECK_S:
            self._queued_at = (now, store.any_queued_channel(session))
        return self._queued_at[1]

    def dispatch_once(self) -> bool:
        """Claim AMQP deliveries (a batch) and webhook deliveries (see :meth:`_room`), send the AMQP ones
        and record them, and start the webhook attempts (recorded by :meth:`record_finished` as they
        complete). Whether to go round again at once: a claim was full."""
        room = self._room()
        owner = uuid.uuid4().hex  # this claim's token
        lease = timedelta(seconds=self.config.lease)
        cap = self.config.subscription_concurrency
        with self.session_factory() as session:
            amqp_ids = store.claim_due(session, self.config.dispatch_batch, lease, owner=owner,
                                       webhooks=False) if self._queued(session) else []
            webhook_ids = store.claim_due(session, room, lease, owner=owner, webhooks=True,
                                          webhook_cap=cap) if room > 0 else []
            claimed = store.load_claimed(session, amqp_ids + webhook_ids)
            keep, spare = within_caps(claimed, room, cap, self._per_subscription())
            store.release_claims(session, [d.id for d, _, _ in spare], owner)
            session.commit()
            session.expunge_all()
        if keep:
            self.keeper.hold([d.id for d, _, _ in keep], owner)
        for item in keep:
            if is_webhook(item):
                self._start(item, owner)
        amqp = [c for c in keep if not is_webhook(c)]
        if amqp:
            outcomes = self._send_amqp(amqp)
            self._record_retrying([Finished(item, owner, outcomes.get(item[0].id)) for item in amqp])
        started = len(keep) - len(amqp)
        more_webhooks = 0 < len(webhook_ids) == room and started < room  # others may be due behind a capped one
        return len(amqp_ids) >= self.config.dispatch_batch or more_webhooks

    def _room(self) -> int:
        """How many webhook deliveries to claim: none while every sender is busy (a claim waiting behind
        slow attempts would wait with them), else up to ``dispatch_batch`` claimed and not yet recorded,
        queued for the senders (at least one each)."""
        held = len(self._in_flight)
        if held >= self.config.dispatch_concurrency:
            return 0
        return max(self.config.dispatch_batch, self.config.dispatch_concurrency) - held

    def record_finished(self) -> int:
        """Record every webhook attempt that completed since the last call; how many."""
        finished: list[Finished] = []
        while True:
            try:
                finished.append(self._finished.get_nowait())
            except queue.Empty:
                break
        if finished:
            try:
                self._record_retrying(finished)
            finally:
                for done in finished:
                    self._in_flight.pop(done.item[0].id, None)
                    self._attempts.pop(done.item[0].id, None)
        return len(finished)

    def _per_subscription(self) -> Counter[str]:
        return Counter(self._in_flight.values())

    def _start(self, item: Claimed, owner: str) -> None:
        self._in_flight[item[0].id] = item[1].id

        async def send(client: httpx.AsyncClient) -> Attempt:
            return await self._send_webhook(client, item)

        future = self.webhooks.submit(send)
        self._attempts[item[0].id] = future
        future.add_done_callback(lambda f: self._complete(item, owner, f))

    def _complete(self, item: Claimed, owner: str, future: Future[Attempt]) -> None:
        """On the loop's thread, as an attempt ends: queue its outcome and wake the dispatcher."""
        self._finished.put(Finished(item, owner, attempt_of(item[0].id, future)))
        self.wake.set()

    def _drain(self) -> None:
        """Stopping: attempts not started are cancelled (released, no attempt counted); those under way
        are waited for (at most ``attempt_deadline_s``) and recorded."""
        if self._loop is not None:
            self._loop.close(list(self._attempts.values()), self.config.attempt_deadline_s + 1.0)
        self.record_finished()

    def _body(self, payload: PayloadRow, recipients: list[str] | None = None) -> bytes:
        url = f"{self.settings.api.public_base_url}/api/v1/notices/{payload.notice_id}"
        return encode_body(batched_body(payload.body, recipients), self.config.max_payload_bytes, url)

    async def _send_webhook(self, client: httpx.AsyncClient, item: Claimed) -> Attempt:
        delivery, subscription, payload = item
        secrets = [self.box.open(stored) for stored in live_secrets(subscription.secrets or [], store.utcnow())]
        return await send_webhook(client, self.config, self.resolve, subscription.url or "", secrets,
                                  delivery_message_id(delivery.id), self._body(payload, delivery.recipients))

    def _send_amqp(self, items: list[Claimed]) -> dict[int, Attempt]:
        messages = []
        for delivery, subscription, payload in items:
            msg_id = delivery_message_id(delivery.id)
            if subscription.channel == Channel.EXCHANGE.value:
                messages.append(self.amqp.fanout(payload.routing_key, msg_id, self._body(payload)))
            else:
                messages.append(self.amqp.direct(subscription.id, msg_id, self._body(payload)))
        try:
            returned = self.amqp.publish(messages)
        except Exception as exc:  # connection lost or nacked: nothing is known delivered
            return {d.id: Attempt(ok=False, error=f"AMQP publish failed: {exc}"[:500]) for d, _, _ in items}
        outcomes = {}
        for delivery, subscription, _ in items:
            lost = delivery_message_id(delivery.id) in returned and subscription.channel == Channel.AMQP.value
            outcomes[delivery.id] = Attempt(ok=not lost, error="subscriber queue is missing" if lost else None)
        return outcomes

    def _record_retrying(self, finished: Sequence[Finished]) -> None:
        """Record these outcomes, retrying with backoff for ``record_retry_s`` while the database fails
        (a dropped connection, a failover); the keeper renews the leases meanwhile. Past that the rows
        are let go and the error raised: their leases run out and they are sent again."""
        deadline = time.monotonic() + self.config.record_retry_s
        failures = 0
        ids = [done.item[0].id for done in finished]
        while True:
            try:
                with self.keeper.paused():  # one writer on these rows at a time: no lock-order deadlock
                    self._record(finished)
                    self.keeper.drop(ids)  # recorded: nothing left to renew
                return
            except SQLAlchemyError:
                failures += 1
                delay = RECORD_BACKOFF.delay(failures)
                if time.monotonic() + delay > deadline:
                    log.error("could not record the outcomes of %d deliveries; their leases run out in %.3g s "
                              "and they are sent again", len(ids), self.config.lease)
                    self.keeper.drop(ids)
                    raise
                log.warning("recording delivery outcomes failed (%d); retrying in %.2f s", failures, delay,
                            exc_info=True)
                time.sleep(delay)

    def _record(self, finished: Sequence[Finished]) -> None:
        """Each outcome, on rows its claim still holds (its owner token), in one transaction: one
        statement per kind of outcome — successes by status code, failures and dead rows each in one
        ``executemany`` — and one per 410 (it disables the subscription); rows without an outcome are
        released. A row another dispatcher took over meanwhile is theirs to record."""
        now = store.utcnow()
        released = {"lease_until": None, "lease_owner": None, "updated_at": now}
        successes: dict[tuple[int | None, str], list[int]] = {}
        retried: list[dict[str, object]] = []
        dead: list[dict[str, object]] = []
        gone: list[tuple[Finished, Attempt]] = []
        unsent: dict[str, list[int]] = {}
        for done in finished:
            delivery, attempt = done.item[0], done.attempt
            if attempt is None:
                unsent.setdefault(done.owner, []).append(delivery.id)
            elif attempt.ok:
                successes.setdefault((attempt.status_code, done.owner), []).append(delivery.id)
            elif attempt.gone:
                gone.append((done, attempt))
            else:
                row: dict[str, object] = {"b_id": delivery.id, "b_owner": done.owner, "b_code": attempt.status_code,
                                          "b_error": attempt.error}
                delay = next_delay_s(delivery.attempts + 1, self.config, attempt.retry_after_s)
                if delay is None:
                    dead.append(row)
                else:
                    retried.append({**row, "b_next": now + timedelta(seconds=delay)})
        recorded = 0
        with self.session_factory() as session:
            for (status_code, owner), ids in successes.items():
                result = session.execute(
                    update(DeliveryRow).where(DeliveryRow.id.in_(ids), DeliveryRow.lease_owner == owner)
                    .values(**released, attempts=DeliveryRow.attempts + 1, last_status_code=status_code,
                            last_error=None, status=DeliveryStatus.DELIVERED.value, delivered_at=now)
                    .execution_options(synchronize_session=False))
                recorded += result.rowcount  # type: ignore[attr-defined]
            table = cast(Table, DeliveryRow.__table__)
            by_row = (table.c.id == bindparam("b_id")) & (table.c.lease_owner == bindparam("b_owner"))
            failed = {**released, "attempts": table.c.attempts + 1, "last_status_code": bindparam("b_code"),
                      "last_error": bindparam("b_error")}
            if retried:
                result = session.connection().execute(update(table).where(by_row).values(
                    **failed, status=DeliveryStatus.FAILED.value, next_attempt_at=bindparam("b_next")), retried)
                recorded += max(0, result.rowcount)
            if dead:
                result = session.connection().execute(update(table).where(by_row).values(
                    **failed, status=DeliveryStatus.DEAD.value), dead)
                recorded += max(0, result.rowcount)
            for done, attempt in gone:
                delivery, subscription, _ = done.item
                result = session.execute(
                    update(DeliveryRow).where(DeliveryRow.id == delivery.id, DeliveryRow.lease_owner == done.owner)
                    .values(**released, attempts=DeliveryRow.attempts + 1, last_status_code=attempt.status_code,
                            last_error=attempt.error, status=DeliveryStatus.DEAD.value)
                    .execution_options(synchronize_session=False))
                if result.rowcount:  # type: ignore[attr-defined]
                    recorded += 1
                    self._disable(session, subscription.id, "the endpoint answered 410 Gone")
            for owner, ids in unsent.items():
                store.release_claims(session, ids, owner)
            session.commit()
        outcomes = len(finished) - sum(len(ids) for ids in unsent.values())
        if recorded < outcomes:
            log.warning("%d delivery outcomes were not recorded: their leases ran out and another dispatcher "
                        "took them over", outcomes - recorded)

    @staticmethod
    def _disable(session: Session, subscription_id: str, reason: str) -> None:
        subscriptions = store.SqlSubscriptionRepository(session)
        subscription = subscriptions.get(subscription_id, for_update=True)
        # Deleted meanwhile, or disabled already (by an earlier 410 of this batch or another dispatcher):
        # only the transition from active is recorded and audited.
        if subscription is None or not subscription.disable(reason, store.utcnow()):
            return
        subscriptions.save(subscription)
        # The audit trail learns of it through the outbox, in the same transaction as the change.
        event = SubscriptionChanged(subscription_id=subscription.id, org_id=subscription.org_id, change="disabled",
                                    channel=subscription.channel.value, details={"reason": reason})
        session.add(outbox_row(Envelope.wrap(event)))
        log.warning("subscription disabled", extra={"subscription_id": subscription.id, "reason": reason})

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
        if self._amqp is not None:
            self._amqp.close()


class LeaseKeeper:
    """Renews the leases of the deliveries a dispatcher holds (``hold`` when claimed, ``drop`` once
    recorded or let go) every ``every_s`` seconds from a thread of its own, so they stay claimed however
    slow their receivers are — and only while the dispatcher lives: a dead one's leases run out within
    one lease. A failed renewal (the database away) is logged and tried again at the next interval."""

    def __init__(self, session_factory: sessionmaker[Session], lease: timedelta, every_s: float) -> None:
        self.session_factory = session_factory
        self.lease = lease
        self.every_s = every_s
        self.renewals = 0
        self._held: dict[int, str] = {}  # delivery id -> its claim's owner token
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name="delivery-leases", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        # Not waited for long: a renewal stuck on a dead connection may finish later, harmlessly —
        # it only ever touches rows their claims still hold.
        self._thread.join(timeout=self.every_s)

    def hold(self, ids: Iterable[int], owner: str) -> None:
        with self._lock:
            self._held.update(dict.fromkeys(ids, owner))

    def drop(self, ids: Iterable[int]) -> None:
        """Called with :meth:`paused` held or not; the lock is reentrant."""
        with self._lock:
            for delivery_id in ids:
                self._held.pop(delivery_id, None)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Held while the dispatcher writes its rows itself."""
        with self._lock:
            yield

    def renew(self) -> tuple[int, int]:
        """Renew now; how many deliveries are still held, of how many."""
        with self._lock:
            if not self._held:
                return 0, 0
            with self.session_factory() as session:
                held = store.renew_held(session, self._held, self.lease)
                session.commit()
            total = len(self._held)
        self.renewals += 1
        return held, total

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                held, total = self.renew()
            except Exception:
                log.warning("could not renew the leases of %d deliveries", len(self._held), exc_info=True)
                continue
            if held < total:
                log.warning("%d of %d claimed deliveries were taken over by another dispatcher",
                            total - held, total)
