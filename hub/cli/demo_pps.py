"""The PPS part of ``g2bhub demo``: the PPS puller runs against the sandbox PPS twin, so the KONEPS
notices of the twin's dataset appear in the hub within moments of the start (docs/pps.md).

With ``pps.endpoint`` left at the shipped default, the puller is pointed at the twin the demo started,
with the twin's key (never a real key from the environment), from the first day of the month the twin's
dataset starts in, in windows of the longest span the service accepts, every minute. An endpoint the
user configured is kept with their key and their timing; its key is checked at start like any
deployment's. Either way the notices are imported as ``pps.org_id`` if set, else the demo institution.

The first pull runs at start, then every ``pps.interval_s``, in a thread of this component (the
worker's schedule would wait a whole interval first, and the demo institution exists only once the
demo has started)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, time
from pathlib import Path
from typing import Any

from hub.cli.demo_components import DEMO_ORGANISATIONS, DemoComponent, DemoContext
from hub.config import ConfigError, Settings, shipped_defaults
from hub.notices.pps_config import MAX_WINDOW_H, PpsSettings
from hub.organisations.model import OrgKind

__all__ = [
    "DEMO_PPS_INTERVAL_S",
    "DemoPps",
    "demo_pps_settings",
    "twin_dataset_start",
    "user_configured_endpoint",
]

log = logging.getLogger("hub.cli.demo")

# How often the demo pulls from the twin after the first pull at start.
DEMO_PPS_INTERVAL_S = 60.0


def twin_dataset_start() -> datetime:
    """The first day of the month the PPS twin's dataset starts in, in Korean time."""
    from connectors.sandbox.pps import DATASET_START
    from hub.notices.pps_puller import KST

    return datetime.combine(DATASET_START.date().replace(day=1), time(), KST)


def _shipped_endpoint() -> str:
    shipped = (shipped_defaults().get("pps") or {}).get("endpoint") or PpsSettings().endpoint
    return str(shipped).rstrip("/")


def user_configured_endpoint(pps: PpsSettings) -> bool:
    return pps.endpoint.rstrip("/") != _shipped_endpoint()


def demo_pps_settings(pps: PpsSettings, org_id: str, twin_endpoint: str | None, twin_key: str | None) -> PpsSettings:
    """The puller's settings in the demo: on the twin (``twin_endpoint``) unless the user configured an
    endpoint of their own, enabled, importing as ``pps.org_id`` or else ``org_id``."""
    changes: dict[str, Any] = {"enabled": True, "org_id": pps.org_id or org_id}
    if twin_endpoint is not None and not user_configured_endpoint(pps):
        changes.update(
            endpoint=twin_endpoint,
            key=twin_key,
            key_env="",  # a real key in the environment is never sent to the twin
            start=twin_dataset_start(),
            window_h=MAX_WINDOW_H,
            interval_s=DEMO_PPS_INTERVAL_S,
        )
    data = pps.model_dump()
    data.update(changes)
    if data.get("key") is not None and not isinstance(data["key"], str):
        data["key"] = data["key"].get_secret_value()
    return PpsSettings.model_validate(data)


class DemoPps(DemoComponent):
    name = "pps"

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.first_pull = threading.Event()  # set once the pull at start has finished (whatever its outcome)
        self.thread: threading.Thread | None = None
        self.settings: PpsSettings | None = None
        self.puller: Any = None

    def configure(self, settings: Settings, data_dir: Path) -> Settings:
        pps = settings.pps
        if user_configured_endpoint(pps) and pps.sandbox_key_elsewhere():
            raise ConfigError(
                [
                    f"pps.endpoint {pps.endpoint} is not the sandbox but the key is the sandbox's: set {pps.key_env} "
                    "(or leave pps.endpoint at its default to pull from the sandbox twin)"
                ]
            )
        return settings

    def start(self, ctx: DemoContext) -> None:
        from hub.bootstrap import pps_puller

        org_id = _institution(ctx)
        if org_id is None:
            log.warning("demo PPS pull skipped: no demo institution")
            return
        twin = ctx.sandbox
        self.settings = demo_pps_settings(
            ctx.settings.pps,
            org_id,
            twin.endpoints["pps_base"] if twin is not None else None,
            twin.api_keys.get("pps") if twin is not None else None,
        )
        settings = ctx.settings.model_copy(update={"pps": self.settings})
        self.puller = pps_puller(settings, ctx.hub.bus, ctx.hub.session_factory)
        ctx.hub.pps = self.puller  # what /readyz reports on
        self.thread = threading.Thread(target=self._loop, name="demo-pps-puller", daemon=True)
        self.thread.start()
        ctx.add_section("Pull from PPS (KONEPS bid notices)", self._lines(ctx, org_id))

    def _lines(self, ctx: DemoContext, org_id: str) -> list[str]:
        pps = self.settings
        assert pps is not None
        where = "sandbox" if not user_configured_endpoint(ctx.settings.pps) else "configured"
        start = pps.start.isoformat() if pps.start else f"{pps.window_h:g} h before the start"
        base = f"{ctx.base_url}/api/v1"
        lines = [
            f"pps        {where}  {pps.endpoint}",
            f"           pulled now and every {pps.interval_s:g} s, from {start}, in windows of {pps.window_h:g} h,",
            f"           imported as {'the demo institution' if pps.org_id == org_id else 'pps.org_id'} {pps.org_id}",
            "# the imported notices (each PPS order is a version of its notice)",
            f"curl -s '{base}/notices?institution={pps.org_id}&category=goods'",
            f"curl -s '{base}/feeds/changes?after=0'",
        ]
        if where == "sandbox":
            lines += [
                "# make the twin answer 'quota exceeded' (code 22) for the next pulls; docs/pps.md lists the codes",
                f"curl -s -X POST {ctx.sandbox.base_url}/pps/_control/pps "
                '-d \'{"fail_after": 0, "fail_code": "22", "fail_count": 3}\'',
            ]
        return lines

    def _loop(self) -> None:
        assert self.settings is not None
        interval = self.settings.interval_s
        while not self.stop_event.is_set():
            try:
                self.puller.run_once(stop=self.stop_event)
            except Exception:
                log.exception("demo PPS pull failed")
            finally:
                self.first_pull.set()
            if self.stop_event.wait(interval):
                break

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
            self.thread = None


def _institution(ctx: DemoContext) -> str | None:
    name = DEMO_ORGANISATIONS[OrgKind.INSTITUTION]
    with ctx.hub.uow() as uow:
        return next((o.id for o in uow.organisations.list(OrgKind.INSTITUTION) if o.name == name), None)
