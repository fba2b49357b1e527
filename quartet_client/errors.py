"""What the client raises when the suite answers otherwise than the call expects."""

from __future__ import annotations

import httpx


class Refused(Exception):
    """The suite answered ``call`` (a step of a flow, or ``METHOD /path``) with an unexpected status."""

    def __init__(self, call: str, resp: httpx.Response) -> None:
        super().__init__(f"{call}: {resp.status_code} {resp.text[:2000]}")
        self.call = call
        self.response = resp


class SignInFailed(Refused):
    """A step of registering or signing in got another answer than the flow expects."""


class ApiError(Refused):
    """A call to the public API got another status than the contract's success."""
