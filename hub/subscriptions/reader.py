"""Where syndication reads a notice version's content: a narrow protocol, so matching does not
depend on how the notices flow stores notices (and tests can hand in a fake)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["InMemoryNoticeReader", "NoticeReader", "NoticeUnavailable"]


class NoticeUnavailable(LookupError):
    """The version is not (yet) readable; the consumer retries the event later."""


class NoticeReader(Protocol):
    def get_version(self, notice_id: str, version: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(unified notice content as JSON — None for a cancellation without content —, metadata)."""
        ...


class InMemoryNoticeReader:
    """For tests and benches: versions put here are what matching sees."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, int], tuple[dict[str, Any] | None, dict[str, Any]]] = {}

    def put(self, notice_id: str, version: int, content: dict[str, Any] | None,
            metadata: dict[str, Any] | None = None) -> None:
        self.versions[(notice_id, version)] = (content, dict(metadata or {}))

    def get_version(self, notice_id: str, version: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        try:
            return self.versions[(notice_id, version)]
        except KeyError:
            raise NoticeUnavailable(f"notice {notice_id} version {version}") from None
