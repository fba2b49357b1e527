from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from services.auth.oauth.models import User

# Deliberately loose (one @, a dot in the domain, no spaces): the real check is a sign-in.
MAX_PASSWORD_LENGTH = 1024
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def has_control_characters(value: str) -> bool:
    """Any C0/C1 control character, DEL, or a lone surrogate: none belongs in a name, email or id.

    PostgreSQL refuses NUL in text outright (a 500 if it got that far), and the rest
    only ever serve to garble logs and pages.
    """
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def _no_control_characters(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters")
    return value


def normalize_email(value: str) -> str:
    """The form an email is stored and looked up in: NFKC, trimmed, lower case."""
    return unicodedata.normalize("NFKC", value).strip().lower()


class RegisterRequest(BaseModel):
    email: str = Field(max_length=320, description="Unique; compared without regard to case.")
    password: str = Field(min_length=8, max_length=MAX_PASSWORD_LENGTH)
    name: str | None = Field(None, max_length=200)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        email = normalize_email(_no_control_characters(value))
        if not _EMAIL.match(email):
            raise ValueError("not an email address")
        return email

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _no_control_characters(value).strip() or None if value is not None else None

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        # argon2 would take it, but no keyboard types NUL: refuse it like the other fields.
        if "\x00" in value:
            raise ValueError("must not contain NUL")
        return value


class UserOut(BaseModel):
    id: UUID
    email: str
    name: str | None
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, created_at=user.created_at)


# --- OpenAPI documentation of the OAuth endpoints (authlib parses and answers them itself) ---


class TokenForm(BaseModel):
    grant_type: str = Field(description="authorization_code, refresh_token or client_credentials")
    code: str | None = None
    redirect_uri: str | None = None
    code_verifier: str | None = Field(None, description="PKCE (S256) verifier of the authorization request")
    refresh_token: str | None = None
    scope: str | None = None
    client_id: str | None = Field(None, description="public clients; confidential ones use HTTP Basic")
    client_secret: str | None = None


class TokenOut(BaseModel):
    token_type: str = Field(description="always Bearer")
    access_token: str = Field(description="RFC 9068 JWT (typ at+jwt), 15 minutes")
    expires_in: int
    scope: str
    refresh_token: str | None = Field(None, description="rotating; each use returns a new one")


class TokenForm7009(BaseModel):
    token: str
    token_type_hint: str | None = Field(None, description="access_token or refresh_token")
    client_id: str | None = None


class RevokedOut(BaseModel):
    """Always empty: RFC 7009 answers 200 whether or not the token was known."""


class IntrospectionOut(BaseModel):
    active: bool
    scope: str | None = None
    client_id: str | None = None
    sub: str | None = None
    token_type: str | None = None
    iss: str | None = None
    aud: str | None = None
    jti: str | None = None
    iat: int | None = None
    exp: int | None = None


class JwksOut(BaseModel):
    keys: list[dict[str, str]]


class MetadataOut(BaseModel):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    revocation_endpoint: str
    introspection_endpoint: str
    scopes_supported: list[str]
    response_types_supported: list[str]
    grant_types_supported: list[str]
    code_challenge_methods_supported: list[str]
