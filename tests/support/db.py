"""Reading a hub's database from a test, to check what the code under test committed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hub.bootstrap import Hub

__all__ = ["count"]


def count(hub: Hub, model: Any, *where: Any) -> int:
    """Rows of ``model`` matching ``where``, read in a fresh session (so only committed rows count)."""
    with hub.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)
