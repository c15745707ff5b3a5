"""tus 1.0 resumable uploads: creation, PATCH with checksums, HEAD to resume after a broken
connection, completion into evidence with the same checks, termination and expiry."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy import text, update

from inspection.app import create_app
from inspection.db.session import transaction
from inspection.evidence import uploads
from inspection.evidence.maintenance import sweep
from inspection.evidence.models import Upload
from inspection.settings import Settings
from inspection.storage import ObjectStore
from tests import images
from tests.asgi import RawResponse, in_app_loop, raw_request
from tests.conftest import Backend
from tests.helpers import Api, problem
from tests.test_evidence import Scene, scene

TUS = {"Tus-Resumable": "1.0.0"}
ORIGIN = "https://app.example.gov.vn"
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    """A 2 MB upload limit, as in the multipart tests, and a web client's origin."""
    return backend.settings(tmp_path, max_upload_mb=2, cors_origins=(ORIGIN,))


def metadata(**pairs: str) -> str:
    """`Upload-Metadata`: `key base64(value)` pairs."""
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


async def create(
    user: Api, s: Scene, data: bytes, evidence_id: str | None = None, **extra: str
) -> tuple[str, str]:
    """A new upload for `data`; returns its URL and the evidence id."""
    evidence_id = evidence_id or str(uuid.uuid4())
    response = await user.post(
        "/api/v1/uploads",
        headers={
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(
                finding_id=s.finding_id, evidence_id=evidence_id, filename="IMG_1.jpg", **extra
            ),
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["Tus-Resumable"] == "1.0.0" and "Upload-Expires" in response.headers
    return response.headers["Location"], evidence_id


async def offset(user: Api, url: str) -> int:
    response = await user.request("HEAD", url, headers=TUS)
    assert response.status_code == 200, response.status_code
    assert response.headers["Cache-Control"] == "no-store"
    return int(response.headers["Upload-Offset"])


def sha1(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()  # noqa: S324


async def test_options_advertise_the_protocol(api: Api) -> None:
    response = await api.client.options("/api/v1/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) >= {"creation", "checksum"}
    assert int(response.headers["Tus-Max-Size"]) == 2 * 1024 * 1024
    assert "sha1" in response.headers["Tus-Checksum-Algorithm"].split(",")


async def test_upload_in_chunks_becomes_evidence(api: Api) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg(exif=images.exif_bytes(6))
    url, evidence_id = await create(
        inspector, s, photo, caption="Sổ theo dõi hồ sơ", lat="21.59", lon="105.84"
    )
    assert await offset(inspector, url) == 0
    half = len(photo) // 2
    first = await inspector.patch(
        url,
        content=photo[:half],
        headers={**PATCH, "Upload-Offset": "0", "Upload-Checksum": sha1(photo[:half])},
    )
    assert first.status_code == 204, first.text
    assert int(first.headers["Upload-Offset"]) == half
    assert await offset(inspector, url) == half
    problem(await inspector.get(f"/api/v1/evidence/{evidence_id}"), 404)  # not yet complete
    last = await inspector.patch(
        url, content=photo[half:], headers={**PATCH, "Upload-Offset": str(half)}
    )
    assert last.status_code == 204, last.text
    assert last.headers["Evidence-Location"] == f"/api/v1/evidence/{evidence_id}"
    stored = (await inspector.get(f"/api/v1/evidence/{evidence_id}")).json()
    assert stored["sha256"] == hashlib.sha256(photo).hexdigest()
    assert (stored["width"], stored["height"]) == (1000, 1600)  # orientation 6: upright portrait
    assert stored["caption"] == "Sổ theo dõi hồ sơ" and stored["position"]["lat"] == 21.59
    assert stored["filename"] == "IMG_1.jpg"
    # A client that lost the last answer asks again and is told it is done.
    assert await offset(inspector, url) == len(photo)
    replay = await inspector.patch(
        url, content=b"", headers={**PATCH, "Upload-Offset": str(len(photo))}
    )
    assert replay.status_code == 204
    # The same file uploaded again under the same evidence id is a retry, not a duplicate.
    again, _ = await create(inspector, s, photo, evidence_id=evidence_id)
    whole = await inspector.patch(again, content=photo, headers={**PATCH, "Upload-Offset": "0"})
    assert whole.status_code == 204
    assert len((await inspector.get(s.url)).json()) == 1


async def test_resume_after_a_broken_connection(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg()
    url, evidence_id = await create(inspector, s, photo)
    cut = len(photo) // 3
    # The connection breaks after a third of the body has arrived.
    broken = await in_app_loop(
        api.client,
        raw_request,
        app,
        "PATCH",
        url,
        {**PATCH, "Upload-Offset": "0", "Authorization": f"Bearer {inspector.token}"},
        [photo[: cut // 2], photo[cut // 2 : cut]],
        disconnect=True,
    )
    assert broken.status in (400, 204)  # nobody is listening; what matters is what was kept
    resumed_at = await offset(inspector, url)
    assert resumed_at == cut  # what arrived was kept: nothing is sent twice
    rest = await inspector.patch(
        url, content=photo[resumed_at:], headers={**PATCH, "Upload-Offset": str(resumed_at)}
    )
    assert rest.status_code == 204, rest.text
    stored = (await inspector.get(f"/api/v1/evidence/{evidence_id}")).json()
    assert stored["sha256"] == hashlib.sha256(photo).hexdigest()
    store: ObjectStore = app.state.object_store
    assert [o.key async for o in store.list("uploads/")] == []  # parts are gone once joined


async def test_protocol_errors(api: Api) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg()
    url, _ = await create(inspector, s, photo)
    no_version = await inspector.patch(
        url, content=photo, headers={"Content-Type": PATCH["Content-Type"], "Upload-Offset": "0"}
    )
    assert problem(no_version, 412)["supported_versions"] == ["1.0.0"]
    problem(await inspector.patch(url, content=photo, headers={**TUS, "Upload-Offset": "0"}), 415)
    wrong_offset = await inspector.patch(
        url, content=photo[:10], headers={**PATCH, "Upload-Offset": "10"}
    )
    assert problem(wrong_offset, 409)["upload_offset"] == 0
    bad_checksum = await inspector.patch(
        url,
        content=photo[:1000],
        headers={**PATCH, "Upload-Offset": "0", "Upload-Checksum": sha1(b"other")},
    )
    assert problem(bad_checksum, 460)["type"] == "/problems/checksum-mismatch"
    assert await offset(inspector, url) == 0  # a damaged chunk is not kept
    unknown_algorithm = await inspector.patch(
        url, content=photo, headers={**PATCH, "Upload-Offset": "0", "Upload-Checksum": "crc32 AA=="}
    )
    assert problem(unknown_algorithm, 422)["errors"][0]["field"] == "Upload-Checksum"
    too_long = await inspector.patch(
        url, content=photo + b"extra", headers={**PATCH, "Upload-Offset": "0"}
    )
    problem(too_long, 413)
    # Someone else's upload does not exist for them.
    other = await api.as_user("inspector2")
    assert (await other.request("HEAD", url, headers=TUS)).status_code == 404
    problem(await other.patch(url, content=photo, headers={**PATCH, "Upload-Offset": "0"}), 404)


async def test_creation_checks_before_any_byte(api: Api) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")

    async def post(headers: dict[str, str]) -> dict[str, Any]:
        response = await inspector.post("/api/v1/uploads", headers=headers)
        return {"status": response.status_code, "body": response.json()}

    ids = {"finding_id": s.finding_id, "evidence_id": str(uuid.uuid4())}
    missing = await post({**TUS, "Upload-Length": "100", "Upload-Metadata": metadata()})
    assert missing["status"] == 422
    assert missing["body"]["errors"][0]["field"] == "Upload-Metadata.finding_id"
    too_big = await post(
        {**TUS, "Upload-Length": str(3 * 1024 * 1024), "Upload-Metadata": metadata(**ids)}
    )
    assert too_big["status"] == 413
    unknown = await post(
        {**TUS, "Upload-Length": "100", "Upload-Metadata": metadata(**ids, colour="red")}
    )
    assert unknown["body"]["errors"][0]["field"] == "Upload-Metadata.colour"
    bad_lat = await post(
        {**TUS, "Upload-Length": "100", "Upload-Metadata": metadata(**ids, lat="north", lon="1")}
    )
    assert bad_lat["body"]["errors"][0]["field"] == "Upload-Metadata.lat"
    garbled = await post({**TUS, "Upload-Length": "100", "Upload-Metadata": "finding_id !!!"})
    assert garbled["status"] == 422
    assert (await post({"Upload-Length": "100", "Upload-Metadata": metadata(**ids)}))[
        "status"
    ] == 412
    # The unit head may not attach evidence: refused at creation, before any byte is sent.
    head = await api.as_user("head.c1")
    refused = await head.post(
        "/api/v1/uploads",
        headers={**TUS, "Upload-Length": "100", "Upload-Metadata": metadata(**ids)},
    )
    problem(refused, 404)


async def test_a_finished_upload_gets_the_same_checks(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    junk = bytes(range(256)) * 20
    url, evidence_id = await create(inspector, s, junk)
    refused = await inspector.patch(url, content=junk, headers={**PATCH, "Upload-Offset": "0"})
    problem(refused, 415)
    problem(await inspector.get(f"/api/v1/evidence/{evidence_id}"), 404)
    photo = images.jpeg()
    url, _ = await create(inspector, s, photo, sha256="0" * 64)
    mismatch = await inspector.patch(url, content=photo, headers={**PATCH, "Upload-Offset": "0"})
    assert problem(mismatch, 422)["errors"][0]["field"] == "meta.sha256"


async def test_termination_and_expiry(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg()
    url, _ = await create(inspector, s, photo)
    await inspector.patch(url, content=photo[:500], headers={**PATCH, "Upload-Offset": "0"})
    deleted = await inspector.delete(url, headers=TUS)
    assert deleted.status_code == 204
    assert (await inspector.request("HEAD", url, headers=TUS)).status_code == 404
    store: ObjectStore = app.state.object_store
    assert [o.key async for o in store.list("uploads/")] == []
    # A partial upload left for more than a day is removed with its parts.
    stale, _ = await create(inspector, s, photo)
    await inspector.patch(stale, content=photo[:500], headers={**PATCH, "Upload-Offset": "0"})
    assert len([o async for o in store.list("uploads/")]) == 1
    today = await in_app_loop(api.client, sweep, app.state.database, store)
    assert today.removed_uploads == 0

    async def expire() -> None:
        async with transaction(app.state.database) as session:
            await session.execute(
                update(Upload).values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
            )

    # Past its expiry and not yet swept: the protocol's 410, for HEAD and PATCH alike.
    await in_app_loop(api.client, expire)
    assert (await inspector.request("HEAD", stale, headers=TUS)).status_code == 410
    gone = await inspector.patch(
        stale, content=photo[500:], headers={**PATCH, "Upload-Offset": "500"}
    )
    assert problem(gone, 410)["type"] == "/problems/upload-expired"
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    report = await in_app_loop(
        api.client, sweep, app.state.database, store, timedelta(hours=24), later
    )
    assert report.removed_uploads == 1
    assert [o.key async for o in store.list("uploads/")] == []
    assert (await inspector.request("HEAD", stale, headers=TUS)).status_code == 404


async def test_browser_clients_may_use_the_protocol(api: Api) -> None:
    """tus-js-client in a browser: the preflight allows PATCH and the tus headers, and answers
    expose the headers it must read (INSPECTION_CORS_ORIGINS)."""
    preflight = await api.client.options(
        "/api/v1/uploads/0190b6a2-0000-7000-8000-000000000000",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "upload-offset,tus-resumable,authorization",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "PATCH" in preflight.headers["access-control-allow-methods"]
    s = await scene(api)
    inspector = await api.as_user("inspector")
    created = await inspector.post(
        "/api/v1/uploads",
        headers={
            **TUS,
            "Origin": ORIGIN,
            "Upload-Length": "10",
            "Upload-Metadata": metadata(finding_id=s.finding_id, evidence_id=str(uuid.uuid4())),
        },
    )
    exposed = created.headers["access-control-expose-headers"].lower()
    assert {"location", "upload-offset", "tus-resumable"} <= set(
        exposed.replace(" ", "").split(",")
    )
    stranger = await api.client.options(
        "/api/v1/uploads",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert stranger.headers.get("access-control-allow-origin") != "https://evil.example"


# --- A PATCH cut off, and the client resuming at once ---------------------------------------
#
# A real server (uvicorn) keeps running a request whose client went away: the PATCH that lost its
# connection still has to store the bytes that arrived and record them. A tus client resumes at
# once: HEAD, then PATCH at the offset HEAD reported, perhaps through another worker. These tests
# drive the app at the ASGI level to reproduce exactly that overlap.

PART_STORE_SECONDS = 0.4  # how long storing a part takes here: MinIO over a busy link


def _scope(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
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
        "client": ("127.0.0.1", 50001),
        "server": ("testserver", 80),
        "state": {},
    }


async def cut_off_patch(
    app: Litestar,
    url: str,
    headers: dict[str, str],
    chunks: Sequence[bytes],
    gone: asyncio.Event,
    *,
    told: bool,
) -> RawResponse:
    """A PATCH whose connection goes away after `chunks`; `gone` is set once the app has read
    them all. With `told` the server hears of it (`http.disconnect`, as after a FIN or RST);
    without, it never hears anything again, like a tablet that left the Wi-Fi mid-body (a
    half-open connection)."""
    pending = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return {"type": "http.request", "body": pending.pop(0), "more_body": True}
        gone.set()
        if not told:
            await asyncio.Event().wait()  # no byte, no close: only the server can end this
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope("PATCH", url, headers), receive, send)  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return RawResponse(start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body)


def slow_part_store(app: Litestar, gate: asyncio.Event | None = None) -> None:
    """Make `app` take its time storing tus parts (`PART_STORE_SECONDS`, or until `gate` opens):
    the window in which an interrupted PATCH has not yet recorded what arrived."""
    store = app.state.object_store
    put = store.put

    async def slow_put(key: str, chunks: Any, *args: Any, **kwargs: Any) -> Any:
        if key.startswith("uploads/"):
            if gate is None:
                await asyncio.sleep(PART_STORE_SECONDS)
            else:
                await gate.wait()
        return await put(key, chunks, *args, **kwargs)

    store.put = slow_put


async def _slow(app: Litestar) -> None:
    """`slow_part_store`, run on the app's event loop."""
    slow_part_store(app)


@asynccontextmanager
async def worker(app: Litestar, settings: Settings, which: str) -> AsyncIterator[Litestar]:
    """The app itself, or another worker on the same database and store: on PostgreSQL it shares
    nothing with the first but the database; on SQLite (served by one process) it shares the
    process too."""
    if which == "same":
        yield app
        return
    other = create_app(settings)
    async with other.lifespan():
        yield other


@dataclass
class Resumption:
    """What the client saw: the cut-off PATCH, the HEAD, and the PATCH that resumed."""

    cut_off: RawResponse | None  # None: still running 5 s after the resumed PATCH
    head: RawResponse
    resumed: RawResponse | None
    head_seconds: float


async def cut_and_resume(
    app: Litestar,
    settings: Settings,
    url: str,
    token: str,
    photo: bytes,
    cut: int,
    *,
    told: bool,
    resume_on: str,
) -> Resumption:
    """Cut a PATCH off after `cut` bytes; at once HEAD and PATCH the rest at the offset HEAD
    reported, on the same worker or another one (runs on the app's event loop)."""
    auth = {"Authorization": f"Bearer {token}"}
    gone = asyncio.Event()
    cut_off = asyncio.ensure_future(
        cut_off_patch(
            app,
            url,
            {**PATCH, **auth, "Upload-Offset": "0"},
            [photo[: cut // 2], photo[cut // 2 : cut]],
            gone,
            told=told,
        )
    )
    try:
        # The bound is on the protocol's steps, not on starting the other worker (which a
        # loaded machine can slow down at will).
        async with worker(app, settings, resume_on) as other, asyncio.timeout(20):
            await gone.wait()
            started = time.monotonic()
            head = await raw_request(other, "HEAD", url, {**TUS, **auth}, [])
            head_seconds = time.monotonic() - started
            resumed = None
            if head.status == 200:
                at = int(head.headers["upload-offset"])
                resumed = await raw_request(
                    other,
                    "PATCH",
                    url,
                    {
                        **PATCH,
                        **auth,
                        "Upload-Offset": str(at),
                        "Content-Length": str(len(photo) - at),
                    },
                    [photo[at:]],
                )
            # The cut-off PATCH must end by itself soon (it is not waited for forever).
            await asyncio.wait({cut_off}, timeout=5)
            ended = cut_off.result() if cut_off.done() else None
            return Resumption(ended, head, resumed, head_seconds)
    finally:
        cut_off.cancel()


@pytest.mark.parametrize("resume_on", ["same", "another"], ids=["one-worker", "two-workers"])
async def test_head_right_after_a_cut_reports_every_byte_kept(
    api: Api, app: Litestar, settings: Settings, resume_on: str
) -> None:
    """The observation: HEAD right after a cut-off PATCH reported the old offset while the bytes
    that arrived were still being stored, so the resumed PATCH got 409 (tuspy then gives up).
    HEAD now waits for the interrupted PATCH to record its part, on any worker."""
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg()
    url, evidence_id = await create(inspector, s, photo)
    cut = len(photo) // 3
    await in_app_loop(api.client, _slow, app)
    seen = await in_app_loop(
        api.client,
        cut_and_resume,
        app,
        settings,
        url,
        inspector.token,
        photo,
        cut,
        told=True,
        resume_on=resume_on,
    )
    assert seen.head.status == 200
    reported = int(seen.head.headers["upload-offset"])
    assert seen.resumed is not None
    assert (reported, seen.resumed.status) == (cut, 204), seen.resumed.body
    assert seen.cut_off is not None and seen.cut_off.status == 400  # nobody listens
    stored = (await inspector.get(f"/api/v1/evidence/{evidence_id}")).json()
    assert stored["sha256"] == hashlib.sha256(photo).hexdigest() and stored["size"] == len(photo)
    assert await offset(inspector, url) == len(photo)
    store: ObjectStore = app.state.object_store
    assert [o.key async for o in store.list("uploads/")] == []


@pytest.mark.parametrize("resume_on", ["same", "another"], ids=["one-worker", "two-workers"])
async def test_head_takes_over_from_a_patch_whose_connection_hangs(
    api: Api, app: Litestar, settings: Settings, resume_on: str
) -> None:
    """A half-open connection: the server never learns that the client left, and its PATCH would
    hold the upload indefinitely. As in tusd, the next request for the upload interrupts it: it
    stops reading, keeps (and records) what arrived, and lets go; HEAD then reports that."""
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg()
    url, evidence_id = await create(inspector, s, photo)
    cut = len(photo) // 2
    seen = await in_app_loop(
        api.client,
        cut_and_resume,
        app,
        settings,
        url,
        inspector.token,
        photo,
        cut,
        told=False,
        resume_on=resume_on,
    )
    assert seen.head.status == 200
    assert int(seen.head.headers["upload-offset"]) == cut
    assert seen.head_seconds < 3
    assert seen.resumed is not None and seen.resumed.status == 204, seen.resumed
    assert seen.cut_off is not None and seen.cut_off.status == 400
    assert b"another request" in seen.cut_off.body
    stored = (await inspector.get(f"/api/v1/evidence/{evidence_id}")).json()
    assert stored["sha256"] == hashlib.sha256(photo).hexdigest()


async def busy_then_dead(
    app: Litestar, url: str, token: str, photo: bytes, cut: int
) -> dict[str, Any]:
    """A PATCH cut off while the store hangs: HEAD and PATCH meanwhile; the store recovers; then
    a PATCH whose request dies (cancelled) mid-body, and HEAD again (on the app's loop)."""
    auth = {"Authorization": f"Bearer {token}"}
    gate = asyncio.Event()
    slow_part_store(app, gate)
    gone = asyncio.Event()
    chunks = [photo[:cut]]
    cut_off = asyncio.ensure_future(
        cut_off_patch(app, url, {**PATCH, **auth, "Upload-Offset": "0"}, chunks, gone, told=True)
    )
    seen: dict[str, Any] = {}
    try:
        async with asyncio.timeout(20):
            await gone.wait()
            started = time.monotonic()
            seen["busy_head"] = await raw_request(app, "HEAD", url, {**TUS, **auth}, [])
            seen["busy_seconds"] = time.monotonic() - started
            seen["busy_patch"] = await raw_request(
                app, "PATCH", url, {**PATCH, **auth, "Upload-Offset": "0"}, [photo]
            )
            seen["advisory_while_busy"] = await _advisory_locks(app)
            gate.set()
            seen["cut_off"] = await cut_off
            seen["head"] = await raw_request(app, "HEAD", url, {**TUS, **auth}, [])
            # A request that dies mid-body (the server cancels it, e.g. while shutting down).
            gone = asyncio.Event()
            dying = asyncio.ensure_future(
                cut_off_patch(
                    app,
                    url,
                    {**PATCH, **auth, "Upload-Offset": str(cut)},
                    [photo[cut : cut + 100]],
                    gone,
                    told=False,
                )
            )
            await gone.wait()
            dying.cancel()
            await asyncio.wait({dying})
            started = time.monotonic()
            seen["after_death"] = await raw_request(app, "HEAD", url, {**TUS, **auth}, [])
            seen["after_death_seconds"] = time.monotonic() - started
            seen["advisory_locks"] = await _advisory_locks(app)
    finally:
        gate.set()
        cut_off.cancel()
    return seen


async def _advisory_locks(app: Litestar) -> int:
    """Advisory locks held in the app's PostgreSQL database now (0 on SQLite, which has none)."""
    database = app.state.database
    if database.engine.dialect.name != "postgresql":
        return 0
    async with database.read_session() as session:
        held = await session.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
    return int(held or 0)


async def test_a_busy_upload_answers_423_in_bounded_time_and_no_lock_outlives_its_request(
    api: Api, app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEAD never hangs: when the interrupted PATCH cannot record its part in time (the store
    hangs), HEAD and PATCH answer 423 with Retry-After after the bounded wait instead of a stale
    offset; and a request that dies leaves no lock behind."""
    monkeypatch.setattr(uploads, "LOCK_WAIT_SECONDS", 0.5, raising=False)
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg()
    url, _ = await create(inspector, s, photo)
    cut = len(photo) // 4
    seen = await in_app_loop(api.client, busy_then_dead, app, url, inspector.token, photo, cut)
    busy_head: RawResponse = seen["busy_head"]
    assert busy_head.status == 423, busy_head
    assert "retry-after" in busy_head.headers
    assert 0.4 <= seen["busy_seconds"] < 3
    busy_patch: RawResponse = seen["busy_patch"]
    assert busy_patch.status == 423, busy_patch
    assert json.loads(busy_patch.body)["type"] == "/problems/upload-locked"
    postgres = app.state.database.engine.dialect.name == "postgresql"
    assert seen["advisory_while_busy"] == (1 if postgres else 0)  # the cut-off PATCH's lock
    assert seen["cut_off"].status == 400
    assert seen["head"].status == 200 and int(seen["head"].headers["upload-offset"]) == cut
    after_death: RawResponse = seen["after_death"]
    assert after_death.status == 200, after_death  # not 423: the dead request let go
    assert int(after_death.headers["upload-offset"]) == cut  # a dead request records nothing
    assert seen["after_death_seconds"] < 0.4
    assert seen["advisory_locks"] == 0  # PostgreSQL: nothing left on the server either
    rest = await inspector.patch(
        url, content=photo[cut:], headers={**PATCH, "Upload-Offset": str(cut)}
    )
    assert rest.status_code == 204, rest.text
