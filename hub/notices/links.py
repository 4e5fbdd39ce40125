"""Where the API serves each notice resource. Paths are kept here (not in the route modules) because
handlers put them into stored receipts and feeds put them into entries; the API mounts the notice
routes under the same prefix (``hub.api.app.API_PREFIX``)."""

from __future__ import annotations

__all__ = [
    "API_PREFIX",
    "absolute",
    "changes_feed_path",
    "notice_path",
    "ocds_feed_path",
    "ocds_record_path",
    "ocds_releases_path",
    "version_path",
]

API_PREFIX = "/api/v1"


def notice_path(notice_id: str) -> str:
    return f"{API_PREFIX}/notices/{notice_id}"


def version_path(notice_id: str, number: int) -> str:
    return f"{notice_path(notice_id)}/versions/{number}"


def ocds_releases_path(notice_id: str) -> str:
    return f"{notice_path(notice_id)}/ocds/releases"


def ocds_record_path(notice_id: str) -> str:
    return f"{notice_path(notice_id)}/ocds/record"


def changes_feed_path() -> str:
    return f"{API_PREFIX}/feeds/changes"


def ocds_feed_path() -> str:
    return f"{API_PREFIX}/ocds/releases"


def absolute(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path
