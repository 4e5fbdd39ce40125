"""What each requirement kind reads from one credential: which credential types, which of them are
about the requirement at all (scheme, country, kind), and the verdict one credential supports.

Kept apart from the evaluator so that the per-source knowledge (NTS statuses, GLEIF registration
statuses, the IAF and national-registry certificate statuses) sits in one reviewable place, next to
the names the mapping files in ``mappings/*.yaml`` give those statuses and attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from hub.eligibility.language import (
    BusinessNotClosed,
    CertificateRequirement,
    CompanyActive,
    LeiValid,
    NationalCertificateRequirement,
    Requirement,
    TaxStatusRequirement,
    VatRegistered,
    canonical_scheme,
)
from mappings.credentials import Credential, Standing

__all__ = ["SYSTEM_TYPES", "Judgement", "Rule", "Verdict", "moment", "record_key", "rules_for", "usable"]


class Verdict(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class Rule:
    types: tuple[str, ...]
    noun: str  # "tax status", "ISO 9001 certificate": used in reasons
    mismatch: Callable[[Credential], str | None]  # why a credential of these types is not about this rule
    judge: Callable[[Credential], Judgement]  # the verdict a usable (fresh, settled) credential supports
    cited_attributes: tuple[str, ...]
    considers: Callable[[Credential], bool] = lambda _: True  # not even worth listing when False


# Which credential type each shipped system yields, so a pending fetch can explain a missing credential.
SYSTEM_TYPES = {
    "nts": "tax_status",
    "vies": "vat_registration",
    "gleif": "lei_registration",
    "companies_house": "company_registration",
    "iaf": "management_system_certificate",
    "national_certs": "national_certificate",
}

# Hub-assigned statuses (hub/suppliers): not the source's word about the supplier.
_PENDING = "pending"
_ABSENT = "absent"

_LEI_ISSUED = frozenset({"issued", "pending_transfer", "pending_archival"})  # GLEIF: LEI still valid
_LEI_ENDED = frozenset({"lapsed", "retired", "annulled", "merged", "duplicate", "cancelled"})
_CERT_GOOD = frozenset({"active", "valid"})  # IAF says active, the national registry says valid
_CERT_BAD = frozenset({"suspended", "withdrawn", "expired", "revoked"})
_CERT_EXPIRED = "expired"  # by its issuer: the certificate was in force through its expiry date
_UK_JURISDICTIONS = frozenset({"england-wales", "england", "wales", "scotland", "northern-ireland", "united-kingdom"})


def moment(when: datetime) -> str:
    """A date when the instant is midnight UTC, else minutes in UTC: what a reader needs in a reason."""
    utc = when.astimezone(UTC)
    return utc.date().isoformat() if utc.time() == time.min else utc.strftime("%Y-%m-%dT%H:%MZ")


def last_day(valid_until: datetime) -> str:
    """The last day covered by an exclusive bound: a date-derived bound is the next midnight."""
    utc = valid_until.astimezone(UTC)
    return (utc.date() - timedelta(days=1) if utc.time() == time.min else utc.date()).isoformat()


def record_key(credential: Credential) -> tuple[str, ...]:
    """What makes two credentials the same record fetched twice, the later superseding the earlier."""
    attributes = credential.attributes
    number = attributes.get("certificate_number") or attributes.get("number") or ""
    return (credential.type, credential.source, credential.subject, str(attributes.get("kind") or ""), str(number))


def ended_as_stated(credential: Credential) -> bool:
    """The source says the registration is not in force and dates its end at or before the fetch (a
    LAPSED LEI's renewal date, a certificate's expiry date): past that end the credential is evidence
    that it ended, not stale evidence awaiting a refresh."""
    until = credential.valid_until
    return (
        credential.standing is Standing.NOT_IN_FORCE and until is not None and until <= credential.evidence.fetched_at
    )


def usable(credential: Credential, noun: str, instant: datetime) -> Judgement | None:
    """``unknown`` when the credential cannot speak for ``instant``: pending, no longer reported,
    stale or expired, or not yet valid. None when the rule may judge it (also past an end the source
    itself stated as passed: see :func:`ended_as_stated`)."""
    fetched = moment(credential.evidence.fetched_at)
    if credential.status == _PENDING:
        return Judgement(Verdict.UNKNOWN, f"{noun} from {credential.source} is pending (fetch not completed)")
    if credential.status == _ABSENT:
        return Judgement(Verdict.UNKNOWN, f"{noun} is no longer reported by {credential.source} (fetched {fetched})")
    if credential.valid_from is not None and instant < credential.valid_from:
        return Judgement(
            Verdict.UNKNOWN,
            f"{noun} evidence is valid only from {moment(credential.valid_from)}, after {moment(instant)}",
        )
    if credential.valid_until is not None and instant >= credential.valid_until and not ended_as_stated(credential):
        return Judgement(
            Verdict.UNKNOWN,
            f"{noun} evidence expired: valid through {last_day(credential.valid_until)} (fetched {fetched}, "
            f"last known status {credential.status}); awaiting refresh",
        )
    return None


def _not_understood(credential: Credential, noun: str) -> Judgement:
    """A status word the rule does not know: not met when the mapping classifies it as not in force
    (the source says the registration ended), else unknown."""
    if credential.standing is Standing.NOT_IN_FORCE:
        return Judgement(
            Verdict.NOT_MET, f"{credential.source} reported {noun} status {credential.status!r}, not in force"
        )
    return Judgement(
        Verdict.UNKNOWN, f"{credential.source} reported {noun} status {credential.status!r}, not understood"
    )


def _since(day: object) -> str:
    return f" since {day}" if day else ""


def _as_of(credential: Credential) -> str:
    return f"as of {moment(credential.evidence.fetched_at)}"


# -- tax status (NTS) and company registration (Companies House) --------------------------------------

_TAX_ATTRIBUTES = ("status_name", "status_code", "closed_on", "tax_type")
_COMPANY_ATTRIBUTES = ("company_name", "company_status", "jurisdiction", "ceased_on")


def _tax_status(wanted: str) -> Callable[[Credential], Judgement]:
    def judge(credential: Credential) -> Judgement:
        status = credential.status
        if status not in {"active", "suspended", "closed", "unregistered"}:
            return _not_understood(credential, "tax")
        if status == wanted:
            return Judgement(Verdict.MET, f"tax status is {status} {_as_of(credential)}")
        if status == "unregistered":
            return Judgement(Verdict.NOT_MET, f"business number {credential.subject} is not registered with NTS")
        since = _since(credential.attributes.get("closed_on")) if status == "closed" else ""
        return Judgement(Verdict.NOT_MET, f"tax status is {status}{since} {_as_of(credential)}, not {wanted}")

    return judge


def _tax_not_closed(credential: Credential) -> Judgement:
    status = credential.status
    if status == "closed":
        return Judgement(Verdict.NOT_MET, f"tax status is closed{_since(credential.attributes.get('closed_on'))}")
    if status == "unregistered":
        return Judgement(Verdict.NOT_MET, f"business number {credential.subject} is not registered with NTS")
    if status in {"active", "suspended"}:
        return Judgement(Verdict.MET, f"tax status is {status} (not closed) {_as_of(credential)}")
    return _not_understood(credential, "tax")


def _company_words(credential: Credential) -> str:
    raw = credential.attributes.get("company_status") or credential.status
    return f"company {credential.subject} is {raw}"


def _company_not_closed(credential: Credential) -> Judgement:
    if credential.status == "closed":
        ceased = _since(credential.attributes.get("ceased_on"))
        return Judgement(Verdict.NOT_MET, f"{_company_words(credential)}{ceased}")
    if credential.status in {"active", "insolvency"}:
        return Judgement(Verdict.MET, f"{_company_words(credential)} (not closed) {_as_of(credential)}")
    return _not_understood(credential, "company")


def _company_active(credential: Credential) -> Judgement:
    if credential.status == "active":
        return Judgement(Verdict.MET, f"{_company_words(credential)} {_as_of(credential)}")
    if credential.status in {"closed", "insolvency"}:
        ceased = _since(credential.attributes.get("ceased_on"))
        return Judgement(Verdict.NOT_MET, f"{_company_words(credential)}{ceased}, not active")
    return _not_understood(credential, "company")


def company_country(credential: Credential) -> str | None:
    """ISO country of a company registration: Companies House states UK jurisdictions by name."""
    jurisdiction = str(credential.attributes.get("jurisdiction") or "").strip().lower()
    if jurisdiction in _UK_JURISDICTIONS or (not jurisdiction and credential.source == "companies_house"):
        return "GB"
    return jurisdiction.upper() if len(jurisdiction) == 2 else None


def _no_mismatch(_: Credential) -> None:
    return None


# -- VAT (VIES) and LEI (GLEIF) -----------------------------------------------------------------------


def vat_country(credential: Credential) -> str:
    code = str(credential.attributes.get("country_code") or credential.subject[:2]).upper()
    return "EL" if code == "GR" else code


def _vat(credential: Credential) -> Judgement:
    if credential.status == "valid":
        return Judgement(Verdict.MET, f"VAT number {credential.subject} is valid in VIES {_as_of(credential)}")
    if credential.status == "invalid":
        return Judgement(Verdict.NOT_MET, f"VAT number {credential.subject} is not valid in VIES {_as_of(credential)}")
    return _not_understood(credential, "VAT")


def _renewal(credential: Credential) -> str:
    renewal = credential.attributes.get("next_renewal_date")
    return f" (renewal was due {renewal})" if renewal else ""


def _lei(credential: Credential) -> Judgement:
    registration, entity = credential.status, credential.attributes.get("entity_status")
    if registration in _LEI_ENDED:
        renewal = _renewal(credential) if registration == "lapsed" else ""
        return Judgement(Verdict.NOT_MET, f"LEI {credential.subject} registration is {registration}{renewal}")
    if registration not in _LEI_ISSUED:
        return _not_understood(credential, "LEI registration")
    if ended_as_stated(credential) and entity != "inactive":
        return Judgement(
            Verdict.NOT_MET, f"LEI {credential.subject} is {registration} but not renewed{_renewal(credential)}"
        )
    if entity == "active":
        return Judgement(Verdict.MET, f"LEI {credential.subject} is {registration}, entity active {_as_of(credential)}")
    if entity == "inactive":
        return Judgement(
            Verdict.NOT_MET, f"LEI {credential.subject} is {registration} but the legal entity is inactive"
        )
    return Judgement(Verdict.UNKNOWN, f"LEI {credential.subject} is {registration}; entity status not stated")


# -- certificates (IAF, national registry) ------------------------------------------------------------

_CERT_ATTRIBUTES = (
    "scheme", "standard", "kind", "certificate_number", "number", "certification_body", "issuer", "expiry_date",
    "valid_until", "scope",
)  # fmt: skip


def _certificate_scheme(credential: Credential) -> str | None:
    if credential.type == "national_certificate":
        return canonical_scheme(str(credential.attributes.get("kind") or ""))
    attributes = credential.attributes
    return canonical_scheme(str(attributes.get("scheme") or attributes.get("standard") or ""))


def _is_scheme_certificate(credential: Credential) -> bool:
    """SME or women-owned confirmations are not management-system certificates: leave them out."""
    return credential.type != "national_certificate" or _certificate_scheme(credential) is not None


def _target(valid_on: date | None, instant: datetime) -> datetime:
    if valid_on is None or valid_on == instant.astimezone(UTC).date():
        return instant
    return datetime.combine(valid_on, time.min, UTC)


def _certificate(noun: str, target: datetime) -> Callable[[Credential], Judgement]:
    def judge(credential: Credential) -> Judgement:
        attributes = credential.attributes
        number = attributes.get("certificate_number") or attributes.get("number") or credential.subject
        name = f"{noun} {number}"
        until = credential.valid_until
        # An expired certificate was in force through its expiry date: before it, its dates decide. The
        # issuer's "expired" holds from the fetch at the latest, whatever date it still states.
        end = until
        if end is not None and credential.standing is Standing.NOT_IN_FORCE:
            end = min(end, credential.evidence.fetched_at)
        expired_by_then = credential.status == _CERT_EXPIRED and (end is None or end <= target)
        if credential.status in _CERT_BAD - {_CERT_EXPIRED} or expired_by_then:
            through = f" (valid through {last_day(until)})" if expired_by_then and until is not None else ""
            return Judgement(Verdict.NOT_MET, f"{name} is {credential.status}{through}")
        if credential.status not in _CERT_GOOD | {_CERT_EXPIRED}:
            return _not_understood(credential, "certificate")
        if until is not None and until <= target:
            return Judgement(Verdict.NOT_MET, f"{name} expires {last_day(until)}, before {moment(target)}")
        if credential.valid_from is not None and target < credential.valid_from:
            return Judgement(
                Verdict.UNKNOWN,
                f"{name} evidence covers only from {moment(credential.valid_from)}, not {moment(target)}",
            )
        issuer = attributes.get("certification_body") or attributes.get("issuer")
        by = f" ({issuer})" if issuer else ""
        through = f" through {last_day(until)}" if until is not None else ", with no stated expiry"
        if credential.status == _CERT_EXPIRED:  # expired since, but in force on its own dates at the target
            return Judgement(Verdict.MET, f"{name}{by} was valid{through} (expired since)")
        return Judgement(Verdict.MET, f"{name}{by} is {credential.status}{through}")

    return judge


def rules_for(requirement: Requirement, instant: datetime) -> tuple[Rule, ...]:
    """The rule(s) a leaf requirement applies; more than one are combined with all_of."""
    if isinstance(requirement, TaxStatusRequirement):
        return (Rule(("tax_status",), "tax status", _no_mismatch, _tax_status(requirement.status), _TAX_ATTRIBUTES),)
    if isinstance(requirement, BusinessNotClosed):
        return (
            Rule(("tax_status",), "tax status", _no_mismatch, _tax_not_closed, _TAX_ATTRIBUTES),
            Rule(
                ("company_registration",),
                "company registration",
                _no_mismatch,
                _company_not_closed,
                _COMPANY_ATTRIBUTES,
            ),
        )
    if isinstance(requirement, VatRegistered):
        country = requirement.country

        def other_country(credential: Credential) -> str | None:
            found = vat_country(credential)
            return None if country is None or found == country else f"country {found}, not {country}"

        noun = f"VAT registration in {country}" if country else "VAT registration"
        return (Rule(("vat_registration",), noun, other_country, _vat, ("country_code", "vat_number", "name")),)
    if isinstance(requirement, LeiValid):
        cited = ("entity_status", "legal_name", "next_renewal_date")
        return (Rule(("lei_registration",), "LEI registration", _no_mismatch, _lei, cited),)
    if isinstance(requirement, CompanyActive):
        jurisdiction = requirement.jurisdiction

        def other_jurisdiction(credential: Credential) -> str | None:
            found = company_country(credential)
            return (
                None if jurisdiction is None or found == jurisdiction else f"jurisdiction {found}, not {jurisdiction}"
            )

        noun = f"company registration in {jurisdiction}" if jurisdiction else "company registration"
        return (Rule(("company_registration",), noun, other_jurisdiction, _company_active, _COMPANY_ATTRIBUTES),)
    if isinstance(requirement, CertificateRequirement):
        scheme = requirement.scheme

        def other_scheme(credential: Credential) -> str | None:
            found = _certificate_scheme(credential)
            return None if found == scheme else f"scheme {found or 'not recognised'}, not {scheme}"

        judge = _certificate(f"{scheme} certificate", _target(requirement.valid_on, instant))
        types = ("management_system_certificate", "national_certificate")
        return (Rule(types, f"{scheme} certificate", other_scheme, judge, _CERT_ATTRIBUTES, _is_scheme_certificate),)
    if isinstance(requirement, NationalCertificateRequirement):
        kind = requirement.type.value

        def other_kind(credential: Credential) -> str | None:
            found = str(credential.attributes.get("kind") or "").upper()
            return None if found == kind else f"kind {found or 'not stated'}, not {kind}"

        judge = _certificate(f"{kind} certificate", _target(requirement.valid_on, instant))
        return (Rule(("national_certificate",), f"{kind} certificate", other_kind, judge, _CERT_ATTRIBUTES),)
    raise TypeError(f"not a leaf requirement: {requirement.kind}")
