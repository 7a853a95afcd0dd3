"""Video I/O through the ffmpeg binary bundled with imageio-ffmpeg: probe, streaming reader, streaming writer.

No torch and no CLI code here. Frames travel as ``rawvideo rgb24`` (``rgba`` where the output keeps the source's
transparency; 16 bits a channel where either holds more than 8) through pipes, one frame at a time, so memory
is bounded whatever the length and nothing is written to disk but the output.

Timing. The reader decodes with ``-fps_mode passthrough`` (no frame is duplicated or dropped) and reports each
frame's timestamp, in the source stream's time base, from the ``showinfo`` filter (integer ``pts``, not the
rounded ``pts_time``). The writer does not feed ffmpeg a bare rawvideo stream, which would force a constant rate;
it wraps the frames in a minimal Matroska stream (``V_UNCOMPRESSED``, one cluster per frame) that carries every
frame's timestamp and duration, and the encoder keeps them (``-fps_mode passthrough``, ``-enc_time_base`` set to
the source's). Variable frame rate survives, and so does the offset between the first video frame and the audio.

Other streams. The encoder opens the source a second time and copies its audio (not re-encoded), subtitles (as
the output container allows: copied, or turned into ``mov_text``/``webvtt`` text), attachments (into Matroska),
global metadata and chapters. What the container refuses is found by a quick trial mux and re-encoded or dropped,
with a note saying so; so is every stream left out (other video, cover pictures, timecode and data tracks).
Colour primaries and transfer are set on the encoder's frames (``setparams``), where ffmpeg keeps them.
Rotation is kept as metadata: frames are decoded as stored (``-autorotate 0``) and the display matrix is written
again on the output. So is the pixel aspect ratio (SAR, e.g. 32:27 for anamorphic DVD video): the upscale is
uniform, so the output's pixels have the source's shape, and ``setsar`` ends the encoder's filter chain.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import io
import itertools
import math
import mmap
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from classsr_cli.errors import ConfigError, InputError, VideoError
from classsr_cli.io import bmff
from classsr_cli.io.files import url_refusal
from classsr_cli.io.icc import srgb16_transform
from classsr_cli.io.subtitles import TEXT_FORMATS, cut, flatten

if TYPE_CHECKING:
    from classsr_cli.io.sequence import Sequence

__all__ = [
    "ALPHA_FORMATS",
    "ANIMATION_MUXERS",
    "CONTAINERS",
    "DEEP_PIX_FMT",
    "DEFAULT_PIX_FMT",
    "EXR_CODEC",
    "HDR10",
    "IVTC",
    "LINEAR_CODECS",
    "LINEAR_SUFFIXES",
    "QUALITY_CODECS",
    "SEQUENCE_CODECS",
    "SEQUENCE_MUXER",
    "EncodeOptions",
    "Frame",
    "StreamInfo",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "bit_depth",
    "check_pix_fmt",
    "color_tags",
    "container_of",
    "count_frames",
    "encoder_pix_fmts",
    "evens",
    "ffmpeg_codecs",
    "ffmpeg_exe",
    "ffmpeg_reason",
    "full_size_hint",
    "hold_last_frame",
    "is_pictures",
    "keeps_alpha",
    "plan_streams",
    "probe",
    "source_notes",
]

#: Output file extension -> ffmpeg muxer.
CONTAINERS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".gif": "gif",
    ".webp": "webp",
    ".apng": "apng",
}
#: A numbered image sequence's muxer (``out/%05d.png``: a picture a frame, no timing, audio or subtitles), and the
#: encoder of each picture suffix it writes (those of linear light, :data:`LINEAR_CODECS`: classsr's own writers).
SEQUENCE_MUXER = "image2"
EXR_CODEC = "exr"
#: The picture formats of linear light a sequence is written in, by classsr (OpenEXR's writer, Radiance's header and
#: ffmpeg's RGBE encoder, a picture at a time), and what they are called.
LINEAR_CODECS = {EXR_CODEC: "OpenEXR", "hdr": "Radiance HDR", "pfm": "PFM"}
#: The suffixes of pictures of linear light (read as a sequence through ffmpeg's float pixel formats).
LINEAR_SUFFIXES = (".exr", ".hdr", ".pfm")
SEQUENCE_CODECS: dict[str, str] = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "mjpeg", ".jpeg": "mjpeg",
                                   ".jxl": "libjxl", ".dpx": "dpx", ".exr": EXR_CODEC, ".hdr": "hdr",
                                   ".pfm": "pfm"}  # fmt: skip
#: The encoders ``--quality`` sets (:attr:`EncodeOptions.quality`): JPEG frames (classsr's writer), JPEG XL frames,
#: animated WebP.
QUALITY_CODECS = ("mjpeg", "libjxl", "libwebp_anim")
#: Animated pictures: frames and their timing only (no audio, subtitles or colour tags), written in one go.
ANIMATION_MUXERS = {"gif": "gif", "webp": "libwebp_anim", "apng": "apng"}  # muxer -> its encoder
#: Muxers that store per-frame timestamps (variable frame rate); the others get a constant rate.
VFR_MUXERS = {"mp4", "mov", "matroska", "webm", *ANIMATION_MUXERS}  # containers that keep every frame's timestamp
#: How text subtitles are written in each container (None: the container holds none).
_SUBTITLE_CODEC = {"mp4": "mov_text", "mov": "mov_text", "matroska": "copy", "webm": "webvtt", "avi": None}
#: Where a container cannot take a stream's subtitle codec as it is: the text format they are converted to.
_SUBTITLE_TEXT = {"matroska": "srt"}
#: The audio codec used when the source's cannot be copied into the container.
_AUDIO_FALLBACK = {"mp4": "aac", "mov": "aac", "matroska": "aac", "webm": "libopus", "avi": "libmp3lame"}
#: ffmpeg's demuxers of still pictures: image2 (by the name), the *_pipe ones (by the bytes), ico (an icon's
#: pictures, as frames of a video from its first, the smallest mostly, where `classsr upscale` takes the largest), msp
#: (Microsoft Paint's) and fits (astronomy's; a cube's planes as frames).
_IMAGE_FORMATS = re.compile(r"^(image2|.*_pipe|ico|msp|fits)$")
_TAIL = 40


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary."""
    try:
        import imageio_ffmpeg
    except ImportError as e:  # pragma: no cover - it is a dependency
        raise VideoError(f"imageio-ffmpeg is not installed ({e})") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:  # pragma: no cover - broken install
        raise VideoError(f"no ffmpeg binary: {e}") from None


def is_pictures(path: str | os.PathLike[str]) -> bool:
    """Whether the output ``path`` is an image sequence, a numbered pattern of pictures (``out/%05d.png``): a video or
    an animation named with a ``%d`` in it (``promo_100%done.mp4``) is the one file so named."""
    from classsr_cli.io.sequence import is_pattern

    return is_pattern(path) and Path(path).suffix.lower() in SEQUENCE_CODECS


def container_of(path: str | os.PathLike[str]) -> str:
    """The muxer for an output path, from its extension; :data:`SEQUENCE_MUXER` for a numbered picture pattern
    (``out/%05d.png``: :func:`is_pictures`)."""
    ext = Path(path).suffix.lower()
    if is_pictures(path):
        return SEQUENCE_MUXER
    if ext not in CONTAINERS:
        raise VideoError(
            f"{path}: unknown video container {ext or '(none)'!r}; use one of {', '.join(CONTAINERS)}, or a numbered "
            f"pattern of {', '.join(SEQUENCE_CODECS)} pictures (frames/%05d.png)"
        )
    return CONTAINERS[ext]


# --------------------------------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class StreamInfo:
    """One stream of the source: ``index`` (in the file), ``kind`` (video/audio/subtitle/...), ``codec``."""

    index: int
    kind: str
    codec: str
    language: str | None = None
    dispositions: frozenset[str] = frozenset()  # ffmpeg's names: "default", "forced", "hearing_impaired", ...
    tag: str | None = None  # the container's codec tag where the codec has no name (``tmcd`` for a timecode track,
    # ``text`` for a QuickTime chapter track)
    title: str | None = None  # its name ("Commentary", "Camera A": Matroska's track name, an MP4's title)
    handler: str | None = None  # an MP4's or MOV's handler name, which players there show as the track's name

    @property
    def default(self) -> bool:
        return "default" in self.dispositions

    @property
    def attached_pic(self) -> bool:
        return "attached_pic" in self.dispositions


@dataclass(frozen=True)
class VideoInfo:
    """What ``ffmpeg -i`` says about a file.

    Attributes:
        format: demuxer names (``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"matroska,webm"``, ...).
        width, height: stored size of the first video stream (before rotation).
        fps: its average frame rate (``None`` when unknown).
        duration: container duration in seconds (``None`` when the header gives none).
        start: container start time in seconds.
        video_start: the video stream's own start in seconds where ffmpeg lists one (``start 1.000000``: an edit
            list's shift, or audio before the first frame), ``None`` otherwise.
        ticks: the video stream's ticks a second (ffmpeg's ``tbn``: its time base, 1/ticks), ``None`` where not listed.
        rotation: display rotation in degrees, counter-clockwise (0 when none).
        flipped: the display matrix also mirrors the picture.
        pix_fmt, color: the decoder's pixel format and colour properties (``"tv, bt709"``), if given.
        field_order: ``"top first"``, ``"bottom first"``, ... for interlaced video (``None``: progressive or unknown).
        sar: sample (pixel) aspect ratio, width over height, of the stored frames (``None``: square or unknown).
        timecode: the source's start timecode (``01:00:00:00``; a tmcd track's, or a TIMECODE tag), ``None``: none.
        streams: every stream, the video one included.
        hdr10: a PQ stream's mastering display and content light levels (:class:`HDR10`), ``None``: none.
        seek, span: the part read, from ``seek`` seconds for ``span`` (``None``: to the end); :meth:`trimmed`.
        chapters: how many chapters the file lists.
        alpha: whether the frames carry transparency: an alpha pixel format (ProRes 4444, PNG, QuickTime RLE, ...),
            and for a GIF or an animated WebP or PNG, whose decoders give every file one, a transparent pixel in
            one of its frames, or a GIF's or APNG's canvas its frames leave uncovered (:class:`AnimationCanvas`).
        decoder: the decoder the frames are read with where it is not ffmpeg's default (``libvpx-vp9`` for VP9 with
            alpha, whose alpha ffmpeg's own decoder drops).
        plays: how many times an animated picture (GIF, WebP, APNG) plays: 0 forever, as animations mostly do and as
            anything else (a video) is taken to.
        lossless: an animated WebP whose frames are stored losslessly.
        demux: ffmpeg's input options before ``-i path`` (an image sequence's: ``path`` is then its printf pattern,
            read at :attr:`fps`; :func:`~classsr_cli.io.sequence.find_sequence`); empty for a file.
        orientation: an image sequence's EXIF orientation (its first frame's, 1-8; 1: as stored), which
            :class:`VideoReader` applies to every frame as ``classsr upscale`` applies a picture's (ffmpeg does not).
        icc, icc_profile: the description and the bytes of an image sequence's ICC profile (its first frame's) where
            it is not sRGB (``None``: none, or sRGB); :class:`VideoReader` converts 8-bit frames from it to sRGB.
        stops: a sequence of linear light (OpenEXR): how many stops darker its frames are read, within the model's
            range (its first frame's, :func:`classsr_cli.io.exr.stops_for`); ``None``: not linear light.
        browser_timing: an animated GIF, APNG or WebP with frames of 10 ms or less, which browsers show for 100 ms
            (:class:`BrowserTiming`): :class:`VideoReader` times the frames as browsers do, and :attr:`duration` and
            :attr:`fps` are so; ``None`` otherwise.
        tags: the file's own metadata as ffmpeg lists it (key, value), which the output carries (:func:`_mux_args`).
        captions: the video stream's frames carry closed captions (EIA-608/708, a TV recording's or a DVD's), which
            encoding the frames anew does not keep (a note says how to extract them).
        projection: a 360° video's projection as ffmpeg names it (``equirectangular``, ``cubemap``), ``None`` for a
            flat one; ``stereo``: a stereoscopic one's layout (``top and bottom``, ``side by side``). Carried from an
            MP4 or MOV source into an MP4 or MOV output (:mod:`classsr_cli.io.spherical`), said otherwise.
        dolby_vision: a Dolby Vision stream's profile and its base layer's compatibility id (8 and 4: an iPhone's,
            HLG; 8 and 1 or 7: HDR10; 8 and 2: SDR; 5 and 0: none, Dolby's own colours), which the frames encoded anew
            do not keep (said; profile 5's colours come out wrong, said so).
    """

    path: Path
    format: str
    width: int
    height: int
    video_index: int
    codec: str
    fps: float | None
    duration: float | None
    start: float
    rotation: float = 0.0
    flipped: bool = False
    pix_fmt: str | None = None
    color: str | None = None
    sar: Fraction | None = None
    streams: tuple[StreamInfo, ...] = field(default_factory=tuple)
    field_order: str | None = None
    timecode: str | None = None
    hdr10: HDR10 | None = None
    seek: float = 0.0
    span: float | None = None
    chapters: int = 0
    alpha: bool = False
    decoder: str | None = None
    plays: int = 0
    lossless: bool = False
    demux: tuple[str, ...] = ()
    orientation: int = 1
    icc: str | None = None
    icc_profile: bytes | None = field(default=None, repr=False)
    stops: int | None = None
    browser_timing: BrowserTiming | None = field(default=None, repr=False)
    tags: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    captions: bool = False
    projection: str | None = None
    stereo: str | None = None
    dolby_vision: tuple[int, int] | None = None
    video_start: float | None = None
    ticks: int | None = None

    def trimmed(self, start: float = 0.0, length: float | None = None) -> VideoInfo:
        """This video from ``start`` seconds for ``length`` seconds (``None``: to the end), as :class:`VideoReader`
        and :class:`VideoWriter` then read it: frames, audio and subtitles cut alike, timestamps from the cut, the
        start timecode moved on by ``start`` (a drop-frame one is left out), :attr:`duration` what is left."""
        if not (math.isfinite(start) and start >= 0):
            raise ConfigError(f"--start must be 0 or more seconds, got {start:g}")
        if length is not None and not (math.isfinite(length) and length > 0):
            raise ConfigError(f"--duration must be above 0 seconds, got {length:g}")
        if self.duration is not None and start >= self.duration:
            raise InputError(f"{self.path}: --start {start:g} s is past its end ({self.duration:.2f} s)")
        left = None if self.duration is None else self.duration - start
        kept = left if length is None else length if left is None else min(length, left)
        tc = self.timecode if not start else _advance_timecode(self.timecode, start, self.fps)
        return replace(self, seek=start, span=length, duration=kept, timecode=tc)

    @property
    def sequence(self) -> bool:
        """Whether this is a numbered image sequence, not a file."""
        return bool(self.demux)

    @property
    def transposed(self) -> bool:
        """Whether :attr:`orientation` turns the frames by 90 degrees (their width and height swap)."""
        return self.orientation in (5, 6, 7, 8)

    @property
    def first_number(self) -> int:
        """An image sequence's first frame's number (0 for a file)."""
        return int(self.demux[self.demux.index("-start_number") + 1]) if "-start_number" in self.demux else 0

    @property
    def part_first_number(self) -> int:
        """The number of the first file of an image sequence's part (:meth:`trimmed`: its first frame at or after
        :attr:`seek`, where ffmpeg's seek lands); 0 for a file."""
        return self.first_number + math.ceil(self.seek * (self.fps or 0) - 1e-6) if self.sequence else 0

    def input_args(self) -> list[str]:
        """ffmpeg's arguments that open it as an input: its :attr:`demux` options and ``-i path``."""
        return [*self.demux, "-i", str(self.path)]

    @property
    def audio(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.kind == "audio"]

    @property
    def subtitles(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.kind == "subtitle"]

    @property
    def frames_estimate(self) -> int | None:
        """Frame count from duration x fps (headers of mkv/webm give no exact count); for progress only."""
        if self.duration is None or not self.fps:
            return None
        return max(1, round(self.duration * self.fps))


_STREAM = re.compile(
    r"^\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\(([^)]*)\))?: (Video|Audio|Subtitle|Data|Attachment): ([\w-]+)"
)
_SIZE = re.compile(r", ([a-z0-9_]+)(?:\(((?:[^()]|\([^()]*\))*)\))?, (\d+)x(\d+)")  # "(tv, top coded first (swapped))"
_SIZE_ONLY = re.compile(r", (\d+)x(\d+)[ ,\[]")
_RATE = re.compile(r"([\d.]+)(k?) (fps|tbr)\b")
_TICKS = re.compile(r"(?<![\d.])(\d+)(\.\d+)?(k?) tbn\b")  # (a time base of 1001/30000 lists as "29.97 tbn")
_DURATION = re.compile(r"Duration: (?:(\d+):(\d+):([\d.]+)|N/A)(?:, start: (-?[\d.]+))?")
_SAR = re.compile(r"\bSAR (\d+):(\d+)")
_TAG = re.compile(r"^[^,]*?: (?:none|bin_data) \((\w[\w ]{2,3}) / 0x")
_STREAM_START = re.compile(r", start (-?[\d.]+)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees", re.IGNORECASE)
#: A Dolby Vision stream's configuration record as ffmpeg lists it: its profile and its base layer's compatibility.
_DOVI = re.compile(r"DOVI configuration record: .*?profile: (\d+).*?compatibility id: (\d+)")
#: A 360° or stereoscopic stream's side data as ffmpeg lists it.
_PROJECTION = re.compile(r"^\s+Spherical Mapping: ([a-z][a-z ]*[a-z])")
_STEREO = re.compile(r"^\s+Stereo 3D: ([a-z][a-z ]*[a-z])")
_ALPHA_MODE = re.compile(r"^\s+alpha_mode\s*:\s*1\s*$", re.IGNORECASE)
#: A stream encrypted (DRM) as ffmpeg lists it: a Matroska/WebM one's key id among its metadata, or a Common
#: Encryption one's initialization data (its ``pssh``: an MP4's that a DASH manifest or HLS playlist names, whose
#: sample entries :func:`_fragments_trouble` cannot read through it).
_ENCRYPTED_STREAM = re.compile(r"^\s+(enc_key_id\s*:|Encryption initialization data\b)", re.IGNORECASE)
_ALPHA_DECODERS = {"vp9": "libvpx-vp9", "vp8": "libvpx"}
#: A stream's dispositions as ``ffmpeg -i`` lists them after it ("(default) (hearing impaired)"), and their names.
_DISPOSITION = re.compile(r" \(([a-z][a-z -]*[a-z])\)")
_DISPOSITIONS = frozenset({
    "default", "dub", "original", "comment", "lyrics", "karaoke", "forced", "hearing_impaired", "visual_impaired",
    "clean_effects", "attached_pic", "timed_thumbnails", "non_diegetic", "captions", "descriptions", "metadata",
    "dependent", "still_image", "multilayer"})  # fmt: skip


def _run_probe(path: Path, demux: tuple[str, ...] = ()) -> str:
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", *demux, "-i", str(path)],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InputError(f"{path}: ffmpeg took more than 60 s to open it") from None
    return proc.stderr.decode("utf-8", "replace")


def _whole_value(value: str) -> str:
    """A metadata value as ffmpeg lists it, which it cuts to 255 bytes: the character cut in two (decoded as U+FFFD)
    left out."""
    return value[:-1] if value.endswith("\ufffd") and len(value.encode()) >= _LISTED_BYTES else value


#: The most bytes of a metadata value ffmpeg's listing gives.
_LISTED_BYTES = 255
#: One of a stream's metadata in ffmpeg's listing (``      title           : Camera A``).
_STREAM_TAG = re.compile(r"^      (\S.*?)\s*: (.*)$")


def _file_tags(text: str) -> tuple[tuple[str, str], ...]:
    """The file's own metadata in ffmpeg's listing (``Input #0``'s ``Metadata:`` block, before ``Duration``): keys
    and values, a value's continued lines joined by newlines."""
    block = re.search(r"^Input #0, .*\n  Metadata:\n((?:    .*\n)+)", text + "\n", re.MULTILINE)
    tags: list[tuple[str, str]] = []
    for line in block.group(1).splitlines() if block else ():
        if m := re.match(r"    (\S.*?)\s*: (.*)$", line):  # ffmpeg writes "%-16s: " before the value
            tags.append((m.group(1), m.group(2)))
        elif tags and (more := re.match(r"\s+: (.*)$", line)):
            tags[-1] = (tags[-1][0], f"{tags[-1][1]}\n{more.group(1)}")
    return tuple(tags)


def _ticks(line: str) -> int | None:
    """A stream's ticks a second as ffmpeg lists them (``90k tbn``), where they are whole; ``None`` where it lists none
    or a rounded fraction (``29.97 tbn``: a time base of 1001/30000, which a count of ticks cannot be taken from)."""
    m = _TICKS.search(line)
    if m is None or (m.group(2) and not m.group(3)):
        return None
    return round(float(m.group(1) + (m.group(2) or "")) * (1000 if m.group(3) else 1))


def _rate(line: str) -> float | None:
    found = {kind: float(v) * (1000 if k else 1) for v, k, kind in _RATE.findall(line)}
    return found.get("fps") or found.get("tbr")


def _sar(line: str) -> Fraction | None:
    """The stream's sample aspect ratio; ``None`` when square (what encoders write anyway) or unknown (0:1).

    Where the container's differs from the codec's (AV1 in Matroska: ``[SAR 1:1 DAR 3:2], SAR 32:27 DAR 16:9``),
    ffmpeg prints the container's last, and that is the one players and ffmpeg's own filters go by."""
    found = _SAR.findall(line)
    if not found or not all(int(v) for v in found[-1]):
        return None
    sar = Fraction(int(found[-1][0]), int(found[-1][1]))
    return None if sar == 1 else sar


def _field_order(color: str | None) -> str | None:
    """The field order in the pixel format's parentheses (``"tv, bt709, top first"``); ``None`` if progressive."""
    for part in (color or "").split(","):
        if part.strip().startswith(("top", "bottom")):
            return part.strip()
    return None


def _not_a_video(path: Path) -> str:
    """Why a file ffmpeg opens as a still image (its ``image2`` demuxer goes by the name, or a HEIF still's brand) is
    refused."""
    from PIL import Image, UnidentifiedImageError

    from classsr_cli.io.image import (
        OWN_NAMES,
        article,
        open_formats,
        own_format,
        pillow_look,
        readable_formats,
    )

    readable_formats()  # HEIC's plugin, to name it
    if _starts(path, (_PDF,)):
        return f"{path}: is a PDF document, not a video, nor an image classsr reads"
    try:
        with path.open("rb") as f:
            own = own_format(f.read(64))
        if own is not None:  # Pillow's own plugins do not read them
            name = OWN_NAMES[own]
            what = f"{article(name)} {name} image"
        else:
            with pillow_look(path, header=True):
                try:
                    im, readable = Image.open(path, formats=open_formats(path)), True
                except UnidentifiedImageError:  # one Pillow reads and classsr does not (Microsoft Paint's MSP, FITS)
                    im, readable = Image.open(path), False
                with im:
                    kind = {"WEBP": "WebP"}.get(im.format or "", im.format)  # (Pillow's own spelling: JPEG, PNG)
                    what = f"{article(kind)} {kind} image" if kind else "an image"
            if not readable:
                return f"{path}: is {what}, not a video, nor an image classsr reads"
    except Exception:  # a file Pillow cannot open (its plugins raise what they like: a DDS format not implemented)
        return f"{path}: not a readable video, nor an image whatever its {path.suffix or 'name'} says"
    from classsr_cli.io import motion

    clip = motion.video_of(path)
    if clip is not None:  # a Motion Photo: its video is the file's last bytes
        size = len(clip)
        return (f"{path}: is {what} with a Motion Photo's video, not a video: `classsr upscale` upscales the picture "
                f"and keeps its video as it came, `classsr video {path.name}` its video; here, take the video out "
                f"first (its last {size} bytes: `tail -c {size} {path.name} > {path.stem}.mp4`)")
    from classsr_cli.io.sequence import sequence_of

    seq = sequence_of(path)
    if seq is not None:  # a frame of a numbered sequence: the user may mean the sequence
        return (f"{path}: is {what}, not a video; to read its sequence as a video give {seq.pattern} "
                f"({seq.count} frames), or its folder; to upscale the picture, use `classsr upscale`")
    return f"{path}: is {what}, not a video; use `classsr upscale`"


def _pillow_reads(path: Path) -> bool:
    """Whether Pillow opens ``path`` as a picture of a format classsr reads (its header alone)."""
    from PIL import Image

    from classsr_cli.io.image import open_formats, pillow_look

    try:
        with pillow_look(path, header=True), Image.open(path, formats=open_formats(path)):
            return True
    except Exception:  # (not a picture, or one Pillow's plugins refuse: ffmpeg's reason stands)
        return False


#: A PDF document's first bytes.
_PDF = b"%PDF-"
#: The first bytes of files that hold JPEG or JPEG 2000 pictures, which ffmpeg's raw demuxers find and make a video
#: of: a PDF document, a Mac's icon (ICNS), a Blizzard texture (BLP).
_HOLDERS = (_PDF, b"icns", b"BLP1", b"BLP2")
#: ffmpeg's demuxers that find such pictures (elementary JPEG and JPEG 2000 streams).
_RAW_PICTURES = ("mjpeg", "mjpeg_2000")


def _starts(path: Path, prefixes: tuple[bytes, ...]) -> bool:
    """Whether the file ``path`` starts with one of ``prefixes``."""
    try:
        with path.open("rb") as f:
            return f.read(max(map(len, prefixes))).startswith(prefixes)
    except OSError:
        return False


#: HEIF brands of image sequences (AVIF's, HEIC's), whose still image ffmpeg lists as a stream before the animation.
_HEIF_SEQUENCES = ("avis", "msf1", "hevs")
#: HEIF brands of still images (HEIC's, AVIF's): a file with one of them as its major brand and no sequence brand is a
#: photo.
_HEIF_STILLS = ("heic", "heix", "heim", "heis", "mif1", "mif2", "avif", "avio")


def _heif_still(text: str) -> bool:
    """Whether ffmpeg's description ``text`` is of a HEIF still image (a HEIC or AVIF photo): a still's major brand,
    and no sequence brand among the compatible ones."""
    major = re.search(r"^\s*major_brand\s*:\s*(\S+)", text, re.M)
    if major is None or major.group(1) not in _HEIF_STILLS:
        return False
    compatible = re.search(r"^\s*compatible_brands\s*:\s*(\S+)", text, re.M)
    listed = compatible.group(1) if compatible else ""
    return not any(b in _HEIF_SEQUENCES for b in (listed[i : i + 4] for i in range(0, len(listed), 4)))


#: Why an encrypted video is refused.
_ENCRYPTED = "is encrypted (DRM), which classsr cannot decode"
#: The boxes a fragmented MP4's media segment (DASH, HLS or CMAF ``.m4s``) starts with.
_SEGMENT_START = (b"styp", b"sidx", b"moof", b"emsg", b"prft")
#: How to read a fragmented MP4's segments: as ffmpeg reads a stream's playlist or manifest, or made one file.
_JOIN = ("give its playlist (.m3u8) or manifest (.mpd) instead, or join the initialization segment and its media "
         "segments, in order, into one file first (`cat init.mp4 segment_1.m4s segment_2.m4s ... > whole.mp4`)")


def _fragments_trouble(path: Path) -> str | None:
    """Why the MP4 (ISO base media) file ``path`` holds no frames classsr can decode, or ``None``: a fragmented MP4's
    media segment without its initialization segment (no ``moov``), its initialization segment alone (a ``moov``
    announcing fragments, ``mvex``, and none follows), or a video track encrypted by Common Encryption (its sample
    entry ``encv``; ffmpeg decodes its scrambled bytes as they are). Reads the box headers and the ``moov``."""
    try:
        tops = bmff.top_level(path)
        kinds = [kind for kind, _, _ in tops]
        if not kinds or not all(k.isascii() and k.decode("ascii").isprintable() for k in kinds):
            return None
        if b"moov" not in kinds:
            if kinds[0] in _SEGMENT_START:
                return f"is a media segment of a fragmented MP4 (DASH, HLS or CMAF) without its initialization segment: {_JOIN}"
            return None
        _, at, size = tops[kinds.index(b"moov")]
        if size > _MOOV_LIMIT:
            return None
        with path.open("rb") as f:
            f.seek(at)
            moov = f.read(size)
    except (OSError, struct.error):
        return None
    inside = {kind for kind, *_ in bmff.boxes(moov, 8, len(moov))}
    if b"mvex" in inside and b"moof" not in kinds and b"mdat" not in kinds:
        return f"is the initialization segment of a fragmented MP4 (DASH, HLS or CMAF) alone, which holds no frames: {_JOIN}"
    if _sample_entries(moov) & {b"encv"}:
        return _ENCRYPTED
    return None


#: The largest ``moov`` :func:`_fragments_trouble` reads (a long film's is a few megabytes).
_MOOV_LIMIT = 256 << 20


def _sample_entries(moov: bytes) -> set[bytes]:
    """The kinds of every track's sample entries in ``moov`` (the box whole): ``avc1``, ``hvc1``, ``mp4a``, ``encv``..."""
    found: set[bytes] = set()

    def walk(start: int, end: int, depth: int) -> None:
        for kind, at, size, header in bmff.boxes(moov, start, end):
            if kind != bmff.SAMPLE_DESCRIPTIONS[depth]:
                continue
            if depth == len(bmff.SAMPLE_DESCRIPTIONS) - 1:  # after the stsd's version, flags and count
                found.update(k for k, *_ in bmff.boxes(moov, at + header + 8, at + size))
            else:
                walk(at + header, at + size, depth + 1)

    walk(8, len(moov), 0)
    return found


