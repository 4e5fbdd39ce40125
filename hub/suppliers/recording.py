"""Recording fetch outcomes: new credentials, new versions, change detection, retry scheduling.

Runs inside one unit of work (``RecordCredentialFetches``): the credential rows, the versions with
their raw payloads, the slot's next due time and the events all commit together or not at all.
An outcome whose claim token no longer matches its slot (the lease ran out and someone else claimed
it) is dropped: the later claimer's answer wins, and nothing is recorded twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.spine.retry import Backoff, Jitter
from hub.spine.unit_of_work import UnitOfWork
from hub.suppliers import events
from hub.suppliers.commands import FetchedCredential, FetchOutcome
from hub.suppliers.config import BackoffSettings, SupplierSettings
from hub.suppliers.model import (
    ABSENT,
    EXPIRED,
    Credential,
    CredentialFetch,
    CredentialVersion,
    FetchState,
    Snapshot,
    Supplier,
    new_id,
    next_refresh_at,
    snapshot_changed,
)
from hub.suppliers.repository import SupplierRepository, SuppliersUnitOfWork
from mappings.credentials import Standing

__all__ = ["fetch_backoff", "record_outcome"]

_RETRYABLE = {"transient", "circuit_open", "deadline"}


def fetch_backoff(settings: BackoffSettings) -> Backoff:
    """Retries of a failed fetch: exponential, jittered so that suppliers that failed together (one
    outage) do not all come back in the same second."""
    return Backoff(settings.initial_s, settings.max_s, settings.multiplier, Jitter.around(settings.jitter_ratio))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def record_outcome(
    outcome: FetchOutcome,
    uow: SuppliersUnitOfWork,
    config: SupplierSettings,
    now: datetime,
    actor_org_id: str | None,
    rng: random.Random | None = None,
) -> str | None:
    """Apply one outcome; returns the slot's new state, or None when the outcome was stale."""
    repo = uow.suppliers
    slot = repo.fetch(outcome.fetch_id)
    if slot is None or slot.claim_token != outcome.claim_token:
        return None
    supplier = repo.get(slot.supplier_id)
    assert supplier is not None
    slot.release()
    if outcome.kind == "throttled":
        _postpone(outcome, slot, now)
        return slot.state
    if outcome.kind == "misconfigured":
        _hold_until_configured(outcome, slot, supplier, uow, config, now, actor_org_id, rng)
        return slot.state
    slot.last_attempt_at = now
    # Attempts of the current round, the one that succeeds included; a round ends at a success, so the
    # first failure after one starts counting again (the backoff grows with failures in a row only).
    slot.attempts = (slot.attempts if slot.last_error else 0) + 1
    if outcome.kind == "ok":
        _record_success(outcome, slot, supplier, repo, uow, config, now, actor_org_id)
    else:
        _record_failure(outcome, slot, supplier, uow, config, now, actor_org_id, rng)
    return slot.state


def _record_success(
    outcome: FetchOutcome,
    slot: CredentialFetch,
    supplier: Supplier,
    repo: SupplierRepository,
    uow: UnitOfWork,
    config: SupplierSettings,
    now: datetime,
    actor: str | None,
) -> None:
    assert outcome.raw is not None and outcome.raw_sha256 and outcome.response_sha256 and outcome.fetched_at
    repo.store_raw(outcome.raw_sha256, outcome.content_type or "application/octet-stream", outcome.raw, now)
    existing = {(c.type, c.subject, c.record_key): c for c in repo.credentials_of_fetch(slot.id)}
    seen: set[tuple[str, str, str]] = set()
    steps: list[_Step] = []
    for fetched in outcome.credentials:
        key = (fetched.type, fetched.subject, fetched.record_key)
        if key not in seen:
            seen.add(key)
            steps.append(_prepare(fetched, existing.get(key), outcome, slot, supplier, now))
    # Two flushes for the whole answer (new credentials, then their versions), not two per credential.
    repo.add_credentials([step.credential for step in steps if step.change == "new"])
    repo.add_versions([step.version for step in steps])
    for step in steps:
        _finish(step, outcome, supplier, uow, now, actor)
    for key, gone in existing.items():
        if key not in seen and gone.status != ABSENT:
            before = Snapshot(gone.status, gone.valid_from, gone.valid_until, gone.fetched_at)
            gone.status, gone.updated_at = ABSENT, now
            uow.publish(events.CredentialChanged(
                supplier_id=supplier.id, org_id=supplier.org_id, credential_id=gone.id, system=gone.system,
                type=gone.type, subject=gone.subject, before=before.as_dict(),
                after=Snapshot(ABSENT, None, None, outcome.fetched_at).as_dict(),
                version_id=None, actor_org_id=actor,
            ))
    fresh = config.freshness
    slot.state = FetchState.VERIFIED.value
    slot.last_error = None
    slot.last_success_at = now
    slot.next_attempt_at = next_refresh_at(
        now,
        [(f.valid_from, f.valid_until) for f in outcome.credentials],
        margin_s=fresh.refresh_margin_s,
        margin_ratio=fresh.refresh_margin_ratio,
        default_s=fresh.default_refresh_s,
    )


