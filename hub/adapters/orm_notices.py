"""Tables of notices, their versions and the changes feed (issue 4).

Tables use ``metadata``/``Base`` from :mod:`hub.adapters.orm`; domain classes are mapped in
:func:`start_mappers`, which :func:`hub.adapters.orm.start_mappers` calls once per process."""

from __future__ import annotations


def start_mappers() -> None:
    """Map this slice's domain classes imperatively (none yet)."""
