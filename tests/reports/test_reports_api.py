from __future__ import annotations

import csv
import io
import json

import pypdf

from tests.factories import create_todos
from tests.reports.client import request_report, wait_report, wait_summary
from tests.suite import Suite, User
from tests.support import assert_problem


async def test_csv_report_rows_match_the_todos(suite: Suite, new_user: User) -> None:
    async with suite.client(new_user) as todos, suite.client(new_user, base_url=suite.reports_url) as reports:
        made = await create_todos(todos, ["buy milk", 'quote "this", please', "=1+1 is not a formula", "ünïcødé ✓"])
        await todos.put(f"/todos/{made[1]['id']}/finish")
        listed = (await todos.get("/todos", params={"limit": 100})).json()["items"]
        report = await wait_report(reports, (await request_report(reports, "csv"))["id"])
        assert report["status"] == "done", report
        assert report["progress"] == 100 and report["todo_count"] == 4 and report["error"] is None
        assert report["file_url"] == f"/reports/{report['id']}/file"
        resp = await reports.get(report["file_url"])
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"].startswith("attachment; filename=")
    assert resp.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(resp.content.decode())))
    expected = [
        {
            "id": t["id"],
            # A cell that a spreadsheet would run as a formula is quoted with a leading apostrophe.
            "content": "'" + t["content"] if t["content"].startswith("=") else t["content"],
            "is_finished": str(t["is_finished"]).lower(),
        }
        for t in listed
    ]
    assert [{k: r[k] for k in ("id", "content", "is_finished")} for r in rows] == expected
    finished = next(r for r in rows if r["id"] == made[1]["id"])
    assert finished["finished_at"] != "" and rows[0]["created_at"] != ""


async def test_json_report_has_summary_and_todos(suite: Suite, new_user: User) -> None:
    async with suite.client(new_user) as todos, suite.client(new_user, base_url=suite.reports_url) as reports:
        made = await create_todos(todos, [f"json {i}" for i in range(3)])
        await todos.put(f"/todos/{made[0]['id']}/finish")
        report = await wait_report(reports, (await request_report(reports, "json"))["id"])
        resp = await reports.get(f"/reports/{report['id']}/file")
    assert report["status"] == "done", report
    assert resp.headers["content-type"] == "application/json"
    body = json.loads(resp.content)
    assert body["id"] == report["id"]
    assert body["summary"]["total"] == 3 and body["summary"]["finished"] == 1 and body["summary"]["open"] == 2
    assert body["summary"]["median_seconds_to_finish"] >= 0
    assert sorted(t["content"] for t in body["todos"]) == ["json 0", "json 1", "json 2"]


async def test_pdf_report_opens_and_contains_the_todos(suite: Suite, new_user: User) -> None:
    async with suite.client(new_user) as todos, suite.client(new_user, base_url=suite.reports_url) as reports:
        await create_todos(todos, ["water the plants", "call <mum> & dad"])
        report = await wait_report(reports, (await request_report(reports, "pdf"))["id"])
        resp = await reports.get(f"/reports/{report['id']}/file")
    assert report["status"] == "done", report
    assert resp.headers["content-type"] == "application/pdf"
    assert resp.headers["content-disposition"].endswith('.pdf"')
    pdf = pypdf.PdfReader(io.BytesIO(resp.content))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "Quartet todo report" in text
    assert "water the plants" in text and "call <mum> & dad" in text
    assert "Page 1 of 1" in text


async def test_a_thousand_todos_make_a_multi_page_pdf(suite: Suite, new_user: User) -> None:
    contents = [f"todo number {i:04d}" for i in range(1000)]
    async with suite.client(new_user) as todos, suite.client(new_user, base_url=suite.reports_url) as reports:
        await create_todos(todos, contents, concurrency=16)
        await wait_summary(reports, lambda s: s["total"] == 1000, timeout=60)
        report = await wait_report(reports, (await request_report(reports, "pdf"))["id"], timeout=60)
        resp = await reports.get(f"/reports/{report['id']}/file")
    assert report["status"] == "done" and report["todo_count"] == 1000, report
    pdf = pypdf.PdfReader(io.BytesIO(resp.content))
    pages = len(pdf.pages)
    assert pages > 10
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert all(c in text for c in contents[::97]) and "todo number 0000" in text and "todo number 0999" in text
    assert f"Page {pages} of {pages}" in text


async def test_list_shows_own_reports_newest_first(suite: Suite, new_user: User) -> None:
    async with suite.client(new_user, base_url=suite.reports_url) as reports:
        first = await request_report(reports, "json")
        second = await request_report(reports, "csv")
        listed = (await reports.get("/reports")).json()["items"]
        assert [r["id"] for r in listed] == [second["id"], first["id"]]
        assert len((await reports.get("/reports", params={"limit": 1})).json()["items"]) == 1
        assert_problem(await reports.get("/reports", params={"limit": 0}), 422)
        await wait_report(reports, second["id"])


async def test_another_users_report_is_not_found_on_every_route(suite: Suite, alice: User, bob: User) -> None:
    async with (
        suite.client(alice, base_url=suite.reports_url) as as_alice,
        suite.client(bob, base_url=suite.reports_url) as as_bob,
    ):
        mine = await wait_report(as_alice, (await request_report(as_alice, "json"))["id"])
        assert mine["status"] == "done"
        assert_problem(await as_bob.get(f"/reports/{mine['id']}"), 404)
        assert_problem(await as_bob.get(f"/reports/{mine['id']}/file"), 404)
        assert mine["id"] not in {r["id"] for r in (await as_bob.get("/reports")).json()["items"]}
        assert_problem(await as_bob.get("/reports/7d9f6a4e-0000-4000-8000-000000000000"), 404)
        assert (await as_alice.get(f"/reports/{mine['id']}/file")).status_code == 200


async def test_the_report_list_pages_with_a_keyset_cursor(suite: Suite, new_user: User) -> None:
    async with suite.client(new_user, base_url=suite.reports_url) as reports:
        made = [(await request_report(reports, "json"))["id"] for _ in range(5)]
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(5):
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await reports.get("/reports", params=params)).json()
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(made))  # newest first, each once, then next_cursor null
        assert_problem(await reports.get("/reports", params={"cursor": "not-a-cursor"}), 400)
