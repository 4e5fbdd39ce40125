"""In-memory twins for unit tests: the unit of work with every flow's repository, no database.

Handlers are driven against :class:`FakeUnitOfWork` exactly as the bus drives them against the SQL one."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from hub.notices.events import NoticeVersionPublished
from hub.notices.idempotency import IdempotencyKeyRaced, StoredRequest
from hub.notices.model import Notice, NoticeVersion
from hub.notices.repository import ExternalRef, StoredVersion
from hub.organisations.model import ApiKey, Organisation, OrgKind
from hub.spine.messages import Envelope
from hub.spine.records import DeadLetter
from hub.spine.unit_of_work import AbstractUnitOfWork
from hub.subscriptions.filters import SubscriptionFilter
from hub.subscriptions.index_cache import RELOAD_ALL
from hub.subscriptions.model import GONE_STATUS, OPEN, Channel, DeliveryRecord, DeliveryStatus, Subscription
from hub.subscriptions.reader import FeedVersion, NoticeUnavailable
from hub.subscriptions.ssrf import UnsafeTarget
from hub.suppliers.control import IdentifierTaken
from hub.suppliers.model import (
    ABSENT,
    ControlChallenge,
    ControlProof,
    Credential,
    CredentialFetch,
    CredentialVersion,
    IdentifierClaim,
    Supplier,
    SupplierGrant,
)


class InMemoryOrganisationRepository:
    def __init__(self) -> None:
        self.orgs: dict[str, Organisation] = {}

    def add(self, org: Organisation) -> None:
        self.orgs[org.id] = org

    def get(self, org_id: str) -> Organisation | None:
        return self.orgs.get(org_id)

    def list(self, kind: OrgKind | None = None) -> list[Organisation]:
        return [o for o in self.orgs.values() if kind is None or o.kind == kind]

    def get_key(self, key_id: str) -> ApiKey | None:
        for org in self.orgs.values():
            for key in org.api_keys:
                if key.id == key_id:
                    return key
        return None


class InMemoryNoticeRepository:
    """Notices as the SQL repository keeps them: versions appended with consecutive seqs."""

    def __init__(self) -> None:
        self.notices: dict[str, Notice] = {}
        self.refs: dict[tuple[str, str, str], ExternalRef] = {}
        self.stored: list[StoredVersion] = []  # every recorded version, in seq order

    def get(self, notice_id: str, *, for_update: bool = False) -> Notice | None:
        found = self.notices.get(notice_id)
        return None if found is None else Notice(found.id, found.institution_id, list(found.versions))

    def get_owned(self, notice_id: str, institution_org_id: str) -> Notice | None:
        notice = self.get(notice_id, for_update=True)
        return notice if notice is not None and notice.institution_id == institution_org_id else None

    def external_ref(self, institution_org_id: str, source: str, external_id: str) -> ExternalRef | None:
        return self.refs.get((institution_org_id, source, external_id))

    def link_external(self, institution_org_id: str, source: str, external_id: str, notice_id: str,
                      order: int) -> None:
        known = self.refs.get((institution_org_id, source, external_id))
        last = order if known is None else max(known.last_order, order)
        self.refs[(institution_org_id, source, external_id)] = ExternalRef(notice_id, last)

    def record(self, changes: Sequence[tuple[Notice, Sequence[NoticeVersion]]],
               actor_org_id: str | None) -> list[StoredVersion]:
        grouped: dict[str, tuple[Notice, list[NoticeVersion]]] = {}
        for notice, versions in changes:
            grouped.setdefault(notice.id, (notice, []))[1].extend(versions)
        recorded = []
        for notice, versions in grouped.values():
            if notice.id not in self.notices and not any(v.number == 1 for v in versions):
                raise ValueError(f"notice {notice.id} is not stored and its first version is not given")
            for version in sorted(versions, key=lambda v: v.number):
                recorded.append(StoredVersion(notice, version, len(self.stored) + len(recorded) + 1))
            self.notices[notice.id] = Notice(notice.id, notice.institution_id, list(notice.versions))
        self.stored.extend(recorded)
        return recorded

    def carry_seqs(self, document: MutableMapping[str, Any]) -> None:
        """Seqs are final as soon as they are recorded here: nothing to rewrite."""

    def settle_seqs(self) -> Mapping[int, int]:
        return {}


class InMemoryIdempotencyStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], StoredRequest] = {}

    def get(self, org_id: str, key: str) -> StoredRequest | None:
        return self.rows.get((org_id, key))

    def put(self, org_id: str, key: str, stored: StoredRequest) -> None:
        if (org_id, key) in self.rows:
            raise IdempotencyKeyRaced(key)  # the table's primary key does the same
        self.rows[(org_id, key)] = stored

    def forget(self, org_id: str, key: str) -> None:
        self.rows.pop((org_id, key), None)

    def count_since(self, org_id: str, since: datetime) -> int:
        return sum(1 for (org, _), stored in self.rows.items() if org == org_id and stored.created_at >= since)


class InMemorySupplierRepository:
    def __init__(self) -> None:
        self.suppliers: dict[str, Supplier] = {}
        self.grants: dict[tuple[str, str], SupplierGrant] = {}
        self.fetches: dict[str, CredentialFetch] = {}
        self.credentials: dict[str, Credential] = {}
        self.versions: dict[int, CredentialVersion] = {}
        self.raws: dict[str, tuple[str, bytes]] = {}
        self.claims: dict[tuple[str, str], IdentifierClaim] = {}
        self.challenges: dict[str, ControlChallenge] = {}
        self.proofs: list[ControlProof] = []
        self._version_ids = count(1)

    def add(self, supplier: Supplier) -> None:
        self.suppliers[supplier.id] = supplier

    def get(self, supplier_id: str) -> Supplier | None:
        return self.suppliers.get(supplier_id)

    def find_by_identity(self, org_id: str, identity_key: str) -> Supplier | None:
        return next((s for s in self.suppliers.values() if (s.org_id, s.identity_key) == (org_id, identity_key)),
                    None)

    def list_owned(self, org_id: str | None = None, limit: int = 100, offset: int = 0) -> list[Supplier]:
        found = sorted((s for s in self.suppliers.values() if org_id in (None, s.org_id)),
                       key=lambda s: (s.created_at, s.id))
        return found[offset : offset + limit]

    def list_granted_to(self, org_id: str, limit: int = 100, offset: int = 0) -> list[Supplier]:
        found = sorted((self.suppliers[s] for s, o in self.grants if o == org_id), key=lambda s: (s.created_at, s.id))
        return found[offset : offset + limit]

    def add_grant(self, grant: SupplierGrant) -> None:
        self.grants[(grant.supplier_id, grant.org_id)] = grant

    def grant(self, supplier_id: str, org_id: str) -> SupplierGrant | None:
        return self.grants.get((supplier_id, org_id))

    def revoke(self, supplier_id: str, org_id: str) -> bool:
        return self.grants.pop((supplier_id, org_id), None) is not None

    def add_fetches(self, slots: Sequence[CredentialFetch]) -> None:
        self.fetches.update((slot.id, slot) for slot in slots)

    def fetch(self, fetch_id: str) -> CredentialFetch | None:
        return self.fetches.get(fetch_id)

    def fetches_of(self, supplier_id: str) -> list[CredentialFetch]:
        return sorted((f for f in self.fetches.values() if f.supplier_id == supplier_id), key=lambda f: f.system)

    def fetches_in_state(self, system: str, states: Sequence[str], limit: int) -> list[CredentialFetch]:
        found = [f for f in self.fetches.values() if f.system == system and f.state in states]
        return sorted(found, key=lambda f: f.id)[:limit]

    def claim(
        self, token: str, now: datetime, lease: timedelta, limit: int,
        supplier_id: str | None = None, force: bool = False,
    ) -> list[CredentialFetch]:
        def claimable(f: CredentialFetch) -> bool:
            if f.claimed_until is not None and f.claimed_until > now:
                return False
            if supplier_id is not None and f.supplier_id != supplier_id:
                return False
            if force:
                return True
            return f.next_attempt_at is not None and f.next_attempt_at <= now

        due = sorted(filter(claimable, self.fetches.values()), key=lambda f: (f.next_attempt_at or now, f.id))
        for slot in due[:limit]:
            slot.claim(token, now, lease)
        return due[:limit]

    def add_credentials(self, credentials: Sequence[Credential]) -> None:
        self.credentials.update((c.id, c) for c in credentials)

    def credential(self, credential_id: str) -> Credential | None:
        return self.credentials.get(credential_id)

    def credentials_of(self, supplier_id: str) -> list[Credential]:
        return sorted((c for c in self.credentials.values() if c.supplier_id == supplier_id),
                      key=lambda c: (c.system, c.type, c.record_key))

    def credentials_of_fetch(self, fetch_id: str) -> list[Credential]:
        return [c for c in self.credentials.values() if c.fetch_id == fetch_id]

    def expiring(self, now: datetime, limit: int) -> list[Credential]:
        found = [c for c in self.credentials.values() if c.valid_until is not None and c.valid_until <= now
                 and c.expired_at is None and c.status != ABSENT and c.standing != "not_in_force"]
        return sorted(found, key=lambda c: c.valid_until or now)[:limit]

    def add_versions(self, versions: Sequence[CredentialVersion]) -> None:
        for version in versions:
            version.id = next(self._version_ids)
            self.versions[version.id] = version

    def version(self, version_id: int) -> CredentialVersion | None:
        return self.versions.get(version_id)

    def versions_of(self, credential_id: str) -> list[CredentialVersion]:
        return sorted((v for v in self.versions.values() if v.credential_id == credential_id),
                      key=lambda v: -(v.id or 0))

    def store_raw(self, sha256: str, content_type: str, body: bytes, now: datetime) -> None:
        self.raws.setdefault(sha256, (content_type, body))

    def raw(self, sha256: str) -> tuple[str, bytes] | None:
        return self.raws.get(sha256)

    def add_claim(self, claim: IdentifierClaim) -> None:
        if (claim.scheme, claim.identifier) in self.claims:
            raise IdentifierTaken(claim.scheme, claim.identifier)  # the table's primary key does the same
        self.claims[(claim.scheme, claim.identifier)] = claim

    def identifier_claim(self, scheme: str, identifier: str) -> IdentifierClaim | None:
        return self.claims.get((scheme, identifier))

    def claims_for(self, identifiers: dict[str, str]) -> dict[tuple[str, str], IdentifierClaim]:
        return {pair: self.claims[pair] for pair in identifiers.items() if pair in self.claims}

    def remove_claim(self, claim: IdentifierClaim) -> None:
        self.claims.pop((claim.scheme, claim.identifier), None)

    def add_challenge(self, challenge: ControlChallenge) -> None:
        self.challenges[challenge.id] = challenge

    def challenge(self, challenge_id: str) -> ControlChallenge | None:
        return self.challenges.get(challenge_id)

    def add_control_proof(self, proof: ControlProof) -> None:
        self.proofs.append(proof)

    def control_proofs_of(self, supplier_id: str) -> list[ControlProof]:
        return [p for p in self.proofs if p.supplier_id == supplier_id]
class InMemorySubscriptionRepository:
    """Keeps copies, so a handler that changes a subscription without ``save`` changes nothing."""

    def __init__(self) -> None:
        self.stored: dict[str, Subscription] = {}
        self.change_log: list[tuple[int, str]] = []

    def _log(self, subscription_id: str) -> None:
        self.change_log.append((len(self.change_log) + 1, subscription_id))

    def add(self, subscription: Subscription) -> None:
        assert subscription.id not in self.stored, f"duplicate subscription {subscription.id}"
        self.stored[subscription.id] = copy.deepcopy(subscription)
        self._log(subscription.id)

    def get(self, subscription_id: str) -> Subscription | None:
        found = self.stored.get(subscription_id)
        return None if found is None else copy.deepcopy(found)

    def save(self, subscription: Subscription) -> None:
        assert subscription.id in self.stored, f"saving unknown subscription {subscription.id}"
        self.stored[subscription.id] = copy.deepcopy(subscription)
        self._log(subscription.id)

    def remove(self, subscription: Subscription) -> None:
        self.stored.pop(subscription.id, None)
        self._log(subscription.id)

    def list_for(self, org_id: str) -> list[Subscription]:
        return [copy.deepcopy(s) for s in self.stored.values()
                if s.org_id == org_id and not s.batch and s.endpoint_id is None]

    def last_change(self) -> int:
        return len(self.change_log)

    def changes_after(self, floor: int) -> list[tuple[int, str]]:
        return [(cid, sid) for cid, sid in self.change_log if cid > floor]

    def matchable_filters(self, ids: Sequence[str] | None = None) -> dict[str, SubscriptionFilter]:
        wanted = self.stored.keys() if ids is None else [i for i in ids if i in self.stored]
        return {i: self.stored[i].filter for i in wanted if self.stored[i].matchable}


class InMemoryDeliveryRepository:
    def __init__(self, subscriptions: InMemorySubscriptionRepository) -> None:
        self.subscriptions = subscriptions
        self.rows: dict[int, tuple[str, DeliveryRecord]] = {}  # id -> (subscription id, record)
        self.payloads: dict[tuple[str, int], dict[str, Any]] = {}

    def add_payload(self, notice_id: str, version: int, kind: str, seq: int, routing_key: str,
                    body: dict[str, Any]) -> None:
        self.payloads.setdefault((notice_id, version), {"kind": kind, "seq": seq, "routing_key": routing_key,
                                                         "body": body})

    def add_deliveries(self, subscription_ids: Iterable[str], notice_id: str, version: int, seq: int,
                       kind: str) -> int:
        now, count = datetime.now(UTC), 0
        taken = {(sid, r.notice_id, r.version) for sid, r in self.rows.values()}
        for sid in sorted(set(subscription_ids)):  # in id order, like the SQL repository
            if (sid, notice_id, version) not in taken:
                count += 1
                record = DeliveryRecord(id=len(self.rows) + 1, notice_id=notice_id, version=version, seq=seq,
                                        kind=kind, status=DeliveryStatus.PENDING.value, attempts=0,
                                        next_attempt_at=now, last_status_code=None, last_error=None,
                                        created_at=now, delivered_at=None)
                self.rows[record.id] = (sid, record)
        return count

    def earlier_recipients(self, notice_id: str, version: int) -> set[str]:
        return {sid for sid, r in self.rows.values() if r.notice_id == notice_id and r.version < version
                and sid in self.subscriptions.stored}

    def resume(self, subscription_id: str, now: datetime) -> list[int]:
        ids = [i for i, (sid, r) in sorted(self.rows.items()) if sid == subscription_id
               and r.status == DeliveryStatus.DEAD.value and r.last_status_code == GONE_STATUS]
        self.replay(ids, now)
        return ids

    def skip_missed(self, subscription_id: str, reason: str, now: datetime) -> list[int]:
        ids = [i for i, (sid, r) in sorted(self.rows.items()) if sid == subscription_id and (
            r.status in OPEN or (r.status == DeliveryStatus.DEAD.value and r.last_status_code == GONE_STATUS))]
        for delivery_id in ids:
            self._set(delivery_id, status=DeliveryStatus.SKIPPED.value, last_error=reason)
        return ids

    def claimable(self) -> list[int]:
        """What ``claim_due`` would lease now: open deliveries of active subscriptions whose earlier
        versions of the same notice are all settled, in seq order."""
        active = {sid for sid, s in self.subscriptions.stored.items() if s.status == "active"}
        open_versions = {(sid, r.notice_id, r.version) for sid, r in self.rows.values() if r.status in OPEN}
        return [i for i, (sid, r) in sorted(self.rows.items(), key=lambda item: item[1][1].seq)
                if r.status in OPEN and sid in active
                and not any((sid, r.notice_id, v) in open_versions for v in range(1, r.version))]

    def settle(self, delivery_id: int, status: str = DeliveryStatus.DELIVERED.value) -> tuple[str, DeliveryRecord]:
        self._set(delivery_id, status=status, attempts=self.rows[delivery_id][1].attempts + 1)
        return self.rows[delivery_id]

    def _set(self, delivery_id: int, **changes: Any) -> None:
        sid, record = self.rows[delivery_id]
        self.rows[delivery_id] = (sid, dataclasses.replace(record, **changes))

    def end_open(self, subscription_id: str, reason: str) -> None:
        for delivery_id, (sid, record) in list(self.rows.items()):
            if sid == subscription_id and record.status in OPEN:
                self._set(delivery_id, status=DeliveryStatus.DEAD.value, last_error=reason)

    def dead(self, subscription_id: str, ids: Sequence[int] | None = None) -> list[int]:
        return sorted(i for i, (sid, r) in self.rows.items() if sid == subscription_id
                      and r.status == DeliveryStatus.DEAD.value and (ids is None or i in ids))

    def replay(self, ids: Sequence[int], now: datetime) -> None:
        for delivery_id in ids:
            self._set(delivery_id, status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now)

    def page(self, subscription_id: str, status: str | None, after: int | None, limit: int
             ) -> list[DeliveryRecord]:
        return [r for i, (sid, r) in sorted(self.rows.items()) if sid == subscription_id
                and (status is None or r.status == status) and (after is None or i > after)][:limit]

    def counts(self, subscription_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sid, record in self.rows.values():
            if sid == subscription_id:
                counts[record.status] = counts.get(record.status, 0) + 1
        return counts


class InMemoryEndpointRepository:
    """Endpoints live among the subscriptions (``batch``), batched deliveries among the deliveries,
    their recipients beside them (``recipients``: delivery id -> sorted ids), as in the SQL schema."""

    def __init__(self, subscriptions: InMemorySubscriptionRepository, deliveries: InMemoryDeliveryRepository) -> None:
        self.subscriptions = subscriptions
        self.deliveries = deliveries
        self.recipients: dict[int, list[str]] = {}

    def list_for(self, org_id: str) -> list[Subscription]:
        return [copy.deepcopy(s) for s in self.subscriptions.stored.values() if s.org_id == org_id and s.batch]

    def subscriptions_on(self, endpoint_id: str, after: str | None, limit: int) -> list[Subscription]:
        found = sorted((s for s in self.subscriptions.stored.values() if s.endpoint_id == endpoint_id),
                       key=lambda s: s.id)
        return [copy.deepcopy(s) for s in found if after is None or s.id > after][:limit]

    def count_on(self, endpoint_id: str) -> int:
        return sum(1 for s in self.subscriptions.stored.values() if s.endpoint_id == endpoint_id)

    def remove_subscriptions_on(self, endpoint_id: str) -> int:
        gone = [sid for sid, s in self.subscriptions.stored.items() if s.endpoint_id == endpoint_id]
        for sid in gone:
            del self.subscriptions.stored[sid]
        self.reload_all()
        return len(gone)

    def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            assert row["id"] not in self.subscriptions.stored, f"duplicate subscription {row['id']}"
            self.subscriptions.stored[row["id"]] = Subscription(
                id=row["id"], org_id=row["org_id"], name=row["name"], channel=Channel(row["channel"]),
                filter=SubscriptionFilter.parse(row["filter"]), created_at=row["created_at"],
                updated_at=row["updated_at"], endpoint_id=row["endpoint_id"])

    def reload_all(self) -> None:
        self.subscriptions._log(RELOAD_ALL)

    def classify(self, ids: Iterable[str]) -> tuple[dict[str, str], set[str]]:
        stored = self.subscriptions.stored
        members = {sid: e for sid in ids if sid in stored and (e := stored[sid].endpoint_id) is not None}
        return members, {sid for sid in ids if sid in stored and stored[sid].batch}

    def earlier_batches(self, notice_id: str, version: int, endpoint_ids: Iterable[str]) -> dict[str, set[str]]:
        wanted = set(endpoint_ids)
        earlier: dict[str, set[str]] = {}
        for delivery_id, (sid, record) in self.deliveries.rows.items():
            if sid in wanted and record.notice_id == notice_id and record.version < version:
                earlier.setdefault(sid, set()).update(self.recipients.get(delivery_id, []))
        stored = self.subscriptions.stored
        return {e: {s for s in ids if s in stored and stored[s].endpoint_id == e} for e, ids in earlier.items()}

    def add_batched(self, recipients: Mapping[str, Sequence[str]], notice_id: str, version: int, seq: int,
                    kind: str) -> int:
        written = 0
        for endpoint_id, ids in recipients.items():
            if not ids:
                continue
            before = set(self.deliveries.rows)
            self.deliveries.add_deliveries([endpoint_id], notice_id, version, seq, kind)
            for delivery_id in set(self.deliveries.rows) - before:
                self.recipients[delivery_id] = sorted(ids)
            written += 1
        return written


class InMemoryNoticeReader:
    """Versions put here are what matching sees (tests and benches): a changes feed in the order they
    were put (each gets the next seq unless one is given)."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, int], tuple[dict[str, Any] | None, dict[str, Any]]] = {}
        self.feed: list[FeedVersion] = []

    def put(self, notice_id: str, version: int, content: dict[str, Any] | None,
            metadata: dict[str, Any] | None = None, *, kind: str | None = None, seq: int | None = None,
            institution_org_id: str = "inst-1", published_at: str = "2025-03-03T00:00:00+00:00") -> int:
        """``content`` is the version's (the notice's last content for a cancellation, as the store
        keeps it); the feed hands a cancellation out without it, as the SQL reader does."""
        kind = kind or ("original" if version == 1 else "cancellation" if content is None else "amendment")
        seq = seq if seq is not None else (self.feed[-1].event.seq + 1 if self.feed else 1)
        facts = content or {"category": "works"}
        event = NoticeVersionPublished(notice_id=notice_id, version=version, kind=kind,
                                       institution_org_id=institution_org_id, category=facts["category"],
                                       region=facts.get("delivery_region"), seq=seq, published_at=published_at)
        readable = None if kind == "cancellation" else content
        self.versions[(notice_id, version)] = (readable, dict(metadata or {}))
        self.feed.append(FeedVersion(event, readable, dict(metadata or {})))
        self.feed.sort(key=lambda item: item.event.seq)
        return seq

    def versions_after(self, seq: int, limit: int) -> list[FeedVersion]:
        return [item for item in self.feed if item.event.seq > seq][:limit]

    def get_version(self, notice_id: str, version: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        try:
            return self.versions[(notice_id, version)]
        except KeyError:
            raise NoticeUnavailable(f"notice {notice_id} version {version}") from None


class InMemoryMatchingCursor:
    def __init__(self) -> None:
        self.seq = 0
        self.held = False  # set by a test to play another matcher holding the row

    def position(self) -> int:
        return self.seq

    def hold(self, wait: bool) -> int | None:
        if self.held and not wait:
            return None
        return self.seq

    def advance(self, seq: int) -> None:
        self.seq = seq


class FakeResolver:
    """DNS as the test says: ``answers[host]`` are the addresses; an unknown host does not resolve."""

    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise UnsafeTarget(f"host {host!r} does not resolve")
        return list(self.answers[host])


class RecordingSubscriberQueues:
    """Subscriber queues as a dict of bindings, with every call recorded in order."""

    def __init__(self) -> None:
        self.queues: dict[str, set[str]] = {}
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []

    def declare(self, subscription_id: str, binding_keys: Sequence[str]) -> None:
        self.calls.append(("declare", subscription_id, tuple(binding_keys)))
        self.queues.setdefault(subscription_id, set()).update(binding_keys)

    def bind(self, subscription_id: str, binding_keys: Sequence[str]) -> None:
        self.calls.append(("bind", subscription_id, tuple(binding_keys)))
        self.queues[subscription_id].update(binding_keys)

    def unbind(self, subscription_id: str, binding_keys: Sequence[str]) -> None:
        self.calls.append(("unbind", subscription_id, tuple(binding_keys)))
        self.queues[subscription_id].difference_update(binding_keys)

    def delete(self, subscription_id: str) -> None:
        self.calls.append(("delete", subscription_id, ()))
        self.queues.pop(subscription_id, None)


class InMemoryDeadLetters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def add(self, group: str, envelope: Envelope, reason: str, delivery_count: int) -> bool:
        if any(d.consumer_group == group and d.envelope.message_id == envelope.message_id and d.replayed_at is None
               for d in self.letters):
            return False
        self.letters.append(DeadLetter(id=len(self.letters) + 1, consumer_group=group, envelope=envelope,
                                       reason=reason, delivery_count=delivery_count, dead_at=datetime.now(UTC),
                                       replayed_at=None))
        return True

    def take_for_replay(self, ids: list[int] | None, group: str | None) -> list[DeadLetter]:
        taken = [d for d in self.letters if d.replayed_at is None and (ids is None or d.id in ids)
                 and (group is None or d.consumer_group == group)]
        now = datetime.now(UTC)
        self.letters = [dataclasses.replace(d, replayed_at=now) if d in taken else d for d in self.letters]
        return taken


class InMemoryAuditLog:
    def __init__(self) -> None:
        self.entries: list[tuple[Envelope, str | None, str | None]] = []

    def record(self, envelope: Envelope, actor_org_id: str | None, subject_org_id: str | None) -> None:
        self.entries.append((envelope, actor_org_id, subject_org_id))


class FakeUnitOfWork(AbstractUnitOfWork):
    """Same contract as the SQL unit of work; commits land in ``outbox`` and ``committed`` counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.organisations = InMemoryOrganisationRepository()
        self.dead_letters = InMemoryDeadLetters()  # type: ignore[assignment]
        self.audit = InMemoryAuditLog()  # type: ignore[assignment]
        self.suppliers = InMemorySupplierRepository()
        self.notices = InMemoryNoticeRepository()
        self.idempotency = InMemoryIdempotencyStore()
        self.subscriptions = InMemorySubscriptionRepository()
        self.deliveries = InMemoryDeliveryRepository(self.subscriptions)
        self.notice_versions = InMemoryNoticeReader()
        self.matching_cursor = InMemoryMatchingCursor()
        self.endpoints = InMemoryEndpointRepository(self.subscriptions, self.deliveries)
        self.outbox: list[Envelope] = []
        self.inbox: set[tuple[str, str]] = set()
        self._inbox_pending: set[tuple[str, str]] = set()
        self.committed = 0

    def _commit(self, envelopes: list[Envelope]) -> None:
        self.outbox.extend(envelopes)
        self.inbox |= self._inbox_pending
        self._inbox_pending = set()
        self.committed += 1

    def _rollback(self) -> None:
        self._inbox_pending = set()

    def already_handled(self, consumer_group: str, message_id: str) -> bool:
        return (consumer_group, message_id) in self.inbox

    def mark_handled(self, consumer_group: str, message_id: str) -> None:
        self._inbox_pending.add((consumer_group, message_id))
