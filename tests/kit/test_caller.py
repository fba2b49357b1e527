"""current_user_id() / current_caller(): one identity rule for every service, in-process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Blueprint

from services.kit.app import create_service_app
from services.kit.config import ServiceSettings
from services.kit.security import current_caller, current_user_id, install_auth, require_scope
from tests.kit.test_challenge import ISSUER, KEY, token


def caller_app() -> Any:
    bp = Blueprint("caller", __name__)

    @bp.get("/me")
    @require_scope("todos:read")
    async def me() -> dict[str, str]:
        return {"user_id": str(current_user_id())}

    @bp.get("/caller")
    @require_scope()
    async def caller() -> dict[str, Any]:
        c = current_caller()
        return {
            "subject": c.subject,
            "client_id": c.client_id,
            "scopes": sorted(c.scopes),
            "user_id": str(c.user_id) if c.user_id else None,
            "is_service": c.is_service,
            "may_read_any": c.has_scopes("todos:read:any"),
        }

    async def fetch_jwks() -> dict[str, Any]:
        return {"keys": [KEY.as_dict(private=False)]}

    settings = ServiceSettings(service_name="caller", auth_url=ISSUER, database_url=None)
    app = create_service_app(settings, blueprints=[bp], title="caller")
    install_auth(app, fetch_jwks=fetch_jwks)
    return app


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[Any]:
    async with caller_app().test_app() as test_app:
        yield test_app.test_client()


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_a_user_token_is_its_user(client: Any) -> None:
    user_id = str(uuid.uuid4())
    resp = await client.get("/me", headers=bearer(token(sub=user_id)))
    assert resp.status_code == 200 and await resp.get_json() == {"user_id": user_id}
    resp = await client.get("/caller", headers=bearer(token(sub=user_id, scope="todos:read todos:read:any")))
    assert await resp.get_json() == {
        "subject": user_id,
        "client_id": "quartet-web",
        "scopes": ["todos:read", "todos:read:any"],
        "user_id": user_id,
        "is_service": False,
        "may_read_any": True,
    }


@pytest.mark.parametrize("client_id", ["reports-worker", str(uuid.uuid4())])
async def test_a_service_token_is_never_a_user(client: Any, client_id: str) -> None:
    service = token(sub=client_id, client_id=client_id, scope="todos:read todos:read:any")
    resp = await client.get("/me", headers=bearer(service))
    assert resp.status_code == 403
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert (await resp.get_json())["detail"] == "this token does not belong to a user"
    caller = await (await client.get("/caller", headers=bearer(service))).get_json()
    assert caller["is_service"] is True and caller["user_id"] is None and caller["may_read_any"] is True


async def test_a_subject_that_is_no_user_id_is_refused(client: Any) -> None:
    resp = await client.get("/me", headers=bearer(token(sub="not-a-uuid")))
    assert resp.status_code == 403


async def test_outside_require_scope_there_is_no_caller() -> None:
    # A programming error, not the client's: fail loudly rather than invent an identity.
    async with caller_app().test_request_context("/me", headers=bearer(token())):
        with pytest.raises(RuntimeError, match="require_scope"):
            current_user_id()
