"""Handlers of notices, their versions and the changes feed (issue 4)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hub.domain.messages import Command, Event

COMMAND_HANDLERS: dict[type[Command], Callable[..., Any]] = {}
EVENT_HANDLERS: dict[type[Event], Sequence[Callable[..., Any]]] = {}
