"""What bootstrap builds for subscriptions: one matching index and one dispatcher wake-up per hub, the
same wake-up for the matching consumer and the dispatcher, and no subscriber queues without RabbitMQ."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hub.bootstrap import bootstrap
from hub.config import Settings
from hub.subscriptions.index_cache import IndexCache
from hub.subscriptions.services import NoSubscriberQueues
from tests.helpers import eventually
from tests.support.subscriptions import Env, new_notice_id


def test_each_hub_gets_its_own_index_and_wake_up(tmp_path: Path) -> None:
    hubs = [bootstrap(Settings(database={"url": f"sqlite:///{tmp_path / name}.db"}), migrate=True)
            for name in ("one", "two")]
    try:
        one, two = (hub.bus.dependencies for hub in hubs)
        assert one["delivery_wake"] is hubs[0].delivery_wake and two["delivery_wake"] is hubs[1].delivery_wake
        assert hubs[0].delivery_wake is not hubs[1].delivery_wake
        assert isinstance(one["subscription_index"], IndexCache)
        assert one["subscription_index"] is not two["subscription_index"]
        assert isinstance(hubs[0].subscriptions.queues, NoSubscriberQueues)
    finally:
        for hub in hubs:
            hub.close()


def test_matching_wakes_the_idle_dispatcher(make_env: Callable[..., Env]) -> None:
    """The dispatcher idles for 30 s; a delivery still goes out at once, because the matching consumer's
    commit sets the wake-up it waits on."""
    env = make_env(dispatch_interval_s=30)
    receiver = env.receiver()
    env.subscribe_webhook(receiver)
    env.publisher.publish(new_notice_id(), 1)
    eventually(receiver.delivered, timeout=10, what="a delivery well before the idle pause ends")
