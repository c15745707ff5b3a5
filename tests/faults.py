"""A TCP proxy that injects back-end faults between the service and PostgreSQL or MinIO (tests only).

The service under test is pointed at the proxy's port; the proxy forwards to the real server. The
test then switches the proxy between:

- `recover()`: bytes flow both ways (the initial state);
- `cut()`: every connection is closed and the port refuses new ones (a crashed or stopped server,
  a restart);
- `blackhole()`: connections are accepted and kept, but nothing is forwarded either way (a frozen
  server under SIGSTOP, a network that silently drops packets). `recover()` lets the held bytes
  flow on, as SIGCONT would;
- `PostgresFaultProxy.shut_down()`: what PostgreSQL does during a fast shutdown or while it is
  starting up: each open session gets `FATAL 57P01 admin_shutdown` and is closed, each new one is
  refused with `FATAL 57P03 cannot_connect_now` once it has sent its startup packet.

The proxy runs its own event loop in a daemon thread, so it keeps serving (or stalling) whatever
the test's event loop and the service's worker threads are doing; its methods are called from any
thread and return once the new mode is in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Coroutine
from typing import Any, Literal, Self, TypeVar

T = TypeVar("T")
Mode = Literal["pass", "cut", "blackhole", "shutdown"]
_CHUNK = 64 * 1024


class _Link:
    """One client connection and, once opened, its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.task = asyncio.current_task()
        # What a protocol-aware proxy sends upstream first (PostgreSQL: the startup packet).
        self.preamble = b""
        # PostgreSQL framing of what was forwarded from the server: bytes still due in the
        # current message, and the part of a message header already seen (it can straddle reads).
        self.due = 0
        self.header = b""

    @property
    def between_messages(self) -> bool:
        """Whether the server's stream stopped exactly between two messages."""
        return self.upstream is not None and self.due == 0 and not self.header

    def abort(self) -> None:
        """Drop both sides at once (no graceful close: the server is gone)."""
        for writer in (self.client, self.upstream):
            # A side already closing is left to finish: it may be delivering a last message.
            if writer is not None and not writer.transport.is_closing():
                writer.transport.abort()


class FaultProxy:
    """A proxy on 127.0.0.1:`port` (0: any free port) in front of `upstream`."""

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self.host = "127.0.0.1"
        self.port = port
        self.mode: Mode = "pass"
        # Requests the proxy is sitting on: connections held before reaching upstream, and
        # reads it received but may not forward (a test waits on this to know its requests hang).
        self.stalled = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"fault-proxy-{upstream[1]}", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._flowing: asyncio.Event | None = None

    # --- control, from any thread --------------------------------------------------------------

    def start(self) -> Self:
        """Listen and forward."""
        self._thread.start()
        self._call(self._start())
        return self

    @property
    def address(self) -> str:
        """`host:port` to give the service instead of the real server's."""
        return f"{self.host}:{self.port}"

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self._call(self._cut())

    def blackhole(self) -> None:
        """Accept and keep connections, forward nothing."""
        self._call(self._blackhole())

    def recover(self) -> None:
        """Forward again (held bytes go on; the port listens again after a cut)."""
        self._call(self._recover())

    def close(self) -> None:
        """Stop listening, drop every connection and stop the proxy's thread."""
        if not self._thread.is_alive():
            return
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # --- inside the proxy's loop ---------------------------------------------------------------

    @property
    def _flow(self) -> asyncio.Event:
        assert self._flowing is not None
        return self._flowing

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        self.mode = "cut"
        self._flow.clear()
        if self._server is not None:
            self._server.close()  # the port now refuses connections
            self._server = None
        for link in self._links:
            link.abort()
        await self._end_all()

    async def _end_all(self) -> None:
        """End every connection's task and wait for it (none is left pending at close)."""
        tasks = [link.task for link in self._links if link.task is not None]
        self._links.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def _blackhole(self) -> None:
        self.mode = "blackhole"
        self._flow.clear()

    async def _recover(self) -> None:
        if self._server is None:
            await self._listen()
        self.mode = "pass"
        self._flow.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        self._links.add(link)
        try:
            await self._hold()
            if not await self._before_upstream(link, reader):
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                return  # the real server is down: so is the proxy, for this client
            link.upstream = up_writer
            if link.preamble:
                up_writer.write(link.preamble)
                await up_writer.drain()
            await asyncio.gather(
                self._pump(link, reader, up_writer, upstream=False),
                self._pump(link, up_reader, writer, upstream=True),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass  # a side went away: drop the other one too
        except asyncio.CancelledError:
            pass  # cut or shut down: this task is the connection's whole life, it ends here
        finally:
            link.abort()
            self._links.discard(link)

    async def _hold(self) -> None:
        """Wait while black-holed, counted as a stalled request."""
        if self._flow.is_set():
            return
        self.stalled += 1
        try:
            await self._flow.wait()
        finally:
            self.stalled -= 1

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        upstream: bool,
    ) -> None:
        while True:
            await self._flow.wait()
            data = await reader.read(_CHUNK)
            if not data:
                break
            await self._hold()  # black-holed while this read was on its way: keep it
            self._forwarded(link, data, upstream=upstream)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()

    # Hooks for protocol-aware subclasses.

    async def _before_upstream(self, link: _Link, reader: asyncio.StreamReader) -> bool:
        """Whether to connect this client upstream (False: the hook answered it, drop it)."""
        return True

    def _forwarded(self, link: _Link, data: bytes, *, upstream: bool) -> None:
        """`data` is about to be forwarded (from the server when `upstream`)."""


