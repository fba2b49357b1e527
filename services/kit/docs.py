"""A ``/docs`` page that renders ``/openapi.json`` with no CDN and no third-party code.

The page is one self-contained HTML file with a little inline JavaScript; the
gateway serves the same page over its merged spec.
"""

from __future__ import annotations

from importlib.resources import files


def docs_html(title: str) -> str:
    """The docs page, titled ``title``; it fetches ``openapi.json`` relative to itself."""
    template = files("services.kit").joinpath("docs.html").read_text(encoding="utf-8")
    safe = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return template.replace("{{title}}", safe)
