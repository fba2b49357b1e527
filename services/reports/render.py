"""Turn a user's todos into a report file: CSV (csv module), JSON, or PDF (reportlab).

Pure functions of their input (no I/O; the PDF fonts are loaded once, at the
worker's start), so the worker runs them in a thread and tests can call them
directly. CSV and JSON are UTF-8; the PDF embeds TrueType fonts that cover the
scripts a todo may be written in (pdf_fonts.py, pdf_text.py). The summary in a file is computed from the todos in
that file, so the file is consistent with itself.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from services.reports.pdf_fonts import PdfFonts
from services.reports.pdf_text import ScriptText
from services.reports.schemas import ReportFormat, TodoItem

CSV_COLUMNS = ("id", "content", "is_finished", "created_at", "updated_at", "finished_at")
CONTENT_TYPES: dict[ReportFormat, str] = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
}
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ReportData:
    report_id: UUID
    owner: UUID
    generated_at: datetime
    todos: list[TodoItem]

    def summary(self) -> dict[str, Any]:
        finished = [t for t in self.todos if t.is_finished]
        durations = [(t.finished_at - t.created_at).total_seconds() for t in finished if t.finished_at]
        return {
            "total": len(self.todos),
            "open": len(self.todos) - len(finished),
            "finished": len(finished),
            "median_seconds_to_finish": statistics.median(durations) if durations else None,
        }

    def filename(self, extension: str) -> str:
        return f"quartet-report-{self.generated_at:%Y%m%d-%H%M%S}-{str(self.report_id)[:8]}.{extension}"


@dataclass(frozen=True)
class ReportFile:
    """A rendered report: what the worker stores and ``GET /reports/{id}/file`` answers."""

    content_type: str
    filename: str
    body: bytes


def render(format: ReportFormat, data: ReportData, fonts: PdfFonts | None = None) -> ReportFile:
    """The file in ``format``; a PDF needs the fonts (pdf_fonts.load_fonts), CSV and JSON do not."""
    renderers: dict[ReportFormat, Callable[[ReportData], bytes]] = {"csv": render_csv, "json": render_json}
    if fonts is not None:
        renderers["pdf"] = partial(render_pdf, fonts=fonts)
    elif format == "pdf":
        raise ValueError("a PDF report needs the PDF fonts")
    return ReportFile(CONTENT_TYPES[format], data.filename(format), renderers[format](data))


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _safe_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_csv(data: ReportData) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for t in data.todos:
        finished = str(t.is_finished).lower()
        times = [_iso(t.created_at), _iso(t.updated_at), _iso(t.finished_at)]
        writer.writerow([t.id, _safe_cell(t.content), finished, *times])
    return out.getvalue().encode()


def render_json(data: ReportData) -> bytes:
    body = {
        "id": str(data.report_id),
        "generated_at": data.generated_at.isoformat(),
        "summary": data.summary(),
        "todos": [t.model_dump(mode="json") for t in data.todos],
    }
    return json.dumps(body, ensure_ascii=False, indent=1).encode()


# PDF ----------------------------------------------------------------------------------------------

_MARGIN = 18 * mm


class _NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab has no type hints
    """Draws "Page n of m" on every page: pages are kept until the total is known."""

    def __init__(self, *args: Any, footer_font: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        self._footer_font = footer_font

    def showPage(self) -> None:  # reportlab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(self._footer_font, 8)
            self.setFillColor(colors.grey)
            self.drawRightString(A4[0] - _MARGIN, 10 * mm, f"Page {self._pageNumber} of {total}")
            self.drawString(_MARGIN, 10 * mm, "Quartet todo report")
            super().showPage()
        super().save()


def render_pdf(data: ReportData, fonts: PdfFonts) -> bytes:
    regular, bold = fonts.regular.names[0], fonts.bold.names[0]
    sample = getSampleStyleSheet()
    styles = {
        "Title": sample["Title"].clone("title", fontName=bold),
        "Heading2": sample["Heading2"].clone("heading", fontName=bold),
        "Normal": sample["Normal"].clone("normal", fontName=regular),
    }
    summary = data.summary()
    median = summary["median_seconds_to_finish"]
    story: list[Any] = [
        Paragraph("Quartet todo report", styles["Title"]),
        Paragraph(f"Generated {data.generated_at:%Y-%m-%d %H:%M:%S} UTC · report {data.report_id}", styles["Normal"]),
        Spacer(1, 6 * mm),
        Paragraph("Summary", styles["Heading2"]),
    ]
    summary_rows = [
        ["Todos", str(summary["total"])],
        ["Open", str(summary["open"])],
        ["Finished", str(summary["finished"])],
        ["Median time to finish", _duration(median) if median is not None else "-"],
    ]
    summary_table = Table(summary_rows, colWidths=[60 * mm, 40 * mm], hAlign="LEFT")
    summary_table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), regular),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
            ]
        )
    )
    story += [summary_table, Spacer(1, 6 * mm), Paragraph("Todos", styles["Heading2"])]
    if not data.todos:
        story.append(Paragraph("No todos.", styles["Normal"]))
    else:
        rows: list[list[Any]] = [["#", "Todo", "Status", "Created", "Finished"]]
        for number, t in enumerate(data.todos, 1):
            rows.append(
                [
                    str(number),
                    ScriptText(t.content, fonts.regular, size=8, leading=10),
                    "done" if t.is_finished else "open",
                    f"{t.created_at:%Y-%m-%d %H:%M}",
                    f"{t.finished_at:%Y-%m-%d %H:%M}" if t.finished_at else "",
                ]
            )
        table = LongTable(rows, colWidths=[12 * mm, 88 * mm, 14 * mm, 30 * mm, 30 * mm], repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), regular),
                    ("FONTNAME", (0, 0), (-1, 0), bold),
                    ("FONTSIZE", (0, 0), (-1, -1), 8),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title="Quartet todo report",
        author="Quartet",
        initialFontName=regular,  # else every page names Helvetica (unused and not embedded)
    )
    doc.build(story, canvasmaker=partial(_NumberedCanvas, footer_font=regular))
    return out.getvalue()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
