"""Proof of control without a database: the organizationIdentifier parser (ETSI EN 319 412-1), the
pure rules (challenge spent or expired, which identifiers are unproven), the X.509 scheme on
certificates generated here, the handlers on the in-memory unit of work, and eligibility's answer
for credentials it may not use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.eligibility.evaluate import CONTROL_NOT_PROVEN, evaluate
from hub.eligibility.language import parse_requirements
from hub.organisations.model import Organisation, OrgKind
from hub.registry import COMMAND_HANDLERS
from hub.spine.bus import MessageBus
from hub.spine.errors import NotFound, Rejected
from hub.suppliers.commands import (
    ApproveControlManually,
    RegisterSupplier,
    ReleaseIdentifierClaim,
    RequestControlChallenge,
    SubmitControlProof,
    TransferIdentifierClaim,
)
from hub.suppliers.config import SupplierSettings
from hub.suppliers.control import (
    ControlSchemes,
    IdentifierTaken,
    OrganizationIdentifierError,
    ProofRequest,
    identifier_of_organization_identifier,
    names_identifier,
)
from hub.suppliers.model import ControlChallenge, IdentifierClaim, challenge_refusal, unproven_identifiers
from hub.suppliers.x509_control import X509ControlScheme
from mappings.credentials import Credential, Evidence
from tests.support.control import CertificateAuthority, etsi_identifier
from tests.support.fakes import FakeUnitOfWork

BRN = "1157750731"
LEI = "213800VN0A3M6L5X2X86"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# -- organizationIdentifier ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("NTRKR-1157750731", ("kr_brn", BRN)),
    ("NTRKR-115-77-50731", ("kr_brn", BRN)),  # the number in any accepted spelling, normalised
    ("LEIXG-213800VN0A3M6L5X2X86", ("lei", LEI)),
    ("VATDE-136695976", ("eu_vat", "DE136695976")),
    ("VATDE-DE136695976", ("eu_vat", "DE136695976")),  # some CAs repeat the country prefix
    ("VATEL-094014201", ("eu_vat", "EL094014201")),
    ("NTRGB-01234567", ("gb_company_number", "01234567")),
    ("NTRGB-sc123456", ("gb_company_number", "SC123456")),
])
def test_organization_identifier_names_a_hub_identifier(text: str, expected: tuple[str, str]) -> None:
    assert identifier_of_organization_identifier(text) == expected


@pytest.mark.parametrize("text", [
    "1157750731",  # no type or country
    "NTR-KR-1157750731",  # country not where ETSI puts it
    "ntrkr-1157750731",  # the type and country are upper case
    "NTRKR-1157750732",  # a bad check digit
    "NTRFR-123456789",  # a trade register the hub has no scheme for
    "PSDBE-NBB-1234.567",  # a payment-services authorisation, not a business identifier
    "VATXX-",
])
def test_malformed_or_unknown_organization_identifiers_are_refused(text: str) -> None:
    with pytest.raises(OrganizationIdentifierError):
        identifier_of_organization_identifier(text)


def test_names_identifier_looks_at_every_value_and_ignores_the_unreadable() -> None:
    assert names_identifier(["garbage", "NTRKR-115-77-50731"], "kr_brn", BRN)
    assert not names_identifier(["NTRKR-1157750731"], "kr_brn", "2208162517")
    assert not names_identifier(["NTRKR-1157750731"], "gb_company_number", BRN)  # the scheme must match too
    assert not names_identifier([], "kr_brn", BRN)


# -- pure rules ------------------------------------------------------------------------------------------


def _challenge(**overrides: object) -> ControlChallenge:
    values: dict[str, object] = {"id": "c1", "supplier_id": "s1", "org_id": "o1", "scheme": "kr_brn",
                                 "identifier": BRN, "nonce": "ab" * 32, "issued_at": NOW,
                                 "expires_at": NOW + timedelta(minutes=10)}
    return ControlChallenge(**(values | overrides))  # type: ignore[arg-type]


def test_a_challenge_is_answerable_once_and_before_it_expires() -> None:
    challenge = _challenge()
    assert challenge_refusal(challenge, NOW) is None
    assert "expired" in (challenge_refusal(challenge, NOW + timedelta(minutes=10)) or "")
    challenge.used_at = NOW
    assert "already answered" in (challenge_refusal(challenge, NOW) or "")
    text = challenge.text  # binds the signature to this hub, supplier and identifier
    assert "supplier: s1" in text and f"identifier: kr_brn:{BRN}" in text and challenge.nonce in text


def test_unproven_identifiers_are_those_not_proven_by_the_suppliers_own_organisation() -> None:
    identifiers = {"kr_brn": BRN, "lei": LEI, "gb_company_number": "01234567"}
    proven = IdentifierClaim("kr_brn", BRN, "o1", NOW)
    proven.prove("manual", "p1", NOW)
    elsewhere = IdentifierClaim("lei", LEI, "o2", NOW, proven_at=NOW, proof_method="x509", proof_id="p2")
    claims = {("kr_brn", BRN): proven, ("lei", LEI): elsewhere}
    assert unproven_identifiers("o1", identifiers, claims) == {("lei", LEI), ("gb_company_number", "01234567")}
    proven.hand_over("o3", NOW)  # a transfer: proven no more, for anyone
    assert not proven.proven and proven.org_id == "o3"


# -- the X.509 scheme --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


def _request(challenge: bytes, chain: str, signature: str) -> ProofRequest:
    return ProofRequest("kr_brn", BRN, challenge, {"certificate_chain": chain, "signature": signature})


@pytest.mark.parametrize("kind", ["rsa", "rsa-pss", "ec"])
def test_x509_accepts_a_signature_from_a_certificate_naming_the_identifier(ca: CertificateAuthority,
                                                                          kind: str) -> None:
    leaf = ca.issue(etsi_identifier("kr_brn", BRN), kind=kind)  # type: ignore[arg-type]
    result = X509ControlScheme([ca.certificate]).verify(_request(b"sign me", leaf.chain_pem, leaf.sign("sign me")),
                                                        datetime.now(UTC))
    assert result.accepted, result.reason
    assert result.evidence["organization_identifier"] == [f"NTRKR-{BRN}"]
    assert len(result.evidence["sha256_fingerprint"]) == 64


def test_x509_refusals_name_the_part_that_failed(ca: CertificateAuthority) -> None:
    now = datetime.now(UTC)
    scheme = X509ControlScheme([ca.certificate])
    good = ca.issue(f"NTRKR-{BRN}")

    def verdict(chain: str, signature: str, at: datetime = now) -> tuple[str | None, str]:
        result = scheme.verify(_request(b"text", chain, signature), at)
        assert not result.accepted
        return result.failed_field, result.reason

    assert verdict("", good.sign("text"))[0] == "certificate_chain"
    assert verdict("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", good.sign("text"))[0] == \
        "certificate_chain"
    assert verdict(good.chain_pem, "")[0] == "signature"
    assert verdict(good.chain_pem, "not base64!")[1] == "not valid base64"
    assert "does not verify" in verdict(good.chain_pem, good.sign("other text"))[1]
    assert "not valid now" in verdict(good.chain_pem, good.sign("text"), now + timedelta(days=400))[1]
    assert "trust anchor" in verdict(CertificateAuthority("stranger").issue(f"NTRKR-{BRN}").chain_pem,
                                     good.sign("text"))[1]
    assert "organizationIdentifier (NTRKR-2208162517)" in verdict(ca.issue("NTRKR-2208162517").chain_pem,
                                                                  good.sign("text"))[1]
    unsigned = ca.issue(f"NTRKR-{BRN}", signing=False)
    assert "key usage" in verdict(unsigned.chain_pem, unsigned.sign("text"))[1]
    no_anchor = X509ControlScheme([]).verify(_request(b"text", good.chain_pem, good.sign("text")), now)
    assert not no_anchor.accepted and "trusts no certificate authority" in no_anchor.reason


# -- handlers on the in-memory unit of work ---------------------------------------------------------------

SETTINGS = SupplierSettings(applicable_systems={"kr_brn": ["nts"], "lei": ["gleif"]},
                            control={"challenge_ttl_s": 300})


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def bus(uow: FakeUnitOfWork, ca: CertificateAuthority) -> MessageBus:
    schemes = ControlSchemes([X509ControlScheme([ca.certificate])])
    return MessageBus(lambda: uow, COMMAND_HANDLERS, {},
                      dependencies={"supplier_settings": SETTINGS, "control_schemes": schemes})


def org(uow: FakeUnitOfWork, kind: OrgKind) -> str:
    created = Organisation.new(f"{kind.value} org", kind)
    uow.organisations.add(created)
    return created.id


def events(uow: FakeUnitOfWork, message_type: str) -> list[dict[str, object]]:
    return [e.payload for e in uow.outbox if e.message_type == message_type]


def register(bus: MessageBus, org_id: str, **identifiers: str) -> str:
    registration = bus.handle(RegisterSupplier(org_id=org_id, identifiers=identifiers, consent=True,
                                               claim_token="t"))
    return str(registration.supplier.id)


def test_a_proof_over_a_challenge_proves_the_claim_and_is_recorded(bus: MessageBus, uow: FakeUnitOfWork,
                                                                   ca: CertificateAuthority) -> None:
    owner = org(uow, OrgKind.SUPPLIER)
    sid = register(bus, owner, kr_brn=BRN)
    challenge = bus.handle(RequestControlChallenge(supplier_id=sid, scheme="kr_brn", actor_org_id=owner))
    assert challenge.expires_at - challenge.issued_at == timedelta(seconds=300)
    leaf = ca.issue(f"NTRKR-{BRN}", kind="ec")
    proof = bus.handle(SubmitControlProof(supplier_id=sid, challenge_id=challenge.id, method="x509",
                                          evidence={"certificate_chain": leaf.chain_pem,
                                                    "signature": leaf.sign(challenge.text)},
                                          actor_org_id=owner))
    assert proof.accepted and proof.failed_field is None
    claim = uow.suppliers.identifier_claim("kr_brn", BRN)
    assert claim is not None and claim.proven and claim.proof_id == proof.id and claim.proof_method == "x509"
    assert [e["proof_id"] for e in events(uow, "ControlProven")] == [proof.id]
    assert len(events(uow, "ControlChallengeIssued")) == 1


def test_proof_commands_refuse_what_is_not_the_callers(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    owner, stranger = org(uow, OrgKind.SUPPLIER), org(uow, OrgKind.SUPPLIER)
    sid = register(bus, owner, kr_brn=BRN)
    with pytest.raises(NotFound):
        bus.handle(RequestControlChallenge(supplier_id=sid, scheme="kr_brn", actor_org_id=stranger))
    with pytest.raises(Rejected) as no_lei:
        bus.handle(RequestControlChallenge(supplier_id=sid, scheme="lei", actor_org_id=owner))
    assert no_lei.value.field == "scheme"
    challenge = bus.handle(RequestControlChallenge(supplier_id=sid, scheme="kr_brn", actor_org_id=owner))
    with pytest.raises(Rejected) as method:
        bus.handle(SubmitControlProof(supplier_id=sid, challenge_id=challenge.id, method="kisa", evidence={},
                                      actor_org_id=owner))
    assert method.value.field == "method" and "x509" in method.value.message
    with pytest.raises(Rejected) as unknown:
        bus.handle(SubmitControlProof(supplier_id=sid, challenge_id="nope", method="x509", evidence={},
                                      actor_org_id=owner))
    assert unknown.value.field == "challenge_id"


def test_only_the_operator_approves_releases_and_transfers(bus: MessageBus, uow: FakeUnitOfWork) -> None:
    owner, other, operator = org(uow, OrgKind.SUPPLIER), org(uow, OrgKind.SUPPLIER), org(uow, OrgKind.OPERATOR)
    sid = register(bus, owner, kr_brn=BRN, lei=LEI)
    for actor in (owner, other):
        with pytest.raises(Rejected):
            bus.handle(ApproveControlManually(supplier_id=sid, scheme="kr_brn", evidence="x", actor_org_id=actor))
        with pytest.raises(Rejected):
            bus.handle(ReleaseIdentifierClaim(scheme="kr_brn", identifier=BRN, reason="x", actor_org_id=actor))
    proof = bus.handle(ApproveControlManually(supplier_id=sid, scheme="lei", evidence="phoned the CFO",
                                              reference="T-1", actor_org_id=operator))
    assert proof.method == "manual" and proof.evidence["reference"] == "T-1"
    claim = uow.suppliers.identifier_claim("lei", LEI)
    assert claim is not None and claim.proven

    bus.handle(TransferIdentifierClaim(scheme="lei", identifier=LEI.lower(), to_org_id=other, reason="dispute",
                                       actor_org_id=operator))
    assert (claim.org_id, claim.proven) == (other, False)
    with pytest.raises(Rejected):  # already there
        bus.handle(TransferIdentifierClaim(scheme="lei", identifier=LEI, to_org_id=other, reason="x",
                                           actor_org_id=operator))
    with pytest.raises(NotFound):  # only to a supplier organisation
        bus.handle(TransferIdentifierClaim(scheme="lei", identifier=LEI, to_org_id=operator, reason="x",
                                           actor_org_id=operator))
    released = bus.handle(ReleaseIdentifierClaim(scheme="kr_brn", identifier="115-77-50731", reason="lapsed",
                                                 actor_org_id=operator))
    assert released.org_id == owner and uow.suppliers.identifier_claim("kr_brn", BRN) is None
    assert [e["reason"] for e in events(uow, "IdentifierClaimReleased")] == ["lapsed"]
    with pytest.raises(NotFound):
        bus.handle(ReleaseIdentifierClaim(scheme="kr_brn", identifier=BRN, reason="x", actor_org_id=operator))
    # the old holder may take a released identifier back by registering again; not one moved elsewhere
    register(bus, owner, kr_brn=BRN)
    retaken = uow.suppliers.identifier_claim("kr_brn", BRN)
    assert retaken is not None and retaken.org_id == owner and not retaken.proven
    with pytest.raises(IdentifierTaken) as taken:
        register(bus, owner, kr_brn=BRN, lei=LEI)
    assert taken.value.field == "identifiers.lei"


# -- eligibility ---------------------------------------------------------------------------------------------


def test_a_requirement_resting_on_unproven_credentials_is_unknown_with_the_reason() -> None:
    requirements = parse_requirements([{"kind": "tax_status", "status": "active"}])
    unproven = evaluate(requirements, [], on=NOW, now=NOW, unproven_types={"tax_status"})
    [verdict] = unproven.requirements
    assert unproven.verdict.value == "unknown" and verdict.reason.startswith(CONTROL_NOT_PROVEN)
    tax = Credential(type="tax_status", subject=BRN, status="active", attributes={}, valid_from=NOW,
                     valid_until=NOW + timedelta(days=7), source="nts",
                     evidence=Evidence(system="nts", identifier=BRN, fetched_at=NOW, response_sha256=None,
                                       raw_sha256=None, pointer="/"))
    assert evaluate(requirements, [tax], on=NOW, now=NOW).verdict.value == "met"
    missing = evaluate(requirements, [], on=NOW, now=NOW, unproven_types={"lei_registration"})
    assert CONTROL_NOT_PROVEN not in missing.requirements[0].reason  # another type's control is not this one's


def test_hostile_certificate_text_is_kept_printable_and_short(ca: CertificateAuthority) -> None:
    """A subject the submitter chose must not carry a NUL into the audit trail (PostgreSQL refuses it)."""
    hostile = ca.issue("NTRKR-\x00" + "9" * 500)
    result = X509ControlScheme([ca.certificate]).verify(_request(b"t", hostile.chain_pem, hostile.sign("t")),
                                                        datetime.now(UTC))
    assert not result.accepted
    [shown] = result.evidence["organization_identifier"]
    assert "\x00" not in shown and len(shown) <= 100 and "\x00" not in result.reason
