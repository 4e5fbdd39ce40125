"""Webhook signing secrets at rest, end to end: stored encrypted under syndication.secret_keys, and
deliveries still verify with the secret the subscriber was given (the box itself: tests/unit)."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.fernet import Fernet

from hub.subscriptions.tables import SubscriptionRow
from tests.helpers import eventually
from tests.support.subscriptions import API, Env, new_notice_id


def test_stored_secrets_are_encrypted_and_deliveries_still_verify(make_env: Callable[..., Env]) -> None:
    env = make_env(secret_keys=[Fernet.generate_key().decode()])
    receiver = env.receiver()
    sid = env.subscribe_webhook(receiver)
    given = receiver.secrets[0]
    rotated = env.client.post(f"{API}/subscriptions/{sid}/secret/rotate", headers=env.auth)
    assert rotated.status_code == 200, rotated.text
    receiver.secrets.append(rotated.json()["secret"])
    with env.hub.session_factory() as session:
        stored = session.get(SubscriptionRow, sid)
        assert stored is not None
        assert len(stored.secrets) == 2 and all("enc" in item and "secret" not in item for item in stored.secrets)
        assert given not in str(stored.secrets) and rotated.json()["secret"] not in str(stored.secrets)

    env.publisher.publish(new_notice_id(), 1)
    [delivery] = eventually(lambda: receiver.delivered(), what="a signed delivery")
    assert sorted(delivery.verified_with) == [0, 1]  # signed with the old and the new secret (overlap)
