"""XMP in a JPEG, which holds at most 65,502 bytes of it in one APP1 segment (XMP Specification Part 3, 1.1.3.1).

A longer packet (a Photoshop document's history, ``photoshop:DocumentAncestors``, runs to megabytes; a PNG, TIFF or
PSD holds it whole) is split as that specification says and Photoshop does: the StandardXMP keeps what fits, with
``xmpNote:HasExtendedXMP`` naming the ExtendedXMP by its MD5 digest, and the largest properties move to the
ExtendedXMP, a packet of its own written in APP1 segments of at most 65,400 bytes that say its length and where each
part starts. Readers that know ExtendedXMP (exiftool, Adobe's) read both; the others read the StandardXMP, which keeps
the small properties (title, creator, rights, keywords, a gain map's container directory). Read back, the two are
joined into one packet (:func:`joined`), which other formats hold whole.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable
from xml.parsers import expat

__all__ = ["STANDARD_LIMIT", "joined", "jpeg_segments", "parse", "split", "without_extended"]

#: The most bytes of XMP one JPEG APP1 segment holds after its namespace.
STANDARD_LIMIT = 65502
#: Bytes of the ExtendedXMP in each of its APP1 segments (the specification's recommendation).
PORTION = 65400
#: The namespace a JPEG APP1 segment of (standard) XMP starts with.
STANDARD = b"http://ns.adobe.com/xap/1.0/\x00"
_EXTENDED = b"http://ns.adobe.com/xmp/extension/\x00"
_NOTE = "http://ns.adobe.com/xmp/note/"
_HAS_EXTENDED = re.compile(rb'\s+xmpNote:HasExtendedXMP\s*=\s*("[^"]*"|\'[^\']*\')')


def parse(parser: expat.XMLParserType, xmp: bytes) -> None:
    """Feed ``parser`` the XML of the packet ``xmp``, up to the zeros that pad a Samsung's (XML allows none)."""
    parser.Parse(xmp.split(b"\0", 1)[0], True)


def without_extended(xmp: bytes) -> bytes:
    """``xmp`` without ``xmpNote:HasExtendedXMP`` (an attribute, as the specification writes it), which names an
    ExtendedXMP that is not carried with it."""
    return _HAS_EXTENDED.sub(b"", xmp)


def joined(standard: bytes, segments: Iterable[bytes]) -> bytes:
    """``standard`` (a JPEG's StandardXMP) with the ExtendedXMP that its ``xmpNote:HasExtendedXMP`` names, gathered from
    the payloads of the file's APP1 ``segments`` (each: the extension's namespace, the MD5 GUID, the full length, the
    offset, a portion), as one packet: the ExtendedXMP's ``rdf:Description`` elements after the StandardXMP's, with the
    namespaces declared above them, and the note taken out. ``standard`` as it is where it names none, or the portions
    are missing, do not add up to the digest, or the packets are not well-formed XML."""
    found = _HAS_EXTENDED.search(standard)
    if found is None:
        return standard
    guid = found.group(1)[1:-1]
    parts: dict[int, bytes] = {}
    full = None
    for payload in segments:
        if payload.startswith(_EXTENDED) and payload[35:67] == guid and len(payload) >= 75:
            full, at = struct.unpack(">II", payload[67:75])
            parts[at] = payload[75:]
    extended = b""
    while len(extended) in parts:
        extended += parts.pop(len(extended))
    if not extended or len(extended) != full or hashlib.md5(extended).hexdigest().upper().encode() != guid:
        return standard
    descriptions = _descriptions(extended)
    closing = _rdf_end(standard)
    if descriptions is None or closing is None:
        return standard
    packet = without_extended(standard[:closing]) + descriptions + standard[closing:]
    return packet if _well_formed(packet) else standard


