"""Errors the flows raise, by kind of failure. They say nothing of HTTP: the API maps each kind to a
status and an RFC 9457 problem (``hub.api.problems``), and the CLI to an exit message."""

from __future__ import annotations

__all__ = ["Conflict", "NotFound", "Rejected", "RejectedFields", "ServiceError", "TooLarge", "Unacceptable"]


class ServiceError(Exception):
    """A request the hub understood and refuses. ``title`` is the short human label of the kind;
    ``slug`` (optional) the stable machine name clients may switch on."""

    title = "Bad request"


class NotFound(ServiceError):
    title = "Not found"

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} not found")
        self.what = what
        self.ident = ident


class Unacceptable(ServiceError):
    """Well-formed but not acceptable as a whole (no single field to name)."""

    title = "Unprocessable content"


class Rejected(Unacceptable):
    """Input that is well-formed but not acceptable; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RejectedFields(Unacceptable):
    """Several fields at once, each with its message: ``[("requirements.2.scheme", "unknown scheme")]``."""

    slug = "rejected"

    def __init__(self, problems: list[tuple[str, str]], prefix: str = "") -> None:
        self.problems = [(f"{prefix}.{field}" if prefix else field, message) for field, message in problems]
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.problems))


class Conflict(ServiceError):
    title = "Conflict"


class TooLarge(ServiceError):
    """More than the hub accepts in one request (rows, items, bytes)."""

    title = "Content too large"
