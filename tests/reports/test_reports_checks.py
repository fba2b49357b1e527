"""The reports API's own checks (validation, scopes, contract, readiness) in-process: no worker needed."""

from __future__ import annotations

import pytest

from tests.factories import TestIssuer, User
from tests.inprocess import InProcessService
from tests.support import assert_problem


@pytest.fixture
def alice(issuer: TestIssuer) -> User:
    return issuer.user()


async def test_bad_format_is_a_422_problem(reports_app: InProcessService, alice: User) -> None:
    async with reports_app.client(alice) as reports:
        body = assert_problem(await reports.post("/reports", json={"format": "xlsx"}), 422)
        assert body["errors"] and body["errors"][0]["loc"] == ["format"]
        assert_problem(await reports.post("/reports", json={}), 422)
        assert_problem(await reports.post("/reports", json={"format": "csv", "extra": 1}), 422)
        assert_problem(
            await reports.post("/reports", content=b"not json", headers={"content-type": "application/json"}), 400
        )


async def test_scopes_and_tokens_are_checked(reports_app: InProcessService, alice: User) -> None:
    read_only = reports_app.issuer.token(alice.id, "profile reports:read")
    service = reports_app.issuer.service_token("todos:read:any")
    async with reports_app.client(token=read_only) as reports:
        assert_problem(await reports.post("/reports", json={"format": "csv"}), 403)
        assert (await reports.get("/reports/summary")).status_code == 200
    async with reports_app.client(token=service) as reports:
        assert_problem(await reports.get("/reports"), 403)
    async with reports_app.client(token="not-a-token") as reports:
        for path in ("/reports", "/reports/summary", f"/reports/{alice.id}", f"/reports/{alice.id}/file"):
            assert_problem(await reports.get(path), 401)
        assert_problem(await reports.post("/reports", json={"format": "csv"}), 401)


async def test_openapi_lists_the_routes_and_readyz_checks_database_and_broker(reports_app: InProcessService) -> None:
    async with reports_app.client() as http:
        spec = (await http.get("/openapi.json")).json()
        ready = await http.get("/readyz")
    paths = {"/reports", "/reports/summary", "/reports/{report_id}", "/reports/{report_id}/file"}
    assert paths <= set(spec["paths"])
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok", "token_keys": "ok"}
