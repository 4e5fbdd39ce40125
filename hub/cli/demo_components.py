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
from hub.organisations.model import OrgKind

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
    # The demo keys by kind (plaintext), once the organisations component has started.
    keys: dict[OrgKind, str] = field(default_factory=dict)
    # The running sandbox twins (connectors.sandbox.server.SandboxServer), once started.
    sandbox: Any = None
    # Whether the data directory is the one the CLI finds by itself (no --data-dir needed).
    default_data_dir: bool = True

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
    """Seeds one organisation per kind, idempotently, and gives each a demo key kept in the data
    directory's key file (:mod:`hub.cli.demo_keys`).

    Keys are stored only as hashes, so the file is what lets a restarted demo keep its keys: a key read
    back from it that is still active is kept; otherwise a fresh one is issued and the organisation's
    other demo keys are revoked."""

    name = "organisations"

    def __init__(self) -> None:
        self.keys: dict[OrgKind, tuple[str, str, str]] = {}  # kind → (org id, name, plaintext key)
        self.reused: set[OrgKind] = set()

    def start(self, ctx: DemoContext) -> None:
        from hub.cli.demo_keys import read_keys, write_keys
        from hub.organisations.commands import CreateOrganisation, IssueApiKey, RevokeApiKey
        from hub.organisations.model import parse_api_key

        bus = ctx.hub.bus
        saved = read_keys(ctx.data_dir)
        for kind, name in DEMO_ORGANISATIONS.items():
            kept: str | None = None
            with ctx.hub.uow() as uow:
                existing = next((o for o in uow.organisations.list(kind) if o.name == name), None)
                demo_keys = [k for k in existing.api_keys if k.active and k.label == DEMO_KEY_LABEL] if existing else []
                stale = [k.id for k in demo_keys]
                org_id = existing.id if existing else None
                parsed = parse_api_key(saved.get(kind.value, {}).get("api_key", ""))
                if parsed is not None:
                    key_id, secret = parsed
                    if any(k.id == key_id and k.matches(secret) for k in demo_keys):
                        kept = saved[kind.value]["api_key"]
            if org_id is None:
                org, issued = bus.handle(CreateOrganisation(name=name, kind=kind, key_label=DEMO_KEY_LABEL))
                org_id, plaintext = org.id, issued.plaintext
                log.info("demo organisation created: %s %s", kind.value, org_id)
            elif kept is not None:
                plaintext = kept
                self.reused.add(kind)
                log.info("demo organisation reused: %s %s (key from the key file)", kind.value, org_id)
            else:
                for key_id in stale:
                    bus.handle(RevokeApiKey(org_id=org_id, key_id=key_id))
                plaintext = bus.handle(IssueApiKey(org_id=org_id, label=DEMO_KEY_LABEL)).plaintext
                log.info("demo organisation reused: %s %s (fresh key)", kind.value, org_id)
            self.keys[kind] = (org_id, name, plaintext)
            ctx.keys[kind] = plaintext
        path = write_keys(
            ctx.data_dir,
            ctx.base_url,
            {
                kind.value: {"org_id": org_id, "name": name, "api_key": plaintext}
                for kind, (org_id, name, plaintext) in self.keys.items()
            },
        )

        width = max(len(k.value) for k in self.keys)
        ctx.add_section(
            f"Demo API keys (also in {path}, readable by you only; kept across restarts)",
            [f"{kind.value.ljust(width)}  {plaintext}  {name}" for kind, (_, name, plaintext) in self.keys.items()],
        )
        institution_key = ctx.keys[OrgKind.INSTITUTION]
        operator_key = ctx.keys[OrgKind.OPERATOR]
        ctx.add_section(
            "Try it",
            [
                "# who am I (any key)",
                f"curl -s -H 'Authorization: Bearer {institution_key}' {ctx.base_url}/api/v1/me",
                "# every organisation, and the audit trail (operator key)",
                f"curl -s -H 'Authorization: Bearer {operator_key}' {ctx.base_url}/api/v1/orgs",
                f"curl -s -H 'Authorization: Bearer {operator_key}' {ctx.base_url}/api/v1/audit",
                "# the same organisations from the command line (it finds the demo's database)",
                ("g2bhub orgs list" if ctx.default_data_dir else f"g2bhub --data-dir {ctx.data_dir} orgs list"),
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


def _demo_pps() -> DemoComponent:
    from hub.cli.demo_pps import DemoPps

    return DemoPps()


# The PPS puller on the sandbox PPS twin (after the twins have started), importing as the demo institution.
DEMO_COMPONENTS.append(_demo_pps)
