from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.factories import TestIssuer, User, create_todo, create_todos
from tests.inprocess import InProcessService
from tests.support import assert_problem


# Every test gets users of its own: minted by the issuer the in-process todos trusts.
@pytest.fixture
def alice(issuer: TestIssuer) -> User:
    return issuer.user()


@pytest.fixture
def bob(issuer: TestIssuer) -> User:
    return issuer.user()


@pytest.fixture
def new_user(issuer: TestIssuer) -> User:
    return issuer.user()


async def test_create_get_patch_finish_delete_happy_path(todos: InProcessService, alice: User) -> None:
    async with todos.client(alice) as api:
        created = await api.post("/todos", json={"content": "  buy milk  "})
        assert created.status_code == 201
        todo = created.json()
        assert todo["content"] == "buy milk"
        assert todo["is_finished"] is False and todo["finished_at"] is None
        assert created.headers["location"] == f"/todos/{todo['id']}"

        got = await api.get(f"/todos/{todo['id']}")
        assert got.status_code == 200 and got.json() == todo
        etag = got.headers["etag"]

        patched = await api.patch(f"/todos/{todo['id']}", json={"content": "buy oat milk"}, headers={"If-Match": etag})
        assert patched.status_code == 200
        assert patched.json()["content"] == "buy oat milk"
        assert patched.headers["etag"] != etag

        finished = await api.put(f"/todos/{todo['id']}/finish")
        assert finished.status_code == 200
        assert finished.json()["is_finished"] is True and finished.json()["finished_at"] is not None

        reopened = await api.patch(f"/todos/{todo['id']}", json={"is_finished": False})
        assert reopened.json()["is_finished"] is False and reopened.json()["finished_at"] is None

        assert (await api.delete(f"/todos/{todo['id']}")).status_code == 204
        assert_problem(await api.get(f"/todos/{todo['id']}"), 404)
        assert_problem(await api.delete(f"/todos/{todo['id']}"), 404)


async def test_list_filters_by_status_newest_first(todos: InProcessService, new_user: User) -> None:
    async with todos.client(new_user) as api:
        ids = [(await api.post("/todos", json={"content": f"t{i}"})).json()["id"] for i in range(5)]
        await api.put(f"/todos/{ids[1]}/finish")
        await api.put(f"/todos/{ids[3]}/finish")
        every = (await api.get("/todos", params={"limit": 100})).json()
        assert [t["id"] for t in every["items"]] == list(reversed(ids))
        assert every["next_cursor"] is None
        finished = (await api.get("/todos", params={"status": "finished"})).json()["items"]
        assert [t["id"] for t in finished] == [ids[3], ids[1]]
        opened = (await api.get("/todos", params={"status": "open"})).json()["items"]
        assert [t["id"] for t in opened] == [ids[4], ids[2], ids[0]]


@pytest.mark.parametrize(
    "body",
    [
        {"content": ""},
        {"content": "   "},
        {"content": "x" * 1001},
        {"content": 5},
        {},
        {"content": "ok", "owner_id": "someone"},
    ],
)
async def test_invalid_create_is_422_and_stores_nothing(
    todos: InProcessService, new_user: User, body: dict[str, object]
) -> None:
    async with todos.client(new_user) as api:
        assert_problem(await api.post("/todos", json=body), 422)
        assert (await api.get("/todos")).json()["items"] == []


async def test_bad_inputs_are_problems(todos: InProcessService, alice: User) -> None:
    async with todos.client(alice) as api:
        assert_problem(await api.get("/todos/not-a-uuid"), 404)
        assert_problem(await api.get("/todos", params={"limit": 0}), 422)
        assert_problem(await api.get("/todos", params={"limit": 101}), 422)
        assert_problem(await api.get("/todos", params={"status": "done"}), 422)
        assert_problem(await api.get("/todos", params={"cursor": "garbage"}), 400)
        assert_problem(await api.patch(f"/todos/{uuid.uuid4()}", json={"colour": "red"}), 422)
        assert_problem(
            await api.post("/todos", content=b"{not json", headers={"Content-Type": "application/json"}), 400
        )


async def test_tampered_or_foreign_cursor_is_400(todos: InProcessService, new_user: User, bob: User) -> None:
    async with todos.client(new_user) as api:
        await create_todos(api, [f"c{i}" for i in range(3)])
        cursor = (await api.get("/todos", params={"limit": 1})).json()["next_cursor"]
        assert cursor
        tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
        assert_problem(await api.get("/todos", params={"limit": 1, "cursor": tampered}), 400)
        assert_problem(await api.get("/todos", params={"limit": 1, "cursor": cursor, "status": "open"}), 400)
    async with todos.client(bob) as other:
        assert_problem(await other.get("/todos", params={"limit": 1, "cursor": cursor}), 400)


async def test_missing_or_bad_token_is_401_and_wrong_scope_403(todos: InProcessService, alice: User) -> None:
    async with todos.client() as anon:
        resp = await anon.get("/todos")
        assert_problem(resp, 401)
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert_problem(await anon.get("/todos", headers={"Authorization": "Bearer not.a.jwt"}), 401)
    read_only = todos.issuer.token(alice.id, "todos:read")
    async with todos.client(alice, token=read_only) as api:
        assert (await api.get("/todos")).status_code == 200
        assert_problem(await api.post("/todos", json={"content": "nope"}), 403)