# PostgreSQL wire protocol (v3): the pre-startup requests and an ErrorResponse.
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


def _error_response(code: str, message: str) -> bytes:
    """A FATAL ErrorResponse message with SQLSTATE `code`."""
    fields = b"".join(
        kind + value.encode() + b"\0"
        for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


class PostgresFaultProxy(FaultProxy):
    """A `FaultProxy` that also knows enough of PostgreSQL's protocol to shut down like it.

    It answers SSL and GSS encryption requests itself ("N": not supported, which clients with
    the default `sslmode=prefer` accept), so that the stream it forwards from the server starts
    with framed messages and it always knows whether it sits between two of them: only there can
    it slip in an error message without corrupting the stream.
    """

    def shut_down(self) -> None:
        """Sessions get FATAL 57P01 and are closed; new ones get FATAL 57P03."""
        self._call(self._shut_down())

    async def _shut_down(self) -> None:
        self.mode = "shutdown"
        self._flow.clear()
        notice = _error_response("57P01", "terminating connection due to administrator command")
        for link in self._links:
            if link.upstream is not None:
                link.upstream.transport.abort()
            if link.between_messages:
                # A graceful close, so the notice is delivered before the end of the stream.
                link.client.write(notice)
                link.client.close()
            else:
                link.client.transport.abort()
        await self._end_all()
        # New sessions are answered by `_before_upstream` while the mode lasts.
        self._flow.set()

    async def _before_upstream(self, link: _Link, reader: asyncio.StreamReader) -> bool:
        length, code = struct.unpack("!II", await reader.readexactly(8))
        while code in {_SSL_REQUEST, _GSSENC_REQUEST}:
            link.client.write(b"N")
            await link.client.drain()
            length, code = struct.unpack("!II", await reader.readexactly(8))
        rest = await reader.readexactly(length - 8)
        if self.mode == "shutdown":
            link.client.write(_error_response("57P03", "the database system is shutting down"))
            await link.client.drain()
            return False
        link.preamble = struct.pack("!II", length, code) + rest
        return True

    def _forwarded(self, link: _Link, data: bytes, *, upstream: bool) -> None:
        if not upstream:
            return
        view = memoryview(data)
        while view:
            if link.due > 0:
                step = min(link.due, len(view))
                link.due -= step
                view = view[step:]
                continue
            missing = 5 - len(link.header)
            link.header += bytes(view[:missing])
            view = view[missing:]
            if len(link.header) < 5:
                break
            link.due = struct.unpack("!I", link.header[1:5])[0] - 4
            link.header = b""
