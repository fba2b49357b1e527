"""Validation errors in words: what a person reads in ``detail`` and ``errors`` of a 422.

pydantic reports a failed ``pattern`` as "String should match pattern '^[^\\x00-…'"; a
person needs "content must not be only whitespace". Each error becomes
``{"loc", "field", "msg", "type"}`` where ``msg`` is a sentence fragment naming the
field (``field`` is the dotted location, ``loc`` the raw one). Schemas that know better
raise ``ValueError("content must not be ...")`` in a ``mode="before"`` validator,
which runs before the pattern and whose message is kept.
The input and the constraint's internals (the pattern) are never echoed back.

Used by the kit's 422 handler and by server-rendered forms (auth's sign-in and
registration pages), so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# The containers quart-schema puts in front of a field's location.
_CONTAINERS = {"body", "query", "querystring", "headers", "form"}


def field_name(loc: Sequence[Any]) -> str:
    """The dotted location of a field, without quart-schema's container prefix (``"items.0.content"``)."""
    parts = [str(part) for part in loc if str(part) not in _CONTAINERS]
    return ".".join(parts) or "the request"


def _chars(n: Any) -> str:
    return "1 character" if n == 1 else f"{n} characters"


def message(error: Mapping[str, Any]) -> str:
    """One pydantic error (from ``errors(include_context=True)``) in words, starting with the field's name."""
    field = field_name(error.get("loc", ()))
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    text = str(error.get("msg", ""))
    if kind == "missing":
        return f"{field} is required"
    if kind == "extra_forbidden":
        return f"{field} is not a field this request accepts"
    if kind == "string_too_short":
        return (
            f"{field} must not be empty"
            if ctx.get("min_length") == 1
            else f"{field} must be at least {_chars(ctx.get('min_length'))} long"
        )
    if kind == "string_too_long":
        return f"{field} must be at most {_chars(ctx.get('max_length'))} long"
    if kind == "string_pattern_mismatch":
        return f"{field} contains a character that is not allowed here"
    if kind in {"string_type", "int_type", "int_parsing", "bool_type", "bool_parsing", "uuid_parsing", "uuid_type"}:
        expected = {"string": "text", "int": "a whole number", "bool": "true or false", "uuid": "a UUID"}
        return f"{field} must be {expected[kind.split('_')[0]]}"
    if kind in {"greater_than_equal", "less_than_equal"}:
        bound = ctx.get("ge", ctx.get("le"))
        return f"{field} must be {'at least' if kind == 'greater_than_equal' else 'at most'} {bound}"
    if kind == "literal_error":
        return f"{field} must be one of {ctx.get('expected', 'the documented values')}"
    if kind == "json_invalid":
        return "the body is not valid JSON"
    if kind == "model_type" or kind == "dict_type":
        return f"{field} must be a JSON object"
    # value_error / custom errors: the schema's own words (pydantic prefixes "Value error, ").
    text = text.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return text if text.startswith(field) or not text else f"{field}: {text[0].lower()}{text[1:]}"


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``errors`` member of a 422: each invalid field with its message; no input, no pattern."""
    return [
        {
            "loc": list(e.get("loc", ())),
            "field": field_name(e.get("loc", ())),
            "msg": message(e),
            "type": e.get("type", ""),
        }
        for e in errors
    ]


def detail(errors: Sequence[Mapping[str, Any]]) -> str:
    """The ``detail`` of a 422: one sentence that says what is wrong."""
    if not errors:
        return "The request is not valid."
    msgs = [str(e["msg"]) for e in errors]
    if len(msgs) == 1:
        return f"{msgs[0][0].upper()}{msgs[0][1:]}."
    return f"The request has {len(msgs)} problems: {'; '.join(msgs)}."
