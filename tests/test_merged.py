"""classsr_cli.io.merged: an OpenRaster's and a Krita document's merged picture, told by their first bytes (the
``mimetype`` entry stored, or deflated as Krita 5.2 writes it), read as the PNG it is; what they cannot give, said."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classsr_cli.errors import InputError
from classsr_cli.io import merged
from classsr_cli.io.files import is_image_name
from classsr_cli.io.image import output_suffix, own_format, peek_size, read_image

_Y, _X = np.mgrid[0:20, 0:30]
RGBA = np.dstack([_X * 8, _Y * 12, (_X + _Y) * 5, 255 - _X * 4]).astype(np.uint8)


def _document(path: Path, mimetype: bytes, *, deflated: bool = False, merged_png: bool = True) -> Path:
    """A ZIP laid out as OpenRaster and Krita write one: ``mimetype`` first, a layer, and the merged picture."""
    png = io.BytesIO()
    Image.fromarray(RGBA).save(png, "PNG")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype,
                   compress_type=zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED)  # fmt: skip
        z.writestr("data/layer0.png", png.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("stack.xml", b"<image w='30' h='20'/>", compress_type=zipfile.ZIP_DEFLATED)
        if merged_png:
            z.writestr("mergedimage.png", png.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return path


@pytest.mark.parametrize(("name", "mimetype", "deflated"), [("a.ora", b"image/openraster", False),
                                                             ("b.kra", b"application/x-krita", False),
                                                             ("c.kra", b"application/x-krita", True)])  # fmt: skip
def test_the_merged_picture_is_read_and_becomes_a_png(tmp_path: Path, name: str, mimetype: bytes, deflated: bool) -> None:
    """OpenRaster (MyPaint's, GIMP's, Krita's exchange format) and Krita documents were "not an image classsr reads":
    their merged picture is read, alpha kept, under any name; its default output is a PNG."""
    path = _document(tmp_path / name, mimetype, deflated=deflated)
    assert merged.kind(path.read_bytes()[:64]) == ("OpenRaster" if name.endswith(".ora") else "Krita")
    assert own_format(path.read_bytes()[:64]) == "ORA" and is_image_name(path)
    pic = read_image(path)
    assert np.array_equal(pic.pixels, RGBA[..., :3]) and np.array_equal(pic.alpha, RGBA[..., 3])
    assert pic.source_format == ("ORA" if name.endswith(".ora") else "KRA")
    assert peek_size(path) == (20, 30) and output_suffix(path.suffix) == ".png"
    renamed = tmp_path / "painting.bin"
    renamed.write_bytes(path.read_bytes())
    assert np.array_equal(read_image(renamed).pixels, RGBA[..., :3])


def test_what_it_cannot_give_is_said_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A document without its merged picture, one larger than the limit (its size checked before it is inflated), a
    ZIP cut short or its deflated data damaged, a merged picture above the pixel limit: one line each."""
    layers = _document(tmp_path / "layers.kra", b"application/x-krita", merged_png=False)
    with pytest.raises(InputError, match=r"layers\.kra: a Krita document with no merged picture \(mergedimage\.png\), only its layers: export"):
        read_image(layers)
    path = _document(tmp_path / "a.ora", b"image/openraster")
    monkeypatch.setattr(merged, "LIMIT", 100)
    with pytest.raises(InputError, match=r"a\.ora: truncated or corrupt image \(its merged picture is [0-9,]+ bytes, more"):
        read_image(path)
    monkeypatch.undo()
    cut = tmp_path / "cut.ora"
    cut.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(InputError, match=r"cut\.ora: truncated or corrupt image \(its ZIP does not read"):
        read_image(cut)
    damaged = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("mergedimage.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    damaged[start + 8 : start + 40] = bytes(range(32))  # its deflated data made nonsense
    (tmp_path / "damaged.ora").write_bytes(bytes(damaged))
    with pytest.raises(InputError, match=r"damaged\.ora: truncated or corrupt image \(its ZIP does not read"):
        read_image(tmp_path / "damaged.ora")
    with pytest.raises(InputError, match=r"a\.ora: its merged picture: 30x20 is 600 pixels, above the 100-pixel limit"):
        read_image(path, max_pixels=100)
    assert merged.kind(b"PK\x03\x04" + bytes(26) + b"mimetypeapplication/zip") is None
