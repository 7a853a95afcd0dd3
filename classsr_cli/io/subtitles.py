"""Text subtitles cut to a part of a video (``classsr video --start/--duration``), as text.

ffmpeg cuts copied subtitle packets where they start: a cue already showing at the cut is dropped, and no ffmpeg
option keeps it clipped (an input-side seek keeps cues that ended before the cut too). So text subtitles are read
as ffmpeg writes them out (SRT, WebVTT or ASS, :data:`TEXT_FORMATS`), and :func:`cut` keeps every cue that shows
inside the part, clips it to the part and times it from the part's start. Bitmap subtitles (PGS, DVD, DVB) have no
text to do this with: ``io/video.py`` copies them, the packet showing at the cut moved to it. No ffmpeg and no torch
here.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace

#: The text format each text subtitle codec is read and cut in: SRT and WebVTT keep milliseconds, ASS its styles.
TEXT_FORMATS = {"subrip": "srt", "mov_text": "srt", "text": "srt", "webvtt": "webvtt", "ass": "ass", "ssa": "ass"}

#: An SRT or WebVTT cue's markup (``<i>``, ``<font color=...>``, ``<c.yellow>``) and an ASS event's override blocks.
_TAGS = r"<[^>]*>"
_OVERRIDES = r"\{[^}]*\}"
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


@dataclass
class _Cue:
    """One SRT or WebVTT cue: its time (ms), the lines before its timing (a WebVTT id), what follows the timing on
    its line (WebVTT's settings), and its text's lines (blank ones included: an SRT cue's text may hold one)."""

    start: int
    end: int
    ident: list[str]
    settings: str
    lines: list[str]


def _read_cues(text: str, fmt: str) -> tuple[list[str], list[_Cue]]:
    """SRT or WebVTT: blocks between blank lines; a cue's block has its timing on its first or second line. Gives
    WebVTT's header blocks (the WEBVTT line, STYLE, REGION and NOTE blocks before the first cue) and the cues; a
    block that is not a cue after the first one is an SRT cue's text after a blank line, and left out in WebVTT."""
    header: list[str] = []
    cues: list[_Cue] = []
    for block in re.split(r"\n[ \t]*\n+", text.strip("\n")):
        lines = block.split("\n")
        at = next((i for i, ln in enumerate(lines[:2]) if _CUE_TIME.match(ln)), None)
        if at is None:
            if fmt == "webvtt" and not cues:
                header.append(block)
            elif fmt == "srt" and cues:  # a cue's text holding a blank line
                cues[-1].lines += ["", *lines]
            continue
        m = _CUE_TIME.match(lines[at])
        assert m is not None
        cues.append(_Cue(_ms(m.group(1)), _ms(m.group(2)), lines[:at], m.group(3), lines[at + 1 :]))
    return header, cues


def _write_cues(header: list[str], cues: list[_Cue], fmt: str) -> str:
    sep = "," if fmt == "srt" else "."
    blocks = []
    for k, c in enumerate(cues, 1):
        ident = [str(k)] if fmt == "srt" else c.ident  # SRT is numbered again, WebVTT keeps its ids
        blocks.append("\n".join([*ident, f"{_stamp(c.start, sep)} --> {_stamp(c.end, sep)}{c.settings}", *c.lines]))
    blocks = (header or ["WEBVTT"]) + blocks if fmt == "webvtt" else blocks
    return "".join(b + "\n\n" for b in blocks)


def _cut_cues(text: str, fmt: str, start: float, end: float | None) -> str:
    lo, hi = round(start * 1000), (None if end is None else round(end * 1000))
    header, cues = _read_cues(text, fmt)
    kept = []
    for c in cues:
        span = _clip(c.start, c.end, lo, hi)
        if span is not None:
            kept.append(replace(c, start=span[0], end=span[1]))
    return _write_cues(header, kept, fmt)


def flatten(text: str, fmt: str) -> str:
    """``text`` (a whole subtitle file in ``fmt``, as :func:`cut` takes it) with its cues made one at a time: where
    cues overlap, each stretch of time between their starts and ends becomes one cue showing the text of every cue
    showing then, one under another in the order they began. For a format that shows one cue at a time (MP4's
    mov_text: ffmpeg ends a cue where the next begins, so the first of two lines spoken together vanished early).
    Unchanged where no cues overlap; an ASS event's styles, but for the first's, reset where its text begins."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if fmt == "ass":
        return _flatten_ass(text)
    if fmt not in ("srt", "webvtt"):
        raise ValueError(f"no text subtitle format {fmt!r}")
    header, cues = _read_cues(text, fmt)
    pieces = _one_at_a_time([(c.start, c.end) for c in cues])
    if pieces is None:
        return text
    flat = [replace(cues[group[0]], start=a, end=b, ident=[] if len(group) > 1 else cues[group[0]].ident,
                    lines=[ln for t in _distinct(["\n".join(cues[k].lines) for k in group], _TAGS)
                           for ln in t.split("\n")
                           if ln.strip()] if len(group) > 1 else cues[group[0]].lines)
            for a, b, group in pieces]  # fmt: skip
    joined: list[_Cue] = []
    for cue in flat:  # a stretch showing what the one before it showed (a repeat shown once): one cue
        if joined and joined[-1].end == cue.start and joined[-1].lines == cue.lines:
            joined[-1] = replace(joined[-1], end=cue.end)
        else:
            joined.append(cue)
    return _write_cues(header, joined, fmt)


def _one_at_a_time(spans: list[tuple[int, int]]) -> list[tuple[int, int, list[int]]] | None:
    """The stretches of time between ``spans``' starts and ends where any shows, each with the spans showing then
    (indices, in the order they start), or ``None`` where no two spans overlap."""
    order = sorted((k for k in range(len(spans)) if spans[k][1] > spans[k][0]), key=lambda k: spans[k][0])
    if all(spans[a][1] <= spans[b][0] for a, b in itertools.pairwise(order)):
        return None
    pieces: list[tuple[int, int, list[int]]] = []
    showing: list[int] = []
    begun = 0  # the spans of ``order`` begun so far
    for a, b in itertools.pairwise(sorted({t for k in order for t in spans[k]})):
        while begun < len(order) and spans[order[begun]][0] <= a:
            showing.append(order[begun])
            begun += 1
        showing = [k for k in showing if spans[k][1] > a]  # no start or end inside a to b: these show throughout
        if showing:
            pieces.append((a, b, list(showing)))
    return pieces


def _distinct(texts: list[str], markup: str) -> list[str]:
    """``texts`` without repeats of what they show (the ``markup`` pattern's tags taken out: a cue given twice, or a
    karaoke line's layers, each with its own effects, is shown once), the first of each kept."""
    seen: dict[str, str] = {}
    for text in texts:
        seen.setdefault(re.sub(markup, "", text).strip(), text)
    return list(seen.values())


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


def _flatten_ass(text: str) -> str:
    """:func:`flatten` for ASS/SSA: the ``[Events]`` section's Dialogue lines that overlap become one Dialogue line
    per stretch of time, with the first showing's fields and the texts joined by ASS's line break, each after the
    first from its style's defaults (``{\\r}``: an override such as italics does not run on into the next line)."""
    lines = text.split("\n")
    events = False
    fields = ["layer", "start", "end"]
    shown: list[tuple[int, list[str], tuple[int, int]]] = []  # (line index, its fields, its span in cs)
    for n, line in enumerate(lines):
        head = line.strip()
        if head.startswith("[") and head.endswith("]"):
            events = head.lower() == "[events]"
        elif events and head.lower().startswith("format:"):
            fields = [f.strip().lower() for f in head.split(":", 1)[1].split(",")]
        elif events and head.split(":", 1)[0] == "Dialogue" and ":" in head:
            values = line.split(":", 1)[1].split(",", len(fields) - 1)
            i, j = (fields.index("start"), fields.index("end")) if {"start", "end"} <= set(fields) else (1, 2)
            a, b = (_cs(values[i]), _cs(values[j])) if len(values) == len(fields) else (None, None)
            if a is not None and b is not None:
                shown.append((n, values, (a, b)))
    pieces = _one_at_a_time([span for _, _, span in shown])
    if pieces is None:
        return text
    i, j = (fields.index("start"), fields.index("end")) if {"start", "end"} <= set(fields) else (1, 2)
    t = fields.index("text") if "text" in fields else len(fields) - 1
    spans: list[tuple[int, int, list[str]]] = []
    for a, b, group in pieces:
        values = list(shown[group[0]][1])
        values[t] = "\\N{\\r}".join(_distinct([shown[g][1][t] for g in group], _OVERRIDES))
        if spans and spans[-1][1] == a and spans[-1][2] == values:  # showing what the stretch before showed: one
            spans[-1] = (spans[-1][0], b, values)
        else:
            spans.append((a, b, values))
    merged = []
    for a, b, values in spans:
        for k, stamp in ((i, a), (j, b)):  # keeping the space after "Dialogue:", where a time is first
            values[k] = values[k][: len(values[k]) - len(values[k].lstrip())] + _ass_stamp(stamp)
        merged.append("Dialogue:" + ",".join(values))
    first = min(n for n, _, _ in shown)
    gone = {n for n, _, _ in shown}
    out = lines[:first] + merged
    out += [ln for n, ln in enumerate(lines) if n > first and n not in gone]
    return "\n".join(out)
