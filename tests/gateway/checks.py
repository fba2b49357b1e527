"""A raw HTTP/1.1 client for the gateway tests.

httpx normalises what it sends (dot segments, default headers); the raw client sends
exactly the bytes a test writes, which is what hop-by-hop and traversal tests need.
"""

from __future__ import annotations

import socket


def raw_request(port: int, head: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and header lines, no body) and read until the server closes.

    ``head`` must ask for ``Connection: close``. Returns status, headers (lower-case
    names) and the body bytes as received.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.strip().replace("\n", "\r\n").encode() + b"\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    header_block, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body
