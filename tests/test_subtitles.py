"""classsr_cli.io.subtitles: text subtitles cut to a part of a video, and their cues made one at a time (SRT,
WebVTT, ASS), no ffmpeg."""

from __future__ import annotations

import pytest

from classsr_cli.io.subtitles import TEXT_FORMATS, cut, flatten

SRT = (
    "1\n00:00:00,000 --> 00:00:01,500\nhello\n\n"
    "2\n00:00:01,600 --> 00:00:02,400\nshowing\n<i>two lines</i>\n\n"
    "3\n00:00:02,000 --> 00:00:02,500\nworld\n\n"
    "4\n00:00:02,600 --> 00:00:03,000\nlate\n\n"
    "5\n01:00:00,000 --> 01:00:01,000\nan hour on\n"
)


def test_srt_keeps_what_shows_in_the_part_clipped_and_numbered_again() -> None:
    assert cut(SRT, "srt", 1.8, 2.8) == (
        "1\n00:00:00,000 --> 00:00:00,600\nshowing\n<i>two lines</i>\n\n"
        "2\n00:00:00,200 --> 00:00:00,700\nworld\n\n"
        "3\n00:00:00,800 --> 00:00:01,000\nlate\n\n"
    )


def test_srt_to_the_end_and_across_hours() -> None:
    out = cut(SRT, "srt", 2.5, None)
    assert out == "1\n00:00:00,100 --> 00:00:00,500\nlate\n\n2\n00:59:57,500 --> 00:59:58,500\nan hour on\n\n"
    assert cut(SRT, "srt", 0.0, None).count("-->") == 5  # the whole: every cue, its times unchanged
    assert "00:00:01,600 --> 00:00:02,400" in cut(SRT, "srt", 0.0, None)


def test_a_cue_ending_at_the_cut_or_starting_at_the_end_is_left_out() -> None:
    assert cut(SRT, "srt", 1.5, 1.6) == ""  # hello ends at 1.5, showing starts at 1.6
    assert cut(SRT, "srt", 4.0, 5.0) == ""


def test_srt_with_crlf_and_a_blank_line_inside_a_cue() -> None:
    text = "1\r\n00:00:01,000 --> 00:00:03,000\r\nfirst\r\n\r\nstill the first\r\n\r\n2\r\n00:00:04,000 --> 00:00:05,000\r\nx\r\n"
    assert cut(text, "srt", 2.0, 4.0) == "1\n00:00:00,000 --> 00:00:01,000\nfirst\n\nstill the first\n\n"


def test_webvtt_keeps_its_header_styles_ids_and_cue_settings() -> None:
    text = ("WEBVTT\n\nSTYLE\n::cue { color: red }\n\nid1\n00:00.000 --> 00:01.500 align:start\nhello\n\n"
            "intro\n00:01.600 --> 00:02.600 line:0\nshowing\n")  # fmt: skip
    assert cut(text, "webvtt", 1.8, None) == (
        "WEBVTT\n\nSTYLE\n::cue { color: red }\n\nintro\n00:00:00.000 --> 00:00:00.800 line:0\nshowing\n\n")
    assert cut("WEBVTT\n\n00:01.000 --> 00:02.000\nx\n", "webvtt", 5.0, None) == "WEBVTT\n\n"


ASS = """[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize
Style: Sign,Arial,30

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Comment: 0,0:00:00.00,0:00:09.00,Sign,,0,0,0,,a note over the whole
Dialogue: 0,0:00:01.00,0:00:03.00,Sign,,0,0,0,,{\\i1}long, with a comma{\\i0}
Dialogue: 1,0:00:01.20,0:00:01.50,Sign,,0,0,0,,sign that ends before
Dialogue: 0,1:00:02.00,1:00:02.50,Sign,,0,0,0,,an hour on"""


