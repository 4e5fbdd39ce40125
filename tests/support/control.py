"""Proof of control for tests: a throw-away certificate authority issuing leaf certificates whose subject
``organizationIdentifier`` names an identifier (ETSI EN 319 412-1), signatures over hub challenges, and
the two legitimate ways to prove control through the API (an X.509 proof, the operator's approval).

Everything is generated with ``cryptography`` at test time; nothing is read from disk but what a test
writes (the CA's PEM, configured as a trust anchor)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from tests.support.api import API, bearer

__all__ = ["CertificateAuthority", "Leaf", "approve_control", "etsi_identifier", "prove_control",
           "trust_settings"]

KeyKind = Literal["rsa", "rsa-pss", "ec"]


def etsi_identifier(scheme: str, value: str) -> str:
    """The ``organizationIdentifier`` that names a (normalised) identifier of the hub's schemes."""
    if scheme == "kr_brn":
        return f"NTRKR-{value}"
    if scheme == "gb_company_number":
        return f"NTRGB-{value}"
    if scheme == "lei":
        return f"LEIXG-{value}"
    if scheme == "eu_vat":
        return f"VAT{value[:2]}-{value[2:]}"
    raise ValueError(f"no ETSI form for {scheme}")


def _key_usage(*, signing: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=signing, content_commitment=signing, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


@dataclass
class Leaf:
    certificate: x509.Certificate
    key: Any
    kind: KeyKind
    chain: list[x509.Certificate]  # the issuers to send along (intermediates), not the anchor

    @property
    def chain_pem(self) -> str:
        certs = [self.certificate, *self.chain]
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)

    def sign(self, text: str) -> str:
        data = text.encode()
        if self.kind == "ec":
            signature = self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        elif self.kind == "rsa-pss":
            signature = self.key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                        salt_length=padding.PSS.DIGEST_LENGTH), hashes.SHA256())
        else:
            signature = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()


class CertificateAuthority:
    """A root CA (EC P-256), optionally with an intermediate that issues the leaves."""

    def __init__(self, name: str = "g2b-hub test trust anchor", *, intermediate: bool = False) -> None:
        now = datetime.now(UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                               x509.NameAttribute(NameOID.COUNTRY_NAME, "KR")])
        self.certificate = self._ca(self.name, self.key, self.name, self.key, now)
        self.issuer_key, self.issuer_name, self.issuer = self.key, self.name, self.certificate
        self.intermediates: list[x509.Certificate] = []
        if intermediate:
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} issuing CA")])
            cert = self._ca(name, key, self.name, self.key, now)
            self.issuer_key, self.issuer_name, self.issuer = key, name, cert
            self.intermediates = [cert]

    @staticmethod
    def _ca(subject: x509.Name, key: Any, issuer: x509.Name, issuer_key: Any, now: datetime) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(signing=False, ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if issuer != subject:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: Path) -> Path:
        path = directory / "trust-anchor.pem"
        path.write_bytes(self.pem)
        return path

    def issue(
        self,
        organization_identifier: str | None,
        *,
        kind: KeyKind = "rsa",
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        signing: bool = True,
    ) -> Leaf:
        now = datetime.now(UTC)
        key: Any = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else \
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, "Supplier signing certificate")]
        if organization_identifier is not None:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, organization_identifier))
        certificate = (
            x509.CertificateBuilder().subject_name(x509.Name(attributes)).issuer_name(self.issuer_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(hours=1))
            .not_valid_after(not_after or now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=signing, ca=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issuer_key.public_key()),
                           critical=False)
            .sign(self.issuer_key, hashes.SHA256())
        )
        return Leaf(certificate, key, kind, list(self.intermediates))


def trust_settings(anchor: Path, **extra: Any) -> dict[str, Any]:
    """The ``suppliers.control`` override that trusts ``anchor``."""
    return {"control": {"trust_anchors": [str(anchor)], **extra}}


def challenge(http: TestClient, key: str, supplier_id: str, scheme: str) -> dict[str, Any]:
    response = http.post(f"{API}/suppliers/{supplier_id}/control/challenges", json={"scheme": scheme},
                         headers=bearer(key))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def submit(http: TestClient, key: str, supplier_id: str, challenge_id: str, chain: str, signature: str) -> Any:
    return http.post(f"{API}/suppliers/{supplier_id}/control/proofs",
                     json={"challenge_id": challenge_id, "method": "x509", "certificate_chain": chain,
                           "signature": signature}, headers=bearer(key))


def prove_control(http: TestClient, key: str, supplier_id: str, scheme: str, leaf: Leaf) -> dict[str, Any]:
    """The owner proves control of its ``scheme`` identifier with ``leaf``'s key; the accepted proof."""
    issued = challenge(http, key, supplier_id, scheme)
    response = submit(http, key, supplier_id, issued["id"], leaf.chain_pem, leaf.sign(issued["text"]))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def approve_control(http: TestClient, operator_key: str, supplier_id: str, schemes: list[str] | None = None,
                    evidence: str = "registry extract checked against the company seal") -> None:
    """The operator approves control of each given (default: every) identifier of the supplier by hand."""
    if schemes is None:
        read = http.get(f"{API}/suppliers/{supplier_id}/control", headers=bearer(operator_key))
        assert read.status_code == 200, read.text
        schemes = [state["scheme"] for state in read.json()["identifiers"]]
    for scheme in schemes:
        response = http.post(f"{API}/suppliers/{supplier_id}/control/approvals",
                             json={"scheme": scheme, "evidence": evidence, "approved_by": "test operator"},
                             headers=bearer(operator_key))
        assert response.status_code == 201, response.text
