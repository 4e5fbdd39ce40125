"""The SOAP twins parse requests with the connectors' one hardened parser, so they refuse exactly
what the hub refuses."""

from __future__ import annotations

import pytest

from connectors.sandbox.soap import SOAP_ENV, UntrustedXmlError, parse_untrusted_xml, soap_body_child

ENVELOPE = f'<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><op/></e:Body></e:Envelope>'


def test_a_plain_envelope_parses() -> None:
    assert soap_body_child(parse_untrusted_xml(ENVELOPE.encode(), 1024)).tag == "op"


@pytest.mark.parametrize("body", [
    b"",
    ENVELOPE.encode()[:-5],
    b'<!DOCTYPE e [<!ENTITY x "y">]>' + ENVELOPE.encode(),
    # A DOCTYPE in UTF-16 slips past a byte search; the parsed document's own DTD check catches it.
    ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE e [<!ENTITY x "y">]>' + ENVELOPE).encode("utf-16"),
    ENVELOPE.encode() + b" " * 2048,
], ids=["empty", "truncated", "dtd", "utf16-dtd", "oversized"])
def test_hostile_or_broken_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(UntrustedXmlError):
        parse_untrusted_xml(body, 1024)