@dataclass
class _Step:
    fetched: FetchedCredential
    credential: Credential
    before: Snapshot | None
    after: Snapshot
    change: str
    version: CredentialVersion


def _prepare(
    fetched: FetchedCredential,
    current: Credential | None,
    outcome: FetchOutcome,
    slot: CredentialFetch,
    supplier: Supplier,
    now: datetime,
) -> _Step:
    assert outcome.fetched_at is not None and outcome.raw_sha256 and outcome.response_sha256
    after = Snapshot(fetched.status, fetched.valid_from, fetched.valid_until, outcome.fetched_at)
    before: Snapshot | None = None
    if current is None:
        current = Credential(
            id=new_id(), supplier_id=supplier.id, fetch_id=slot.id, system=slot.system, type=fetched.type,
            subject=fetched.subject, record_key=fetched.record_key, status=fetched.status,
            attributes=fetched.attributes, valid_from=fetched.valid_from, valid_until=fetched.valid_until,
            fetched_at=outcome.fetched_at, created_at=now, updated_at=now, standing=fetched.standing,
        )
        change = "new"
    else:
        # The row holds what the source said last time (its last version), or the status the hub has
        # since given it (expired, absent): coming back from that is a change in itself.
        before = Snapshot(current.status, current.valid_from, current.valid_until, current.fetched_at)
        change = "changed" if snapshot_changed(before, after) else "unchanged"
    version = CredentialVersion(
        credential_id=current.id, fetched_at=outcome.fetched_at, status=fetched.status,
        attributes=fetched.attributes, valid_from=fetched.valid_from, valid_until=fetched.valid_until,
        raw_sha256=outcome.raw_sha256, response_sha256=outcome.response_sha256,
        request_sha256=outcome.request_sha256, evidence_pointer=fetched.pointer, change=change,
        standing=fetched.standing,
    )
    return _Step(fetched, current, before, after, change, version)


def _finish(
    step: _Step, outcome: FetchOutcome, supplier: Supplier, uow: UnitOfWork, now: datetime,
    actor: str | None,
) -> None:
    assert outcome.fetched_at is not None and outcome.raw_sha256
    current, fetched, version = step.credential, step.fetched, step.version
    assert version.id is not None
    if step.change == "changed" and step.before is not None:
        uow.publish(events.CredentialChanged(
            supplier_id=supplier.id, org_id=supplier.org_id, credential_id=current.id, system=current.system,
            type=current.type, subject=current.subject, before=step.before.as_dict(),
            after=step.after.as_dict(), version_id=version.id, actor_org_id=actor,
        ))
    # A refresh that says the same ended validity of a credential in force does not un-expire it (nor
    # expire it a second time). A source that now says it is not in force (lapsed, withdrawn …) has
    # the last word: its status replaces the hub's ``expired``.
    still_expired = current.expired_at is not None and fetched.valid_until is not None \
        and fetched.valid_until <= now and fetched.standing != Standing.NOT_IN_FORCE
    current.status = EXPIRED if still_expired else fetched.status
    current.standing = fetched.standing
    current.attributes = fetched.attributes
    current.valid_from, current.valid_until = fetched.valid_from, fetched.valid_until
    current.fetched_at = outcome.fetched_at
    current.current_version_id = version.id
    current.expired_at = current.expired_at if still_expired else None
    current.updated_at = now
    if step.change == "new":
        uow.publish(events.CredentialVerified(
            supplier_id=supplier.id, org_id=supplier.org_id, credential_id=current.id, system=current.system,
            type=current.type, subject=current.subject, status=current.status,
            valid_from=_iso(current.valid_from), valid_until=_iso(current.valid_until), version_id=version.id,
            raw_sha256=outcome.raw_sha256, actor_org_id=actor,
        ))


