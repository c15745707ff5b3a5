"""Direct uploads (API.md): an upload URL (signed MinIO URL, or the API itself on the folder
store), then completion through the same checks and pipeline as every other upload."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from inspection.evidence.maintenance import sweep
from inspection.settings import Settings
from inspection.storage import ObjectStore
from tests import images
from tests.asgi import in_app_loop
from tests.conftest import Backend
from tests.helpers import Api, problem
from tests.test_evidence import Scene, scene


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    """A 2 MB upload limit, as in the other upload tests."""
    return backend.settings(tmp_path, max_upload_mb=2)


async def start(user: Api, s: Scene, **body: Any) -> dict[str, Any]:
    response = await user.post(
        "/api/v1/evidence/uploads",
        json={"finding_id": s.finding_id, "evidence_id": str(uuid.uuid4()), **body},
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def send(user: Api, slot: dict[str, Any], data: bytes) -> int:
    """PUT the file where the slot says: straight to MinIO, or to the API."""
    url = slot["upload_url"]
    if url.startswith("http"):
        async with httpx.AsyncClient() as direct:
            return (await direct.put(url, content=data)).status_code
    return (await user.put(url, content=data)).status_code


async def test_upload_url_then_complete(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg(exif=images.exif_bytes(8))
    slot = await start(
        inspector,
        s,
        size=len(photo),
        filename="IMG_7.JPG",
        meta={"caption": "Hộp thư góp ý bị khoá", "sha256": hashlib.sha256(photo).hexdigest()},
    )
    store: ObjectStore = app.state.object_store
    assert slot["method"] == "PUT"
    assert slot["upload_url"].startswith("http") == store.supports_signed_urls
    early = await inspector.post(slot["complete_url"])
    problem(early, 409)  # nothing uploaded yet
    assert await send(inspector, slot, photo) in (200, 204)
    done = await inspector.post(slot["complete_url"])
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["sha256"] == hashlib.sha256(photo).hexdigest() and body["filename"] == "IMG_7.JPG"
    assert (body["width"], body["height"]) == (1000, 1600)
    assert body["caption"] == "Hộp thư góp ý bị khoá"
    again = await inspector.post(slot["complete_url"])
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert [o.key async for o in store.list("incoming/")] == []


async def test_completion_applies_every_check(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    junk = await start(inspector, s)
    await send(inspector, junk, bytes(range(256)) * 10)
    problem(await inspector.post(junk["complete_url"]), 415)
    big = await start(inspector, s)
    sent = await send(inspector, big, images.jpeg() + bytes(3 * 1024 * 1024))
    if big["upload_url"].startswith("http"):  # MinIO took it; completion refuses it
        assert sent == 200
        problem(await inspector.post(big["complete_url"]), 413)
    else:  # the API refuses it while it streams in, and nothing is kept
        assert sent == 413
        problem(await inspector.post(big["complete_url"]), 409)
    problem(
        await inspector.post(
            "/api/v1/evidence/uploads",
            json={"finding_id": s.finding_id, "evidence_id": str(uuid.uuid4()), "size": 10**9},
        ),
        413,
    )
    neither = await inspector.post(
        "/api/v1/evidence/uploads", json={"evidence_id": str(uuid.uuid4())}
    )
    assert problem(neither, 422)["errors"][0]["field"] == "finding_id"
    head = await api.as_user("head.c1")
    refused = await head.post(
        "/api/v1/evidence/uploads",
        json={"finding_id": s.finding_id, "evidence_id": str(uuid.uuid4())},
    )
    problem(refused, 404)  # a draft finding does not exist for the unit
    # Someone else's slot is not theirs to complete.
    other = await api.as_user("inspector2")
    mine = await start(inspector, s)
    await send(inspector, mine, images.png())
    problem(await other.post(mine["complete_url"]), 404)
    # An abandoned upload is swept after a day.
    state = app.state
    store: ObjectStore = state.object_store
    assert len([o async for o in store.list("incoming/")]) >= 1
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    report = await in_app_loop(api.client, sweep, state.database, store, timedelta(hours=24), later)
    assert report.removed_uploads >= 3
    assert [o.key async for o in store.list("incoming/")] == []
