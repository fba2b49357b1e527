"""The kit documents every status a route can answer, by rule and by declaration (in-process)."""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel
from quart import Blueprint, Quart
from quart_schema import DataSource, document_request, validate_querystring, validate_request

from gateway.openapi import merge
from services.auth.schemas import NFKC_UNSAFE, RegisterRequest
from services.kit.app import create_service_app
from services.kit.config import ServiceSettings
from services.kit.contract import links, oauth_errors, responses
from services.kit.security import require_scope

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"]}


class Thing(BaseModel):
    name: str


class Page(BaseModel):
    limit: int = 10


def make_app() -> Quart:
    bp = Blueprint("things", __name__)

    @bp.post("/things")
    @require_scope("things:write")
    @validate_request(Thing)
    @links(201, get_thing="thing_id")
    @responses(409, describe={201: "Created.", 409: "A thing of this name exists."})
    async def create_thing(data: Thing) -> tuple[str, int]:
        return "", 201

    @bp.get("/things/<uuid:thing_id>")
    @require_scope("things:read")
    async def get_thing(thing_id: str) -> str:
        return ""

    @bp.get("/things")
    @validate_querystring(Page)
    async def list_things(query_args: Page) -> str:
        return ""

    @bp.post("/token")
    @document_request(Thing, source=DataSource.FORM)
    @oauth_errors
    async def token() -> str:
        return ""

    return create_service_app(ServiceSettings(service_name="kit-test", port=0), blueprints=[bp], title="t")


async def document() -> dict[str, Any]:
    resp = await make_app().test_client().get("/openapi.json")
    assert resp.status_code == 200
    return dict(await resp.get_json())


async def test_a_scoped_route_with_a_body_documents_every_status_as_a_problem() -> None:
    doc = await document()
    create = doc["paths"]["/things"]["post"]
    assert statuses(create) == {201, 400, 401, 403, 409, 413, 415, 422, 429, 503, 504}
    for status in (400, 401, 403, 409, 413, 415, 422, 429, 503, 504):
        assert create["responses"][str(status)]["content"] == {"application/problem+json": {"schema": PROBLEM}}
    assert create["responses"]["409"]["description"] == "A thing of this name exists."
    assert create["security"] == [{"bearer": []}]
    assert create["requestBody"]["required"] is True
    assert create["responses"]["201"]["links"]["get_thing"] == {
        "operationId": "get_thing",
        "parameters": {"thing_id": "$response.body#/id"},
    }
    assert set(doc["components"]["schemas"]["Problem"]["required"]) >= {"type", "title", "status", "detail"}


async def test_path_parameters_add_404_and_uuids_are_typed() -> None:
    get = (await document())["paths"]["/things/{thing_id}"]["get"]
    assert statuses(get) == {401, 403, 404, 429, 503, 504}  # the handler declares no success response
    assert get["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}


async def test_a_public_route_with_a_query_has_422_but_no_401() -> None:
    listed = (await document())["paths"]["/things"]["get"]
    assert 422 in statuses(listed) and not {401, 403, 400} & statuses(listed)


async def test_oauth_endpoints_answer_rfc6749_errors_not_problems() -> None:
    token = (await document())["paths"]["/token"]["post"]
    for status in ("400", "401"):
        assert token["responses"][status]["content"] == {
            "application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}
        }
    assert 422 not in statuses(token)
    assert token["responses"]["413"]["content"] == {"application/problem+json": {"schema": PROBLEM}}


def test_the_nfkc_unsafe_list_is_complete() -> None:
    """Every character whose NFKC form holds a space or "@" is refused in an email, as the schema says."""
    unsafe = [
        chr(code)
        for code in range(0x20, 0x110000)
        if not 0xD800 <= code < 0xE000
        and (form := unicodedata.normalize("NFKC", chr(code))) != chr(code)
        and ("@" in form or any(ch.isspace() for ch in form))
    ]
    assert unsafe
    for ch in unsafe:
        email = f"a{ch}b@example.com"
        try:
            RegisterRequest(email=email, password="long enough")
        except ValueError:
            continue
        raise AssertionError(f"U+{ord(ch):04X} passes the email pattern: {NFKC_UNSAFE}")


async def test_the_merged_document_adds_what_the_gateway_itself_answers() -> None:
    doc = await document()
    doc["paths"] = {"/todos" + path: item for path, item in doc["paths"].items()}  # as if todos served them
    merged = merge({"todos": doc}, [])
    create = merged["paths"]["/todos/things"]["post"]
    assert {502, 413, 429, 503, 504} <= statuses(create)
    assert 400 in statuses(merged["paths"]["/todos/things/{thing_id}"]["get"])  # '..' in a path
    listed = merged["paths"]["/todos/things"]["get"]
    assert {401, 403} <= statuses(listed)  # /todos* needs a token at the edge
    assert listed["responses"][502]["content"] == {"application/problem+json": {"schema": PROBLEM}}
