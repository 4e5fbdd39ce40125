"""The register-once part of ``g2bhub demo``: the sandbox twins on port 8900 (or a free port, with the
connectors pointed at it), and a few suppliers of the demo supplier organisation registered from the
sandbox dataset, so the demo shows credentials with provenance from the first request."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hub.cli.demo_components import DEMO_ORGANISATIONS, DemoComponent, DemoContext
from hub.config import Settings, with_overrides
from hub.organisations.model import OrgKind

__all__ = ["SandboxSuppliers", "sandbox_connector_overrides"]

log = logging.getLogger("hub.cli.demo")

DEMO_PORT = 8900


def sandbox_connector_overrides(endpoints: dict[str, str], api_keys: dict[str, str | None]) -> dict[str, Any]:
    """``Settings.connectors`` entries that point every connector at the twins behind ``endpoints``."""
    return {
        "vies": {"endpoint": endpoints["vies_endpoint"]},
        "nts": {"endpoint": endpoints["nts_base"], "key": api_keys["nts"]},
        "gleif": {"endpoint": endpoints["gleif_base"]},
        "companies_house": {"endpoint": endpoints["companies_house_base"], "key": api_keys["companies_house"]},
        "iaf": {"endpoint": endpoints["iaf_base"], "key": api_keys["iaf"]},
        "national_certs": {"endpoint": endpoints["national_certs_endpoint"]},
    }


class SandboxSuppliers(DemoComponent):
    name = "sandbox-suppliers"

    def __init__(self, count: int = 3) -> None:
        self.count = count
        self.server: Any = None

    def configure(self, settings: Settings, data_dir: Path) -> Settings:
        from connectors.sandbox.server import SandboxServer

        try:
            self.server = SandboxServer(port=DEMO_PORT).start()
        except OSError:
            log.info("port %d is taken; the sandbox twins take a free port", DEMO_PORT)
            self.server = SandboxServer(port=0).start()
        overrides = sandbox_connector_overrides(self.server.endpoints, self.server.api_keys)
        return with_overrides(settings, {"connectors": overrides})

    def _identifier_sets(self) -> list[dict[str, str]]:
        wanted = [s.identifiers for s in self.server.dataset.suppliers if len(s.identifiers) >= 2]
        return [dict(ids) for ids in wanted[: self.count]]

    def start(self, ctx: DemoContext) -> None:
        hub = ctx.hub
        name = DEMO_ORGANISATIONS[OrgKind.SUPPLIER]
        with hub.uow() as uow:
            org = next((o for o in uow.organisations.list(OrgKind.SUPPLIER) if o.name == name), None)
            org_id = org.id if org is not None else None
        lines = [f"sandbox    {self.server.base_url}  (control: /<system>/_control/faults, /records/<id>)"]
        if org_id is not None:
            for identifiers in self._identifier_sets():
                result = hub.suppliers.service.register(org_id=org_id, identifiers=identifiers, consent=True)
                lines.append(f"supplier   {result.supplier.id}  {identifiers}")
        lines += [
            "# a supplier's credentials with provenance (demo supplier key)",
            f"curl -s -H 'Authorization: Bearer <supplier key>' {ctx.base_url}/api/v1/suppliers",
            "# take NTS down, register, then watch the credential go pending → verified",
            f"curl -s -X POST {self.server.base_url}/nts/_control/faults -d '{{\"outage\": true}}'",
        ]
        ctx.add_section("Register once (sandbox twins of NTS, VIES, GLEIF, Companies House, IAF, national certs)",
                        lines)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
