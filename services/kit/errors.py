"""One error shape: every error a kit app answers is problem+json (RFC 9457), rendered here once.

Handlers raise :class:`~services.kit.problem.Problem`; schema errors, HTTP errors
(404, 405 with ``Allow``, 413), timeouts of a dependency, an unreachable database,
bytes that are not UTF-8, values PostgreSQL refuses and anything unexpected are
turned into the same body. The input is never echoed back.
"""

from __future__ import annotations

from typing import Any, cast

import asyncpg
from quart import Quart, Response, current_app, request
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from services.kit import field_errors
from services.kit.context import kit_of, request_id
from services.kit.db import UNAVAILABLE_ERRORS
from services.kit.logging import get_logger
from services.kit.problem import PROBLEM_CONTENT_TYPE, Problem, problem_body

log = get_logger("kit.app")


def problem_response(problem: Problem) -> Response:
    body = problem_body(
        problem.status,
        request_id(),
        title=problem.title,
        detail=problem.detail,
        type=problem.type,
        errors=problem.errors,
    )
    response = current_app.json.response(body)
    response.status_code = problem.status
    response.content_type = PROBLEM_CONTENT_TYPE
    response.headers.update(problem.headers)
    return cast(Response, response)


def install_error_handlers(app: Quart) -> None:
    """Render every error of ``app`` as problem+json."""

    @app.errorhandler(Problem)
    async def on_problem(problem: Problem) -> Response:
        return problem_response(problem)

    @app.errorhandler(RequestSchemaValidationError)
    async def on_invalid(error: RequestSchemaValidationError) -> Response:
        errors = _validation_errors(error)
        return problem_response(Problem(422, field_errors.detail(errors), errors=errors))

    @app.errorhandler(HTTPException)
    async def on_http_error(error: HTTPException) -> Response:
        status = error.code or 500
        headers: dict[str, str] = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        detail = {
            400: "the request is malformed (a body that is not JSON, say)",
            404: "no such resource",
            405: f"{request.method} is not allowed here",
            413: f"the request body is larger than {kit_of(current_app).settings.max_body_bytes} bytes",
        }.get(status, error.name)
        return problem_response(Problem(status, detail, headers=headers))

    @app.errorhandler(TimeoutError)
    async def on_timeout(error: TimeoutError) -> Response:
        log.warning("dependency timed out", error_type=type(error).__name__)
        return problem_response(Problem(503, "a dependency did not answer in time", headers={"Retry-After": "1"}))

    for error_type in UNAVAILABLE_ERRORS:

        @app.errorhandler(error_type)
        async def on_unavailable(error: Exception) -> Response:
            log.warning("database unavailable", error_type=type(error).__name__, error=str(error))
            return problem_response(
                Problem(503, "the service is temporarily unavailable", headers={"Retry-After": "1"})
            )

    @app.errorhandler(UnicodeDecodeError)
    async def on_undecodable(error: UnicodeDecodeError) -> Response:
        # Quart decodes a JSON body as UTF-8 before parsing it; bytes that are not UTF-8 are the client's fault.
        return problem_response(Problem(400, "the request body is not valid UTF-8"))

    @app.errorhandler(asyncpg.DataError)
    async def on_bad_value(error: asyncpg.DataError) -> Response:
        # A value the schema let through but PostgreSQL cannot store (a NUL byte, say): the input's fault.
        log.info("value refused by the database", error_type=type(error).__name__)
        return problem_response(Problem(422, "the request holds a value that cannot be stored"))

    @app.errorhandler(Exception)
    async def on_unhandled(error: Exception) -> Response:
        log.error("unhandled error", exc_info=error)
        return problem_response(Problem(500, "an internal error occurred; quote the request id when reporting it"))


def _validation_errors(error: RequestSchemaValidationError) -> list[dict[str, Any]]:
    inner = error.validation_error
    errors_method = getattr(inner, "errors", None)
    if callable(errors_method):
        # Never echo the input back: it may hold a password or a token (nor the context's pattern).
        return field_errors.field_errors(errors_method(include_url=False, include_input=False))
    return [{"loc": [], "field": "the request", "msg": "the request is not valid", "type": "invalid"}]
