"""Use cases that span the network and a transaction: create, change and delete a subscription.

The command handlers only touch the database. What needs the outside world happens here, around the
command, with adapters bootstrap injects:

- the SSRF check resolves the webhook's host name (DNS) *before* the command, so no transaction waits
  on a resolver (the sender checks again before every send: DNS can change in between);
- an AMQP subscriber's queue exists *before* the subscription commits, so no matched notice can miss
  it; new bindings are added before the commit and stale ones removed after it (and what was added is
  taken back if the commit fails). RabbitMQ and the database cannot change in one transaction, so a
  failure in between can only leave an extra binding — an extra message, deduped on ``message_id`` —
  never a missed notice."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from hub.spine.errors import Rejected
from hub.subscriptions.commands import CreateSubscription, DeleteSubscription, RegisterEndpoint, UpdateSubscription
from hub.subscriptions.handlers import owned
from hub.subscriptions.model import Channel, Subscription, amqp_bindings, parse_filter
from hub.subscriptions.repository import SubscriptionsUnitOfWork
from hub.subscriptions.ssrf import Resolver, UnsafeTarget, check_target

__all__ = ["NoSubscriberQueues", "SubscriberQueues", "SubscriptionService"]


class CommandBus(Protocol):
    def handle(self, command: Any) -> Any: ...


class SubscriberQueues(Protocol):
    """Each AMQP subscriber's own queue on the broker and its bindings to the notices exchange."""

    def declare(self, subscription_id: str, binding_keys: Sequence[str]) -> None: ...
    def bind(self, subscription_id: str, binding_keys: Sequence[str]) -> None: ...
    def unbind(self, subscription_id: str, binding_keys: Sequence[str]) -> None: ...
    def delete(self, subscription_id: str) -> None: ...


class NoSubscriberQueues:
    """The in-process broker has no subscriber queues (an AMQP subscription is refused there)."""

    def declare(self, subscription_id: str, binding_keys: Sequence[str]) -> None:
        pass

    def bind(self, subscription_id: str, binding_keys: Sequence[str]) -> None:
        pass

    def unbind(self, subscription_id: str, binding_keys: Sequence[str]) -> None:
        pass

    def delete(self, subscription_id: str) -> None:
        pass


@dataclass(frozen=True)
class SubscriptionService:
    uow_factory: Callable[[], AbstractContextManager[SubscriptionsUnitOfWork]]  # reads the state a change starts from
    queues: SubscriberQueues
    resolve: Resolver
    allow_private_targets: bool = False
    allow_loopback_targets: bool = False

    def check_url(self, url: str, field: str = "channel.url") -> None:
        try:
            check_target(url, self.resolve, allow_private=self.allow_private_targets,
                         allow_loopback=self.allow_loopback_targets)
        except UnsafeTarget as exc:
            raise Rejected(field, str(exc)) from exc

    def register_endpoint(self, bus: CommandBus, cmd: RegisterEndpoint) -> tuple[Subscription, str]:
        if cmd.url:
            self.check_url(cmd.url, "url")
        result: tuple[Subscription, str] = bus.handle(cmd)
        return result

    def create(self, bus: CommandBus, cmd: CreateSubscription) -> tuple[Subscription, str | None]:
        if cmd.channel == Channel.WEBHOOK.value and cmd.url:
            self.check_url(cmd.url)
        queued = cmd.channel == Channel.AMQP.value
        if queued:
            self.queues.declare(cmd.subscription_id, amqp_bindings(parse_filter(cmd.filter)))
        try:
            result: tuple[Subscription, str | None] = bus.handle(cmd)
        except Exception:
            if queued:
                self.queues.delete(cmd.subscription_id)
            raise
        return result

    def update(self, bus: CommandBus, cmd: UpdateSubscription) -> Subscription:
        with self.uow_factory() as uow:
            before = owned(uow.subscriptions, cmd.subscription_id, cmd.org_id, cmd.endpoint)
        if cmd.url is not None and before.channel is Channel.WEBHOOK:
            self.check_url(cmd.url, "url" if before.batch else "channel.url")
        added: list[str] = []
        stale: list[str] = []
        if before.channel is Channel.AMQP:
            wanted = parse_filter(cmd.filter) if cmd.filter is not None else before.filter  # 422 before any change
            old, new = before.bindings, amqp_bindings(wanted)
            added, stale = [k for k in new if k not in old], [k for k in old if k not in new]
        if added:
            self.queues.bind(cmd.subscription_id, added)
        try:
            after: Subscription = bus.handle(cmd)
        except Exception:
            if added:  # the change did not happen: take back what was added for it
                self.queues.unbind(cmd.subscription_id, added)
            raise
        if stale:
            self.queues.unbind(cmd.subscription_id, stale)
        return after

    def delete(self, bus: CommandBus, cmd: DeleteSubscription) -> None:
        deleted: Subscription = bus.handle(cmd)
        if deleted.channel is Channel.AMQP:
            self.queues.delete(cmd.subscription_id)
