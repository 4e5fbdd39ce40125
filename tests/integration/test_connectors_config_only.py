"""A new REST source and a new SOAP source added from configuration and mapping files alone.

Everything system-specific below is YAML written to a temporary folder — a systems file and one
mapping file per source — and the generic machinery (build_connectors + the mapping engine) does the
rest against the sandbox twins served under new names. No Python is written for either source.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.config import load_connectors_config
from connectors.errors import NotFoundUpstream
from connectors.registry import build_connectors
from connectors.sandbox.server import SandboxServer
from mappings.engine import load_mapping
from tests.support.connectors import InMemoryCallRecorder

SYSTEMS = """
systems:
  lei_registry_b:                     # a REST JSON:API registry
    kind: rest
    endpoint: {base}/gleif
    path: /api/v1/lei-records/{{identifier}}
    accept: application/vnd.api+json
    identifier_pattern: '^[A-Z0-9]{{20}}$'
    timeouts: {{connect_s: 2, read_s: 5}}
    retry: {{max_attempts: 2}}
    mapping: lei_registry_b.yaml
  cert_registry_b:                    # a SOAP registry, WSDL fetched from the service itself
    kind: soap
    wsdl: {base}/national-certs/NationalCertificatesService?wsdl
    endpoint: {base}/national-certs/NationalCertificatesService
    operation: getCertificates
    identifier_pattern: '^[0-9]{{10}}$'
    arguments: {{holderId: "{{identifier}}"}}
    fault_codes: {{HOLDER_NOT_FOUND: not_found, INVALID_INPUT: permanent, SERVICE_UNAVAILABLE: transient}}
    mapping: cert_registry_b.yaml
"""

LEI_MAPPING = """
source: lei_registry_b
format: json
credentials:
  - type: x_legal_entity
    records: data
    subject: {path: id}
    status: {path: attributes.entity.status, map: {ACTIVE: active, INACTIVE: inactive}, default: unknown}
    attributes:
      name: attributes.entity.legalName.name
      country: {path: attributes.entity.legalAddress.country, transform: upper}
    validity: {from: fetched_at, ttl_days: 14}
"""

CERT_MAPPING = """
source: cert_registry_b
format: xml
namespaces: {s: "http://schemas.xmlsoap.org/soap/envelope/", c: "urn:g2bhub:national-certificates:v1"}
credentials:
  - type: national_certificate
    records: "//c:certificate[c:type = 'SME' or c:type = 'WOMEN_OWNED']"
    status: {path: "c:status", map: {valid: valid}, unmapped: keep}
    attributes:
      kind: "c:type"
      number: "c:number"
    validity:
      from: {path: "c:validFrom", transform: date}
      until: {path: "c:validUntil", transform: [empty_as_null, date]}
"""


@pytest.fixture
def config_dir(tmp_path: Path, sandbox: SandboxServer) -> Path:
    (tmp_path / "systems.yaml").write_text(SYSTEMS.format(base=sandbox.base_url))
    (tmp_path / "lei_registry_b.yaml").write_text(LEI_MAPPING)
    (tmp_path / "cert_registry_b.yaml").write_text(CERT_MAPPING)
    return tmp_path


def test_new_rest_and_soap_sources_from_yaml_alone(config_dir: Path, sandbox: SandboxServer) -> None:
    registry = build_connectors(
        load_connectors_config(config_dir / "systems.yaml"), recorder=InMemoryCallRecorder(), sleep=lambda _s: None
    )
    assert set(registry) == {"lei_registry_b", "cert_registry_b"}
    mappings = {name: load_mapping(registry.mapping_path(name) or "") for name in registry}

    lei_supplier = next(s for s in sandbox.dataset.suppliers if "lei" in s.identifiers)
    lei = lei_supplier.identifiers["lei"]
    result = registry["lei_registry_b"].fetch(lei, purpose="registration", requested_by="org-1")
    [entity] = mappings["lei_registry_b"].apply(result)
    record = sandbox.dataset.lei(lei)
    assert record is not None
    assert (entity.type, entity.subject, entity.source) == ("x_legal_entity", lei, "lei_registry_b")
    assert entity.status == record.entity_status.lower() and entity.attributes["name"] == record.legal_name

    holder = next(
        b
        for s in sandbox.dataset.suppliers
        if (b := s.identifiers.get("kr_brn"))
        and any(c.type in ("SME", "WOMEN_OWNED") for c in sandbox.dataset.national_certificates_of(b))
    )
    result = registry["cert_registry_b"].fetch(holder, purpose="registration", requested_by="org-1")
    creds = mappings["cert_registry_b"].apply(result)
    expected = {c.number for c in sandbox.dataset.national_certificates_of(holder) if c.type in ("SME", "WOMEN_OWNED")}
    assert {c.attributes["number"] for c in creds} == expected
    assert all(c.type == "national_certificate" and c.valid_from is not None for c in creds)

    with pytest.raises(NotFoundUpstream):
        registry["cert_registry_b"].fetch("1010101010", purpose="registration", requested_by="org-1")
    registry.close()
