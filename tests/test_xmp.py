"""The ExtendedXMP of a JPEG read back: classsr_cli.io.xmp.joined."""

from __future__ import annotations

import hashlib
import struct
from xml.parsers import expat

from classsr_cli.io.xmp import joined

RDF = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"


def _portions(extended: bytes, size: int) -> list[bytes]:
    guid = hashlib.md5(extended).hexdigest().upper().encode()
    return [EXTENSION + guid + struct.pack(">II", len(extended), at) + extended[at : at + size]
            for at in range(0, len(extended), size)]  # fmt: skip


def test_portions_in_any_order_are_joined_with_the_namespaces_declared_above_them() -> None:
    """As another writer lays it out: the ExtendedXMP's namespaces declared on its ``rdf:RDF`` (not on its
    Description), two Descriptions (one self-closed), portions in any order among other APP1 segments. The joined packet
    is well-formed, declares the namespaces where its Descriptions are, and no longer names the ExtendedXMP; a missing
    portion or another GUID leaves the StandardXMP as it is."""
    extended = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
                b'xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/"><rdf:Description rdf:about="" '
                b'GDepth:Format="RangeInverse"/><rdf:Description rdf:about=""><GDepth:Data>' + b"QUJD" * 5000
                + b"</GDepth:Data></rdf:Description></rdf:RDF></x:xmpmeta>")  # fmt: skip
    guid = hashlib.md5(extended).hexdigest().upper().encode()
    standard = (RDF + b'<rdf:Description rdf:about="" xmlns:xmpNote="http://ns.adobe.com/xmp/note/" '
                b'xmpNote:HasExtendedXMP="' + guid + b'" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:format>'
                b"image/jpeg</dc:format></rdf:Description></rdf:RDF></x:xmpmeta>")  # fmt: skip
    portions = _portions(extended, 6000)
    assert len(portions) == 4
    got = joined(standard, [b"Exif\x00\x00MM", portions[2], portions[0], portions[3], portions[1]])
    expat.ParserCreate(namespace_separator=" ").Parse(got, True)  # namespaces resolve: every prefix declared
    assert b"HasExtendedXMP" not in got and b"<dc:format>image/jpeg</dc:format>" in got
    assert got.count(b'xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/"') == 2
    assert b'GDepth:Format="RangeInverse"/>' in got and b"QUJD" * 5000 in got
    assert got.index(b"image/jpeg") < got.index(b"RangeInverse") < got.index(b"</rdf:RDF>")
    assert joined(standard, portions[:3]) == standard
    assert joined(standard, _portions(extended.replace(b"QUJD", b"QUJE", 1), 6000)) == standard
    assert joined(RDF + b"</rdf:RDF></x:xmpmeta>", portions) == RDF + b"</rdf:RDF></x:xmpmeta>"
