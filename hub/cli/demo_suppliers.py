"""The register-once part of ``g2bhub demo``: the sandbox twins on port 8900 (or a free port, with the
connectors pointed at it), and a few suppliers of the demo supplier organisation registered from the
sandbox dataset, so the demo shows credentials with provenance from the first request.

The seeded suppliers' control of their identifiers is approved by the demo operator (manual method,
evidence "demo seed"), so eligibility answers are met or not met from the start; a supplier registered
during the demo proves control itself (docs/identifier-control.md), and until then its answers are
``unknown``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hub.cli.demo_components import DEMO_ORGANISATIONS, DemoComponent, DemoContext
from hub.config import Settings, with_overrides
from hub.organisations.model import OrgKind
from hub.suppliers.commands import ApproveControlManually

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
        org_id = _demo_org(ctx, OrgKind.SUPPLIER)
        operator_id = _demo_org(ctx, OrgKind.OPERATOR)
        lines = [f"sandbox    {self.server.base_url}  (control: /<system>/_control/faults, /records/<id>)"]
        if org_id is not None:
            for identifiers in self._identifier_sets():
                result = hub.suppliers.service.register(org_id=org_id, identifiers=identifiers, consent=True)
                if operator_id is not None:
                    for scheme in _unproven(ctx, result.supplier.org_id, result.supplier.identifiers):
                        hub.bus.handle(ApproveControlManually(
                            supplier_id=result.supplier.id, scheme=scheme, evidence="demo seed",
                            approved_by="g2bhub demo", actor_org_id=operator_id))
                lines.append(f"supplier   {result.supplier.id}  {identifiers}  (control approved: demo seed)")
        lines += [
            "# a supplier you register yourself answers eligibility `unknown` until it proves control of its",
            "# identifiers: ask for a challenge, sign its text with a certificate whose organizationIdentifier",
            "# names the identifier (e.g. NTRKR-<business number>), or have the operator approve by hand:",
            f"curl -s -X POST -H 'Authorization: Bearer <supplier key>' -d '{{\"scheme\": \"kr_brn\"}}' "
            f"{ctx.base_url}/api/v1/suppliers/<id>/control/challenges",
            f"curl -s -X POST -H 'Authorization: Bearer <operator key>' -d '{{\"scheme\": \"kr_brn\", "
            f"\"evidence\": \"called the business\"}}' {ctx.base_url}/api/v1/suppliers/<id>/control/approvals",
            "# (docs/identifier-control.md)",
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


def _demo_org(ctx: DemoContext, kind: OrgKind) -> str | None:
    name = DEMO_ORGANISATIONS[kind]
    with ctx.hub.uow() as uow:
        org = next((o for o in uow.organisations.list(kind) if o.name == name), None)
        return org.id if org is not None else None


def _unproven(ctx: DemoContext, org_id: str, identifiers: dict[str, str]) -> list[str]:
    """Schemes not proven yet (a restarted demo approves nothing twice)."""
    with ctx.hub.uow() as uow:
        claims = uow.suppliers.claims_for(identifiers)
        return [scheme for scheme, value in identifiers.items()
                if (claim := claims.get((scheme, value))) is None or claim.org_id != org_id or not claim.proven]
