"""A new REST source and a new SOAP source added from configuration and mapping files alone.

Everything system-specific below is YAML written to a temporary folder — the deployment's config file
(``G2BHUB_CONFIG``) with a ``connectors:`` entry per source, and one mapping file per source — and the
generic machinery (the settings loader, the connector registry and the mapping engine) does the rest
against the sandbox twins served under new names. No Python is written for either source.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.errors import NotFoundUpstream
from connectors.registry import build_from_settings
from connectors.sandbox.server import SandboxServer
from hub.config import load_settings
from hub.suppliers.wiring import check_sources
from mappings.engine import load_mapping
from tests.support.connectors import InMemoryCallRecorder

SYSTEMS = """
connectors:
  lei_registry_b:                     # a REST JSON:API registry
    kind: rest
    endpoint: {base}/gleif
    path: /api/v1/lei-records/{{identifier}}
    accept: application/vnd.api+json
    identifier_pattern: '^[A-Z0-9]{{20}}$'
    timeouts: {{connect_s: 2, read_s: 5}}
    retry: {{max_attempts: 2}}
    mapping: {folder}/lei_registry_b.yaml
  cert_registry_b:                    # a SOAP registry, WSDL fetched from the service itself
    kind: soap
    wsdl: {base}/national-certs/NationalCertificatesService?wsdl
    endpoint: {base}/national-certs/NationalCertificatesService
    operation: getCertificates
    identifier_pattern: '^[0-9]{{10}}$'
    arguments: {{holderId: "{{identifier}}"}}
    fault_codes: {{HOLDER_NOT_FOUND: not_found, INVALID_INPUT: permanent, SERVICE_UNAVAILABLE: transient}}
    mapping: {folder}/cert_registry_b.yaml
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
    (tmp_path / "hub.yaml").write_text(SYSTEMS.format(base=sandbox.base_url, folder=tmp_path))
    (tmp_path / "lei_registry_b.yaml").write_text(LEI_MAPPING)
    (tmp_path / "cert_registry_b.yaml").write_text(CERT_MAPPING)
    return tmp_path


def test_new_rest_and_soap_sources_from_yaml_alone(
    config_dir: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("G2BHUB_CONFIG", str(config_dir / "hub.yaml"))
    settings = load_settings()
    check_sources(settings.connectors)  # the start-up check loads the new mapping files too
    registry = build_from_settings(settings.connectors, recorder=InMemoryCallRecorder(), sleep=lambda _s: None)
    assert {"lei_registry_b", "cert_registry_b"} < set(registry)
    mappings = {name: load_mapping(registry.mapping_path(name) or "") for name in ("lei_registry_b", "cert_registry_b")}

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
