"""Persistence of notices: the repositories the unit of work exposes (``uow.notices``,
``uow.idempotency``), their SQL implementations, and the unit of work the notices handlers see.

Sequence numbers are given at the very end of the transaction. :meth:`NoticeRepository.record` stores
each version under a placeholder (a random negative number, unique among concurrent transactions, so no
publisher waits on another's unique index), and the documents that quote a seq (the events' payloads,
the receipt answered and remembered for the Idempotency-Key) are handed to :meth:`carry_seqs`.
:meth:`settle_seqs`, run by the unit of work just before COMMIT (``before_commit``), flushes everything
else, takes the real numbers in one ``UPDATE … RETURNING`` of the counter row, and rewrites the
placeholders. The counter's row lock is the transaction's *last* lock and is held only for that step
and the COMMIT, which makes seq order equal commit order on PostgreSQL while publishers do the rest of
their work side by side; SQLite runs one writer at a time (``BEGIN IMMEDIATE``) and gets the same order
for free.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from hub.notices.codes import classification_digits
from hub.notices.idempotency import IdempotencyKeyRaced, IdempotencyStore, Receipt, StoredRequest
from hub.notices.model import Notice, NoticeContent, NoticeVersion, VersionKind
from hub.notices.tables import (
    FEED_COUNTER,
    IdempotencyRow,
    NoticeClassificationRow,
    NoticeExternalRefRow,
    NoticeFeedCounterRow,
    NoticeRow,
    NoticeVersionRow,
)
from hub.spine.unit_of_work import UnitOfWork

__all__ = [
    "ExternalRef",
    "NoticeRepository",
    "NoticesUnitOfWork",
    "SqlIdempotencyStore",
    "SqlNoticeRepository",
    "StoredVersion",
    "notice_from_rows",
    "purge_expired",
    "replace_seqs",
]


@dataclass(frozen=True)
class StoredVersion:
    notice: Notice
    version: NoticeVersion
    seq: int


@dataclass(frozen=True)
class ExternalRef:
    """An institution's own identifier in a source format (PPS ``bidNtceNo``, an OCDS ``ocid``): which
    hub notice it became, and the last position in the source's sequence that was imported."""

    notice_id: str
    last_order: int


class NoticeRepository(Protocol):
    def get(self, notice_id: str, *, for_update: bool = False) -> Notice | None: ...
    def get_owned(self, notice_id: str, institution_org_id: str) -> Notice | None: ...
    def external_ref(self, institution_org_id: str, source: str, external_id: str) -> ExternalRef | None: ...
    def link_external(self, institution_org_id: str, source: str, external_id: str, notice_id: str,
                      order: int) -> None: ...
    def record(self, changes: Sequence[tuple[Notice, Sequence[NoticeVersion]]],
               actor_org_id: str | None) -> list[StoredVersion]: ...
    def carry_seqs(self, document: MutableMapping[str, Any]) -> None:
        """``document`` quotes seqs given by :meth:`record` (under any ``"seq"`` key, at any depth): they
        are rewritten to the final numbers when the seqs are settled."""
        ...
    def settle_seqs(self) -> Mapping[int, int]:
        """Give the versions recorded in this transaction their final seqs (run just before COMMIT);
        returns what each seq :meth:`record` gave became. Nothing to do: an empty mapping."""
        ...


class NoticesUnitOfWork(UnitOfWork, Protocol):
    notices: NoticeRepository
    idempotency: IdempotencyStore


def notice_from_rows(row: NoticeRow, versions: Sequence[NoticeVersionRow]) -> Notice:
    return Notice(
        id=row.id,
        institution_id=row.institution_org_id,
        versions=[_version(v) for v in sorted(versions, key=lambda v: v.number)],
    )


def _version(row: NoticeVersionRow) -> NoticeVersion:
    return NoticeVersion(
        number=row.number,
        kind=VersionKind(row.kind),
        content=NoticeContent.model_validate(row.content),
        published_at=row.published_at,
        reason=row.reason,
        changed_fields=tuple(row.changed_fields or ()),
    )


def _placeholder() -> int:
    """A stand-in seq until the transaction's end: negative (never a real seq) and random over 62 bits,
    so two transactions in flight practically never hold the same one."""
    return -1 - secrets.randbits(62)


