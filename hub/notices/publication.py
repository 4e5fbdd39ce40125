"""Settings of open publication (OCDS identity, feed sizes, upload caps).

They live under ``syndication.publication`` in the configuration (``settings.syndication.publication``;
the ``syndication`` section is shared with push delivery), e.g.::

    syndication:
      publication:
        ocid_prefix: ocds-abc123     # the prefix registered with the Open Contracting Partnership
        publisher_name: Public Procurement Service
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PublicationSettings"]


class PublicationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ocid_prefix: str = Field("ocds-g2bhub", pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{2,60}$")
    publisher_name: str = "g2b-hub"
    publisher_uri: str | None = None
    publisher_scheme: str | None = None
    publisher_uid: str | None = None
    # RFC 4151 tag URIs need an authority the publisher controls and a date it controlled it on.
    tag_authority: str | None = None
    tag_date: str = Field("2025", pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")
    page_size: int = Field(50, ge=1, le=1000)
    max_page_size: int = Field(200, ge=1, le=5000)
    feed_entries: int = Field(50, ge=1, le=1000)
    csv_max_rows: int = Field(1000, ge=1, le=100_000)
    csv_max_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # One cell (a description, usually); a longer one refuses the upload naming its row and column.
    csv_max_field_chars: int = Field(10_000, ge=100, le=1_000_000)
    pps_max_items: int = Field(1000, ge=1, le=100_000)
    # An Idempotency-Key is remembered this long; a retry after that is a new request.
    idempotency_ttl_h: float = Field(48.0, gt=0, le=24 * 365)
    # At most this many unexpired keys per organisation: a request with a new key past it is refused
    # (409, naming Idempotency-Key) before anything is stored; the same request without a key, or a
    # replay of a remembered key, still works.
    idempotency_max_keys_per_org: int = Field(10_000, ge=1, le=10_000_000)
    # Public reads and feeds say ``Cache-Control: public, max-age=<this>, must-revalidate``: a CDN or a
    # proxy may answer them this long, then revalidates with If-None-Match (a 304 is one indexed read).
    cache_max_age_s: int = Field(5, ge=0, le=86_400)

    def publisher(self) -> dict[str, Any]:
        found = {"name": self.publisher_name, "uri": self.publisher_uri, "scheme": self.publisher_scheme,
                 "uid": self.publisher_uid}
        return {key: value for key, value in found.items() if value}

    def authority(self, base_url: str) -> str:
        """Tag authority: configured, else the public host name (stable as long as the host is)."""
        return self.tag_authority or (urlsplit(base_url).hostname or "localhost")

    def clamp(self, limit: int | None) -> int:
        """A requested page size, capped: asking for more than the maximum is not an error."""
        return self.page_size if limit is None else max(1, min(limit, self.max_page_size))

