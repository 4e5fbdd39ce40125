"""Errors the service layer raises; the API turns them into RFC 9457 problem details."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    title = "Bad request"


class NotFound(ServiceError):
    status = 404
    title = "Not found"

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} not found")
        self.what = what
        self.ident = ident


class Rejected(ServiceError):
    """Input that is well-formed but not acceptable; names the field."""

    status = 422
    title = "Unprocessable content"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RejectedFields(ServiceError):
    """Several fields at once, each with its message: ``[("requirements.2.scheme", "unknown scheme")]``."""

    status = 422
    title = "Unprocessable content"
    slug = "rejected"

    def __init__(self, problems: list[tuple[str, str]], prefix: str = "") -> None:
        self.problems = [(f"{prefix}.{field}" if prefix else field, message) for field, message in problems]
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.problems))


class Conflict(ServiceError):
    status = 409
    title = "Conflict"
