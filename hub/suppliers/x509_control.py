"""The X.509 control scheme: a signature over the hub's challenge, made with the key of a certificate
whose subject ``organizationIdentifier`` names the identifier, issued under a configured trust anchor.

An adapter (it uses ``cryptography``), built by bootstrap from ``suppliers.control`` and handed to the
handlers as one of the ``control_schemes``. Path validation is ``cryptography.x509.verification``
(chain to a trust anchor, validity at the given time, CA constraints on every issuer under the Web PKI
profile for CAs); the leaf's own rules are checked here: key usage digitalSignature or
nonRepudiation, the organizationIdentifier, and the signature (RSA PKCS#1 v1.5 or PSS, ECDSA, with
SHA-256; Ed25519)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

from hub.spine.text import xml_safe
from hub.suppliers.control import ProofRequest, ProofResult, names_identifier

__all__ = ["X509ControlScheme", "load_trust_anchors"]

_SUFFIXES = (".pem", ".crt", ".cer")
MAX_CHAIN_PEM = 64 * 1024
MAX_SIGNATURE = 4096


def load_trust_anchors(paths: Iterable[Path]) -> list[x509.Certificate]:
    """Every certificate in the given PEM files and in the .pem/.crt/.cer files of the given directories.
    A path that does not exist or holds no certificate is a configuration error (raised at start-up)."""
    anchors: list[x509.Certificate] = []
    for path in paths:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES) if path.is_dir() else [path]
        for file in files:
            try:
                found = x509.load_pem_x509_certificates(file.read_bytes())
            except (OSError, ValueError) as exc:
                raise ValueError(f"suppliers.control.trust_anchors: cannot read certificates from {file}: {exc}") \
                    from exc
            anchors.extend(found)
    return anchors


def _shown(value: str, limit: int = 300) -> str:
    """Certificate text is the submitter's: kept printable and short before it reaches a record or a log."""
    return xml_safe(value)[:limit]


def _evidence(leaf: x509.Certificate, identifiers: Sequence[str]) -> dict[str, Any]:
    return {
        "subject": _shown(leaf.subject.rfc4514_string()),
        "issuer": _shown(leaf.issuer.rfc4514_string()),
        "serial_number": format(leaf.serial_number, "x"),
        "sha256_fingerprint": leaf.fingerprint(hashes.SHA256()).hex(),
        "not_valid_before": leaf.not_valid_before_utc.isoformat(),
        "not_valid_after": leaf.not_valid_after_utc.isoformat(),
        "organization_identifier": [_shown(value, 100) for value in identifiers[:8]],
    }


def _signature_valid(key: Any, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                key.verify(signature, data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                        salt_length=padding.PSS.AUTO), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


class X509ControlScheme:
    name = "x509"
    schemes = frozenset({"kr_brn", "eu_vat", "lei", "gb_company_number"})

    def __init__(self, anchors: Sequence[x509.Certificate], max_chain_depth: int = 4) -> None:
        self._store = Store(list(anchors)) if anchors else None
        self._max_chain_depth = max_chain_depth

    @classmethod
    def from_paths(cls, paths: Iterable[Path], max_chain_depth: int = 4) -> X509ControlScheme:
        return cls(load_trust_anchors(paths), max_chain_depth)

    def verify(self, request: ProofRequest, now: datetime) -> ProofResult:
        chain_pem = request.evidence.get("certificate_chain")
        signature_text = request.evidence.get("signature")
        if not isinstance(chain_pem, str) or not chain_pem.strip() or len(chain_pem) > MAX_CHAIN_PEM:
            return ProofResult.refused("certificate_chain", "give the certificate chain as PEM, the signer's first")
        if not isinstance(signature_text, str) or not signature_text or len(signature_text) > MAX_SIGNATURE:
            return ProofResult.refused("signature", "give the signature over the challenge text, base64-encoded")
        try:
            certificates = x509.load_pem_x509_certificates(chain_pem.encode())
        except ValueError:
            return ProofResult.refused("certificate_chain", "not a PEM certificate chain")
        if len(certificates) > self._max_chain_depth + 1:
            return ProofResult.refused("certificate_chain", "the chain is longer than this hub accepts")
        leaf, intermediates = certificates[0], certificates[1:]
        named = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)]
        evidence = _evidence(leaf, named)

        def refused(field: str, reason: str) -> ProofResult:
            return ProofResult(False, reason, field, evidence)

        if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
            return refused("certificate_chain", f"the certificate is not valid now (valid from "
                           f"{evidence['not_valid_before']} until {evidence['not_valid_after']})")
        if self._store is None:
            return refused("certificate_chain", "this hub trusts no certificate authority for proof of control")
        verifier = (
            PolicyBuilder().store(self._store).time(now).max_chain_depth(self._max_chain_depth)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError:
            return refused("certificate_chain", "the certificate does not chain to a trust anchor of this hub")
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is None or not (usage.digital_signature or usage.content_commitment):
            return refused("certificate_chain", "the certificate's key usage allows neither digitalSignature nor "
                           "nonRepudiation")
        if not names_identifier(named, request.scheme, request.identifier):
            shown = ", ".join(evidence["organization_identifier"]) or "none"
            return refused("certificate_chain", f"the certificate's organizationIdentifier ({shown}) does not "
                           f"name {request.scheme} {request.identifier}")
        try:
            signature = base64.b64decode(signature_text, validate=True)
        except (binascii.Error, ValueError):
            return refused("signature", "not valid base64")
        if not _signature_valid(leaf.public_key(), signature, request.challenge):
            return refused("signature", "the signature does not verify over the challenge text with the "
                           "certificate's key")
        return ProofResult(True, "signature over the challenge verified with a certificate naming the identifier",
                           None, evidence)
