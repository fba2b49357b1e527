"""Misbehaving clients for the bulkhead tests: slow calls and dribbled bodies, over raw sockets.

Each client may bind its own loopback address (127.0.0.x) to look like another machine.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from urllib.parse import urlsplit


def _host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def _status(reader: asyncio.StreamReader, timeout: float) -> int:
    line = await asyncio.wait_for(reader.readline(), timeout)
    return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else 0


async def slow_call(base_url: str, target: str, source: str, timeout: float) -> int:
    """``GET target`` from ``source``; the answer's status (0: no answer, the connection failed)."""
    host, port = _host_port(base_url)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=(source, 0)), timeout)
    except (OSError, TimeoutError):
        return 0
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        return await _status(reader, timeout)
    except (OSError, TimeoutError, ValueError, IndexError):
        return 0
    finally:
        writer.close()


async def dribble(
    base_url: str,
    target: str,
    source: str,
    *,
    length: int = 1000,
    every: float = 0.2,
    timeout: float = 30,
    headers: str = "",
) -> int:
    """``POST target`` announcing ``length`` bytes and sending one every ``every`` seconds.

    Stops sending when the gateway answers; returns that status (0: none within ``timeout``).
    """
    host, port = _host_port(base_url)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=(source, 0)), timeout)
    except (OSError, TimeoutError):
        return 0
    head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{headers}"
    answer = asyncio.ensure_future(_status(reader, timeout))
    try:
        writer.write(f"{head}Content-Length: {length}\r\n\r\n".encode())
        for _ in range(length):
            if answer.done():
                break
            writer.write(b" ")
            await writer.drain()
            await asyncio.wait([answer], timeout=every)
        return await answer
    except (OSError, TimeoutError, ValueError, IndexError):
        return 0
    finally:
        answer.cancel()
        writer.close()


def sources(count: int, subnet: str = "127.0.1") -> list[str]:
    """``count`` loopback addresses to send from, one per pretend machine."""
    return [f"{subnet}.{i}" for i in range(1, count + 1)]


def tally(statuses: list[int]) -> dict[int, int]:
    return dict(sorted(Counter(statuses).items()))


async def flood(base_url: str, slow_target: str, slow: int, dribbled: int, every: float) -> None:
    """The attack of the bulkhead test, from its own process (another machine, as far as it can be)."""
    slow_tasks = [
        asyncio.create_task(slow_call(base_url, slow_target, address, timeout=30))
        for address in sources(50, "127.0.1") * (slow // 50)
    ]
    dribblers = [
        asyncio.create_task(dribble(base_url, "/ping", address, every=every))
        for address in sources(20, "127.0.2") * (dribbled // 20)
    ]
    # Steady: every call the gateway sheds has its answer (nothing new for 0.5 s; at most 20 s).
    settled, done = 0, -1
    for _ in range(200):
        await asyncio.sleep(0.1)
        now_done = sum(task.done() for task in slow_tasks)
        settled = settled + 1 if now_done == done else 0
        done = now_done
        if settled >= 5:
            break
    print("flooding", flush=True)
    print(json.dumps({"slow": await asyncio.gather(*slow_tasks), "dribbled": await asyncio.gather(*dribblers)}))


if __name__ == "__main__":
    url, target, slow_count, dribbled_count, interval = sys.argv[1:6]
    asyncio.run(flood(url, target, int(slow_count), int(dribbled_count), float(interval)))