async def test_other_users_todos_are_not_found_anywhere(todos: InProcessService, alice: User, bob: User) -> None:
    async with todos.client(alice) as a:
        todo = await create_todo(a, "alice's secret")
    async with todos.client(bob) as b:
        assert_problem(await b.get(f"/todos/{todo['id']}"), 404)
        assert_problem(await b.patch(f"/todos/{todo['id']}", json={"content": "pwned"}), 404)
        assert_problem(await b.put(f"/todos/{todo['id']}/finish"), 404)
        assert_problem(await b.delete(f"/todos/{todo['id']}"), 404)
        listing = (await b.get("/todos", params={"limit": 100})).json()["items"]
        assert todo["id"] not in {t["id"] for t in listing}
        assert_problem(await b.get("/todos", params={"owner": alice.id}), 403)
    async with todos.client(alice) as a:
        unchanged = (await a.get(f"/todos/{todo['id']}")).json()
        assert unchanged == todo


async def test_stale_if_match_is_412(todos: InProcessService, alice: User) -> None:
    async with todos.client(alice) as api:
        todo = (await api.post("/todos", json={"content": "v1"})).json()
        etag = (await api.get(f"/todos/{todo['id']}")).headers["etag"]
        assert (await api.patch(f"/todos/{todo['id']}", json={"content": "v2"}, headers={"If-Match": etag})).is_success
        stale = await api.patch(f"/todos/{todo['id']}", json={"content": "v3"}, headers={"If-Match": etag})
        assert_problem(stale, 412)
        assert (await api.get(f"/todos/{todo['id']}")).json()["content"] == "v2"


async def test_concurrent_patches_with_one_if_match_exactly_one_wins(todos: InProcessService, alice: User) -> None:
    async with todos.client(alice) as api:
        todo = (await api.post("/todos", json={"content": "race"})).json()
        etag = (await api.get(f"/todos/{todo['id']}")).headers["etag"]
        results = await asyncio.gather(
            *(
                api.patch(f"/todos/{todo['id']}", json={"content": f"w{i}"}, headers={"If-Match": etag})
                for i in range(10)
            )
        )
        codes = sorted(r.status_code for r in results)
        assert codes == [200] + [412] * 9


async def test_idempotency_key_replays_first_response(todos: InProcessService, new_user: User) -> None:
    async with todos.client(new_user) as api:
        key = str(uuid.uuid4())
        first = await api.post("/todos", json={"content": "once"}, headers={"Idempotency-Key": key})
        again = await api.post("/todos", json={"content": "once"}, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["idempotent-replayed"] == "true"
        assert_problem(await api.post("/todos", json={"content": "other"}, headers={"Idempotency-Key": key}), 422)
        assert len((await api.get("/todos")).json()["items"]) == 1


async def test_twenty_concurrent_creates_with_one_key_make_one_todo(todos: InProcessService, new_user: User) -> None:
    async with todos.client(new_user) as api:
        key = str(uuid.uuid4())
        results = await asyncio.gather(
            *(api.post("/todos", json={"content": "burst"}, headers={"Idempotency-Key": key}) for _ in range(20))
        )
        assert {r.status_code for r in results} == {201}
        assert len({r.json()["id"] for r in results}) == 1
        assert len((await api.get("/todos", params={"limit": 100})).json()["items"]) == 1


async def test_service_with_read_any_scope_lists_a_users_todos(todos: InProcessService, alice: User) -> None:
    async with todos.client(alice) as a:
        mine = await create_todo(a, "for the report")
    token = todos.issuer.service_token("todos:read:any")
    async with todos.client(token=token) as svc:
        listing = (await svc.get("/todos", params={"owner": alice.id, "limit": 100})).json()["items"]
        assert mine["id"] in {t["id"] for t in listing}
        assert_problem(await svc.post("/todos", json={"content": "no"}), 403)


async def test_control_characters_in_content_are_422_not_500(todos: InProcessService, new_user: User) -> None:
    async with todos.client(new_user) as api:
        assert_problem(await api.post("/todos", json={"content": "a\u0000b"}), 422)
        todo = (await api.post("/todos", json={"content": "line one\nline two"})).json()
        assert todo["content"] == "line one\nline two"
        assert_problem(await api.patch(f"/todos/{todo['id']}", json={"content": "x\u0000"}), 422)
        assert (await api.get(f"/todos/{todo['id']}")).json()["content"] == "line one\nline two"


async def test_empty_patch_changes_nothing(todos: InProcessService, alice: User) -> None:
    async with todos.client(alice) as api:
        todo = (await api.post("/todos", json={"content": "steady"})).json()
        etag = (await api.get(f"/todos/{todo['id']}")).headers["etag"]
        same = await api.patch(f"/todos/{todo['id']}", json={}, headers={"If-Match": etag})
        assert same.status_code == 200 and same.headers["etag"] == etag
        assert same.json()["updated_at"] == todo["updated_at"]
        assert_problem(await api.patch(f"/todos/{uuid.uuid4()}", json={}), 404)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"content": "   "}, "Content must not be only whitespace."),
        ({"content": "bell\u0007"}, "Content must not contain control characters (tab and line breaks are fine)."),
        ({"content": "x" * 1001}, "Content must be at most 1000 characters long."),
        ({}, "Content is required."),
    ],
)
async def test_a_refused_todo_is_said_in_words_never_as_a_pattern(
    todos: InProcessService, new_user: User, body: dict[str, object], said: str
) -> None:
    async with todos.client(new_user) as api:
        for resp in (
            await api.post("/todos", json=body),
            await api.patch(f"/todos/{uuid.uuid4()}", json=body or {"content": None, "x": 1}),
        ):
            problem = assert_problem(resp, 422)
            text = resp.text
            assert "pattern" not in text and "^[" not in text and "\\x" not in text, text
            if resp.request.method == "POST":
                assert problem["detail"] == said
                (error,) = problem["errors"]
                assert error["field"] == "content" and error["loc"] == ["content"]
                assert error["msg"] == said[0].lower() + said[1:-1]
            else:
                assert problem["detail"].endswith(".") and problem["detail"][0].isupper()
