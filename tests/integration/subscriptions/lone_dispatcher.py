"""A worker process that runs only the delivery dispatcher, so a test can SIGKILL it with deliveries
claimed and in flight (no cleanup, no release: what a crashed or killed worker leaves behind).

Usage: python -m tests.integration.subscriptions.lone_dispatcher SETTINGS_JSON
Runs until killed (or for a minute at most)."""

from __future__ import annotations

import json
import sys
import threading

from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.subscriptions.dispatcher import DeliveryDispatcher

GAVE_UP = 3


def main(settings_json: str) -> int:
    hub = bootstrap(Settings(**json.loads(settings_json)))
    dispatcher = DeliveryDispatcher(hub.session_factory, hub.settings, threading.Event(), hub.subscriptions.resolve)
    stop = threading.Event()
    threading.Timer(60, stop.set).start()  # the test kills us long before
    print("dispatching", flush=True)
    dispatcher.run_forever(stop)
    return GAVE_UP


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
