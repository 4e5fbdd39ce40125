"""The delivery dispatcher: a worker's periodic job that claims due deliveries (leased, in notice
order), sends them — webhooks concurrently, AMQP in one confirmed batch — and records each outcome.

At-least-once: a row leaves ``pending``/``failed`` only after the receiver's 2xx (or the broker's
confirm) is recorded. Each batch is claimed under its own owner token with a short lease that a
:class:`LeaseKeeper` renews while the batch is being sent and recorded, so a slow receiver keeps its
delivery with one dispatcher while a dispatcher that dies leaves claims another takes within the
lease. Outcomes are recorded only for rows the token still holds; recording that fails (the database
connection lost) is retried for ``record_retry_s`` before the leases are left to run out, and rows
never sent are released at once. Receivers dedupe on ``webhook-id`` (stable per delivery across
retries): a send whose outcome could not be recorded is sent again."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from datetime import timedelta
from types import TracebackType

import httpx
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.config import Settings
from hub.spine.messages import Envelope
from hub.spine.retry import Backoff, Jitter
from hub.spine.unit_of_work import outbox_row
from hub.subscriptions import repository as store
from hub.subscriptions.amqp_channel import AmqpChannel
from hub.subscriptions.config import SyndicationSettings
from hub.subscriptions.events import SubscriptionChanged
from hub.subscriptions.model import Channel, DeliveryStatus, live_secrets
from hub.subscriptions.retry import next_delay_s
from hub.subscriptions.sender import Attempt, encode_body, make_client, send_webhook
from hub.subscriptions.ssrf import Resolver
from hub.subscriptions.tables import DeliveryRow, PayloadRow, SubscriptionRow

__all__ = ["DeliveryDispatcher", "LeaseKeeper"]

log = logging.getLogger(__name__)

Claimed = tuple[DeliveryRow, SubscriptionRow, PayloadRow]

# Retrying to record outcomes: a dropped connection is usually replaced at the first retry.
RECORD_BACKOFF = Backoff(0.05, 2.0, jitter=Jitter.around(0.2))


def delivery_message_id(delivery_id: int) -> str:
    return f"dlv_{delivery_id}"


class DeliveryDispatcher:
    """``wake`` is set by the matching consumer once new deliveries are committed (bootstrap gives both
    the same object); ``resolve`` is the resolver of the SSRF check made before every send."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings, wake: threading.Event,
                 resolve: Resolver, transport: httpx.BaseTransport | None = None) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.wake = wake
        self.resolve = resolve
        self.config: SyndicationSettings = settings.syndication
        self.box = self.config.secret_box()
        self.client = make_client(self.config, transport)
        self.pool = ThreadPoolExecutor(self.config.dispatch_concurrency, thread_name_prefix="webhook")
        self._amqp: AmqpChannel | None = None

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
            while not stop.is_set():
                try:
                    handled = self.dispatch_once()
                    failures = 0
                except Exception:  # the database or broker is down: keep the loop, back off
                    log.exception("delivery dispatch failed; retrying")
                    handled = 0
                    failures += 1
                if handled < self.config.dispatch_batch:
                    self.wake.wait(backoff.delay(failures) if failures else interval)
                    self.wake.clear()
        finally:
            self.close()

    def dispatch_once(self) -> int:
        owner = uuid.uuid4().hex  # this batch's claim token
        lease = timedelta(seconds=self.config.lease)
        with self.session_factory() as session:
            ids = store.claim_due(session, self.config.dispatch_batch, lease, owner=owner)
            session.commit()
            if not ids:
                return 0
            claimed = store.load_claimed(session, ids)
            session.expunge_all()
        outcomes: dict[int, Attempt] = {}
        with LeaseKeeper(self.session_factory, ids, owner, lease, self.config.lease_renewal) as keeper:
            try:
                self._send(claimed, outcomes)
            finally:  # even when sending broke off: what was sent is recorded, the rest released
                self._record_retrying(claimed, outcomes, owner, keeper)
        return len(claimed)

    def _send(self, claimed: list[Claimed], outcomes: dict[int, Attempt]) -> None:
        """Send the batch, adding each outcome to ``outcomes`` as it is known. A row left without one
        was not sent."""
        webhooks = [c for c in claimed if c[1].channel == Channel.WEBHOOK.value]
        amqp = [c for c in claimed if c[1].channel != Channel.WEBHOOK.value]
        futures = {c[0].id: self.pool.submit(self._send_webhook, c) for c in webhooks}
        try:
            if amqp:
                outcomes.update(self._send_amqp(amqp))
        finally:  # every webhook request started is waited for: its outcome must be recorded
            for delivery_id, future in futures.items():
                try:
                    outcomes[delivery_id] = future.result()
                except CancelledError:  # the pool shut down before it was sent
                    continue
                except Exception as exc:  # a failure before the request went out (e.g. a secret unreadable)
                    log.exception("delivery %s could not be sent", delivery_id)
                    outcomes[delivery_id] = Attempt(ok=False, error=f"not sent: {exc}"[:500])

    def _body(self, payload: PayloadRow) -> bytes:
        url = f"{self.settings.api.public_base_url}/api/v1/notices/{payload.notice_id}"
        return encode_body(payload.body, self.config.max_payload_bytes, url)

    def _send_webhook(self, item: Claimed) -> Attempt:
        delivery, subscription, payload = item
        secrets = [self.box.open(stored) for stored in live_secrets(subscription.secrets or [], store.utcnow())]
        return send_webhook(self.client, self.config, self.resolve, subscription.url or "", secrets,
                            delivery_message_id(delivery.id), self._body(payload))

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

    def _record_retrying(self, claimed: list[Claimed], outcomes: dict[int, Attempt], owner: str,
                         keeper: LeaseKeeper) -> None:
        """Record the outcomes, retrying with backoff for ``record_retry_s`` while the database fails
        (a dropped connection, a failover); the keeper renews the leases meanwhile. Past that the
        error is raised and the leases, no longer renewed, run out: those rows are sent again."""
        deadline = time.monotonic() + self.config.record_retry_s
        failures = 0
        while True:
            try:
                with keeper.paused():  # one writer on these rows at a time: no lock-order deadlock
                    self._record(claimed, outcomes, owner)
                    keeper.stop()  # recorded: nothing left to renew
                return
            except SQLAlchemyError:
                failures += 1
                delay = RECORD_BACKOFF.delay(failures)
                if time.monotonic() + delay > deadline:
                    log.error("could not record the outcomes of %d deliveries; their leases run out in %.3g s "
                              "and they are sent again", len(claimed), self.config.lease)
                    raise
                log.warning("recording delivery outcomes failed (%d); retrying in %.2f s", failures, delay,
                            exc_info=True)
                time.sleep(delay)

    def _record(self, claimed: list[Claimed], outcomes: dict[int, Attempt], owner: str) -> None:
        """Each outcome, on rows this batch still holds (``owner``); rows without an outcome are
        released. A row another dispatcher took over meanwhile is theirs to record."""
        now = store.utcnow()
        mine = DeliveryRow.lease_owner == owner
        released = {"lease_until": None, "lease_owner": None, "updated_at": now}
        recorded = 0
        with self.session_factory() as session:
            # Plain first-time successes (the bulk of the traffic) share one statement per status code.
            first_ok: dict[int | None, list[int]] = {}
            for delivery, _, _ in claimed:
                attempt = outcomes.get(delivery.id)
                if attempt is not None and attempt.ok and delivery.attempts == 0:
                    first_ok.setdefault(attempt.status_code, []).append(delivery.id)
            for status_code, ids in first_ok.items():
                result = session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids), mine).values(
                    **released, attempts=1, last_status_code=status_code, last_error=None,
                    status=DeliveryStatus.DELIVERED.value, delivered_at=now))
                recorded += result.rowcount  # type: ignore[attr-defined]
            done = {i for ids in first_ok.values() for i in ids}
            for delivery, subscription, _ in claimed:
                attempt = outcomes.get(delivery.id)
                if delivery.id in done or attempt is None:
                    continue
                attempts = delivery.attempts + 1
                values: dict[str, object] = {**released, "attempts": attempts,
                                             "last_status_code": attempt.status_code, "last_error": attempt.error}
                if attempt.ok:
                    values.update(status=DeliveryStatus.DELIVERED.value, delivered_at=now)
                elif attempt.gone:
                    values.update(status=DeliveryStatus.DEAD.value)
                else:
                    delay = next_delay_s(attempts, self.config, attempt.retry_after_s)
                    if delay is None:
                        values.update(status=DeliveryStatus.DEAD.value)
                    else:
                        values.update(status=DeliveryStatus.FAILED.value,
                                      next_attempt_at=now + timedelta(seconds=delay))
                result = session.execute(update(DeliveryRow).where(DeliveryRow.id == delivery.id, mine)
                                         .values(**values))
                if result.rowcount:  # type: ignore[attr-defined]
                    recorded += 1
                    if attempt.gone:
                        self._disable(session, subscription.id, "the endpoint answered 410 Gone")
            unsent = [d.id for d, _, _ in claimed if d.id not in outcomes]
            store.release_claims(session, unsent, owner)
            session.commit()
        if recorded < len(outcomes):
            log.warning("%d delivery outcomes were not recorded: their leases ran out and another dispatcher "
                        "took them over", len(outcomes) - recorded)

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
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
        if self._amqp is not None:
            self._amqp.close()


