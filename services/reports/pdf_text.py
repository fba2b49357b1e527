"""User text in any script as a reportlab flowable: shaped, wrapped, in visual order, one font per run.

For each paragraph (a line of the user's text):

1. Arabic letters are replaced by their contextual presentation forms
   (arabic-reshaper; lam + alef become one ligature), because reportlab draws
   one glyph per character and applies no OpenType shaping of its own here.
2. The paragraph's direction is that of its first strong character (Unicode
   bidi rules P2/P3); an RTL paragraph is right-aligned.
3. It is wrapped in logical order: a line may end after a space, around a
   CJK character (not before closing or after opening punctuation), or, for a
   word wider than the line, anywhere but before a combining mark. Spaces stay
   at the end of their line, so the lines joined give back the text.
4. Each line is reordered for display by the Unicode bidi algorithm
   (python-bidi: runs of RTL text reversed, brackets mirrored) and drawn left
   to right in runs of one font (:class:`FontChain`).

So the content stream holds the text in visual order, as PDFs without
``/ActualText`` do; readers that extract text put RTL runs back in logical
order themselves (pypdf does), see docs/reports.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from arabic_reshaper import ArabicReshaper
from bidi import algorithm
from reportlab.platypus import Flowable

from services.reports.pdf_fonts import FontChain

# Control characters would be drawn as boxes (or break the PDF string): they become spaces.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_NEWLINES = re.compile(r"\r\n?")
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]")
# Keep every character the user wrote: no harakat deleted, no word ligatures (only lam-alef).
_RESHAPER = ArabicReshaper(
    configuration={"delete_harakat": False, "support_ligatures": True, "ARABIC LIGATURE ALLAH": False}
)


def clean(text: str) -> list[str]:
    """The user's text as paragraphs, with control characters made spaces."""
    return _CONTROL.sub(" ", _NEWLINES.sub("\n", text)).split("\n")


def shape(paragraph: str) -> str:
    """Arabic letters in their contextual forms (still in logical order); other text unchanged."""
    return _RESHAPER.reshape(paragraph) if _ARABIC.search(paragraph) else paragraph


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _may_break_before(text: str, i: int) -> bool:
    before, char = text[i - 1], text[i]
    category = unicodedata.category(char)
    if category[0] == "M" or char.isspace():
        return False
    if before.isspace():
        return True
    closing = category in ("Pe", "Pf", "Po")
    opening = unicodedata.category(before) in ("Ps", "Pi")
    return (_wide(char) or _wide(before)) and not closing and not opening


def wrap(text: str, widths: list[float], max_width: float) -> list[str]:
    """Greedy line breaking of ``text`` (logical order) whose characters are ``widths`` wide."""
    lines: list[str] = []
    start, width, last_break = 0, 0.0, 0
    for i, char in enumerate(text):
        if i > start and _may_break_before(text, i):
            last_break = i
        if i > start and width + widths[i] > max_width and not char.isspace():
            cut = last_break if last_break > start else i
            while cut - 1 > start and unicodedata.category(text[cut])[0] == "M":
                cut -= 1  # a forced break keeps a mark with its base character
            lines.append(text[start:cut])
            start, width = cut, sum(widths[cut:i])
        width += widths[i]
    lines.append(text[start:])
    return lines


_RTL_TYPES = frozenset({"R", "AL", "AN", "RLE", "RLO", "RLI", "FSI"})


def _visual_order(line: str, base_level: int) -> list[tuple[int, int, str]]:
    """(logical index, level, character as displayed) from left to right: the Unicode bidi algorithm.

    Characters the algorithm removes (explicit embeddings, boundary neutrals such as ZWJ) are not
    drawn; they are invisible anyway.
    """
    if base_level == 0 and not any(unicodedata.bidirectional(c) in _RTL_TYPES for c in line):
        return [(i, 0, c) for i, c in enumerate(line)]  # the common case: nothing to reorder
    storage = algorithm.get_empty_storage()
    storage["base_level"], storage["base_dir"] = base_level, "LR"[base_level]
    algorithm.get_embedding_levels(line, storage)
    for index, char in enumerate(storage["chars"]):
        char["index"] = index
    algorithm.explicit_embed_and_overrides(storage)
    algorithm.resolve_weak_types(storage)
    algorithm.resolve_neutral_types(storage, False)
    algorithm.resolve_implicit_levels(storage, False)
    algorithm.reorder_resolved_levels(storage, False)
    algorithm.apply_mirroring(storage, False)
    shown = [(c["index"], c["level"], c["ch"]) for c in storage["chars"]]
    # L3: reversing put an RTL character's combining marks before (left of) it; a font draws a
    # mark over the glyph before it, so the marks go back after their base.
    i = 0
    while i < len(shown):
        j = i
        while j < len(shown) and shown[j][1] % 2 and _is_mark(shown[j][2]):
            j += 1
        if i < j < len(shown) and shown[j][1] == shown[i][1]:
            shown[i : j + 1] = [shown[j], *reversed(shown[i:j])]
        i = j + 1
    return shown


