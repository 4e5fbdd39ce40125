"""Replaying dead letters: each goes back through the outbox, addressed to the one consumer group that
gave up on it, with its original message id (so a group that did apply it meanwhile skips it)."""

from __future__ import annotations

from dataclasses import replace

from hub.spine.messages import Command, Event
from hub.spine.unit_of_work import AbstractUnitOfWork

__all__ = ["DeadLetterReplayed", "ReplayDeadLetters", "replay_dead_letters"]


class ReplayDeadLetters(Command):
    ids: list[int] | None = None  # None: every dead letter not yet replayed
    consumer_group: str | None = None
    actor_org_id: str | None = None


class DeadLetterReplayed(Event):
    dead_letter_id: int
    consumer_group: str
    original_message_id: str
    actor_org_id: str | None = None


def replay_dead_letters(cmd: ReplayDeadLetters, uow: AbstractUnitOfWork) -> list[int]:
    taken = uow.dead_letters.take_for_replay(cmd.ids, cmd.consumer_group)
    for dead in taken:
        uow.enqueue(replace(dead.envelope, target_group=dead.consumer_group))
        uow.publish(
            DeadLetterReplayed(
                dead_letter_id=dead.id,
                consumer_group=dead.consumer_group,
                original_message_id=dead.envelope.message_id,
                actor_org_id=cmd.actor_org_id,
            )
        )
    return [d.id for d in taken]
