"""An automated accessibility check of a page: axe-core (npm, pinned in tests/browser/package.json).

axe-core is installed once with ``npm ci`` into tests/browser/node_modules (git-ignored) when it
is missing, so a fresh machine gets it from ``make test`` alone (scripts/bootstrap.py installs
Debian's npm); afterwards it runs offline. It is evaluated in the page through the DevTools
protocol, which the pages' strict CSP does not govern, so the pages stay as users get them.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from playwright.async_api import Page

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0, 2.1 and 2.2, levels A and AA (axe's rule tags).
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING = {"serious", "critical"}


@cache
def axe_source() -> str:
    if not AXE.exists():
        npm = shutil.which("npm")
        assert npm, "the accessibility check needs npm (Debian's npm; `make test` installs it via scripts/bootstrap.py)"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=HERE,
            check=True,
            timeout=300,
        )
    return AXE.read_text(encoding="utf-8")


async def violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical WCAG 2.2 AA violations on ``page`` as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(axe_source() + "\n;true")
    found: list[dict[str, Any]] = await page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, { runOnly: { type: 'tag', values: tags } });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary),
            }));
        }""",
        WCAG_AA,
    )
    return [v for v in found if v["impact"] in BLOCKING]


async def assert_accessible(page: Page, name: str) -> None:
    """0 serious or critical violations on ``page`` (``name`` says which, in the failure)."""
    found = await violations(page)
    assert found == [], f"{name}: {found}"
