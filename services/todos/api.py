"""Routes of the todos service: validate → authorise → one transaction (change + event) → respond."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from quart import Blueprint, Response, request
from quart_schema import document_response, validate_request, validate_response

from services.kit import idempotency
from services.kit.app import current_db
from services.kit.cache import CachedPage
from services.kit.contract import links, responses
from services.kit.db import Connection
from services.kit.idempotency import IdempotentRequest
from services.kit.problem import Problem
from services.kit.security import current_caller, current_user_id, insufficient_scope, require_scope
from services.kit.type_adapters import validate_querystring
from services.todos import events, page_cache, store
from services.todos.cursor import BadCursor
from services.todos.schemas import Todo, TodoCreate, TodoListQuery, TodoPage, TodoPatch
from services.todos.state import todos_state

bp = Blueprint("todos", __name__)

_STATUS_FILTER = {"all": None, "open": False, "finished": True}
_JSON: TypeAdapter[Any] = TypeAdapter(Any)  # renders what it is given (datetimes, UUIDs) by type


def _todo(row: store.TodoRow) -> Todo:
    return Todo.model_validate(row.public())


def _if_match_version() -> int | None:
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = re.fullmatch(r'\s*"(\d{1,9})"\s*', header)
    if match is None:
        return -1  # matches no version: the precondition fails
    return int(match.group(1))


@bp.get("/todos")
@require_scope()  # todos:read for your own list, todos:read:any for ?owner= (checked below)
@validate_querystring(TodoListQuery)
@document_response(TodoPage)
@responses(400, describe={400: "The cursor was not made for this listing."})
async def list_todos(query_args: TodoListQuery) -> Response:
    """The caller's todos, newest first, one keyset page at a time."""
    needed = "todos:read:any" if query_args.owner is not None else "todos:read"
    if not current_caller().has_scopes(needed):
        raise insufficient_scope(needed)
    owner = query_args.owner or current_user_id()
    scope = f"{owner}:{query_args.status}"
    try:
        after = todos_state().cursors.decode(query_args.cursor, scope) if query_args.cursor else None
    except BadCursor:
        raise Problem(400, "the cursor is not valid for this listing") from None

    async def load() -> bytes:
        async with current_db().connection() as conn:
            rows = await store.list_todos(
                conn, owner, after=after, is_finished=_STATUS_FILTER[query_args.status], limit=query_args.limit + 1
            )
        page, more = rows[: query_args.limit], len(rows) > query_args.limit
        next_cursor = todos_state().cursors.encode(page[-1].position, scope) if more else None
        # The hot path: rows from our own database need no validation, nor a model each: pydantic's
        # JSON serializer renders the plain dicts exactly as it renders a TodoPage (field order,
        # RFC 3339 times with Z, UUID strings), at a third of the cost of building the models first.
        return _JSON.dump_json({"items": [r.public() for r in page], "next_cursor": next_cursor})

    if after is None:  # the first page: from the cache every instance shares (docs/caching.md)
        cached = await page_cache.first_page(todos_state().pages, owner, query_args.status, query_args.limit, load)
    else:
        cached = CachedPage.of(await load())
    return page_cache.respond(cached)


@bp.post("/todos")
@require_scope("todos:write")
@validate_request(TodoCreate)
@validate_response(Todo, 201)
@links(201, get_todo="todo_id", patch_todo="todo_id", finish_todo="todo_id", delete_todo="todo_id")
@responses(
    400,
    409,
    describe={
        400: "The body is not JSON, or Idempotency-Key is not 1..200 visible ASCII characters.",
        403: "The account was deleted, or the token does not belong to a user.",
        409: "The caller already has MAX_TODOS_PER_USER todos (the limit is in `detail`), "
        "or a request with this Idempotency-Key is still in progress (Retry-After).",
        422: "The body does not match the schema, or an Idempotency-Key was reused with another body.",
    },
)
async def create_todo(data: TodoCreate) -> tuple[Todo, int, dict[str, str]]:
    """Create a todo. With ``Idempotency-Key``, a retry replays the first response."""
    owner = current_user_id()
    idem = IdempotentRequest.of(request.headers.get(idempotency.HEADER), data.content)
    async with current_db().transaction() as conn:
        await _refuse_deleted(conn, owner)
        if (replay := await idem.claim(conn, store, owner, todos_state().settings.idempotency_ttl_hours)) is not None:
            return Todo.model_validate(replay.body), replay.status, replay.headers
        row = await _create(conn, owner, data.content)
        await events.todo_created(conn, owner, row)
        todo, location = _todo(row), f"/todos/{row.id}"
        await idem.remember(conn, store, owner, 201, todo.model_dump(mode="json"), location=location)
    await todos_state().pages.invalidate(str(owner))  # after the commit, before the answer
    return todo, 201, {"Location": location, "ETag": row.etag}


