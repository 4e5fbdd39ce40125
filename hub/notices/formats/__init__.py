"""Inbound notice formats behind one registry: the import command names a format, the format turns its
document into items, and one handler stores them (``hub.notices.handlers.import_notices``).

Adding a format (eForms, another national portal) is a module here with a :class:`NoticeFormat` and,
for most, a mapping file on the connectors' engine (see :mod:`hub.notices.formats.mapped`).
"""

from __future__ import annotations

from hub.notices.formats.base import ContentTooLarge, DocumentError, ImportedNotice, NoticeFormat
from hub.notices.formats.csv import CsvFormat
from hub.notices.formats.ocds import OcdsFormat
from hub.notices.formats.pps import PpsFormat

__all__ = ["FORMATS", "ContentTooLarge", "DocumentError", "ImportedNotice", "NoticeFormat", "check_formats"]

FORMATS: dict[str, NoticeFormat] = {fmt.name: fmt for fmt in (PpsFormat(), CsvFormat(), OcdsFormat())}


def check_formats() -> list[str]:
    """Load and check every format's mapping at start-up: a broken file stops the hub with the file
    and the field named, instead of rejecting every item of the first import."""
    for fmt in FORMATS.values():
        fmt.check()
    return list(FORMATS)
