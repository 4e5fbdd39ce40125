"""The pieces ``g2bhub demo`` starts around the hub, in order.

Each flow appends its own component to :data:`DEMO_COMPONENTS` (for instance the
sandbox twins of the tax, registry and certification systems, which must be listening before the hub's
connectors are configured to call them, or seed bid notices). A component can adjust settings before the
hub is bootstrapped, act on the running hub, add lines to the banner, and clean up in reverse order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.config import Settings
from hub.organisations.model import IssuedKey, OrgKind

__all__ = [
    "DEMO_COMPONENTS",
    "DEMO_KEY_LABEL",
    "DEMO_ORGANISATIONS",
    "DemoComponent",
    "DemoContext",
    "DemoOrganisations",
    "EmbeddedWorker",
]

log = logging.getLogger("hub.cli.demo")

DEMO_KEY_LABEL = "demo"

# One organisation of each kind; found again by (kind, name) when the demo restarts on the same data.
DEMO_ORGANISATIONS: dict[OrgKind, str] = {
    OrgKind.INSTITUTION: "Demo Institution (Seoul Metropolitan Government)",
    OrgKind.AGENCY: "Demo Agency (Korea Land & Housing Corporation)",
    OrgKind.SUPPLIER: "Demo Supplier (Hanbit Construction Co., Ltd.)",
    OrgKind.OPERATOR: "Demo Operator (hub operations desk)",
}


@dataclass
class DemoContext:
    """What components share: the running hub, where it lives and what the banner will say."""

    hub: Any  # hub.bootstrap.Hub (kept loose so this module imports nothing heavy)
    settings: Settings
    data_dir: Path
    base_url: str
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def add_section(self, title: str, lines: list[str]) -> None:
        self.sections.append((title, lines))


class DemoComponent:
    """Base class with no-op hooks; override the ones a component needs."""

    name = "component"

    def configure(self, settings: Settings, data_dir: Path) -> Settings:
        """Called before the hub is bootstrapped; return adjusted settings (e.g. connector URLs)."""
        return settings

    def start(self, ctx: DemoContext) -> None:
        """Called after migrations, before the API starts listening."""

    def stop(self) -> None:
        """Called on shutdown, in reverse start order; also when the start fails after ``configure``
        (before ``start``), so it must cope with a component that never started."""


class DemoOrganisations(DemoComponent):
    """Seeds one organisation per kind, idempotently, and issues each a fresh demo key.

    Keys are stored only as hashes, so a restarted demo cannot show the old ones again: it revokes the
    previous demo keys and prints new ones."""

    name = "organisations"

    def __init__(self) -> None:
        self.keys: dict[OrgKind, tuple[str, str, IssuedKey]] = {}

    def start(self, ctx: DemoContext) -> None:
        from hub.organisations.commands import CreateOrganisation, IssueApiKey, RevokeApiKey

        bus = ctx.hub.bus
        for kind, name in DEMO_ORGANISATIONS.items():
            with ctx.hub.uow() as uow:
                existing = next((o for o in uow.organisations.list(kind) if o.name == name), None)
                stale = [k.id for k in existing.api_keys if k.active and k.label == DEMO_KEY_LABEL] if existing else []
                org_id = existing.id if existing else None
            if org_id is None:
                org, issued = bus.handle(CreateOrganisation(name=name, kind=kind, key_label=DEMO_KEY_LABEL))
                org_id = org.id
                log.info("demo organisation created: %s %s", kind.value, org_id)
            else:
                for key_id in stale:
                    bus.handle(RevokeApiKey(org_id=org_id, key_id=key_id))
                issued = bus.handle(IssueApiKey(org_id=org_id, label=DEMO_KEY_LABEL))
                log.info("demo organisation reused: %s %s (fresh key)", kind.value, org_id)
            self.keys[kind] = (org_id, name, issued)

        width = max(len(k.value) for k in self.keys)
        ctx.add_section(
            "Demo API keys (new on every start; the previous demo keys are revoked)",
            [f"{kind.value.ljust(width)}  {issued.plaintext}  {name}" for kind, (_, name, issued) in self.keys.items()],
        )
        institution_key = self.keys[OrgKind.INSTITUTION][2].plaintext
        operator_key = self.keys[OrgKind.OPERATOR][2].plaintext
        ctx.add_section(
            "Try it",
            [
                "# who am I (any key)",
                f"curl -s -H 'Authorization: Bearer {institution_key}' {ctx.base_url}/api/v1/me",
                "# every organisation, and the audit trail (operator key)",
                f"curl -s -H 'Authorization: Bearer {operator_key}' {ctx.base_url}/api/v1/orgs",
                f"curl -s -H 'Authorization: Bearer {operator_key}' {ctx.base_url}/api/v1/audit",
            ],
        )


class EmbeddedWorker(DemoComponent):
    """The relay and the consumer groups, in this process: the in-process broker exists only here."""

    name = "worker"

    def __init__(self) -> None:
        self.worker: Any = None

    def start(self, ctx: DemoContext) -> None:
        self.worker = ctx.hub.make_worker()
        self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()


# Started in this order, stopped in reverse: the organisations first, then the embedded worker, then
# the sandbox government systems with supplier seed data, then sample notices.
DEMO_COMPONENTS: list[Callable[[], DemoComponent]] = [DemoOrganisations, EmbeddedWorker]


def _sandbox_suppliers() -> DemoComponent:
    # Imported late: that module imports this one.
    from hub.cli.demo_suppliers import SandboxSuppliers

    return SandboxSuppliers()


# The sandbox twins must listen before the hub's connectors are configured to call them.
DEMO_COMPONENTS.append(_sandbox_suppliers)


def _demo_notices() -> DemoComponent:
    from hub.cli.demo_notices import DemoNotices

    return DemoNotices()


# Sample notices (one amended, one cancelled) and the open feeds' URLs in the banner.
DEMO_COMPONENTS.append(_demo_notices)
