"""Proof of control of an identifier: the rules and the plug-in interface, in plain Python.

A *control scheme* checks evidence that the organisation registering an identifier really is the
business it names. Each scheme says which identifier schemes it can prove and answers one
:class:`ProofRequest` with a :class:`ProofResult`; bootstrap builds the configured ones (the X.509
verifier in :mod:`hub.suppliers.x509_control`) and hands them to the handlers as ``control_schemes``.
A national scheme (a Korean business certificate checked with KISA, say) is one more implementation:
see docs/identifier-control.md.

``organizationIdentifier`` (X.520, OID 2.5.4.97) follows ETSI EN 319 412-1 §5.1.4: three letters for the
type of register, two for the country, a hyphen, then the identifier: ``VATDE-123456789``,
``LEIXG-5493001KJTIIGC8Y1R12``, ``NTRGB-01234567``, ``NTRKR-1234567890``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from hub.spine.errors import Conflict
from hub.suppliers.identifiers import IdentifierError, normalise_identifier

__all__ = [
    "ControlScheme",
    "ControlSchemes",
    "IdentifierTaken",
    "OrganizationIdentifierError",
    "ProofRequest",
    "ProofResult",
    "identifier_of_organization_identifier",
    "names_identifier",
]

_ETSI = re.compile(r"^(?P<type>[A-Z]{3})(?P<country>[A-Z]{2})-(?P<value>\S.*)$")


class IdentifierTaken(Conflict):
    """Another organisation holds the identifier. Says which field, never who holds it."""

    slug = "identifier-claimed"
    title = "Identifier claimed by another organisation"

    def __init__(self, scheme: str, identifier: str) -> None:
        self.field = f"identifiers.{scheme}"
        self.message = ("this identifier is registered by another organisation; if it is yours, ask the hub "
                        "operator to resolve the dispute (see docs/identifier-control.md)")
        self.scheme, self.identifier = scheme, identifier
        super().__init__(f"{self.field}: {self.message}")


class OrganizationIdentifierError(ValueError):
    """The attribute is not in the ETSI EN 319 412-1 form, or names a register the hub has no scheme for."""


def identifier_of_organization_identifier(text: str) -> tuple[str, str]:
    """(hub scheme, normalised identifier) named by an ``organizationIdentifier`` value.

    ``VAT<cc>-`` is an EU VAT number (the country code is its prefix), ``LEI<cc>-`` a Legal Entity
    Identifier (ETSI writes ``LEIXG``), ``NTRGB-`` a UK company number and ``NTRKR-`` a Korean business
    registration number. Raises :class:`OrganizationIdentifierError` otherwise."""
    found = _ETSI.fullmatch(text.strip())
    if found is None:
        raise OrganizationIdentifierError(
            f"{text!r} is not an ETSI EN 319 412-1 organizationIdentifier (type, country, '-', identifier)")
    kind, country, value = found["type"], found["country"], found["value"]
    if kind == "VAT":
        scheme, candidate = "eu_vat", value if value.upper().startswith(country) else country + value
    elif kind == "LEI":
        scheme, candidate = "lei", value
    elif kind == "NTR" and country == "GB":
        scheme, candidate = "gb_company_number", value
    elif kind == "NTR" and country == "KR":
        scheme, candidate = "kr_brn", value
    else:
        raise OrganizationIdentifierError(f"{kind}{country} names a register the hub has no identifier scheme for")
    try:
        return scheme, normalise_identifier(scheme, candidate)
    except IdentifierError as exc:
        raise OrganizationIdentifierError(f"{text!r}: {exc}") from exc


def names_identifier(values: Iterable[str], scheme: str, identifier: str) -> bool:
    """Whether any of the ``organizationIdentifier`` values names ``identifier`` (already normalised)."""
    for value in values:
        try:
            if identifier_of_organization_identifier(value) == (scheme, identifier):
                return True
        except OrganizationIdentifierError:
            continue
    return False


@dataclass(frozen=True)
class ProofRequest:
    """What a control scheme is asked: does this evidence show control of (scheme, identifier)?
    ``challenge`` is the exact bytes the owner was asked to sign (empty for schemes without one)."""

    scheme: str
    identifier: str
    challenge: bytes
    evidence: Mapping[str, Any]


@dataclass(frozen=True)
class ProofResult:
    """The verdict. ``failed_field`` names the part of the submitted proof that failed (the API's 422 points at
    it); ``evidence`` is what the hub keeps of the proof (never the key or the whole request)."""

    accepted: bool
    reason: str
    failed_field: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def refused(cls, field_name: str, reason: str, **evidence: Any) -> ProofResult:
        return cls(False, reason, field_name, dict(evidence))


class ControlScheme(Protocol):
    """A way to prove control. ``name`` is the ``method`` clients submit; ``schemes`` the identifier
    schemes it can prove. ``verify`` must not raise for bad evidence: it answers a refusal."""

    @property
    def name(self) -> str: ...

    @property
    def schemes(self) -> frozenset[str]: ...

    def verify(self, request: ProofRequest, now: datetime) -> ProofResult: ...


class ControlSchemes:
    """The configured control schemes, by method name (built by bootstrap)."""

    def __init__(self, schemes: Iterable[ControlScheme] = ()) -> None:
        self._by_name = {scheme.name: scheme for scheme in schemes}

    def get(self, method: str) -> ControlScheme | None:
        return self._by_name.get(method)

    @property
    def methods(self) -> list[str]:
        return sorted(self._by_name)