def probe(path: str | os.PathLike[str], *, rate: Fraction | None = None) -> VideoInfo:
    """Describe ``path``; raises :class:`InputError` if it is missing, not a video, or has no video stream.

    A folder or a printf pattern names a numbered image sequence (:func:`~classsr_cli.io.sequence.find_sequence`),
    read at ``rate`` frames a second (default :data:`~classsr_cli.io.sequence.DEFAULT_RATE`)."""
    from classsr_cli.io.sequence import DEFAULT_RATE, find_sequence, is_sequence

    path = Path(path)
    if (url := url_refusal(path)) is not None:  # (a query's "?" would read as a sequence's glob)
        raise InputError(url)
    seq = find_sequence(path) if is_sequence(path) else None
    if seq is not None:
        rate = rate or DEFAULT_RATE
        path = seq.pattern
    elif not path.exists():
        raise InputError(f"{path}: no such file")
    elif path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    demux = seq.demux(rate) if seq is not None and rate else ()
    text = _run_probe(path, demux)
    head = re.search(r"Input #0, (.+?), from ", text)
    if head is None:
        if seq is None and (why := _fragments_trouble(path)):
            raise InputError(f"{path}: {why}")
        last = [ln.strip() for ln in text.splitlines() if ln.strip()]
        reason = last[-1] if last else "ffmpeg could not open it"
        reason = re.sub(r"^Error opening input files?: ", "", reason)
        if "moov atom not found" in text:
            reason = "moov atom not found (an unfinished or truncated mp4/mov)"
        if seq is None and (_starts(path, _HOLDERS) or _pillow_reads(path)):  # a picture ffmpeg cannot open (an AVIF
            raise InputError(_not_a_video(path))  # photo's in two extents, a Mac's icon, a PDF): said as one it opens is
        raise InputError(f"{path}: not a readable video ({reason})")
    fmt = head.group(1)
    if seq is None and "mp4" in fmt.split(",") and (why := _fragments_trouble(path)):
        raise InputError(f"{path}: {why}")
    if seq is None and (_IMAGE_FORMATS.match(fmt.split(",")[0])
                        or (fmt in _RAW_PICTURES and _starts(path, _HOLDERS))):  # (its JPEG: "mjpeg")
        raise InputError(_not_a_video(path))
    if _heif_still(text):  # a HEIC or AVIF photo, which ffmpeg opens as a video of one frame
        raise InputError(_not_a_video(path))
    duration = start = None
    m = _DURATION.search(text)
    if m:
        if m.group(1) is not None:  # (0: not known, as a DASH manifest of several periods lists it)
            duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) or None
        if m.group(4) is not None:
            start = float(m.group(4))
    streams: list[StreamInfo] = []
    videos: list[dict[str, object]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        sm = _STREAM.match(line)
        if not sm:
            continue
        idx, lang, kind, codec = int(sm.group(1)), sm.group(2), sm.group(3).lower(), sm.group(4)
        tag = _TAG.search(line)
        shown = {d.replace(" ", "_").replace("-", "_") for d in _DISPOSITION.findall(line)}
        block = []
        for follow in lines[i + 1 :]:
            if _STREAM.match(follow) or not follow.startswith("    "):
                break
            block.append(follow)
        said = {m.group(1).lower(): _whole_value(m.group(2)) for b in block if (m := _STREAM_TAG.match(b))}
        streams.append(StreamInfo(idx, kind, codec, lang if lang and lang != "und" else None,
                                  dispositions=frozenset(shown & _DISPOSITIONS),
                                  tag=tag.group(1).strip() if tag else None, title=said.get("title") or None,
                                  handler=said.get("handler_name") or None))  # fmt: skip
        if kind != "video" or streams[-1].attached_pic:
            continue
        size = _SIZE.search(line)
        if size:
            pix_fmt, color, w, h = size.group(1), size.group(2), int(size.group(3)), int(size.group(4))
        else:
            only = _SIZE_ONLY.search(line)
            if not only:
                continue
            pix_fmt, color, w, h = None, None, int(only.group(1)), int(only.group(2))
        rot = next((float(r.group(1)) for b in block if (r := _ROTATION.search(b))), 0.0)
        flipped = any("flip" in b.lower() and "rotation" in b.lower() for b in block)
        # VP8/VP9 with alpha (WebM) carries it beside the frames, which only libvpx's decoder reads
        decoder = _ALPHA_DECODERS.get(codec) if any(_ALPHA_MODE.match(b) for b in block) else None
        if decoder and pix_fmt:
            pix_fmt = pix_fmt.replace("yuv", "yuva", 1)
        videos.append({
            "index": idx,
            "codec": codec,
            "w": w,
            "h": h,
            "fps": _rate(line),
            "ticks": _ticks(line),
            "rot": rot,
            "flip": flipped,
            "pix_fmt": pix_fmt,
            "color": color,
            "sar": _sar(line),
            "field_order": _field_order(color),
            "decoder": decoder,
            "captions": ", Closed Captions" in line,  # as ffmpeg lists a stream whose frames carry EIA-608/708
            "dovi": next(((int(m.group(1)), int(m.group(2))) for b in block if (m := _DOVI.search(b))), None),
            "projection": next((m.group(1) for b in block if (m := _PROJECTION.match(b))), None),
            "stereo": next((m.group(1) for b in block if (m := _STEREO.match(b)) and m.group(1) != "2d"), None),
            "encrypted": any(_ENCRYPTED_STREAM.match(b) for b in block),
            "start": float(m.group(1)) if (m := _STREAM_START.search(line)) else None,
        })
    if not videos:
        kinds = ", ".join(f"{s.kind} ({s.codec})" for s in streams) or "no streams"
        if any(s.attached_pic for s in streams):
            raise InputError(f"{path}: has no video stream, only a cover picture ({kinds})")
        raise InputError(f"{path}: has no video stream ({kinds})")
    # The stream players show: the one marked default, else the first. An image sequence in HEIF (an animated AVIF,
    # brand avis) also lists its still image first, marked default too: the animation is its fastest stream.
    default = {s.index for s in streams if s.default}
    video = next((v for v in videos if v["index"] in default), videos[0])
    brand = re.search(r"^\s*major_brand\s*:\s*(\S+)", text, re.M)
    if brand and brand.group(1) in _HEIF_SEQUENCES and len(videos) > 1:
        video = max(reversed(videos), key=lambda v: float(v["fps"] or 0))  # type: ignore[arg-type]
        stills = {v["index"] for v in videos if v is not video}
        streams = [s for s in streams if s.index not in stills]  # the first frame again: not a stream left out
    if video["encrypted"]:
        raise InputError(f"{path}: {_ENCRYPTED}")
    if video["w"] == 0 or video["h"] == 0:
        raise InputError(f"{path}: video stream has no size")
    if seq is not None and rate:  # its length in frames, whatever ffmpeg rounds the duration to
        video["fps"], duration, start = float(rate), seq.count / float(rate), 0.0
    info = VideoInfo(
        path=path,
        format=fmt,
        width=video["w"],  # type: ignore[arg-type]
        height=video["h"],  # type: ignore[arg-type]
        video_index=video["index"],  # type: ignore[arg-type]
        codec=video["codec"],  # type: ignore[arg-type]
        fps=video["fps"],  # type: ignore[arg-type]
        duration=duration,
        start=start or 0.0,
        rotation=video["rot"],  # type: ignore[arg-type]
        flipped=video["flip"],  # type: ignore[arg-type]
        pix_fmt=video["pix_fmt"],  # type: ignore[arg-type]
        color=video["color"],  # type: ignore[arg-type]
        sar=video["sar"],  # type: ignore[arg-type]
        streams=tuple(streams),
        field_order=video["field_order"],  # type: ignore[arg-type]
        timecode=tc.group(1) if (tc := _TIMECODE.search(text)) else None,
        hdr10=_hdr10(path, video["index"]) if color_tags(video["color"])[2] == "smpte2084" else None,  # type: ignore[arg-type]
        chapters=len(re.findall(r"^\s*Chapter #0:\d+:", text, re.MULTILINE)),
        decoder=video["decoder"],  # type: ignore[arg-type]
        captions=bool(video["captions"]) or (seq is None and _carries_captions(path, str(video["codec"]))),
        projection=video["projection"],  # type: ignore[arg-type]
        dolby_vision=video["dovi"],  # type: ignore[arg-type]
        stereo=video["stereo"],  # type: ignore[arg-type]
        video_start=video["start"],  # type: ignore[arg-type]
        ticks=video["ticks"],  # type: ignore[arg-type]
        demux=demux,
        tags=_file_tags(text),
        **(_frame_traits(seq, video["pix_fmt"]) if seq else  # type: ignore[arg-type]
           _picture_traits(path, video["codec"], video["pix_fmt"], video["index"])),  # type: ignore[arg-type]
    )
    if (timing := info.browser_timing) is not None:  # timed as browsers show it (VideoReader)
        seconds = float(sum(timing.shown))
        info = replace(info, duration=seconds, fps=len(timing.stored) / seconds)
    elif info.codec == "apng" and seq is None and info.fps == info.ticks and (delays := frame_delays(path, "PNG")):
        # ffmpeg gives an APNG of one or two frames its time base's rate (100,000 frames/s): its frames' own is taken
        info = replace(info, fps=len(delays) / float(sum(BrowserTiming("PNG", delays).shown)))
    return info


@dataclass(frozen=True)
class HDR10:
    """HDR10 static metadata of a PQ stream: the mastering display (CIE 1931 xy of its red, green and blue primaries
    and white point; its luminance range in cd/m²) and the content light levels (MaxCLL, MaxFALL in cd/m²)."""

    primaries: tuple[tuple[float, float], ...] | None = None  # r, g, b, white point
    luminance: tuple[float, float] | None = None  # min, max
    light: tuple[int, int] | None = None

    def x265_params(self) -> list[str]:
        """As libx265 writes them (``master-display``: G, B, R, WP in units of 0.00002, L in 0.0001 cd/m²)."""
        params = []
        if self.primaries and self.luminance:
            (r, g, b, wp), (lo, hi) = self.primaries, self.luminance
            xy = "".join(f"{k}({round(x * 50000)},{round(y * 50000)})" for k, (x, y) in zip("GBR", (g, b, r), strict=True))
            params.append(f"master-display={xy}WP({round(wp[0] * 50000)},{round(wp[1] * 50000)})"
                          f"L({round(hi * 10000)},{round(lo * 10000)})")
        if self.light:
            params.append(f"max-cll={self.light[0]},{self.light[1]}")
        return params

    def describe(self) -> str:
        parts = [f"mastering display {self.luminance[1]:g} cd/m²"] if self.luminance else []
        parts += [f"MaxCLL {self.light[0]}, MaxFALL {self.light[1]}"] if self.light else []
        return ", ".join(parts)


_XY = re.compile(r"\b(r|g|b|wp)\(([\d.]+)[, ]+([\d.]+)\)")


def _advance_timecode(tc: str | None, seconds: float, fps: float | None) -> str | None:
    """``HH:MM:SS:FF`` moved on to the first frame at or after ``seconds`` at ``fps``; ``None`` for a drop-frame
    (``;``) timecode or an unknown rate."""
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d+)", tc or "")
    if not m or not fps:
        return None
    rate = round(fps)
    h, mi, se, fr = map(int, m.groups())
    total = ((h * 60 + mi) * 60 + se) * rate + fr + math.ceil(seconds * fps - 1e-6)  # the first frame at or after it
    frames, secs = total % rate, total // rate
    return f"{secs // 3600 % 24:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}:{frames:0{len(m.group(4))}d}"


def _hdr10(path: Path, index: int) -> HDR10 | None:
    """The HDR10 metadata the first frame of stream ``index`` carries (one frame decoded), ``None`` if none."""
    try:
        text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", f"0:{index}",
                               "-frames:v", "1", "-vf", "showinfo", "-f", "null", "-"],
                              capture_output=True, timeout=60, check=False).stderr.decode("utf-8", "replace")  # fmt: skip
    except subprocess.TimeoutExpired:  # pragma: no cover - a hung decoder: the main run will say more
        return None
    md = next((ln for ln in text.splitlines() if "Mastering display metadata:" in ln), "")
    xy = {k: (float(x), float(y)) for k, x, y in _XY.findall(md)}
    lum = re.search(r"min_luminance=([\d.]+), max_luminance=([\d.]+)", md)
    cll = re.search(r"MaxCLL=(\d+), MaxFALL=(\d+)", text)
    found = HDR10(
        primaries=tuple(xy[k] for k in ("r", "g", "b", "wp")) if len(xy) == 4 and "has_primaries:1" in md else None,
        luminance=(float(lum.group(1)), float(lum.group(2))) if lum and "has_luminance:1" in md else None,
        light=(int(cll.group(1)), int(cll.group(2))) if cll else None,
    )
    return found if found != HDR10() else None


#: Frames :func:`h264_qp` reads: a second of most footage, past the first frame (an I frame, coded finer than the
#: frames predicted from it).
QP_FRAMES = 25
#: The decoding threads of the QP read: one, as ffmpeg's frame-threaded H.264 decoder now and then exports a frame's
#: QPs as zero (2 of 300 reads of a 10-frame clip under load; none of 900 on one thread: ``scripts/qp_read_repeat.py``,
#: docs/experiments.md; 0 is ffmpeg's default, a thread a core and one more).
QP_DECODE_THREADS = 1


def h264_qp(info: VideoInfo, frames: int = QP_FRAMES) -> float | None:
    """How coarsely an H.264 stream is quantized: the mean QP (0-51, on the 8-bit scale; the higher, the coarser) of
    its macroblocks over the first ``frames`` frames of ``info``'s part (:meth:`VideoInfo.trimmed`), as ffmpeg's
    decoder exports them (:func:`h264_frame_qps`); ``None`` for another codec, or where the decoder exports none."""
    if info.codec != "h264" or info.demux:
        return None
    cut, head = _cut(info)
    try:
        stat = info.path.stat()
    except OSError:
        return None
    qps = _frame_qps((*cut, "-i", str(info.path), "-map", f"0:{info.video_index}", "-frames:v", str(frames)), head,
                     (stat.st_mtime_ns, stat.st_size))[:frames]  # (the filters may see one frame more)
    depth = int(m.group(1)) if (m := re.search(r"p(\d+)(?:le|be)?$", info.pix_fmt or "")) else 8
    return sum(qps) / len(qps) - 6 * (depth - 8) if qps else None  # QP's range starts at -6 per bit above 8


def h264_frame_qps(path: Path, frames: int | None = None) -> list[float]:
    """Each frame's mean macroblock QP of the H.264 file ``path`` (its first ``frames``; all by default), in order of
    presentation: each block's QP is the picture's initial one, which encoders set to a constant (libx264 its CRF,
    or 26 under a bit rate, whatever the bits spent), plus the block's own offset, where the rate control's
    coarseness lies. Read through ffmpeg's ``codecview`` filter, which paints each block's QP into the chroma; each
    frame's mean comes back within 0.15 of the blocks'. On the 8-bit scale for an 8-bit stream (a deeper one's read
    6 higher a bit: :func:`h264_qp` takes that off). Empty where the decoder exports no QPs (another codec)."""
    stat = path.stat()
    return list(_frame_qps(("-i", str(path), *(("-frames:v", str(frames)) if frames else ())), "",
                           (stat.st_mtime_ns, stat.st_size))[:frames])


@functools.lru_cache(maxsize=8)
def _frame_qps(args: tuple[str, ...], head: str, stamp: tuple[int, int]) -> tuple[float, ...]:
    """:func:`h264_frame_qps`' decode, ``args`` the input and the frames, ``head`` the start of the filter chain (a
    part's ``trim``), ``stamp`` the file's time and size (a file written again is read again): once per part in a
    run (``--model auto`` and the first frame's note both ask)."""
    try:
        text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-export_side_data", "venc_params",
                               "-threads", str(QP_DECODE_THREADS), *args,
                               "-vf", head + "codecview=qp=1,extractplanes=u,showinfo", "-f", "null", "-"],
                              capture_output=True, timeout=120, check=False).stderr.decode("utf-8", "replace")  # fmt: skip
    except subprocess.TimeoutExpired:  # pragma: no cover - a hung decoder: the main run will say more
        return ()
    if "Video encoding parameters" not in text:  # codecview painted nothing: the chroma is the picture's
        return ()
    # codecview writes each block's QP as QP * 128 / 31, truncated, into the U plane; showinfo gives its mean, rounded
    return tuple((int(m) + 0.5) * 31 / 128 for m in re.findall(r"\bn:\s*\d+\s.*?\bmean:\[(\d+)\]", text))


# ---------------------------------------------------------------------------------------------------- reading


@dataclass
class Frame:
    """One decoded frame: ``rgb`` ``(H, W, 3)`` uint8 (uint16 when read at 16 bits), ``pts`` and ``duration`` in
    ``time_base`` ticks, its ``(H, W)`` ``alpha`` where the reader reads it (else ``None``), and a linear frame's
    light outside 0-1 (``(H, W, C)`` float32, at the sequence's stops, as :attr:`classsr_cli.io.exr.Linear.outside`)
    where the reader keeps it (``light``) and there is some."""

    index: int
    rgb: np.ndarray
    pts: int
    duration: int | None
    alpha: np.ndarray | None = None
    outside: np.ndarray | None = None


#: How long ffmpeg may go without using CPU time while classsr waits on it (the encoder taking a frame or finishing the
#: file, the decoder giving the next frame) before it is taken as hung and killed: x265 deadlocked once here with all
#: its threads waiting (docs/experiments.md, "Fixed: a hung encoder (or decoder) is stopped"). A working ffmpeg uses
#: CPU time whenever it has work; one whose disk stalls this long is stopped too.
STALL_SECONDS = 300.0
#: How long the decoder may work (using CPU time) without giving the next frame before it is taken as looping and
#: killed: ffmpeg's DASH reader loops at the end of some manifests' segments, busy, for ever (androidx/media's
#: ``captions_h265`` test manifest). A frame a seek drops its way to (a program stream's resume decodes from the
#: start) takes minutes at most.
SPIN_SECONDS = 900.0


