"""The HTTP contract in OpenAPI: every status a route can answer, documented once, here.

quart-schema documents what a handler declares (request, query and response
models). Everything else a route can answer comes from the kit and is added to
the generated document by :class:`ContractProvider`, by rule:

- every route: 429 (the gateway's rate limits), 503 (database or issuer keys
  unreachable, draining), 504 (past ``REQUEST_TIMEOUT_SECONDS``);
- a route guarded by :func:`~services.kit.security.require_scope`: 401 and 403,
  and the bearer security requirement;
- a route with a validated body or query string: 422 (``errors`` lists what is
  wrong); a JSON body also 400 (not JSON) and 415 (not ``application/json``);
- a method that carries a body (POST, PUT, PATCH, DELETE): 413;
- a path with parameters: 404 (no such resource, or a malformed id);
- whatever the handler declares next to itself with :func:`responses`
  (404 not found, 409 conflict, 412 stale ``If-Match``, a 204 without body...).

Every error is ``application/problem+json`` with the :class:`ProblemDetails`
schema, except on the OAuth endpoints (:func:`oauth_errors`), whose 400 and 401
are RFC 6749 ``{error, error_description}``.

The module runs past 300 lines because it is the one place the document's rules live:
the error schemas, the rules above and the OpenAPI groups (tags) and scope texts that
the gateway merges; split, the rules would be read in several files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from quart_schema import DataSource
from quart_schema.openapi import QUART_SCHEMA_OPERATION_ID_ATTRIBUTE, OpenAPIProvider
from quart_schema.validation import QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, QUART_SCHEMA_REQUEST_ATTRIBUTE
from werkzeug.routing import BaseConverter, Rule, UUIDConverter

from services.kit.problem import PROBLEM_CONTENT_TYPE, status_title

# Set on a handler by require_scope (the scopes it needs), responses() and oauth_errors().
SCOPES_ATTRIBUTE = "_quartet_scopes"
# The OpenAPI security scheme of bearer tokens; a guarded operation requires it with its scopes.
BEARER_SCHEME_NAME = "bearer"
RESPONSES_ATTRIBUTE = "_quartet_responses"
OAUTH_ERRORS_ATTRIBUTE = "_quartet_oauth_errors"
LINKS_ATTRIBUTE = "_quartet_links"

BODY_METHODS = frozenset({"post", "put", "patch", "delete"})
# Answers any route may give, whatever it does.
SHARED_STATUSES: dict[int, str] = {
    429: "Too many requests: a rate limit at the gateway (see Retry-After).",
    503: "A dependency (database, the issuer's keys) is unavailable, or the instance is draining (see Retry-After).",
    504: "The request took longer than the service allows and was abandoned.",
}
_RULE_STATUSES: dict[int, str] = {
    400: "The body is not valid JSON.",
    401: "No bearer token, or it is invalid or expired (see WWW-Authenticate).",
    403: "The token lacks a required scope, or does not belong to a user.",
    404: "No such resource (or it is not yours).",
    413: "The request body is larger than the service accepts.",
    415: "The body is not application/json.",
    422: "The request does not match its schema; `errors` says where.",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "RFC 6750 challenge."}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    503: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
}

F = TypeVar("F", bound=Callable[..., Any])


class ValidationIssue(BaseModel):
    """One thing wrong with the input (never the input itself)."""

    loc: list[str | int] = Field(description="Where: body/query field path.")
    field: str = Field(description="The field's dotted name, for showing beside it.")
    msg: str = Field(description="What is wrong, in words (never a pattern or the input).")
    type: str = Field(description="pydantic's error type, for programs.")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error of the suite is answered."""

    model_config = ConfigDict(title="Problem")

    type: str = Field(description='A URI naming the kind of problem; "about:blank" when the status says it all.')
    title: str = Field(description="The status's reason phrase.")
    status: int = Field(ge=100, le=599)
    detail: str = Field(description="What went wrong, for a human; never echoes secrets.")
    request_id: str = Field(description="The X-Request-ID of this exchange; quote it when reporting a problem.")
    errors: list[ValidationIssue] = Field(default_factory=list, description="For 422: each invalid field.")


