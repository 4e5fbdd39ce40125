"""Tables of suppliers, credentials and upstream call records.

Tables use ``metadata`` from :mod:`hub.spine.tables`; domain classes are mapped in :func:`start_mappers`,
which :func:`hub.spine.tables.start_mappers` calls once per process.

Raw upstream payloads live once per SHA-256 in ``raw_payloads`` (an NTS batch answer's share, a VIES
envelope): versions point at them by hash, so provenance is never overwritten and identical answers
are not stored twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from hub.spine.tables import BigId, JsonDoc, UTCDateTime, mapper_registry, metadata

__all__ = [
    "control_challenges",
    "control_proofs",
    "credential_fetches",
    "credential_versions",
    "credentials",
    "identifier_claims",
    "raw_payloads",
    "start_mappers",
    "supplier_grants",
    "suppliers",
    "upstream_calls",
]

UTC = UTCDateTime
_JSON: Any = JsonDoc
_BIG_ID: Any = BigId

suppliers = Table(
    "suppliers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("org_id", String(36), ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("legal_name", String(300), nullable=True),
    Column("identifiers", JSON(), nullable=False),
    Column("identity_key", String(64), nullable=False),
    Column("consent_given_at", UTC(), nullable=False),
    Column("consent_text_version", String(40), nullable=False),
    Column("created_at", UTC(), nullable=False),
    UniqueConstraint("org_id", "identity_key", name="uq_suppliers_org_identity"),
)

supplier_grants = Table(
    "supplier_grants",
    metadata,
    Column("supplier_id", String(36), ForeignKey("suppliers.id", ondelete="CASCADE"), primary_key=True),
    Column("org_id", String(36), ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True),
    Column("granted_at", UTC(), nullable=False),
    Column("granted_by", String(36), nullable=False),
)

credential_fetches = Table(
    "credential_fetches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("supplier_id", String(36), ForeignKey("suppliers.id", ondelete="CASCADE"), nullable=False),
    Column("system", String(64), nullable=False),
    Column("scheme", String(32), nullable=False),
    Column("identifier", String(128), nullable=False),
    Column("state", String(24), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_at", UTC(), nullable=True),
    Column("last_attempt_at", UTC(), nullable=True),
    Column("last_success_at", UTC(), nullable=True),
    Column("last_error", Text(), nullable=True),
    Column("claimed_until", UTC(), nullable=True),
    Column("claim_token", String(36), nullable=True),
    Column("created_at", UTC(), nullable=False),
    UniqueConstraint("supplier_id", "system", name="uq_credential_fetches_supplier_system"),
    Index("ix_credential_fetches_due", "next_attempt_at"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("supplier_id", String(36), ForeignKey("suppliers.id", ondelete="CASCADE"), nullable=False),
    Column("fetch_id", String(36), ForeignKey("credential_fetches.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("system", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("status", String(64), nullable=False),
    Column("attributes", _JSON, nullable=False),
    Column("valid_from", UTC(), nullable=True),
    Column("valid_until", UTC(), nullable=True),
    Column("fetched_at", UTC(), nullable=False),
    Column("current_version_id", _BIG_ID, nullable=True),
    Column("expired_at", UTC(), nullable=True),
    Column("standing", String(16), nullable=False, server_default="unknown"),
    Column("created_at", UTC(), nullable=False),
    Column("updated_at", UTC(), nullable=False),
    UniqueConstraint("supplier_id", "system", "type", "subject", "record_key", name="uq_credentials_identity"),
    Index("ix_credentials_expiry", "valid_until", "expired_at"),
)

raw_payloads = Table(
    "raw_payloads",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer(), nullable=False),
    Column("body", LargeBinary(), nullable=False),
    Column("stored_at", UTC(), nullable=False),
)

credential_versions = Table(
    "credential_versions",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("credential_id", String(36), ForeignKey("credentials.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("fetched_at", UTC(), nullable=False),
    Column("status", String(64), nullable=False),
    Column("attributes", _JSON, nullable=False),
    Column("valid_from", UTC(), nullable=True),
    Column("valid_until", UTC(), nullable=True),
    Column("raw_sha256", String(64), ForeignKey("raw_payloads.sha256"), nullable=False),
    Column("response_sha256", String(64), nullable=False),
    Column("request_sha256", String(64), nullable=True),
    Column("evidence_pointer", String(500), nullable=False),
    Column("change", String(16), nullable=False),
    Column("standing", String(16), nullable=False, server_default="unknown"),
)

upstream_calls = Table(
    "upstream_calls",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    Column("system", String(64), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("requested_by", String(64), nullable=False, index=True),
    Column("identifier_count", Integer(), nullable=False),
    Column("batched", Boolean(), nullable=False),
    Column("started_at", UTC(), nullable=False),
    Column("duration_ms", Float(), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("http_status", Integer(), nullable=True),
    Column("error_code", String(100), nullable=True),
    Column("request_sha256", String(64), nullable=True),
    Column("response_sha256", String(64), nullable=True),
    Index("ix_upstream_calls_system_started", "system", "started_at"),
)


# One row per identifier: the primary key is what makes "one organisation at a time" hold under
# concurrent registrations (the second insert waits for the first and then fails).
identifier_claims = Table(
    "identifier_claims",
    metadata,
    Column("scheme", String(32), primary_key=True),
    Column("identifier", String(128), primary_key=True),
    Column("org_id", String(36), ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("claimed_at", UTC(), nullable=False),
    Column("proven_at", UTC(), nullable=True),
    Column("proof_method", String(32), nullable=True),
    Column("proof_id", String(36), nullable=True),
)

control_challenges = Table(
    "control_challenges",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("supplier_id", String(36), ForeignKey("suppliers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("org_id", String(36), nullable=False),
    Column("scheme", String(32), nullable=False),
    Column("identifier", String(128), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("issued_at", UTC(), nullable=False),
    Column("expires_at", UTC(), nullable=False),
    Column("used_at", UTC(), nullable=True),
)

control_proofs = Table(
    "control_proofs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("supplier_id", String(36), ForeignKey("suppliers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("org_id", String(36), nullable=False),
    Column("scheme", String(32), nullable=False),
    Column("identifier", String(128), nullable=False),
    Column("method", String(32), nullable=False),
    Column("accepted", Boolean(), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("evidence", _JSON, nullable=False),
    Column("recorded_by", String(36), nullable=False),
    Column("recorded_at", UTC(), nullable=False),
    Column("challenge_id", String(36), nullable=True),
    Column("failed_field", String(64), nullable=True),
)


def start_mappers() -> None:
    """Map this flow's domain classes imperatively (plain dataclasses, no relationships: the
    repository queries what it needs)."""
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

    registry = mapper_registry
    registry.map_imperatively(Supplier, suppliers)
    registry.map_imperatively(SupplierGrant, supplier_grants)
    registry.map_imperatively(CredentialFetch, credential_fetches)
    registry.map_imperatively(Credential, credentials)
    registry.map_imperatively(CredentialVersion, credential_versions)
    registry.map_imperatively(IdentifierClaim, identifier_claims)
    registry.map_imperatively(ControlChallenge, control_challenges)
    registry.map_imperatively(ControlProof, control_proofs)