def _descriptions(xmp: bytes) -> bytes | None:
    """The ``rdf:Description`` elements under ``xmp``'s ``rdf:RDF``, each with the namespaces declared on the tags
    above it added to its start tag (where it does not declare them itself); ``None`` where not well-formed."""
    parser = expat.ParserCreate()
    stack: list[str] = []
    declared: dict[str, str] = {}
    spans: list[tuple[int, int]] = []
    opened: list[int] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if len(stack) < 2:
            declared.update({k[6:]: v for k, v in attrs.items() if k.startswith("xmlns:")})
        if stack and _local(stack[-1]) == "RDF" and _local(name) == "Description":
            opened.append(parser.CurrentByteIndex)
        stack.append(name)

    def end(name: str) -> None:
        stack.pop()
        if stack and _local(stack[-1]) == "RDF" and _local(name) == "Description":
            at = parser.CurrentByteIndex  # an empty element's end is reported after it; an end tag's where "</" is
            spans.append((opened.pop(), at if xmp[at - 2 : at] == b"/>" else xmp.index(b">", at) + 1))

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    if not _parsed(parser, xmp):
        return None
    out = b""
    for a, b in spans:
        element = xmp[a:b]
        name_end = 1 + len(re.match(rb"<([^\s/>]+)", element).group(1))  # type: ignore[union-attr]
        missing = b"".join(b' xmlns:%s="%s"' % (p.encode(), u.encode()) for p, u in declared.items()
                           if b"xmlns:" + p.encode() + b"=" not in element[: element.index(b">")])  # fmt: skip
        out += element[:name_end] + missing + element[name_end:]
    return out


def _rdf_end(xmp: bytes) -> int | None:
    """Where ``xmp``'s ``rdf:RDF`` end tag starts; ``None`` where it has none (or is not well-formed)."""
    parser = expat.ParserCreate()
    found: list[int] = []

    def end(name: str) -> None:
        if _local(name) == "RDF" and not found:
            found.append(parser.CurrentByteIndex)

    parser.EndElementHandler = end
    if not _parsed(parser, xmp):
        return None
    return found[0] if found and xmp[found[0] : found[0] + 2] == b"</" else None


def _local(name: str) -> str:
    return name.rsplit(":", 1)[-1]


def _layout(xmp: bytes) -> tuple[list[tuple[int, int]], dict[str, str], int] | None:
    """The byte spans of the properties written as elements under each ``rdf:Description``, the namespaces its
    enclosing start tags declare, and where the first ``rdf:Description`` start tag's name ends; ``None`` where the
    packet is not well-formed XML or has no ``rdf:Description``."""
    parser = expat.ParserCreate()
    stack: list[str] = []
    spans: list[tuple[int, int]] = []
    declared: dict[str, str] = {}
    first: list[int] = []
    begun: list[int | None] = []  # where each open property starts (None: an empty element, its span taken)

    def start(name: str, attrs: dict[str, str]) -> None:
        at = parser.CurrentByteIndex
        if len(stack) >= 2 and _local(stack[-1]) == "Description" and _local(stack[-2]) == "RDF":
            close = xmp.index(b">", at) + 1  # its start tag's end (expat reports an empty element's end after it)
            if xmp[close - 2 : close] == b"/>":
                spans.append((at, close))
                begun.append(None)
            else:
                begun.append(at)
        elif _local(name) == "Description" or len(stack) < 2:
            for key, value in attrs.items():
                if key.startswith("xmlns:"):
                    declared.setdefault(key[6:], value)
            if _local(name) == "Description" and stack and _local(stack[-1]) == "RDF" and not first:
                first.append(at + 1 + len(name))
        stack.append(name)

    def end(name: str) -> None:
        stack.pop()
        if len(stack) >= 2 and _local(stack[-1]) == "Description" and _local(stack[-2]) == "RDF" and begun:
            opened = begun.pop()
            if opened is not None:  # expat reports an end tag where its "</" starts
                spans.append((opened, xmp.index(b">", parser.CurrentByteIndex) + 1))

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    if not _parsed(parser, xmp):
        return None
    return (spans, declared, first[0]) if first else None


