"""Organisations (institution, agency, supplier, operator), their API keys and the scopes keys carry."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from hub.spine.errors import ServiceError

__all__ = [
    "DEFAULT_SCOPES",
    "ApiKey",
    "IssuedKey",
    "OrgKind",
    "Organisation",
    "Scope",
    "ScopeExceeded",
    "hash_secret",
    "parse_api_key",
]


class OrgKind(StrEnum):
    INSTITUTION = "institution"  # publishes bid notices
    AGENCY = "agency"  # subscribes to notice feeds
    SUPPLIER = "supplier"  # registers once, holds credentials
    OPERATOR = "operator"  # runs the hub


class Scope(StrEnum):
    ORGS_ADMIN = "orgs:admin"
    ORGS_READ_SELF = "orgs:read"
    KEYS_MANAGE_SELF = "keys:manage"
    AUDIT_READ = "audit:read"
    DLQ_ADMIN = "dlq:admin"
    NOTICES_WRITE = "notices:write"
    SUBSCRIPTIONS_WRITE = "subscriptions:write"
    SUPPLIERS_WRITE = "suppliers:write"
    SUPPLIERS_READ = "suppliers:read"
    ELIGIBILITY_QUERY = "eligibility:query"


_COMMON = {Scope.ORGS_READ_SELF, Scope.KEYS_MANAGE_SELF, Scope.AUDIT_READ}

DEFAULT_SCOPES: dict[OrgKind, frozenset[Scope]] = {
    OrgKind.INSTITUTION: frozenset(
        _COMMON | {Scope.NOTICES_WRITE, Scope.SUPPLIERS_READ, Scope.ELIGIBILITY_QUERY}
    ),
    OrgKind.AGENCY: frozenset(_COMMON | {Scope.SUBSCRIPTIONS_WRITE}),
    OrgKind.SUPPLIER: frozenset(_COMMON | {Scope.SUPPLIERS_WRITE, Scope.SUBSCRIPTIONS_WRITE}),
    OrgKind.OPERATOR: frozenset(set(Scope)),
}

KEY_PREFIX = "g2b"


class ScopeExceeded(ServiceError):
    """Key management beyond the manager's own scopes: a key may mint and revoke only keys whose scopes
    it holds itself, so a narrow key handed to a script can neither be traded up for a full one nor take
    the organisation's full key away."""

    title = "Forbidden"
    slug = "forbidden"


def hash_secret(secret: str) -> str:
    """API key secrets are 256-bit random, so a plain SHA-256 is a sound at-rest hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def shown_key_id(raw: str) -> str:
    """What an error may repeat of a key id someone typed: the id of a whole key pasted in its place
    (never the secret after it), else at most the length of an id."""
    parsed = parse_api_key(raw)
    if parsed is not None:
        return parsed[0]
    text = raw.strip()
    return text if len(text) <= 16 else text[:16] + "…"


def parse_api_key(raw: str) -> tuple[str, str] | None:
    """``g2b_<key id>_<secret>`` → (key id, secret), or None when the shape is wrong."""
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ApiKey:
    id: str
    org_id: str
    secret_hash: str
    scopes: list[str]
    label: str = ""
    created_at: datetime = field(default_factory=_now)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))

    def allows(self, scope: Scope) -> bool:
        return scope.value in self.scopes


@dataclass(frozen=True)
class IssuedKey:
    """The only moment the plaintext exists: returned once to the caller, never stored."""

    key: ApiKey
    plaintext: str


@dataclass
class Organisation:
    id: str
    name: str
    kind: OrgKind
    created_at: datetime = field(default_factory=_now)
    disabled_at: datetime | None = None
    api_keys: list[ApiKey] = field(default_factory=list)

    @classmethod
    def new(cls, name: str, kind: OrgKind) -> Organisation:
        return cls(id=str(uuid.uuid4()), name=name, kind=kind)

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def disable(self) -> bool:
        """Every key of a disabled organisation is refused (the keys stay, so enabling restores them).
        True only for the transition, so a repeated disable is audited once."""
        if self.disabled_at is not None:
            return False
        self.disabled_at = _now()
        return True

    def enable(self) -> bool:
        """True only for the transition from disabled."""
        if self.disabled_at is None:
            return False
        self.disabled_at = None
        return True

    def issue_key(self, label: str = "", scopes: frozenset[Scope] | None = None,
                  grantor_scopes: frozenset[str] | None = None) -> IssuedKey:
        """``grantor_scopes``: the scopes of the key asking (``None``: no key asks, e.g. the CLI). Without
        ``scopes`` the new key gets every scope the kind allows that the grantor holds."""
        allowed = DEFAULT_SCOPES[self.kind]
        if scopes is None:
            chosen = allowed if grantor_scopes is None else frozenset(s for s in allowed if s.value in grantor_scopes)
        else:
            chosen = scopes
        if grantor_scopes is not None:
            beyond = sorted(s.value for s in chosen if s.value not in grantor_scopes)
            if beyond:
                raise ScopeExceeded(f"a key cannot grant scopes it does not hold: {', '.join(beyond)}")
        if not chosen <= allowed:
            extra = ", ".join(sorted(s.value for s in chosen - allowed))
            raise ValueError(f"scopes not allowed for a {self.kind}: {extra}")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            id=key_id,
            org_id=self.id,
            secret_hash=hash_secret(secret),
            scopes=sorted(s.value for s in chosen),
            label=label,
        )
        self.api_keys.append(key)
        return IssuedKey(key=key, plaintext=f"{KEY_PREFIX}_{key_id}_{secret}")

    def revoke_key(self, key_id: str, revoker_scopes: frozenset[str] | None = None) -> ApiKey:
        """``revoker_scopes``: the scopes of the key asking (``None``: no key asks, e.g. the CLI)."""
        for key in self.api_keys:
            if key.id == key_id:
                beyond = sorted(set(key.scopes) - revoker_scopes) if revoker_scopes is not None else []
                if beyond:
                    raise ScopeExceeded(f"a key cannot revoke a key with scopes it does not hold: {', '.join(beyond)}")
                if key.revoked_at is None:
                    key.revoked_at = _now()
                return key
        raise KeyError(key_id)