class LeaseKeeper:
    """Renews a batch's leases every ``every_s`` seconds from a thread of its own while the dispatcher
    sends and records, so the batch stays claimed however slow its receivers are — and only while the
    dispatcher lives: a dead one's leases run out within one lease. A failed renewal (the database
    away) is logged and tried again at the next interval."""

    def __init__(self, session_factory: sessionmaker[Session], ids: Sequence[int], owner: str, lease: timedelta,
                 every_s: float) -> None:
        self.session_factory = session_factory
        self.ids = list(ids)
        self.owner = owner
        self.lease = lease
        self.every_s = every_s
        self.renewals = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="delivery-leases", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        # Not waited for long: a renewal stuck on a dead connection may finish later, harmlessly —
        # it only ever touches rows this batch still holds.
        self._thread.join(timeout=self.every_s)

    def paused(self) -> threading.Lock:
        """Held while the dispatcher writes the batch's rows itself."""
        return self._lock

    def stop(self) -> None:
        self._stop.set()

    def renew(self) -> int | None:
        """Renew now; how many of the batch are still held, or ``None`` once stopped."""
        with self._lock:
            if self._stop.is_set():
                return None
            with self.session_factory() as session:
                held = store.renew_claims(session, self.ids, self.owner, self.lease)
                session.commit()
        self.renewals += 1
        return held

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                held = self.renew()
            except Exception:
                log.warning("could not renew the leases of %d deliveries", len(self.ids), exc_info=True)
                continue
            if held is not None and held < len(self.ids):
                log.warning("%d of %d claimed deliveries were taken over by another dispatcher",
                            len(self.ids) - held, len(self.ids))
