"""The register-once part of ``g2bhub demo``: the sandbox twins on port 8900 (or a free port), the
connectors pointed at them unless the user configured an endpoint of their own, and a few suppliers of
the demo supplier organisation registered from the sandbox dataset, so the demo shows credentials with
provenance from the first request.

A connector endpoint the user configured (their config file or ``G2BHUB_CONNECTORS__<SYSTEM>__ENDPOINT``:
anything other than the shipped default) is kept, with its key, so the demo can be tried against the real
services; every other system goes to its twin with the twin's key (a real key in the environment is
never sent to a twin). A system the user switched off stays off; one that is off only by the shipped
default (national_certs, which has no real counterpart) is switched on against its twin.

The seeded suppliers carry only identifiers whose every applicable system is a twin: the sandbox
dataset's numbers are made up, and a real registry would only spend the deployment's key and quota to
answer "not found". Their control of their identifiers is approved by the demo operator (manual method,
evidence "demo seed"), so eligibility answers are met or not met from the start; a supplier registered
during the demo proves control itself (docs/identifier-control.md), and until then its answers are
``unknown``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from hub.cli.demo_components import DEMO_ORGANISATIONS, DemoComponent, DemoContext
from hub.config import Settings, shipped_defaults, with_overrides
from hub.organisations.model import OrgKind
from hub.suppliers.commands import ApproveControlManually

__all__ = [
    "Placement",
    "SandboxSuppliers",
    "demo_connector_overrides",
    "pending_wait_lines",
    "sandbox_connector_overrides",
]

log = logging.getLogger("hub.cli.demo")

DEMO_PORT = 8900

# Where the demo sends a system: its twin, the endpoint the user configured, or nowhere.
Placement = Literal["sandbox", "configured", "off"]

# System → (its entry in the sandbox's ``endpoints``, its entry in the sandbox's ``api_keys`` or None).
TWINS: dict[str, tuple[str, str | None]] = {
    "vies": ("vies_endpoint", None),
    "nts": ("nts_base", "nts"),
    "gleif": ("gleif_base", None),
    "companies_house": ("companies_house_base", "companies_house"),
    "iaf": ("iaf_base", "iaf"),
    "national_certs": ("national_certs_endpoint", None),
}


def _twin_entry(system: str, endpoints: dict[str, str], api_keys: dict[str, str | None]) -> dict[str, Any]:
    endpoint, key_name = TWINS[system]
    entry: dict[str, Any] = {"endpoint": endpoints[endpoint], "enabled": True}
    if key_name is not None:
        # The twin's key wins over any real key in the environment or a file: none is sent to a twin.
        entry.update(key=api_keys[key_name], key_env=None, key_file=None)
    return entry


def sandbox_connector_overrides(endpoints: dict[str, str], api_keys: dict[str, str | None]) -> dict[str, Any]:
    """``Settings.connectors`` entries that point every connector at the twins behind ``endpoints``."""
    return {system: _twin_entry(system, endpoints, api_keys) for system in TWINS}


def demo_connector_overrides(
    settings: Settings, endpoints: dict[str, str], api_keys: dict[str, str | None]
) -> tuple[dict[str, Any], dict[str, Placement]]:
    """The demo's ``connectors`` overrides, and where each system goes. An endpoint other than the
    shipped default is the user's and is kept; the rest go to the twins behind ``endpoints``."""
    shipped = shipped_defaults().get("connectors") or {}
    overrides: dict[str, Any] = {}
    placement: dict[str, Placement] = {}
    for system, entry in settings.connectors.items():
        default = shipped.get(system) or {}
        # Off by the user's choice stays off; off only by the shipped default is switched on.
        enabled = entry.enabled or not default.get("enabled", True)
        shipped_endpoint = str(default.get("endpoint", "")).rstrip("/")
        if not enabled:
            placement[system] = "off"
        elif system in TWINS and entry.endpoint == shipped_endpoint:
            overrides[system] = _twin_entry(system, endpoints, api_keys)
            placement[system] = "sandbox"
        else:
            overrides[system] = {"enabled": True}
            placement[system] = "configured"
    return overrides, placement


