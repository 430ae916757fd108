"""Untrusted XML is refused before anything is built (PROTOCOL §2 safety rules)."""

from __future__ import annotations

import pytest

from stunlike_tracker.ppsp import (
    PpspError,
    parse_message_untrusted,
    parse_request_untrusted,
    parse_response_untrusted,
)
from stunlike_tracker.ppsp.messages import Method
from stunlike_tracker.ppsp.xmlsafe import MAX_DEPTH, MAX_ELEMENTS, parse_tree

HEAD = b"<Request>CONNECT</Request><PeerID>p1</PeerID><TransactionID>t1</TransactionID>"


def doc(body: bytes = HEAD, *, prolog: bytes = b"") -> bytes:
    return prolog + b'<PPSPTrackerProtocol version="1.0">' + body + b"</PPSPTrackerProtocol>"


def refused(data: bytes, **kwargs: int) -> PpspError:
    with pytest.raises(PpspError) as info:
        parse_request_untrusted(data, **kwargs)
    assert info.value.status == 400
    return info.value


def test_plain_document_parses() -> None:
    r = parse_request_untrusted(doc())
    assert (r.method, r.peer_id, r.transaction_id) == (Method.CONNECT, "p1", "t1")


def test_xml_declaration_and_utf8_bom_accepted() -> None:
    prolog = b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    assert parse_request_untrusted(doc(prolog=prolog)).peer_id == "p1"
    assert parse_request_untrusted(doc(prolog=b'<?xml version="1.0" encoding="utf-8"?>'))


# -- size ----------------------------------------------------------------------


def test_size_limit_is_inclusive() -> None:
    data = doc()
    assert parse_request_untrusted(data, max_size=len(data)).peer_id == "p1"
    err = refused(data, max_size=len(data) - 1)
    assert err.reason == "Message Too Large"


def test_oversize_request_is_still_answerable_when_ids_come_first() -> None:
    # PROTOCOL §4: larger than 2,048 bytes -> 400, and the IDs at the start of
    # the document are still read so the peer gets its answer.
    data = doc(HEAD + b"<Padding>" + b"x" * 3000 + b"</Padding>")
    err = refused(data)
    assert err.reason == "Message Too Large"
    assert err.transaction_id == "t1" and err.peer_id == "p1" and err.answerable


def test_oversize_request_with_ids_beyond_the_limit_is_not_answerable() -> None:
    data = doc(b"<Padding>" + b"x" * 3000 + b"</Padding>" + HEAD)
    err = refused(data)
    assert err.reason == "Message Too Large"
    assert not err.answerable and err.peer_id is None


def test_default_limits() -> None:
    big = doc(HEAD + b"<Padding>" + b"x" * 2100 + b"</Padding>")
    refused(big)  # requests: 2,048 bytes by default (PROTOCOL §4)
    response = b'<PPSPTrackerProtocol version="1.0"><Response status="200"/>'
    response += b"<TransactionID>t</TransactionID><P>" + b"x" * 60000
    response += b"</P></PPSPTrackerProtocol>"
    assert parse_response_untrusted(response).status == 200
    with pytest.raises(PpspError, match="Too Large"):
        parse_response_untrusted(response + b" " * 6000)


