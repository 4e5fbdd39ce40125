"""Timestamps that come from outside. Every stored instant is kept in UTC, so an aware datetime whose
UTC equivalent falls outside years 1 to 9999 (``0001-01-01T00:00:00+00:01`` is still year 0 in UTC) cannot
be stored or compared with a stored one: it is refused at the way in, naming the field, instead of
failing in the database driver."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

__all__ = ["UtcTimestamp"]


def _representable_in_utc(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must lie between years 1 and 9999 once converted to UTC") from None
    return value


# An aware datetime that has a UTC equivalent (what a UTC column and every comparison need).
UtcTimestamp = Annotated[AwareDatetime, AfterValidator(_representable_in_utc)]
