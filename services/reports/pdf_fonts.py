"""The fonts of PDF reports: TrueType files loaded once, and the choice of font for each character.

No single font that Debian ships as TrueType outlines (reportlab embeds no
CFF/OpenType outlines) covers Latin, Greek, Cyrillic, Hebrew, Arabic and CJK,
so a :class:`FontChain` holds several: each character is drawn with the first
font whose ``cmap`` has a glyph for it (DejaVu Sans for the alphabets, Droid
Sans Fallback for Chinese and Japanese, WenQuanYi Micro Hei for Hangul, which
Droid lacks). A character that is not a letter (space, digit, punctuation,
combining mark) stays with the font of the character before it when that font
has it: a mark is not split from its base, and a line changes font only where
the script does. A character no font has is drawn with the first font (its
.notdef box), never dropped.

Fonts are registered with reportlab under names derived from their files, so
loading the same files twice is harmless. :func:`load_fonts` raises
:class:`FontUnavailable` with a message naming the Debian package to install.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

from services.reports.config import FONT_PACKAGES, ReportsSettings


class FontUnavailable(Exception):
    """A configured font file is missing or unusable; the message says which and what to install."""


def _remedy(path: Path, setting: str) -> str:
    package = FONT_PACKAGES.get(str(path))
    if package:
        return f"install the Debian package {package} (apt-get install {package}) or set {setting}"
    return f"set {setting} to an existing TrueType font file"


def load_font(path: Path, setting: str) -> TTFont:
    """One TrueType font (a ``.ttc`` collection: its first face), registered with reportlab."""
    name = f"Quartet-{path.stem}-{hashlib.sha256(str(path).encode()).hexdigest()[:6]}"
    try:
        if not path.is_file():
            raise FontUnavailable(f"PDF font {path} is missing: {_remedy(path, setting)}")
        font = TTFont(name, str(path), subfontIndex=0)
    except TTFError as error:
        raise FontUnavailable(f"PDF font {path} cannot be embedded ({error}): {_remedy(path, setting)}") from None
    except OSError as error:
        raise FontUnavailable(f"PDF font {path} cannot be read ({error.strerror}): {_remedy(path, setting)}") from None
    pdfmetrics.registerFont(font)
    return font


@dataclass
class FontChain:
    """Fonts tried in order for each character."""

    fonts: Sequence[TTFont]
    _choice: dict[str, int] = field(default_factory=dict, repr=False)
    _widths: dict[tuple[int, str], float] = field(default_factory=dict, repr=False)

    @property
    def names(self) -> list[str]:
        return [f.fontName for f in self.fonts]

    def has_glyph(self, index: int, char: str) -> bool:
        return ord(char) in self.fonts[index].face.charToGlyph

    def _first_with(self, char: str) -> int:
        index = self._choice.get(char)
        if index is None:
            index = next((i for i in range(len(self.fonts)) if self.has_glyph(i, char)), 0)
            self._choice[char] = index
        return index

    def font_indexes(self, text: str) -> list[int]:
        """The index of the font that draws each character of ``text``."""
        chosen: list[int] = []
        for char in text:
            if chosen and unicodedata.category(char)[0] != "L" and self.has_glyph(chosen[-1], char):
                chosen.append(chosen[-1])
            else:
                chosen.append(self._first_with(char))
        return chosen

    def runs(self, text: str, size: float) -> list[tuple[str, str, float]]:
        """``text`` cut into runs of one font, in order: (font name, characters, width in points)."""
        pairs = zip(self.font_indexes(text), text, self.char_widths(text, size), strict=True)
        runs = []
        for index, group in groupby(pairs, key=lambda p: p[0]):
            chars = list(group)
            runs.append((self.fonts[index].fontName, "".join(c for _, c, _ in chars), sum(w for _, _, w in chars)))
        return runs

    def char_widths(self, text: str, size: float) -> list[float]:
        """The advance of each character in points (reportlab applies no kerning, so they add up)."""
        widths = []
        for index, char in zip(self.font_indexes(text), text, strict=True):
            width = self._widths.get((index, char))
            if width is None:
                width = self._widths[index, char] = pdfmetrics.stringWidth(char, self.fonts[index].fontName, 1000)
            widths.append(width * size / 1000)
        return widths


@dataclass
class PdfFonts:
    """Regular and bold chains (the fallbacks are shared: they have no bold face)."""

    regular: FontChain
    bold: FontChain


def load_fonts(settings: ReportsSettings) -> PdfFonts:
    """Load every configured font now, so a missing one stops the worker at start, not a job."""
    wanted = [
        (settings.pdf_font, "PDF_FONT"),
        (settings.pdf_bold_font, "PDF_BOLD_FONT"),
        *((path, "PDF_FALLBACK_FONTS") for path in settings.pdf_fallback_fonts),
    ]
    fonts, problems = [], []
    for path, setting in wanted:
        try:
            fonts.append(load_font(path, setting))
        except FontUnavailable as error:
            problems.append(str(error))
    if problems:  # all of them at once, so one apt-get fixes the machine
        raise FontUnavailable("; ".join(problems))
    regular, bold, *fallbacks = fonts
    return PdfFonts(FontChain([regular, *fallbacks]), FontChain([bold, regular, *fallbacks]))
