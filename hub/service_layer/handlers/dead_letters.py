"""Replaying dead letters: each goes back through the outbox, addressed to the one consumer group that
gave up on it, with its original message id (so a group that did apply it meanwhile skips it)."""

from __future__ import annotations

from dataclasses import replace

from hub.domain import commands, events
from hub.service_layer.unit_of_work import AbstractUnitOfWork


def replay_dead_letters(cmd: commands.ReplayDeadLetters, uow: AbstractUnitOfWork) -> list[int]:
    taken = uow.dead_letters.take_for_replay(cmd.ids, cmd.consumer_group)
    for dead in taken:
        uow.enqueue(replace(dead.envelope, target_group=dead.consumer_group))
        uow.publish(
            events.DeadLetterReplayed(
                dead_letter_id=dead.id,
                consumer_group=dead.consumer_group,
                original_message_id=dead.envelope.message_id,
                actor_org_id=cmd.actor_org_id,
            )
        )
    return [d.id for d in taken]