def replace_seqs(document: Any, final: Mapping[int, int]) -> None:
    """Rewrite, in place, every ``"seq"`` member of ``document`` (at any depth) found in ``final``."""
    if isinstance(document, MutableMapping):
        for key, value in document.items():
            if key == "seq" and isinstance(value, int) and value in final:
                document[key] = final[value]
            else:
                replace_seqs(value, final)
    elif isinstance(document, list):
        for item in document:
            replace_seqs(item, final)


class SqlNoticeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: dict[str, NoticeRow] = {}
        self._placeholders: list[int] = []  # in the order the final seqs follow
        self._version_rows: list[NoticeVersionRow] = []
        self._documents: list[MutableMapping[str, Any]] = []

    def get(self, notice_id: str, *, for_update: bool = False) -> Notice | None:
        """The aggregate; ``for_update`` locks its row so concurrent amendments of one notice queue."""
        stmt = select(NoticeRow).where(NoticeRow.id == notice_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = self.session.scalars(stmt).first()
        if row is None:
            return None
        self._rows[row.id] = row
        versions = self.session.scalars(select(NoticeVersionRow).where(NoticeVersionRow.notice_id == notice_id))
        return notice_from_rows(row, list(versions))

    def get_owned(self, notice_id: str, institution_org_id: str) -> Notice | None:
        """Locked for a change, and only if ``institution_org_id`` published it."""
        notice = self.get(notice_id, for_update=True)
        return notice if notice is not None and notice.institution_id == institution_org_id else None

    # -- external identifiers (PPS bidNtceNo, OCDS ocid) -------------------------------------------------------
    def external_ref(self, institution_org_id: str, source: str, external_id: str) -> ExternalRef | None:
        row = self.session.get(NoticeExternalRefRow, (institution_org_id, source, external_id))
        return None if row is None else ExternalRef(row.notice_id, row.last_order)

    def link_external(self, institution_org_id: str, source: str, external_id: str, notice_id: str,
                      order: int) -> None:
        ref = self.session.get(NoticeExternalRefRow, (institution_org_id, source, external_id))
        if ref is None:
            self.session.add(NoticeExternalRefRow(institution_org_id=institution_org_id, source=source,
                                                  external_id=external_id, notice_id=notice_id, last_order=order))
        else:
            ref.last_order = max(ref.last_order, order)

    # -- writing ------------------------------------------------------------------------------------
    def allocate_seqs(self, count: int) -> list[int]:
        counter: Any = NoticeFeedCounterRow.__table__
        stmt = (
            update(counter)
            .where(counter.c.name == FEED_COUNTER)
            .values(value=counter.c.value + count)
            .returning(counter.c.value)
        )
        last = self.session.execute(stmt).scalar_one_or_none()
        if last is None:  # a schema made without the migration's seed row
            self.session.add(NoticeFeedCounterRow(name=FEED_COUNTER, value=count))
            self.session.flush()
            last = count
        return list(range(last - count + 1, last + 1))

    def record(self, changes: Sequence[tuple[Notice, Sequence[NoticeVersion]]],
               actor_org_id: str | None) -> list[StoredVersion]:
        """Store new versions (of new or loaded notices) and give each its seq. Versions of one notice
        are stored together, in version order, wherever they appear in ``changes``."""
        grouped: dict[str, tuple[Notice, list[NoticeVersion]]] = {}
        for notice, versions in changes:
            grouped.setdefault(notice.id, (notice, []))[1].extend(versions)
        total = sum(len(versions) for _, versions in grouped.values())
        if total == 0:
            return []
        seqs = iter([_placeholder() for _ in range(total)])
        now = datetime.now(UTC)
        stored: list[StoredVersion] = []
        for notice, versions in grouped.values():
            numbered = [(next(seqs), version) for version in sorted(versions, key=lambda v: v.number)]
            first_seq = next((seq for seq, version in numbered if version.number == 1), None)
            # The notice row first (flushed): the version and classification rows refer to it.
            self._refresh_current(notice, numbered[-1][0], first_seq)
            for seq, version in numbered:
                self._placeholders.append(seq)
                self._version_rows.append(row := NoticeVersionRow(
                    notice_id=notice.id,
                    number=version.number,
                    kind=version.kind.value,
                    content=version.content.model_dump(mode="json"),
                    published_at=version.published_at,
                    reason=version.reason,
                    changed_fields=list(version.changed_fields),
                    seq=seq,
                    actor_org_id=actor_org_id,
                    recorded_at=now,
                ))
                self.session.add(row)
                stored.append(StoredVersion(notice, version, seq))
        self.session.flush()
        return stored

    def carry_seqs(self, document: MutableMapping[str, Any]) -> None:
        self._documents.append(document)

    def settle_seqs(self) -> Mapping[int, int]:
        """Everything else is flushed first, so between the counter's lock and COMMIT only the rewrite of
        this transaction's own rows goes to the database."""
        if not self._placeholders:
            return {}
        self.session.flush()
        placeholders, self._placeholders = self._placeholders, []
        final = dict(zip(placeholders, self.allocate_seqs(len(placeholders)), strict=True))
        for version_row in self._version_rows:
            version_row.seq = final[version_row.seq]
        for notice_row in self._rows.values():
            notice_row.created_seq = final.get(notice_row.created_seq, notice_row.created_seq)
            notice_row.last_seq = final.get(notice_row.last_seq, notice_row.last_seq)
        documents = {id(document) for document in self._documents}
        for document in self._documents:
            replace_seqs(document, final)
        for held in self.session.identity_map.values():  # a remembered receipt is one of the documents
            if isinstance(held, IdempotencyRow) and id(held.body) in documents:
                flag_modified(held, "body")
        self._version_rows, self._documents = [], []
        return final

    def _refresh_current(self, notice: Notice, last_seq: int, first_seq: int | None) -> None:
        content, current = notice.content, notice.current
        row = self._rows.get(notice.id)
        if row is None:
            if first_seq is None:
                raise ValueError(f"notice {notice.id} is not stored and its first version is not given")
            row = NoticeRow(id=notice.id, institution_org_id=notice.institution_id, created_seq=first_seq,
                            published_at=notice.versions[0].published_at)
            self.session.add(row)
            self._rows[notice.id] = row
        else:
            self.session.execute(delete(NoticeClassificationRow).where(NoticeClassificationRow.notice_id == notice.id))
        row.status = notice.status.value
        row.current_version = current.number
        row.title = content.title
        row.search_text = f"{content.title}\n{content.description}".casefold()
        row.category = content.category.value
        row.delivery_region = content.delivery_region
        row.estimated_value = float(content.estimated_value) if content.estimated_value is not None else None
        row.currency = content.currency
        row.updated_at = current.published_at
        row.submission_deadline = content.dates.submission_deadline
        row.last_seq = last_seq
        self.session.flush()
        codes = {(item.scheme.value, classification_digits(item.code)) for item in content.classifications}
        for scheme, code in sorted(codes):
            self.session.add(NoticeClassificationRow(notice_id=notice.id, scheme=scheme, code=code))


class SqlIdempotencyStore:
    """Remembered keys in ``idempotency_keys``, written in the transaction of the effect they answer."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # Held, so the session keeps them: their bodies quote seqs that are settled just before COMMIT.
        self._stored: list[IdempotencyRow] = []

    def get(self, org_id: str, key: str) -> StoredRequest | None:
        row = self.session.get(IdempotencyRow, (org_id, key))
        if row is None:
            return None
        receipt = Receipt(status_code=row.status_code, body=dict(row.body), location=row.location)
        return StoredRequest(row.request_hash, receipt, row.created_at)

    def put(self, org_id: str, key: str, stored: StoredRequest) -> None:
        """Flushed now: a concurrent first request with the same key waits on the primary key here
        (PostgreSQL) and fails as IdempotencyKeyRaced once the other commits."""
        receipt = stored.receipt
        row = IdempotencyRow(
            org_id=org_id, key=key, request_hash=stored.request_hash, status_code=receipt.status_code,
            body=receipt.body, location=receipt.location, created_at=stored.created_at,
        )
        self.session.add(row)
        self._stored.append(row)
        try:
            self.session.flush()
        except IntegrityError:
            raise IdempotencyKeyRaced(key) from None

    def count_since(self, org_id: str, since: datetime) -> int:
        stmt = select(func.count()).select_from(IdempotencyRow).where(
            IdempotencyRow.org_id == org_id, IdempotencyRow.created_at >= since)
        return int(self.session.scalar(stmt) or 0)

    def forget(self, org_id: str, key: str) -> None:
        row = self.session.get(IdempotencyRow, (org_id, key))
        if row is not None:
            self.session.delete(row)
            self.session.flush()


def purge_expired(session_factory: sessionmaker[Session], ttl: timedelta) -> int:
    """Delete remembered keys older than ``ttl`` (a worker's periodic job; safe on several workers)."""
    with session_factory() as session:
        result = session.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < datetime.now(UTC) - ttl))
        session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
