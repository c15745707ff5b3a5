"""Receiving upload bodies: streamed, size-capped, hashed while they arrive.

Litestar would read a multipart body whole before the handler runs; evidence bodies are read
here instead, straight from the ASGI stream, so that a body over the limit is refused as soon as
the limit is passed (or before reading at all when `Content-Length` says so), and the SHA-256 is
ready the moment the last byte lands. Bodies are spooled to memory up to 8 MB, then to a
temporary file: Pillow needs random access, and nothing is kept in memory beyond that.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

import multipart
from litestar import Request

from inspection.errors import DomainError, PayloadTooLarge, Rejected
from inspection.evidence.pipeline import SNIFF_BYTES

SPOOL_IN_MEMORY = 8 * 1024 * 1024
MAX_META_BYTES = 16 * 1024
# Room for the multipart framing and the meta part on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024


class IncompleteBody(DomainError):
    """The client went away (or the body ended) before the upload was complete."""

    status = 400
    slug = "incomplete-upload"
    title = "Incomplete upload"


@dataclass
class Spool:
    """A received file: its bytes (memory, then disk), size, SHA-256 and first bytes."""

    file: IO[bytes] = field(
        default_factory=lambda: cast(
            IO[bytes],
            tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY),  # noqa: SIM115 - see close()
        )
    )
    size: int = 0
    head: bytes = b""
    _hash: Any = field(default_factory=hashlib.sha256)

    def write(self, chunk: bytes) -> None:
        """Append a chunk, hashing it."""
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        self._hash.update(chunk)
        self.file.write(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything written so far."""
        return str(self._hash.hexdigest())

    async def chunks(self, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The bytes again, from the start (to store them)."""
        self.file.seek(0)
        while chunk := self.file.read(chunk_size):
            yield chunk

    def close(self) -> None:
        """Release memory or the temporary file."""
        self.file.close()


def too_large(limit: int) -> PayloadTooLarge:
    """The 413 of an upload over `limit` bytes."""
    return PayloadTooLarge(
        f"the file is larger than {limit // (1024 * 1024)} MB (INSPECTION_MAX_UPLOAD_MB)",
        limit_bytes=limit,
    )


def declared_length(request: Request[Any, Any, Any]) -> int | None:
    """`Content-Length`, if the client sent a sane one."""
    raw = request.headers.get("content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


async def body_chunks(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    """The raw request body, chunk by chunk; `IncompleteBody` if the client disconnects."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody("the connection closed before the body was complete")
        body = message.get("body", b"")
        if isinstance(body, bytes) and body:
            yield body
        if not message.get("more_body", False):
            return


@dataclass
class MultipartUpload:
    """The two parts of an evidence upload: the file (spooled) and the JSON `meta`."""

    spool: Spool
    meta: bytes | None
    filename: str | None


class _Parts:
    """Routes parser events: `file` bytes to the spool, `meta` bytes to a small buffer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spool = Spool()
        self.meta: bytearray | None = None
        self.filename: str | None = None
        self.current: str | None = None
        self.seen: set[str] = set()

    def feed(self, event: multipart.MultipartSegment | bytes | None) -> None:
        if isinstance(event, multipart.MultipartSegment):
            self.current = event.name
            if self.current in self.seen and self.current in ("file", "meta"):
                raise Rejected.field(self.current, "sent more than once")
            self.seen.add(self.current)
            if self.current == "file":
                self.filename = event.filename
            elif self.current == "meta":
                self.meta = bytearray()
        elif event is None:
            self.current = None
        elif self.current == "file":
            self.spool.write(event)
            if self.spool.size > self.limit:
                raise too_large(self.limit)
        elif self.current == "meta" and self.meta is not None:
            self.meta += event
            if len(self.meta) > MAX_META_BYTES:
                raise Rejected.field("meta", f"longer than {MAX_META_BYTES} bytes")


async def receive_multipart(request: Request[Any, Any, Any], limit: int) -> MultipartUpload:
    """Read a `multipart/form-data` body with a `file` part and an optional `meta` part."""
    kind, options = multipart.parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary")
    if kind != "multipart/form-data" or not boundary:
        raise Rejected.field(
            "file", "send multipart/form-data with a `file` part and a JSON `meta` part"
        )
    length = declared_length(request)
    if length is not None and length > limit + MULTIPART_OVERHEAD:
        raise too_large(limit)
    parts = _Parts(limit)
    received = 0
    try:
        parser = multipart.PushMultipartParser(boundary, max_header_count=8, max_segment_count=16)
        async for chunk in body_chunks(request):
            received += len(chunk)
            if received > limit + MULTIPART_OVERHEAD:
                raise too_large(limit)
            for event in parser.parse(chunk):
                parts.feed(event)
        for event in parser.parse(b""):
            parts.feed(event)
        if not parser.closed:
            raise IncompleteBody("the multipart body ended early")
        if "file" not in parts.seen:
            raise Rejected.field("file", "missing: send the photo or document in a `file` part")
    except multipart.MultipartError as exc:
        parts.spool.close()
        raise Rejected.field("file", f"malformed multipart body: {exc}") from None
    except BaseException:
        parts.spool.close()
        raise
    meta = bytes(parts.meta) if parts.meta is not None else None
    return MultipartUpload(parts.spool, meta, parts.filename)
