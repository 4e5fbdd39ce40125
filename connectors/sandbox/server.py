"""One ASGI app with every twin mounted under its prefix, and a loopback server for tests and demos.

``build_sandbox_app`` is what ``g2bhub sandbox`` serves; ``SandboxServer`` runs the same app with
uvicorn in a background thread on a free loopback port, so integration tests talk real HTTP to it
and still reach the shared dataset in-process when that is simpler than ``/_control``.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from connectors.sandbox import national_certs, vies
from connectors.sandbox.common import TwinState
from connectors.sandbox.companies_house import build_companies_house_app
from connectors.sandbox.config import SYSTEM_PREFIXES, SandboxConfig
from connectors.sandbox.dataset import SandboxDataset
from connectors.sandbox.faults import FaultInjector
from connectors.sandbox.gleif import build_gleif_app
from connectors.sandbox.iaf import build_iaf_app
from connectors.sandbox.nts import build_nts_app
from connectors.sandbox.pps import BASE_PATH as PPS_BASE_PATH
from connectors.sandbox.pps import build_pps_app

__all__ = ["TWIN_BUILDERS", "Sandbox", "SandboxServer", "build_sandbox", "build_sandbox_app", "build_twin_app",
           "endpoints", "main"]

TWIN_BUILDERS: dict[str, Callable[[TwinState], Starlette]] = {
    "vies": vies.build_vies_app,
    "nts": build_nts_app,
    "gleif": build_gleif_app,
    "companies_house": build_companies_house_app,
    "iaf": build_iaf_app,
    "national_certs": national_certs.build_national_certs_app,
    "pps": build_pps_app,
}


class Sandbox:
    """The shared dataset and every twin's state; ``app`` serves them all."""

    def __init__(self, config: SandboxConfig, dataset: SandboxDataset | None = None) -> None:
        self.config = config
        self.dataset = dataset or SandboxDataset(config.seed, config.suppliers, config.as_of)
        self.twins: dict[str, TwinState] = {}
        self.twin_apps: dict[str, Starlette] = {}
        for offset, name in enumerate(TWIN_BUILDERS):
            settings = config.twin(name)
            self.twins[name] = TwinState(
                name=name, dataset=self.dataset,
                faults=FaultInjector(settings, default_seed=config.seed * 31 + offset),
                api_key=config.api_key(name), max_body_bytes=config.max_body_bytes,
            )
        self.app = self._build_app()

    def reset(self) -> None:
        """Forget runtime changes: data back to the seed, faults to configuration, counters to zero."""
        self.dataset.reset()
        for twin in self.twins.values():
            twin.faults.reset()
            twin.stats.reset()
            twin.reset_key()
        for twin_app in self.twin_apps.values():
            reset_twin = getattr(twin_app.state, "reset", None)
            if reset_twin is not None:
                reset_twin()

    def _build_twin(self, name: str, twin: TwinState) -> Starlette:
        if name == "pps":
            return build_pps_app(twin, self.config.pps.items_shape)
        return TWIN_BUILDERS[name](twin)

    def _build_app(self) -> Starlette:
        async def index(request: Request) -> Response:
            return JSONResponse(endpoints(str(request.base_url).rstrip("/")))

        async def supplier(request: Request) -> Response:
            found = self.dataset.find_supplier(request.path_params["identifier"])
            if found is None:
                return JSONResponse({"detail": "unknown identifier"}, status_code=404)
            return JSONResponse(json.loads(found.model_dump_json()))

        async def reset(request: Request) -> Response:
            self.reset()
            return Response(status_code=204)

        routes: list[Route | Mount] = [
            Route("/", index, methods=["GET"]),
            Route("/_control/suppliers/{identifier:path}", supplier, methods=["GET"]),
            Route("/_control/reset", reset, methods=["POST"]),
        ]
        self.twin_apps = {name: self._build_twin(name, twin) for name, twin in self.twins.items()}
        routes += [Mount(SYSTEM_PREFIXES[name], app=twin_app) for name, twin_app in self.twin_apps.items()]
        app = Starlette(routes=routes)
        app.state.sandbox = self
        return app


def build_sandbox(config: SandboxConfig | None = None, dataset: SandboxDataset | None = None) -> Sandbox:
    return Sandbox(config or SandboxConfig(), dataset)


