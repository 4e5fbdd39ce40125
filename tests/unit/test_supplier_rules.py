"""The register-once rules without I/O: identifier checks, applicable systems, refresh timing and
change detection. Which slots are due is the repository's query, tested against the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.sandbox.identifiers import corrupt_check_digit
from hub.config import Settings
from hub.spine.errors import Rejected
from hub.suppliers.config import SupplierSettings
from hub.suppliers.identifiers import validate_identifiers
from hub.suppliers.model import (
    Snapshot,
    identity_key,
    next_refresh_at,
    snapshot_changed,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BRN = "1157750731"


def test_valid_identifiers_are_normalised() -> None:
    clean = validate_identifiers({"kr_brn": "115-77-50731", "eu_vat": "gr 094259216", "lei": "213800VN0A3M6L5X2X86",
                                  "gb_company_number": "sc227504", "iaf_ce_id": " abc-1 "})
    assert clean == {"kr_brn": BRN, "eu_vat": "EL094259216", "lei": "213800VN0A3M6L5X2X86",
                     "gb_company_number": "SC227504", "iaf_ce_id": "abc-1"}


@pytest.mark.parametrize(("scheme", "value"), [
    ("kr_brn", corrupt_check_digit(BRN)),  # stdnum accepts it; the NTS check digit does not
    ("kr_brn", "12345"),
    ("eu_vat", "DE12345678"),
    ("eu_vat", "XX123456789"),
    ("lei", "213800VN0A3M6L5X2X87"),
    ("gb_company_number", "1234567"),
    ("iaf_ce_id", "a b"),
])
def test_bad_identifiers_are_rejected_by_name(scheme: str, value: str) -> None:
    with pytest.raises(Rejected) as info:
        validate_identifiers({scheme: value})
    assert info.value.field == f"identifiers.{scheme}"


def test_at_least_one_identifier_is_needed() -> None:
    with pytest.raises(Rejected) as info:
        validate_identifiers({"kr_brn": None})
    assert info.value.field == "identifiers"


def test_applicable_systems_come_from_configuration() -> None:
    config = Settings().suppliers
    assert {s for s, _, _ in config.systems_for({"kr_brn": BRN})} == {"nts", "national_certs"}
    assert [s for s, _, _ in config.systems_for({"lei": "x", "iaf_ce_id": "y"})] == ["gleif", "iaf"]
    custom = SupplierSettings(applicable_systems={"lei": ["gleif", "other_lei_registry"]})
    assert [s for s, _, _ in custom.systems_for({"kr_brn": BRN, "lei": "x"})] == ["gleif", "other_lei_registry"]
    with pytest.raises(ValueError, match="unknown identifier schemes"):
        SupplierSettings(applicable_systems={"duns": ["dnb"]})


def test_identity_key_ignores_order() -> None:
    assert identity_key({"a": "1", "b": "2"}) == identity_key({"b": "2", "a": "1"})
    assert identity_key({"a": "1"}) != identity_key({"a": "2"})


def refresh(validities: list[tuple[datetime | None, datetime | None]]) -> datetime:
    return next_refresh_at(NOW, validities, margin_s=2 * 86400, margin_ratio=0.25, default_s=7 * 86400)


def test_refresh_ahead_of_the_earliest_expiry() -> None:
    # A seven-day tax status: margin max(2 days, 25 % of 7 days) = 2 days → refresh after 5 days.
    assert refresh([(NOW, NOW + timedelta(days=7))]) == NOW + timedelta(days=5)
    # A one-year certificate with 65 days left is inside its 25 % margin: half the time left, but never
    # later than the default week.
    assert refresh([(NOW - timedelta(days=300), NOW + timedelta(days=65))]) == NOW + timedelta(days=7)
    assert refresh([(NOW - timedelta(days=300), NOW + timedelta(days=6))]) == NOW + timedelta(days=3)
    # No stated validity, or only expired ones: the default interval.
    assert refresh([(None, None), (NOW - timedelta(days=9), NOW - timedelta(days=1))]) == NOW + timedelta(days=7)
    # About to expire: not on every run; after half the time left (capped at the minimum interval).
    assert refresh([(NOW - timedelta(days=30), NOW + timedelta(minutes=10))]) == NOW + timedelta(minutes=5)
    assert refresh([(NOW - timedelta(days=30), NOW + timedelta(days=1))]) == NOW + timedelta(hours=12)


def snap(status: str, days_until: float | None, fetched_days: float = 0, derived: bool = False) -> Snapshot:
    at = NOW + timedelta(days=fetched_days)
    until = None if days_until is None else (at if derived else NOW) + timedelta(days=days_until)
    return Snapshot(status=status, valid_from=at if derived else NOW, valid_until=until, fetched_at=at)


def test_change_detection_status_and_stated_validity() -> None:
    assert snapshot_changed(snap("active", 7), snap("closed", 7))
    assert not snapshot_changed(snap("valid", 365), snap("valid", 365, fetched_days=3))
    assert snapshot_changed(snap("valid", 365), snap("valid", 730, fetched_days=3))  # renewed certificate
    assert snapshot_changed(snap("valid", 365), snap("valid", None, fetched_days=3))
    # A tax status "good for 7 days from the fetch" moves with every fetch: not a change.
    assert not snapshot_changed(snap("active", 7, derived=True), snap("active", 7, fetched_days=5, derived=True))
    assert snap("active", 7).as_dict()["status"] == "active"
