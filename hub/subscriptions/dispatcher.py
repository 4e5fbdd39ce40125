"""The delivery dispatcher: a worker's periodic job that claims due deliveries (leased, in notice
order), sends them — webhooks concurrently, AMQP in one confirmed batch — and records each outcome.

At-least-once: a row leaves ``pending``/``failed`` only after the receiver's 2xx (or the broker's
confirm) is recorded; a dispatcher that dies mid-batch leaves leased rows that another picks up when
the lease ends. Receivers dedupe on ``webhook-id`` (stable per delivery across retries)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from hub.config import Settings
from hub.spine.messages import Envelope
from hub.spine.retry import Backoff
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

__all__ = ["DeliveryDispatcher"]

log = logging.getLogger(__name__)

Claimed = tuple[DeliveryRow, SubscriptionRow, PayloadRow]


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
        with self.session_factory() as session:
            ids = store.claim_due(session, self.config.dispatch_batch, timedelta(seconds=self.config.lease_s))
            session.commit()
            if not ids:
                return 0
            claimed = store.load_claimed(session, ids)
            session.expunge_all()
        outcomes: dict[int, Attempt] = {}
        webhooks = [c for c in claimed if c[1].channel == Channel.WEBHOOK.value]
        amqp = [c for c in claimed if c[1].channel != Channel.WEBHOOK.value]
        futures = {c[0].id: self.pool.submit(self._send_webhook, c) for c in webhooks}
        if amqp:
            outcomes.update(self._send_amqp(amqp))
        for delivery_id, future in futures.items():
            outcomes[delivery_id] = future.result()
        self._record(claimed, outcomes)
        return len(claimed)

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

    def _record(self, claimed: list[Claimed], outcomes: dict[int, Attempt]) -> None:
        now = store.utcnow()
        with self.session_factory() as session:
            # Plain first-time successes (the bulk of the traffic) share one statement per status code.
            first_ok: dict[int | None, list[int]] = {}
            for delivery, _, _ in claimed:
                attempt = outcomes[delivery.id]
                if attempt.ok and delivery.attempts == 0:
                    first_ok.setdefault(attempt.status_code, []).append(delivery.id)
            for status_code, ids in first_ok.items():
                session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids)).values(
                    attempts=1, lease_until=None, updated_at=now, last_status_code=status_code, last_error=None,
                    status=DeliveryStatus.DELIVERED.value, delivered_at=now))
            done = {i for ids in first_ok.values() for i in ids}
            for delivery, subscription, _ in claimed:
                if delivery.id in done:
                    continue
                attempt = outcomes[delivery.id]
                attempts = delivery.attempts + 1
                values: dict[str, object] = {"attempts": attempts, "lease_until": None, "updated_at": now,
                                             "last_status_code": attempt.status_code, "last_error": attempt.error}
                if attempt.ok:
                    values.update(status=DeliveryStatus.DELIVERED.value, delivered_at=now)
                elif attempt.gone:
                    values.update(status=DeliveryStatus.DEAD.value)
                    self._disable(session, subscription.id, "the endpoint answered 410 Gone")
                else:
                    delay = next_delay_s(attempts, self.config, attempt.retry_after_s)
                    if delay is None:
                        values.update(status=DeliveryStatus.DEAD.value)
                    else:
                        values.update(status=DeliveryStatus.FAILED.value,
                                      next_attempt_at=now + timedelta(seconds=delay))
                session.execute(update(DeliveryRow).where(DeliveryRow.id == delivery.id).values(**values))
            session.commit()

    @staticmethod
    def _disable(session: Session, subscription_id: str, reason: str) -> None:
        subscriptions = store.SqlSubscriptionRepository(session)
        subscription = subscriptions.get(subscription_id)
        if subscription is None:  # deleted meanwhile
            return
        subscription.disable(reason, store.utcnow())
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
