"""The renderers on their own (pure functions): CSV round-trips any content, PDFs survive odd text."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pypdf
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reports.pdf_fonts import PdfFonts
from services.reports.render import ReportData, render
from services.reports.schemas import TodoItem

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def todo(content: str, finished_after: float | None = None) -> TodoItem:
    finished = NOW + timedelta(seconds=finished_after) if finished_after is not None else None
    return TodoItem(
        id=uuid.uuid4(),
        content=content,
        is_finished=finished is not None,
        created_at=NOW,
        updated_at=finished or NOW,
        finished_at=finished,
    )


def report(todos: list[TodoItem]) -> ReportData:
    return ReportData(uuid.uuid4(), uuid.uuid4(), NOW, todos)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=200), max_size=8))
def test_csv_round_trips_any_content(contents: list[str]) -> None:
    todos = [todo(c) for c in contents]
    file = render("csv", report(todos))
    rows = list(csv.DictReader(io.StringIO(file.body.decode(), newline="")))
    assert [r["id"] for r in rows] == [str(t.id) for t in todos]
    for row, content in zip(rows, contents, strict=True):
        formula = content.startswith(("=", "+", "-", "@", "\t", "\r"))
        assert row["content"] == ("'" + content if formula else content)


def test_pdf_survives_markup_control_characters_and_long_text(pdf_fonts: PdfFonts) -> None:
    contents = ["<b>not bold</b> & <unclosed", "tab\there\x00nul\x07bell", "x" * 1000, "naïve café ✓ 日本"]
    file = render("pdf", report([todo(c, finished_after=90) for c in contents]), pdf_fonts)
    assert file.content_type == "application/pdf" and file.filename.endswith(".pdf")
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(file.body)).pages)
    assert "<b>not bold</b> & <unclosed" in text
    assert "tab here nul bell" in text and "naïve café ✓ 日本" in text
    assert "Median time to finish" in text and "1 min 30 s" in text


def test_empty_reports_render_in_every_format(pdf_fonts: PdfFonts) -> None:
    data = report([])
    assert render("csv", data).body.decode().strip() == "id,content,is_finished,created_at,updated_at,finished_at"
    body = json.loads(render("json", data).body)
    assert body["todos"] == [] and body["summary"]["total"] == 0 and body["summary"]["median_seconds_to_finish"] is None
    text = pypdf.PdfReader(io.BytesIO(render("pdf", data, pdf_fonts).body)).pages[0].extract_text()
    assert "No todos." in text and "Page 1 of 1" in text
