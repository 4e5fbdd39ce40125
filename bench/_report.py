"""The closing line of every benchmark: one JSON object naming the bench and the figures of the run.

    {"bench": "<name>", "figures": {"<snake_case_name_with_unit>": <number>, ...}}

Each bench prints its human-readable figures first and calls ``emit`` last, so ``tail -1`` of its
stdout is always this line."""

from __future__ import annotations

import json
import math

Figure = float | int | str | None


def emit(bench: str, figures: dict[str, Figure]) -> None:
    """Print the bench's JSON line. Floats keep 6 significant digits; NaN or infinite ones become null."""
    print(json.dumps({"bench": bench, "figures": {name: _clean(value) for name, value in figures.items()}}),
          flush=True)


def _clean(value: Figure) -> Figure:
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    return value
