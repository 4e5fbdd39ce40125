"""A supplier's legal name is what its registries say, in a stated order; the declared name is the
fallback, and a credential the reader may not see names nobody."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.suppliers.model import Credential, Supplier
from hub.suppliers.queries import legal_name

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SUPPLIER = Supplier(
    id="s1",
    org_id="o1",
    identifiers={"lei": "529900T8BM49AURSDO55"},
    identity_key="k",
    consent_given_at=NOW,
    consent_text_version="1",
    legal_name="Hanbit (declared)",
)


def held(system: str, type_: str, **attributes: Any) -> Credential:
    return Credential(
        id=f"c-{system}",
        supplier_id="s1",
        fetch_id=f"f-{system}",
        system=system,
        type=type_,
        subject="x",
        record_key="",
        status="active",
        attributes=attributes,
        valid_from=None,
        valid_until=None,
        fetched_at=NOW,
    )


GLEIF = held("gleif", "lei_registration", legal_name="HANBIT ENGINEERING CO., LTD.")
HOUSE = held("companies_house", "company_registration", company_name="HANBIT UK LIMITED")
VIES = held("vies", "vat_registration", name="Hanbit GmbH")
NTS = held("nts", "tax_status", status_name="계속사업자")


def test_gleif_then_companies_house_then_vies_then_the_declared_name() -> None:
    assert legal_name(SUPPLIER, [NTS, VIES, HOUSE, GLEIF]) == "HANBIT ENGINEERING CO., LTD."
    assert legal_name(SUPPLIER, [NTS, VIES, HOUSE]) == "HANBIT UK LIMITED"
    assert legal_name(SUPPLIER, [NTS, VIES]) == "Hanbit GmbH"
    assert legal_name(SUPPLIER, [NTS]) == "Hanbit (declared)"


def test_an_empty_name_or_a_withheld_credential_names_nobody() -> None:
    undisclosed = held("vies", "vat_registration", name=None)
    blank = held("gleif", "lei_registration", legal_name="  ")
    assert legal_name(SUPPLIER, [undisclosed, blank]) == "Hanbit (declared)"
    assert legal_name(SUPPLIER, [GLEIF, HOUSE], hidden={GLEIF.id}) == "HANBIT UK LIMITED"
