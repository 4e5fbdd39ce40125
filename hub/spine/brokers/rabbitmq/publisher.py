"""Publishing with pipelined publisher confirms.

pika's ``BlockingChannel.basic_publish`` waits for each confirm before sending the next message, so a
relay batch of 200 costs 200 round trips through the quorum queue's log. This publisher sends the
whole batch, then waits for all the confirms at once. It drives a ``SelectConnection`` from the
calling thread only (start the I/O loop, stop it when the batch is settled), so it stays in one thread
like every pika connection must."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pika
from pika.channel import Channel
from pika.frame import Method
from pika.spec import Basic, BasicProperties

__all__ = ["ConfirmingPublisher", "ConnectionLost", "Outgoing", "PublishRefused"]

log = logging.getLogger(__name__)


class ConnectionLost(Exception):
    """The connection failed or closed before the batch was confirmed; retrying may help."""


class PublishRefused(Exception):
    """The broker nacked a message (e.g. overflow ``reject-publish``): it did not take it."""


@dataclass(frozen=True)
class Outgoing:
    exchange: str
    routing_key: str
    body: bytes
    properties: BasicProperties


@dataclass
class _Batch:
    first_tag: int
    last_tag: int
    acked: set[int] = field(default_factory=set)
    nacked: set[int] = field(default_factory=set)
    returned: list[tuple[str, str]] = field(default_factory=list)  # (message_id, routing key)

    def settle(self, tag: int, multiple: bool, ok: bool) -> None:
        tags = range(self.first_tag, tag + 1) if multiple else (tag,)
        target = self.acked if ok else self.nacked
        for t in tags:
            if self.first_tag <= t <= self.last_tag and t not in self.acked and t not in self.nacked:
                target.add(t)

    @property
    def settled(self) -> bool:
        return len(self.acked) + len(self.nacked) >= self.last_tag - self.first_tag + 1


class ConfirmingPublisher:
    def __init__(self, parameters: pika.ConnectionParameters, confirm_timeout_s: float) -> None:
        self.parameters = parameters
        self.confirm_timeout_s = confirm_timeout_s
        self._connection: pika.SelectConnection | None = None
        self._channel: Channel | None = None
        self._ready = False
        self._failure: str | None = None
        self._next_tag = 1
        self._batch: _Batch | None = None
        self._waiting_for: Callable[[], bool] = lambda: True
        self._last_used = time.monotonic()

    # -- connection lifecycle -------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._ready and self._connection is not None and self._connection.is_open

    def _open(self) -> None:
        self._ready = False
        self._failure = None
        self._next_tag = 1
        self._connection = pika.SelectConnection(
            self.parameters,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_connection_closed,
        )
        budget = (self.parameters.connection_attempts or 1) * (
            (self.parameters.socket_timeout or 10.0) + (self.parameters.retry_delay or 0.0)
        ) + (self.parameters.stack_timeout or 0.0)
        if not self._run_until(lambda: self._ready or self._failure is not None, budget) or not self._ready:
            failure = self._failure or "timed out opening the publisher channel"
            self._discard()
            raise ConnectionLost(failure)

    def _on_connection_open(self, connection: pika.BaseConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: Channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_selected)

    def _on_confirm_selected(self, _frame: Method) -> None:
        self._ready = True
        self._poke()

    def _on_open_error(self, _connection: pika.BaseConnection, error: BaseException | str) -> None:
        self._fail(f"could not connect: {error!r}")

    def _on_connection_closed(self, _connection: pika.BaseConnection, reason: BaseException) -> None:
        self._fail(f"connection closed: {reason!r}")

    def _on_channel_closed(self, _channel: Channel, reason: BaseException) -> None:
        self._fail(f"channel closed: {reason!r}")
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _fail(self, why: str) -> None:
        self._ready = False
        self._failure = self._failure or why
        self._poke()
        if self._connection is not None:
            self._connection.ioloop.stop()

    def _discard(self) -> None:
        connection = self._connection
        self._ready = False
        if connection is not None and connection.is_open:
            try:
                connection.close()
                self._run_until(lambda: connection.is_closed, 2.0, stop_on_failure=False)
            except Exception:  # already broken; dropping it is all we want
                log.debug("error while closing publisher connection", exc_info=True)
        self._connection, self._channel = None, None

    def close(self) -> None:
        self._discard()

    # -- the I/O loop, run only while we wait ---------------------------------------------------
    def _poke(self) -> None:
        if self._connection is not None and self._waiting_for():
            self._connection.ioloop.stop()

    def _run_until(self, done: Callable[[], bool], timeout: float, stop_on_failure: bool = True) -> bool:
        """Run the connection's I/O loop until ``done()``, a failure, or ``timeout`` seconds."""
        connection = self._connection
        if connection is None or done():
            return done()
        ioloop = connection.ioloop
        expired = False

        def on_timeout() -> None:
            nonlocal expired
            expired = True
            ioloop.stop()

        handle = ioloop.call_later(timeout, on_timeout)
        self._waiting_for = done
        try:
            while not done() and not expired and not (stop_on_failure and self._failure is not None):
                ioloop.start()
        finally:
            self._waiting_for = lambda: True
            ioloop.remove_timeout(handle)
        return done()

    # -- publishing ---------------------------------------------------------------------------
    def publish(self, messages: Sequence[Outgoing]) -> list[tuple[str, str]]:
        """Send all, wait for every confirm; return the (message id, routing key) of messages the
        broker returned as unroutable. Raises :class:`ConnectionLost` or :class:`PublishRefused`."""
        if not messages:
            return []
        heartbeat = self.parameters.heartbeat
        if heartbeat and time.monotonic() - self._last_used > heartbeat:
            # Nobody serviced heartbeats while we were idle: the broker may have dropped us already.
            # A fresh connection is cheaper than a failed batch and a spurious warning.
            self._discard()
        if not self.is_open:
            self._discard()
            self._open()
        assert self._channel is not None
        batch = _Batch(first_tag=self._next_tag, last_tag=self._next_tag + len(messages) - 1)
        self._batch = batch
        try:
            for message in messages:
                self._channel.basic_publish(
                    message.exchange, message.routing_key, message.body, message.properties, mandatory=True
                )
            self._next_tag += len(messages)
            confirmed = self._run_until(lambda: batch.settled, self.confirm_timeout_s)
            self._last_used = time.monotonic()
        except Exception as exc:
            self._discard()
            raise ConnectionLost(f"publish failed: {exc!r}") from exc
        finally:
            self._batch = None
        if not confirmed:
            failure = self._failure or f"no confirm within {self.confirm_timeout_s}s"
            self._discard()
            raise ConnectionLost(failure)
        if batch.nacked:
            raise PublishRefused(f"broker nacked {len(batch.nacked)} of {len(messages)} messages")
        return batch.returned

    def _on_confirm(self, frame: Method) -> None:
        method = frame.method
        if self._batch is not None and isinstance(method, Basic.Ack | Basic.Nack):
            self._batch.settle(method.delivery_tag, bool(method.multiple), isinstance(method, Basic.Ack))
        self._poke()

    def _on_return(self, _channel: Channel, method: Basic.Return, properties: BasicProperties,
                   _body: bytes) -> None:
        if self._batch is not None:
            self._batch.returned.append((str(properties.message_id), str(method.routing_key)))