def build_sandbox_app(config: SandboxConfig | None = None) -> Starlette:
    """All twins under ``/vies``, ``/nts``, ``/gleif``, ``/companies-house``, ``/iaf``, ``/national-certs``,
    ``/pps``;
    the ``Sandbox`` behind it is ``app.state.sandbox``."""
    return build_sandbox(config).app


def build_twin_app(name: str, config: SandboxConfig | None = None, dataset: SandboxDataset | None = None) -> Starlette:
    """One twin on its own (served at its root, e.g. ``/status`` for NTS); pass a shared ``dataset``
    to run twins as separate servers over the same population."""
    sandbox = build_sandbox(config, dataset)
    return sandbox._build_twin(name, sandbox.twins[name])


def endpoints(base_url: str) -> dict[str, str]:
    """What each connector configures to talk to the twins mounted at ``base_url``."""
    return {
        "vies_wsdl": f"{base_url}/vies{vies.SERVICE_PATH}?wsdl",
        "vies_endpoint": f"{base_url}/vies{vies.SERVICE_PATH}",
        "nts_base": f"{base_url}/nts",
        "gleif_base": f"{base_url}/gleif",
        "companies_house_base": f"{base_url}/companies-house",
        "iaf_base": f"{base_url}/iaf",
        "national_certs_wsdl": f"{base_url}/national-certs{national_certs.SERVICE_PATH}?wsdl",
        "national_certs_endpoint": f"{base_url}/national-certs{national_certs.SERVICE_PATH}",
        "pps_base": f"{base_url}/pps{PPS_BASE_PATH}",
    }


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening loopback socket bound before uvicorn starts, so port 0 yields a known free port."""
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets that say so,
    # and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class SandboxServer:
    """``with SandboxServer() as sandbox:`` serves every twin on ``sandbox.base_url`` until exit."""

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = build_sandbox(config)
        self._host, self._port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    @property
    def dataset(self) -> SandboxDataset:
        return self.sandbox.dataset

    def twin(self, name: str) -> TwinState:
        return self.sandbox.twins[name]

    @property
    def endpoints(self) -> dict[str, str]:
        return endpoints(self.base_url)

    @property
    def api_keys(self) -> dict[str, str | None]:
        return {name: twin.api_key for name, twin in self.sandbox.twins.items()}

    def start(self) -> SandboxServer:
        sock = bind_socket(self._host, self._port)
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.sandbox.app, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=1, timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()
        server = self._server

        def run() -> None:
            try:
                server.run(sockets=[sock])
            finally:
                started.set()

        self._thread = threading.Thread(target=run, name="g2bhub-sandbox", daemon=True)
        self._thread.start()
        while not server.started and self._thread.is_alive():
            started.wait(0.01)
        if not server.started:
            raise RuntimeError("sandbox server failed to start")
        self.base_url = f"http://{self._host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m connectors.sandbox``: serve every twin and print where each one answers."""
    parser = argparse.ArgumentParser(prog="python -m connectors.sandbox", description=__doc__)
    parser.add_argument("--host", help="bind address (default from G2BHUB_SANDBOX__HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default from G2BHUB_SANDBOX__PORT or 8900)")
    parser.add_argument("--seed", type=int, help="dataset and fault seed")
    parser.add_argument("--suppliers", type=int, help="population size")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    config = SandboxConfig(**overrides)
    sandbox = build_sandbox(config)
    sock = bind_socket(config.host, config.port)
    base = f"http://{config.host}:{sock.getsockname()[1]}"
    print(f"g2b-hub sandbox: {len(sandbox.dataset.suppliers)} suppliers, seed {config.seed}")
    for name, url in endpoints(base).items():
        print(f"  {name:<24} {url}")
    for name, key in {n: t.api_key for n, t in sandbox.twins.items()}.items():
        if key:
            print(f"  {name + ' key':<24} {key}")
    print(f"  {'control':<24} {base}/<system>/_control/{{faults,stats,key,records/<id>}}  {base}/_control/reset")
    print(flush=True)
    uvicorn.Server(uvicorn.Config(sandbox.app, log_level="info", lifespan="off")).run(sockets=[sock])