def _is_mark(char: str) -> bool:
    return unicodedata.category(char)[0] == "M"


def _pieces(indexes: list[int], line: str, rtl: bool) -> list[list[int]]:
    """One level-and-font run cut into what is drawn together, in logical order (see segments)."""
    # In RTL each mark is alone, so an extractor's reversal keeps it after its base.
    parts = [list(g) for _, g in groupby(indexes, key=lambda i: i if _is_mark(line[i]) else -1)] if rtl else [indexes]
    strong = ("R", "AL") if rtl else ("L",)
    pieces: list[list[int]] = []
    for part in parts:
        marks = [n for n, i in enumerate(part) if unicodedata.bidirectional(line[i]) in strong]
        if not marks:
            pieces += [[i] for i in part]
        elif rtl:  # the core runs to the last strong character; what follows is single
            pieces += [part[: marks[-1] + 1], *([i] for i in part[marks[-1] + 1 :])]
        else:  # the core runs from the first strong character; what precedes is single
            pieces += [*([i] for i in part[: marks[0]]), part[marks[0] :]]
    return pieces


@dataclass(frozen=True)
class Segment:
    font: str
    text: str  # as drawn, left to right
    x: float


def segments(line: str, chain: FontChain, size: float, base_level: int) -> tuple[list[Segment], float]:
    """The line as segments in logical order, each drawn at its place; and the line's width.

    A segment is one font and one bidi level. An RTL segment holds its characters in visual
    order and starts (left) with a strong RTL character; an LTR one starts with a strong LTR
    character; other characters at those ends are segments of their own. That is the order
    extractors that reverse RTL runs (pypdf) need to give back the logical text.
    """
    fonts = chain.font_indexes(line)
    widths = chain.char_widths(line, size)
    shown: dict[int, tuple[int, str, float, int]] = {}  # logical index -> (level, character, x, rank)
    x = 0.0
    for rank, (index, level, char) in enumerate(_visual_order(line, base_level)):
        shown[index] = (level, char, x, rank)
        x += widths[index]
    result: list[Segment] = []
    # Characters of one level, consecutive in logical order, are consecutive on the line too.
    for (level, font), group in groupby(sorted(shown), key=lambda i: (shown[i][0], fonts[i])):
        for piece in _pieces(list(group), line, level % 2 == 1):
            drawn = sorted(piece, key=lambda i: shown[i][3])
            result.append(Segment(chain.fonts[font].fontName, "".join(shown[i][1] for i in drawn), shown[drawn[0]][2]))
    return result, x


@dataclass(frozen=True)
class Line:
    text: str  # this line's part of the user's text, in logical order (Arabic already shaped)
    segments: list[Segment]
    width: float
    rtl: bool


def layout(text: str, chain: FontChain, size: float, max_width: float) -> list[Line]:
    lines: list[Line] = []
    for paragraph in clean(text):
        level = algorithm.get_base_level(paragraph) if paragraph else 0
        shaped = shape(paragraph)
        for piece in wrap(shaped, chain.char_widths(shaped, size), max_width):
            parts, width = segments(piece, chain, size, level)
            lines.append(Line(piece, parts, width, bool(level)))
    return lines


class ScriptText(Flowable):  # type: ignore[misc]  # reportlab has no type hints
    """A paragraph of user text in any script; takes the width it is given, as tall as its lines."""

    def __init__(self, text: str, chain: FontChain, size: float = 8, leading: float = 10) -> None:
        super().__init__()
        self.text, self.chain, self.size, self.leading = text, chain, size, leading
        self.lines: list[Line] = []

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.width = avail_width
        self.lines = layout(self.text, self.chain, self.size, avail_width)
        self.height = len(self.lines) * self.leading
        return self.width, self.height

    def draw(self) -> None:
        canvas: Any = self.canv
        for number, line in enumerate(self.lines):
            x = self.width - line.width if line.rtl else 0.0
            y = self.height - number * self.leading - 0.95 * self.size
            # One text object per line; a font set before each segment (Tf) also tells extractors
            # that a segment ends there.
            text = canvas.beginText()
            for segment in line.segments:
                text.setFont(segment.font, self.size)
                text.setTextOrigin(x + segment.x, y)
                text.textOut(segment.text)
            canvas.drawText(text)
