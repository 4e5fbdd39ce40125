"""The delivery lease settings: scaled by ``time_scale`` like every other delay of syndication, with a
floor so that renewals can still reach the database, and a renewal interval that leaves room for one
missed renewal."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub.subscriptions.config import MIN_LEASE_S, SyndicationSettings


def test_the_defaults_free_a_dead_dispatchers_claims_within_seconds() -> None:
    config = SyndicationSettings()
    assert config.lease == 10.0 and config.lease_renewal == 3.0


def test_time_scale_compresses_the_lease_and_its_renewal_alike() -> None:
    config = SyndicationSettings(time_scale=0.05)
    assert config.lease == pytest.approx(0.5) and config.lease_renewal == pytest.approx(0.15)


def test_a_tiny_time_scale_stops_at_the_floor_keeping_the_shape() -> None:
    config = SyndicationSettings(time_scale=0.0002)
    assert config.lease == MIN_LEASE_S
    assert config.lease_renewal == pytest.approx(MIN_LEASE_S * 3 / 10)


def test_renewing_less_often_than_twice_a_lease_is_refused() -> None:
    with pytest.raises(ValidationError, match="lease_renew_s"):
        SyndicationSettings(lease_s=4, lease_renew_s=3)
