from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from services.auth.oauth.models import User

# Deliberately loose (one @, a dot in the domain, no spaces): the real check is a sign-in.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def normalize_email(value: str) -> str:
    """The form an email is stored and looked up in: NFKC, trimmed, lower case."""
    return unicodedata.normalize("NFKC", value).strip().lower()


class RegisterRequest(BaseModel):
    email: str = Field(max_length=320, description="Unique; compared without regard to case.")
    password: str = Field(min_length=8, max_length=1024)
    name: str | None = Field(None, max_length=200)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        email = normalize_email(value)
        if not _EMAIL.match(email):
            raise ValueError("not an email address")
        return email

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class UserOut(BaseModel):
    id: UUID
    email: str
    name: str | None
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, created_at=user.created_at)
