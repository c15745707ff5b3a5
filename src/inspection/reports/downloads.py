"""Turning a `ReportDocument` into a download: the renderers, off the event loop.

The renderers (`inspection.reports.render.csv.stream(table)`, `.xlsx.write(doc, path)`,
`.pdf.render(doc)`) are synchronous. They run in worker threads of one bounded pool
(`RENDER_THREADS`), so a burst of exports cannot take every thread of the process:

- CSV streams: the renderer's pieces are gathered in blocks of about `BLOCK_BYTES` in the worker
  thread, one thread hop per block, and sent as they come;
- XLSX is written to a temporary file in a worker thread, then streamed from it (deleted as soon
  as it is open, so no file outlives its download);
- PDF is rendered to bytes in a worker thread, within `PDF_SECONDS`.

Rows that stream from the database (the findings register) reach the renderer through `RowFeed`:
the worker thread asks the event loop for the next chunk, so memory holds one chunk at a time.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread
from anyio import from_thread

from inspection.reports.document import Cell, ReportDocument, Table
from inspection.reports.render import csv as csv_render
from inspection.reports.render import pdf as pdf_render
from inspection.reports.render import xlsx as xlsx_render

T = TypeVar("T")

RENDER_THREADS = 2
BLOCK_BYTES = 64 * 1024
FILE_CHUNK_BYTES = 256 * 1024
PDF_SECONDS = 60.0
MEDIA_TYPES = {
    # Litestar adds "; charset=utf-8" to every text/* type itself.
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}

_limiter: anyio.CapacityLimiter | None = None


def _threads() -> anyio.CapacityLimiter:
    """The renderers' thread pool (created in the running loop on first use)."""
    global _limiter  # noqa: PLW0603 - one pool per process, made lazily inside the event loop
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(RENDER_THREADS)
    return _limiter


# --- what a download is ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Download:
    """A file to send: its name, type, and bytes (whole, or as they are made)."""

    file_name: str
    media_type: str
    body: bytes | AsyncIterator[bytes]


# --- rows from the event loop, for a renderer in a worker thread -----------------------------


class RowFeed(Iterable[tuple[Cell, ...]]):
    """The rows of an async source, iterated by a renderer running in a worker thread.

    Each time the renderer needs more, the thread runs one `anext` of the source on the event
    loop (`anyio.from_thread.run`) and waits for it: the source is only ever used by one caller at
    a time, and memory holds one chunk. Iterate it only inside `anyio.to_thread.run_sync`, and
    within `async with`, which closes the source however the download ends (its transaction
    ends with it, not whenever the garbage collector finds the generator).

    Reading a chunk ahead while the previous one renders was measured and gained nothing: both
    are Python work under one GIL (bench/reports.py, docs/benchmarks.md).
    """

    def __init__(
        self, chunks: AsyncGenerator[list[T], None], cells: Callable[[T], tuple[Cell, ...]]
    ) -> None:
        self._chunks = chunks
        self._cells = cells

    async def __aenter__(self) -> RowFeed:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._chunks.aclose()

    async def _next(self) -> list[tuple[Cell, ...]] | None:
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            return None
        return [self._cells(item) for item in chunk]

    def __iter__(self) -> Iterator[tuple[Cell, ...]]:
        while (chunk := from_thread.run(self._next)) is not None:
            yield from chunk


# --- the three formats -----------------------------------------------------------------------


def _take(pieces: Iterator[bytes]) -> bytes:
    """The next block of at least `BLOCK_BYTES` (less at the end, empty when done)."""
    block = bytearray()
    for piece in pieces:
        block += piece
        if len(block) >= BLOCK_BYTES:
            break
    return bytes(block)


async def csv_body(table: Table) -> AsyncIterator[bytes]:
    """The table as CSV, block by block, rendered in a worker thread."""
    pieces: list[Iterator[bytes]] = []

    def next_block() -> bytes:
        if not pieces:  # the renderer starts in the worker thread too
            pieces.append(iter(csv_render.stream(table)))
        return _take(pieces[0])

    while block := await anyio.to_thread.run_sync(next_block, limiter=_threads()):
        yield block


async def csv_lines_body(
    head: bytes, lines: AsyncGenerator[list[str], None]
) -> AsyncIterator[bytes]:
    """A CSV whose rows the database wrote (`render.csv.sql_line`): `head` (the BOM and the
    header row), then each chunk of lines as one block, CRLF after every row. The source is
    closed however the download ends."""
    yield head
    async with contextlib.aclosing(lines):
        async for chunk in lines:
            chunk.append("")  # the last row's line end
            yield csv_render.LINE_END.join(chunk).encode()


async def xlsx_file(doc: ReportDocument) -> Path:
    """The workbook, written to a temporary file in a worker thread; the caller deletes it."""
    handle, name = tempfile.mkstemp(prefix="inspection-report-", suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        await anyio.to_thread.run_sync(xlsx_render.write, doc, path, limiter=_threads())
    except BaseException:
        await anyio.Path(path).unlink(missing_ok=True)
        raise
    return path


async def open_and_delete(path: Path) -> anyio.AsyncFile[bytes]:
    """A temporary file opened for reading and already deleted: its bytes stay readable through
    the handle, and nothing is left on disk whatever happens to the download (sent, broken off,
    never started)."""
    try:
        return await anyio.open_file(path, "rb")
    finally:
        await anyio.Path(path).unlink(missing_ok=True)


async def file_body(handle: anyio.AsyncFile[bytes]) -> AsyncIterator[bytes]:
    """An open file's bytes, chunk by chunk; the file is closed at the end."""
    async with handle:
        while chunk := await handle.read(FILE_CHUNK_BYTES):
            yield chunk


async def xlsx_body(doc: ReportDocument) -> AsyncIterator[bytes]:
    """The workbook, written when the download starts (rows that stream from the database are
    read while it is written), then sent from its file."""
    handle = await open_and_delete(await xlsx_file(doc))
    async for chunk in file_body(handle):
        yield chunk


async def pdf_bytes(doc: ReportDocument) -> bytes:
    """The PDF, rendered in a worker thread within `PDF_SECONDS` (a `TimeoutError` past it,
    answered 503 like any back-end that does not answer in time)."""
    with anyio.fail_after(PDF_SECONDS):
        return await anyio.to_thread.run_sync(
            pdf_render.render, doc, limiter=_threads(), abandon_on_cancel=True
        )


async def download(doc: ReportDocument, extension: str) -> Download:
    """A whole document (not streamed from the database) as `csv` (its main table), `xlsx` or
    `pdf`."""
    name, media_type = doc.file_name(extension), MEDIA_TYPES[extension]
    if extension == "pdf":
        return Download(name, media_type, await pdf_bytes(doc))
    if extension == "xlsx":
        handle = await open_and_delete(await xlsx_file(doc))
        return Download(name, media_type, file_body(handle))
    return Download(name, media_type, csv_body(doc.tables[0]))