# -- DTD, entities, processing instructions ---------------------------------------


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<PPSPTrackerProtocol version="1.0"><Request>CONNECT</Request>
<PeerID>&lol9;</PeerID><TransactionID>t1</TransactionID></PPSPTrackerProtocol>"""


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(doc(prolog=b"<!DOCTYPE PPSPTrackerProtocol>"), id="bare-doctype"),
        pytest.param(
            doc(
                HEAD.replace(b"p1", b"&xxe;"),
                prolog=b'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
            ),
            id="external-entity",
        ),
        pytest.param(
            doc(prolog=b'<!DOCTYPE r SYSTEM "http://example.invalid/x.dtd">'), id="external-dtd"
        ),
        pytest.param(
            doc(prolog=b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://example.invalid/p">%p;]>'),
            id="parameter-entity",
        ),
    ],
)
def test_dtd_is_refused(data: bytes) -> None:
    err = refused(data)
    assert err.reason == "DTD Not Allowed"
    assert not err.answerable  # nothing was read before the DTD


def test_undeclared_entity_is_malformed() -> None:
    err = refused(doc(HEAD.replace(b"p1", b"&xxe;")))
    assert err.reason == "Malformed XML"


def test_predefined_and_character_references_are_text() -> None:
    r = parse_request_untrusted(doc(HEAD.replace(b"p1", b"a&amp;b&#x3C;&#62;&quot;")))
    assert r.peer_id == 'a&b<>"'


@pytest.mark.parametrize(
    "data",
    [
        doc(prolog=b'<?xml-stylesheet href="x.xsl"?>'),
        doc(HEAD + b"<?php echo 1; ?>"),
    ],
)
def test_processing_instructions_are_refused(data: bytes) -> None:
    err = refused(data)
    assert err.reason == "Processing Instruction Not Allowed"


def test_processing_instruction_after_the_ids_keeps_them() -> None:
    err = refused(doc(HEAD + b"<?pi x?>"))
    assert (err.transaction_id, err.peer_id) == ("t1", "p1")


def test_comments_and_cdata_are_fine() -> None:
    body = HEAD.replace(b"p1", b"<![CDATA[p<1>]]>") + b"<!-- a comment -->"
    assert parse_request_untrusted(doc(body)).peer_id == "p<1>"


# -- encodings -------------------------------------------------------------------


def test_invalid_utf8_is_refused() -> None:
    err = refused(doc(HEAD.replace(b"p1", b"p\xff")))
    assert err.reason == "Not UTF-8"


def test_utf16_is_refused() -> None:
    err = refused(doc().decode().encode("utf-16"))
    assert err.reason == "Not UTF-8"


def test_declared_foreign_encoding_is_refused() -> None:
    err = refused(doc(prolog=b'<?xml version="1.0" encoding="ISO-8859-1"?>'))
    assert err.reason == "Not UTF-8"


def test_nul_byte_is_malformed() -> None:
    assert refused(doc(HEAD.replace(b"p1", b"p\x001"))).reason == "Malformed XML"


# -- depth and element count ---------------------------------------------------------


def nested(depth: int) -> bytes:
    # The root is depth 1; pad with unknown elements below it.
    inner = depth - 1
    return doc(HEAD + b"<X>" * inner + b"</X>" * inner)


def test_depth_limit() -> None:
    assert MAX_DEPTH == 8
    assert parse_request_untrusted(nested(MAX_DEPTH)).peer_id == "p1"
    err = refused(nested(MAX_DEPTH + 1))
    assert err.reason == "Too Deep"
    assert err.answerable  # the IDs were complete before the fault


def test_deep_nesting_does_not_recurse() -> None:
    err = refused(doc(b"<X>" * 100_000), max_size=10**6)
    assert err.reason == "Too Deep"


def test_element_limit() -> None:
    assert MAX_ELEMENTS == 256
    # root + 3 header elements + padding
    ok = doc(HEAD + b"<X/>" * (MAX_ELEMENTS - 4))
    assert parse_request_untrusted(ok, max_size=10_000).peer_id == "p1"
    err = refused(doc(HEAD + b"<X/>" * (MAX_ELEMENTS - 3)), max_size=10_000)
    assert err.reason == "Too Many Elements"
    assert (err.transaction_id, err.peer_id) == ("t1", "p1")


# -- names -----------------------------------------------------------------------------


def test_namespaces_are_ignored() -> None:
    data = (
        b'<p:PPSPTrackerProtocol xmlns:p="urn:x" xmlns="urn:y" p:version="1.0">'
        b"<p:Request>JOIN</p:Request><PeerID>p1</PeerID><q:TransactionID xmlns:q='urn:z'>t1"
        b"</q:TransactionID><SwarmID>s</SwarmID></p:PPSPTrackerProtocol>"
    )
    r = parse_request_untrusted(data)
    assert (r.method, r.peer_id, r.transaction_id, r.swarm_id) == (Method.JOIN, "p1", "t1", "s")


def test_unbound_prefix_is_malformed() -> None:
    assert refused(doc(HEAD + b"<z:X/>")).reason == "Malformed XML"


def test_same_local_attribute_twice_is_refused() -> None:
    data = doc(HEAD, prolog=b"").replace(
        b'version="1.0"', b'xmlns:a="urn:a" xmlns:b="urn:b" a:version="1.0" b:version="1.0"'
    )
    assert refused(data).reason == "Duplicate Attribute"


def test_unknown_elements_and_attributes_are_ignored() -> None:
    body = b'<Request extra="1">CONNECT</Request><Foo><Bar/></Foo><PeerID x="y">p1</PeerID>'
    body += b"<TransactionID>t1</TransactionID>"
    assert parse_request_untrusted(doc(body)).peer_id == "p1"


def test_children_in_any_order() -> None:
    body = b"<TransactionID>t1</TransactionID><PeerID>p1</PeerID><Request>CONNECT</Request>"
    assert parse_request_untrusted(doc(body)).method is Method.CONNECT


# -- not XML at all ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"   ", b"garbage", b"<", b"<PPSPTrackerProtocol", b"\x16\xfe\xfd", b"<a></b>"],
)
def test_not_xml(data: bytes) -> None:
    err = refused(data)
    assert not err.answerable


def test_truncated_document_keeps_the_complete_ids() -> None:
    data = doc()[:-10]
    err = refused(data)
    assert err.reason == "Malformed XML"
    assert (err.transaction_id, err.peer_id) == ("t1", "p1")


def test_an_incomplete_id_is_not_salvaged() -> None:
    data = doc()
    cut = data[: data.index(b"t1") + 1]
    err = refused(cut)
    assert err.transaction_id is None and err.peer_id == "p1"


@pytest.mark.parametrize("data", ["text", 12, None, [b"x"]])
def test_non_bytes_input_is_a_ppsp_error(data: object) -> None:
    with pytest.raises(PpspError):
        parse_message_untrusted(data)  # type: ignore[arg-type]


def test_bytearray_and_memoryview_are_accepted() -> None:
    assert parse_request_untrusted(bytearray(doc())).peer_id == "p1"  # type: ignore[arg-type]
    assert parse_request_untrusted(memoryview(doc())).peer_id == "p1"  # type: ignore[arg-type]


def test_parse_tree_shape() -> None:
    root = parse_tree(doc(HEAD + b"<A k='v'>x<B/>y</A>"), max_size=2048)
    assert root.name == "PPSPTrackerProtocol" and root.closed
    a = root.children[-1]
    assert (a.name, a.attrs, a.text, [c.name for c in a.children]) == ("A", {"k": "v"}, "xy", ["B"])
