"""Routes of the todos service: validate → authorise → one transaction (change + event) → respond."""

from __future__ import annotations

import hashlib
import re
from uuid import UUID

from quart import Blueprint, Response, request
from quart_schema import document_response, validate_querystring, validate_request, validate_response

from services.kit.app import current_db, current_kit
from services.kit.contract import links, responses
from services.kit.db import Connection
from services.kit.events import outbox
from services.kit.problem import Problem
from services.kit.security import current_caller, current_user_id, insufficient_scope, require_scope
from services.todos import store
from services.todos.config import TodosSettings
from services.todos.cursor import BadCursor, CursorCodec
from services.todos.schemas import Todo, TodoCreate, TodoListQuery, TodoPage, TodoPatch

bp = Blueprint("todos", __name__)

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_STATUS_FILTER = {"all": None, "open": False, "finished": True}


def _settings() -> TodosSettings:
    settings = current_kit().settings
    assert isinstance(settings, TodosSettings)
    return settings


def _cursors() -> CursorCodec:
    codec = current_kit().extras.get("cursor_codec")
    if codec is None:
        codec = current_kit().extras["cursor_codec"] = CursorCodec(
            _settings().cursor_secret.get_secret_value().encode()
        )
    assert isinstance(codec, CursorCodec)
    return codec


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
        after = _cursors().decode(query_args.cursor, scope) if query_args.cursor else None
    except BadCursor:
        raise Problem(400, "the cursor is not valid for this listing") from None
    async with current_db().connection() as conn:
        rows = await store.list_todos(
            conn, owner, after=after, is_finished=_STATUS_FILTER[query_args.status], limit=query_args.limit + 1
        )
    page, more = rows[: query_args.limit], len(rows) > query_args.limit
    next_cursor = _cursors().encode(page[-1].position, scope) if more else None
    # The hot path: rows from our own database need no validation, and pydantic's JSON
    # serializer is several times faster than dumping through the generic JSON provider.
    body = TodoPage.model_construct(items=[Todo.model_construct(**r.public()) for r in page], next_cursor=next_cursor)
    return Response(body.model_dump_json(), content_type="application/json")


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
    key = request.headers.get("Idempotency-Key")
    if key is None:
        async with current_db().transaction() as conn:
            await _refuse_deleted(conn, owner)
            row = await _create(conn, owner, data.content)
            await outbox.add(conn, "todo.created", subject=owner, data=row.event())
        return _todo(row), 201, {"Location": f"/todos/{row.id}", "ETag": row.etag}
    if not _IDEMPOTENCY_KEY.match(key):
        raise Problem(400, "Idempotency-Key must be 1..200 visible ASCII characters")
    request_hash = hashlib.sha256(data.content.encode()).hexdigest()
    async with current_db().transaction() as conn:
        await _refuse_deleted(conn, owner)
        if await store.claim_idempotency_key(conn, owner, key, request_hash, _settings().idempotency_ttl_hours):
            row = await _create(conn, owner, data.content)
            await outbox.add(conn, "todo.created", subject=owner, data=row.event())
            body = _todo(row).model_dump(mode="json")
            await store.store_response(conn, owner, key, 201, body, f"/todos/{row.id}")
            return _todo(row), 201, {"Location": f"/todos/{row.id}", "ETag": row.etag}
        stored = await store.stored_response(conn, owner, key)
    if stored is None:
        raise Problem(409, "a request with this Idempotency-Key is still in progress", headers={"Retry-After": "1"})
    if stored.request_hash != request_hash:
        raise Problem(422, "this Idempotency-Key was used with a different request body")
    headers = {"Idempotent-Replayed": "true"}
    if stored.location:
        headers["Location"] = stored.location
    return Todo.model_validate(stored.body), stored.status, headers


async def _create(conn: Connection, owner: UUID, content: str) -> store.TodoRow:
    limit = _settings().max_todos_per_user
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
        await outbox.add(conn, "todo.updated", subject=owner, data=row.event())
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
            await outbox.add(conn, "todo.finished", subject=owner, data=row.event())
        else:
            row = await store.get_todo(conn, owner, todo_id)
            if row is None:
                raise Problem(404, "todo not found")
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
        await outbox.add(conn, "todo.deleted", subject=owner, data=row.event())
    return "", 204
