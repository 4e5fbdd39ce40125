"""Handlers of subscriptions and their deliveries (issue 4): the commands of
:mod:`hub.syndication.handlers`, the ``syndication-matching`` consumer group, and the delivery
dispatcher registered as a worker background job."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hub.domain.messages import Command, Event
from hub.notices.events import NoticeVersionPublished
from hub.service_layer.handlers.audit import record_audit_entry
from hub.service_layer.messagebus import MessageBus
from hub.service_layer.worker import register_background_job
from hub.syndication.events import SubscriptionChanged
from hub.syndication.handlers import COMMAND_HANDLERS as _SYNDICATION_COMMANDS
from hub.syndication.matcher import match_notice_version

COMMAND_HANDLERS: dict[type[Command], Callable[..., Any]] = dict(_SYNDICATION_COMMANDS)
EVENT_HANDLERS: dict[type[Event], Sequence[Callable[..., Any]]] = {
    NoticeVersionPublished: [match_notice_version],
    SubscriptionChanged: [record_audit_entry],
}


def delivery_dispatcher_job(
    bus: MessageBus, session_factory: sessionmaker[Session]
) -> Callable[[threading.Event], None] | None:
    from hub.syndication.dispatcher import DeliveryDispatcher

    if "settings" not in bus.dependencies:  # a bus built by hand (unit tests): nothing to dispatch
        return None
    return DeliveryDispatcher(session_factory, bus.dependencies["settings"]).run_forever


delivery_dispatcher_job.job_name = "delivery-dispatcher"  # type: ignore[attr-defined]
register_background_job(delivery_dispatcher_job)
