"""Webhook signing secrets at rest: encrypted under syndication.secret_keys, readable through key
rotation, refused without the key; deliveries still verify with the secret the subscriber was given."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from hub.config import Settings
from hub.subscriptions.secret_box import SecretBox, SecretsUnreadable
from hub.subscriptions.tables import SubscriptionRow
from tests.support.waiting import eventually
from tests.syndication.conftest import API, Env
from tests.syndication.support import new_notice_id


def test_sealed_secrets_open_under_any_configured_key_and_rotate() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = SecretBox([old]).seal("whsec_abc")
    assert "secret" not in sealed and "whsec_abc" not in sealed["enc"]
    assert SecretBox([new, old]).open(sealed) == "whsec_abc"  # a new key first: old secrets still read
    assert SecretBox([new]).seal("x") != SecretBox([new]).seal("x")  # fresh IV each time
    with pytest.raises(SecretsUnreadable):
        SecretBox([new]).open(sealed)
    with pytest.raises(SecretsUnreadable):
        SecretBox([]).open(sealed)
    assert SecretBox([]).seal("whsec_plain") == {"secret": "whsec_plain"}
    assert SecretBox([old]).open({"secret": "whsec_legacy"}) == "whsec_legacy"  # rows from before keys


def test_a_bad_key_is_refused_with_its_position() -> None:
    with pytest.raises(ValidationError, match=r"secret_keys\[1\] is not a Fernet key"):
        Settings(syndication={"secret_keys": [Fernet.generate_key().decode(), "short"]})


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
