"""Raw ASGI requests, for what HTTP clients cannot do on purpose: a body without a length that
runs past a limit, or a connection that breaks halfway through a body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import anyio
from litestar import Litestar

T = TypeVar("T")


@dataclass
class RawResponse:
    """Status, headers (lower-case names) and body of a raw ASGI exchange."""

    status: int
    headers: dict[str, str]
    body: bytes


async def raw_request(
    app: Litestar,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Sequence[bytes],
    *,
    disconnect: bool = False,
) -> RawResponse:
    """Send `chunks` as the body (chunked: no Content-Length unless given); with `disconnect`,
    the client goes away after the last chunk instead of ending the body."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks
    ]
    messages.append(
        {"type": "http.disconnect"}
        if disconnect
        else {"type": "http.request", "body": b"", "more_body": False}
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return RawResponse(start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body)


async def in_app_loop(client: Any, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Run `fn(*args)` on the event loop of the app under `client` (Litestar's test client runs
    the app on its own loop in another thread; database connections belong to that loop)."""
    portal = client.blocking_portal
    return await anyio.to_thread.run_sync(lambda: portal.call(partial(fn, *args, **kwargs)))
