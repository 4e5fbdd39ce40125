"""Named value transforms for mapping files, e.g. ``transform: [strip, empty_as_null, date_yyyymmdd]``.

A closed set, so a typo in a mapping file is a start-up error instead of silently wrong data, and so
a mapping file can never run code. Parameterised transforms take one argument after a colon
(``date_format:%d.%m.%Y``, ``null_if:---``, ``split:,``, ``local_datetime:+09:00``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["TRANSFORMS", "TransformError", "compile_transform"]


class TransformError(ValueError):
    """A value could not be transformed (upstream sent something the mapping did not expect)."""


Transform = Callable[[Any], Any]
_XSD_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})?$")
_TRUE = {"true", "1", "y", "yes", "t"}
_FALSE = {"false", "0", "n", "no", "f"}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def to_date(value: Any) -> date:
    """ISO date, xsd:date with a zone offset (VIES ``2022-09-04+02:00``) or an ISO datetime."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _str(value).strip()
    match = _XSD_DATE.match(text)
    if match:
        return date.fromisoformat(match.group(1))
    try:
        return to_datetime(text).date()
    except TransformError:
        raise TransformError(f"not a date: {text[:40]!r}") from None


def to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = _str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TransformError(f"not a datetime: {text[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _yyyymmdd(value: Any) -> date:
    text = _str(value).strip()
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise TransformError(f"not a YYYYMMDD date: {text[:40]!r}") from None


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise TransformError("boolean is not a number")
    if isinstance(value, int | float):
        return value
    text = _str(value).strip().replace(",", "")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise TransformError(f"not a number: {text[:40]!r}") from None


def _int(value: Any) -> int:
    number = _number(value)
    if isinstance(number, float) and not number.is_integer():
        raise TransformError(f"not an integer: {number}")
    return int(number)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TransformError(f"not a boolean: {text[:40]!r}")


def _empty_as_null(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, list | dict) and not value:
        return None
    return value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _date_format(fmt: str) -> Transform:
    def parse(value: Any) -> date:
        text = _str(value).strip()
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            raise TransformError(f"{text[:40]!r} does not match {fmt!r}") from None

    return parse


_LOCAL_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y/%m/%d %H:%M:%S",
                  "%Y-%m-%d", "%Y%m%d")


def _local_datetime(offset: str) -> Transform:
    """A datetime in a source's local time (``2025-03-14 10:00:00``, ``202503141000`` …) at a fixed
    UTC offset such as ``+09:00``; a value that states its own offset keeps it; blank is absent."""
    try:
        zone = datetime.strptime(offset, "%z").tzinfo
    except ValueError:
        raise KeyError(f"local_datetime needs a UTC offset such as +09:00, not {offset!r}") from None
    assert isinstance(zone, timezone)

    def parse(value: Any) -> datetime | None:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=zone)
        text = _str(value).strip()
        if not text:
            return None
        for pattern in _LOCAL_FORMATS:
            try:
                return datetime.strptime(text, pattern).replace(tzinfo=zone)
            except ValueError:
                continue
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise TransformError(f"unreadable date {text[:40]!r} (expected YYYY-MM-DD HH:MM:SS or YYYYMMDDHHMM)") \
                from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)

    return parse


def _decimal(value: Any) -> Decimal | None:
    """An exact amount (``1,250,000`` → 1250000); blank is absent."""
    if isinstance(value, bool):
        raise TransformError("boolean is not an amount")
    text = _str(value).strip().replace(",", "")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise TransformError(f"expected an amount, got {text[:40]!r}")
    return amount


def _truncate(length: str) -> Transform:
    if not length.isdigit() or int(length) == 0:
        raise KeyError(f"truncate needs a positive length, not {length!r}")
    return lambda value: _str(value)[: int(length)]


def _split_any(separators: str) -> Transform:
    pattern = re.compile("|".join(re.escape(c) for c in separators))
    return lambda value: [part.strip() for part in pattern.split(_str(value)) if part.strip()]


def _null_if(marker: str) -> Transform:
    return lambda value: None if isinstance(value, str) and value.strip() == marker else value


def _split(sep: str) -> Transform:
    return lambda value: [part.strip() for part in _str(value).split(sep) if part.strip()]


def _join(sep: str) -> Transform:
    return lambda value: sep.join(_str(v) for v in _as_list(value) if v is not None)


# Scalar transforms apply to each element of a list value; list transforms see the whole list.
TRANSFORMS: dict[str, Transform] = {
    "strip": lambda v: _str(v).strip(),
    "upper": lambda v: _str(v).upper(),
    "lower": lambda v: _str(v).lower(),
    "string": _str,
    "int": _int,
    "number": _number,
    "boolean": _boolean,
    "date": to_date,
    "date_yyyymmdd": _yyyymmdd,
    "datetime": to_datetime,
    "decimal": _decimal,
    "digits": lambda v: re.sub(r"\D", "", _str(v)),
}
LIST_TRANSFORMS: dict[str, Transform] = {
    "empty_as_null": _empty_as_null,
    "list": lambda v: [x for x in _as_list(v) if x is not None],
    "first": _first,
}
PARAMETERISED: dict[str, Callable[[str], Transform]] = {
    "date_format": _date_format,
    "null_if": _null_if,
    "local_datetime": _local_datetime,
    "truncate": _truncate,
}
PARAMETERISED_LIST: dict[str, Callable[[str], Transform]] = {"split": _split, "split_any": _split_any, "join": _join}


def compile_transform(spec: str) -> Transform:
    """Turn ``name`` or ``name:arg`` into a callable that passes ``None`` through unchanged."""
    name, _, arg = spec.partition(":")
    elementwise = True
    if name in TRANSFORMS and not arg:
        func = TRANSFORMS[name]
    elif name in LIST_TRANSFORMS and not arg:
        func, elementwise = LIST_TRANSFORMS[name], False
    elif name in PARAMETERISED and arg:
        func = PARAMETERISED[name](arg)
    elif name in PARAMETERISED_LIST and arg:
        func, elementwise = PARAMETERISED_LIST[name](arg), False
    else:
        known = sorted([*TRANSFORMS, *LIST_TRANSFORMS, *(f"{p}:<arg>" for p in (*PARAMETERISED, *PARAMETERISED_LIST))])
        raise KeyError(f"unknown transform {spec!r} (known: {', '.join(known)})")

    def apply(value: Any) -> Any:
        if value is None:
            return None
        if elementwise and isinstance(value, list):
            return [func(v) for v in value if v is not None]
        return func(value)

    return apply


def end_of_day(day: date) -> datetime:
    """A date-valued expiry means "valid through that day": the exclusive instant is the next midnight UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def start_of_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
