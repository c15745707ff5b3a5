"""The decode memory budget: one per process, weighted by bytes, first come first served.

Decoding a photo costs memory out of proportion to its file: a 250 KB PNG of 60 MP decodes to
240 MB. The number of decodes in flight is bounded only by the thread pool (40 per worker), so
uploads that arrive together could add up to gigabytes. Every image therefore passes through
`DecodeBudget.admit` with the peak its processing needs (`pipeline.ImageHeader.peak_bytes`,
estimated from the header before a pixel is decoded):

- an image that needs more than the whole budget is refused at once (422): it can never fit;
- otherwise it waits in line, first come first served, until its bytes (and a decode slot: no
  more decodes run at once than the machine has CPUs) are free. A big image at the head of the
  line is never overtaken by small ones, so it cannot starve;
- a wait is bounded (`ADMISSION_WAIT_SECONDS`): then the answer is 503 with `Retry-After`,
  never an endless wait;
- the reservation is returned when the block ends, whatever ends it (success, a damaged file,
  a cancelled request). Pillow runs in worker threads; admission happens on the event loop
  before the work is handed to a thread, and a thread that is still decoding keeps its
  reservation until it has finished (`anyio.to_thread.run_sync` waits for it even when the
  request is cancelled).

The budget is shared by every app of the process with the same limit (`budget_for`) and may be
used from several event loops (the test suite runs apps on loops of their own): its state is
guarded by a thread lock, and each waiter is woken on its own loop.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from inspection.errors import Rejected, TooManyRequests

MIB = 1024 * 1024
# How long an upload waits in line for decode memory before it is told to come back (503):
# longer than a worst-case decode (about 2 s for 60 MP on one core) times the slots ahead of it,
# shorter than clients' request timeouts.
ADMISSION_WAIT_SECONDS = 30.0
RETRY_AFTER_SECONDS = 5


class DecodeBusy(TooManyRequests):
    """Every byte of the decode budget stayed taken for the whole wait; retry shortly.

    A `TooManyRequests`, so the answer carries `Retry-After` like every "come back later".
    """

    status = 503
    slug = "unavailable"
    title = "Service unavailable"


def megabytes(size: int) -> int:
    """Bytes as whole MB (MiB), rounded up: what an image needs is never understated."""
    return math.ceil(size / MIB)


def decode_slots() -> int:
    """How many decodes may run at once: the CPUs this process may use. Decoding is CPU work
    (Pillow releases the GIL), so more at once only adds memory and latency."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(eq=False)
class _Waiter:
    """One upload in line: what it needs, and how to wake it on its own event loop."""

    size: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    # Set under the budget's lock when the bytes are handed over: from then on, the waiter owns
    # them, even if it is cancelled before it wakes up.
    granted: bool = False


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(eq=False)
class DecodeBudget:
    """Bytes and decode slots shared by the decodes of one process, handed out in order."""

    capacity: int
    slots: int = field(default_factory=decode_slots)
    _used: int = field(default=0, init=False)
    _active: int = field(default=0, init=False)
    _line: deque[_Waiter] = field(default_factory=deque, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def in_use(self) -> int:
        """Bytes reserved by decodes that were admitted and have not finished."""
        return self._used

    @property
    def active(self) -> int:
        """Decodes admitted and not finished."""
        return self._active

    @property
    def waiting(self) -> int:
        """Uploads in line."""
        return len(self._line)

    @asynccontextmanager
    async def admit(
        self, size: int, wait: float | None = None, what: str = "the image"
    ) -> AsyncIterator[None]:
        """Hold `size` bytes of the budget (and a decode slot) for the `async with` block.

        Raises `Rejected` (422, field `file`) at once when `size` exceeds the whole budget, and
        `DecodeBusy` (503 + Retry-After) when the bytes did not come free within `wait` seconds
        (`ADMISSION_WAIT_SECONDS` by default).
        """
        if size > self.capacity:
            raise Rejected.field(
                "file",
                f"{what} needs {megabytes(size):,} MB of memory to process and the limit is "
                f"{megabytes(self.capacity):,} MB; send it with fewer pixels",
            )
        await self._acquire(size, ADMISSION_WAIT_SECONDS if wait is None else wait)
        try:
            yield
        finally:
            self._release(size)

    async def _acquire(self, size: int, wait: float) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            # Nobody in line and room now: go. With anyone in line, queue behind them even if
            # this one would fit (no overtaking: a big image at the head must not starve).
            if not self._line and self._fits(size):
                self._take(size)
                return
            waiter = _Waiter(size, loop, loop.create_future())
            self._line.append(waiter)
        try:
            with anyio.fail_after(wait):
                await waiter.future
        except BaseException as exc:
            with self._lock:
                if waiter.granted:
                    if isinstance(exc, TimeoutError):
                        return  # handed over just as the wait ran out: keep it
                    self._give_back(size)  # cancelled: give it back
                else:
                    self._line.remove(waiter)
                    # The head leaving may let the next ones in.
                    self._hand_over()
            if isinstance(exc, TimeoutError):
                raise DecodeBusy(
                    f"the server is busy processing other photos (waited {wait:g} s for "
                    f"{megabytes(size):,} MB of decode memory); send it again in a moment",
                    retry_after=RETRY_AFTER_SECONDS,
                ) from None
            raise

    def _release(self, size: int) -> None:
        with self._lock:
            self._give_back(size)

    # --- under the lock ----------------------------------------------------------------------

    def _fits(self, size: int) -> bool:
        return self._used + size <= self.capacity and self._active < self.slots

    def _take(self, size: int) -> None:
        self._used += size
        self._active += 1

    def _give_back(self, size: int) -> None:
        self._used -= size
        self._active -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """Admit waiters from the head of the line for as long as they fit, in order."""
        while self._line and self._fits(self._line[0].size):
            waiter = self._line.popleft()
            self._take(waiter.size)
            waiter.granted = True
            try:
                waiter.loop.call_soon_threadsafe(_wake, waiter.future)
            except RuntimeError:  # its event loop is closed: nobody will use these bytes
                self._used -= waiter.size
                self._active -= 1


_BUDGETS: dict[int, DecodeBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(capacity: int) -> DecodeBudget:
    """The process's budget of `capacity` bytes (`Settings.decode_memory_bytes`): every app and
    request of the process with that setting shares one."""
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(capacity)
        if budget is None:
            budget = _BUDGETS[capacity] = DecodeBudget(capacity)
        return budget
