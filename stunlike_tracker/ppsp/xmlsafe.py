"""Bounded, DTD-free XML parsing of untrusted bytes into a small tree.

PROTOCOL §2: "XML is untrusted input: no DTD, no entities, no external
anything; cap size (datagram), depth and element count before building
objects." This module is the only place that touches ``xml.parsers.expat``:

* the size is checked before expat sees a byte;
* the bytes must be strict UTF-8, and an XML declaration naming another
  encoding is refused (expat is also told to read UTF-8 whatever the
  document says);
* any DOCTYPE, entity, notation, element/attribute-list declaration,
  external entity reference or processing instruction aborts the parse
  from inside its expat handler, so nothing of it is ever expanded;
* depth and element count are checked in the start-element handler, before
  the element's node exists;
* names are reduced to their local part (namespaces are ignored, PROTOCOL §2).

What comes out is a tree of ``Node`` (name, attributes, text, children).
Errors are ``XmlRejected``, a ``PpspError`` that also carries the partial
tree built so far, so the caller can still read a TransactionID that was
complete before the fault (PROTOCOL §2: errors are full responses carrying the
request's TransactionID).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import NoReturn
from xml.parsers import expat

from .errors import PpspError
from .reasons import Reason

MAX_DEPTH = 8
"""Deepest element nesting accepted; the root is depth 1 (deepest legal
draft-07 path, root/StatisticsGroup/Stat/Representation/SegmentInfo, is 5)."""

MAX_ELEMENTS = 256
"""Most elements accepted in one document, unknown ones included."""

# Separator between namespace URI and local name in expat's namespace mode.
# A space can appear in neither a local name nor a prefix.
_NS_SEP = " "


@dataclass(slots=True, eq=False)
class Node:
    """One element: local name, attributes by local name, character data."""

    name: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)
    closed: bool = False

    @property
    def text(self) -> str:
        """The element's own character data (not its descendants')."""
        return "".join(self.text_parts)


class XmlRejected(PpspError):
    """A document refused by this module; ``partial`` is the tree so far."""

    partial: Node | None

    def __init__(self, kind: Reason, partial: Node | None) -> None:
        super().__init__(kind)
        self.partial = partial


class _Abort(Exception):
    """Raised inside expat handlers to stop the parse with a fixed reason."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason = reason


def _local(name: str) -> str:
    # Namespace mode reports "uri<sep>local"; keep only the local part.
    return name.rsplit(_NS_SEP, 1)[-1]


class _TreeBuilder:
    def __init__(self) -> None:
        self.root: Node | None = None
        self.stack: list[Node] = []
        self.count = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        # Bounds checked before the node is built (PROTOCOL §2).
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise _Abort(Reason.TOO_MANY_ELEMENTS)
        if len(self.stack) >= MAX_DEPTH:
            raise _Abort(Reason.TOO_DEEP)
        local_attrs = attrs
        if attrs and any(_NS_SEP in key for key in attrs):
            local_attrs = {}
            for key, value in attrs.items():
                local = _local(key)
                if local in local_attrs:
                    # e.g. a:port and b:port: ambiguous once namespaces are ignored.
                    raise _Abort(Reason.DUPLICATE_ATTRIBUTE)
                local_attrs[local] = value
        # Without a namespace, names are already local (and expat has
        # refused duplicate attributes); expat hands each call a new dict.
        node = Node(_local(name) if _NS_SEP in name else name, local_attrs)
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def end(self, _name: str) -> None:
        self.stack.pop().closed = True

    def chars(self, data: str) -> None:
        if self.stack:
            self.stack[-1].text_parts.append(data)


def _refuse(reason: Reason) -> NoReturn:
    raise _Abort(reason)


def _xml_decl(_version: str | None, encoding: str | None, _standalone: int) -> None:
    # PROTOCOL §2: the body is UTF-8; a document claiming otherwise is refused.
    if encoding is not None and encoding.lower() != "utf-8":
        raise _Abort(Reason.NOT_UTF8)


def _new_parser(builder: _TreeBuilder) -> expat.XMLParserType:
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator=_NS_SEP)
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.chars
    parser.XmlDeclHandler = _xml_decl
    # PROTOCOL §2: no DTD, no entities, no external anything. Each handler fires
    # as soon as expat sees the construct, before anything is expanded.
    parser.StartDoctypeDeclHandler = lambda *_: _refuse(Reason.DTD_NOT_ALLOWED)
    parser.EntityDeclHandler = lambda *_: _refuse(Reason.ENTITY_NOT_ALLOWED)
    parser.UnparsedEntityDeclHandler = lambda *_: _refuse(Reason.ENTITY_NOT_ALLOWED)
    parser.NotationDeclHandler = lambda *_: _refuse(Reason.DTD_NOT_ALLOWED)
    parser.ElementDeclHandler = lambda *_: _refuse(Reason.DTD_NOT_ALLOWED)
    parser.AttlistDeclHandler = lambda *_: _refuse(Reason.DTD_NOT_ALLOWED)
    parser.ExternalEntityRefHandler = lambda *_: _refuse(Reason.ENTITY_NOT_ALLOWED)
    parser.SkippedEntityHandler = lambda *_: _refuse(Reason.ENTITY_NOT_ALLOWED)
    parser.ProcessingInstructionHandler = lambda *_: _refuse(Reason.PI_NOT_ALLOWED)
    return parser


def parse_tree(data: bytes, *, max_size: int) -> Node:
    """Parse one untrusted document; raise ``XmlRejected`` on any fault."""
    if len(data) > max_size:
        # PROTOCOL §4: larger than the accepted size -> 400. The prefix is still
        # scanned (bounded by max_size) so the error can carry the IDs.
        raise XmlRejected(Reason.MESSAGE_TOO_LARGE, _salvage_prefix(data[: max(max_size, 0)]))
    try:
        data.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise XmlRejected(Reason.NOT_UTF8, None) from None
    builder = _TreeBuilder()
    try:
        _new_parser(builder).Parse(data, True)
    except _Abort as exc:
        raise XmlRejected(exc.reason, builder.root) from None
    except expat.ExpatError:
        raise XmlRejected(Reason.MALFORMED_XML, builder.root) from None
    if builder.root is None:  # pragma: no cover - expat requires a root element
        raise XmlRejected(Reason.MALFORMED_XML, None)
    return builder.root


def _salvage_prefix(prefix: bytes) -> Node | None:
    """Best-effort tree of the complete elements at the start of ``prefix``."""
    builder = _TreeBuilder()
    # Not final: a token cut at the end of the prefix is simply pending.
    with contextlib.suppress(_Abort, expat.ExpatError):
        _new_parser(builder).Parse(prefix, False)
    return builder.root
