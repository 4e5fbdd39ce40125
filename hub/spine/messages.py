"""Typed, immutable commands and events, and the envelope they travel in.

Events are registered by class name so that a consumer can rebuild them from the broker's bytes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Command", "Envelope", "Event", "event_type"]

_REGISTRY: dict[str, type[Message]] = {}


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    routing_suffix: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__ not in {"Command", "Event"}:
            _REGISTRY[cls.__name__] = cls


class Command(Message):
    """An instruction in the imperative (``CreateOrganisation``); handled exactly by one handler."""


class Event(Message):
    """A fact in the past tense (``OrganisationCreated``); any number of consumer groups react."""

    def routing_key(self) -> str:
        """Topic routing key: ``event.<Name>`` plus optional dotted suffix segments."""
        suffix = self.routing_suffix_for()
        return f"event.{type(self).__name__}" + (f".{suffix}" if suffix else "")

    def routing_suffix_for(self) -> str:
        return ""


def event_type(name: str) -> type[Message]:
    return _REGISTRY[name]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Envelope:
    """What crosses the broker: the event plus the ids that make consumers idempotent and traceable."""

    message_id: str
    message_type: str
    routing_key: str
    payload: dict[str, Any]
    occurred_at: datetime = field(default_factory=_now)
    correlation_id: str | None = None
    target_group: str | None = None

    @classmethod
    def wrap(cls, event: Event, correlation_id: str | None = None) -> Envelope:
        return cls(
            message_id=str(uuid.uuid4()),
            message_type=type(event).__name__,
            routing_key=event.routing_key(),
            payload=event.model_dump(mode="json"),
            correlation_id=correlation_id,
        )

    @classmethod
    def read(cls, source: object, **overrides: Any) -> Envelope:
        """From any object with the envelope's attribute names (an outbox or a dead-letter row)."""
        found = {f.name: getattr(source, f.name) for f in fields(cls) if hasattr(source, f.name)}
        return cls(**found | overrides)

    def to_event(self) -> Event:
        cls = event_type(self.message_type)
        event = cls.model_validate(self.payload)
        assert isinstance(event, Event)
        return event

    def body(self) -> bytes:
        return json.dumps(
            {
                "message_id": self.message_id,
                "message_type": self.message_type,
                "routing_key": self.routing_key,
                "occurred_at": self.occurred_at.isoformat(),
                "correlation_id": self.correlation_id,
                "payload": self.payload,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_body(cls, body: bytes, target_group: str | None = None) -> Envelope:
        data = json.loads(body)
        return cls(
            message_id=data["message_id"],
            message_type=data["message_type"],
            routing_key=data["routing_key"],
            payload=data["payload"],
            occurred_at=datetime.fromisoformat(data["occurred_at"]),
            correlation_id=data.get("correlation_id"),
            target_group=target_group,
        )
