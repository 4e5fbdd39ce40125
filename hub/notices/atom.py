"""Atom (RFC 4287) feed of notice versions, built with lxml.

One entry per version, so a reader sees amendments and cancellations as news, not as silent edits.
Entry ids are RFC 4151 tag URIs that never change for a version (``tag:<authority>,<date>:notices/<id>/
versions/<n>``): readers de-duplicate by them. ``updated`` is the version's publication time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree

from hub.spine.text import xml_safe

__all__ = ["ATOM_CONTENT_TYPE", "ATOM_NS", "AtomEntry", "AtomLink", "build_feed", "entry_for_version", "tag_uri"]

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"
_SUMMARY_CHARS = 2000
_TITLE_PREFIX = {"original": "", "amendment": "[Amended] ", "cancellation": "[Cancelled] "}


@dataclass(frozen=True)
class AtomLink:
    href: str
    rel: str = "alternate"
    type: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class AtomEntry:
    id: str
    title: str
    updated: datetime
    published: datetime | None = None
    summary: str | None = None
    author: str | None = None
    links: Sequence[AtomLink] = ()
    categories: Sequence[tuple[str, str | None, str | None]] = field(default=())  # (term, scheme, label)


def tag_uri(authority: str, date: str, specific: str) -> str:
    return f"tag:{authority},{date}:{specific}"


def _text(parent: Any, name: str, value: str, **attrs: str) -> Any:
    """Text and attributes pass through ``xml_safe``: stored text written before control characters were
    refused must not make lxml raise, and one entry must never take the whole feed down."""
    element = etree.SubElement(parent, f"{{{ATOM_NS}}}{name}", **_safe(attrs))
    element.text = xml_safe(value)
    return element


def _safe(attrs: Mapping[str, str]) -> dict[str, str]:
    return {key: xml_safe(value) for key, value in attrs.items()}


def _link(parent: Any, link: AtomLink) -> None:
    attrs = {"href": link.href, "rel": link.rel}
    if link.type:
        attrs["type"] = link.type
    if link.title:
        attrs["title"] = link.title
    etree.SubElement(parent, f"{{{ATOM_NS}}}link", **_safe(attrs))


def build_feed(
    *,
    feed_id: str,
    title: str,
    updated: datetime,
    self_url: str,
    author: str,
    entries: Sequence[AtomEntry],
    alternate_url: str | None = None,
) -> bytes:
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    _text(feed, "id", feed_id)
    _text(feed, "title", title)
    _text(feed, "updated", updated.isoformat())
    _link(feed, AtomLink(self_url, rel="self", type="application/atom+xml"))
    if alternate_url:
        _link(feed, AtomLink(alternate_url, rel="alternate", type="application/json"))
    _text(etree.SubElement(feed, f"{{{ATOM_NS}}}author"), "name", author)
    _text(feed, "generator", "g2b-hub")
    for entry in entries:
        element = etree.SubElement(feed, f"{{{ATOM_NS}}}entry")
        _text(element, "id", entry.id)
        _text(element, "title", entry.title)
        _text(element, "updated", entry.updated.isoformat())
        if entry.published is not None:
            _text(element, "published", entry.published.isoformat())
        if entry.author:
            _text(etree.SubElement(element, f"{{{ATOM_NS}}}author"), "name", entry.author)
        for link in entry.links:
            _link(element, link)
        for term, scheme, label in entry.categories:
            attrs = {"term": term}
            if scheme:
                attrs["scheme"] = scheme
            if label:
                attrs["label"] = label
            etree.SubElement(element, f"{{{ATOM_NS}}}category", **_safe(attrs))
        if entry.summary:
            _text(element, "summary", entry.summary, type="text")
    return bytes(etree.tostring(feed, xml_declaration=True, encoding="utf-8"))


def entry_for_version(
    *,
    notice_id: str,
    number: int,
    kind: str,
    content: Mapping[str, Any],
    published_at: datetime,
    first_published_at: datetime,
    reason: str | None,
    author: str | None,
    links: Mapping[str, str],
    authority: str,
    tag_date: str,
) -> AtomEntry:
    """``links``: ``json`` (the version), ``notice``, ``ocds_releases``, ``ocds_record`` — absolute URLs."""
    def scheme(name: str) -> str:
        return tag_uri(authority, tag_date, f"schemes/{name}")

    categories: list[tuple[str, str | None, str | None]] = [
        (str(content["category"]), scheme("category"), None),
        (kind, scheme("version-kind"), None),
    ]
    if region := content.get("delivery_region"):
        categories.append((str(region), scheme("region"), None))
    for item in content.get("classifications", ()):
        categories.append((str(item["code"]), scheme(str(item["scheme"])), str(item["scheme"])))
    lines = []
    if reason:
        lines.append(f"{kind.capitalize()}: {reason}")
    if content.get("description"):
        lines.append(str(content["description"]))
    deadline = (content.get("dates") or {}).get("submission_deadline")
    if deadline:
        lines.append(f"Submission deadline: {deadline}")
    summary = "\n\n".join(lines)
    if len(summary) > _SUMMARY_CHARS:
        summary = summary[: _SUMMARY_CHARS - 1] + "…"
    entry_links = [AtomLink(links["json"], rel="alternate", type="application/json", title=f"version {number}")]
    entry_links += [
        AtomLink(links[name], rel="related", type="application/json", title=title)
        for name, title in (("notice", "notice"), ("ocds_releases", "OCDS release package"),
                            ("ocds_record", "OCDS record package"))
        if name in links
    ]
    return AtomEntry(
        id=tag_uri(authority, tag_date, f"notices/{notice_id}/versions/{number}"),
        title=_TITLE_PREFIX.get(kind, "") + str(content.get("title", "")),
        updated=published_at,
        published=first_published_at,
        summary=summary or None,
        author=author,
        links=entry_links,
        categories=categories,
    )
