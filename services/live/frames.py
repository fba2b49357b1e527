"""The Server-Sent Events frames of a live stream (UTF-8, ``\\n`` line ends; docs/live.md)."""

from __future__ import annotations

import json

from services.live.schemas import Ready, Reset

RETRY_MS = 2000
HEARTBEAT = b": hb\n\n"
EXPIRED = b"event: expired\ndata: {}\n\n"
CLOSING = b"event: closing\ndata: {}\n\n"


def _data(model: Ready | Reset) -> str:
    return json.dumps(model.model_dump(), separators=(",", ":"))


def opening(*, resumed: bool, window_seconds: int) -> bytes:
    """``retry:`` then ``event: ready``: the first bytes of every stream."""
    ready = _data(Ready(resumed=resumed, window_seconds=window_seconds))
    return f"retry: {RETRY_MS}\n\nevent: ready\ndata: {ready}\n\n".encode()


def reset(reason: str) -> bytes:
    return f"event: reset\ndata: {_data(Reset(reason=reason))}\n\n".encode()


def event(entry_id: str, event_type: str, data_json: str) -> bytes:
    """One event; ``data_json`` is one line of JSON (json.dumps escapes newlines)."""
    return f"id: {entry_id}\nevent: {event_type}\ndata: {data_json}\n\n".encode()
