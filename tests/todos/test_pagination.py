"""Property: following next_cursor returns every todo exactly once, newest first, even while todos are added."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.suite import Suite, User

operations = st.lists(
    st.one_of(st.tuples(st.just("create"), st.integers(1, 6)), st.tuples(st.just("delete"), st.integers(0, 50))),
    max_size=6,
)


def test_following_cursors_returns_each_todo_once_newest_first(suite: Suite, pager: User) -> None:
    created_order: list[str] = []  # the model: ids of the user's todos, oldest first

    with httpx.Client(base_url=suite.todos_url, headers={"Authorization": f"Bearer {pager.token}"}) as api:

        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            ops=operations, limit=st.integers(1, 7), interleave=st.booleans(), status=st.sampled_from(["all", "open"])
        )
        def check(ops: list[tuple[str, int]], limit: int, interleave: bool, status: str) -> None:
            for op, n in ops:
                if op == "create":
                    for _ in range(n):
                        resp = api.post("/todos", json={"content": f"p{len(created_order)}"})
                        assert resp.status_code == 201
                        created_order.append(resp.json()["id"])
                elif created_order:
                    victim = created_order.pop(n % len(created_order))
                    assert api.delete(f"/todos/{victim}").status_code == 204
            expected = list(reversed(created_order))
            seen: list[str] = []
            cursor = None
            for _ in range(1000):
                params: dict[str, str | int] = {"limit": limit, "status": status}
                if cursor:
                    params["cursor"] = cursor
                page = api.get("/todos", params=params)
                assert page.status_code == 200, page.text
                body = page.json()
                assert len(body["items"]) <= limit
                seen.extend(t["id"] for t in body["items"])
                cursor = body["next_cursor"]
                if cursor is None:
                    break
                if interleave:  # a todo created between page fetches is newer than the cursor: not in later pages
                    resp = api.post("/todos", json={"content": "interleaved"})
                    created_order.append(resp.json()["id"])
            assert seen == expected  # all open: nothing is finished in this test

        check()