class SandboxSuppliers(DemoComponent):
    name = "sandbox-suppliers"

    def __init__(self, count: int = 3) -> None:
        self.count = count
        self.server: Any = None
        self.placement: dict[str, Placement] = {}

    def configure(self, settings: Settings, data_dir: Path) -> Settings:
        from connectors.sandbox.server import SandboxServer

        try:
            self.server = SandboxServer(port=DEMO_PORT).start()
        except OSError:
            log.info("port %d is taken; the sandbox twins take a free port", DEMO_PORT)
            self.server = SandboxServer(port=0).start()
        overrides, self.placement = demo_connector_overrides(settings, self.server.endpoints, self.server.api_keys)
        return with_overrides(settings, {"connectors": overrides})

    def _seedable(self, settings: Settings) -> set[str]:
        """Identifier schemes fetched from twins only (a scheme no enabled system serves counts too)."""
        return {scheme for scheme, systems in settings.suppliers.applicable_systems.items()
                if all(self.placement.get(system, "off") in {"sandbox", "off"} for system in systems)}

    def _identifier_sets(self, settings: Settings) -> list[dict[str, str]]:
        """Up to ``count`` suppliers of the dataset with two identifiers or more, each keeping only the
        identifiers whose systems are all twins; none when every scheme goes to a configured system."""
        seedable = self._seedable(settings)
        wanted = [s.identifiers for s in self.server.dataset.suppliers if len(s.identifiers) >= 2]
        kept = [{scheme: value for scheme, value in ids.items() if scheme in seedable} for ids in wanted]
        return [ids for ids in kept if ids][: self.count]

    def _upstream_lines(self, settings: Settings) -> list[str]:
        from connectors.key_policy import is_sandbox_endpoint

        width = max((len(system) for system in self.placement), default=0)
        lines = []
        for system, where in self.placement.items():
            endpoint = settings.connectors[system].endpoint
            if where == "sandbox":
                label, shown = "sandbox", endpoint
            elif where == "off":
                label, shown = "off", "(enabled: false)"
            else:  # the user's own endpoint; on a loopback host it may be their own twin
                label, shown = ("configured" if is_sandbox_endpoint(endpoint) else "real"), endpoint
            lines.append(f"upstream   {system.ljust(width)}  {label.ljust(10)}  {shown}")
        return lines

    def start(self, ctx: DemoContext) -> None:
        hub = ctx.hub
        ctx.sandbox = self.server
        org_id = _demo_org(ctx, OrgKind.SUPPLIER)
        operator_id = _demo_org(ctx, OrgKind.OPERATOR)
        supplier_key = ctx.keys.get(OrgKind.SUPPLIER, "<supplier key>")
        operator_key = ctx.keys.get(OrgKind.OPERATOR, "<operator key>")
        lines = [f"sandbox    {self.server.base_url}  (control: /<system>/_control/faults, /records/<id>)",
                 "           its suppliers by scenario: g2bhub sandbox suppliers --scenario nts:closed",
                 *self._upstream_lines(ctx.settings)]
        identifier_sets = self._identifier_sets(ctx.settings)
        if not identifier_sets:
            lines.append("supplier   none seeded: every identifier scheme goes to a real system")
        if org_id is not None:
            for identifiers in identifier_sets:
                result = hub.suppliers.service.register(org_id=org_id, identifiers=identifiers, consent=True)
                if operator_id is not None:
                    for scheme in _unproven(ctx, result.supplier.org_id, result.supplier.identifiers):
                        hub.bus.handle(ApproveControlManually(
                            supplier_id=result.supplier.id, scheme=scheme, evidence="demo seed",
                            approved_by="g2bhub demo", actor_org_id=operator_id))
                shown = ", ".join(f"{scheme}={value}" for scheme, value in identifiers.items())
                lines.append(f"supplier   {result.supplier.id}  {shown}  (control approved: demo seed)")
        lines += [
            "# a supplier's credentials with provenance (demo supplier key)",
            f"curl -s -H 'Authorization: Bearer {supplier_key}' {ctx.base_url}/api/v1/suppliers",
            "# a supplier you register yourself answers eligibility `unknown` until it proves control of its",
            "# identifiers: ask for a challenge, sign its text with a certificate whose organizationIdentifier",
            "# names the identifier (e.g. NTRKR-<business number>), or have the operator approve by hand",
            "# (<id>: the id its registration answered; docs/identifier-control.md):",
            f"curl -s -X POST -H 'Authorization: Bearer {supplier_key}' -d '{{\"scheme\": \"kr_brn\"}}' "
            f"{ctx.base_url}/api/v1/suppliers/<id>/control/challenges",
            f"curl -s -X POST -H 'Authorization: Bearer {operator_key}' -d '{{\"scheme\": \"kr_brn\", "
            f"\"evidence\": \"called the business\"}}' {ctx.base_url}/api/v1/suppliers/<id>/control/approvals",
        ]
        if self.placement.get("nts") == "sandbox":
            lines += [
                "# take NTS down, register, then watch the credential go pending → verified once it is back",
                f"curl -s -X POST {self.server.base_url}/nts/_control/faults -d '{{\"outage\": true}}'",
                f"curl -s -X DELETE {self.server.base_url}/nts/_control/faults",
                *pending_wait_lines(ctx.settings),
            ]
        real = sorted(system for system, where in self.placement.items() if where == "configured")
        title = ("Register once (every upstream system on its sandbox twin)" if not real else
                 f"Register once ({', '.join(real)} at the endpoint{'s' if len(real) > 1 else ''} you configured, "
                 "the rest on sandbox twins)")
        ctx.add_section(title, lines)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def pending_wait_lines(settings: Settings) -> list[str]:
    """How long a ``pending`` credential waits for its next fetch, from the configured backoff and
    scheduler interval (a fetch that fails while the system is down starts the wait)."""
    backoff, scheduler = settings.suppliers.backoff, settings.suppliers.scheduler
    first = backoff.initial_s * (1 + backoff.jitter_ratio) + scheduler.interval_s
    return [
        f"# pending is fetched again {_duration(backoff.initial_s)} after the failed fetch "
        f"(± {backoff.jitter_ratio:.0%}, growing x{backoff.multiplier:g} per failure up to "
        f"{_duration(backoff.max_s)}),",
        f"# found by the scheduler that runs every {_duration(scheduler.interval_s)}: verified within about "
        f"{_duration(round(first))} of the outage's end if it failed once (suppliers.backoff, suppliers.scheduler)",
    ]


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
