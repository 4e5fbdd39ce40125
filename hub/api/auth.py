"""Who is calling: API key → :class:`Principal`, a plain snapshot of the org and the key's scopes.

Authorisation rules, in one place so every route applies them the same way:

* function level (OWASP API5): every route declares the scope it needs (:func:`hub.api.deps.require_scope`);
  a valid key without it gets 403.
* object level (API1): an organisation reaches only its own objects. Reaching another organisation's
  objects takes ``orgs:admin`` (only operators hold it). Without it, another org's object answers 404,
  exactly as a missing one does, so ids cannot be probed for existence.

The key is checked in a unit of work that only reads (on SQLite it takes no write lock).
``last_used_at`` is written at most once per :data:`LAST_USED_RESOLUTION` per key, in a short write of
its own after the check: enough to spot dormant keys, without turning every read into a write.

A key that passed is remembered for ``api.key_cache_ttl_s`` (5 s by default, :attr:`Hub.api_keys`), keyed
by a digest of the whole key (id *and* secret, so a wrong secret never matches it): a busy client is not
looked up on every request. The price is that revoking a key, or disabling its organisation, reaches
other API processes up to that long later; this process forgets its cached keys at once (:func:`forget_keys`).
Failures are never cached, so a key issued or re-enabled works on its next request.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.bootstrap import Hub
from hub.organisations.model import OrgKind, Scope, hash_secret, parse_api_key
from hub.spine.faults import is_locked

__all__ = ["LAST_USED_RESOLUTION", "Principal", "authenticate", "forget_keys"]

LAST_USED_RESOLUTION = timedelta(minutes=1)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. Detached from any session, so safe to keep after the lookup."""

    org_id: str
    org_name: str
    org_kind: OrgKind
    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: Scope) -> bool:
        return scope.value in self.scopes

    @property
    def cross_org(self) -> bool:
        """May act on other organisations' objects."""
        return self.allows(Scope.ORGS_ADMIN)

    def can_reach(self, org_id: str) -> bool:
        return org_id == self.org_id or self.cross_org


def authenticate(hub: Hub, raw_key: str) -> Principal | None:
    """None for a malformed, unknown, wrong, revoked key or a disabled organisation (the caller
    learns only "not authenticated"; the log says why, by key id, never the secret)."""
    digest = hashlib.sha256(raw_key.encode()).hexdigest()
    cached = hub.api_keys.get(digest)
    if isinstance(cached, Principal):
        return cached
    principal = _look_up(hub, raw_key)
    if principal is not None:
        hub.api_keys.put(digest, principal)
    return principal


def forget_keys(hub: Hub) -> None:
    """Drop every cached key of this process (after a revocation, so it takes effect here at once)."""
    hub.api_keys.clear()


def _look_up(hub: Hub, raw_key: str) -> Principal | None:
    parsed = parse_api_key(raw_key)
    if parsed is None:
        log.info("api key rejected", extra={"reason": "malformed"})
        return None
    key_id, secret = parsed
    with hub.read_uow() as uow:  # no write lock: authenticating is a read
        key = uow.organisations.get_key(key_id)
        if key is None:
            hash_secret(secret)  # same work as a real check, so timing does not tell ids apart
            log.info("api key rejected", extra={"reason": "unknown", "key_id": key_id})
            return None
        if not key.matches(secret):
            log.info("api key rejected", extra={"reason": "wrong secret", "key_id": key_id})
            return None
        if not key.active:
            log.info("api key rejected", extra={"reason": "revoked", "key_id": key_id})
            return None
        org = uow.organisations.get(key.org_id)
        if org is None or org.disabled_at is not None:
            log.info("api key rejected", extra={"reason": "organisation disabled", "key_id": key_id})
            return None
        principal = Principal(
            org_id=org.id,
            org_name=org.name,
            org_kind=OrgKind(org.kind),
            key_id=key.id,
            scopes=frozenset(key.scopes),
        )
        last_used_at = key.last_used_at
    now = datetime.now(UTC)
    if last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION:
        _touch(hub, key_id, now)
    return principal


def _touch(hub: Hub, key_id: str, now: datetime) -> None:
    """Record the key's use, in its own short write after the read. A write that cannot have the lock in
    time is skipped: the mark is advisory, and the next request a minute on writes it."""
    try:
        with hub.uow() as uow:
            key = uow.organisations.get_key(key_id)
            if key is not None:
                key.last_used_at = now
                uow.commit()
    except Exception as exc:
        if not is_locked(exc):
            raise
        log.warning("api key use not recorded: the database stayed locked", extra={"key_id": key_id})
