"""Accounts: register, read and delete your own."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import validate_request, validate_response

from services.auth import accounts
from services.auth.passwords import HashingBusy
from services.auth.runtime import runtime
from services.auth.schemas import RegisterRequest, UserOut
from services.auth.store import users
from services.kit.contract import responses
from services.kit.problem import Problem
from services.kit.security import current_user_id, require_scope

bp = Blueprint("users", __name__)


@bp.post("/auth/register")
@validate_request(RegisterRequest)
@validate_response(UserOut, 201)
@responses(409, describe={409: "An account with this email already exists.", 503: "Too many sign-ups at once."})
async def register(data: RegisterRequest) -> tuple[UserOut, int]:
    """Create an account (argon2id password hash); publishes ``user.registered``. 409 if the email is taken."""
    try:
        user = await accounts.register(runtime(), data.email, data.name, data.password)
    except HashingBusy as busy:
        raise Problem(
            503, "too many sign-ups at once; try again shortly", headers={"Retry-After": str(busy.retry_after)}
        ) from None
    except users.EmailTaken:
        raise Problem(409, "an account with this email already exists") from None
    return UserOut.of(user), 201


@bp.get("/auth/me")
@validate_response(UserOut)
@responses(404, describe={404: "The account no longer exists."})
@require_scope("profile")
async def me() -> UserOut:
    """The signed-in user's profile (scope ``profile``)."""
    async with runtime().db.connection() as conn:
        user = await users.get_user(conn, current_user_id())
    if user is None:
        raise Problem(404, "this account no longer exists")
    return UserOut.of(user)


@bp.delete("/auth/me")
@responses(204, 404, describe={204: "Deleted.", 404: "The account no longer exists."})
@require_scope("profile")
async def delete_me() -> tuple[str, int]:
    """Delete the account and every grant it made; publishes ``user.deleted`` so services purge its data."""
    if not await accounts.delete(runtime(), current_user_id()):
        raise Problem(404, "this account no longer exists")
    return "", 204
