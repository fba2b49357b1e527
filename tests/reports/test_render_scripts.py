"""Reports in any script, rendered in process: the PDF draws every character with a real glyph of an
embedded font, and text extraction (pypdf) gives back what the user wrote.

What "gives back" means, exactly:
- every todo that fits on one line is one extracted line: ``"<todo> open"`` (the status cell shares
  its baseline), compared with ``==``;
- for Hebrew and for mixed Hebrew/Latin that is the logical order, character for character: the PDF
  holds RTL runs in visual order, and pypdf reverses RTL runs back (pdf_text.segments orders the
  content stream so that its reversal is exact);
- Arabic is drawn as contextual presentation forms (U+FBxx/U+FExx, lam-alef as one ligature): the
  extracted line equals exactly the reshaped text we drew, and its NFKC normalisation equals the input.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pypdf
import pytest
from bidi import get_display
from fontTools.ttLib import TTFont as ToolsFont
from pypdf.generic import DictionaryObject

from services.reports.config import FONT_PACKAGES, ReportsSettings
from services.reports.pdf_fonts import FontUnavailable, PdfFonts, load_fonts
from services.reports.pdf_text import layout, shape
from services.reports.render import ReportData, render
from services.reports.schemas import TodoItem
from tests.commands import run_python

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

SCRIPTS = {
    "latin": "Crème brûlée für Zoë, naïve façade",
    "cyrillic": "Купить молоко и хлеб",
    "greek": "Αγοράστε γάλα σήμερα",
    "chinese": "买牛奶和面包",
    "japanese": "日本語のタスクを終える",
    "korean": "우유와 빵 사기",
    "hebrew": "לקנות חלב ולחם",
    "hebrew-punctuation": "שלום, עולם! 12 ימים",
    "mixed": "Buy חלב today, then 3 pages.",
}
ARABIC = "اشترِ الحليب والخبز لا تنسَ"


def todo(content: str) -> TodoItem:
    return TodoItem(id=uuid.uuid4(), content=content, is_finished=False, created_at=NOW, updated_at=NOW)


def pdf(fonts: PdfFonts, contents: list[str]) -> pypdf.PdfReader:
    data = ReportData(uuid.uuid4(), uuid.uuid4(), NOW, [todo(c) for c in contents])
    return pypdf.PdfReader(io.BytesIO(render("pdf", data, fonts).body))


def extracted_lines(reader: pypdf.PdfReader) -> list[str]:
    return [line.strip() for page in reader.pages for line in page.extract_text().splitlines()]


# Glyphs: read back from the PDF itself ------------------------------------------------------------


def _to_unicode(font: Any) -> dict[int, str]:
    cmap = font["/ToUnicode"].get_object().get_data().decode()
    codes = {int(c, 16): chr(int(u, 16)) for c, u in re.findall(r"<([0-9A-F]{2})> <([0-9A-F]{4})>", cmap)}
    assert "bfrange" not in cmap  # reportlab writes bfchar only; a range would need parsing here
    return codes


def embedded_glyphs(font: Any) -> dict[str, tuple[str, int]]:
    """Character -> (glyph name, contour count) in the font program embedded in the PDF (its cmap)."""
    program = ToolsFont(io.BytesIO(font["/FontDescriptor"]["/FontFile2"].get_data()))
    code_to_glyph = program["cmap"].getcmap(1, 0).cmap
    glyf = program["glyf"]
    result = {}
    for code, char in _to_unicode(font).items():
        name = code_to_glyph.get(code, ".notdef")
        result[char] = (name, glyf[name].numberOfContours if name != ".notdef" else 0)
    return result


def drawn_text(reader: pypdf.PdfReader) -> Iterator[tuple[str, str, dict[str, tuple[str, int]]]]:
    """(text, font name, that font's glyphs) for every piece of text pypdf reads, per the font it is in."""
    glyphs: dict[str, dict[str, tuple[str, int]]] = {}
    for page in reader.pages:
        pieces: list[tuple[str, Any]] = []

        def visit(
            text: str, cm: object, tm: object, font: Any, size: object, into: list[tuple[str, Any]] = pieces
        ) -> None:
            into.append((text, font))

        page.extract_text(visitor_text=visit)
        for text, font in pieces:
            if not text.strip():  # pypdf adds spaces and newlines of its own, outside any font
                continue
            assert font is not None and font["/Subtype"] == "/TrueType", f"{text!r} is not in an embedded font"
            name = str(font["/BaseFont"])
            if name not in glyphs:
                glyphs[name] = embedded_glyphs(font)
            yield text.replace("\n", ""), name, glyphs[name]


def test_todos_in_nine_scripts_extract_as_written(pdf_fonts: PdfFonts) -> None:
    lines = extracted_lines(pdf(pdf_fonts, [*SCRIPTS.values(), ARABIC]))
    for script, content in SCRIPTS.items():
        assert f"{content} open" in lines, script
    arabic = next(line for line in lines if line.endswith(" open") and "\ufe8d" in line)  # ALEF isolated
    assert arabic == shape(ARABIC) + " open"
    assert shape(ARABIC) != ARABIC and "\ufefb" in shape(ARABIC)  # really shaped, lam-alef joined
    assert unicodedata.normalize("NFKC", arabic) == ARABIC + " open"


def test_lines_are_laid_out_in_the_visual_order_of_the_unicode_bidi_algorithm(pdf_fonts: PdfFonts) -> None:
    """Extraction alone cannot tell (a reversed RTL run would also extract right), so check positions:
    the characters sorted by where they are drawn read as python-bidi's Rust implementation shows the line.
    """
    for content in [*SCRIPTS.values(), ARABIC]:
        (line,) = layout(content, pdf_fonts.regular, 8, 500)
        placed = []  # (x, not a mark, character): a zero-width mark sits at its base's right edge
        for segment in line.segments:
            x = segment.x
            for char, width in zip(segment.text, pdf_fonts.regular.char_widths(segment.text, 8), strict=True):
                placed.append((round(x, 3), unicodedata.category(char)[0] != "M", char))
                x += width
        drawn = "".join(char for _, _, char in sorted(placed))
        expected = get_display(shape(content), base_dir="R" if line.rtl else "L")
        # Rust's get_display leaves an RTL base's marks before it (no rule L3); fonts want them after.
        expected = re.sub(r"([\u064b-\u065f]+)(.)", r"\2\1", expected)
        assert drawn == expected, content
        assert line.rtl == (content in (SCRIPTS["hebrew"], SCRIPTS["hebrew-punctuation"], ARABIC))


def test_every_character_is_drawn_with_a_real_glyph_of_an_embedded_font(pdf_fonts: PdfFonts) -> None:
    reader = pdf(pdf_fonts, [*SCRIPTS.values(), ARABIC])
    drawn_fonts: dict[str, set[str]] = {}
    for text, font, glyphs in drawn_text(reader):
        for char in text:
            if char.isspace():  # also pypdf's own word separators: not drawn, so not looked up
                continue
            assert char in glyphs, f"{char!r} ({unicodedata.name(char, '?')}) has no code in {font}"
            glyph, contours = glyphs[char]
            assert glyph != ".notdef", f"{char!r} ({unicodedata.name(char, '?')}) is .notdef in {font}"
            assert contours != 0, f"{char!r} is an empty glyph {glyph} in {font}"
            drawn_fonts.setdefault(font, set()).add(char)
    used = "".join(shape(c) for c in [*SCRIPTS.values(), ARABIC]).replace(" ", "")
    assert set(used) <= set().union(*drawn_fonts.values())
    # The scripts really came from the fallback fonts: Han and kana from Droid, Hangul from WenQuanYi.
    by_font: dict[str, set[str]] = {}  # reportlab embeds a font as subsets of 256 (AAAAAA+Name, AAAAAB+Name)
    for font, chars in drawn_fonts.items():
        by_font.setdefault(font.split("+")[1], set()).update(chars)
    assert {"日", "の", "买"} <= by_font["DroidSansFallback"]
    assert {"우", "빵"} <= by_font["WenQuanYiMicroHei-0"]
    assert {"é", "\u041a", "\u03b3", "ש", "\ufefb"} <= by_font["DejaVuSans"]  # Cyrillic Ka, Greek gamma
    fonts_in_pdf = {
        str(f.get_object()["/BaseFont"])
        for p in reader.pages
        for f in cast(DictionaryObject, cast(DictionaryObject, p["/Resources"])["/Font"]).values()
    }
    assert not any("Helvetica" in f for f in fonts_in_pdf)


def test_long_text_wraps_in_every_direction_and_comes_back_in_order(pdf_fonts: PdfFonts) -> None:
    hebrew = " ".join(["לקנות חלב ולחם טרי"] * 12)
    japanese = "長いタスクの説明" * 20
    width = 80 * 72 / 25.4  # about the Todo column
    for content, rtl in ((hebrew, True), (japanese, False)):
        lines = layout(content, pdf_fonts.regular, 8, width)
        assert len(lines) >= 3 and "".join(line.text for line in lines) == content
        assert all(line.rtl == rtl for line in lines)
        assert all(line.width <= width + 8 * 0.35 for line in lines)  # a hanging space may pass the edge
    extracted = "\n".join(extracted_lines(pdf(pdf_fonts, [hebrew, japanese])))
    # The cell is the Todo column less its padding; pypdf gives one line per drawn line, in order.
    cell = 88 * 72 / 25.4 - 12
    for content in (hebrew, japanese):
        drawn = [line.text.strip() for line in layout(content, pdf_fonts.regular, 8, cell)]
        assert len(drawn) >= 2 and "\n".join(drawn) + "\nopen" in extracted


def test_multi_page_report_numbers_its_pages(pdf_fonts: PdfFonts) -> None:
    contents = [list(SCRIPTS.values())[n % len(SCRIPTS)] + f" #{n}" for n in range(150)]
    reader = pdf(pdf_fonts, contents)
    assert len(reader.pages) >= 3
    for number, page in enumerate(reader.pages, 1):
        text = page.extract_text()
        assert f"Page {number} of {len(reader.pages)}" in text and "Todo" in text
    lines = extracted_lines(reader)
    assert all(f"{c} open" in lines for c in contents if "#" in c and not any("\u0590" <= ch <= "\u05ff" for ch in c))


def test_csv_and_json_are_utf8_in_every_script() -> None:
    contents = [*SCRIPTS.values(), ARABIC]
    data = ReportData(uuid.uuid4(), uuid.uuid4(), NOW, [todo(c) for c in contents])
    rows = list(csv.DictReader(io.StringIO(render("csv", data).body.decode("utf-8"), newline="")))
    assert [r["content"] for r in rows] == contents
    raw = render("json", data).body
    assert "日本語".encode() in raw and b"\\u" not in raw  # UTF-8 itself, not \u escapes
    assert [t["content"] for t in json.loads(raw.decode("utf-8"))["todos"]] == contents


# Missing fonts ------------------------------------------------------------------------------------


def test_a_missing_default_font_names_its_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "DroidSansFallbackFull.ttf"
    monkeypatch.setitem(FONT_PACKAGES, str(missing), "fonts-droid-fallback")
    with pytest.raises(FontUnavailable) as caught:
        load_fonts(ReportsSettings(pdf_fallback_fonts=(missing,)))
    assert f"PDF font {missing} is missing" in str(caught.value)
    assert "apt-get install fonts-droid-fallback" in str(caught.value)


def test_a_font_that_is_not_truetype_is_refused_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.ttf"
    bogus.write_bytes(b"OTTO" + b"\0" * 100)  # a CFF OpenType signature: reportlab cannot embed it
    with pytest.raises(FontUnavailable, match=r"cannot be embedded .*set PDF_FONT to an existing TrueType font"):
        load_fonts(ReportsSettings(pdf_font=bogus))


def test_worker_refuses_to_start_without_its_fonts(tmp_path: Path) -> None:
    done = run_python("-m", "services.reports.worker", env={"PDF_BOLD_FONT": str(tmp_path / "gone.ttf")})
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr
    assert err.startswith("reports worker cannot start: PDF font") and "gone.ttf is missing" in err
    assert "Traceback" not in err
