"""Hygiene for text and JSON that comes from outside: one definition of what every flow refuses.

Control characters (C0 except TAB, LF and CR; DEL; lone surrogates) carry no meaning in a notice
title or a supplier's name, cannot be written to XML 1.0 (the Atom feed) and NUL cannot be stored in a
PostgreSQL ``jsonb`` document: they are refused at the way in, naming the field. JSON members that are
stored are bounded in depth, checked without recursion before anything else walks them, so a nested
document cannot exhaust the interpreter's stack. ``xml_safe`` is the writer's half: whatever was stored
before, a feed never carries what XML cannot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "control_character_problem",
    "control_character_problems",
    "depth_problem",
    "json_depth",
    "refuse_control_characters",
    "xml_safe",
]

MAX_JSON_DEPTH = 32

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# Everything outside XML 1.0's Char production (section 2.2).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def control_character_problem(value: str) -> str | None:
    """A message naming the first control character in ``value``, else None."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    return f"control character U+{ord(found.group()):04X} is not allowed"


def refuse_control_characters(value: str) -> str:
    """A pydantic after-validator for free-text fields: the value unchanged, or ValueError."""
    if problem := control_character_problem(value):
        raise ValueError(problem)
    return value


def control_character_problems(value: object, path: str = "") -> list[tuple[str, str]]:
    """(dotted path, message) for every string (mapping keys included) holding a control character in a
    JSON-like value of dicts, lists and tuples. Iterative: the depth of ``value`` does not matter."""
    problems: list[tuple[str, str]] = []
    stack: list[tuple[str, object]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if problem := control_character_problem(item):
                problems.append((where, problem))
        elif isinstance(item, Mapping):
            for key, member in item.items():
                child = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and (problem := control_character_problem(key)):
                    problems.append((where, f"member name: {problem}"))
                stack.append((child, member))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}.{index}" if where else str(index), member) for index, member in enumerate(item))
    return sorted(problems)


def json_depth(value: Any, stop_above: int | None = None) -> int:
    """Nesting depth of a JSON-like value (a scalar is 0, ``{}`` and ``[]`` are 1), without recursion;
    the walk ends as soon as the depth exceeds ``stop_above``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            members: Any = item.values()
        elif isinstance(item, list | tuple):
            members = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if stop_above is not None and deepest > stop_above:
            return deepest
        stack.extend((member, depth) for member in members)
    return deepest


def depth_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    if json_depth(value, stop_above=max_depth) > max_depth:
        return f"nested more than {max_depth} levels deep"
    return None


def xml_safe(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry (for writers of stored text)."""
    return _NOT_XML.sub("", value)
