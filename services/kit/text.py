"""Text the suite accepts, written once as JSON Schema patterns so the OpenAPI document says exactly what passes.

A field's ``pattern`` is both documentation and the first check (pydantic applies
it); validators that normalise (trim, NFKC) must accept everything the pattern
accepts, or a schema-valid request would be refused.

The classes are spelled out instead of ``\\s``: ECMA-262 (JSON Schema) and Python
disagree on what ``\\s`` means (U+FEFF, U+0085).
"""

from __future__ import annotations

import unicodedata

# Unicode category Cc: C0 controls, DEL, C1 controls.
CONTROL = r"\x00-\x1f\x7f-\x9f"
# Cc without tab, line feed and carriage return (allowed in free text).
CONTROL_EXCEPT_LAYOUT = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
# Whitespace that is not a control character.
BLANK = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# What Python's str.strip() removes, less the control characters it also removes (refused here).
SPACE = r"\t\n\r" + BLANK

NO_CONTROL = f"^[^{CONTROL}]*$"
"""No control character at all (names, emails, identifiers)."""

FREE_TEXT = f"^[^{CONTROL_EXCEPT_LAYOUT}]*[^{CONTROL_EXCEPT_LAYOUT}{SPACE}][^{CONTROL_EXCEPT_LAYOUT}]*$"
"""Free text: tab and line breaks allowed, other controls not, and not only whitespace."""


def has_control_characters(value: str, *, allow_layout: bool = False) -> bool:
    """Any control character (Cc) or lone surrogate (Cs); with ``allow_layout``, tab, LF and CR pass.

    PostgreSQL refuses NUL in text and cannot encode a lone surrogate; the rest only
    garble logs and pages.
    """
    return any(unicodedata.category(ch) in ("Cc", "Cs") and not (allow_layout and ch in "\t\n\r") for ch in value)
