"""Where subscriptions read a notice version's content: a narrow protocol, so matching does not
depend on how the notices flow stores notices (and tests can hand in a fake)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["NoticeReader", "NoticeUnavailable"]


class NoticeUnavailable(LookupError):
    """The version is not (yet) readable; the consumer retries the event later."""


class NoticeReader(Protocol):
    def get_version(self, notice_id: str, version: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(unified notice content as JSON — None for a cancellation without content —, metadata)."""
        ...
