"""Request bodies: read whole, bounded in size and in time, before an upstream is asked.

The gateway buffers a request body (at most ``MAX_BODY_BYTES``, 1 MiB by default)
before it takes an upstream slot, so a client that dribbles its body holds a slot of
its own client budget only, never a connection to a service; and a body in memory
can be sent again when a retry is allowed (:mod:`gateway.retry`). The whole body
must arrive within ``BODY_READ_TIMEOUT_SECONDS``: 408 problem otherwise.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from services.kit.problem import Problem

_CHUNK_BYTES = 64 * 1024


async def read_body(request: web.Request, limit: int, timeout_seconds: float) -> bytes | None:
    """The request's body (``None`` without one); 413 over ``limit`` bytes, 408 when it comes too slowly."""
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, f"the request body is larger than {limit} bytes")
    if not request.body_exists:
        return None
    chunks: list[bytes] = []
    seen = 0
    try:
        async with asyncio.timeout(timeout_seconds):
            async for chunk in request.content.iter_chunked(_CHUNK_BYTES):
                seen += len(chunk)
                if seen > limit:
                    raise Problem(413, f"the request body is larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise Problem(408, f"the request body did not arrive within {timeout_seconds:g} s") from None
    return b"".join(chunks)
