"""Databases for tests and benches: a throw-away PostgreSQL database, and reading what the code under test
committed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from hub.bootstrap import Hub

__all__ = ["count", "throwaway_database"]


@contextmanager
def throwaway_database(server_url: str, prefix: str = "g2bhub_t") -> Iterator[str]:
    """A fresh database on the server of ``server_url`` (whose own database is only connected to),
    dropped afterwards, so runs never see each other's rows."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count(hub: Hub, model: Any, *where: Any) -> int:
    """Rows of ``model`` matching ``where``, read in a fresh session (so only committed rows count)."""
    with hub.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)