def test_ass_keeps_its_header_styles_and_text_and_retimes_events() -> None:
    out = cut(ASS, "ass", 1.5, None)
    head, events = out.split("[Events]")
    assert head == ASS.split("[Events]")[0]
    assert events.splitlines()[1:] == [
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        "Comment: 0,0:00:00.00,0:00:07.50,Sign,,0,0,0,,a note over the whole",
        "Dialogue: 0,0:00:00.00,0:00:01.50,Sign,,0,0,0,,{\\i1}long, with a comma{\\i0}",
        "Dialogue: 0,1:00:00.50,1:00:01.00,Sign,,0,0,0,,an hour on",
    ]


def test_ass_follows_its_format_line() -> None:
    text = "[Events]\nFormat: Start, End, Style, Text\nDialogue: 0:00:01.00,0:00:02.00,Default,a, b\n"
    want = "[Events]\nFormat: Start, End, Style, Text\nDialogue: 0:00:00.00,0:00:00.25,Default,a, b\n"
    assert cut(text, "ass", 1.5, 1.75) == want


def test_every_text_codec_has_a_format_and_others_are_refused() -> None:
    assert set(TEXT_FORMATS.values()) == {"srt", "webvtt", "ass"}
    for fmt in set(TEXT_FORMATS.values()):
        cut("", fmt, 1.0, None)
    with pytest.raises(ValueError, match="no text subtitle format"):
        cut("", "pgs", 1.0, None)


def test_flatten_shows_overlapping_cues_together_one_cue_at_a_time() -> None:
    """Two lines spoken together (hello 0-1.5 s, showing 1.6-2.4 s over world 2.0-2.5 s): from 2.0 to 2.4 s one cue
    shows both, in the order they began, and each alone before and after; cues that overlap nothing are kept."""
    assert flatten(SRT, "srt") == (
        "1\n00:00:00,000 --> 00:00:01,500\nhello\n\n"
        "2\n00:00:01,600 --> 00:00:02,000\nshowing\n<i>two lines</i>\n\n"
        "3\n00:00:02,000 --> 00:00:02,400\nshowing\n<i>two lines</i>\nworld\n\n"
        "4\n00:00:02,400 --> 00:00:02,500\nworld\n\n"
        "5\n00:00:02,600 --> 00:00:03,000\nlate\n\n"
        "6\n01:00:00,000 --> 01:00:01,000\nan hour on\n\n"
    )


def test_flatten_leaves_cues_that_do_not_overlap_as_they_are() -> None:
    text = "1\r\n00:00:01,000 --> 00:00:02,000\r\nfirst\r\n\r\n2\r\n00:00:02,000 --> 00:00:03,000\r\nnext\r\n"
    assert flatten(text, "srt") == text.replace("\r\n", "\n")  # one ends where the next begins: no overlap
    assert flatten("", "srt") == "" and flatten("[Events]\n", "ass") == "[Events]\n"


def test_flatten_a_cue_inside_another_a_repeated_one_and_one_out_of_order() -> None:
    text = ("1\n00:00:05,000 --> 00:00:06,000\nlater\n\n"
            "2\n00:00:00,000 --> 00:00:04,000\nlong\n\nsecond paragraph\n\n"
            "3\n00:00:01,000 --> 00:00:02,000\n[door]\n\n"
            "4\n00:00:01,000 --> 00:00:02,000\n[door]\n")  # fmt: skip
    assert flatten(text, "srt") == (
        "1\n00:00:00,000 --> 00:00:01,000\nlong\n\nsecond paragraph\n\n"  # alone: its blank line kept
        "2\n00:00:01,000 --> 00:00:02,000\nlong\nsecond paragraph\n[door]\n\n"  # together: shown once, no blank
        "3\n00:00:02,000 --> 00:00:04,000\nlong\n\nsecond paragraph\n\n"
        "4\n00:00:05,000 --> 00:00:06,000\nlater\n\n"
    )


