"""One pydantic ``TypeAdapter`` per type, not one per request, under quart-schema; a lean query-string check.

quart-schema (0.25) builds ``TypeAdapter(model)`` at every call that validates or
dumps: the query string and body of each request (``model_load``), each returned
dict or list and each headers dict (``model_dump``). Building one means building
pydantic's validator and serializer for the type; using one is what the request
needs. :func:`install` makes the name quart-schema calls hand out a cached adapter
(a ``TypeAdapter`` holds no per-call state), so each type is built once per process.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from quart import request
from quart_schema import conversion
from quart_schema.validation import QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, QuerystringValidationError


@lru_cache(maxsize=1024)
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def cached_type_adapter(kind: Any) -> TypeAdapter[Any]:
    """The one adapter of ``kind`` (a fresh one for a type that cannot be a cache key)."""
    try:
        return _adapter(kind)
    except TypeError:  # unhashable (a parametrised type holding a list, say)
        return TypeAdapter(kind)


def install() -> None:
    """Route quart-schema's ``TypeAdapter(...)`` calls through :func:`cached_type_adapter` (idempotent)."""
    conversion.TypeAdapter = cached_type_adapter  # type: ignore[attr-defined,assignment]


def validate_querystring(model_class: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """quart-schema's ``validate_querystring``, with the per-route work done once.

    The same contract: the handler gets ``query_args=<model>``, a ``key[]`` or a repeated
    key arrives as a list, a bad query string raises quart-schema's
    ``QuerystringValidationError`` (problem+json 422 through the kit's handler) and the
    OpenAPI document states the model. What differs is the cost: the adapter is built
    here, the arguments are read in one pass, and no app config is looked up per request
    (the kit never turns on quart-schema's casing conversion).
    """
    adapter = cached_type_adapter(model_class)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(func, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, model_class)

        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            given: dict[str, Any] = {}
            for key, values in request.args.lists():
                if key.endswith("[]"):
                    given[key.removesuffix("[]")] = values
                else:
                    given[key] = values if len(values) > 1 else values[0]
            try:
                model = adapter.validate_python(given)
            except (TypeError, ValidationError, ValueError) as error:
                raise QuerystringValidationError(error) from None
            return await func(*args, query_args=model, **kwargs)

        return wrapper

    return decorator
