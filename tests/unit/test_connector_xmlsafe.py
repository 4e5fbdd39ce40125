"""The one hardened XML parse: DOCTYPE/entities refused, size capped, malformed reported."""

from __future__ import annotations

import pytest

from connectors.xmlsafe import UnsafeXmlError, XmlSyntaxError, parse_xml


def test_plain_xml_parses() -> None:
    assert parse_xml(b"<a><b>1</b></a>").findtext("b") == "1"


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
        b'<!DOCTYPE a SYSTEM "http://127.0.0.1:9/evil.dtd"><a/>',
        b'<?xml version="1.0"?>\n<!-- c -->\n<!doctype a [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><a/>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'.encode("utf-16"),
    ],
)
def test_doctype_and_entities_are_refused(body: bytes) -> None:
    with pytest.raises((UnsafeXmlError, XmlSyntaxError)):
        parse_xml(body)


def test_utf16_doctype_is_caught_after_parsing() -> None:
    body = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a><a/>'.encode("utf-16")
    with pytest.raises(UnsafeXmlError):
        parse_xml(body)


def test_size_is_capped_before_parsing() -> None:
    with pytest.raises(UnsafeXmlError, match="cap"):
        parse_xml(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000)


def test_malformed_is_a_syntax_error() -> None:
    with pytest.raises(XmlSyntaxError):
        parse_xml(b"<a><b></a>")