class OAuthError(BaseModel):
    """RFC 6749 §5.2 error response (token, revocation and introspection endpoints)."""

    error: str = Field(description="invalid_request, invalid_client, invalid_grant, unsupported_grant_type...")
    error_description: str | None = None


def _schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    schema.pop("$defs", None)
    schema["title"] = name
    return schema


def components() -> dict[str, dict[str, Any]]:
    """The schemas every document refers to (``Problem``, ``ValidationIssue``, ``OAuthError``)."""
    return {
        "Problem": _schema(ProblemDetails, "Problem"),
        "ValidationIssue": _schema(ValidationIssue, "ValidationIssue"),
        "OAuthError": _schema(OAuthError, "OAuthError"),
    }


def responses(
    *statuses: int,
    describe: Mapping[int, str] | None = None,
    content: Mapping[int, Mapping[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Declare what a handler answers beyond the kit's rules, next to the handler.

    ``@responses(404, 412, describe={412: "If-Match is stale"})``. An error status
    (4xx/5xx) is documented as problem+json; any other status has no body unless
    ``content`` gives its media types (``{200: {"text/csv": {"schema": {...}}}}``).
    """
    described = dict(describe or {})
    media = dict(content or {})

    def decorate(handler: F) -> F:
        declared: dict[int, tuple[str | None, Mapping[str, Any] | None]] = dict(
            getattr(handler, RESPONSES_ATTRIBUTE, {})
        )
        for status in {*statuses, *described, *media}:
            declared[status] = (described.get(status), media.get(status))
        setattr(handler, RESPONSES_ATTRIBUTE, declared)
        return handler

    return decorate


def links(status: int, **targets: str) -> Callable[[F], F]:
    """OpenAPI links from this handler's ``status`` response to the operations that use its ``id``.

    ``@links(201, get_todo="todo_id", delete_todo="todo_id")``: each keyword names a handler
    (its operation id) and the path parameter that takes the response body's ``id``.
    Clients and stateful fuzzers (schemathesis) follow them.
    """

    def decorate(handler: F) -> F:
        declared: dict[int, dict[str, str]] = dict(getattr(handler, LINKS_ATTRIBUTE, {}))
        declared[status] = {**declared.get(status, {}), **targets}
        setattr(handler, LINKS_ATTRIBUTE, declared)
        return handler

    return decorate


def oauth_errors(handler: F) -> F:
    """Mark an RFC 6749 endpoint: its 400 and 401 are ``{error, error_description}``, not problems."""
    setattr(handler, OAUTH_ERRORS_ATTRIBUTE, True)
    return handler


def mark_scopes(handler: F, scopes: Iterable[str]) -> F:
    """Record the scopes a guarded handler needs (``require_scope`` calls it)."""
    setattr(handler, SCOPES_ATTRIBUTE, tuple(scopes))
    return handler


def problem_response(description: str, status: int) -> dict[str, Any]:
    """An OpenAPI response object for a problem+json answer."""
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def add_missing(operation: dict[str, Any], status: int, response: dict[str, Any]) -> None:
    """Document ``status`` on ``operation`` unless the handler already did."""
    found = operation.setdefault("responses", {})
    if status not in found and str(status) not in found:
        found[status] = response


# What each scope lets an app do, in words (the OAuth2 scheme of /docs lists them).
SCOPE_DESCRIPTIONS: dict[str, str] = {
    "profile": "See your name and email, and delete your account.",
    "todos:read": "See your todos.",
    "todos:write": "Add, change, finish and delete your todos.",
    "reports:read": "See your statistics and your reports, and download them.",
    "reports:write": "Request new reports of your todos.",
    "todos:read:any": "Services only: read any user's todos (the report worker).",
}


def _markdown(text: str) -> str:
    # Docstrings are reStructuredText (``code``); OpenAPI renders CommonMark (`code`).
    return text.replace("``", "`")


class ContractProvider(OpenAPIProvider):
    """quart-schema's document, completed with every status the kit's rules say a route can answer.

    Every operation is tagged with the service's name, so the merged document at the
    gateway groups the operations by service.
    """

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        document["components"]["schemas"].update(components())
        description = _markdown(document.get("info", {}).get("description") or "")
        document["tags"] = [{"name": self._service_tag(), "description": description}]
        return document

    def _service_tag(self) -> str:
        return str(self._app.extensions["quartet"].settings.service_name)

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str | None:
        # The handler's name: what links() refers to (each handler here serves one method).
        return getattr(func, QUART_SCHEMA_OPERATION_ID_ATTRIBUTE, func.__name__)

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, UUIDConverter):
            parameter["schema"] = {"type": "string", "format": "uuid"}
        return parameter

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, found_components = super().build_paths(rule)
        handler = self._app.view_functions[rule.endpoint]
        for path_item in paths.values():
            for method, operation in list(path_item.items()):
                done = complete(operation, handler, method, has_path_parameters=bool(rule.arguments))
                for text in ("summary", "description"):
                    if done.get(text):
                        done[text] = _markdown(done[text])
                done.setdefault("tags", [self._service_tag()])
                path_item[method] = done
        return paths, found_components


def complete(operation: dict[str, Any], handler: Any, method: str, *, has_path_parameters: bool) -> dict[str, Any]:
    """A copy of ``operation`` with every status ``handler`` can answer."""
    operation = {**operation, "responses": dict(operation.get("responses", {}))}
    oauth = getattr(handler, OAUTH_ERRORS_ATTRIBUTE, False)
    statuses: dict[int, str] = {}
    scopes = getattr(handler, SCOPES_ATTRIBUTE, None)
    if scopes is not None:
        statuses[401] = _RULE_STATUSES[401]
        statuses[403] = _RULE_STATUSES[403]
        operation.setdefault("security", [{BEARER_SCHEME_NAME: list(scopes)}])
        if scopes:
            needs = "Needs the scope" + ("s " if len(scopes) > 1 else " ") + " ".join(f"`{s}`" for s in scopes) + "."
            operation["description"] = (operation.get("description", "") + "\n\n" + needs).strip()
    request_schema = getattr(handler, QUART_SCHEMA_REQUEST_ATTRIBUTE, None)
    if request_schema is not None and "requestBody" in operation:
        operation["requestBody"] = {**operation["requestBody"], "required": True}
    if not oauth and (request_schema is not None or getattr(handler, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, None)):
        statuses[422] = _RULE_STATUSES[422]
    if not oauth and request_schema is not None and request_schema[1] == DataSource.JSON:
        statuses[400] = _RULE_STATUSES[400]
        statuses[415] = _RULE_STATUSES[415]
    if oauth:
        statuses[400] = "RFC 6749 error: invalid_request, invalid_grant, unsupported_grant_type, invalid_scope..."
        statuses[401] = "RFC 6749 error: invalid_client (unknown client or wrong secret)."
    if method.lower() in BODY_METHODS:
        statuses[413] = _RULE_STATUSES[413]
    if has_path_parameters:
        statuses[404] = _RULE_STATUSES[404]
    statuses.update(SHARED_STATUSES)
    declared: dict[int, tuple[str | None, Mapping[str, Any] | None]] = getattr(handler, RESPONSES_ATTRIBUTE, {})
    for status, (description, media) in declared.items():
        if media is not None or status < 400:
            add_missing(operation, status, _plain(description or status_title(status), media))
        else:
            statuses[status] = description or statuses.get(status) or status_title(status)
    for status, description in statuses.items():
        if oauth and status in (400, 401):
            add_missing(operation, status, _oauth(description))
        else:
            add_missing(operation, status, problem_response(description, status))
    _add_links(operation, getattr(handler, LINKS_ATTRIBUTE, {}))
    operation["responses"] = dict(sorted(operation["responses"].items(), key=lambda item: int(item[0])))
    return operation


def _add_links(operation: dict[str, Any], declared: Mapping[int, Mapping[str, str]]) -> None:
    for status, targets in declared.items():
        key = status if status in operation["responses"] else str(status)
        response = operation["responses"].get(key)
        if response is None:
            continue
        found = {
            target: {"operationId": target, "parameters": {param: "$response.body#/id"}}
            for target, param in targets.items()
        }
        operation["responses"][key] = {**response, "links": {**response.get("links", {}), **found}}


def _plain(description: str, media: Mapping[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if media:
        response["content"] = dict(media)
    return response


def _oauth(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}},
    }
