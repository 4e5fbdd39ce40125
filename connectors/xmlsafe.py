"""The one hardened XML parse used for every upstream XML body (SOAP responses, faults, mappings).

Upstream responses are untrusted (OWASP API10). lxml is asked not to resolve entities, not to touch the
network, not to load DTDs and to keep its huge-tree limits; the size is capped before parsing; and any
document that carries a DOCTYPE is refused outright, because no contract we speak needs one and entity
tricks (billion laughs, external entities) all need one.
"""

from __future__ import annotations

from lxml import etree

__all__ = ["DEFAULT_MAX_XML_BYTES", "UnsafeXmlError", "XmlSyntaxError", "parse_xml"]

DEFAULT_MAX_XML_BYTES = 2 * 1024 * 1024


class UnsafeXmlError(ValueError):
    """The document is too large or uses DTD/entity features we never accept."""


class XmlSyntaxError(ValueError):
    """The document is not well-formed XML."""


def _parser() -> etree.XMLParser:
    # A new parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> etree._Element:
    """Parse ``data`` or raise :class:`UnsafeXmlError` / :class:`XmlSyntaxError`."""
    if len(data) > max_bytes:
        raise UnsafeXmlError(f"XML body of {len(data)} bytes exceeds the {max_bytes} byte cap")
    # Cheap refusal before libxml2 sees anything (covers UTF-8/ASCII bodies; the docinfo check below
    # covers other encodings).
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        raise UnsafeXmlError("XML body declares a DOCTYPE or entities")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise XmlSyntaxError(f"malformed XML: {exc}") from exc
    if root is None:
        raise XmlSyntaxError("empty XML document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXmlError("XML body declares a DOCTYPE")
    for _ in root.iter(etree.Entity):
        raise UnsafeXmlError("XML body references entities")
    return root
