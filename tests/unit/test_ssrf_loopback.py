"""``syndication.allow_loopback_targets`` (the demo's setting) accepts loopback webhook targets and
nothing else that is not global; off, the default, refuses them as before."""

from __future__ import annotations

import logging

import pytest

from hub.cli.demo_recipe import WebhookRecipe
from hub.config import Settings
from hub.subscriptions.config import SyndicationSettings
from hub.subscriptions.ssrf import UnsafeTarget, check_target


def resolves_to(*addresses: str):  # type: ignore[no-untyped-def]
    return lambda host, port: list(addresses)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_refused_by_default_and_accepted_when_allowed(address: str) -> None:
    with pytest.raises(UnsafeTarget, match="private or reserved"):
        check_target("http://receiver.test:8901/", resolves_to(address))
    assert check_target("http://receiver.test:8901/", resolves_to(address), allow_loopback=True) == [address]


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.1", "169.254.169.254", "fd00::1", "0.0.0.0",
                                     "2002:7f00:1::"])
def test_allowing_loopback_allows_no_other_private_address(address: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_target("http://receiver.test/", resolves_to(address), allow_loopback=True)
    with pytest.raises(UnsafeTarget):  # a name that resolves to loopback and to a private address
        check_target("http://receiver.test/", resolves_to("127.0.0.1", address), allow_loopback=True)


def test_a_global_address_stays_accepted() -> None:
    assert check_target("https://hooks.example/", resolves_to("8.8.8.8"), allow_loopback=True) == ["8.8.8.8"]


def test_off_by_default_and_on_in_the_demo(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert SyndicationSettings().allow_loopback_targets is False
    assert Settings().syndication.allow_loopback_targets is False
    demo = WebhookRecipe([]).configure(Settings(), tmp_path)
    assert demo.syndication.allow_loopback_targets is True
    assert demo.syndication.allow_private_targets is False


def test_the_hub_warns_at_start_when_loopback_targets_are_allowed(caplog: pytest.LogCaptureFixture) -> None:
    from hub.bootstrap import check_configuration

    sqlite = {"database": {"url": "sqlite:///unused.db"}}
    with caplog.at_level(logging.WARNING, logger="hub.bootstrap"):
        check_configuration(Settings(**sqlite), sources=False)
    assert "allow_loopback_targets" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="hub.bootstrap"):
        check_configuration(Settings(**sqlite, syndication={"allow_loopback_targets": True}), sources=False)
    warned = [r for r in caplog.records if "allow_loopback_targets" in r.getMessage()]
    assert [r.levelno for r in warned] == [logging.WARNING]
    assert "never a deployment" in warned[0].getMessage()