def cpu_ticks(pid: int) -> int | None:
    """The CPU time process ``pid`` has used so far (all its threads, in clock ticks), or ``None`` where the system
    does not tell (no ``/proc``: not Linux) or the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()  # from field 3 (the state) on: the name may hold spaces
    try:
        return int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15
    except (IndexError, ValueError):
        return None


class _Watchdog(threading.Thread):
    """Kills ``proc`` once it has used no CPU time for ``seconds`` while the caller waits on it (:meth:`waiting`), or,
    given ``spin``, once one wait has lasted ``spin`` seconds however busy it is (:attr:`spun`: a decoder looping);
    :attr:`fired` then says so. Where CPU time cannot be read (not Linux) it does nothing."""

    def __init__(self, proc: subprocess.Popen[bytes], seconds: float, spin: float | None = None) -> None:
        super().__init__(daemon=True)
        self.proc, self.seconds, self.spin = proc, seconds, spin
        self.fired = self.spun = False
        self._waits = self._entered = 0  # waits going on, and begun
        self._ticks: int | None = None  # the CPU time last seen,
        self._still = 0.0  # how long the caller has waited on it since it last moved,
        self._seen: float | None = None  # and when it was last looked at
        self._wait, self._waited = 0, 0.0  # the wait last seen going on, and how long it has lasted
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        with self._lock:
            self._waits += 1
            self._entered += 1
        try:
            yield
        finally:
            with self._lock:
                self._waits -= 1

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        while not self._stopped.wait(self.poll):
            ticks = cpu_ticks(self.proc.pid)
            if ticks is None or self.proc.poll() is not None:
                return
            with self._lock:
                waited, entered = self._waits > 0, self._entered
            if self.stalled(ticks, waited, time.monotonic(), entered):
                self.fired = True
                self.proc.kill()
                return

    @property
    def poll(self) -> float:
        return min(5.0, self.seconds / 10, self.spin / 10 if self.spin is not None else 5.0)

    def stalled(self, ticks: int, waited: bool, now: float, entered: int = 0) -> bool:
        """One look at the encoder (its CPU time, whether the caller waits on it, when, and how many waits have begun):
        whether it has used none for :attr:`seconds` of waiting, or (given :attr:`spin`) one wait has lasted that long
        (:attr:`spun`). A gap between looks counts as two polls at most: while classsr itself was stopped (Ctrl-Z, a
        suspended machine) the encoder was not waited on."""
        gap = min(now - self._seen, 2 * self.poll) if self._seen is not None else 0.0
        self._seen = now
        same = waited and entered == self._wait
        self._wait, self._waited = entered, self._waited + gap if same else 0.0
        if self.spin is not None and self._waited >= self.spin:
            self.spun = True
            return True
        if not waited or ticks != self._ticks:  # working, or waiting on the caller: the count starts again
            self._ticks, self._still = ticks, 0.0
            return False
        self._still += gap
        return self._still >= self.seconds


def run_watched(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg ``cmd`` to its end (no input; its output and errors kept), killed if it hangs (no CPU time for
    :data:`STALL_SECONDS`: :class:`_Watchdog`), which its exit status (-9) and a last error line then say."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = _Watchdog(proc, STALL_SECONDS)
    watchdog.start()
    try:
        with watchdog.waiting():
            out, err = proc.communicate()
    finally:
        watchdog.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if watchdog.fired:
        err += f"\n[error] ffmpeg hung: it used no CPU time for {watchdog.seconds:g} s, and was stopped".encode()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


#: What a decoder logs of a frame that refers to what came before the file's start (a TV recording's or an HLS
#: segment's first frames, before its first keyframe): H.264's and HEVC's parameter sets not yet seen, their
#: reference pictures, MPEG-2's sequence header (its size unknown).
_UNREFERENCED = re.compile(r"\] \[error\] (non-existing [PS]PS \d+ referenced|no frame!|co located POCs unavailable|"
                           r"mmco: unref short failure|Missing reference picture.*|[PS]PS id out of range: \d+|"
                           r"Could not find ref with POC -?\d+|Error constructing the frame RPS\.|"
                           r"Invalid frame dimensions 0x0\.)$")


#: What ffmpeg's decoder thread logs of every packet or frame that fails to decode. ffmpeg logs a line in pieces from
#: its threads at once: such a message can land inside a line showinfo is writing, without its level (a few runs in
#: 200 of ``scripts/damaged_frame_repeat.py`` beside other work left a damaged frame unsaid), so it is looked for there
#: too.
_GLUED_ERROR = re.compile(r"(Error submitting \w+ to decoder: |Decoding error: ).*$")


class _StderrPump(threading.Thread):
    """Drains a child's stderr: keeps the last lines and the error lines, hands ``showinfo`` lines to a queue."""

    _INFO = re.compile(r"\bn:\s*(\d+)\s+pts:\s*(-?\d+)\s(?:.*?\bduration:\s*(-?\d+))?")
    _TB = re.compile(r"config in time_base: (\d+)/(\d+)")
    _SIZE = re.compile(r"\bs:(\d+)x(\d+)\b")

    _ID = re.compile(r"Parsed_showinfo_(\d+)")

    def __init__(self, stream: object, timestamps: bool = False, split: bool = False,
                 on_error: Callable[[], object] | None = None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.on_error = on_error  # called at the first error line
        self.last_decoded: int | None = None  # the last frame's pts, as decoded (the first showinfo's)
        self.timestamps = timestamps
        # Two showinfo filters, one before a `select` (every frame decoded) and one after (the frames delivered): the
        # first's timestamps go to `decoded`, the second's to `stamps`; its sizes are the first's alone.
        self.split = split
        self._before: str | None = None  # the first showinfo's name: it sees frame 0, whatever select drops
        self.decoded: deque[int] = deque()
        self.tail: deque[str] = deque(maxlen=_TAIL)
        self.errors: deque[str] = deque(maxlen=_TAIL)
        self.first_error: str | None = None  # kept whatever follows (dnxhd lists 70 profiles after its error)
        self.n_errors = 0
        self.n_unreferenced = 0  # of them, a frame's before its stream's parameter sets or references (_UNREFERENCED)
        self.time_base: Fraction | None = None
        self.stamps: deque[tuple[int, int | None]] = deque()
        self.size: tuple[int, int] | None = None  # the first frame's (width, height), as decoded
        self.resized: list[tuple[int, int, int]] = []  # (frame, width, height) of frames decoded at another size
        self.seen = 0  # showinfo's frames
        self.cond = threading.Condition()
        self.done = False

    def forget_errors(self) -> None:
        """Count none of the error lines so far: a near seek's (:func:`near_seek`), whose frames before a keyframe do
        not decode (an open GOP's leading pictures); they come before the part, which is trimmed after them."""
        self.n_errors, self.n_unreferenced, self.first_error = 0, 0, None
        self.errors.clear()

    def run(self) -> None:
        try:
            for raw in iter(self.stream.readline, b""):  # type: ignore[attr-defined]
                line = raw.decode("utf-8", "replace").rstrip()
                if self.timestamps and "Parsed_showinfo" in line:
                    self._showinfo(line)
                    if glued := _GLUED_ERROR.search(line):  # a decoder's error logged inside showinfo's line
                        self._error(f"[error] {glued.group(0)}")
                    continue
                if not line:
                    continue
                self.tail.append(line)
                if "[error]" in line or "[fatal]" in line or "[panic]" in line:
                    self._error(line)
        finally:
            with self.cond:
                self.done = True
                self.cond.notify_all()

    def _error(self, line: str) -> None:
        self.n_errors += 1
        self.n_unreferenced += bool(_UNREFERENCED.search(line))
        self.errors.append(line)
        self.first_error = self.first_error or line
        if self.on_error is not None:
            self.on_error()
            self.on_error = None

    def _showinfo(self, line: str) -> None:
        tb = self._TB.search(line)
        if tb and self.time_base is None:
            self.time_base = Fraction(int(tb.group(1)), int(tb.group(2)))
            return
        m = self._INFO.search(line)
        if not m:
            return
        before = True
        if self.split:
            name = (self._ID.search(line) or m).group(0)
            self._before = self._before or name
            before = name == self._before
        if before:
            self.last_decoded = int(m.group(2))
            if size := self._SIZE.search(line):
                wh = (int(size.group(1)), int(size.group(2)))
                if self.size is None:
                    self.size = wh
                elif wh != self.size and len(self.resized) < 1000:  # by count: a new size restarts showinfo's n
                    self.resized.append((self.seen, *wh))
            self.seen += 1
        dur = int(m.group(3)) if m.group(3) is not None else None
        with self.cond:
            if before and self.split:
                self.decoded.append(int(m.group(2)))
            else:
                self.stamps.append((int(m.group(2)), dur if dur and dur > 0 else None))
            self.cond.notify_all()

    def next_stamp(self, timeout: float = 60.0) -> tuple[int, int | None] | None:
        with self.cond:
            self.cond.wait_for(lambda: self.stamps or self.done, timeout=timeout)
            return self.stamps.popleft() if self.stamps else None

    def next_decoded(self, timeout: float = 60.0) -> int | None:
        """The next decoded frame's pts (``split``), in decoding order; ``None`` after the last."""
        with self.cond:
            self.cond.wait_for(lambda: self.decoded or self.done, timeout=timeout)
            return self.decoded.popleft() if self.decoded else None

    def message(self) -> str:
        """The most telling line: the first error, or the last line ffmpeg printed (not its closing statistics)."""
        said = [ln for ln in self.tail if not _STATISTICS.match(ln)]
        line = self.first_error or (said[-1] if said else None)
        if line is None:
            return "no message"
        return re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()


#: ffmpeg's statistics line (``frame=    0 fps=0.0 q=0.0 Lsize=...``), which it prints last even with ``-nostats``.
_STATISTICS = re.compile(r"^(\[[^\]]*\]\s*)*frame=\s*\d+ ")


#: Demuxers whose index makes ffmpeg's input seek exact (it decodes from the keyframe before and drops the rest);
#: elsewhere (MPEG-TS, program streams, raw streams) it can land on the next keyframe, seconds late.
_INDEXED = ("mov", "mp4", "matroska", "webm", "avi", "flv", "asf", "ogg", "image2")


#: Demuxers whose input seek lands near the time asked but not at it (ffmpeg 9: MPEG-TS, program streams), at the
#: keyframe after it; a part far into one is read from a seek this many seconds before its start (each tried in turn,
#: :func:`near_seek`) and trimmed on the decoded frames' timestamps, as from the file's start: the frames the same.
_NEAR_SEEK, NEAR_SEEK_MARGINS = ("mpegts", "mpeg"), (10.0, 60.0)


def near_seek(info: VideoInfo) -> float | None:
    """How many seconds before ``info``'s part (:meth:`~VideoInfo.trimmed`) a reader of a :data:`_NEAR_SEEK`
    container can seek and still decode every frame of the part: the first margin of :data:`NEAR_SEEK_MARGINS`
    whose seek lands (its first packet, listed without decoding) on a keyframe half a second or more before the part;
    ``None``: none does, the part starts within the first margin, or another container."""
    if not info.seek or info.demux or not any(name in info.format.split(",") for name in _NEAR_SEEK):
        return None
    try:
        stat = info.path.stat()
    except OSError:
        return None
    return _near_seek(info.path, (stat.st_mtime_ns, stat.st_size), info.video_index, info.seek)


@functools.cache
def _near_seek(path: Path, stamp: tuple[int, int], index: int, seek: float) -> float | None:
    """:func:`near_seek` of the file ``path`` as ``stamp`` (its mtime and size) found it."""
    for margin in NEAR_SEEK_MARGINS:
        if seek <= margin:
            return None
        listed = _listed(["-ss", f"{seek - margin:.6f}"], path, index, 1, timeout=120)
        if listed is None or not listed[1]:
            return None
        pts, flags = listed[1][0]
        at = pts * listed[0]  # from the seek's time, as it is cut
        if flags & 1 and pts != _NO_PTS and at <= margin - 0.5:  # (no timestamp: it cannot say where it landed)
            return margin
    return None


def _cut(info: VideoInfo, *, near: bool = True) -> tuple[list[str], str]:
    """How the reader takes ``info``'s :meth:`~VideoInfo.trimmed` part: input options (an exact seek in an indexed
    container) or the head of its filter chain (``trim``, for the others: from a seek before the part where
    :func:`near_seek` finds one and ``near``, else from the file's start); either way the part's timestamps start at
    0. An animation timed as browsers show it (:attr:`VideoInfo.browser_timing`) is cut between its frames on
    ffmpeg's clock."""
    if not (info.seek or info.span):
        return [], ""
    info = _on_ffmpegs_clock(info)
    if any(name in info.format.split(",") for name in _INDEXED):
        # ffmpeg's input -t counts from the video stream's first frame, not from the part's start: a video that
        # starts later than its file (an edit list's shift, audio first) reads frames past the part, which ``trim``
        # then drops (on the clock the seek starts at 0)
        return ((["-ss", f"{info.seek:.6f}"] if info.seek else []) + (["-t", f"{info.span:.6f}"] if info.span else []),
                _trim_end(info))  # fmt: skip
    end = f":duration={info.span:.6f}" if info.span else ""
    if near and (margin := near_seek(info)) is not None:  # the clock then starts at the seek
        return ["-ss", f"{info.seek - margin:.6f}"], f"trim=start={margin:.6f}{end},setpts=PTS-STARTPTS,"
    return [], f"trim=start={info.seek:.6f}{end},setpts=PTS-STARTPTS,"  # ffmpeg's clock starts at the file's start


def _on_ffmpegs_clock(info: VideoInfo) -> VideoInfo:
    """``info``'s part as ffmpeg is told to cut it: an animation timed as browsers show it
    (:attr:`VideoInfo.browser_timing`) cut between its frames on ffmpeg's clock, clear of its rounding."""
    if (timing := info.browser_timing) is None or not (info.seek or info.span):
        return info
    ffmpeg, (first, last) = timing.starts(timing.decoded), timing.part(info.seek, info.span)
    seek = (ffmpeg[first - 1] + ffmpeg[first]) / 2 if first else Fraction(0)
    span = None if info.span is None else (ffmpeg[last - 1] + ffmpeg[last]) / 2 - ffmpeg[first]  # from that frame
    return replace(info, seek=float(seek), span=None if span is None else float(span))


def _frames_before(info: VideoInfo, upto: int) -> int | None:
    """How many of the file's frames come before ``info``'s part (:meth:`~VideoInfo.trimmed`: those ``trim`` drops,
    before its seek, by the packets' timestamps; ``upto``: how many frames the file has at most); ``None`` where
    ffmpeg cannot list them."""
    seek = Fraction(f"{_on_ffmpegs_clock(info).seek:.6f}")  # as the trim filter is given it
    listed = _listed([], info.path, info.video_index, upto, timeout=120)
    if listed is None or any(pts == _NO_PTS for pts, _ in listed[1]):
        return None
    return sum(1 for pts, _ in listed[1] if pts * listed[0] < seek)


def _trim_end(info: VideoInfo) -> str:
    """The ``trim`` that ends ``info``'s part (from 0, after its seek) at its :attr:`~VideoInfo.span` (none for the
    rest of the file): in the stream's ticks, rounded up, where they are listed (``trim=end`` in seconds is rounded to
    the nearest tick: an animated AVIF at a tick a second lost every frame of a part under half a second), else in
    seconds."""
    if not info.span:
        return ""
    if info.ticks:
        return f"trim=end_pts={math.ceil(info.span * info.ticks - 1e-6)},"
    return f"trim=end={info.span:.6f},"


@dataclass(frozen=True)
class KeyframeSeek:
    """Where a reader of a file can start decoding to give frame ``first`` exactly (:func:`keyframe_seek`): at
    ``seconds`` (the keyframe's time, ffmpeg's ``-ss`` with ``-copyts``, which keeps the stream's timestamps), where
    frame ``at`` (the keyframe, in display order) is the first frame decoded; ``before`` the timestamps of the frames
    before it, and ``expect`` frame ``first``'s, which the reader checks the frame it gets against (in the stream's
    time base, which a deinterlacer halves for the frames it gives)."""

    at: int
    seconds: str
    before: tuple[int, ...]
    expect: int
    time_base: Fraction  # of ``before`` and ``expect``: the stream's
    #: What ``-copyts`` keeps that reading from the start takes off every timestamp: the stream's start, in its ticks.
    shift: int = 0
    #: A near seek (MPEG-TS, :data:`_NEAR_SEEK`): ``seconds`` is a second before the keyframe before frame ``at``
    #: (the seek lands on the keyframe after it), and the reader trims the frames before ``at`` from ``trim`` (its
    #: timestamp as ``-copyts`` keeps it); ``None``: an exact seek to the keyframe ``at``.
    trim: int | None = None


#: Packets listed past the one a seek is for: more than any decoder holds back to put frames in display order.
_REORDER_PACKETS = 64


def _packets(info: VideoInfo, upto: int, *, copyts: bool = False) -> tuple[Fraction, list[tuple[int, bool]]] | None:
    """The video stream's time base, and the timestamps (in that time base) of its first ``upto`` packets in decode
    order, each with whether it is a keyframe, read from the container (nothing decoded); packets the demuxer marks
    to discard are left out. ``copyts``: the timestamps as ``-copyts`` keeps them (else as reading from the start
    gives them). ``None`` where ffmpeg cannot list them or one has no timestamp."""
    listed = _listed(["-copyts"] if copyts else [], info.path, info.video_index, upto, timeout=3600)
    if listed is None or any(pts == _NO_PTS for pts, _ in listed[1]):  # a frame with no timestamp to place it by
        return None
    return listed[0], [(pts, bool(flags & 1)) for pts, flags in listed[1] if not flags & 4]  # 4: discarded, never shown


#: ffmpeg's AV_NOPTS_VALUE: a packet without a timestamp.
_NO_PTS = -(2**63)


def _listed(before: list[str], path: Path, index: int, upto: int, *,
            timeout: float) -> tuple[Fraction, list[tuple[int, int]]] | None:
    """Stream ``index`` of ``path``'s time base and its first ``upto`` packets' timestamps (that time base) and flags
    (ffmpeg's: 1 a keyframe, 4 to discard; a packet saying none is a keyframe), copied from the container by ffmpeg's
    ``framecrc`` muxer with the input options ``before``, nothing decoded; ``None`` where ffmpeg cannot list them."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", *before, "-i", str(path),
                               "-map", f"0:{index}", "-c", "copy", "-frames:v", str(upto), "-f", "framecrc", "-"],
                              capture_output=True, check=False, timeout=timeout)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = proc.stdout.decode("ascii", "replace")
    tb = re.search(r"^#tb 0: (\d+)/(\d+)", text, re.MULTILINE)
    if proc.returncode != 0 or tb is None:
        return None
    packets = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        flags = int(fields[6][2:], 16) if len(fields) > 6 and fields[6].startswith("F=") else 1
        packets.append((int(fields[2]), flags))
    return Fraction(int(tb.group(1)), int(tb.group(2))), packets


def keyframe_seek(info: VideoInfo, first: int, *, strict: bool = False) -> KeyframeSeek | None:
    """Where to start decoding ``info`` to reach frame ``first`` without decoding the frames before the last keyframe
    at or before it (``strict``: before it, for a filter that needs the frame before: deinterlacing), or ``None``:
    no keyframe after the first one there, or a source whose frames this cannot count from its packets (an image
    sequence, a part, a container whose seek is neither exact nor near, packets without timestamps (MPEG program
    streams), timestamps repeated). The frames' indices are counted from the timestamps of the packets up to a little
    past frame ``first`` (listed from the container, a small part of decoding them), in display order, as the decoder
    gives the frames; the reader checks the frame it gets and reads from the start where it differs. Into MPEG-TS,
    whose seek lands on the keyframe after the time asked, it seeks a second before the keyframe at or before the
    frame needed first (10 s before that frame where no keyframe is listed) and trims the frames before it
    (:attr:`KeyframeSeek.trim`)."""
    formats = info.format.split(",")
    near = any(name in formats for name in _NEAR_SEEK)
    if (info.sequence or info.seek or info.span or not first
            or not (near or any(name in formats for name in _INDEXED if name != "image2"))):
        return None
    listed = _packets(info, first + 1 + _REORDER_PACKETS)  # frame ``first`` is among them, and every frame before
    if listed is None:
        return None
    tb, packets = listed
    shown = sorted(pts for pts, _ in packets)
    if first >= len(shown) or len(set(shown)) != len(shown):
        return None
    expect = shown[first]
    if near:  # its seek lands on the keyframe after the time asked: just before the one before ``at``, trimmed to it
        at = first - 1 if strict else first
        keys = [pts for pts, key in packets if key and pts <= shown[at]]
        before = max(keys) * tb - 1 if keys else shown[at] * tb - Fraction(NEAR_SEEK_MARGINS[0])
        seconds = math.floor(before * 10**6) / 10**6
        kept = _packets(info, 1 + _REORDER_PACKETS, copyts=True)  # MPEG-TS: the start taken off is the video's own
        if seconds <= 0 or kept is None or kept[0] != tb or not kept[1]:
            return None
        shift = min(pts for pts, _ in kept[1]) - min(shown[: len(kept[1])])
        return KeyframeSeek(at, f"{seconds:.6f}", tuple(shown[:at]), expect, tb, shift, trim=shown[at] + shift)
    keys = [pts for pts, key in packets if key and (pts < expect if strict else pts <= expect)]
    at = bisect.bisect_left(shown, max(keys)) if keys else 0
    if not at:
        return None
    seconds = math.floor(shown[at] * tb * 10**6) / 10**6  # at or just before the keyframe: it is decoded, and shown
    # Reading from the start, ffmpeg takes the container's start (whole microseconds) off every timestamp, rounded to
    # the nearest tick, half away from 0 (av_rescale_q); the listing's timestamps are so too, -copyts keeps it on.
    start = Fraction(round(info.start * 10**6), 10**6) / tb
    shift = int(math.copysign(math.floor(abs(start) + Fraction(1, 2)), start))
    return KeyframeSeek(at, f"{seconds:.6f}", tuple(shown[:at]), expect, tb, shift)


#: swscale's names of the Y'CbCr matrices ffmpeg lists (``in_color_matrix``).
_SWS_MATRIX = {"bt709": "bt709", "bt2020nc": "bt2020", "bt2020c": "bt2020", "smpte170m": "bt601", "bt470bg": "bt601",
               "smpte240m": "smpte240m", "fcc": "fcc"}  # fmt: skip


def decode_matrix(info: VideoInfo) -> str | None:
    """The matrix a source's Y'CbCr is read with (swscale's name): the one its header lists, which is what players
    follow (a file remuxed with its stream's tags cleared still lists it, and ffmpeg would read BT.601); untagged, as
    players take it: BT.709 for HD (1280 wide or more than 576 high), else BT.601. ``None``: leave it to ffmpeg
    (RGB sources, other matrices)."""
    matrix = color_tags(info.color)[0]
    if matrix is None:
        return "bt709" if info.width >= 1280 or info.height > 576 else "bt601"
    return _SWS_MATRIX.get(matrix)


#: swscale flags of the decoder's YUV -> RGB and the encoder's RGB -> YUV conversions: bicubic chroma, exact rounding.
DECODE_FLAGS, ENCODE_FLAGS = "bicubic+accurate_rnd+full_chroma_int", "bicubic+accurate_rnd"

#: Pictures this small (a side, in pixels) are converted to 16-bit RGB by way of 16-bit 4:4:4 (:func:`to_16bit`).
SMALL_SIDE = 16
#: The 16-bit formats with every sample at full size that a picture passes through there: the bundled ffmpeg chooses
#: the one that keeps what it has (YUV stays YUV, RGB RGB, gray gray, alpha alpha).
_FULL16 = "format=pix_fmts=yuv444p16le|yuva444p16le|gbrp16le|gbrap16le|gray16le"


def to_16bit(width: int, height: int, scale: str = "") -> str:
    """The filters before the conversion of a ``width`` x ``height`` picture into 16-bit RGB (``scale``: that
    conversion's own ``scale`` filter, appended), so that it comes out right: the bundled ffmpeg's swscale (9.0)
    gives a 4:2:0 picture of 7 or 8 rows in 16-bit RGB with every row after the first at full scale (green or white;
    any flags), and 8-bit RGB right. By way of 16-bit 4:4:4 it comes out right, and at other sizes as the direct
    conversion does but at a few saturated colour edges, where bicubic's overshoot is clipped in YUV first
    (``scripts/swscale_small.py``); small pictures go that way (a side up to :data:`SMALL_SIDE`), the others
    directly."""
    if min(width, height) > SMALL_SIDE:
        return scale
    return ",".join(f for f in (f"scale=flags={DECODE_FLAGS}", _FULL16, scale) if f)


#: The names ffmpeg's RGB pixel formats start with (a palette's too).
_RGB_FORMATS = ("gbr", "rgb", "bgr", "argb", "abgr", "0rgb", "0bgr", "x2rgb", "x2bgr", "pal8")
#: 16-bit formats a probe's white is made in, by the family of the format it is converted into (RGB, gray, Y'CbCr).
_WHITE16 = (_RGB_FORMATS, "gbrp16le"), (("gray", "ya"), "gray16le")


def _full(pix_fmt: str, color: str | None) -> bool:
    """Whether frames of ``pix_fmt`` with ffmpeg's colour properties ``color`` (``"pc, bt709"``) are full range."""
    return pix_fmt.startswith("yuvj") or "pc" in (p.strip() for p in (color or "").split(","))


@functools.cache
def _decoded_white(exe: str, pix_fmt: str, full: bool, side: int) -> int:
    """:func:`decoded_white` from a ``side`` x ``side`` white picture made in ``pix_fmt`` (no dither) and converted as
    the reader converts."""
    white16 = next((base for prefixes, base in _WHITE16 if pix_fmt.startswith(prefixes)), "yuv444p16le")
    planes = {"gbrp16le": 3, "gray16le": 1}.get(white16, 3)
    levels = np.full((planes, side, side), 65535 if full or white16 != "yuv444p16le" else 235 << 8, "<u2")
    if white16 == "yuv444p16le":
        levels[1:] = 32768
    rng = "pc" if full else "tv"
    convert = to_16bit(side, side, f"scale=in_color_matrix=bt709:flags={DECODE_FLAGS},format=rgb48le")
    got = b""
    for dither in ("sws_dither=none:", ""):  # (an ffmpeg whose scale filter takes no sws_dither: the median copes)
        cmd = [exe, "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", white16, "-s", f"{side}x{side}", "-i",
               "-", "-vf", f"setparams=range={rng},scale={dither}flags=accurate_rnd,format={pix_fmt},"
                           f"setparams=range={rng}:colorspace=bt709,{convert}", "-f", "rawvideo", "-"]  # fmt: skip
        try:
            got = subprocess.run(cmd, input=levels.tobytes(), capture_output=True, check=False, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            return 65535
        if len(got) == side * side * 6:
            break
    white = int(np.median(np.frombuffer(got, "<u2"))) if len(got) == side * side * 6 else 65535
    return white if 60000 < white < 65535 else 65535  # (another answer: not this error; left as it came)


def decoded_white(pix_fmt: str | None, color: str | None, small: bool = False) -> int:
    """The 16-bit RGB level this ffmpeg's swscale converts white of a ``pix_fmt`` picture into, with the reader's
    flags (:data:`DECODE_FLAGS`; ``color``: ffmpeg's colour properties, which give the range; ``small``: a picture
    converted by way of 16-bit 4:4:4, :func:`to_16bit`), measured once: 65535 is right, and the bundled ffmpeg
    (n9.0.2) gives a limited-range Y'CbCr or an 8-bit RGB picture's white as 65283, every level in proportion, and a
    full-range or gray one's levels shifted up (10 bits: 1023 as 65472; 8 bits: 255 as 65280;
    ``scripts/swscale_white.py``). 65535 where the conversion is right or ffmpeg does not answer."""
    if not pix_fmt:
        return 65535
    try:
        exe = ffmpeg_exe()
    except VideoError:
        return 65535
    return _decoded_white(exe, "rgb24" if pix_fmt == "pal8" else pix_fmt, _full(pix_fmt, color), 8 if small else 32)


@functools.cache
def _white_lut(white: int) -> np.ndarray:
    return np.minimum((np.arange(65536, dtype=np.uint64) * 65535 + white // 2) // white, 65535).astype(np.uint16)


def stretched(levels: np.ndarray, white: int) -> np.ndarray:
    """16-bit ``levels`` whose white is ``white`` (:func:`decoded_white`) stretched to 0-65535, rounded (those above
    it clipped)."""
    return levels if white >= 65535 else np.take(_white_lut(white), levels)


@functools.cache
def _encoded_white(exe: str, bits: int, full: bool) -> tuple[float, float]:
    """:func:`encoded_white` and where swscale centres chroma, in codes from where it should (half a code low: -0.5),
    from a gray ramp of every 16-bit level and, below it, as many seeded colours converted by BT.709."""
    ramp = np.repeat(np.arange(65536, dtype="<u2").reshape(256, 256, 1), 3, axis=2)
    colours = np.random.default_rng(0).integers(0, 65536, (256, 256, 3)).astype("<u2")
    out, rng = ("yuv444p" if bits <= 8 else f"yuv444p{bits}le"), "pc" if full else "tv"
    cmd = [exe, "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", "256x512", "-i", "-", "-vf",
           f"scale=out_color_matrix=bt709:out_range={rng}:flags={ENCODE_FLAGS},format={out}", "-f", "rawvideo", "-"]  # fmt: skip
    try:
        got = subprocess.run(cmd, input=ramp.tobytes() + colours.tobytes(), capture_output=True, check=False,
                             timeout=60).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return 65535.0, 0.0
    size = 1 if bits <= 8 else 2
    if len(got) != 3 * 2 * 65536 * size:
        return 65535.0, 0.0
    planes = np.frombuffer(got, "u1" if size == 1 else "<u2").reshape(3, 2, 65536).astype(np.int64)
    black, top = (0, (1 << bits) - 1) if full else (16 << (bits - 8), 235 << (bits - 8))
    # luma = black + (top - black) * level / white, dithered at 8 bits: a straight line fitted through 10-90 %
    slope, start = np.polyfit(np.arange(6554, 58982), planes[0, 0, 6554:58982], 1)
    white = float((top - black) / slope) if slope > 0 else 0.0
    if not (60000 < white <= 65536 and abs(start - black) < 0.5):
        return 65535.0, 0.0
    rgb = colours.reshape(65536, 3).astype(np.float64) / white
    luma = rgb @ np.array([0.2126, 0.7152, 0.0722])
    scale = (1 << bits) - 1 if full else 224 << (bits - 8)
    chroma = np.stack([(rgb[:, 2] - luma) / 1.8556, (rgb[:, 0] - luma) / 1.5748]) * scale + (1 << (bits - 1))
    inside = ((chroma > 0) & (chroma < (1 << bits) - 1)).all(0)
    centre = float((planes[1:, 1] - chroma)[:, inside].mean())
    return min(white, 65535.0), centre


@functools.cache
def _encoded_rgb_white(exe: str, pix_fmt: str) -> tuple[float, float]:
    """:func:`encoded_white` of an RGB output (8-bit packed or deeper planar), from a gray ramp of every 16-bit level:
    the level a straight line through its green codes reaches white at; and how far that line starts below 0, in
    codes (swscale shifts 16 bits into 10 without rounding: half a code)."""
    bits = bit_depth(pix_fmt)
    ramp = np.repeat(np.arange(65536, dtype="<u2").reshape(256, 256, 1), 3, axis=2)
    out = "rgb24" if bits <= 8 else f"gbrp{bits}le"
    cmd = [exe, "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", "256x256", "-i", "-", "-vf",
           f"scale=flags={ENCODE_FLAGS},format={out}", "-f", "rawvideo", "-"]  # fmt: skip
    try:
        got = subprocess.run(cmd, input=ramp.tobytes(), capture_output=True, check=False, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 65535.0, 0.0
    if len(got) != 3 * 65536 * (1 if bits <= 8 else 2):
        return 65535.0, 0.0
    samples = np.frombuffer(got, "u1" if bits <= 8 else "<u2")
    green = samples[1::3] if bits <= 8 else samples[:65536]  # (packed RGB; planar G, B, R)
    slope, start = np.polyfit(np.arange(6554, 58982), green[6554:58982].astype(np.float64), 1)
    white = float(((1 << bits) - 1) / slope) if slope > 0 else 0.0
    return (min(white, 65535.0), float(-start)) if 60000 < white <= 65536 and abs(start) < 1 else (65535.0, 0.0)


def encoded_white(pix_fmt: str, full: bool | None = None) -> float:
    """The 16-bit RGB level this ffmpeg's swscale codes as white in a Y'CbCr or gray ``pix_fmt`` output with the
    writer's flags, measured once (a straight line through the luma of a ramp of levels): 65535 is right, and the bundled ffmpeg
    (n9.0.2) codes about 65280 as white in every depth and range (10 bits, limited range: 65242 and up;
    ``scripts/swscale_white.py``), so that white read as :func:`decoded_white` gives it comes back, and true white
    goes over; an RGB output of fewer than 16 bits alike (8 bits: 65283 as 255). ``full``: full range (``None``: as
    the writer codes ``pix_fmt``, the yuvj and gray formats full). 65535 where ffmpeg does not answer."""
    return _encoded(pix_fmt, full)[0]


def _encoded(pix_fmt: str, full: bool | None) -> tuple[float, float, float]:
    """:func:`encoded_white`, where chroma is centred (Y'CbCr: :func:`_encoded_white`) and how far codes fall short
    of rounding (RGB: :func:`_encoded_rgb_white`)."""
    try:
        exe = ffmpeg_exe()
    except VideoError:
        return 65535.0, 0.0, 0.0
    if pix_fmt.startswith(_RGB_FORMATS):  # RGB: no chroma to centre
        white, lift = _encoded_rgb_white(exe, pix_fmt) if bit_depth(pix_fmt) < 16 else (65535.0, 0.0)
        return white, 0.0, lift
    full = pix_fmt.startswith("yuvj") or bool(_GRAY.fullmatch(pix_fmt)) if full is None else full
    return (*_encoded_white(exe, bit_depth(pix_fmt), full), 0.0)


#: Kr and Kb of the matrices swscale names: what a shift of chroma is in R'G'B'.
_KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114), "bt2020": (0.2627, 0.0593),
          "smpte240m": (0.212, 0.087), "fcc": (0.30, 0.11)}  # fmt: skip


def squeeze_filters(pix_fmt: str, alpha: bool, full: bool | None = None, matrix: str = "bt709") -> list[str]:
    """The filters before the writer's conversion of 16-bit RGB frames (``alpha``: with their alpha) into ``pix_fmt``
    (``full``: as :func:`encoded_white` takes it; ``matrix``: the conversion's, swscale's name) that bring white to
    :func:`encoded_white`, so that 0-65535 is coded as black to white; and where swscale centres a full-range
    output's chroma half a code low (the bundled ffmpeg's: gray coded 511 of 1023, not 512, a faint green), the
    colours moved by that much chroma the other way; where it cuts codes instead of rounding them (16-bit RGB into 10:
    a shift), the levels moved up by half a code. None where it codes 65535 as white, centred, rounded."""
    white, centre, lift = _encoded(pix_fmt, full)
    moved = centre < -0.25 and not _GRAY.fullmatch(pix_fmt)
    if white >= 65535 and not moved and abs(lift) < 0.25:
        return []
    offsets = [lift / ((1 << bit_depth(pix_fmt)) - 1) * white] * 3  # (codes cut, not rounded: half a code up)
    if moved and matrix in _KR_KB:  # the offset of Cb and Cr, as R'G'B' (at the squeezed scale)
        kr, kb = _KR_KB[matrix]
        step = -centre / ((1 << bit_depth(pix_fmt)) - 1) * white
        r, b = 2 * (1 - kr) * step, 2 * (1 - kb) * step
        offsets = [o + d for o, d in zip(offsets, (r, -(kr * r + kb * b) / (1 - kr - kb), b), strict=True)]
    levels = [f"floor(val*{white / 65535!r}{o:+.4f}+0.5)" for o in offsets]
    return [f"format={'rgba64le' if alpha else 'rgb48le'}", f"lutrgb=r={levels[0]}:g={levels[1]}:b={levels[2]}"]


class VideoReader:
    """Stream the frames of the first video stream, in decode order, with their source timestamps.

    ``bits`` 8 gives uint8 frames; 16 gives uint16 frames (levels 0..65535) that keep a 10- or 12-bit source's
    levels, or give an 8-bit source's frames room for a deeper output.

    Use as a context manager, iterate for :class:`Frame` objects. After the iteration, :attr:`errors` counts the
    decoder's error messages and :attr:`returncode` is ffmpeg's exit status (non-zero, or errors, means the file is
    damaged or truncated: what decoded was delivered, the rest was lost).

    ``first``: the frames before that index are not delivered (a resumed run's, another torchrun share's): ffmpeg
    starts at the keyframe before it where the file's packets say which frame that is (:func:`keyframe_seek`; the
    frame it lands on is checked, and where it differs the reader starts again from the start), and its ``select``
    drops the frames decoded before ``first`` before they are converted to RGB and piped (docs/experiments.md,
    "Changed: frames before a resumed run or a share are dropped by ffmpeg" and "Changed: a resumed run or a share
    starts at the keyframe before its first frame"); their timestamps are in :attr:`skipped_pts`, and the first frame
    delivered has index ``first``. A showinfo before the
    ``select`` and one after it check every frame delivered against the frame of its index: where they differ (a
    change of frame size rebuilds ffmpeg's filters, and ``select`` counts afresh), the reader starts again and reads
    past the frames before it instead.

    A JPEG XL sequence is read on past a damaged frame: ffmpeg's libjxl decoder is not reset after a frame fails,
    so every frame after it fails too, or it logs its error for ever (and ignores SIGTERM). At its first error
    ffmpeg is killed, the damaged file found by decoding the files from there alone, and ffmpeg started again at the
    first frame not yet read on a copy of the sequence made of links, the damaged file's to a good frame, whose frame
    is then dropped: the others keep their times.
    """

    def __init__(self, info: VideoInfo, *, autorotate: bool = False, bits: int = 8, alpha: bool = False,
                 deinterlace: bool | str = False, first: int = 0, light: bool = False) -> None:
        if bits not in (8, 16):
            raise ValueError(f"frames are read at 8 or 16 bits per channel, got {bits}")
        self.info = info
        self.light = light  # a linear frame's light outside 0-1 too (Frame.outside), for an EXR or Radiance output
        self.autorotate = autorotate
        self.bits = bits
        self.alpha = alpha  # each frame's alpha too (Frame.alpha)
        # its levels' bits: swscale gives a deeper alpha shifted up, or near that (an 8-bit source's opaque 255 as
        # 65280, 65532 from rgba; a 10-bit one's 1023 as 65472), so opaque read as not quite (and kept as alpha)
        self._alpha_bits = min(16, bit_depth(info.pix_fmt))
        # a GIF's or APNG's canvas its frames leave uncovered, which ffmpeg gives opaque: cleared
        canvas = AnimationCanvas.of(info.path) if alpha and info.codec in ("gif", "apng") and not info.demux else None
        before = _frames_before(info, len(canvas.frames)) if canvas is not None and info.seek else 0
        # (a part's first frame's index in the file; where ffmpeg cannot list it, not cleared rather than wrongly)
        self._canvas, self._canvas_from = (canvas, before) if before is not None else (None, 0)
        # and its colour's white: swscale gives it below 65535 (decoded_white), stretched back here
        small = min(info.width, info.height) <= SMALL_SIDE  # (converted by way of 4:4:4: to_16bit)
        self._white = decoded_white(info.pix_fmt, info.color, small) if bits == 16 and info.stops is None else 65535
        self.deinterlace = deinterlace  # an interlaced frame's two fields made one picture (bwdif), frame for frame
        # or (IVTC) a telecined source's film frames put back, 4 in 5: its frames are not counted from its packets
        self.width, self.height = info.width, info.height
        if (autorotate and round(info.rotation) % 180) or info.transposed:
            self.width, self.height = info.height, info.width
        self._proc: subprocess.Popen[bytes] | None = None
        self._pump: _StderrPump | None = None
        self._watchdog: _Watchdog | None = None
        self.frames_read = 0
        self.returncode: int | None = None
        self._to_srgb = ((_srgb_transform(info.icc_profile) if bits == 8 else srgb16_transform(info.icc_profile))
                         if info.icc_profile else None)  # fmt: skip
        self.first = first
        self._select = first  # the frames ffmpeg drops (0 once select lost count: then they are read past)
        self._may_seek = True  # whether ffmpeg may start at the keyframe before ``first`` (keyframe_seek)
        self._may_near, self._near = True, False  # whether a part may be read from a near seek (_cut), and is
        self._browser: tuple[list[Fraction], list[Fraction], int] | None = None  # _as_browsers_play's frame times
        self._seeked: KeyframeSeek | None = None  # where it did
        self._from = first  # the first frame delivered (after a restart: the next one not yet delivered)
        self.skipped_pts: list[int] = []
        self.started_late: Fraction | None = None  # where a file that starts between keyframes first decodes (seconds)
        # Past a damaged JPEG XL frame: the frames (of the part read) before the one ffmpeg starts at, the damaged
        # ones, the folder of links read instead of the sequence, whether ffmpeg is killed at its first error
        self._offset, self._damaged, self._watch = 0, set[int](), True
        self._links: Path | None = None
        self._last_pts: int | None = None  # the last frame's timestamp read
        self._past_errors, self._past_message = 0, ""  # the error lines of the ffmpeg runs before a restart

    @property
    def time_base(self) -> Fraction:
        """Time base of :attr:`Frame.pts` (known once the first frame is read)."""
        tb = self._pump.time_base if self._pump else None
        if tb is None:
            fps = Fraction(self.info.fps or 25).limit_denominator(1001)
            return 1 / fps
        return tb

    @property
    def errors(self) -> int:
        return self._past_errors + (self._pump.n_errors if self._pump else 0)

    def error_message(self) -> str:
        return self._past_message or (self._pump.message() if self._pump else "")

    def started_late_message(self) -> str | None:
        """What a file that starts between keyframes lost (a TV recording's or an HLS segment's first frames, which
        refer to what came before it: no player shows them), or ``None``."""
        if self.started_late is None:
            return None
        return (f"its frames before its first keyframe refer to what came before the file's start (a stream cut "
                f"between keyframes: a TV recording, an HLS segment) and do not decode: its video starts at that "
                f"keyframe, {float(self.started_late):.2f} s in, as players show it")

    def resized_message(self) -> str | None:
        """What frames of another size than the first were made (ffmpeg scales them to the first's size), or ``None``."""
        pump = self._pump
        if pump is None or not pump.resized or pump.size is None:
            return None
        n, w, h = pump.resized[0]
        more = f" and {len(pump.resized) - 1} more" if len(pump.resized) > 1 else ""
        return (f"frame {n + 1} ({w}x{h}){more} not of the first frame's size ({pump.size[0]}x{pump.size[1]}): "
                "scaled to it before upscaling")

    def __enter__(self) -> VideoReader:
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info", *base_layer_options()]
        if not self.autorotate:
            cmd += ["-noautorotate"]
        raw = ("rgba" if self.alpha else "rgb24") if self.bits == 8 else ("rgba64le" if self.alpha else "rgb48le")
        if self.info.stops is not None:  # linear light in floats, as decoded: converted here (a conversion clips them)
            raw = str(self.info.pix_fmt)
        matrix = f"in_color_matrix={m}:" if (m := decode_matrix(self.info)) else ""
        convert = f"scale={matrix}flags={DECODE_FLAGS},format={raw}"
        if self.bits == 16:
            convert = to_16bit(self.width, self.height, convert)
        if self.info.stops is not None:  # swscale writes no half floats: the frames as decoded
            convert = f"format={raw}"
        seek, trim = _cut(self.info, near=self._may_near)
        # a near seek (MPEG-TS): the frames before the part decoded, then trimmed from the part's start
        self._near = bool(seek) and trim.startswith("trim=start=")
        demux = self.info.input_args()
        if self._links is not None:  # a JPEG XL sequence's files around a damaged one
            seek, demux = self._around_damage()
        self._seeked = None
        if self._select and self._may_seek and not (seek or trim or self._links) and self.deinterlace != IVTC:
            # Not decoding the frames before the keyframe before ``first``: the stream's own timestamps kept
            self._seeked = keyframe_seek(self.info, self._select, strict=bool(self.deinterlace))
            if self._seeked is not None:
                seek, self._select = ["-copyts", "-ss", self._seeked.seconds], self.first - self._seeked.at
                if self._seeked.trim is not None:  # a near seek: the frames decoded before frame ``at`` dropped
                    trim = f"trim=start_pts={self._seeked.trim},"
        select = f"select=gte(n\\,{self._select}),showinfo=checksum=0," if self._select else ""
        orient = f"{_ORIENT[self.info.orientation]}," if self.info.orientation != 1 else ""  # EXIF, as upscale does
        cmd += [*seek, *(["-c:v", self.info.decoder] if self.info.decoder else []), *demux,
                "-map", f"0:{self.info.video_index}", "-an", "-sn", "-dn",
                # An explicit scaler with exact rounding: the default one decodes 8-bit BT.709 video 1-1.5 levels
                # dark on average, 10-bit 2-3 levels; this costs 3-7 ms a 1080p frame on 2 cores (docs/experiments.md,
                # "Fixed: video colours decode and encode without a bias").
                "-vf", f"{trim}{self._fields}{orient}showinfo=checksum=0,"
                       f"{select}{convert}",
                "-fps_mode", "passthrough",
                "-f", "rawvideo", "-pix_fmt", raw, "pipe:1"]  # fmt: skip
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as e:
            raise VideoError(f"could not start ffmpeg: {e}") from None
        watch = self._watch and self._jxl_sequence
        self._pump = _StderrPump(self._proc.stderr, timestamps=True, split=bool(self._select),
                                 on_error=self._proc.kill if watch else None)
        self._pump.start()
        self._watchdog = _Watchdog(self._proc, STALL_SECONDS, SPIN_SECONDS)
        self._watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if self._links is not None:
            shutil.rmtree(self._links, ignore_errors=True)

    def drained(self) -> None:
        """Wait for the decoder that gave its last frame to exit, and its log to be read to its end: what it says of a
        frame it could not decode may come after the frames' end, and read before (a busy machine's pump behind), a
        damaged frame went unsaid. After 30 s, as it is."""
        proc = self._proc
        if proc is None:
            return
        try:
            self.returncode = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            return
        if self._pump:
            self._pump.join(timeout=10)

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if self._watchdog is not None:
            self._watchdog.stop()
        if proc.poll() is None:
            proc.kill()
        if proc.stdout:
            proc.stdout.close()
        self.returncode = proc.wait()
        if self._pump:
            self._pump.join(timeout=10)
        self._proc = None

    @property
    def _fields(self) -> str:
        """The head of the filter chain that makes frames of an interlaced source's fields (none where not asked)."""
        return f"{_IVTC_FILTERS}," if self.deinterlace == IVTC else f"{DEINTERLACE}," if self.deinterlace else ""

    def _restart(self) -> None:
        """Read again from the start without ``select`` or a seek, past the :attr:`frames_read` frames already
        taken."""
        self.close()
        self._select, self._from, self.frames_read, self._pump = 0, self.frames_read, 0, None
        if self._seeked is not None:  # what the seek skipped is read again
            self._may_seek, self.skipped_pts = False, []
        self.__enter__()

    def _as_browsers_play(self, index: int, stamp: tuple[int, int | None]) -> tuple[int, int | None]:
        """Frame ``index`` (of the part read) of an animation with frames of 10 ms or less
        (:attr:`VideoInfo.browser_timing`) at the time and for the duration browsers show it, where ffmpeg's timestamp
        is within a millisecond of the one its reading of the durations gives (else as ffmpeg gives it)."""
        timing = self.info.browser_timing
        assert timing is not None
        if self._browser is None:  # once: an animation of thousands of frames is timed frame by frame
            first = timing.part(self.info.seek, self.info.span)[0] if self.info.seek or self.info.span else 0
            self._browser = (timing.starts(timing.decoded), timing.starts(timing.shown), first)
        decoded, shown, first = self._browser
        index += first  # a part's frames are counted, and timed, from its first (trimmed)
        tb = self.time_base
        if index + 1 >= len(decoded) or abs(stamp[0] * tb - (decoded[index] - decoded[first])) > Fraction(1, 1000):
            return stamp
        return round((shown[index] - shown[first]) / tb), round((shown[index + 1] - shown[index]) / tb)

    def _landed(self, stamp: tuple[int, int | None] | None) -> bool:
        """Whether the first frame read after a keyframe seek, stamped ``stamp``, is frame :attr:`first` (decoded
        without an error); if so, the timestamps of the frames before the keyframe are put in the frames' time base."""
        seek, pump = self._seeked, self._pump
        assert seek is not None and pump is not None
        ratio = seek.time_base / self.time_base  # 1, or 2 where a deinterlacer halved the time base
        if seek.trim is not None:  # a near seek's: the frames before a keyframe (an open GOP's leading ones)
            pump.forget_errors()
        if stamp is None or pump.n_errors or ratio.denominator != 1 or stamp[0] != seek.expect * ratio:
            return False
        self.skipped_pts[: seek.at] = [int(pts * ratio) for pts in seek.before]
        return True

    def _unshifted(self, pts: int) -> int:
        """A timestamp read after a keyframe seek (``-copyts``: the stream's start kept on) as reading from the start
        gives it."""
        seek = self._seeked
        return pts if seek is None or not seek.shift else pts - int(seek.shift * seek.time_base / self.time_base)

    @property
    def _jxl_sequence(self) -> bool:
        """Whether this reads a numbered JPEG XL sequence, which ffmpeg can be started again part-way through."""
        return self.info.path.suffix.lower() == ".jxl" and "-start_number" in self.info.demux

    def _number(self, frame: int) -> int:
        """The file number of the part's ``frame`` of an image sequence."""
        return self.info.part_first_number + frame

    def _around_damage(self) -> tuple[list[str], list[str]]:
        """The input options that read a JPEG XL sequence's links (:attr:`_links`) from the part's frame
        :attr:`_offset` (``-start_number``; no seek) to the part's end (``-t``)."""
        assert self._links is not None
        info = self.info
        demux = list(info.demux)
        demux[demux.index("-start_number") + 1] = str(self._number(self._offset))
        upto = ["-t", f"{info.span - self._offset / (info.fps or 25):.6f}"] if info.span else []
        return upto, [*demux, "-i", str(self._links / info.path.name)]

    def _after_damage(self) -> int | None:
        """Where a JPEG XL sequence's reading goes on after ffmpeg ended with an error (the part's first frame not
        yet read), or ``None``: another input, no error, or nothing left. The damaged file is the first from the
        frame after the last decoded (frames decoded but not yet piped when ffmpeg was killed are read again) that
        does not decode alone; it is linked to a good frame (:meth:`_link`)."""
        pump, total = self._pump, self.info.frames_estimate
        if not (self._jxl_sequence and self._watch and pump is not None and pump.n_errors and total):
            return None
        unread = self._offset if self._last_pts is None else self._last_pts + 1
        start = max(unread, self._offset + (0 if pump.last_decoded is None else pump.last_decoded + 1))
        damaged = next((k for k in range(start, total) if k not in self._damaged and not self._decodes(k)), None)
        if damaged is None:  # an error no file shows alone: read on from the next frame, errors and all
            self._watch = False
        else:
            self._damaged.add(damaged)
        self._link(total)
        return unread if unread < total else None

    def _decodes(self, frame: int) -> bool:
        """Whether the file of the part's ``frame`` decodes alone without an error (killed after two minutes)."""
        path = self.info.path.parent / (self.info.path.name % self._number(frame))
        try:
            run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-f",
                                  "null", "-"], capture_output=True, timeout=120)  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
        return run.returncode == 0 and not run.stderr.strip()

    def _link(self, total: int) -> None:
        """The folder of links ffmpeg reads the sequence's part from: a link to each file, a damaged one's to the
        good frame before it (after it, at the start), of the same size."""
        if self._links is None:
            self._links = Path(tempfile.mkdtemp(prefix="classsr-frames-"))
        where, before = self.info.path.resolve().parent, None
        for frame in range(total):
            link = self._links / (self.info.path.name % self._number(frame))
            before = frame if frame not in self._damaged else before
            good = before if before is not None else next(
                (k for k in range(frame + 1, total) if k not in self._damaged), frame)
            target = where / (self.info.path.name % self._number(good))
            if link.is_symlink() and link.readlink() == target:
                continue
            link.unlink(missing_ok=True)
            try:
                link.symlink_to(target)
            except OSError:  # no symbolic links here (Windows without the right): a copy
                shutil.copyfile(target, link)

    def _read_on(self, offset: int) -> None:
        """Start ffmpeg again at the part's frame ``offset``, the frames already read kept as read."""
        assert self._pump is not None
        self._past_errors += self._pump.n_errors
        self._past_message = self._past_message or self._pump.message()
        self.close()
        self._offset, self._select, self._last_pts, self._pump = offset, 0, None, None
        self.__enter__()

    def __iter__(self) -> Iterator[Frame]:
        assert self._proc is not None and self._proc.stdout is not None, (
            "use VideoReader as a context manager"
        )
        if self._seeked is not None:  # the frames before the keyframe, never decoded: their timestamps from the packets
            self.skipped_pts, self.frames_read = list(self._seeked.before), self._seeked.at
        if self._select:  # the dropped frames' timestamps, from the showinfo before select
            assert self._pump is not None
            while len(self.skipped_pts) < self.first and (pts := self._pump.next_decoded()) is not None:
                self.skipped_pts.append(self._unshifted(pts))
                self._last_pts = pts
            self.frames_read = len(self.skipped_pts)
        yield from self._frames()

    def _frames(self) -> Iterator[Frame]:
        assert self._proc is not None and self._proc.stdout is not None
        from classsr_cli.io import exr

        dtype = np.dtype(np.uint8 if self.bits == 8 else "<u2")
        channels = 4 if self.alpha else 3
        size = self.width * self.height * channels * dtype.itemsize
        linear = self.info.stops is not None
        if linear:
            size = exr.frame_bytes(str(self.info.pix_fmt), self.width, self.height)
        stdout = self._proc.stdout
        fallback = 1 / Fraction(self.info.fps or 25).limit_denominator(1001)
        watchdog = self._watchdog
        assert watchdog is not None
        while True:
            buf = bytearray(size)
            view = memoryview(buf)
            got = 0
            with watchdog.waiting():
                while got < size:
                    n = stdout.readinto(view[got:])  # type: ignore[attr-defined]
                    if not n:
                        break
                    got += n
            if watchdog.spun:
                raise VideoError(f"the decoder gave no frame of {self.info.path} in {watchdog.spin:g} s of work, and "
                                 "was stopped: ffmpeg's reader loops on it (its DASH reader does on some manifests); "
                                 "give the media file itself")
            if watchdog.fired:
                raise VideoError(f"the decoder hung: ffmpeg used no CPU time for {watchdog.seconds:g} s while classsr "
                                 f"waited for a frame of {self.info.path}, and was stopped; run it again")
            if got < size:
                break
            assert self._pump is not None
            stamp = self._pump.next_stamp()
            if self._select and (stamp is None or self._pump.next_decoded() != stamp[0]):
                self._restart()  # select lost count (a new frame size rebuilt it): not the frame of this index
                yield from self._frames()
                return
            if stamp is not None and self._seeked is not None:
                stamp = (self._unshifted(stamp[0]), stamp[1])
            if self._near:  # the part's first frame: what went wrong before it is the seek's
                self._near = False
                self._pump.forget_errors()
            elif (self.frames_read == 0 and self._seeked is None and not self.info.seek and self._pump.n_errors
                  and self._pump.n_errors == self._pump.n_unreferenced):  # fmt: skip
                self.started_late = stamp[0] * self.time_base if stamp is not None else Fraction(0)
                self._pump.forget_errors()  # the frames before its first keyframe, which refer to what it lacks
            if self._seeked is not None and self.frames_read == self.first and not self._landed(stamp):
                self._restart()  # not the frame of this index (or decoded with errors): read from the start
                yield from self._frames()
                return
            if stamp is None:  # no showinfo line: count frames at the nominal rate
                tb = self.time_base
                pts = round(self.frames_read * fallback / tb)
                stamp = (pts, None)
            elif self._offset:  # ffmpeg started past a damaged JPEG XL frame: a sequence's frame a tick
                stamp = (stamp[0] + self._offset, stamp[1])
            self._last_pts = stamp[0]
            if stamp[0] in self._damaged:  # a damaged JPEG XL frame's stand-in: left out, as ffmpeg leaves one out
                continue
            alpha = outside = None
            if linear:  # OpenEXR, Radiance: straight colour, at the sequence's stops, sRGB-encoded into 16 bits
                light = exr.unpack(buf, str(self.info.pix_fmt), self.width, self.height)
                rgb, alpha, outside = exr.frame(*exr.colour_alpha(light), self.info.stops or 0)
                outside = outside if self.light else None
                rgb = np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb
                alpha = alpha if self.alpha else None
            else:
                rgb = np.frombuffer(buf, dtype=dtype).reshape(self.height, self.width, channels)
                rgb = rgb.astype(np.uint16, copy=False) if self.bits > 8 else rgb  # native order (a no-op on x86)
                if self.alpha:  # each plane contiguous, as the model and the encoder take them
                    rgb, alpha = np.ascontiguousarray(rgb[:, :, :3]), np.ascontiguousarray(rgb[:, :, 3])
                    if self.bits > 8 and self._alpha_bits < 16:  # the source's levels, stretched to 0-65535
                        alpha = _stretched_alpha(alpha, self._alpha_bits)
                rgb = stretched(rgb, self._white)
            if self.frames_read < self._from:  # to skip, or (after a restart) delivered before
                if len(self.skipped_pts) == self.frames_read < self.first:
                    self.skipped_pts.append(stamp[0])
                self.frames_read += 1
                continue
            if self._canvas is not None and alpha is not None:
                covered = self._canvas.covered(self._canvas_from + self.frames_read)
                alpha = alpha if covered is None or covered.shape != alpha.shape else np.where(covered, alpha, 0)
            if self._to_srgb is not None:  # an image sequence's ICC profile: its colours as sRGB, as a video's are
                rgb = self._to_srgb(rgb)
            if self.info.browser_timing is not None:
                stamp = self._as_browsers_play(self.frames_read, stamp)
            yield Frame(self.frames_read, rgb, stamp[0], stamp[1], alpha, outside)
            self.frames_read += 1
        if self._select and self._pump is not None and self._pump.next_decoded() is not None:
            self._restart()  # frames decoded that select dropped after the first (a new size, counted afresh)
            yield from self._frames()
            return
        if (offset := self._after_damage()) is not None:
            self._read_on(offset)
            yield from self._frames()
            return
        self.returncode = self._proc.wait()
        if self._pump is not None:
            self._pump.join(timeout=10)


def _stretched_alpha(alpha: np.ndarray, bits: int) -> np.ndarray:
    """16-bit ``alpha`` of a source whose alpha has ``bits`` as swscale gives it (each level shifted up, or within
    half a step of that) as those levels stretched to 0-65535: opaque 65535."""
    from classsr_cli.io.image import to16

    return to16((alpha.astype(np.uint32) + (1 << (15 - bits))) >> (16 - bits), bits)


# ---------------------------------------------------------------------------------------------------- writing

def even_size(pix_fmt: str, height: int, width: int) -> tuple[int, int]:
    """``(height, width)`` an encoder takes in ``pix_fmt``: chroma subsampled by two across (4:2:0, 4:2:2: yuv420p,
    yuv422p10le, nv12, p010le, ...) needs an even width, and down (4:2:0, 4:4:0) an even height, so an odd one loses
    its last pixel column or row; 4:4:4 and RGB keep every size."""
    across = bool(re.match(r"yuvj?a?(420|422|410|411)|nv(12|21|16|20)|p[02]|y2", pix_fmt))
    down = bool(re.match(r"yuvj?a?(420|440|410)|nv(12|21)|p0", pix_fmt))
    return height - height % 2 * down, width - width % 2 * across


def evens(pix_fmt: str) -> str:
    """What ``pix_fmt`` needs even (:func:`even_size`): ``even sizes``, ``an even width`` or ``an even height``."""
    h, w = even_size(pix_fmt, 1, 1)
    return "even sizes" if h == w == 0 else "an even width" if w == 0 else "an even height"


def _with_chroma(pix_fmt: str, chroma: str) -> str:
    """``pix_fmt`` with its Y'CbCr subsampling replaced (``yuv420p10le``, ``"444"`` -> ``yuv444p10le``); others as
    they are."""
    return re.sub(r"^(yuvj?a?)(420|422|440|410|411)", rf"\g<1>{chroma}", pix_fmt)


def full_size_hint(pix_fmt: str, codec: str) -> str:
    """`` (--pix-fmt yuv444p keeps them)``: a format of ``pix_fmt``'s depth without chroma subsampling that
    ``codec`` takes, to keep an odd size; empty if it takes none."""
    takes = encoder_pix_fmts(codec)
    same = _with_chroma(pix_fmt, "444")
    for f in (same, *(takes or ())):
        if (takes is None or f in takes) and even_size(f, 1, 1) == (1, 1) and bit_depth(f) == bit_depth(pix_fmt):
            return f" (--pix-fmt {f} keeps them)"
    return ""


@dataclass(frozen=True)
class EncodeOptions:
    """How the output is encoded.

    Attributes:
        codec: ffmpeg encoder (``None``: libx264, or libvpx-vp9 for webm).
        crf, preset: quality and speed, passed to encoders that take them.
        pix_fmt: output pixel format (``None``: :data:`DEFAULT_PIX_FMT`, or for a source above 8 bits its
            10-bit counterpart where the encoder takes it; :meth:`for_source`).
        extra: further encoder options, ``(key, value)`` pairs passed as ``-key value``.
        audio: copy the source's audio streams.
        subtitles: copy the source's subtitle streams where the container holds them.
        fps: a constant frame rate to write at (frames repeated or dropped by ffmpeg to keep time); ``None``: every
            frame at its source timestamp.
        quality: a picture output's quality on libjpeg's 1-100 scale, as ``classsr upscale`` takes it: JPEG frames
            (classsr's writer), JPEG XL frames (libjxl's distance) and animated WebP (:data:`QUALITY_CODECS`);
            ``None``: 95, as upscale writes JPEG and JPEG XL, and 90 for WebP.
        strip_metadata: write none of the source's own metadata (a phone's place and camera, dates, title), and
            no record of the upscale in a picture sequence's frames, as ``classsr upscale --strip-metadata`` writes a
            picture; chapters, the start timecode, the streams' languages and the colour tags are kept.
    """

    codec: str | None = None
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    audio: bool = True
    subtitles: bool = True
    fps: Fraction | None = None
    quality: int | None = None
    strip_metadata: bool = False

    def codec_for(self, muxer: str) -> str:
        """The encoder: the one asked for, else the container's default (an image sequence's is its suffix's,
        :data:`SEQUENCE_CODECS`, which the caller asks for; PNG where it does not)."""
        if self.codec:
            return self.codec
        if muxer == SEQUENCE_MUXER:
            return "png"
        return ANIMATION_MUXERS.get(muxer) or ("libvpx-vp9" if muxer == "webm" else "libx264")

    @property
    def out_pix_fmt(self) -> str:
        """The pixel format written: :attr:`pix_fmt`, else :data:`DEFAULT_PIX_FMT` (see :meth:`for_source`)."""
        return self.pix_fmt or DEFAULT_PIX_FMT

    def for_source(self, muxer: str, source_pix_fmt: str | None, *, alpha: bool = False) -> EncodeOptions:
        """These options with the encoder and pixel format settled for a source of ``source_pix_fmt``.

        The encoder: the one asked for; else, for an output above 8 bits (a deeper ``pix_fmt``, or none asked and
        a source above 8 bits) in ``.mp4``/``.mov``/``.mkv``, :data:`DEEP_CODEC` (HEVC Main 10 plays where H.264
        High 10 does not: QuickTime, Safari, hardware decoders); else :meth:`codec_for`. The pixel format: the one
        asked for; else, for a source above 8 bits, :data:`DEEP_PIX_FMT` or the first format of 10 bits or more
        the encoder lists (so 10- and 12-bit video keeps 10 bits); else :data:`DEFAULT_PIX_FMT`, or the first
        format the encoder lists where it does not take that one (ProRes: ``yuv422p10le``). With ``alpha`` (the
        source's frames are transparent: :attr:`VideoInfo.alpha`), a format that keeps it where the encoder takes
        one as players read it (:data:`ALPHA_FORMATS`)."""
        deep_source = bit_depth(source_pix_fmt) > 8
        deep_out = bit_depth(self.pix_fmt) > 8 if self.pix_fmt else deep_source
        codec = self.codec or (DEEP_CODEC if deep_out and muxer in _DEEP_CODEC_MUXERS else self.codec_for(muxer))
        if self.pix_fmt:
            return replace(self, codec=codec)
        takes = encoder_pix_fmts(codec)
        if muxer == SEQUENCE_MUXER and codec not in _JPEG_CODECS:  # pictures: RGB, 16 bits for a deep source
            rgb = [*(["rgba64be", "rgba64le"] if alpha and deep_source else []), *(["rgba"] if alpha else []),
                   *(["rgb48be", "rgb48le"] if deep_source else []), "rgb24"]  # fmt: skip
            return replace(self, codec=codec, pix_fmt=next((f for f in rgb if takes is None or f in takes), rgb[-1]))
        wanted = [DEEP_PIX_FMT, *(f for f in takes or () if bit_depth(f) >= 10)] if deep_source else []
        if alpha and codec in ALPHA_FORMATS:  # transparency kept (a deep source: in 10 bits or more where it can)
            kept = ALPHA_FORMATS[codec]
            wanted = [*(f for f in kept if deep_source and bit_depth(f) > 8), *kept, *wanted]
        if codec in _JPEG_CODECS:  # full range: limited is "non-standard" there; pictures 4:4:4, as upscale writes JPEG
            wanted += ["yuvj444p" if muxer == SEQUENCE_MUXER else "yuvj420p"]
        wanted += ["pal8"] if codec == "gif" else []  # a palette made for the whole animation (_video_args)
        wanted += [DEFAULT_PIX_FMT, *(takes or ())]
        return replace(self, codec=codec, pix_fmt=next(f for f in wanted if takes is None or f in takes))


#: Encoders whose transparency players read, and the formats that keep it (a deep source takes the first above 8
#: bits): VP9 with alpha plays in browsers (in 8 bits: its 10-bit alpha is experimental in ffmpeg), ProRes 4444 in
#: editors; H.264 has no alpha, and libx265's alpha layer is left out (few decoders read it).
ALPHA_FORMATS: dict[str, tuple[str, ...]] = {
    "libvpx-vp9": ("yuva420p",), "libvpx": ("yuva420p",), "libwebp_anim": ("yuva420p",), "libwebp": ("yuva420p",),
    "prores_ks": ("yuva444p10le",), "ffv1": ("yuva420p", "yuva444p10le", "yuva444p12le"), "qtrle": ("argb",),
    "apng": ("rgba", "rgba64be"), "png": ("rgba", "rgba64be"), "gif": ("pal8",), "tiff": ("rgba", "rgba64le"),
    "dpx": ("rgba", "rgba64be"),
}  # fmt: skip
#: The output's pixel format unless asked (8-bit sources), and for sources above 8 bits where the encoder takes it.
DEFAULT_PIX_FMT, DEEP_PIX_FMT = "yuv420p", "yuv420p10le"
#: Encoders that take limited-range Y'CbCr only with ``-strict``: their default is full range (yuvj420p).
_JPEG_CODECS = ("mjpeg", "ljpeg")
#: The encoder of outputs above 8 bits unless asked, in the containers that hold HEVC.
DEEP_CODEC = "libx265"
_DEEP_CODEC_MUXERS = ("mp4", "mov", "matroska")

#: Encoders whose time base must be one frame at a standard rate (MPEG-1/2: 23.976, 24, 25, 29.97, 30, 50, 59.94,
#: 60 frames/s): they get the source's rate, constant, not its clock.
_FRAME_RATE_CODECS = ("mpeg1video", "mpeg2video")
_CRF_CODECS = ("libx264", "libx264rgb", "libx265", "libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1")
_PRESET_CODECS = ("libx264", "libx264rgb", "libx265", "libsvtav1")


#: Colour primaries and transfer characteristics as ffmpeg names them (and its setparams filter takes them).
_PRIMARIES = frozenset({
    "bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020", "smpte428", "smpte431", "smpte432",
    "jedec-p22", "ebu3213",
})  # fmt: skip
_TRANSFERS = frozenset({
    "bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "linear", "log100", "log316", "iec61966-2-4", "bt1361e",
    "iec61966-2-1", "bt2020-10", "bt2020-12", "smpte2084", "smpte428", "arib-std-b67",
})  # fmt: skip
_COLOR_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def color_tags(color: str | None) -> tuple[str | None, str | None, str | None]:
    """Matrix, primaries and transfer from the colour properties ffmpeg prints after the pixel format:
    ``"tv, bt2020nc/bt2020/smpte2084, progressive"``, or one name for all three (``"tv, bt709"``). ``None``
    where unknown."""
    for part in (p.strip() for p in (color or "").split(",")):
        names = part.split("/")
        if part in ("tv", "pc") or not all(_COLOR_NAME.match(n) for n in names):
            continue
        if len(names) == 3:
            return tuple(None if n in ("unknown", "reserved") else n for n in names)  # type: ignore[return-value]
        if len(names) == 1 and part != "progressive":
            return part, part, part
    return None, None, None


def _video_args(
    opts: EncodeOptions, muxer: str, time_base: Fraction, color: str | None, sar: Fraction | None = None,
    hdr10: HDR10 | None = None, *, tag: bool = True, deep: bool = False, alpha: bool = False,
) -> list[str]:
    # Every option names output stream v:0, the upscaled video: a cover picture after it is copied as it is.
    # ``deep``: the frames come at 16 bits (``alpha``: with their alpha).
    codec = opts.codec_for(muxer)
    args = ["-c:v:0", codec, "-pix_fmt:v:0", opts.out_pix_fmt]
    filters = _to_sdr(codec, color, hdr10)
    color = None if filters else color  # converted: BT.709's (_shown_color)
    if opts.crf is not None and codec in _CRF_CODECS:
        args += ["-crf:v:0", str(opts.crf)]
        if codec in ("libvpx", "libvpx-vp9", "libaom-av1"):
            args += ["-b:v:0", "0"]
    if opts.preset and codec in _PRESET_CODECS and not (codec == "libsvtav1" and not opts.preset.isdigit()):
        args += ["-preset:v:0", opts.preset]
    args += _tag_args(codec, muxer) if tag else []
    gray = _GRAY.fullmatch(opts.out_pix_fmt)
    if _tagged(opts.out_pix_fmt):
        # Say which matrix the RGB -> YUV conversion used, so that players do not guess (HD outputs of SD
        # sources would otherwise be shown with the wrong one): BT.709, or BT.2020 for a BT.2020 source.
        # Primaries and transfer follow the source. ffmpeg ignores -color_primaries/-color_trc for frames that
        # come in as RGB: the tags are set on the frames (setparams), which the encoder and muxer then write.
        # Exact rounding: the default rounds chroma down (a flat colour's blue 1.75 levels low through yuv420p).
        # The yuvj and gray formats are full range ("pc"); the others limited ("tv").
        matrix, space, rng, primaries, trc = _output_color(opts, codec, color)
        if deep or filters:  # 16-bit RGB (the frames, or _to_sdr's): its white brought to where swscale codes white
            filters += squeeze_filters(opts.out_pix_fmt, alpha and not filters, matrix=matrix)
        filters.append(f"scale=out_color_matrix={matrix}:out_range={rng}:flags={ENCODE_FLAGS}")
        if gray:  # swscale's RGB -> gray ignores the matrix and range (BT.601, full): keep Y' of the conversion above
            depth = bit_depth(opts.out_pix_fmt)
            filters += [f"format=yuv444p{'' if depth == 8 else f'{depth}le'}", "extractplanes=y"]
        params = [f"colorspace={space}", f"range={rng}"]
        params += [f"color_primaries={primaries}"] if primaries else []
        params += [f"color_trc={trc}"] if trc else []
        filters.append("setparams=" + ":".join(params))
        args += ["-colorspace:v:0", space, "-color_range:v:0", rng]
    elif deep or filters:  # 16-bit RGB into RGB of fewer bits (GIF's palette, rgb24): swscale's white there too
        filters += squeeze_filters(opts.out_pix_fmt, alpha and not filters)
    if sar is not None:  # the pixel shape: ffmpeg hands the filtered frames' SAR to the encoder and the muxer
        # max: setsar reduces the ratio to terms of at most 100 unless told more (127:101 became 83:66)
        filters.append(f"setsar=r={sar.numerator}/{sar.denominator}:max={max(sar.numerator, sar.denominator, 100)}")
    if opts.out_pix_fmt == "pal8":  # one palette of 256 colours made from every frame, then dithered into it
        filters.append("split[all][each];[all]palettegen[palette];[each][palette]paletteuse")
        if alpha:  # every frame whole, as it is (the encoder's crops and unchanged pixels made clear assume the
            args += ["-gifflags:v:0", "-offsetting-transdiff"]  # frame before kept, which clear_before_clear drops)
    if codec == "libwebp_anim":
        args += ["-quality:v:0", str(opts.quality or 90)]  # libwebp's default, 75, blurs the detail an upscale adds
    if codec in _JPEG_CODECS and not {k.lstrip("-").split(":")[0] for k, _ in opts.extra} & {"q", "qscale", "b"}:
        args += ["-q:v:0", "2"]  # its default rate control quantises an upscale's detail away; q 2 keeps it
    if codec == "libjxl":  # as `classsr upscale` writes JPEG XL (quality 95, its effort), unless asked otherwise
        from classsr_cli.io import jxl

        given = {k.lstrip("-").split(":")[0] for k, _ in opts.extra}
        args += [] if "distance" in given else ["-distance:v:0", f"{jxl.distance(opts.quality or 95):.3f}"]
        args += [] if "effort" in given else ["-effort:v:0", str(jxl.EFFORT)]
    if muxer in SHORTEST_FRAME:  # no frame browsers would slow to 100 ms: one closer to the last kept is left out
        unit, least = SHORTEST_FRAME[muxer]
        filters.insert(0, f"select='isnan(prev_selected_t)+gte(round(t*{unit})-round(prev_selected_t*{unit})\\,{least})'")
    if opts.fps is not None:  # first, so that the frames it drops are not converted: frames repeated or dropped
        # to keep time, the video as long as its source (-r with -fps_mode cfr ran past the source's end)
        filters.insert(0, f"fps={opts.fps.numerator}/{opts.fps.denominator}")
    if filters:
        args += ["-filter:v:0", ",".join(filters)]
    # HDR10 metadata: libx265 writes it as SEI, merged into the user's own -x265-params (theirs win).
    hdr = hdr10.x265_params() if hdr10 and codec == "libx265" else []
    for key, value in opts.extra:
        if key.lstrip("-") == "x265-params" and hdr:
            ours = [p for p in hdr if p.split("=")[0] not in value]
            value, hdr = ":".join([value, *ours]), []
        args += [f"-{key.lstrip('-')}", value]
    if hdr:
        args += ["-x265-params", ":".join(hdr)]
    if opts.fps is not None:  # a constant rate asked for: the fps filter's frames, each at its time (below)
        args += ["-fps_mode:v:0", "passthrough", "-enc_time_base:v:0", f"{opts.fps.denominator}/{opts.fps.numerator}"]
    elif muxer in VFR_MUXERS and codec in _FRAME_RATE_CODECS:  # 1/rate as its time base: the source's, constant
        args += ["-fps_mode:v:0", "cfr"]
    elif muxer in VFR_MUXERS:
        args += ["-fps_mode:v:0", "passthrough", "-enc_time_base:v:0", f"{time_base.numerator}/{time_base.denominator}"]
    elif muxer == SEQUENCE_MUXER:  # a picture for each frame, none repeated to fill a constant rate
        args += ["-fps_mode:v:0", "passthrough"]
    return args


def _loop_args(muxer: str, plays: int) -> list[str]:
    """ffmpeg's options for an animation written to play ``plays`` times (0: forever)."""
    if muxer == "gif":  # -loop: repeats after the first play, -1 none, 0 forever
        return ["-loop", str(-1 if plays == 1 else max(plays - 1, 0))]
    return ["-plays" if muxer == "apng" else "-loop", str(plays)]


def hold_last_frame(path: str | os.PathLike[str], muxer: str, end: Fraction) -> bool:
    """Make the last frame of the animated WebP, APNG or GIF ``path`` last until ``end`` seconds after the first frame
    begins, in place. ffmpeg's encoders give it their own guess instead (libwebp_anim: the mean of the other frames';
    apng: the one before it; gif: its own duration, short of the frames :data:`SHORTEST_FRAME` left out after it), so
    an animation that holds its last frame before it loops lost the hold. The frames
    before keep the durations ffmpeg wrote (the last one shows from their sum); frames the encoder merged into one
    count as that one. ``False``: nothing changed (another muxer, a single frame, an end not after the last
    frame's start)."""
    if muxer not in ("webp", "apng", "gif"):
        return False
    with open(path, "r+b") as f:
        if muxer == "webp":
            return _webp_hold_last(f, end)
        if muxer == "gif":
            return _gif_hold_last(f, end)
        return _apng_hold_last(f, end)


def _gif_hold_last(f: io.BufferedRandom, end: Fraction) -> bool:
    """:func:`hold_last_frame` for GIF: the last frame's Graphic Control delay (hundredths), two at least (browsers
    slow one of a hundredth to ten)."""
    with _mapped(f) as data:
        frames = _gif_frames(data)
    if not frames or len(frames) < 2 or frames[-1].delay_at is None:
        return False
    hold = max(SHORTEST_FRAME["gif"][1], round(end * 100) - sum(frame.delay for frame in frames[:-1]))
    if hold > 0xFFFF or hold == frames[-1].delay:
        return False
    f.seek(frames[-1].delay_at)
    f.write(struct.pack("<H", hold))
    return True


def clear_before_clear(path: str | os.PathLike[str]) -> int:
    """Clear each frame of the GIF ``path`` that comes before a frame with a transparent colour once it has shown
    (disposal 2, in place), so that the canvas under that frame's clear pixels is clear, not the frame before it.
    ffmpeg's encoder keeps a frame without clear pixels (disposal 1) whatever follows it: an opaque frame showed
    under the next one's clear pixels (an animation that turns transparent; a GIF's canvas its frames leave
    uncovered, :class:`AnimationCanvas`). Such a frame takes the next one's transparent colour too (neither with its
    own colour table: the index is the same colour, which the opaque frame does not use), so that decoders that clear
    to the background colour where the frame cleared has none (ffmpeg's, Pillow's) clear to transparent, as
    browsers do. For frames written whole (``-gifflags -offsetting-transdiff``): a frame drawn in part on the frame
    before it would lose what it keeps. How many frames changed."""
    with open(path, "r+b") as f:
        with _mapped(f) as data:
            frames = _gif_frames(data) or []
        changed = 0
        for frame, after in itertools.pairwise(frames):
            if after.transparent is None or frame.disposal == 2 or frame.control_at is None:
                continue
            f.seek(frame.control_at)
            packed = f.read(1)[0] & ~0x1C | 2 << 2
            if frame.transparent is None and not (frame.local or after.local):  # the next frame's transparent colour
                packed |= 1
                f.seek(frame.control_at + 3)
                f.write(bytes([after.transparent]))
            f.seek(frame.control_at)
            f.write(bytes([packed]))
            changed += 1
    return changed


def _webp_hold_last(f: io.BufferedRandom, end: Fraction) -> bool:
    """:func:`hold_last_frame` for WebP: the last ``ANMF`` chunk's duration (24 bits, milliseconds)."""
    with _mapped(f) as data:
        frames = _webp_frames(data)
    shown = sum(frame.duration for frame in frames[:-1])
    ms = round(end * 1000) - shown
    if len(frames) < 2 or not 0 < ms < 1 << 24 or ms == frames[-1].duration:
        return False
    f.seek(frames[-1].duration_at)
    f.write(ms.to_bytes(3, "little"))
    return True


def _apng_hold_last(f: io.BufferedRandom, end: Fraction) -> bool:
    """:func:`hold_last_frame` for APNG: the last ``fcTL`` chunk's delay (16-bit numerator and denominator), its CRC
    computed again."""
    import zlib

    with _mapped(f) as data:
        frames = _apng_frames(data)
        last = bytes(data[frames[-1].at : frames[-1].at + 26]) if frames else b""
    hold = end - sum((frame.delay for frame in frames[:-1]), Fraction(0))
    if len(frames) < 2 or hold <= 0:
        return False
    for den in (hold.denominator, 1000, 100, 10, 1):
        if den <= 0xFFFF and (num := round(hold * den)) <= 0xFFFF:
            break
    else:
        num, den = 0xFFFF, 1
    data = last[:20] + struct.pack(">HH", num, den) + last[24:]
    if data == last:
        return False
    f.seek(frames[-1].at)
    f.write(data + struct.pack(">I", zlib.crc32(b"fcTL" + data)))
    return True


_GRAY = re.compile(r"gray(\d+)?le|gray")


def _tagged(pix_fmt: str) -> bool:
    """Whether an output of ``pix_fmt`` is converted from RGB with a matrix and tagged with it (Y'CbCr, gray)."""
    return pix_fmt.startswith(("yuv", "nv")) or bool(_GRAY.fullmatch(pix_fmt))


def _output_color(opts: EncodeOptions, codec: str, color: str | None) -> tuple[str, str, str, str | None, str | None]:
    """The Y'CbCr output's conversion matrix (swscale's name) and its tags: matrix, range, primaries and transfer
    (``None``: not tagged)."""
    space, primaries, trc = color_tags(color)
    matrix, space = (("bt2020", "bt2020nc") if space == "bt2020nc" else ("bt601", "bt470bg") if codec in _JPEG_CODECS
                     else ("bt709", "bt709"))  # JPEG's is BT.601 (JFIF), which its decoders assume  # fmt: skip
    gray = _GRAY.fullmatch(opts.out_pix_fmt)
    rng = "pc" if opts.out_pix_fmt.startswith("yuvj") or gray else "tv"  # swscale reads gray as full range
    return matrix, space, rng, primaries if primaries in _PRIMARIES else None, trc if trc in _TRANSFERS else None


def _copy_color_args(opts: EncodeOptions, muxer: str, color: str | None) -> list[str]:
    """What the encoder tagged, for a stream copy: a container reads the tags from the stream's own header, which
    not every codec has (FFV1, ProRes), and the chunks' container does not keep them."""
    args = ["-field_order:v:0", "progressive", "-disposition:v:0", "default"]
    if _tagged(opts.out_pix_fmt):
        codec = opts.codec_for(muxer)
        _, space, rng, primaries, trc = _output_color(opts, codec, _shown_color(codec, color))
        args += ["-colorspace:v:0", space, "-color_range:v:0", rng]
        args += ["-color_primaries:v:0", primaries] if primaries else []
        args += ["-color_trc:v:0", trc] if trc else []
    return args


def _tag_args(codec: str, muxer: str) -> list[str]:
    if codec == "libx265" and muxer in ("mp4", "mov"):  # ffmpeg's default hev1 tag plays nowhere on Apple's systems
        return ["-tag:v:0", "hvc1"]
    return []


#: ISO 639-2 languages with two codes (bibliographic, terminology), by the one ffmpeg's MOV muxer drops, and the other,
#: which its table of QuickTime's language codes lists: a ``.mov`` output's stream in French (``fre``) or German
#: (``deu``) is written so (``fra``, ``ger``), not without a language (ffmpeg's 7.1 to 9.0; tested).
MOV_LANGUAGES = {"sqi": "alb", "hye": "arm", "eus": "baq", "mya": "bur", "zho": "chi", "cze": "ces", "nld": "dut",
                 "fre": "fra", "kat": "geo", "deu": "ger", "ell": "gre", "isl": "ice", "mkd": "mac", "msa": "may",
                 "fas": "per", "rum": "ron", "slo": "slk", "bod": "tib", "cym": "wel",
                 "nob": "nor", "nno": "nor"}  # fmt: skip  (Norwegian Bokmål and Nynorsk: Norwegian, their macrolanguage)
#: The ISO 639-2 codes ffmpeg's MOV muxer keeps (its table of QuickTime's language codes: 94 of the 507 codes;
#: ``python scripts/mov_languages.py``, ffmpeg 9.0.2): a stream in another language (Croatian, Serbian, Afrikaans,
#: Filipino, Cantonese, ...) is written into a ``.mov`` without one, which a note says.
MOV_KEPT = frozenset({
    "alb", "amh", "ara", "arm", "asm", "aym", "aze", "baq", "bel", "ben", "bul", "bur", "cat", "ces",
    "chi", "dan", "dut", "dzo", "eng", "epo", "est", "fin", "fra", "geo", "ger", "gre", "grn", "guj",
    "heb", "hin", "hun", "ice", "ind", "ita", "jav", "jpn", "kan", "kas", "kaz", "khm", "kin", "kir",
    "kor", "kur", "lao", "lat", "lav", "lit", "mac", "mal", "mar", "may", "mlg", "mlt", "mon", "nep",
    "nor", "nya", "ori", "orm", "per", "pol", "por", "pus", "que", "ron", "run", "rus", "san", "sin",
    "slk", "slv", "smi", "snd", "som", "spa", "swa", "tam", "tat", "tel", "tgk", "tgl", "tha", "tib",
    "tir", "tuk", "tur", "uig", "ukr", "urd", "uzb", "vie", "wel", "yid",
})  # fmt: skip


def _names(stream: StreamInfo | None, muxer: str) -> list[tuple[str, str]]:
    """The metadata that names ``stream`` in ``muxer``: its title, and in MP4 or MOV, whose players show a track's
    handler name (as HandBrake writes it), its handler name, else its title as that. The upscaled video's are set
    (its stream is classsr's); a copied stream's title and handler name are copied by ffmpeg, so only the handler
    name from a title is set (:func:`plan_streams`)."""
    if stream is None:
        return []
    names = [("title", stream.title)] if stream.title else []
    if muxer in ("mp4", "mov") and (stream.handler or stream.title):
        handler = stream.handler or stream.title or ""
        if muxer == "mov":  # a Pascal string, whose length byte ffmpeg writes modulo 256 and reads back as a
            # character from 128 on ("\x80eee..."): whole characters, cut to what reads back
            handler = handler.encode()[:_PASCAL].decode(errors="ignore")
        names.append(("handler_name", handler))
    return names


#: The longest QuickTime (``.mov``) handler name, in bytes, that ffmpeg reads back as it was written (its Pascal
#: string holds 255, but a length of 128 or more is read as a character of the name).
_PASCAL = 127


def written_language(language: str | None, muxer: str) -> str | None:
    """The code a stream's ``language`` is written with into ``muxer`` (:data:`MOV_LANGUAGES`)."""
    return MOV_LANGUAGES.get(language, language) if muxer == "mov" and language else language


#: The source file's type, which ffmpeg lists among its metadata: the output is of its own type.
_FILE_TYPE_TAGS = ("major_brand", "minor_version", "compatible_brands")


def _metadata_args(source: VideoInfo, muxer: str, strip: bool) -> list[str]:
    """ffmpeg's arguments that write the source's own metadata (input #1's) as it was, or with ``strip`` none of it.

    A phone's video (an iPhone's, an Android's) keeps its place, camera and capture date in QuickTime metadata keys
    (``com.apple.quicktime.location.ISO6709``, ``com.android.version``), which ffmpeg's MP4 and MOV muxers write
    only with ``use_metadata_tags``: without it, Photos and maps lost where the video was taken. That writes every
    key in that form, a recorded ``creation_time`` too, which ffmpeg then reads back from there and from the movie
    header as two values joined by ``;`` (and can no longer parse as a date): the first is the movie header's, and
    is the one written. The source's file type (``major_brand``, ...) is not the output's, and is left out."""
    if strip:  # the file's; its streams' keep their languages and names, not a creation time (Matroska's tags)
        return ["-map_metadata:g", "-1", "-metadata:s", "creation_time="]
    args = ["-map_metadata", "1"]
    for key, value in source.tags:
        if key.lower() in _FILE_TYPE_TAGS:
            args += ["-metadata", f"{key}="]
        elif key.lower() == "creation_time" and ";" in value:
            args += ["-metadata", f"{key}={value.split(';')[0]}"]
    quicktime = source.format.startswith("mov,")  # its reverse-DNS keys are QuickTime metadata keys, as they were
    if muxer in ("mp4", "mov") and quicktime and any("." in key for key, _ in source.tags):
        args += ["-movflags", "+use_metadata_tags"]
    return args


def _mux_args(source: VideoInfo | None, rotation: float, start: float, muxer: str,
              strip: bool = False) -> tuple[list[str], list[str], list[str]]:  # fmt: skip
    """The ffmpeg arguments around the upscaled video's input (#0), whose first frame is at ``start`` seconds of
    the part upscaled and which ``muxer`` writes (``strip``: no metadata of the source's): before it (the display
    rotation, the offset of its first frame), and after it (the source as input #1, cut to the part where it is read,
    for its metadata (:func:`_metadata_args`) and streams; the video's mapping, language and name).
    The output itself is not cut: copied video would lose its frames up to a keyframe (B-frames put their decoding
    times before the cut), and converted subtitles would keep their times from the source's start; the source's
    subtitles are cut on their own (:func:`_cut_subtitles`). The third list ends the output with the part (``-t``:
    its last chapter ends there too; copied video keeps every frame, which the part holds)."""
    span = source.span if source else None
    cut = _cut_args(source) if source else []
    before = ["-noautorotate", "-display_rotation:v:0", f"{rotation:g}"] if rotation else []  # metadata only
    before += ["-itsoffset", f"{start:.9f}"]
    after = [*cut, *source.input_args(), *_metadata_args(source, muxer, strip)] if source else []
    video = next((s for s in source.streams if s.index == source.video_index), None) if source else None
    lang = video.language if video else None
    after += ["-map", "0:v:0", "-metadata:s:v:0", f"language={written_language(lang, muxer) or 'und'}"]
    after += [a for key, value in _names(video, muxer) for a in ("-metadata:s:v:0", f"{key}={value}")]
    return before, after, ["-t", f"{span:.6f}"] if span else []


#: The container of a resumable run's chunks: ffmpeg's own, which keeps any codec and every timestamp exactly.
CHUNK_FORMAT = "nut"


@dataclass(frozen=True)
class Chunk:
    """One finished chunk of a resumable run: its file, and where its first frame and the next chunk's start
    (ticks of the source's time base; ``end`` ``None``: the last chunk)."""

    path: Path
    start: int
    end: int | None


def join_chunks(
    chunks: list[Chunk], path: str | os.PathLike[str], *, time_base: Fraction, options: EncodeOptions,
    muxer: str | None = None, source: VideoInfo | None = None, stream_args: list[str] | None = None,
    rotation: float = 0.0, color: str | None = None, frames: int | None = None,
    target: str | os.PathLike[str] | None = None, last: float | None = None,
) -> list[str]:
    """Copy the video of ``chunks`` (written by :class:`VideoWriter` with ``container`` :data:`CHUNK_FORMAT`), in
    order, into ``path`` with the source's other streams (``stream_args``), as one :class:`VideoWriter` would have
    written it: no frame is encoded again. Each chunk is placed where the next one starts, so every frame keeps its
    timestamp; ``muxer`` one of :data:`VFR_MUXERS`. ``color``: the colour properties the chunks were tagged with, as
    :class:`VideoWriter`'s. ``frames``: how
    many the chunks hold; a joined video with another count (a chunk unreadable: ffmpeg's concat goes on without it)
    is a :class:`VideoError`. ``target``: the output ``path`` becomes (the hidden file it is written under), which the
    errors name. ``last``: the last frame's duration in seconds, which the chunks do not keep (:data:`CHUNK_FORMAT`
    stores none for some codecs, ProRes among them), given to its packet (one of ``frames``): it took 1 tick of the
    chunks' clock, 0 in an MP4 track's, and a video of 2-frame chunks lost a frame there."""
    path = Path(path)
    named = Path(target) if target is not None else path
    if not chunks:
        raise VideoError(f"{named}: no chunk to join")
    muxer = muxer or container_of(path)
    listing = chunks[0].path.parent / ".chunks.txt"  # in the chunks' folder: a killed run's is removed with it
    lines = ["ffconcat version 1.0"]
    for c in chunks:
        name = str(c.path.resolve()).replace("'", "'\\''")
        lines.append(f"file '{name}'")
        if c.end is not None:
            lines.append(f"duration {float((c.end - c.start) * time_base):.9f}")
    before, after, end = _mux_args(source, rotation, float(chunks[0].start * time_base), muxer, options.strip_metadata)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error", "-xerror", *before,
           "-f", "concat", "-safe", "0", "-i", str(listing), *after, "-c:v:0", "copy",
           *_tag_args(options.codec_for(muxer), muxer), *_copy_color_args(options, muxer, color)]  # fmt: skip
    dts = "DTS"
    if muxer in ("mp4", "mov"):  # the track's clock: the source's ticks, as the encoder's time base gives them
        cmd += ["-video_track_timescale", str(time_base.denominator)]
        # An encoder with B-frames starts a chunk of a frame or two with decode times a fraction of a tick apart,
        # which the track's clock rounds to one: each at least a tick after the last, never after its own pts.
        dts = f"min(PTS\\,max(DTS\\,PREV_OUTDTS+ceil(1/(TB*{time_base.denominator}))))"
    duration = f":duration=if(eq(N\\,{frames - 1})\\,{last:.9f}/TB\\,DURATION)" if frames and last else ""
    if dts != "DTS" or duration:  # pts and dts said too: setts makes an unsaid pts the dts (B-frames out of order)
        cmd += ["-bsf:v:0", f"setts=pts=PTS:dts={dts}{duration}"]
    args = list(stream_args or [])
    subtitles: list[Path] = []
    try:
        subtitles = _cut_subtitles(cmd, source, args, path, named) if source is not None else []
        cmd += [*args, *end, "-f", muxer, "-y", str(path)]
        listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
        proc = run_watched(cmd)
        if proc.returncode != 0:
            why = _tail(proc).replace(str(path), str(named))  # ffmpeg names the file it writes: the output
            raise VideoError(f"joining the chunks into {named} failed (ffmpeg exit {proc.returncode}): {why}")
    except OSError as e:
        raise VideoError(f"could not join the chunks into {named}: {str(e).replace(str(path), str(named))}") from None
    finally:
        for p in (listing, *subtitles):
            with contextlib.suppress(OSError):
                p.unlink()
    if frames is not None and (got := count_frames(path)) != frames:
        raise VideoError(f"joining the chunks into {named} gave {got} frame(s) of {frames}: a chunk in "
                         f"{chunks[0].path.parent} is damaged; delete that folder to start over")
    return finish(source, path, muxer)


def count_frames(path: Path) -> int | None:
    """The first video stream's frames, counted from its packets (nothing decoded)."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-stats", "-i", str(path),
                           "-map", "0:v:0", "-c", "copy", "-f", "null", "-"], capture_output=True, check=False)  # fmt: skip
    counts = re.findall(rb"frame=\s*(\d+)", proc.stderr)
    return int(counts[-1]) if counts else None


def _cut_args(source: VideoInfo) -> list[str]:
    """``-ss``/``-t`` of the part of ``source`` upscaled (none for the whole)."""
    return ((["-ss", f"{source.seek:.6f}"] if source.seek else [])
            + (["-t", f"{source.span:.6f}"] if source.span else []))  # fmt: skip


def _tail(proc: subprocess.CompletedProcess[bytes]) -> str:
    return " ".join(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-_TAIL:])


def _cut_subtitles(cmd: list[str], source: VideoInfo, args: list[str], output: Path,
                   named: Path | None = None) -> list[Path]:
    """For a part (--start, --duration) with subtitles: cut the subtitle streams ``args`` map from the source (input
    #1 of ``cmd``) into hidden files beside ``output`` and return them; ``cmd`` then reads them as inputs #2 (and
    #3), and ``args`` map the streams from there, in their order, converted as planned. ffmpeg moves copied subtitles
    to a cut of its output, but not those it converts (mov_text for .mp4, WebVTT for .webm kept their times from the
    source's start), nor Matroska's at a cut of its input; and a cut drops a cue already showing. So text subtitles
    are cut as text (:func:`_cut_text_subtitles`), a cue showing at the cut kept from 0; bitmap ones (no text) are
    copied and cut by ffmpeg, the packet showing at the cut first moved to it (:func:`_copy_cut_subtitles`).
    Into mov_text (MP4, MOV), which shows one cue at a time, text subtitles are staged so too, the whole file's where
    there is no part, with their cues made one at a time (:func:`~classsr_cli.io.subtitles.flatten`); where that
    fails for a whole file, they are converted by ffmpeg as they are, as before.
    ``named``: the file ``output`` becomes (``output`` a hidden file it is written under), which an error names."""
    part = bool(source.seek or source.span)
    one_at_a_time = "mov_text" in args  # the subtitles' codec (plan_streams)
    if not (part or one_at_a_time):
        return []
    ids = {str(s.index): s for s in source.subtitles}
    at = [i for i in range(len(args) - 1) if args[i] == "-map" and args[i + 1].startswith("1:") and args[i + 1][2:] in ids]
    text = [i for i in at if ids[args[i + 1][2:]].codec in TEXT_FORMATS]
    if not part:  # the whole file into mov_text: only text that can overlap (mov_text's own cannot)
        at = text = [i for i in text if ids[args[i + 1][2:]].codec != "mov_text"]
    if not at:
        return []
    made: list[Path] = []
    inputs: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="classsr-subtitles-") as tmp:
            # Matroska written without a packet cannot be read back (ffmpeg 9): each file also holds a stream with
            # one cue, at the part's start, that no output takes.
            placeholder = Path(tmp, "placeholder.srt")
            placeholder.write_text("1\n00:00:00,000 --> 00:00:00,001\n.\n", encoding="utf-8")
            text_cutter = functools.partial(_cut_text_subtitles, one_at_a_time=one_at_a_time)
            for group, cutter, suffix in ((text, text_cutter, "subtitles"),
                                          ([i for i in at if i not in text], _copy_cut_subtitles, "subtitles-copied")):
                if not group:
                    continue
                into = output.with_name(f".{output.name}.{suffix}.mkv")
                made.append(into)
                cutter(source, [ids[args[i + 1][2:]] for i in group], into, named or output, placeholder)
                for k, i in enumerate(group):
                    args[i + 1] = f"{2 + len(inputs) // 2}:s:{k}"
                inputs += ["-i", str(into)]
    except BaseException as e:
        for p in made:
            with contextlib.suppress(OSError):
                p.unlink()
        if not part and isinstance(e, VideoError):  # only to show overlapping cues together: converted as before
            return []
        raise
    here = cmd.index("-map_metadata")
    cmd[here:here] = inputs  # inputs #2 (and #3), after the source's
    return made


def _run_cut(cmd: list[str], named: Path, hidden: list[Path]) -> subprocess.CompletedProcess[bytes]:
    """Run one step of cutting a part's subtitles; an error names ``named``, not the ``hidden`` files it writes."""
    proc = run_watched(cmd)
    if proc.returncode != 0:
        why = _tail(proc)
        for p in hidden:
            why = why.replace(str(p), "the cut subtitles")
        raise VideoError(f"cutting the subtitles for {named} failed (ffmpeg exit {proc.returncode}): {why}")
    return proc


def _copy_cut_subtitles(source: VideoInfo, streams: list[StreamInfo], into: Path, named: Path,
                        placeholder: Path) -> None:
    """Bitmap subtitles (no text to cut): copied into ``into`` and cut there by ffmpeg, with the ``placeholder``
    stream after them. ffmpeg's cut drops a packet that starts before it, so the one showing at the cut
    (:func:`_showing_at`) is first moved to it (``setts``, in a copy of the streams): it then shows from the part's
    first frame, for what was left of its time."""
    src, maps = source.path, [f"0:{s.index}" for s in streams]
    showing = _showing_at(source, streams, named) if source.seek else [None] * len(streams)
    if any(k is not None for k in showing):
        staged = placeholder.with_name("bitmaps.mkv")
        at = f"{source.seek:.6f}/TB"
        moves = [a for j, k in enumerate(showing) if k is not None for a in (
            f"-bsf:s:{j}", f"setts=pts=if(eq(N\\,{k})\\,{at}\\,PTS):dts=if(eq(N\\,{k})\\,{at}\\,DTS)"
                           f":duration=if(eq(N\\,{k})*gt(DURATION\\,0)\\,DURATION+PTS-{at}\\,DURATION)")]  # fmt: skip
        _run_cut([ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error", "-i", str(src),
                  *[a for m in maps for a in ("-map", m)], "-c:s", "copy", *moves, "-f", "matroska", "-y", str(staged)],
                 named, [staged, into])  # fmt: skip
        src, maps = staged, [f"0:{j}" for j in range(len(streams))]
    _run_cut([ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error", "-i", str(src),
              "-itsoffset", f"{source.seek:.6f}", "-f", "srt", "-i", str(placeholder),
              *[a for m in maps for a in ("-map", m)], "-map", "1:0", "-c:s", "copy",
              *_cut_args(source), "-f", "matroska", "-y", str(into)], named, [into])  # fmt: skip


def _showing_at(source: VideoInfo, streams: list[StreamInfo], named: Path) -> list[int | None]:
    """For each of ``streams``, the index of its packet showing at ``source.seek`` (the last that starts before it,
    unless its duration, where it has one, ended by then), or ``None``; from the packets' timestamps (nothing
    decoded)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(source.path),
           *[a for s in streams for a in ("-map", f"0:{s.index}")], "-c", "copy", "-t", f"{source.seek:.6f}",
           "-f", "framecrc", "-"]  # fmt: skip
    text = _run_cut(cmd, named, []).stdout.decode("utf-8", "replace")
    at = Fraction(source.seek).limit_denominator(10**6)
    seeks = {int(j): at / Fraction(int(n), int(d))  # the cut in each stream's ticks
             for j, n, d in re.findall(r"^#tb (\d+): (\d+)/(\d+)", text, re.MULTILINE)}
    showing: list[int | None] = [None] * len(streams)
    counts = [0] * len(streams)
    for m in re.finditer(r"^\s*(\d+),\s*(-?\d+),\s*(-?\d+),\s*(\d+),", text, re.MULTILINE):
        j, pts, duration = int(m.group(1)), int(m.group(3)), int(m.group(4))
        if j < len(streams) and j in seeks:
            seek = seeks[j]
            if pts < seek:
                showing[j] = counts[j] if not duration or pts + duration > seek else None
            counts[j] += 1
    return showing


def _cut_text_subtitles(source: VideoInfo, streams: list[StreamInfo], into: Path, named: Path,
                        placeholder: Path, one_at_a_time: bool = False) -> None:
    """Text subtitles: each stream written out as text (:data:`~classsr_cli.io.subtitles.TEXT_FORMATS`), cut there
    (:func:`classsr_cli.io.subtitles.cut`), its cues made one at a time with ``one_at_a_time``
    (:func:`~classsr_cli.io.subtitles.flatten`), and the texts put into ``into`` with the streams' metadata and
    dispositions, the ``placeholder`` stream after them."""
    end = source.seek + source.span if source.span else None
    formats = [TEXT_FORMATS[s.codec] for s in streams]
    whole = [placeholder.with_name(f"{k}.{f}") for k, f in enumerate(formats)]
    upto = ["-t", f"{end + 1:.6f}"] if end is not None else []  # cues from the part's end on are not needed
    _run_cut([ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error", "-i", str(source.path),
              *[a for s, f, p in zip(streams, formats, whole, strict=True)
                for a in ("-map", f"0:{s.index}", "-c:s", f, *upto, "-f", f, str(p))]], named, [*whole, into])  # fmt: skip
    parts = []
    for p, f in zip(whole, formats, strict=True):
        part = p.with_name(f"cut.{p.name}")
        text = p.read_text(encoding="utf-8", errors="surrogateescape")
        text = cut(text, f, source.seek, end)
        part.write_text(flatten(text, f) if one_at_a_time else text, encoding="utf-8", errors="surrogateescape")
        parts += ["-f", f, "-i", str(part)]
    n = len(streams)
    meta = [a for k, s in enumerate(streams) for a in
            ("-map", f"{k}:0", f"-map_metadata:s:{k}", f"{n + 1}:s:{s.index}",
             f"-disposition:s:{k}", "+".join(sorted(s.dispositions)) or "0")]  # fmt: skip
    _run_cut([ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error", *parts,
              "-f", "srt", "-i", str(placeholder), "-i", str(source.path), *meta, "-map", f"{n}:0",
              "-c:s", "copy", "-f", "matroska", "-y", str(into)], named, [into])  # fmt: skip


def bit_depth(pix_fmt: str | None) -> int:
    """Bits per channel of an ffmpeg pixel format (``yuv420p10le`` 10, ``p010le`` 10, ``rgb48le`` 16; else 8)."""
    m = re.search(r"(\d+)(?:le|be)$", pix_fmt or "")
    if not m:
        return 8
    n = int(m.group(1))
    return n if n <= 16 else n // (4 if (pix_fmt or "").startswith(("rgba", "bgra")) else 3)


_ALPHA = re.compile(r"^(yuva|gbrap|ya\d|rgba|bgra|argb|abgr)")


def keeps_alpha(pix_fmt: str) -> bool:
    """Whether frames written in ``pix_fmt`` keep transparency (a GIF's ``pal8`` keeps it as one palette entry)."""
    return bool(_ALPHA.match(pix_fmt)) or pix_fmt == "pal8"


class GifFrame(NamedTuple):
    """A GIF frame as its blocks say, read without decoding it (:func:`_gif_frames`)."""

    delay: int  # hundredths of a second, as its Graphic Control Extension stores it (0 where it has none)
    control_at: int | None  # where that extension's packed byte is in the file, the delay after it (None: none)
    box: tuple[int, int, int, int]  # its picture on the screen: left, top, right, bottom (past the screen: cut)
    disposal: int  # what becomes of it after it shows: 2 cleared, 3 the canvas before it put back; 0, 1 kept
    transparent: int | None  # its transparent colour's index (None: none)
    local: bool  # it has its own colour table
    #: ffmpeg decodes it: its GIF parser makes a frame of the first picture and of each after an extension (any, in
    #: the file before it); pictures before the file's first extension stay in the first frame, and its decoder
    #: decodes a frame's first picture alone (a GIF87a's pictures after its first are not drawn)
    decoded: bool = True

    @property
    def delay_at(self) -> int | None:
        """Where its delay is in the file (``None``: it has no Graphic Control Extension)."""
        return None if self.control_at is None else self.control_at + 1


def _gif_frames(data: bytes | mmap.mmap) -> list[GifFrame] | None:
    """Each frame of a GIF's bytes ``data`` (:class:`GifFrame`), read from the blocks without decoding them; ``None``
    where ``data`` is not a GIF or its blocks are not a GIF's."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    width, height = struct.unpack("<2H", data[6:10])
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # past the screen descriptor and global palette
    frames: list[GifFrame] = []
    control: tuple[int, int | None, int, int | None] = (0, None, 0, None)  # delay, where, disposal, transparent
    extended = False  # an extension seen

    def blocks(at: int) -> int:  # past a run of sub-blocks and its terminator
        while at < len(data) and data[at]:
            at += data[at] + 1
        return at + 1

    while at < len(data):
        kind = data[at]
        if kind == 0x3B:  # trailer
            return frames
        if kind == 0x21 and at + 1 < len(data):  # an extension: its label, then sub-blocks
            extended = True
            if data[at + 1] == 0xF9 and at + 6 < len(data):  # Graphic Control: packed, delay (LE), transparent index
                packed = data[at + 3]
                control = (data[at + 4] | data[at + 5] << 8, at + 3, packed >> 2 & 7, data[at + 6] if packed & 1 else None)
            at = blocks(at + 2)
        elif kind == 0x2C and at + 10 < len(data):  # an image: its descriptor, local palette, LZW code size, data
            left, top, w, h = struct.unpack("<4H", data[at + 1 : at + 9])
            flags = data[at + 9]
            at += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            at = blocks(at + 1)
            box = _within((left, top, left + w, top + h), width, height)
            frames.append(GifFrame(control[0], control[1], box, control[2], control[3], bool(flags & 0x80),
                                   extended or not frames))
            control = (0, None, 0, None)
        else:
            return None
    return frames  # no trailer: as far as it goes


class AnimationCanvas:
    """What of an animation's canvas each frame shows covered, where browsers (Chromium, Firefox, Safari) show the
    rest clear and ffmpeg's decoder gives it opaque. A GIF without a transparent colour (one with it ffmpeg gives
    clear itself): ffmpeg fills the canvas a first picture smaller than the screen leaves, and a frame's box cleared
    after it shows (disposal 2), with the GIF's background colour (gdk-pixbuf shows it clear too). An APNG in gray or
    RGB without a ``tRNS`` chunk (ffmpeg decodes the others with alpha): a frame's box cleared after it shows
    (``APNG_DISPOSE_OP_BACKGROUND``, "fully transparent black" in the specification) is black in ffmpeg's frame,
    which has no alpha. For such a file whose frames leave some of the canvas uncovered (:meth:`of`),
    :class:`VideoReader` clears the rest of each frame, as ``classsr upscale`` clears a GIF's first picture's
    (:func:`classsr_cli.io.image.read_image`). Frames asked for in order are walked once."""

    def __init__(self, width: int, height: int, frames: list[GifFrame] | list[ApngFrame]) -> None:
        self.width, self.height = width, height
        self.frames: tuple[GifFrame | ApngFrame, ...] = tuple(frames)
        self._walk: Iterator[np.ndarray | None] | None = None
        self._next = 0  # the frame the walk gives next

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> AnimationCanvas | None:
        """The canvas of the GIF or APNG ``path``; ``None`` where it is neither, ffmpeg gives it clear where it is
        (above), or every frame shows all of its canvas covered (most GIFs: a first picture as large as the screen;
        most APNGs: no frame cleared)."""
        frames: list[GifFrame] | list[ApngFrame]
        with open(path, "rb") as f, _mapped(f) as data:
            if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 26:
                width, height = struct.unpack(">2I", data[16:24])
                opaque = data[25] in (0, 2) and not _png_chunk(data, b"tRNS")
                frames = [f._replace(box=_within(f.box, width, height)) for f in _apng_frames(data)] if opaque else []
            else:
                gif = _gif_frames(data) or []
                width, height = struct.unpack("<2H", data[6:10]) if gif else (0, 0)
                clear = any(frame.transparent is not None for frame in gif)
                frames = [] if clear else [frame for frame in gif if frame.decoded]  # (ffmpeg's frames)
        if not frames or not (width and height):
            return None
        canvas = cls(width, height, frames)
        return canvas if any(covered is not None for covered in canvas._states()) else None

    def covered(self, n: int) -> np.ndarray | None:
        """The screen frame ``n`` shows covered (``True``; height x width; not to be changed), ``None`` where it
        shows all of it covered (or ``n`` is past the frames)."""
        if self._walk is None or n < self._next:
            self._walk, self._next = self._states(), 0
        state = None
        while self._next <= n:
            state = next(self._walk, None)
            self._next += 1
        return state

    def _states(self) -> Iterator[np.ndarray | None]:
        covered, full = np.zeros((self.height, self.width), bool), False
        for frame in self.frames:
            x0, y0, x1, y1 = frame.box
            before = (covered.copy() if not full else None, full) if frame.disposal == 3 else None
            if not full:
                covered[y0:y1, x0:x1] = True
                full = bool(covered.all())
            yield None if full else covered
            if frame.disposal == 2 and x1 > x0 and y1 > y0:  # its box cleared for the next frame
                covered[y0:y1, x0:x1], full = False, False
            elif before is not None:  # the canvas before it put back
                covered, full = (before[0], False) if before[0] is not None else (np.ones_like(covered), True)


def gif_delays(path: str | os.PathLike[str]) -> tuple[int, ...] | None:
    """Each frame's delay in a GIF, as its Graphic Control Extensions store it (hundredths of a second; 0 where a frame
    has none), read from its blocks without decoding them; ``None`` where the file is not a GIF or has no frame. The
    frames ffmpeg decodes (:attr:`GifFrame.decoded`), whose times these are."""
    with open(path, "rb") as f, _mapped(f) as data:
        frames = _gif_frames(data)
    return tuple(f.delay for f in frames if f.decoded) if frames else None


def gif_pictures_undrawn(path: str | os.PathLike[str]) -> tuple[int, int]:
    """How many of a GIF's pictures ffmpeg does not draw (:attr:`GifFrame.decoded`: those before the file's first
    extension after its first, as a GIF87a animation or a "high colour" GIF has them), and how many it has; ``(0, 0)``
    where it is not a GIF."""
    with open(path, "rb") as f, _mapped(f) as data:
        frames = _gif_frames(data) or []
    return sum(1 for frame in frames if not frame.decoded), len(frames)


@contextlib.contextmanager
def _mapped(f: io.BufferedIOBase) -> Iterator[bytes | mmap.mmap]:
    """The open file ``f``'s bytes, mapped (an animation of hundreds of MB is walked, not read into memory)."""
    try:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except ValueError:  # an empty file
        yield b""
        return
    with data:
        yield data


class ApngFrame(NamedTuple):
    """An APNG's frame as its ``fcTL`` chunk says, read without decoding it (:func:`_apng_frames`)."""

    delay: Fraction  # seconds (a denominator of 0 means 100, as the APNG specification has it)
    at: int  # where that chunk's data starts in the file
    box: tuple[int, int, int, int]  # its picture on the canvas: left, top, right, bottom
    disposal: int  # as a GIF's numbers say it (:attr:`GifFrame.disposal`): 1 kept, 2 cleared, 3 the canvas put back


def _apng_frames(data: bytes | mmap.mmap) -> list[ApngFrame]:
    """Each frame of an APNG's bytes ``data`` (:class:`ApngFrame`)."""
    at, frames = 8, []  # past the PNG signature
    while at + 8 <= len(data):
        size, tag = struct.unpack(">I", data[at : at + 4])[0], data[at + 4 : at + 8]
        if tag == b"fcTL" and size == 26 and at + 34 <= len(data):
            w, h, x, y, num, den, dispose = struct.unpack(">4I2HB", data[at + 12 : at + 33])
            frames.append(ApngFrame(Fraction(num, den or 100), at + 8, (x, y, x + w, y + h), min(dispose, 2) + 1))
        at += size + 12  # its length, type, data and CRC
    return frames


def _png_chunk(data: bytes | mmap.mmap, tag: bytes) -> bool:
    """Whether a PNG's bytes ``data`` hold a ``tag`` chunk before their image data."""
    at = 8
    while at + 8 <= len(data) and (kind := data[at + 4 : at + 8]) not in (b"IDAT", b"IEND"):
        if kind == tag:
            return True
        at += struct.unpack(">I", data[at : at + 4])[0] + 12
    return False


def _within(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` (left, top, right, bottom) cut to a ``width`` x ``height`` canvas."""
    return (min(box[0], width), min(box[1], height), min(box[2], width), min(box[3], height))


class WebpFrame(NamedTuple):
    """An animated WebP's frame as its ``ANMF`` chunk says, read without decoding it (:func:`_webp_frames`)."""

    duration: int  # milliseconds
    duration_at: int  # where that duration is in the file
    box: tuple[int, int, int, int]  # its picture on the canvas: left, top, right, bottom


def _webp_frames(data: bytes | mmap.mmap) -> list[WebpFrame]:
    """Each frame of an animated WebP's bytes ``data`` (:class:`WebpFrame`)."""
    at, frames = 12, []  # past RIFF, its size, WEBP
    while at + 8 <= len(data):
        tag, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        if tag == b"ANMF" and at + 23 <= len(data):  # X, Y (halved), width and height (less 1), 3 bytes each; duration
            x, y, w, h = (int.from_bytes(data[at + k : at + k + 3], "little") for k in range(8, 20, 3))
            box = (2 * x, 2 * y, 2 * x + w + 1, 2 * y + h + 1)
            frames.append(WebpFrame(int.from_bytes(data[at + 20 : at + 23], "little"), at + 20, box))
        at += 8 + size + (size & 1)
    return frames


def webp_first_box(path: str | os.PathLike[str]) -> tuple[int, int, int, int] | None:
    """An animated WebP's first frame's box on its canvas (left, top, right, bottom), read from its chunks; ``None``
    where it has no ``ANMF`` chunk (a still, or not a WebP)."""
    with open(path, "rb") as f, _mapped(f) as data:
        frames = _webp_frames(data) if data[8:12] == b"WEBP" else []
    return frames[0].box if frames else None


def frame_delays(path: str | os.PathLike[str], kind: str) -> tuple[Fraction, ...] | None:
    """Each frame's duration (seconds) as an animated picture of Pillow's ``kind`` (``GIF``, ``PNG``: APNG,
    ``WEBP``) stores it, read from its blocks without decoding them; ``None`` where there are none to read."""
    if kind == "GIF":
        hundredths = gif_delays(path)
        return None if hundredths is None else tuple(Fraction(d, 100) for d in hundredths)
    with open(path, "rb") as f, _mapped(f) as data:
        delays = ([frame.delay for frame in _apng_frames(data)] if kind == "PNG" else
                  [Fraction(frame.duration, 1000) for frame in _webp_frames(data)] if kind == "WEBP" else [])  # fmt: skip
    return tuple(delays) or None


#: The shortest frame an animation output holds, as (units a second, least units): browsers show a frame of 10 ms or
#: less for 100 ms (:data:`SHORTEST_SHOWN`), and a GIF counts hundredths, so a 60 frames/s video's every third frame
#: (ffmpeg rounds its times to 0, 2, 3, 5 hundredths) played for 100 ms; frames closer to the last one kept are left
#: out (:func:`_video_args`), the time they had going to the one before.
SHORTEST_FRAME = {"gif": (100, 2), "webp": (1000, 11), "apng": (1000, 11)}

#: Browsers (Chromium, Firefox, Safari) show a frame of an animated GIF, APNG or WebP that says 10 ms or less for
#: 100 ms (against ads that flash); ffmpeg shows a GIF's 0 so and its 10 ms as 10 ms, an APNG's 0 at 15 frames a
#: second (its demuxer's default) and 10 ms or less as stored, and a WebP's as browsers do.
SHORTEST_SHOWN, SLOW_SHOWN = Fraction(1, 100), Fraction(1, 10)


@dataclass(frozen=True)
class BrowserTiming:
    """An animated picture of Pillow's ``kind`` (GIF, PNG: APNG, WEBP) with frames of 10 ms or less, which browsers
    show for 100 ms: each frame's duration as stored (seconds), as ffmpeg reads it and as browsers show it."""

    kind: str
    stored: tuple[Fraction, ...]

    @classmethod
    def of(cls, kind: str, stored: tuple[Fraction, ...] | None) -> BrowserTiming | None:
        """The timing of ``stored`` durations, ``None`` where there are none or no frame is that short."""
        return cls(kind, stored) if stored and min(stored) <= SHORTEST_SHOWN else None

    @property
    def short(self) -> int:
        """How many frames say 10 ms or less."""
        return sum(1 for d in self.stored if d <= SHORTEST_SHOWN)

    @property
    def decoded(self) -> tuple[Fraction, ...]:
        if self.kind == "WEBP":
            return self.shown
        zero = SLOW_SHOWN if self.kind == "GIF" else Fraction(1, 15)
        return tuple(d or zero for d in self.stored)

    @property
    def shown(self) -> tuple[Fraction, ...]:
        return tuple(SLOW_SHOWN if d <= SHORTEST_SHOWN else d for d in self.stored)

    @staticmethod
    def starts(durations: tuple[Fraction, ...]) -> list[Fraction]:
        """Where each frame of ``durations`` starts, and the last ends."""
        at = [Fraction(0)]
        for d in durations:
            at.append(at[-1] + d)
        return at

    def part(self, seek: float, span: float | None) -> tuple[int, int]:
        """The frames in a part from ``seek`` seconds for ``span`` (``None``: to the end), on the clock browsers show
        it by: the first and the one past the last, each the first to start at or after the part's start and end, one
        frame at least (as an exact seek into a video gives the frame showing)."""
        shown, count = self.starts(self.shown), len(self.stored)
        first = bisect.bisect_left(shown, Fraction(seek).limit_denominator(10**6), hi=count)
        if span is None:
            return first, count
        end = bisect.bisect_left(shown, Fraction(seek + span).limit_denominator(10**6))
        return first, min(count, max(first + 1, end))


def _picture_traits(path: Path, codec: str, pix_fmt: str | None, index: int) -> dict[str, Any]:
    """:attr:`VideoInfo.alpha`, :attr:`~VideoInfo.plays` and :attr:`~VideoInfo.lossless`, the last two from an
    animated picture's own header (one Pillow open). Alpha: an alpha pixel format; for GIF and animated WebP or PNG,
    whose decoders give every file one, a pixel not quite opaque too: in any frame of an animation as ffmpeg decodes
    it (stream ``index``; :func:`_decoded_clear`), in a still as Pillow reads it, or a GIF's or APNG's canvas its
    frames leave uncovered (:class:`AnimationCanvas`; an APNG in RGB or gray too)."""
    alpha = bool(_ALPHA.match(pix_fmt or ""))
    if codec not in ("gif", "webp", "webp_anim", "apng"):
        return {"alpha": alpha}
    from PIL import Image

    from classsr_cli.io.image import pillow_look, webp_lossless

    try:
        with pillow_look(path), Image.open(path) as im:
            loop, kind = im.info.get("loop"), im.format
            animated = int(getattr(im, "n_frames", 1) or 1) > 1 and kind in ("GIF", "WEBP", "PNG")
            clear = alpha and not animated and int(np.asarray(im.convert("RGBA"))[:, :, 3].min()) < 255
    except (OSError, ValueError, SyntaxError, IndexError, EOFError, struct.error):  # not a picture Pillow reads
        return {"alpha": alpha and _decoded_clear(path, index)}  # (its header, a cut GIF's frames counted): ffmpeg's
    canvas = alpha if kind == "GIF" else kind == "PNG" and animated  # (an RGB APNG's frames have no alpha)
    clear = clear or (canvas and AnimationCanvas.of(path) is not None)
    clear = clear or (alpha and animated and _decoded_clear(path, index))
    if not animated:
        plays = 0
    elif kind == "GIF":  # its NETSCAPE block counts the repeats after the first play; none: it plays once
        plays = 1 if loop is None else (0 if loop == 0 else int(loop) + 1)
    else:  # WebP's loop count and APNG's num_plays count every play
        plays = int(loop or 0)
    traits: dict[str, Any] = {"alpha": clear, "plays": plays, "lossless": kind == "WEBP" and webp_lossless(path)}
    if animated and kind is not None and (timing := BrowserTiming.of(kind, frame_delays(path, kind))):
        traits["browser_timing"] = timing  # frames of 10 ms or less, which browsers slow down
    return traits


def _decoded_clear(path: Path, index: int, timeout: float = 900) -> bool:
    """Whether a frame of the animation ``path`` (its stream ``index``), as ffmpeg decodes it, has a pixel not quite
    opaque, every frame looked at until one has: an animation whose first frame is opaque may turn transparent, and
    an animated WebP's canvas its frames leave uncovered is clear whether or not a frame has alpha (Pillow reads such
    a WebP as RGB: libwebp says it has no alpha). ``False`` where ffmpeg cannot decode it (or takes over ``timeout``
    seconds: a damaged file it decodes for ever)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "quiet", "-i", str(path), "-map", f"0:{index}",
           "-vf", "alphaextract,format=gray", "-f", "rawvideo", "-"]  # the alpha planes, 8 bits
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
            assert proc.stdout is not None
            watchdog = threading.Timer(timeout, proc.kill)
            watchdog.start()
            try:
                while chunk := proc.stdout.read(1 << 20):
                    if np.frombuffer(chunk, np.uint8).min() < 255:
                        proc.kill()
                        return True
            finally:
                watchdog.cancel()
    except OSError:
        return False
    return False


def _frame_traits(seq: Sequence, pix_fmt: str | None) -> dict[str, Any]:
    """:attr:`VideoInfo.alpha` and :attr:`~VideoInfo.orientation` of an image sequence, from its first frame: alpha
    where the pixel format has it and a pixel is transparent (ffmpeg reads a CMYK JPEG, and writers save opaque RGBA
    PNGs, in alpha formats); its EXIF orientation. The format alone, upright, where Pillow cannot read it (DPX).
    OpenEXR, Radiance HDR and PFM frames are each checked first (:func:`classsr_cli.io.image.exr_frames`,
    :func:`~classsr_cli.io.image.radiance_frames`, :func:`~classsr_cli.io.image.pfm_frames`)."""
    alpha = bool(_ALPHA.match(pix_fmt or ""))
    first = seq.first
    from classsr_cli.io import exr

    if exr.is_float(pix_fmt):  # linear light: the stops the first frame is read darker by, as upscale reads it
        from classsr_cli.io import pnm, radiance
        from classsr_cli.io.image import exr_frames, pfm_frames, radiance_frames

        frames = (seq.frame(n) for n in range(seq.start, seq.start + seq.count))
        kind = first.suffix.lower()  # a sequence's frames are told by their suffix
        ({".hdr": radiance_frames, ".pfm": pfm_frames}.get(kind, exr_frames))(frames)
        try:
            if kind == ".pfm":
                light = pnm.load_pfm(first)
            else:
                light = (radiance.decode if kind == ".hdr" else exr.decode)(ffmpeg_exe(), first)
        except ValueError as e:
            raise InputError(f"{first}: truncated or corrupt image ({e})") from None
        return {"alpha": alpha, "stops": exr.stops_for(*exr.colour_alpha(light))}
    from PIL import Image

    from classsr_cli.io.image import pillow_look

    try:
        with pillow_look(first), Image.open(first) as im:
            orientation = int(im.getexif().get(0x0112, 1) or 1)
            profile = im.info.get("icc_profile") or None
            icc = _icc_name(profile)
            if alpha and ("A" in im.getbands() or "transparency" in im.info):
                alpha = int(np.asarray(im.convert("RGBA"))[:, :, 3].min()) < 255
            else:
                alpha = False
    except (OSError, ValueError, SyntaxError):
        return {"alpha": alpha}
    return {"alpha": alpha, "orientation": orientation if orientation in _ORIENT else 1, "icc": icc,
            "icc_profile": profile if icc else None}


def _srgb_transform(icc: bytes) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function that converts an 8-bit RGB frame from the profile ``icc`` to sRGB through LittleCMS (Pillow's
    default intent), or ``None`` where the profile cannot be used."""
    from PIL import Image, ImageCms

    try:
        transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
                                            "RGB", "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    return lambda rgb: np.asarray(ImageCms.applyTransform(Image.fromarray(rgb), transform))


def _icc_name(icc: bytes | None) -> str | None:
    """An ICC profile's description where it is not sRGB's (``None`` for none, or sRGB)."""
    if not icc:
        return None
    from PIL import ImageCms

    try:
        name = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except (ImageCms.PyCMSError, OSError, ValueError):
        return "unreadable"
    return None if "srgb" in name.lower() else name or "unnamed"


#: ffmpeg's filters that turn a frame of each EXIF orientation upright (5 transposes it, 7 transverses it).
_ORIENT = {1: "", 2: "hflip", 3: "hflip,vflip", 4: "vflip", 5: "transpose=cclock_flip", 6: "transpose=clock",
           7: "transpose=clock_flip", 8: "transpose=cclock"}  # fmt: skip


#: The filter that deinterlaces an interlaced source before upscaling: bwdif (motion-adaptive, Bob Weaver with w3fdif's
#: interpolation), one frame out for each frame in (the source's timing kept), on the frames flagged interlaced.
DEINTERLACE = "bwdif=mode=send_frame:parity=auto:deint=interlaced"

#: ``deinterlace`` of a telecined source (film at 23.976 frames/s carried at 29.97 interlaced by 3:2 pulldown: an NTSC
#: DVD of a film or an anime): its film frames put back instead (inverse telecine, ``--ivtc``): each frame's fields
#: matched with the neighbours' (fieldmatch), what stays combed deinterlaced (yadif), and the one frame in five that
#: repeats dropped (decimate).
IVTC = "ivtc"
_IVTC_FILTERS = "fieldmatch=order=auto:combmatch=full,yadif=deint=interlaced,decimate"
#: The share of a 29.97 interlaced source's frames that repeat a field (ffmpeg's idet) between which it is taken to be
#: telecined: 3:2 pulldown repeats one field in two frames of five (0.4); video repeats none, a still picture all.
TELECINED = (0.3, 0.5)


def telecined_share(info: VideoInfo, frames: int = 300) -> float | None:
    """The share of ``frames`` frames from a third into ``info`` that repeat a field of the frame before (ffmpeg's
    ``idet``), for an interlaced source at 29.97 frames/s; ``None`` for another source, or where ffmpeg says
    nothing."""
    if info.field_order is None or info.fps is None or abs(info.fps - 30000 / 1001) > 0.01 or info.demux:
        return None
    part = info.trimmed(info.duration / 3) if info.duration and not (info.seek or info.span) else info
    try:
        stat = info.path.stat()
    except OSError:
        return None
    seek, head = _cut(part)
    return _telecined_share(info.path, (stat.st_mtime_ns, stat.st_size), info.video_index, tuple(seek), head, frames)


@functools.cache
def _telecined_share(path: Path, stamp: tuple[int, int], index: int, seek: tuple[str, ...], head: str,
                     frames: int) -> float | None:
    """:func:`telecined_share` of the file ``path`` as ``stamp`` (its mtime and size) found it, read from ``seek`` and
    the filters ``head`` (:func:`_cut`)."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", *seek, "-i", str(path),
                               "-map", f"0:{index}", "-vf", f"{head}idet", "-frames:v", str(frames),
                               "-f", "null", "-"], capture_output=True, check=False, timeout=600)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.findall(r"Repeated Fields: Neither:\s*(\d+)\s*Top:\s*(\d+)\s*Bottom:\s*(\d+)",
                       proc.stderr.decode("utf-8", "replace"))
    if not found:
        return None
    neither, top, bottom = map(int, found[-1])
    total = neither + top + bottom
    return (top + bottom) / total if total else None


#: Encoders whose frames hold no colour tags (no transfer, no primaries), by the frames' name in a note.
_UNTAGGED = {"gif": "GIF", "libwebp_anim": "WebP", "libwebp": "WebP", "apng": "APNG", "mjpeg": "JPEG", "tiff": "TIFF"}
#: What a source's transfer or primaries make it, as a note names them.
_HDR_TRANSFERS = {"smpte2084": "HDR (PQ)", "arib-std-b67": "HDR (HLG)"}
_WIDE_PRIMARIES = {"bt2020": "BT.2020", "smpte431": "DCI-P3", "smpte432": "Display P3"}


#: Transfers zscale takes that an SDR source keeps through its conversion to BT.709 primaries.
_SDR_TRANSFERS = frozenset({"bt709", "smpte170m", "bt470m", "bt470bg", "smpte240m", "iec61966-2-1", "bt2020-10",
                            "bt2020-12"})  # fmt: skip


def hdr_peak(transfer: str | None, hdr10: HDR10 | None) -> float:
    """The light (cd/m²) an HDR source's brightest pixels are tone-mapped from: a PQ source's MaxCLL, else its
    mastering display's peak, else :data:`classsr_cli.io.sdr.HDR_PEAK`, which is HLG's."""
    from classsr_cli.io.sdr import HDR_PEAK

    if transfer == "smpte2084" and hdr10 is not None:
        if hdr10.light and hdr10.light[0] > 0:
            return float(hdr10.light[0])
        if hdr10.luminance and hdr10.luminance[1] > 0:
            return float(hdr10.luminance[1])
    return float(HDR_PEAK)


def _to_sdr(codec: str, color: str | None, hdr10: HDR10 | None = None) -> list[str]:
    """The filters that bring an HDR (PQ, HLG) or wide-gamut source's RGB frames to what an output whose frames hold no
    colour tags (:data:`_UNTAGGED`) is shown as, SDR in BT.709 primaries: the light made linear (100 cd/m² at 1.0),
    the primaries converted, an HDR source's light tone-mapped (Möbius: linear up to about SDR's white, its highlights
    rolled off up to its peak, :func:`hdr_peak`) and written with sRGB's
    transfer, a wide-gamut SDR source's with its own; none for other sources and outputs, nor from an ffmpeg without
    those filters (:data:`SDR_FILTERS`)."""
    _, primaries, transfer = color_tags(color)
    hdr, wide = transfer in _HDR_TRANSFERS, primaries in _WIDE_PRIMARIES
    if codec not in _UNTAGGED or not (hdr or wide) or not (hdr or transfer in _SDR_TRANSFERS or transfer is None):
        return []
    if not ffmpeg_filters() >= SDR_FILTERS:  # an ffmpeg without zimg: shown as coded (said)
        return []
    given = f"color_primaries={primaries if wide else 'bt709'}:color_trc={transfer or 'bt709'}:colorspace=gbr:range=pc"
    filters = [f"setparams={given}", "zscale=t=linear:npl=100", "format=gbrpf32le", "zscale=p=bt709"]
    if hdr:
        filters.append(f"tonemap=mobius:desat=0:peak={hdr_peak(transfer, hdr10) / 100:g}")
    filters += [f"zscale=t={'iec61966-2-1' if hdr else transfer or 'bt709'}", "format=gbrp16le"]
    return filters


def _shown_color(codec: str, color: str | None) -> str | None:
    """The colour properties of the frames :func:`_to_sdr` gives (``None``: BT.709's, as an untagged source's), else
    ``color``."""
    return None if _to_sdr(codec, color) else color


def _untagged_note(info: VideoInfo, codec: str | None) -> list[str]:
    """What an output whose frames hold no colour tags does with an HDR or wide-gamut source: tone-maps it to SDR
    and converts its colours to BT.709's (:func:`_to_sdr`; JPEG and TIFF frames, which classsr writes itself, by
    :func:`classsr_cli.io.sdr.to_sdr`), said; one whose transfer that does not take, or an ffmpeg without the filters,
    shows its coded levels as SDR sRGB's (said)."""
    from classsr_cli.io.jxl import h273
    from classsr_cli.io.sdr import needs

    _, primaries, transfer = color_tags(info.color)
    hdr, wide = _HDR_TRANSFERS.get(transfer or ""), _WIDE_PRIMARIES.get(primaries or "")
    if codec not in _UNTAGGED or not (hdr or wide):
        return []
    what = f"{hdr} in {wide} colours" if hdr and wide else hdr or f"in {wide} colours"
    keep = "a .mp4, .mkv, .mov or .webm output, or PNG frames, keep it as it is"
    codes = h273(primaries, transfer)
    own = codec in ("mjpeg", "tiff") and codes is not None and needs(*codes)
    if _to_sdr(codec, info.color) or own:
        done = "tone-mapped to SDR in BT.709 colours" if hdr else "its colours converted to BT.709's"
        return [f"the source is {what}; {_UNTAGGED[codec]} frames hold no colour tags: {done}; {keep}"]
    why = "" if ffmpeg_filters() >= SDR_FILTERS else "; this ffmpeg has no zscale and tonemap"
    return [f"the source is {what}; {_UNTAGGED[codec]} frames hold no colour tags, so they show its levels as SDR sRGB's "
            f"(paler colours; not converted{why}): {keep}"]


def source_notes(info: VideoInfo, pix_fmt: str = DEFAULT_PIX_FMT, codec: str | None = None, *,
                 deinterlace: bool | str = True, rate: Fraction | None = None) -> list[str]:
    """What the video stream carries that ``classsr video`` does not keep in ``pix_fmt`` (written by ``codec``):
    bits beyond its depth (with a deeper format the encoder takes, if any), finer chroma, alpha, fields; and what an
    animation output leaves out of frames faster than browsers show (at the source's rate, or ``rate``: ``--fps``)."""
    notes = []
    depth, kept = bit_depth(info.pix_fmt), bit_depth(pix_fmt)
    if depth > kept:
        takes = (encoder_pix_fmts(codec) if codec else None) or (DEEP_PIX_FMT,)
        clear = info.alpha and keeps_alpha(pix_fmt)  # then not at the cost of the transparency kept
        takes = tuple(f for f in takes if f in ALPHA_FORMATS.get(codec or "", ())) if clear else takes
        deeper = [f for f in (DEEP_PIX_FMT, *takes) if f in takes and kept < bit_depth(f) <= depth]
        none = f"{codec} keeps transparency in no deeper format" if clear else f"{codec} takes no deeper format"
        hint = f" (--pix-fmt {deeper[0]} keeps {bit_depth(deeper[0])})" if deeper else f" ({none})"
        notes.append(f"the source is {depth}-bit; the output's {pix_fmt} keeps {kept} bits per channel{hint}")
    # Y'CbCr sources with finer chroma than the output keeps (ProRes 4:2:2 into 4:2:0); RGB sources are not noted.
    src_sub, out_sub = even_size(info.pix_fmt or "", 1, 1), even_size(pix_fmt, 1, 1)  # 1: full chroma that way
    if (info.pix_fmt or "").startswith(("yuv", "nv", "p0", "p2", "y2")) and any(
            o < i for o, i in zip(out_sub, src_sub, strict=True)):  # fmt: skip
        ratio = {(1, 1): "4:4:4", (1, 0): "4:2:2", (0, 1): "4:4:0", (0, 0): "4:2:0"}
        keep = _with_chroma(pix_fmt, ratio[src_sub].replace(":", ""))
        formats = encoder_pix_fmts(codec) if codec else None
        hint = f" (--pix-fmt {keep} keeps it)" if keep != pix_fmt and (formats is None or keep in formats) else ""
        notes.append(f"the source's {ratio[src_sub]} chroma ({info.pix_fmt}) becomes {ratio[out_sub]} in {pix_fmt}{hint}")
    if info.hdr10 and codec != "libx265":
        notes.append(f"the source's HDR10 metadata ({info.hdr10.describe()}) is not kept: {codec} writes none here "
                     "(libx265 into .mp4, .mov or .mkv does)")
    if info.alpha and not keeps_alpha(pix_fmt):
        kept_by = ALPHA_FORMATS.get(codec or "")
        hint = (f"--pix-fmt {kept_by[0]} keeps it" if kept_by else
                f"{codec} keeps none here; --codec prores_ks in .mov or .mkv, or a .webm, .gif, .webp or .apng "
                "output keeps it")  # fmt: skip
        what = (f"alpha channel ({info.pix_fmt})" if keeps_alpha(info.pix_fmt or "") else
                "transparency (the canvas its frames clear)")  # an RGB APNG's (AnimationCanvas)  # fmt: skip
        notes.append(f"the source's {what} is not kept ({hint})")
    if info.field_order and deinterlace == IVTC:
        notes.append(f"the source is interlaced ({info.field_order}): its film frames put back (--ivtc: fieldmatch, "
                     "decimate; 4 frames in 5) before they are upscaled")
    elif info.field_order and deinterlace:
        share = telecined_share(info)
        film = (f"; it looks telecined ({share:.0%} of its frames repeat a field, as 3:2 pulldown makes): --ivtc "
                "puts its film frames back instead, sharper" if share is not None and
                TELECINED[0] <= share <= TELECINED[1] else "")  # fmt: skip
        notes.append(f"the source is interlaced ({info.field_order}): deinterlaced (bwdif, a frame for each frame) "
                     f"before it is upscaled; --no-deinterlace upscales its fields together as frames{film}")
    elif info.field_order:
        notes.append(f"the source is interlaced ({info.field_order}); its fields are upscaled together as frames "
                     "(--no-deinterlace)")
    muxer = {encoder: muxer for muxer, encoder in ANIMATION_MUXERS.items()}.get(codec or "")
    fps = float(rate) if rate else info.fps
    if muxer in SHORTEST_FRAME and fps:
        unit, least = SHORTEST_FRAME[muxer]
        if fps > unit / least:
            shortest = f"{1000 * least // unit} ms"
            notes.append(f"{'--fps' if rate else 'the source runs at'} {fps:.4g} frames/s: a .{muxer} frame shorter "
                         f"than {shortest} would show for 100 ms in browsers, so frames closer than {shortest} to the "
                         "one before are left out (the time kept)")
    notes += _untagged_note(info, codec)
    if info.codec == "gif" and not info.demux and (undrawn := gif_pictures_undrawn(info.path))[0]:
        notes.append(f"{undrawn[0]} of the GIF's {undrawn[1]} pictures not drawn: they come after its first "
                     "picture and before any extension (a GIF87a animation, a \"high colour\" GIF), which the bundled "
                     "ffmpeg reads as one frame, its first picture alone (browsers show each picture)")
    if (timing := info.browser_timing) is not None:
        name = {"GIF": "GIF", "PNG": "APNG", "WEBP": "WebP"}.get(timing.kind, timing.kind)
        notes.append(f"{timing.short} of the {name}'s {len(timing.stored)} frames say 10 ms or less, which browsers "
                     f"show for {SLOW_SHOWN * 1000} ms: timed so")
    return notes


def ffmpeg_reason(stderr: bytes | str, codec: str, nothing: str = "ffmpeg gave nothing") -> str:
    """The most telling line of what a one-picture ffmpeg run printed where it failed: the first one from ``codec``'s
    decoder or encoder or naming an error, its bracketed prefixes and ``Decoding error:`` left out; else the last
    line; else ``nothing``."""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    told = [ln for ln in lines if f"[{codec} @" in ln or f":{codec} @" in ln or "error" in ln.lower()]
    line = told[0] if told else lines[-1] if lines else nothing
    line = re.sub(r"^(\[[^\]]*\]\s*)+", "", line)
    return re.sub(r"^(Decoding error|Error processing packet in decoder): ", "", line).strip()


@functools.cache
def ffmpeg_codecs(kind: str) -> frozenset[str]:
    """The names of the bundled ffmpeg's ``kind`` (``decoders`` or ``encoders``: ``libjxl``, ``libdav1d``, ...);
    empty where it does not answer. imageio-ffmpeg's builds have libjxl; a system ffmpeg (``IMAGEIO_FFMPEG_EXE``)
    may not."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", f"-{kind}"], capture_output=True, timeout=30, check=False)
    except (subprocess.TimeoutExpired, OSError):  # pragma: no cover - no ffmpeg that answers
        return frozenset()
    text = proc.stdout.decode("utf-8", "replace")
    return frozenset(n for n in re.findall(r"^ [VAS][A-Z.]{5} (\S+)", text, re.M) if n != "=")


@functools.cache
def ffmpeg_filters() -> frozenset[str]:
    """The names of the bundled ffmpeg's filters (``zscale``, ``tonemap``, ...); empty where it does not answer. A
    system ffmpeg (``IMAGEIO_FFMPEG_EXE``) built without zimg has no ``zscale``."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-filters"], capture_output=True, timeout=30, check=False)
    except (subprocess.TimeoutExpired, OSError):  # pragma: no cover - no ffmpeg that answers
        return frozenset()
    return frozenset(re.findall(r"^ [A-Z.]{2,3} (\S+)\s+\S+->\S+", proc.stdout.decode("utf-8", "replace"), re.M))


#: The filters :func:`_to_sdr` converts an HDR or wide-gamut source's frames with.
SDR_FILTERS = frozenset({"zscale", "tonemap"})


@functools.cache
def base_layer_options() -> tuple[str, ...]:
    """The decoder options that give a stream's own frames: an LCEVC enhancement layer (H.264 or HEVC with LCEVC in
    its SEI: shaka-player's lcevc-sei test stream) exported, not applied, where the bundled ffmpeg knows the flag
    (its liblcevc_dec gave frames of the enhanced size, 1920x1080 where the stream, ffprobe and most players say
    960x540, read by the reader as four frames' bytes each); none where it does not (no enhancement applied then)."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-h", "full"], capture_output=True, timeout=30, check=False)
    except (subprocess.TimeoutExpired, OSError):  # pragma: no cover - no ffmpeg that answers
        return ()
    text = proc.stdout.decode("utf-8", "replace")
    return ("-export_side_data", "+enhancements") if re.search(r"^\s+enhancements\s", text, re.M) else ()


@functools.cache
def encoder_pix_fmts(codec: str) -> tuple[str, ...] | None:
    """The pixel formats the bundled ffmpeg's ``codec`` encoder takes (``None``: not listed, or ffmpeg did not
    answer); a :class:`ConfigError` if it has no such encoder."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-h", f"encoder={codec}"],
                              capture_output=True, timeout=30, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:  # pragma: no cover - ffmpeg hung: the encoder will say more
        return None
    text = proc.stdout.decode("utf-8", "replace")
    if "is not recognized by FFmpeg" in text or not text.strip().startswith("Encoder"):
        raise ConfigError(f"--codec {codec}: the bundled ffmpeg has no such encoder (e.g. libx264, libx265, "
                          "libvpx-vp9, libaom-av1, ffv1, prores_ks)")
    m = re.search(r"Supported pixel formats: (.+)", text)
    return tuple(m.group(1).split()) if m else None


#: The containers that hold some video codecs only (ffmpeg's codec ids, and what they are called): ``--codec libx265``
#: into a .webm or a .gif failed at the encoder ("encoder failed (ffmpeg exit 234): gif muxer supports only codec gif").
_MUXER_CODECS = {"webm": {"vp8": "VP8", "vp9": "VP9", "av1": "AV1"}, "gif": {"gif": "GIF"}, "webp": {"webp": "WebP"},
                 "apng": {"apng": "APNG"}}


@functools.cache
def encoder_codec(encoder: str) -> str | None:
    """The codec id the bundled ffmpeg's ``encoder`` writes (``libx265``: ``hevc``), from ``ffmpeg -encoders``; None
    where ffmpeg does not list it or did not answer."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, timeout=30, check=False)
    except (subprocess.TimeoutExpired, OSError):  # pragma: no cover - ffmpeg hung: the encoder will say more
        return None
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        fields = line.split(None, 2)
        if len(fields) == 3 and fields[1] == encoder:
            ids = re.findall(r"\(codec (\S+)\)", fields[2])
            return ids[-1] if ids else encoder
    return None


def check_pix_fmt(opts: EncodeOptions, muxer: str) -> None:
    """Refuse a ``--codec`` ffmpeg has no encoder for or the container does not hold, and a ``--pix-fmt`` the encoder
    does not take (ffmpeg would pick another one without a word: libx264 turns rgb24 into yuv444p): usage errors,
    before any frame is decoded."""
    codec, pix_fmt = opts.codec_for(muxer), opts.out_pix_fmt
    formats = encoder_pix_fmts(codec)
    held = _MUXER_CODECS.get(muxer) if opts.codec is not None else None  # (none set: the container's own default)
    if held is not None and (written := encoder_codec(codec)) is not None and written not in held:
        *others, last = held.values()
        names = f"{', '.join(others)} or {last}" if others else last
        raise ConfigError(f"--codec {codec}: a .{muxer} holds {names} video only; write {codec} into .mkv or .mp4, or "
                          "leave --codec out")
    if formats is None or pix_fmt in formats:
        return
    hint = " (--codec libx264rgb encodes RGB)" if pix_fmt.startswith(("rgb", "bgr", "gbr")) else ""
    raise ConfigError(f"{codec} cannot encode {pix_fmt}; it takes {', '.join(formats)}{hint}")


def _trial_mux(src: Path, muxer: str, args: list[str]) -> str | None:
    """Mux one second of ``src``'s non-video streams with ``args``; ``None`` if it works, else ffmpeg's error."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-t", "1", "-i", str(src), *args,
           "-f", muxer, "-y", os.devnull]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    if proc.returncode == 0:
        return None
    lines = [ln for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[0] if lines else f"ffmpeg exited with {proc.returncode}"


#: The most pixels a frame has at the largest level of H.264 (6.2: 139,264 macroblocks), HEVC (6.2), VP9 (6.2) and AV1
#: (6.3) alike (8192x4352), which hardware decoders and players are built to: a larger frame plays in few of them.
LEVEL_PIXELS = 35_651_584
#: Encoders whose video has such levels, by the name a note gives it.
_LEVELLED = {"libx264": "H.264", "libx264rgb": "H.264", "libopenh264": "H.264", "libx265": "HEVC", "libvpx-vp9": "VP9",
             "libaom-av1": "AV1", "libsvtav1": "AV1", "librav1e": "AV1"}  # fmt: skip


#: The format an encoder writes where the format caps a side: a GIF's sides are 16 bits, a WebP's 14
#: (:data:`classsr_cli.io.image.MAX_SIDE`).
_CAPPED = {"gif": "GIF", "libwebp_anim": "WEBP", "libwebp": "WEBP"}


def check_frame_size(codec: str, width: int, height: int, path: Path) -> None:
    """A :class:`ConfigError` when ``codec`` cannot write ``width`` x ``height`` frames into ``path`` (:data:`_CAPPED`):
    said before the first frame is upscaled, not by the encoder after it."""
    if codec not in _CAPPED:
        return
    from classsr_cli.io.image import MAX_SIDE

    if max(width, height) > (top := MAX_SIDE[_CAPPED[codec]]):
        name = {"WEBP": "WebP"}.get(_CAPPED[codec], _CAPPED[codec])
        raise ConfigError(f"{path}: {width}x{height} frames are more than {name} holds ({top} pixels a side); a smaller "
                          "-x or --width, or an .apng output, holds them")


def level_note(codec: str, width: int, height: int) -> list[str]:
    """What a ``codec`` output of ``width`` x ``height`` frames above :data:`LEVEL_PIXELS` is: played by few (said)."""
    if codec not in _LEVELLED or width * height <= LEVEL_PIXELS:
        return []
    return [f"the output's {width}x{height} frames ({width * height / 1e6:.1f} MP) are above {_LEVELLED[codec]}'s "
            f"largest level ({LEVEL_PIXELS / 1e6:.1f} MP, 8192x4352): hardware decoders and most players will not play "
            "them; a smaller -x or --width, ProRes in a .mov (--codec prores_ks) or picture frames hold them"]


#: What a Dolby Vision stream's base layer is, by its compatibility id, as players without Dolby Vision show it.
_DOVI_BASE = {1: "HDR10", 2: "SDR", 4: "HLG", 6: "HDR10"}


def _dolby_vision_note(info: VideoInfo) -> list[str]:
    """What becomes of a Dolby Vision source (:attr:`VideoInfo.dolby_vision`): its base layer is upscaled, its
    metadata left out; a base layer in Dolby's own colours (profile 5) comes out with wrong colours."""
    if info.dolby_vision is None:
        return []
    profile, compatible = info.dolby_vision
    base = _DOVI_BASE.get(compatible) or ("HDR10" if profile == 7 else None)
    if base is None:
        return [f"the source is Dolby Vision profile {profile}, whose frames are in Dolby's own colours (IPTPQc2), which "
                "ffmpeg decodes as they are: the output's colours will be wrong (green and purple); convert it to HDR10 "
                "first with a Dolby Vision-aware tool (dovi_tool, or ffmpeg's libplacebo)"]
    return [f"the source's Dolby Vision metadata (profile {profile}) is not kept: the output is its {base} base layer, "
            "as players without Dolby Vision show it"]


def _projection_boxes(info: VideoInfo | None, muxer: str) -> bytes:
    """The ``sv3d``/``st3d`` boxes a ``muxer`` output of ``info`` gets: an MP4 or MOV source's own, else made from
    what ffmpeg lists (:func:`classsr_cli.io.spherical.made`: a whole equirectangular sphere); a Matroska or WebM
    output gets them as its projection elements (:func:`_matroska_projection`); none into another container."""
    if info is None or not (info.projection or info.stereo) or muxer not in _PROJECTION_MUXERS:
        return b""
    from classsr_cli.io import spherical

    own = spherical.read(info.path) if "mov" in info.format.split(",") else b""
    return own or spherical.made(info.projection, info.stereo)


#: How much of a file :func:`_carries_captions` looks through: an MP4's first frames (ffmpeg's listing names captions
#: only where its probe decoded a frame that had them: a transport stream's, seldom an MP4's).
_CAPTION_SCAN = 8 << 20
#: What starts the closed captions (ATSC A/53 ``cc_data``) in an H.264/HEVC SEI or an MPEG-2 picture's user data.
_A53 = b"GA94\x03"
#: What ffmpeg's caption decoder puts around every cue: a monospace font and ASS's top-left placing (\\an7), which
#: SRT players follow and MP4's and WebM's subtitles drop: left out, so the captions show alike in each.
_CAPTION_MARKUP = re.compile(r'</?font(?: face="Monospace")?>|\{\\an\d\}')
#: The subtitle codec closed captions are kept in, by container (as text: ffmpeg's ``ccaption`` decoder, CEA-608).
CAPTION_CODECS = {"mp4": "mov_text", "mov": "mov_text", "matroska": "srt", "webm": "webvtt"}


def _carries_captions(path: Path, codec: str) -> bool:
    """Whether the first :data:`_CAPTION_SCAN` bytes of the H.264, HEVC or MPEG-2 video ``path`` hold closed
    captions (:data:`_A53`), which ffmpeg's listing does not say for most MP4s."""
    if codec not in ("h264", "hevc", "mpeg2video"):
        return False
    try:
        with open(path, "rb") as f:
            return _A53 in f.read(_CAPTION_SCAN)
    except OSError:
        return False


def _filter_value(text: str) -> str:
    """``text`` as a filter's option value inside an ffmpeg filter graph: escaped for the option (``\\ ' : =``),
    then for the graph (``\\ ' [ ] , ;``)."""
    return re.sub(r"([\\'\[\],;])", r"\\\1", re.sub(r"([\\':=])", r"\\\1", text))


def _captions_text(info: VideoInfo) -> str:
    """``info``'s closed captions (CEA-608, field 1) as SRT, timed from its start, cut to the part upscaled
    (:func:`~classsr_cli.io.subtitles.cut`); ffmpeg's ``movie`` source decodes the video for them. Empty where it
    finds none (or cannot read them)."""
    folder, name = info.path.resolve().parent, info.path.name
    graph = f"movie={_filter_value(name)}[out0+subcc]"
    try:  # (run in the source's folder: its name alone goes into the filter graph, escaped)
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i", graph,
                               "-map", "0:s", "-c:s", "srt", "-f", "srt", "-"], cwd=folder, capture_output=True,
                              timeout=None, check=False)  # fmt: skip
    except OSError:
        return ""
    text = proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else ""
    text = _CAPTION_MARKUP.sub("", text)  # (the decoder's monospace font and top-left placing: a TV's grid)
    if text.strip() and (info.seek or info.span):
        text = cut(text, "srt", info.seek, info.seek + info.span if info.span else None)
    return text


def _keep_captions(info: VideoInfo | None, path: Path, muxer: str) -> bool:
    """Add ``info``'s closed captions (:func:`_captions_text`) to the finished ``path`` as a subtitle stream of
    :data:`CAPTION_CODECS` (``"Closed captions"``, not shown by default), every stream copied as it is but the data
    streams, which an MP4's or MOV's muxer makes again from what it is given (the chapters' text track from the
    chapters, the timecode track from the video's timecode: copied, they came out twice), telemetry apart
    (:data:`TELEMETRY_TAGS`, copied); ``False`` where there are none to add, or the copy fails (``path`` is then
    left as it was)."""
    codec = CAPTION_CODECS.get(muxer)
    if info is None or not info.captions or codec is None or not (text := _captions_text(info)).strip():
        return False
    with _scratch(path, "captions.srt", "captions") as (srt, out):
        srt.write_text(text, encoding="utf-8")
        listing = _run_probe(path)
        n = len(re.findall(r"^\s*Stream #0:\d+.*?: Subtitle:", listing, re.MULTILINE))
        telemetry = re.findall(rf"^\s*Stream #0:(\d+).*?: Data: \w+ \(({'|'.join(TELEMETRY_TAGS)}) /", listing, re.MULTILINE)
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error", "-i", str(path),
               "-f", "srt", "-i", str(srt), "-map", "0", "-map", "-0:d", *[a for i, _ in telemetry for a in ("-map", f"0:{i}")],
               "-map", "1:0", "-c", "copy", f"-c:s:{n}", codec,
               f"-metadata:s:s:{n}", f"{'handler_name' if muxer in ('mp4', 'mov') else 'title'}=Closed captions",
               f"-disposition:s:{n}", "0",
               *(["-movflags", "+use_metadata_tags"] if muxer in ("mp4", "mov") else []), "-f", muxer, "-y", str(out)]  # fmt: skip
        return _rewritten(path, cmd, out)


@contextlib.contextmanager
def _scratch(path: Path, *names: str) -> Iterator[list[Path]]:
    """Hidden files beside ``path`` (``.{name}.{each of names}``), removed when the block ends."""
    made = [path.with_name(f".{path.name}.{name}") for name in names]
    try:
        yield made
    finally:
        for p in made:
            with contextlib.suppress(OSError):
                p.unlink()


def _rewritten(path: Path, cmd: list[str], out: Path) -> bool:
    """Run ffmpeg ``cmd``, which writes ``out`` from ``path``, and put ``out`` in its place; ``False`` where ffmpeg
    fails (``path`` left as it was)."""
    if run_watched(cmd).returncode != 0:
        return False
    os.replace(out, path)
    return True


def _keep_projection(info: VideoInfo | None, path: Path, muxer: str) -> bool:
    """Put ``info``'s projection boxes (:func:`_projection_boxes`) into the finished ``path``, where it gets some;
    ``False`` where it gets some and they could not be written."""
    if not (boxes := _projection_boxes(info, muxer)):
        return True
    from classsr_cli.io import spherical

    assert info is not None
    if muxer in ("mp4", "mov"):
        return spherical.copy(info.path, path, boxes)
    return _matroska_projection(path, boxes, muxer)


def finish(info: VideoInfo | None, path: Path, muxer: str) -> list[str]:
    """Give the finished ``path`` what :func:`plan_streams` said it keeps and only a finished file can take: the
    closed captions (:func:`_keep_captions`) and the 360° or 3D projection (:func:`_keep_projection`). Notes on what
    it could not take after all (the plan's notes had said it kept them)."""
    notes = []
    if info is not None and info.captions and muxer in CAPTION_CODECS and not _keep_captions(info, path, muxer):
        notes.append("the closed captions were not kept after all: ffmpeg's decoder read no CEA-608 text from them "
                     "(CEA-708 alone, captions outside the part upscaled, or the copy failed)")
    if not _keep_projection(info, path, muxer):
        notes.append("the 360° or 3D projection was not written after all" + (
            " (a WebM with transparency: its VP9 alpha cannot pass through the MP4 the projection is made in)"
            if muxer == "webm" and _vp9_alpha(path) else "") + ", so players show this output flat")
    return notes


#: The containers a 360° or 3D video's projection is written into: MP4/MOV's boxes, Matroska/WebM's elements.
_PROJECTION_MUXERS = ("mp4", "mov", "matroska", "webm")


def _vp9_alpha(path: Path) -> bool:
    """Whether the Matroska or WebM ``path``'s video has transparency (VP9 alpha: its ``alpha_mode`` tag)."""
    return any(_ALPHA_MODE.match(line) for line in _run_probe(path).splitlines())


def _matroska_projection(path: Path, boxes: bytes, muxer: str) -> bool:
    """Give the finished Matroska or WebM ``path`` the projection ``boxes`` say (its video track's ``Projection`` and
    ``StereoMode``), as ffmpeg writes them only for a stream it copies from a file that has them: its video is
    copied into a hidden MP4 (MOV for a codec MP4 does not hold), given the boxes (:func:`classsr_cli.io.spherical.copy`),
    and copied back with every other stream, chapter and tag of ``path``. ``False`` where that fails (``path`` left as
    it was) or the video has transparency (a WebM's VP9 alpha, which an MP4 does not hold)."""
    from classsr_cli.io import spherical

    if _vp9_alpha(path):
        return False
    base = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error"]
    with _scratch(path, "projection.mp4", "projection") as (video, out):
        if not any(run_watched([*base, "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", fmt, "-y", str(video)])
                   .returncode == 0 for fmt in ("mp4", "mov")):  # fmt: skip
            return False
        if not spherical.copy(path, video, boxes):
            return False
        cmd = [*base, "-i", str(video), "-i", str(path), "-map", "0:v:0", "-map", "1", "-map", "-1:v:0", "-c", "copy",
               "-map_metadata", "1", "-map_metadata:s:v:0", "1:s:v:0", "-map_chapters", "1", "-f", muxer, "-y", str(out)]  # fmt: skip
        return _rewritten(path, cmd, out)


def plan_streams(info: VideoInfo, muxer: str, opts: EncodeOptions) -> tuple[list[str], list[str]]:
    """ffmpeg arguments that carry the source's audio, subtitles and attachments (input #1) into ``muxer``, and notes.

    Audio is copied when the container takes it, otherwise re-encoded; subtitles are copied or turned into the
    container's text format, otherwise dropped; attachments go into Matroska only; a GoPro's telemetry track into MP4
    and MOV (:func:`kept_telemetry`). Each fallback is named in the notes, and so is every stream left out (other video
    streams, cover pictures outside MP4, timecode and other data tracks).
    """
    notes: list[str] = []
    audio = info.audio if opts.audio else []
    holder = "an image sequence" if muxer == SEQUENCE_MUXER else muxer
    if audio and (muxer in ANIMATION_MUXERS or muxer == SEQUENCE_MUXER):
        notes.append(f"{len(audio)} audio stream(s) dropped: {holder} holds none")
        audio = []
    sub_codec = _SUBTITLE_CODEC.get(muxer)
    subs = info.subtitles if opts.subtitles and sub_codec else []
    if opts.subtitles and info.subtitles and not sub_codec:
        notes.append(f"{len(info.subtitles)} subtitle stream(s) dropped: {holder} holds none")
    audio_args = [a for s in audio for a in ("-map", f"1:{s.index}")] + (["-c:a", "copy"] if audio else [])
    sub_args = [a for s in subs for a in ("-map", f"1:{s.index}")] + (["-c:s", sub_codec] if subs and sub_codec else [])
    remap = lambda args: [a.replace("1:", "0:", 1) if a.startswith("1:") else a for a in args]  # noqa: E731
    # ffmpeg writes PCM into MP4 as ISO "ipcm", which few players read: re-encoded like a codec MP4 cannot hold.
    pcm_in_mp4 = muxer == "mp4" and any(s.codec.startswith("pcm_") for s in audio)
    # A copy cannot start inside a packet: a part (--start, --duration) re-encodes its audio to cut it exactly.
    cut = bool(info.seek or info.span)
    if audio and (cut or pcm_in_mp4 or _trial_mux(info.path, muxer, remap(audio_args)) is not None):
        fallback = _AUDIO_FALLBACK.get(muxer, "aac")
        audio_args = [*audio_args[:-2], "-c:a", fallback]
        why = _trial_mux(info.path, muxer, remap(audio_args))
        codecs = ", ".join(sorted({s.codec for s in audio}))
        if why is None:
            notes.append(f"audio re-encoded to {fallback}: " + ("cut where the part starts and ends" if cut else
                                                                 f"{muxer} cannot hold {codecs} as it is"))  # fmt: skip
        else:
            notes.append(f"audio dropped: {muxer} takes neither {codecs} nor {fallback} ({why})")
            audio_args = []
    if subs and _trial_mux(info.path, muxer, remap(sub_args)) is not None:
        # Text a container cannot take as it is (mov_text into Matroska) becomes its plain text format.
        text_args = [*sub_args[:-2], "-c:s", _SUBTITLE_TEXT.get(muxer, "")]
        if muxer in _SUBTITLE_TEXT and _trial_mux(info.path, muxer, remap(text_args)) is None:
            notes.append(f"subtitles converted to {_SUBTITLE_TEXT[muxer]}: {muxer} cannot hold {subs[0].codec}")
            sub_args = text_args
        else:
            notes.append(f"{len(subs)} subtitle stream(s) dropped: {muxer} cannot hold {subs[0].codec}")
            sub_args = []
    # A camera's telemetry (GoPro's GPS, gyro and accelerometer track), which overlay tools read: copied into MP4/MOV.
    data_args = [a for s in kept_telemetry(info, muxer) for a in ("-map", f"1:{s.index}")]
    data_args += ["-c:d", "copy"] if data_args else []
    # Attachments (fonts for ASS subtitles, mostly) are copied into Matroska, the only container that holds them.
    attachments = [s for s in info.streams if s.kind == "attachment"]
    attach_args = [a for s in attachments for a in ("-map", f"1:{s.index}")] if muxer == "matroska" else []
    # The start timecode, which editors line footage up by: written again (the frames and their rate are the source's).
    tc_args = ["-timecode", info.timecode] if info.timecode and muxer in _TIMECODE_MUXERS else []
    if info.seek and not info.timecode:  # a part whose timecode could not be moved: not the source's, unmoved
        tc_args = ["-metadata", "timecode="]
    cover_args = [a for k, s in enumerate(kept_covers(info, muxer), 1)
                  for a in ("-map", f"1:{s.index}", f"-c:v:{k}", "copy", f"-disposition:v:{k}", "attached_pic")]  # fmt: skip
    video = [s for s in info.streams if s.index == info.video_index]
    lost = [s for kept, streams in ((True, video), (audio_args, audio), (sub_args, subs))
            for s in (streams if kept else []) if muxer == "mov" and s.language
            and written_language(s.language, muxer) not in MOV_KEPT]  # fmt: skip
    if lost:
        named = [f"{s.kind} #{s.index} ({s.language})" for s in lost]
        which = ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]
        one = len(named) == 1
        notes.append(f"the language{'' if one else 's'} of {which} {'is' if one else 'are'} not kept: ffmpeg's MOV "
                     f"muxer knows no QuickTime code for {'it' if one else 'them'}, so {'it is' if one else 'they are'} "
                     f"written as none; an .mp4 or .mkv output keeps {'it' if one else 'them'}")
    # A copied stream's metadata is copied, but for the language code MOV lists and the name MP4/MOV players show.
    meta_args: list[str] = []
    for kind, kept, streams in (("a", audio_args, audio), ("s", sub_args, subs)):
        for k, s in enumerate(streams if kept else []):
            lang = written_language(s.language, muxer)
            changed = [("language", lang)] if lang != s.language else []
            changed += [(key, value) for key, value in _names(s, muxer)
                        if key == "handler_name" and value != s.handler]  # from a title, or cut (MOV)  # fmt: skip
            meta_args += [a for key, value in changed for a in (f"-metadata:s:{kind}:{k}", f"{key}={value}")]
    return (audio_args + sub_args + data_args + attach_args + cover_args + tc_args + meta_args,
            notes + _left_out(info, muxer))


#: The data tracks copied, by their codec tag: GoPro's telemetry (GPMF: GPS, gyro, accelerometer), which MP4 and MOV
#: hold (:func:`kept_telemetry`).
TELEMETRY_TAGS = ("gpmd",)


def kept_telemetry(info: VideoInfo, muxer: str) -> list[StreamInfo]:
    """The source's telemetry tracks (:data:`TELEMETRY_TAGS`) an ``muxer`` output keeps: MP4's and MOV's, from the
    source's start (a part from ``--start`` on would have its packets, a second of readings each, cut where one
    begins: ffmpeg moved them half a second early in a test, so none)."""
    if muxer not in ("mp4", "mov") or info.seek:
        return []
    return [s for s in info.streams if s.kind == "data" and s.tag in TELEMETRY_TAGS]


def kept_covers(info: VideoInfo, muxer: str) -> list[StreamInfo]:
    """The cover pictures (attached JPEG or PNG pictures) copied into the output: MP4 holds them as such; ffmpeg
    writes them into Matroska as a one-frame video track and leaves them out of MOV, so those get a note."""
    return [s for s in info.streams if s.attached_pic and s.codec in ("mjpeg", "png")] if muxer == "mp4" else []


#: A start timecode in ffmpeg's listing of a file (a tmcd track's or a stream's ``timecode``, Matroska's ``TIMECODE``).
_TIMECODE = re.compile(r"^\s*timecode\s*:\s*(\d{2}:\d{2}:\d{2}[:;.]\d{1,3})\s*$", re.MULTILINE | re.IGNORECASE)
#: Containers ffmpeg writes a start timecode into (``-timecode``: a tmcd track in MP4/MOV, a tag in Matroska).
_TIMECODE_MUXERS = ("mp4", "mov", "matroska")
_CHAPTER_MUXERS = ("mp4", "mov", "matroska", "webm")


def _left_out(info: VideoInfo, muxer: str) -> list[str]:
    """Notes for the streams that are neither upscaled nor carried: other video, cover pictures, data, attachments."""
    notes = []
    holder = "an image sequence" if muxer == SEQUENCE_MUXER else f".{muxer}"
    others = [s for s in info.streams if s.kind == "video" and not s.attached_pic and s.index != info.video_index]
    if others:
        which = ", ".join(f"#{s.index} ({s.codec})" for s in others)
        chosen = "the default one" if any(s.default for s in info.streams if s.index == info.video_index) else "the first"
        notes.append(f"video stream(s) {which} left out: only #{info.video_index}, {chosen}, is upscaled")
    kept = kept_covers(info, muxer)
    covers = [s for s in info.streams if s.attached_pic and s not in kept]
    if covers:
        where = "" if muxer == "mp4" else ": only .mp4 and .m4v hold one"
        notes.append(f"the cover picture ({', '.join(s.codec for s in covers)}) is not kept{where}")
    data = [s for s in info.streams if s.kind == "data"]
    if info.timecode and muxer not in _TIMECODE_MUXERS:
        notes.append(f"the start timecode ({info.timecode}) is not kept: {holder} holds none (.mp4, .mov, .mkv do)")
    elif any(s.tag == "tmcd" for s in data) and not info.timecode and not info.seek:  # a part says so itself
        notes.append("the timecode track (tmcd) is not kept")
    # A QuickTime chapter track (.mp4, .mov) holds the chapters, which are kept as chapters where the container can.
    telemetry = kept_telemetry(info, muxer)
    if rest := [s for s in data if s.tag != "tmcd" and not (s.tag == "text" and info.chapters) and s not in telemetry]:
        where = ((" (a GoPro's telemetry: a part from --start keeps none, its packets cannot be cut)" if info.seek else
                  " (a GoPro's telemetry: .mp4 and .mov keep it)") if any(s.tag in TELEMETRY_TAGS for s in rest) else "")
        notes.append(f"{len(rest)} data stream(s) ({', '.join(s.tag or s.codec for s in rest)}) not kept{where}")
    if info.chapters and muxer not in _CHAPTER_MUXERS:
        notes.append(f"{info.chapters} chapter(s) not kept: {holder} holds none (.mp4, .mov, .mkv, .webm do)")
    notes += _dolby_vision_note(info)
    if info.captions and muxer in CAPTION_CODECS:
        notes.append("the closed captions in the video stream (EIA-608/708) ride in its frames, which are encoded "
                     "anew: they are kept as a subtitle stream, \"Closed captions\" (CEA-608's first channel, as text)")
    elif info.captions:
        notes.append(f"the closed captions in the video stream (EIA-608/708) are not kept: {holder} holds no subtitles "
                     "(.mp4, .mov, .mkv and .webm outputs keep them as a subtitle stream)")
    if (info.projection or info.stereo) and not _projection_boxes(info, muxer):
        what = " and ".join(w for w in (f"360° ({info.projection})" if info.projection else None,
                                         f"stereoscopic ({info.stereo})" if info.stereo else None) if w)  # fmt: skip
        only = ("carried from MP4 and MOV sources, or made for a whole equirectangular sphere,"
                if muxer in _PROJECTION_MUXERS else "written into .mp4, .mov, .mkv and .webm outputs")  # fmt: skip
        notes.append(f"the source is {what} video: its projection is {only} only, so players show this output flat")
    attachments = [s for s in info.streams if s.kind == "attachment"]
    if attachments and muxer != "matroska":
        notes.append(f"{len(attachments)} attachment(s) (fonts, ...) dropped: only .mkv holds them")
    return notes


def _ebml_id(eid: int) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big")


def _ebml_size(n: int) -> bytes:
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return ((1 << (7 * length)) | n).to_bytes(length, "big")
    raise ValueError("EBML element too large")


def _el(eid: int, payload: bytes) -> bytes:
    return _ebml_id(eid) + _ebml_size(len(payload)) + payload


def _uint(eid: int, value: int) -> bytes:
    return _el(eid, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


#: Matroska's ColourSpace FourCC of raw frames by bits per channel and channels (ffmpeg's rgb24, rgb48le, rgba and
#: rgba64le).
_RAW_FOURCC = {(8, 3): b"RGB\x18", (16, 3): b"RGB0", (8, 4): b"RGBA", (16, 4): b"RBA@"}


def _matroska_header(width: int, height: int, tick_ns: int, bits: int = 8, channels: int = 3,
                     frame_ns: int | None = None) -> bytes:
    """EBML header, a Segment of unknown size, Info and one rawvideo track of rgb24 (``bits`` 8) or rgb48le (16),
    rgba or rgba64le with ``channels`` 4; ``frame_ns``, where known, its frames' usual duration (DefaultDuration),
    from which ffmpeg tells the encoder the frame rate (SVT-AV1 refuses to start without one it can take, and
    ffmpeg cannot guess it from a frame or two)."""
    ebml = _el(0x1A45DFA3, _uint(0x4286, 1) + _uint(0x42F7, 1) + _uint(0x42F2, 4) + _uint(0x42F3, 8)
               + _el(0x4282, b"matroska") + _uint(0x4287, 4) + _uint(0x4285, 2))  # fmt: skip
    info = _el(0x1549A966, _uint(0x2AD7B1, tick_ns) + _el(0x4D80, b"classsr") + _el(0x5741, b"classsr"))
    video = _el(0xE0, _uint(0xB0, width) + _uint(0xBA, height) + _el(0x2EB524, _RAW_FOURCC[bits, channels]))
    default = _uint(0x23E383, frame_ns) if frame_ns else b""
    track = _el(0xAE, _uint(0xD7, 1) + _uint(0x73C5, 1) + _uint(0x83, 1) + _el(0x86, b"V_UNCOMPRESSED")
                + _uint(0x9C, 0) + default + video)  # fmt: skip
    segment_unknown = _ebml_id(0x18538067) + b"\x01\xff\xff\xff\xff\xff\xff\xff"
    return ebml + segment_unknown + info + _el(0x1654AE6B, track)


def _cluster_head(timestamp: int, duration: int | None, frame_bytes: int) -> tuple[bytes, bytes]:
    """Cluster and BlockGroup headers of one frame, and its BlockDuration; the frame's bytes go between."""
    block_head = b"\x81" + struct.pack(">hB", 0, 0)
    dur = _uint(0x9B, duration) if duration else b""
    block = _ebml_id(0xA1) + _ebml_size(len(block_head) + frame_bytes) + block_head
    group_size = len(block) + frame_bytes + len(dur)
    group = _ebml_id(0xA0) + _ebml_size(group_size)
    cluster_ts = _uint(0xE7, timestamp)
    cluster_size = len(cluster_ts) + len(group) + group_size
    return _ebml_id(0x1F43B675) + _ebml_size(cluster_size) + cluster_ts + group + block, dur


#: The most bytes of a frame the writer's pipe carries: ffmpeg's Matroska reader takes an element of at most 256 MiB
#: (a frame's block: the frame and a 4-byte head) and drops a larger one with an error, its exit status 0, leaving a
#: file without the video (seen on 15360x8640 frames, an 8K source x2).
PIPE_FRAME_BYTES = 0x10000000 - 4


def pipe_limit_message(width: int, height: int, bits: int, channels: int) -> str:
    """Why ``width`` x ``height`` frames of ``bits`` per channel (``channels``: 3, or 4 with alpha) cannot be written,
    and what can (:data:`PIPE_FRAME_BYTES`)."""
    most = PIPE_FRAME_BYTES // (channels * bits // 8)
    fits8 = bits == 16 and width * height * channels <= PIPE_FRAME_BYTES
    return (f"{width}x{height} frames ({width * height / 1e6:.1f} MP) are more than ffmpeg takes a frame from classsr "
            f"({most / 1e6:.1f} MP at {bits} bits a channel{' with alpha' if channels == 4 else ''}): a smaller -x or "
            f"--width{', or an 8-bit output (--pix-fmt yuv420p)' if fits8 else ''}")


class VideoWriter:
    """Encode RGB frames to ``path`` with their timestamps, copying the source's other streams.

    ffmpeg starts on the first :meth:`write`. Timestamps are in ``time_base`` ticks, as :class:`VideoReader` gives
    them (relative to the source's start, so audio stays in sync). ``sar`` is the frames' pixel aspect ratio
    (``None``: square); ``color`` the colour properties to tag, as :attr:`VideoInfo.color` (default: the source's).
    ``container`` writes another container than ``muxer`` (a :data:`CHUNK_FORMAT` chunk of a resumable run, encoded
    as for ``muxer``: :func:`join_chunks` copies the chunks into it); ``hdr10`` the HDR10 metadata to write (default:
    the source's); ``target`` the file ``path`` becomes (``path`` a hidden file it is written under), which the
    errors name; ``fps`` the frame rate the encoder is told (default: the source's); ``first_number`` an image
    sequence's first file's number (:data:`SEQUENCE_MUXER`: ``path`` a printf pattern).
    Frames are uint8, or uint16 with ``bits`` 16 (ffmpeg then converts from 16 bits per
    channel, so a 10-bit ``pix_fmt`` keeps what an 8-bit pipe would round away); RGB, or RGBA with ``alpha``. :meth:`close` finishes the file and raises :class:`VideoError` if the encoder failed;
    :meth:`abort` stops it and leaves whatever it wrote to the caller. After :meth:`close`, ``finished_notes`` says
    what the finished file could not take after all (:func:`finish`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        *,
        time_base: Fraction,
        options: EncodeOptions | None = None,
        muxer: str | None = None,
        source: VideoInfo | None = None,
        stream_args: list[str] | None = None,
        rotation: float = 0.0,
        sar: Fraction | None = None,
        bits: int = 8,
        color: str | None = None,
        container: str | None = None,
        hdr10: HDR10 | None = None,
        target: str | os.PathLike[str] | None = None,
        alpha: bool = False,
        fps: float | None = None,
        first_number: int = 1,
    ) -> None:
        if bits not in (8, 16):
            raise ValueError(f"frames are written at 8 or 16 bits per channel, got {bits}")
        self.channels = 4 if alpha else 3
        self.finished_notes: list[str] = []
        self.path = Path(path)
        self.target = Path(target) if target is not None else self.path
        if width * height * self.channels * bits // 8 > PIPE_FRAME_BYTES:  # before a frame is upscaled for nothing
            raise ConfigError(f"{self.target}: {pipe_limit_message(width, height, bits, self.channels)}")
        self.container = container
        self.width, self.height = width, height
        self.time_base = time_base
        self.muxer = muxer or container_of(self.path)
        self.options = (options or EncodeOptions()).for_source(self.muxer, source.pix_fmt if source else None,
                                                               alpha=alpha)
        self.bits = bits
        self.color = color if color is not None or source is None else source.color  # as ffmpeg prints it
        self._dtype = np.dtype(np.uint8 if bits == 8 else np.uint16)
        # 16-bit alpha goes into a shallower output as swscale takes it: the output's levels shifted up (a level
        # stretched to 0-65535, as the reader gives it, came out one high above half: 700 of 1023 as 701)
        self._alpha_bits = min(16, bit_depth(self.options.out_pix_fmt)) if alpha and bits == 16 else 16
        self.source = source
        self.hdr10 = hdr10 if hdr10 is not None or source is None else source.hdr10
        self.stream_args = stream_args or []
        self.rotation = rotation
        self.sar = sar
        self.fps = fps if fps is not None else source.fps if source is not None else None
        self.first_number = first_number  # an image sequence's first file's number
        ns = Fraction(10**9) * time_base
        self._tick = Fraction(1)  # pipe ticks per source tick
        if ns.denominator == 1 and ns < 2**32:
            self._tick_ns = int(ns)
        else:  # not a whole number of ns per tick, or 2**32 or more (a JPEG XL animation's 6 s ticks: ffmpeg's
            # Matroska reader refuses such a TimestampScale, "Invalid data"): microseconds, the encoder's time base
            # restores the ticks
            self._tick_ns = 1000
            self._tick = time_base * 10**6
        self._proc: subprocess.Popen[bytes] | None = None
        self._pump: _StderrPump | None = None
        self._watchdog: _Watchdog | None = None
        self._first: int | None = None
        self._held: tuple[bytes, int, int | None] | None = None
        self._open: tuple[int, bytes] | None = None  # bytes still due for the frame begun, its closing element
        self._subtitles: list[Path] = []  # a part's subtitles, cut beside the output (_cut_subtitles)
        self._end: int | None = None  # where the last frame sent ends (its pts and duration), None: not said
        self.frames_written = 0
        #: Frames let go for a time no later than the frame's before them (a damaged file's; a player shows one).
        self.repeated = 0
        self._last: int | None = None  # the last streamed frame's pts (begin_frame)
        self._dropping = 0  # bytes of a let-go streamed frame's rows still to come

    def _start(self, first_pts: int) -> None:
        opts = self.options
        if even_size(opts.out_pix_fmt, self.height, self.width) != (self.height, self.width):
            raise VideoError(f"{self.width}x{self.height} output is odd-sized; {opts.out_pix_fmt} needs {evens(opts.out_pix_fmt)}"
                             + full_size_hint(opts.out_pix_fmt, opts.codec_for(self.muxer)))
        self._first = first_pts
        # A part's frames start at 0, as its audio and subtitles do, read from the cut (_mux_args).
        chunk = self.container not in (None, self.muxer)  # its frames from 0: join_chunks places it
        first = 0.0 if chunk else float(first_pts * self.time_base)
        before, after, end = _mux_args(self.source, self.rotation, first, self.container or self.muxer,
                                       self.options.strip_metadata)
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error", *before,
               "-f", "matroska", "-i", "pipe:0", *after]  # fmt: skip
        cmd += _video_args(opts, self.muxer, self.time_base, self.color, self.sar, self.hdr10, tag=not chunk,
                           deep=self.bits == 16, alpha=self.channels == 4)
        if self.muxer in ANIMATION_MUXERS:
            cmd += _loop_args(self.muxer, self.source.plays if self.source else 0)
        args = list(self.stream_args)
        self._subtitles = _cut_subtitles(cmd, self.source, args, self.path, self.target) if self.source else []
        if self.muxer == SEQUENCE_MUXER:
            args += ["-start_number", str(self.first_number)]
        cmd += [*args, *end, "-f", self.container or self.muxer, "-y", str(self.path)]
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as e:
            raise VideoError(f"could not start ffmpeg: {e}") from None
        self._pump = _StderrPump(self._proc.stderr)
        self._pump.start()
        self._watchdog = _Watchdog(self._proc, STALL_SECONDS)
        self._watchdog.start()
        frame_ns = round(1e9 / self.fps) if self.fps else None
        self._send(_matroska_header(self.width, self.height, self._tick_ns, self.bits, self.channels, frame_ns))

    def _send(self, data: bytes | memoryview) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            with self._waiting():
                self._proc.stdin.write(data)
        except (BrokenPipeError, OSError):
            raise self._failure() from None

    def _failure(self) -> VideoError:
        assert self._proc is not None
        try:
            rc = self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            rc = self._proc.wait()
        self._stop_watchdog()
        if self._pump:
            self._pump.join(timeout=10)
        msg = self._pump.message() if self._pump else ""
        return self._encoder_error(rc, msg)

    def _waiting(self) -> contextlib.AbstractContextManager[None]:
        assert self._watchdog is not None  # started with ffmpeg (_start)
        return self._watchdog.waiting()

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()

    def _encoder_error(self, rc: int, msg: str) -> VideoError:
        if self._watchdog is not None and self._watchdog.fired:
            return VideoError(f"the encoder hung: ffmpeg ({self.options.codec_for(self.muxer)}) used no CPU time for "
                              f"{self._watchdog.seconds:g} s while classsr waited on it, and was stopped; run it again, "
                              "or try another --codec")
        hint = ""
        codec = self.options.codec_for(self.muxer)
        if codec in ("libx264", "libx264rgb") and max(self.width, self.height) > 16384:
            hint = "; H.264 tops out near 16384 px wide: try --codec libx265 or a .webm output"
        elif codec in _FRAME_RATE_CODECS and "does not support" in msg and "fps" in msg:
            hint = (" (MPEG-1/2 takes 23.976, 24, 25, 29.97, 30, 50, 59.94 or 60 frames/s; -e strict=unofficial "
                    "writes another rate few players take, or choose another --codec)")
        elif codec == "dvvideo" and "Found no DV profile" in msg:  # its list of profiles follows
            msg = msg.split(" Valid DV profiles")[0]
            hint = (" (DV takes 720x480 at 29.97 or 720x576 at 25 frames/s, or DVCPRO HD's 960x720, 1280x1080 and "
                    "1440x1080: --width and --height, --fps)")
        elif codec == "dnxhd" and "incompatible with DNxHD" in msg:  # its list of profiles follows
            msg = msg.split(". Valid DNxHD profiles")[0]
            hint = " (DNxHD takes a few broadcast sizes; -e profile=dnxhr_hq, or dnxhr_sq/hqx/444, takes any size)"
        if not hint:  # an --encoder-opt the codec takes otherwise, or not at all: said as the user gave it
            refused = [f"{k}={v}" for k, v in self.options.extra if f"'{v}'" in msg or f"'{k.lstrip('-')}'" in msg]
            if refused:
                hint = f" (--encoder-opt {refused[0]}: {codec} takes it otherwise, or not at all)"
        msg = msg.replace(str(self.path), str(self.target))  # ffmpeg names the file it writes: the output
        return VideoError(f"encoder failed (ffmpeg exit {rc}): {msg}{hint}")

    def _bytes(self, rgb: np.ndarray) -> bytes:
        if self._alpha_bits < 16:
            top, shift = (1 << self._alpha_bits) - 1, 16 - self._alpha_bits
            rgb = rgb.copy()
            rgb[..., 3] = ((rgb[..., 3].astype(np.uint32) * top + 32767) // 65535) << shift
        return np.ascontiguousarray(rgb, dtype=self._dtype.newbyteorder("<")).tobytes()

    def write(self, rgb: np.ndarray, pts: int, duration: int | None = None) -> None:
        """Queue one ``(height, width, channels)`` frame (uint8, or uint16 with ``bits`` 16) at ``pts`` (source
        ticks)."""
        if rgb.shape != (self.height, self.width, self.channels) or rgb.dtype != self._dtype:
            raise ValueError(f"expected a ({self.height}, {self.width}, {self.channels}) {self._dtype} frame, got "
                             f"{rgb.shape} {rgb.dtype}")
        if self._proc is None:
            self._start(pts)
        data = self._bytes(rgb)
        if self._held is not None:
            prev_data, prev_pts, _ = self._held
            if pts <= prev_pts:  # a damaged file's: the encoder would write timestamps out of order
                self.repeated += 1
                return
            self._emit(prev_data, prev_pts, pts - prev_pts)
        self._held = (data, pts, duration)

    def begin_frame(self, pts: int, duration: int | None) -> None:
        """Start a ``(height, width, channels)`` frame at ``pts`` lasting ``duration`` ticks (the caller knows
        it: the gap to the next frame); its rows follow with :meth:`write_rows`, top to bottom, so a frame
        never needs to be whole in memory. Not to be mixed with :meth:`write`."""
        if self._held is not None or self._open is not None or self._dropping:
            raise ValueError("the previous frame is not finished")
        if self._proc is None:
            self._start(pts)
        assert self._first is not None
        size = self.width * self.height * self.channels * self._dtype.itemsize
        if self._last is not None and pts <= self._last:  # as write: its rows are let go
            self.repeated += 1
            self._dropping = size
            return
        self._last = pts
        ts = max(0, round((pts - self._first) * self._tick))
        head, dur_el = _cluster_head(ts, round(duration * self._tick) if duration else None, size)
        self._send(head)
        self._open = (size, dur_el or b"")
        self._end = pts + duration if duration else None

    def write_rows(self, rows: np.ndarray) -> None:
        """The next ``(n, width, channels)`` rows (the writer's dtype) of the frame begun with :meth:`begin_frame`."""
        if self._dropping:
            self._dropping -= rows.nbytes
            return
        if self._open is None:
            raise ValueError("begin_frame first")
        due, tail = self._open
        if rows.ndim != 3 or rows.shape[1:] != (self.width, self.channels) or rows.dtype != self._dtype or rows.nbytes > due:
            raise ValueError(f"rows {rows.shape} {rows.dtype} do not fit a {self.width}x{self.height} "
                             f"{self._dtype} frame")
        self._send(self._bytes(rows))
        due -= rows.nbytes
        self._open = (due, tail) if due else None
        if not due:
            if tail:
                self._send(tail)
            self.frames_written += 1

    def _emit(self, data: bytes, pts: int, duration: int | None) -> None:
        assert self._first is not None
        ts = max(0, round((pts - self._first) * self._tick))
        dur = round(duration * self._tick) if duration else None
        head, dur_el = _cluster_head(ts, dur, len(data))
        self._send(head)
        self._send(data)
        if dur_el:
            self._send(dur_el)
        self.frames_written += 1
        self._end = pts + duration if duration else None

    def close(self) -> None:
        """Flush the last frame, finish the file, and check that ffmpeg succeeded."""
        if self._proc is None:
            return
        if self._open is not None:
            raise VideoError(f"{self.target}: the last frame is incomplete")
        if self._held is not None:
            self._emit(*self._held)
            self._held = None
        assert self._proc.stdin is not None
        with self._waiting():
            with contextlib.suppress(BrokenPipeError, OSError):
                self._proc.stdin.close()  # flushes the buffered bytes: it waits on the encoder too
            rc = self._proc.wait()
        self._stop_watchdog()
        if self._pump:
            self._pump.join(timeout=10)
        self._forget_subtitles()
        if rc != 0:
            msg = self._pump.message() if self._pump else ""
            self._proc = None
            raise self._encoder_error(rc, msg)
        self._proc = None
        if self._end is not None and self._first is not None and self.container in (None, self.muxer):
            hold_last_frame(self.path, self.muxer, (self._end - self._first) * self.time_base)
        if self.muxer == "gif" and self.channels == 4 and self.container in (None, self.muxer):
            clear_before_clear(self.path)
        if self.container in (None, self.muxer):
            self.finished_notes = finish(self.source, Path(self.path), self.muxer)
        if self.repeated:
            self.finished_notes.append(f"{self.repeated} frame(s) left out: their time was no later than the frame's "
                                       "before them (a damaged file's timestamps; a player shows one)")

    def _forget_subtitles(self) -> None:
        for p in self._subtitles:
            with contextlib.suppress(OSError):
                p.unlink()
        self._subtitles = []

    def abort(self) -> None:
        """Stop the encoder without finishing the file."""
        self._forget_subtitles()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self._stop_watchdog()
        proc.kill()
        if proc.stdin:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        proc.wait()
        if self._pump:
            self._pump.join(timeout=10)