async def _create(conn: Connection, owner: UUID, content: str) -> store.TodoRow:
    limit = todos_state().settings.max_todos_per_user
    row = await store.create_todo(conn, owner, content, limit)
    if row is None:
        raise Problem(409, f"you already have {limit} todos, the most one user may have; delete some to add more")
    return row


async def _refuse_deleted(conn: Connection, owner: UUID) -> None:
    if not await store.lock_owner_for_create(conn, owner):
        raise Problem(403, "this account has been deleted")


@bp.get("/todos/<uuid:todo_id>")
@require_scope("todos:read")
@validate_response(Todo)
async def get_todo(todo_id: UUID) -> tuple[Todo, int, dict[str, str]]:
    """One todo, with its ETag."""
    async with current_db().connection() as conn:
        row = await store.get_todo(conn, current_user_id(), todo_id)
    if row is None:
        raise Problem(404, "todo not found")
    return _todo(row), 200, {"ETag": row.etag}


@bp.patch("/todos/<uuid:todo_id>")
@require_scope("todos:write")
@validate_request(TodoPatch)
@validate_response(Todo)
@responses(412, describe={412: "If-Match names an older version of the todo."})
async def patch_todo(todo_id: UUID, data: TodoPatch) -> tuple[Todo, int, dict[str, str]]:
    """Change content and/or is_finished; ``If-Match`` makes it conditional (412 when stale)."""
    owner = current_user_id()
    expected = _if_match_version()
    if data.content is None and data.is_finished is None:  # nothing to change: no new version, no event
        async with current_db().connection() as conn:
            current = await store.get_todo(conn, owner, todo_id)
        if current is None:
            raise Problem(404, "todo not found")
        return _todo(current), 200, {"ETag": current.etag}
    async with current_db().transaction() as conn:
        row = await store.update_todo(
            conn, owner, todo_id, content=data.content, is_finished=data.is_finished, expected_version=expected
        )
        if row is None:
            if expected is not None and await store.get_todo(conn, owner, todo_id) is not None:
                raise Problem(412, "the todo changed since you read it; fetch it again")
            raise Problem(404, "todo not found")
        await events.todo_updated(conn, owner, row)
    await todos_state().pages.invalidate(str(owner))
    return _todo(row), 200, {"ETag": row.etag}


@bp.put("/todos/<uuid:todo_id>/finish")
@require_scope("todos:write")
@validate_response(Todo)
async def finish_todo(todo_id: UUID) -> tuple[Todo, int, dict[str, str]]:
    """Mark a todo finished (finishing a finished todo changes nothing)."""
    owner = current_user_id()
    async with current_db().transaction() as conn:
        row = await store.finish_todo(conn, owner, todo_id)
        if row is not None:
            await events.todo_finished(conn, owner, row)
        else:
            row = await store.get_todo(conn, owner, todo_id)
            if row is None:
                raise Problem(404, "todo not found")
    await todos_state().pages.invalidate(str(owner))
    return _todo(row), 200, {"ETag": row.etag}


@bp.delete("/todos/<uuid:todo_id>")
@require_scope("todos:write")
@responses(204, describe={204: "Deleted."})
async def delete_todo(todo_id: UUID) -> tuple[str, int]:
    """Delete a todo."""
    owner = current_user_id()
    async with current_db().transaction() as conn:
        row = await store.delete_todo(conn, owner, todo_id)
        if row is None:
            raise Problem(404, "todo not found")
        await events.todo_deleted(conn, owner, row)
    await todos_state().pages.invalidate(str(owner))
    return "", 204
