"""`inspection serve` as an operator runs it, for the tests that need the real server (uvicorn's
limits and proxy headers are not part of the ASGI app)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import ADMIN_PASSWORD


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def serving(data_dir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`inspection serve` on a free loopback port, on SQLite in `data_dir`, until the block ends;
    yields the port and the process."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INSPECTION_")},
        "INSPECTION_DATA_DIR": str(data_dir),
        "INSPECTION_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "INSPECTION_ARGON2_MEMORY_KIB": "8192",
        "INSPECTION_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(  # noqa: S603 - our own command, from this venv
        [str(Path(sys.executable).parent / "inspection"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "inspection serve did not start"
            time.sleep(0.2)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
