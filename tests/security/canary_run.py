"""Run by ``test_secrets_canary`` in a subprocess: the hub as an entrypoint starts it (settings and
logging from the environment, JSON logs on stderr), one registration that calls the sandbox twins,
and one request that fails with an exception whose text carries the secrets, as a careless bug would.
Prints the registration's slot states on stdout."""

from __future__ import annotations

import json
import sys

from fastapi import APIRouter
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.bootstrap import bootstrap
from hub.cli._common import load_settings
from hub.organisations.commands import CreateOrganisation
from hub.organisations.model import OrgKind


def main(identifiers: dict[str, str]) -> None:
    settings = load_settings()
    hub = bootstrap(settings, migrate=True)
    try:
        org, _ = hub.bus.handle(CreateOrganisation(name="Canary Co", kind=OrgKind.SUPPLIER))
        result = hub.suppliers.service.register(org_id=str(org.id), identifiers=identifiers, consent=True,
                                                actor_org_id=str(org.id))
        with hub.uow() as uow:
            states = {fetch.system: fetch.state for fetch in uow.suppliers.fetches_of(result.supplier.id)}

        app = create_app(hub=hub, settings=settings)
        boom = APIRouter()

        @boom.get("/canary-boom")
        def explode() -> None:
            nts = settings.connectors["nts"]
            key = nts.resolve_key()
            raise RuntimeError(f"upstream {nts.endpoint}/status?serviceKey={key.get_secret_value() if key else ''}"
                               f" via {settings.database.url} with headers {settings.connectors['gleif'].headers}"
                               f" and {[k.get_secret_value() for k in settings.syndication.secret_keys]}")

        app.include_router(boom)
        with TestClient(app, raise_server_exceptions=False) as client:
            status = client.get("/canary-boom").status_code
        print(json.dumps({"states": states, "boom": status}))
    finally:
        hub.close()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
