from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from services.auth.store.rows import User
from services.kit.text import BLANK, CONTROL, NO_CONTROL, SPACE
from services.kit.text import has_control_characters as _has_control

# Deliberately loose (one @, a dot in the domain, no spaces): the real check is a sign-in.
MAX_PASSWORD_LENGTH = 1024
# Checked again after normalisation (NFKC may lengthen the local part, so no bound on it here).
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Characters whose NFKC form holds a space or "@" (U+00B4 is " \u0301", U+FF20 is "@"): refused
# in an email, so every address the documented pattern admits is still one address once
# normalised. tests/auth/test_users.py recomputes this list from unicodedata.
NFKC_UNSAFE = (
    r"\xa0\xa8\xaf\xb4\xb8\u02d8-\u02dd\u037a\u0384\u0385\u1fbd\u1fbf-\u1fc1\u1fcd-\u1fcf\u1fdd-\u1fdf"
    r"\u1fed\u1fee\u1ffd\u1ffe\u2000-\u200a\u2017\u202f\u203e\u205f\u3000\u309b\u309c\ufc5e-\ufc63"
    r"\ufdfa\ufdfb\ufe49-\ufe4c\ufe6b\ufe70\ufe72\ufe74\ufe76\ufe78\ufe7a\ufe7c\ufe7e\uff20\uffe3"
)


# The documented shape of an email (checked on the raw value; _EMAIL checks it again once normalised).
_EMAIL_CHAR = f"[^@{CONTROL}{SPACE}{NFKC_UNSAFE}]"
# Surrounding blanks are allowed (they are trimmed); tabs and line breaks are control characters.
EMAIL_PATTERN = f"^[{BLANK}]*{_EMAIL_CHAR}{{1,64}}@{_EMAIL_CHAR}+\\.{_EMAIL_CHAR}+[{BLANK}]*$"


def has_control_characters(value: str) -> bool:
    """Any C0/C1 control character, DEL, or a lone surrogate: none belongs in a name, email or id."""
    return _has_control(value)


def _no_control_characters(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters")
    return value


def normalize_email(value: str) -> str:
    """The form an email is stored and looked up in: NFKC, trimmed, lower case."""
    return unicodedata.normalize("NFKC", value).strip().lower()


_EMAIL_SHAPE = re.compile(EMAIL_PATTERN)


def _in_words(value: object, info: ValidationInfo) -> object:
    """Before the pattern: a field's refusals in words (the kit never shows a pattern)."""
    field = info.field_name
    if not isinstance(value, str):
        return value
    if "\x00" in value or (field != "password" and has_control_characters(value)):
        what = "a NUL character" if field == "password" else "control characters"
        raise ValueError(f"{field} must not contain {what}")
    if field == "email" and len(value) <= 320 and not _EMAIL_SHAPE.match(value):
        raise ValueError("email is not an email address (name@example.com)")
    return value


class RegisterRequest(BaseModel):
    email: str = Field(max_length=320, pattern=EMAIL_PATTERN, description="Unique; compared without regard to case.")
    password: str = Field(min_length=8, max_length=MAX_PASSWORD_LENGTH, pattern="^[^\\x00]*$")
    name: str | None = Field(None, max_length=200, pattern=NO_CONTROL)

    _words = field_validator("email", "password", "name", mode="before")(_in_words)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        email = normalize_email(_no_control_characters(value))
        if not _EMAIL.match(email):
            raise ValueError("email is not an email address (name@example.com)")
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