def _postpone(outcome: FetchOutcome, slot: CredentialFetch, now: datetime) -> None:
    """No call was made (the hub's budget for the system is spent): not a failure, so neither the state
    nor the attempt count changes and no event is raised; the slot is simply due again once the budget
    has refilled."""
    slot.next_attempt_at = now + timedelta(seconds=max(1.0, outcome.retry_after_s or 0.0))
    if slot.state == FetchState.PENDING.value:
        slot.last_error = f"throttled: {outcome.error_code or 'upstream_budget'} (retrying)"


_MISCONFIGURED = "misconfigured:"


def _hold_until_configured(
    outcome: FetchOutcome,
    slot: CredentialFetch,
    supplier: Supplier,
    uow: SuppliersUnitOfWork,
    config: SupplierSettings,
    now: datetime,
    actor: str | None,
    rng: random.Random | None,
) -> None:
    """The system refused the hub's key: nothing is known about the supplier. Its slot keeps its state
    (pending stays pending, a verified credential stands) and its attempt count, and is asked again at
    a fixed interval so it resumes soon after the key is fixed. One event when the slot starts waiting
    on the configuration, not one per retry."""
    already = (slot.last_error or "").startswith(_MISCONFIGURED)
    slot.last_attempt_at = now
    if not already:  # keep what the upstream first said; later calls may not have gone out at all
        slot.last_error = f"{_MISCONFIGURED} {outcome.error_code or 'key_refused'}" + (
            f" ({outcome.error_detail})" if outcome.error_detail else ""
        )
    delay = Jitter.around(config.backoff.jitter_ratio).apply(config.backoff.misconfigured_retry_s, rng)
    slot.next_attempt_at = now + timedelta(seconds=delay)
    if not already:
        uow.publish(events.CredentialFetchFailed(
            supplier_id=supplier.id, org_id=supplier.org_id, fetch_id=slot.id, system=slot.system,
            outcome=outcome.kind, error_code=outcome.error_code or "key_refused", attempts=slot.attempts,
            state=slot.state, next_attempt_at=_iso(slot.next_attempt_at), actor_org_id=actor,
        ))


def _record_failure(
    outcome: FetchOutcome,
    slot: CredentialFetch,
    supplier: Supplier,
    uow: SuppliersUnitOfWork,
    config: SupplierSettings,
    now: datetime,
    actor: str | None,
    rng: random.Random | None,
) -> None:
    if outcome.raw is not None and outcome.raw_sha256:
        # An unreadable reply: the bytes are evidence of what the source sent, kept like any answer's.
        uow.suppliers.store_raw(outcome.raw_sha256, outcome.content_type or "application/octet-stream",
                                outcome.raw, now)
    slot.last_error = f"{outcome.kind}: {outcome.error_code or 'error'}" + (
        f" ({outcome.error_detail})" if outcome.error_detail else ""
    )
    if outcome.kind in _RETRYABLE:
        # A verified credential whose refresh failed stays verified (its last version still stands,
        # and expiry will say so if it runs out); a pending one stays pending.
        slot.next_attempt_at = now + timedelta(seconds=fetch_backoff(config.backoff).delay(slot.attempts, rng))
    elif outcome.kind == "not_found":
        slot.state = FetchState.NOT_FOUND.value
        slot.next_attempt_at = now + timedelta(seconds=config.freshness.not_found_recheck_s)
    else:
        slot.state = FetchState.FAILED_PERMANENTLY.value
        slot.next_attempt_at = None
    uow.publish(events.CredentialFetchFailed(
        supplier_id=supplier.id, org_id=supplier.org_id, fetch_id=slot.id, system=slot.system,
        outcome=outcome.kind, error_code=outcome.error_code or "error", attempts=slot.attempts,
        state=slot.state, next_attempt_at=_iso(slot.next_attempt_at), actor_org_id=actor,
        raw_sha256=outcome.raw_sha256 if outcome.raw is not None else None,
    ))
