"""The in-memory registry every twin reads and that tests change at runtime.

One ``SandboxDataset`` is shared by all twins of a sandbox so a change made through any twin's
``/_control`` endpoint, or directly from Python, is what the next fetch sees: that is how hub tests
simulate "status changed at the source" (a closure at NTS, a certificate withdrawn at IAF).
Access is guarded by a lock because tests mutate from their own thread while uvicorn serves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any

from pydantic import BaseModel

from connectors.sandbox.generator import DEFAULT_SEED, DatasetSnapshot, generate
from connectors.sandbox.records import (
    CompanyRecord,
    IafCertificate,
    LabelledIdentifier,
    LeiRecord,
    NationalCertificate,
    NtsRecord,
    Supplier,
    VatRecord,
)

__all__ = ["DEFAULT_SEED", "RECORD_TYPES", "SandboxDataset", "normalise_identifier"]

RECORD_TYPES: dict[str, type[BaseModel]] = {
    "nts": NtsRecord,
    "vies": VatRecord,
    "gleif": LeiRecord,
    "companies_house": CompanyRecord,
    "iaf": IafCertificate,
    "national_certs": NationalCertificate,
}
_EXACT_KEYS = frozenset({"iaf", "national_certs"})


def normalise_identifier(value: str) -> str:
    """Upper-case without spaces, hyphens or dots: ``123-45-67890`` and ``1234567890`` are one key."""
    return "".join(ch for ch in value.upper() if ch not in " -.")


class SandboxDataset:
    """Seeded population plus the runtime changes made to it; ``reset()`` forgets the changes."""

    def __init__(self, seed: int = DEFAULT_SEED, size: int = 300, as_of: date | None = None) -> None:
        self.seed = seed
        self.size = size
        self._as_of = as_of
        self._lock = threading.RLock()
        self._snap = generate(seed, size, as_of)
        self._index: dict[str, Supplier] = {}
        self._reindex()

    # -- whole-population views -------------------------------------------------------------
    @property
    def as_of(self) -> date:
        return self._snap.as_of

    @property
    def suppliers(self) -> list[Supplier]:
        with self._lock:
            return list(self._snap.suppliers)

    @property
    def labelled_identifiers(self) -> list[LabelledIdentifier]:
        """Unknown-at-source and deliberately invalid identifiers, for negative tests."""
        with self._lock:
            return list(self._snap.labelled)

    def snapshot(self) -> DatasetSnapshot:
        """The live containers; read-only use, under no lock (for tests and benchmarks)."""
        return self._snap

    def reset(self) -> None:
        with self._lock:
            self._snap = generate(self.seed, self.size, self._as_of)
            self._reindex()

    def _reindex(self) -> None:
        index: dict[str, Supplier] = {}
        for supplier in self._snap.suppliers:
            index[normalise_identifier(supplier.supplier_id)] = supplier
            for value in supplier.identifiers.values():
                index[normalise_identifier(value)] = supplier
        by_ce = {s.identifiers.get("iaf_ce_id"): s for s in self._snap.suppliers}
        for cert in self._snap.iaf.values():
            index[normalise_identifier(cert.cert_id)] = by_ce[cert.ce_id]
        by_brn = {s.identifiers.get("kr_brn"): s for s in self._snap.suppliers}
        for national in self._snap.national_certs.values():
            index[normalise_identifier(national.number)] = by_brn[national.holder_brn]
        self._index = index

    # -- lookups -------------------------------------------------------------------------------
    def find_supplier(self, identifier: str) -> Supplier | None:
        """By any identifier: supplier id, BRN, VAT (with country prefix), LEI, UK number, IAF
        certified-entity id, IAF certificate id or national certificate number."""
        with self._lock:
            return self._index.get(normalise_identifier(identifier))

    def find_suppliers(self, predicate: Callable[[Supplier], bool]) -> list[Supplier]:
        with self._lock:
            return [s for s in self._snap.suppliers if predicate(s)]

    def with_scenario(self, tag: str) -> list[Supplier]:
        """Suppliers whose scenario list has ``tag`` (e.g. ``nts:closed``, ``gleif:lapsed``)."""
        return self.find_suppliers(lambda s: tag in s.scenario)

    def _table(self, system: str) -> dict[str, Any]:
        if system not in RECORD_TYPES:
            raise KeyError(f"unknown system {system!r}")
        table: dict[str, Any] = getattr(self._snap, system)
        return table

    def record(self, system: str, key: str) -> BaseModel | None:
        with self._lock:
            return self._table(system).get(self._key(system, key))

    def nts(self, b_no: str) -> NtsRecord | None:
        with self._lock:
            return self._snap.nts.get(b_no)

    def vat(self, country_code: str, vat_number: str) -> VatRecord | None:
        with self._lock:
            return self._snap.vies.get(country_code + vat_number)

    def lei(self, lei: str) -> LeiRecord | None:
        with self._lock:
            return self._snap.gleif.get(lei.upper())

    def company(self, number: str) -> CompanyRecord | None:
        with self._lock:
            return self._snap.companies_house.get(number.upper())

    def iaf_certificate(self, cert_id: str) -> IafCertificate | None:
        with self._lock:
            return self._snap.iaf.get(cert_id)

    def iaf_certificates_of(self, ce_id: str) -> list[IafCertificate]:
        with self._lock:
            return [c for c in self._snap.iaf.values() if c.ce_id == ce_id]

    def national_holder_known(self, brn: str) -> bool:
        with self._lock:
            return brn in self._snap.national_holders

    def national_certificates_of(self, brn: str) -> list[NationalCertificate]:
        with self._lock:
            return [c for c in self._snap.national_certs.values() if c.holder_brn == brn]

    # -- runtime changes -------------------------------------------------------------------------
    @staticmethod
    def _key(system: str, key: str) -> str:
        """Numbers are normalised; certificate ids are compared exactly (their hyphens matter)."""
        return key if system in _EXACT_KEYS else normalise_identifier(key)

    def update_record(self, system: str, key: str, changes: dict[str, Any]) -> BaseModel:
        """Apply ``changes`` to one record, validated like a fresh record; KeyError if absent."""
        with self._lock:
            table = self._table(system)
            current = table.get(self._key(system, key))
            if current is None:
                raise KeyError(key)
            updated = RECORD_TYPES[system].model_validate({**current.model_dump(), **changes})
            table[self._key(system, key)] = updated
            return updated

    def put_record(self, system: str, record: dict[str, Any]) -> BaseModel:
        """Create or replace a record (e.g. register a number NTS did not know)."""
        with self._lock:
            model = RECORD_TYPES[system].model_validate(record)
            key = self._record_key(system, model)
            self._table(system)[key] = model
            if system == "national_certs":
                self._snap.national_holders.add(model.holder_brn)  # type: ignore[attr-defined]
            return model

    def delete_record(self, system: str, key: str) -> bool:
        """Remove a record so the source answers "unknown" for it from now on."""
        with self._lock:
            return self._table(system).pop(self._key(system, key), None) is not None

    @staticmethod
    def _record_key(system: str, model: BaseModel) -> str:
        data = model.model_dump()
        if system == "vies":
            return normalise_identifier(data["country_code"] + data["vat_number"])
        field = {"nts": "b_no", "gleif": "lei", "companies_house": "company_number", "iaf": "cert_id",
                 "national_certs": "number"}[system]
        value = str(data[field])
        return value if system in _EXACT_KEYS else normalise_identifier(value)