def _parsed(parser: expat.XMLParserType, xmp: bytes) -> bool:
    """Whether ``parser`` (its handlers set) parsed ``xmp`` to its end: well-formed XML."""
    try:
        parser.Parse(xmp, True)
    except (expat.ExpatError, ValueError):
        return False
    return True


def _well_formed(xmp: bytes) -> bool:
    return _parsed(expat.ParserCreate(), xmp)


def split(xmp: bytes, limit: int = STANDARD_LIMIT) -> tuple[bytes, bytes | None] | None:
    """``xmp`` as a StandardXMP of at most ``limit`` bytes and the ExtendedXMP (``None`` where it fits whole; its
    xpacket padding is dropped first); ``None`` where it cannot be split so (not well-formed, or what must stay is
    too long: properties written as attributes stay)."""
    xmp = re.sub(rb"\s+(<\?xpacket end)", rb"\n\1", xmp)  # the padding left for editing in place
    if len(xmp) <= limit:
        return xmp, None
    layout = _layout(xmp)
    if layout is None:
        return None
    spans, declared, name_end = layout
    tag_end = xmp.index(b">", name_end)
    tag = without_extended(xmp[name_end:tag_end])  # an older ExtendedXMP's, which is not carried
    closed = tag.rstrip().endswith(b"/")  # <rdf:Description .../>: its properties all attributes
    tag = tag.rstrip().removesuffix(b"/") if closed else tag
    note = b"" if b"xmlns:xmpNote=" in tag else b' xmlns:xmpNote="' + _NOTE.encode() + b'"'
    mark = note + b' xmpNote:HasExtendedXMP="' + b"0" * 32 + b'"'
    head = xmp[:name_end] + tag + mark + (b"/" if closed else b"")
    rest = xmp[tag_end:]
    offset = tag_end  # spans are positions in ``xmp``; ``rest`` starts there
    moved: list[tuple[int, int]] = []
    size = len(head) + len(rest)
    for span in sorted(spans, key=lambda s: s[0] - s[1]):  # the largest first
        if size <= limit:
            break
        moved.append(span)
        size -= span[1] - span[0]
    if size > limit:
        return None
    moved.sort()
    body = b"".join(xmp[a:b] for a, b in moved)
    namespaces = b"".join(b' xmlns:%s="%s"' % (p.encode(), u.encode()) for p, u in declared.items()
                          if p not in ("x", "rdf"))  # fmt: skip
    extended = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                b'<rdf:Description rdf:about=""' + namespaces + b">" + body + b"</rdf:Description></rdf:RDF></x:xmpmeta>")
    guid = hashlib.md5(extended).hexdigest().upper().encode()
    kept = bytearray(rest)
    for a, b in reversed(moved):
        del kept[a - offset : b - offset]
    standard = head.replace(mark, mark.replace(b"0" * 32, guid)) + bytes(kept)
    if not (_well_formed(standard) and _well_formed(extended)):
        return None
    return standard, extended


def jpeg_segments(xmp: bytes) -> bytes | None:
    """The APP1 segments that hold ``xmp`` in a JPEG: the StandardXMP's, then the ExtendedXMP's (:func:`split`);
    ``None`` where it cannot be split."""
    parts = split(xmp)
    if parts is None:
        return None
    standard, extended = parts
    out = _app1(STANDARD + standard)
    if extended is not None:
        guid = hashlib.md5(extended).hexdigest().upper().encode()
        for at in range(0, len(extended), PORTION):
            out += _app1(_EXTENDED + guid + struct.pack(">II", len(extended), at) + extended[at : at + PORTION])
    return out


def _app1(payload: bytes) -> bytes:
    return b"\xff\xe1" + struct.pack(">H", 2 + len(payload)) + payload
