"""One hub process for the benches: the API (uvicorn) or a worker (relay, consumers, dispatcher), built
from settings given as JSON, running until SIGTERM.

    python -m bench._hub_process api SETTINGS_JSON PORT
    python -m bench._hub_process worker SETTINGS_JSON"""

from __future__ import annotations

import json
import sys

from hub.bootstrap import bootstrap
from hub.cli.runtime import serve_app, wait_for_signal
from hub.config import Settings


def main(mode: str, settings_json: str, port: int = 0) -> None:
    settings = Settings(**json.loads(settings_json))
    hub = bootstrap(settings)
    try:
        if mode == "api":
            from hub.api.app import create_app

            serve_app(create_app(hub=hub, settings=settings), "127.0.0.1", port)
        else:
            worker = hub.make_worker()
            worker.start()
            wait_for_signal()
            worker.stop()
    finally:
        hub.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:]))
