"""The sandbox population: reproducible, checksum-valid, covering every state the hub must handle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

import pytest
from pydantic import ValidationError
from stdnum import lei as stdnum_lei
from stdnum.eu import vat as eu_vat

from connectors.sandbox.dataset import SandboxDataset
from connectors.sandbox.faults import FaultInjector, FaultSettings
from connectors.sandbox.generator import generate
from connectors.sandbox.identifiers import brn_check_digit, is_valid_brn

AS_OF = date(2026, 11, 25)


@pytest.fixture(scope="module")
def dataset() -> SandboxDataset:
    return SandboxDataset(seed=42, size=300, as_of=AS_OF)


def test_same_seed_gives_the_same_population() -> None:
    first, second = generate(7, 300, AS_OF), generate(7, 300, AS_OF)
    assert first.suppliers == second.suppliers
    assert first.nts == second.nts and first.iaf == second.iaf and first.gleif == second.gleif


def test_another_seed_gives_another_population() -> None:
    assert generate(7, 300, AS_OF).suppliers != generate(8, 300, AS_OF).suppliers


def test_brn_check_digit_matches_a_published_number() -> None:
    # 220-81-62517 is a well-known registered corporation number.
    assert brn_check_digit("220816251") == 7
    assert is_valid_brn("220-81-62517")
    assert not is_valid_brn("2208162518")


def test_every_generated_identifier_passes_its_checksum(dataset: SandboxDataset) -> None:
    seen: set[str] = set()
    for supplier in dataset.suppliers:
        for scheme, value in supplier.identifiers.items():
            assert value not in seen, f"{value} issued twice"
            seen.add(value)
            if scheme == "kr_brn":
                assert is_valid_brn(value), value
            elif scheme == "eu_vat":
                assert value[:2] in {"DE", "FR", "NL", "EL"}
                assert eu_vat.is_valid(value), value
            elif scheme == "lei":
                assert stdnum_lei.is_valid(value), value


def test_deliberately_invalid_identifiers_are_labelled_and_fail(dataset: SandboxDataset) -> None:
    invalid = [i for i in dataset.labelled_identifiers if i.label == "invalid-checksum"]
    assert {i.scheme for i in invalid} == {"kr_brn", "eu_vat", "lei"}
    checks = {"kr_brn": is_valid_brn, "eu_vat": eu_vat.is_valid, "lei": stdnum_lei.is_valid}
    for item in invalid:
        assert not checks[item.scheme](item.value), item


def test_unknown_identifiers_are_valid_but_unknown_at_the_source(dataset: SandboxDataset) -> None:
    unknown = [i for i in dataset.labelled_identifiers if i.label == "unknown"]
    assert {i.scheme for i in unknown} == {"kr_brn", "eu_vat", "lei", "gb_company_number"}
    for item in unknown:
        if item.scheme == "kr_brn":
            assert is_valid_brn(item.value) and dataset.nts(item.value) is None
        elif item.scheme == "lei":
            assert dataset.lei(item.value) is None
        elif item.scheme == "gb_company_number":
            assert dataset.company(item.value) is None
        else:
            assert dataset.vat(item.value[:2], item.value[2:]) is None


@pytest.mark.parametrize("seed", [1, 42, 20261125])
def test_every_state_appears(seed: int) -> None:
    data = SandboxDataset(seed=seed, size=300, as_of=AS_OF)
    tags = {tag.split(":")[0] + ":" + tag.split(":")[-1] for s in data.suppliers for tag in s.scenario}
    expected = {
        "nts:active", "nts:suspended", "nts:closed", "nts:unregistered", "vies:valid", "vies:invalid",
        "gleif:issued", "gleif:lapsed", "gleif:retired", "gleif:unknown", "companies_house:active",
        "companies_house:dissolved", "companies_house:liquidation", "companies_house:unknown",
        "iaf:active", "iaf:suspended", "iaf:withdrawn", "iaf:expired",
        "national:valid", "national:expired", "national:revoked", "national:suspended",
    }
    assert expected <= tags
    assert len({s.country for s in data.suppliers}) == 6


def test_closed_businesses_carry_a_closure_date_and_expired_certificates_are_past(
    dataset: SandboxDataset,
) -> None:
    snap = dataset.snapshot()
    assert all(r.end_dt for r in snap.nts.values() if r.b_stt_cd == "03")
    assert all(not r.end_dt for r in snap.nts.values() if r.b_stt_cd != "03")
    assert all(c.expiry_date < AS_OF for c in snap.iaf.values() if c.status == "expired")
    assert all(c.expiry_date > AS_OF for c in snap.iaf.values() if c.status == "active")
    assert all(c.valid_until < AS_OF for c in snap.national_certs.values() if c.status == "expired")


def test_a_supplier_is_found_by_any_of_its_identifiers(dataset: SandboxDataset) -> None:
    supplier = next(s for s in dataset.suppliers if {"kr_brn", "lei", "iaf_ce_id"} <= s.identifiers.keys())
    brn = supplier.identifiers["kr_brn"]
    for identifier in [*supplier.identifiers.values(), f"{brn[:3]}-{brn[3:5]}-{brn[5:]}", supplier.supplier_id]:
        assert dataset.find_supplier(identifier) == supplier
    cert = dataset.iaf_certificates_of(supplier.identifiers["iaf_ce_id"])[0]
    assert dataset.find_supplier(cert.cert_id) == supplier
    assert dataset.find_supplier("0000000000") is None


def test_runtime_changes_are_validated_and_reset_restores_the_seed() -> None:
    data = SandboxDataset(seed=3, size=100, as_of=AS_OF)
    brn = data.with_scenario("nts:active")[0].identifiers["kr_brn"]
    data.update_record("nts", brn, {"b_stt_cd": "03", "end_dt": "20261125"})
    assert data.nts(brn) is not None and data.nts(brn).b_stt_cd == "03"  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        data.update_record("nts", brn, {"b_stt_cd": "09"})
    with pytest.raises(KeyError):
        data.update_record("nts", "1010100000", {"b_stt_cd": "03"})
    assert data.delete_record("nts", brn) and data.nts(brn) is None
    data.reset()
    assert data.nts(brn) is not None and data.nts(brn).b_stt_cd == "01"  # type: ignore[union-attr]


def test_fault_decisions_repeat_for_the_same_seed() -> None:
    settings = FaultSettings(error_rate=0.3, timeout_rate=0.1, malformed_rate=0.2, seed=5,
                             latency_min_ms=10, latency_max_ms=300, latency_distribution="lognormal")
    first = [FaultInjector(settings, 0).decide() for _ in range(1)]
    one, two = FaultInjector(settings, 0), FaultInjector(settings, 0)
    runs = [one.decide() for _ in range(200)], [two.decide() for _ in range(200)]
    assert runs[0] == runs[1] and first[0] == runs[0][0]
    kinds = {d.kind for d in runs[0]}
    assert kinds == {"none", "error", "timeout", "malformed"}
    assert all(0.010 <= d.latency_s <= 0.300 for d in runs[0])


def test_outage_and_reset_of_fault_settings() -> None:
    injector = FaultInjector(FaultSettings(), 1)
    assert injector.decide().kind == "none"
    injector.update({"outage": True})
    assert injector.decide().kind == "outage"
    with pytest.raises(ValidationError):
        injector.update({"error_rate": 2})
    injector.reset()
    assert injector.decide().kind == "none"


def test_sandbox_config_reads_the_environment() -> None:
    env = {**os.environ, "G2BHUB_SANDBOX__VIES__ERROR_RATE": "0.2", "G2BHUB_SANDBOX__NTS__OUTAGE": "true",
           "G2BHUB_SANDBOX__SEED": "7", "G2BHUB_SANDBOX__IAF__LATENCY_MAX_MS": "300"}
    code = (
        "import json; from connectors.sandbox.config import SandboxConfig as C; c = C();"
        "print(json.dumps([c.seed, c.vies.error_rate, c.nts.outage, c.iaf.latency_max_ms, c.api_key('nts')]))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [7, 0.2, True, 300.0, "sandbox-nts-key"]
