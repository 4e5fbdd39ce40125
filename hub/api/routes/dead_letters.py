"""Dead letters (``dlq:admin``, operators only): list them and send them back to their consumer group."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from hub.api.auth import Principal
from hub.api.deps import BusDep, UowDep, require_scope
from hub.api.schemas import DeadLetterOut, DeadLetterReplayIn, DeadLetterReplayOut
from hub.organisations.model import Scope
from hub.spine.dead_letters import ReplayDeadLetters

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])

DlqAdmin = Annotated[Principal, Depends(require_scope(Scope.DLQ_ADMIN))]


@router.get("", summary="List dead letters")
def list_dead_letters(
    caller: DlqAdmin,
    uow: UowDep,
    consumer_group: Annotated[str | None, Query(max_length=100)] = None,
    include_replayed: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeadLetterOut]:
    dead = uow.dead_letters.list(group=consumer_group, include_replayed=include_replayed, limit=limit)
    return [DeadLetterOut.of(d, d.envelope) for d in dead]


@router.post("/replay", summary="Replay dead letters")
def replay_dead_letters(body: DeadLetterReplayIn, caller: DlqAdmin, bus: BusDep) -> DeadLetterReplayOut:
    """Each goes back through the outbox to the one group that gave up on it; returns the ids taken."""
    replayed = bus.handle(
        ReplayDeadLetters(ids=body.ids, consumer_group=body.consumer_group, actor_org_id=caller.org_id)
    )
    return DeadLetterReplayOut(replayed=list(replayed))
