"""Persistence of the register-once flow: the interface handlers see on the unit of work
(``uow.suppliers``), its SQL implementation, and the write-behind log of upstream calls.

Fetch slots are claimed with a lease (``claimed_until``, owned by ``claim_token``) through
``hub.spine.leases``: a claimer that dies simply lets it run out and the slot becomes due again."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.organisations.repository import OrganisationRepository
from hub.spine import leases
from hub.spine.unit_of_work import UnitOfWork
from hub.suppliers.control import IdentifierTaken
from hub.suppliers.model import (
    ControlChallenge,
    ControlProof,
    Credential,
    CredentialFetch,
    CredentialVersion,
    IdentifierClaim,
    Supplier,
    SupplierGrant,
)
from hub.suppliers.tables import raw_payloads, upstream_calls

if TYPE_CHECKING:
    from connectors.resilience import CallRecord

__all__ = [
    "SqlSupplierRepository",
    "SqlUpstreamCallRepository",
    "SupplierRepository",
    "SuppliersUnitOfWork",
]

log = logging.getLogger(__name__)

# Mapped imperatively: mypy sees dataclass attributes, SQLAlchemy sees columns.
F: Any = CredentialFetch
C: Any = Credential
V: Any = CredentialVersion
S: Any = Supplier
G: Any = SupplierGrant
K: Any = IdentifierClaim
P: Any = ControlProof


class SupplierRepository(Protocol):
    """Suppliers and their grants, fetch slots, credentials with every version, and raw payloads.
    One repository, not five: a handler of this flow touches several of them in one transaction, and
    none of them outlives its supplier."""

    def add(self, supplier: Supplier) -> None: ...
    def get(self, supplier_id: str) -> Supplier | None: ...
    def find_by_identity(self, org_id: str, identity_key: str) -> Supplier | None: ...
    def list_owned(self, org_id: str | None = None, limit: int = 100, offset: int = 0) -> list[Supplier]: ...
    def list_granted_to(self, org_id: str, limit: int = 100, offset: int = 0) -> list[Supplier]: ...

    def add_grant(self, grant: SupplierGrant) -> None: ...
    def grant(self, supplier_id: str, org_id: str) -> SupplierGrant | None: ...
    def revoke(self, supplier_id: str, org_id: str) -> bool: ...

    def add_fetches(self, slots: Sequence[CredentialFetch]) -> None: ...
    def fetch(self, fetch_id: str) -> CredentialFetch | None: ...
    def fetches_of(self, supplier_id: str) -> list[CredentialFetch]: ...
    def fetches_in_state(self, system: str, states: Sequence[str], limit: int) -> list[CredentialFetch]: ...
    def claim(
        self, token: str, now: datetime, lease: timedelta, limit: int,
        supplier_id: str | None = None, force: bool = False,
    ) -> list[CredentialFetch]: ...

    def add_credentials(self, credentials: Sequence[Credential]) -> None: ...
    def credential(self, credential_id: str) -> Credential | None: ...
    def credentials_of(self, supplier_id: str) -> list[Credential]: ...
    def credentials_of_fetch(self, fetch_id: str) -> list[Credential]: ...
    def expiring(self, now: datetime, limit: int) -> list[Credential]: ...

    def add_versions(self, versions: Sequence[CredentialVersion]) -> None:
        """Store the versions and give each its ``id``."""
        ...

    def version(self, version_id: int) -> CredentialVersion | None: ...
    def versions_of(self, credential_id: str) -> list[CredentialVersion]: ...
    def store_raw(self, sha256: str, content_type: str, body: bytes, now: datetime) -> None: ...
    def raw(self, sha256: str) -> tuple[str, bytes] | None: ...

    def add_claim(self, claim: IdentifierClaim) -> None:
        """Store a new claim; :class:`IdentifierTaken` if the identifier is claimed already (also when a
        concurrent transaction claimed it first)."""
        ...

    def identifier_claim(self, scheme: str, identifier: str) -> IdentifierClaim | None: ...
    def claims_for(self, identifiers: dict[str, str]) -> dict[tuple[str, str], IdentifierClaim]: ...
    def remove_claim(self, claim: IdentifierClaim) -> None: ...
    def add_challenge(self, challenge: ControlChallenge) -> None: ...
    def challenge(self, challenge_id: str) -> ControlChallenge | None: ...
    def add_control_proof(self, proof: ControlProof) -> None: ...
    def control_proofs_of(self, supplier_id: str) -> list[ControlProof]: ...


class SuppliersUnitOfWork(UnitOfWork, Protocol):
    """Read-only members, so any unit of work holding a more specific repository (the SQL one, the
    in-memory one) still is one of these to the type checker."""

    @property
    def suppliers(self) -> SupplierRepository: ...
    @property
    def organisations(self) -> OrganisationRepository: ...


class SqlSupplierRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _add(self, objs: Sequence[object]) -> None:
        """Add and flush: the mapped classes have no relationships, so SQLAlchemy cannot order inserts
        by foreign key itself; flushing in the order of the calls does (one flush per call)."""
        if objs:
            self.session.add_all(objs)
            self.session.flush()

    # -- suppliers ----------------------------------------------------------------------------------
    def add(self, supplier: Supplier) -> None:
        self._add([supplier])

    def get(self, supplier_id: str) -> Supplier | None:
        return self.session.get(Supplier, supplier_id)

    def find_by_identity(self, org_id: str, identity_key: str) -> Supplier | None:
        stmt = select(S).where(S.org_id == org_id, S.identity_key == identity_key)
        return self.session.scalars(stmt).first()

    def list_owned(self, org_id: str | None = None, limit: int = 100, offset: int = 0) -> list[Supplier]:
        stmt = select(S).order_by(S.created_at, S.id).limit(limit).offset(offset)
        if org_id is not None:
            stmt = stmt.where(S.org_id == org_id)
        return list(self.session.scalars(stmt))

    def list_granted_to(self, org_id: str, limit: int = 100, offset: int = 0) -> list[Supplier]:
        stmt = (
            select(S).join(G, G.supplier_id == S.id).where(G.org_id == org_id)
            .order_by(S.created_at, S.id).limit(limit).offset(offset)
        )
        return list(self.session.scalars(stmt))

    # -- grants -------------------------------------------------------------------------------------
    def add_grant(self, grant: SupplierGrant) -> None:
        self._add([grant])

    def grant(self, supplier_id: str, org_id: str) -> SupplierGrant | None:
        return self.session.get(SupplierGrant, (supplier_id, org_id))

    def revoke(self, supplier_id: str, org_id: str) -> bool:
        result: Any = self.session.execute(delete(G).where(G.supplier_id == supplier_id, G.org_id == org_id))
        return bool(result.rowcount)

    # -- fetch slots ----------------------------------------------------------------------------------
    def add_fetches(self, slots: Sequence[CredentialFetch]) -> None:
        self._add(slots)

    def fetch(self, fetch_id: str) -> CredentialFetch | None:
        return self.session.get(CredentialFetch, fetch_id)

    def fetches_of(self, supplier_id: str) -> list[CredentialFetch]:
        return list(self.session.scalars(select(F).where(F.supplier_id == supplier_id).order_by(F.system)))

    def fetches_in_state(self, system: str, states: Sequence[str], limit: int) -> list[CredentialFetch]:
        query = select(F).where(F.system == system, F.state.in_(list(states))).order_by(F.id).limit(limit)
        return list(self.session.scalars(query))

    def claim(
        self, token: str, now: datetime, lease: timedelta, limit: int,
        supplier_id: str | None = None, force: bool = False,
    ) -> list[CredentialFetch]:
        """Reserve up to ``limit`` slots: the due ones, or with ``force`` every unclaimed slot of
        ``supplier_id`` (an on-demand refresh), those the source refused before included: a refresh
        is how the owner or an operator asks again once the cause is fixed."""
        due = [F.supplier_id == supplier_id] if supplier_id is not None else []
        if not force:
            due.append(F.next_attempt_at <= now)
        ids = leases.claim(self.session, F.id, F.claimed_until, owner=(F.claim_token, token), due=due,
                           order_by=[F.next_attempt_at, F.id], limit=limit, now=now, lease=lease)
        slots = {slot.id: slot for slot in self.session.scalars(select(F).where(F.id.in_(ids)))}
        return [slots[i] for i in ids]

    # -- credentials ----------------------------------------------------------------------------------
    def add_credentials(self, credentials: Sequence[Credential]) -> None:
        self._add(credentials)

    def credentials_of(self, supplier_id: str) -> list[Credential]:
        stmt = select(C).where(C.supplier_id == supplier_id).order_by(C.system, C.type, C.record_key)
        return list(self.session.scalars(stmt))

    def credentials_of_fetch(self, fetch_id: str) -> list[Credential]:
        return list(self.session.scalars(select(C).where(C.fetch_id == fetch_id)))

    def credential(self, credential_id: str) -> Credential | None:
        return self.session.get(Credential, credential_id)

    def expiring(self, now: datetime, limit: int) -> list[Credential]:
        """Credentials past ``valid_until`` not yet marked expired, locked for this transaction."""
        stmt = (
            select(C)
            .where(C.valid_until.is_not(None), C.valid_until <= now, C.expired_at.is_(None), C.status != "absent")
            .order_by(C.valid_until)
            .limit(limit)
        )
        return list(self.session.scalars(leases.skip_locked(self.session, stmt)))

    # -- versions and raw payloads ----------------------------------------------------------------
    def add_versions(self, versions: Sequence[CredentialVersion]) -> None:
        self._add(versions)  # the flush assigns the ids

    def version(self, version_id: int) -> CredentialVersion | None:
        return self.session.get(CredentialVersion, version_id)

    def versions_of(self, credential_id: str) -> list[CredentialVersion]:
        stmt = select(V).where(V.credential_id == credential_id).order_by(V.id.desc())
        return list(self.session.scalars(stmt))

    def store_raw(self, sha256: str, content_type: str, body: bytes, now: datetime) -> None:
        """Insert once per hash; a concurrent insert of the same bytes is not an error."""
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(raw_payloads).values(
            sha256=sha256, content_type=content_type[:100], size=len(body), body=body, stored_at=now
        ).on_conflict_do_nothing(index_elements=["sha256"])
        self.session.execute(stmt)

    def raw(self, sha256: str) -> tuple[str, bytes] | None:
        row = self.session.execute(
            select(raw_payloads.c.content_type, raw_payloads.c.body).where(raw_payloads.c.sha256 == sha256)
        ).first()
        return (row[0], bytes(row[1])) if row is not None else None


    # -- proof of control ------------------------------------------------------------------------------
    def add_claim(self, claim: IdentifierClaim) -> None:
        try:
            with self.session.begin_nested():
                self.session.add(claim)
        except IntegrityError:
            raise IdentifierTaken(claim.scheme, claim.identifier) from None

    def identifier_claim(self, scheme: str, identifier: str) -> IdentifierClaim | None:
        return self.session.get(IdentifierClaim, (scheme, identifier))

    def claims_for(self, identifiers: dict[str, str]) -> dict[tuple[str, str], IdentifierClaim]:
        if not identifiers:
            return {}
        stmt = select(K).where(tuple_(K.scheme, K.identifier).in_(list(identifiers.items())))
        return {(c.scheme, c.identifier): c for c in self.session.scalars(stmt)}

    def remove_claim(self, claim: IdentifierClaim) -> None:
        self.session.delete(claim)
        self.session.flush()

    def add_challenge(self, challenge: ControlChallenge) -> None:
        self._add([challenge])

    def challenge(self, challenge_id: str) -> ControlChallenge | None:
        return self.session.get(ControlChallenge, challenge_id)

    def add_control_proof(self, proof: ControlProof) -> None:
        self._add([proof])

    def control_proofs_of(self, supplier_id: str) -> list[ControlProof]:
        stmt = select(P).where(P.supplier_id == supplier_id).order_by(P.recorded_at, P.id)
        return list(self.session.scalars(stmt))


# -- upstream calls ------------------------------------------------------------------------------------
_BATCH = 200


def _row(call: CallRecord) -> dict[str, Any]:
    return {
        "system": call.system,
        "purpose": call.purpose[:64],
        "requested_by": call.requested_by[:64],
        "identifier_count": len(call.identifiers),
        "batched": len(call.identifiers) > 1,
        "started_at": call.started_at,
        "duration_ms": call.duration_ms,
        "outcome": call.outcome,
        "attempts": call.attempts,
        "http_status": call.http_status,
        "error_code": call.error_code[:100] if call.error_code else None,
        "request_sha256": call.request_sha256,
        "response_sha256": call.response_sha256,
    }


class SqlUpstreamCallRepository:
    """The connectors' ``CallRecorder``: every upstream call in ``upstream_calls`` — what the hub asked
    whom, on whose behalf and why, with the hashes of what went out and came back (never the bodies:
    those that became credentials are kept, by hash, with their versions).

    Written by one background thread, in batches, outside any unit of work: a call happened whether or
    not the transaction that wanted its answer commits, and writing the record must not add to the
    latency of the fetch that made it (on SQLite every writer queues for one lock). A failure to
    record is logged, never raised into the fetch; ``flush()`` waits until all are written."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self._queue: queue.Queue[CallRecord | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="upstream-call-recorder", daemon=True)
        self._thread.start()

    def record(self, call: CallRecord) -> None:
        self._queue.put(call)

    def flush(self) -> None:
        """Block until every call recorded so far is in the table."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            calls = [c for c in batch if c is not None]
            try:
                if calls:
                    self._write(calls)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if None in batch:
                return

    def _write(self, calls: list[CallRecord]) -> None:
        try:
            with self.session_factory() as session:
                session.execute(upstream_calls.insert(), [_row(c) for c in calls])
                session.commit()
        except Exception:
            log.exception("could not record %d upstream calls", len(calls))
