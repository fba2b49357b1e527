#!/usr/bin/env python3
"""Write a sample PDF report with todos in many scripts, for docs/images (see docs/reports.md).

.venv/bin/python -m scripts.report_sample /tmp/report-scripts.pdf
pdftoppm -png -r 90 -singlefile /tmp/report-scripts.pdf docs/images/report-pdf-scripts
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.reports.config import ReportsSettings
from services.reports.pdf_fonts import load_fonts
from services.reports.render import ReportData, render
from services.reports.schemas import TodoItem

CONTENTS = [
    "Crème brûlée für Zoë, naïve façade",
    "Купить молоко и хлеб",
    "Αγοράστε γάλα σήμερα",
    "买牛奶和面包",
    "日本語のタスクを終える",
    "우유와 빵 사기",
    "اشترِ الحليب والخبز لا تنسَ",
    "לקנות חלב ולחם",
    "שלום, עולם! 12 ימים",
    "Buy חלב today, then 3 pages.",
    "A long todo wraps inside its cell and the table goes on to the next page when it must; " * 3,
    " ".join(["רשימה ארוכה של דברים לעשות לפני סוף השבוע"] * 4),
    "長いタスクの説明は折り返されます。" * 6,
]


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "report-scripts.pdf")
    now = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    todos = [
        TodoItem(
            id=uuid.uuid4(),
            content=content,
            is_finished=n % 3 == 0,
            created_at=now - timedelta(hours=n + 2),
            updated_at=now,
            finished_at=now - timedelta(hours=1) if n % 3 == 0 else None,
        )
        for n, content in enumerate(CONTENTS)
    ]
    data = ReportData(uuid.UUID(int=0x5A), uuid.uuid4(), now, todos)
    out.write_bytes(render("pdf", data, load_fonts(ReportsSettings())).body)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
