"""Money leaves the API as a decimal in a JSON string, the way the content holds it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hub.notices.queries import decimal_text


@pytest.mark.parametrize(
    ("stored", "text"),
    [
        (1250000000.0, "1250000000"),
        (1500000.5, "1500000.5"),
        (0.0, "0"),
        (1e21, "1000000000000000000000"),
        (84500000.25, "84500000.25"),
        (Decimal("1250000000.00"), "1250000000"),
        (Decimal("0.10"), "0.1"),
    ],
)
def test_amounts_are_plain_decimal_strings(stored: float | Decimal, text: str) -> None:
    assert decimal_text(stored) == text
