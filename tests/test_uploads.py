"""tus 1.0 resumable uploads: creation, PATCH with checksums, HEAD to resume after a broken
connection, completion into evidence with the same checks, termination and expiry."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy import update

from inspection.db.session import transaction
from inspection.evidence.maintenance import sweep
from inspection.evidence.models import Upload
from inspection.settings import Settings
from inspection.storage import ObjectStore
from tests import images
from tests.asgi import in_app_loop, raw_request
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
