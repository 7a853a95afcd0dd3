"""Text subtitles cut to a part of a video (``classsr video --start/--duration``), as text.

ffmpeg cuts copied subtitle packets where they start: a cue already showing at the cut is dropped, and no ffmpeg
option keeps it clipped (an input-side seek keeps cues that ended before the cut too). So text subtitles are read
as ffmpeg writes them out (SRT, WebVTT or ASS, :data:`TEXT_FORMATS`), and :func:`cut` keeps every cue that shows
inside the part, clips it to the part and times it from the part's start. Bitmap subtitles (PGS, DVD, DVB) have no
text to do this with: ``io/video.py`` copies them, the packet showing at the cut moved to it. No ffmpeg and no torch
here.
"""

from __future__ import annotations

import re

#: The text format each text subtitle codec is read and cut in: SRT and WebVTT keep milliseconds, ASS its styles.
TEXT_FORMATS = {"subrip": "srt", "mov_text": "srt", "text": "srt", "webvtt": "webvtt", "ass": "ass", "ssa": "ass"}

_CUE_TIME = re.compile(r"^\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{3})\s+-->\s+((?:\d+:)?\d{1,2}:\d{2}[.,]\d{3})(.*)$")
_ASS_TIME = re.compile(r"^\s*(\d+):(\d{2}):(\d{2})[.:](\d{2})\s*$")


def cut(text: str, fmt: str, start: float, end: float | None) -> str:
    """``text`` (a whole subtitle file in ``fmt``: ``"srt"``, ``"webvtt"`` or ``"ass"``) cut to ``start`` ...
    ``end`` seconds (``end`` ``None``: to the end): the cues that show inside, clipped to it, timed from ``start``.
    A cue showing at ``start`` begins at 0; one still showing at ``end`` ends there; the others are left out."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if fmt == "ass":
        return _cut_ass(text, start, end)
    if fmt in ("srt", "webvtt"):
        return _cut_cues(text, fmt, start, end)
    raise ValueError(f"no text subtitle format {fmt!r}")


def _clip(a: int, b: int, start: int, end: int | None) -> tuple[int, int] | None:
    """A cue at ``a`` ... ``b`` in a part from ``start`` to ``end`` (one unit: ms or cs), or ``None``: outside."""
    if b <= start or (end is not None and a >= end) or b <= a:
        return None
    return max(a, start) - start, (b if end is None else min(b, end)) - start


def _ms(stamp: str) -> int:
    parts = stamp.replace(",", ".").split(":")
    seconds = float(parts[-1]) + 60 * int(parts[-2]) + (3600 * int(parts[0]) if len(parts) == 3 else 0)
    return round(seconds * 1000)


def _stamp(ms: int, sep: str) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cut_cues(text: str, fmt: str, start: float, end: float | None) -> str:
    """SRT or WebVTT: blocks between blank lines; a cue's block has its timing on its first or second line."""
    lo, hi = round(start * 1000), (None if end is None else round(end * 1000))
    sep = "," if fmt == "srt" else "."
    kept: list[str] = []
    header: list[str] = []  # WebVTT: the WEBVTT line, STYLE, REGION and NOTE blocks
    last: int | None = None  # where the previous block's cue went in ``kept`` (None: left out)
    seen_cue = False
    for block in re.split(r"\n[ \t]*\n+", text.strip("\n")):
        lines = block.split("\n")
        at = next((i for i, ln in enumerate(lines[:2]) if _CUE_TIME.match(ln)), None)
        if at is None:
            if fmt == "webvtt" and not seen_cue:
                header.append(block)
            elif fmt == "srt" and seen_cue and last is not None:  # a cue's text holding a blank line
                kept[last] += "\n\n" + block
            continue
        seen_cue = True
        m = _CUE_TIME.match(lines[at])
        assert m is not None
        span = _clip(_ms(m.group(1)), _ms(m.group(2)), lo, hi)
        if span is None:
            last = None
            continue
        timing = f"{_stamp(span[0], sep)} --> {_stamp(span[1], sep)}{m.group(3)}"
        ident = [str(len(kept) + 1)] if fmt == "srt" else lines[:at]  # SRT is numbered again, WebVTT keeps its ids
        kept.append("\n".join([*ident, timing, *lines[at + 1 :]]))
        last = len(kept) - 1
    blocks = (header or ["WEBVTT"]) + kept if fmt == "webvtt" else kept
    return "".join(b + "\n\n" for b in blocks)


def _cs(stamp: str) -> int | None:
    m = _ASS_TIME.match(stamp)
    if not m:
        return None
    h, mi, s, cs = (int(g) for g in m.groups())
    return ((h * 60 + mi) * 60 + s) * 100 + cs


def _cut_ass(text: str, start: float, end: float | None) -> str:
    """ASS/SSA: the ``[Events]`` section's Dialogue (and Comment) lines, whose ``Format`` line says where Start and
    End are (centiseconds); every other line is kept as it is."""
    lo, hi = round(start * 100), (None if end is None else round(end * 100))
    out: list[str] = []
    events = False
    fields = ["layer", "start", "end"]  # ASS's order where a file has no Format line
    for line in text.split("\n"):
        head = line.strip()
        if head.startswith("[") and head.endswith("]"):
            events = head.lower() == "[events]"
        elif events and head.lower().startswith("format:"):
            fields = [f.strip().lower() for f in head.split(":", 1)[1].split(",")]
        elif events and head.split(":", 1)[0] in ("Dialogue", "Comment") and ":" in head:
            kind, rest = line.split(":", 1)
            values = rest.split(",", len(fields) - 1)
            i, j = (fields.index("start"), fields.index("end")) if {"start", "end"} <= set(fields) else (1, 2)
            a, b = (_cs(values[i]), _cs(values[j])) if len(values) > max(i, j) else (None, None)
            if a is None or b is None:
                out.append(line)
                continue
            span = _clip(a, b, lo, hi)
            if span is None:
                continue
            for k, t in ((i, span[0]), (j, span[1])):  # keeping the space after "Dialogue:", where a time is first
                values[k] = values[k][: len(values[k]) - len(values[k].lstrip())] + _ass_stamp(t)
            line = f"{kind}:{','.join(values)}"
        out.append(line)
    return "\n".join(out)


def _ass_stamp(cs: int) -> str:
    h, rest = divmod(cs, 360_000)
    m, rest = divmod(rest, 6000)
    s, cs = divmod(rest, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"