def test_flatten_webvtt_keeps_its_header_and_the_first_cues_settings() -> None:
    text = ("WEBVTT\n\nSTYLE\n::cue { color: red }\n\nid1\n00:00.000 --> 00:02.000 align:start\nhello\n\n"
            "id2\n00:01.000 --> 00:03.000 line:0\nthere\n")  # fmt: skip
    assert flatten(text, "webvtt") == (
        "WEBVTT\n\nSTYLE\n::cue { color: red }\n\nid1\n00:00:00.000 --> 00:00:01.000 align:start\nhello\n\n"
        "00:00:01.000 --> 00:00:02.000 align:start\nhello\nthere\n\n"
        "id2\n00:00:02.000 --> 00:00:03.000 line:0\nthere\n\n")


def test_flatten_ass_joins_the_texts_each_from_its_styles_defaults() -> None:
    """The sign (1.2-1.5 s) over the long line (1-3 s): three events in its place, the second both texts, the sign's
    after a line break and a reset (the long line's italics would run on into it); the Comment is left as it is."""
    head, events = flatten(ASS, "ass").split("[Events]")
    assert head == ASS.split("[Events]")[0]
    assert events.splitlines()[1:] == [
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        "Comment: 0,0:00:00.00,0:00:09.00,Sign,,0,0,0,,a note over the whole",
        "Dialogue: 0,0:00:01.00,0:00:01.20,Sign,,0,0,0,,{\\i1}long, with a comma{\\i0}",
        "Dialogue: 0,0:00:01.20,0:00:01.50,Sign,,0,0,0,,{\\i1}long, with a comma{\\i0}\\N{\\r}sign that ends before",
        "Dialogue: 0,0:00:01.50,0:00:03.00,Sign,,0,0,0,,{\\i1}long, with a comma{\\i0}",
        "Dialogue: 0,1:00:02.00,1:00:02.50,Sign,,0,0,0,,an hour on",
    ]
    assert flatten(cut(ASS, "ass", 2.0, None), "ass") == cut(ASS, "ass", 2.0, None)  # nothing overlaps there
    with pytest.raises(ValueError, match="no text subtitle format"):
        flatten("", "pgs")


def test_flatten_shows_a_line_given_in_several_styles_once() -> None:
    """Layers of one line that differ only in their effects (a karaoke line's, an SRT cue repeated in italics) are
    shown once, as the first of them; other lines showing then are kept."""
    head = "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    text = head + ("Dialogue: 0,0:00:01.00,0:00:03.00,Kara,,0,0,0,,{\\k20}la {\\k30}la\n"
                   "Dialogue: 1,0:00:01.00,0:00:03.00,Kara,,0,0,0,,{\\blur3\\k20}la {\\k30}la\n"
                   "Dialogue: 0,0:00:02.00,0:00:04.00,Default,,0,0,0,,spoken\n")
    assert flatten(text, "ass").splitlines()[2:] == [
        "Dialogue: 0,0:00:01.00,0:00:02.00,Kara,,0,0,0,,{\\k20}la {\\k30}la",
        "Dialogue: 0,0:00:02.00,0:00:03.00,Kara,,0,0,0,,{\\k20}la {\\k30}la\\N{\\r}spoken",
        "Dialogue: 0,0:00:03.00,0:00:04.00,Default,,0,0,0,,spoken",
    ]
    srt = "1\n00:00:01,000 --> 00:00:03,000\nhello\n\n2\n00:00:02,000 --> 00:00:03,000\n<i>hello</i>\n"
    assert flatten(srt, "srt") == "1\n00:00:01,000 --> 00:00:03,000\nhello\n\n"  # one cue, as it shows one line
    same = head + ("Dialogue: 0,0:00:01.00,0:00:03.00,Kara,,0,0,0,,{\\k20}la\n"
                   "Dialogue: 1,0:00:02.00,0:00:03.00,Kara,,0,0,0,,{\\blur3\\k20}la\n")
    assert flatten(same, "ass").splitlines()[2:] == ["Dialogue: 0,0:00:01.00,0:00:03.00,Kara,,0,0,0,,{\\k20}la"]
