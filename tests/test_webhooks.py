"""Webhooks: events are queued in the transaction that makes them, delivered by `jobs run` with
an HMAC-SHA256 signature, retried with backoff while the receiver is down, and never lost or
delivered twice."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from inspection.jobs import JobReport, run_jobs
from tests.asgi import in_app_loop
from tests.conftest import ADMIN_PASSWORD, Backend, make_app
from tests.helpers import Api
from tests.test_actions import START, case

SECRET = "webhook-secret-of-the-province"


class Receiver:
    """A real HTTP receiver on a fixed port that can be down or up."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.received: list[dict[str, Any]] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/inspection"

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


async def test_a_receiver_that_is_down_loses_nothing(
    backend: Backend, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = backend.settings(tmp_path, webhook_url=receiver.url, webhook_secret=SECRET)
    app = await make_app(settings)
    async with AsyncTestClient(app) as client:
        api = Api(client)
        await api.sign_in("admin", ADMIN_PASSWORD)
        c = await case(api, app)
        action = await c.create()
        head = await c.user("head.c1")
        await c.move(head, action["id"], "start")
        state = app.state

        async def jobs(after: timedelta) -> JobReport:
            moment = START + after
            return await in_app_loop(client, run_jobs, state.database, state.settings, moment)

        down = await jobs(timedelta(minutes=1))
        assert down.delivered == 0 and down.failed_attempts == 2  # created, started
        assert receiver.received == []
        too_soon = await jobs(timedelta(minutes=1, seconds=30))  # backoff: not yet
        assert too_soon.failed_attempts == 0 and too_soon.delivered == 0
        receiver.start()
        up = await jobs(timedelta(minutes=5))
        assert up.delivered == 2
        again = await jobs(timedelta(minutes=30))
        assert again.delivered == 0 and len(receiver.received) == 2
        events = [json.loads(r["body"]) for r in receiver.received]
        assert [e["event"] for e in events] == ["created", "started"]
        assert {e["action_id"] for e in events} == {action["id"]}
        for r in receiver.received:
            headers = {k.lower(): v for k, v in r["headers"].items()}
            stamp, mac = (
                part.split("=", 1)[1] for part in headers["x-inspection-signature"].split(",")
            )
            expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + r["body"], hashlib.sha256)
            assert hmac.compare_digest(mac, expected.hexdigest())
            assert headers["x-inspection-event"] in {"created", "started"}
        ids = {r["headers"]["X-Inspection-Delivery"] for r in receiver.received}
        assert len(ids) == 2  # one delivery id per event: receivers can drop duplicates

    # The delivery log shows each delivery with its attempts.
    import anyio.to_thread
    from click.testing import CliRunner

    from inspection.cli import main
    from tests.test_evidence import _cli_env

    monkeypatch.setenv("INSPECTION_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("INSPECTION_WEBHOOK_SECRET", SECRET)
    _cli_env(monkeypatch, settings)
    log = await anyio.to_thread.run_sync(
        lambda: CliRunner().invoke(main, ["jobs", "deliveries", "--status", "delivered"])
    )
    assert log.exit_code == 0, log.output
    lines = log.output.strip().splitlines()
    assert len(lines) == 2 and all("delivered" in line and " 2 attempts" in line for line in lines)


async def test_deliveries_give_up_after_the_last_attempt(
    backend: Backend, tmp_path: Path, receiver: Receiver
) -> None:
    """A receiver that never comes back: retried with growing delays, then marked failed and
    left alone (the log keeps it)."""
    settings = backend.settings(
        tmp_path, webhook_url=receiver.url, webhook_secret=SECRET, webhook_max_attempts=3
    )
    app = await make_app(settings)
    async with AsyncTestClient(app) as client:
        api = Api(client)
        await api.sign_in("admin", ADMIN_PASSWORD)
        c = await case(api, app)
        await c.create()
        state = app.state

        async def jobs(after: timedelta) -> JobReport:
            return await in_app_loop(
                client, run_jobs, state.database, state.settings, START + after
            )

        first = await jobs(timedelta(minutes=1))  # attempt 1; next in 1 minute
        assert (first.failed_attempts, first.given_up) == (1, 0)
        assert (await jobs(timedelta(minutes=1, seconds=30))).failed_attempts == 0  # backing off
        second = await jobs(timedelta(minutes=3))  # attempt 2; next in 2 minutes
        assert (second.failed_attempts, second.given_up) == (1, 0)
        assert (await jobs(timedelta(minutes=4))).failed_attempts == 0
        third = await jobs(timedelta(minutes=6))  # attempt 3: the last
        assert (third.failed_attempts, third.given_up) == (0, 1)
        receiver.start()
        after = await jobs(timedelta(hours=12))
        assert (after.delivered, after.failed_attempts) == (0, 0)
        assert receiver.received == []
