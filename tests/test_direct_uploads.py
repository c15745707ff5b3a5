"""Direct uploads (API.md): an upload URL and form fields (a presigned POST policy of MinIO, or
the API itself on the folder store), then completion through the same checks and pipeline as
every other upload. The store enforces the declared size and the URL's 15 minutes, and a
completed upload's URL adds nothing that survives."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from inspection.evidence.maintenance import sweep
from inspection.evidence.models import Upload
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
    """POST the file as the form the slot describes (its fields, then `file`): straight to
    MinIO, or to the API; the same form either way."""
    assert slot["method"] == "POST"
    url = slot["upload_url"]
    files = {"file": ("upload.bin", data, "application/octet-stream")}
    if url.startswith("http"):
        async with httpx.AsyncClient() as direct:
            return (await direct.post(url, data=slot["fields"], files=files)).status_code
    return (await user.post(url, data=slot["fields"], files=files)).status_code


async def incoming(store: ObjectStore) -> list[str]:
    return [o.key async for o in store.list("incoming/")]


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
    assert slot["method"] == "POST"
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
    # Over the limit: MinIO's policy refuses it (400 EntityTooLarge), the API stops at the limit
    # (413); nothing is kept either way.
    assert sent == (400 if big["upload_url"].startswith("http") else 413)
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


def _policy(slot: dict[str, Any]) -> dict[str, Any]:
    """The POST policy MinIO checks, as signed into the form."""
    policy: dict[str, Any] = json.loads(base64.b64decode(slot["fields"]["policy"]))
    return policy


async def test_the_store_refuses_another_size_than_declared(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    store: ObjectStore = app.state.object_store
    photo = images.jpeg()
    slot = await start(inspector, s, size=len(photo))
    expires = datetime.fromisoformat(slot["expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    on_store = slot["upload_url"].startswith("http")
    if on_store:  # what MinIO enforces: this key only, this size only, until then
        policy = _policy(slot)
        assert ["content-length-range", len(photo), len(photo)] in policy["conditions"]
        assert ["eq", "$key", slot["fields"]["key"]] in policy["conditions"]
        assert slot["fields"]["key"] == f"incoming/{slot['id']}"
        assert abs(datetime.fromisoformat(policy["expiration"]) - expires) < timedelta(seconds=2)
    else:
        assert slot["fields"] == {}
    # Larger than declared (observed: 60 MiB under a 1,000-byte declaration): refused by the
    # store itself, and nothing stays.
    assert await send(inspector, slot, photo + bytes(60 * 1024)) == (400 if on_store else 413)
    assert await incoming(store) == []
    problem(await inspector.post(slot["complete_url"]), 409)  # nothing was uploaded
    # Smaller than declared: refused too (MinIO: EntityTooSmall).
    assert await send(inspector, slot, photo[:-100]) == (400 if on_store else 422)
    assert await incoming(store) == []
    # Without a declared size, the limit (2 MB here) is the range.
    unsized = await start(inspector, s)
    if on_store:
        assert ["content-length-range", 1, 2 * 1024 * 1024] in _policy(unsized)["conditions"]
    assert await send(inspector, unsized, bytes(2 * 1024 * 1024 + 1)) == (400 if on_store else 413)
    assert await incoming(store) == []
    # The declared size exactly: the normal flow.
    assert await send(inspector, slot, photo) == 204
    done = await inspector.post(slot["complete_url"])
    assert done.status_code == 201, done.text
    assert done.json()["sha256"] == hashlib.sha256(photo).hexdigest()


async def test_a_completed_upload_url_adds_nothing_that_survives(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    state = app.state
    store: ObjectStore = state.object_store
    photo = images.jpeg(exif=images.exif_bytes(3))
    slot = await start(inspector, s, size=len(photo))
    assert await send(inspector, slot, photo) == 204
    done = await inspector.post(slot["complete_url"])
    assert done.status_code == 201, done.text
    evidence = done.json()
    kept = sorted([o.key async for o in store.list("evidence/")])
    assert await incoming(store) == []
    # The same URL again, with other bytes of the same size (within the 15 minutes).
    other = bytes(len(photo))
    again = await send(inspector, slot, other)
    if slot["upload_url"].startswith("http"):
        assert again == 204  # a policy cannot be revoked: MinIO takes it...
    else:
        assert again == 409  # the API refuses any use of a completed upload's URL
        raw_put = await inspector.put(slot["upload_url"], content=other)
        assert problem(raw_put, 409)["detail"].startswith("this upload is complete")
    # ...but it replaces nothing and never becomes evidence: completion happened once.
    retry = await inspector.post(slot["complete_url"])
    assert retry.status_code == 200, retry.text
    assert retry.json()["id"] == evidence["id"]
    assert retry.json()["sha256"] == hashlib.sha256(photo).hexdigest()
    assert sorted([o.key async for o in store.list("evidence/")]) == kept
    # What the URL wrote is removed with the upload a day later; the evidence stays.
    later = datetime.now(UTC) + timedelta(days=1, minutes=1)
    await in_app_loop(api.client, sweep, state.database, store, timedelta(hours=24), later)
    assert await incoming(store) == []
    assert sorted([o.key async for o in store.list("evidence/")]) == kept


async def test_the_apis_own_upload_url_expires(api: Api, app: Litestar) -> None:
    """MinIO enforces the policy's expiration itself; the API's own URL does the same."""
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.png()
    slot = await start(inspector, s, size=len(photo))
    if slot["upload_url"].startswith("http"):
        pytest.skip("MinIO checks the policy's expiration (asserted above); no clock to move")

    async def age(upload_id: str) -> None:
        from sqlalchemy import update

        from inspection.db.session import transaction

        async with transaction(app.state.database) as session:
            await session.execute(
                update(Upload)
                .where(Upload.id == uuid.UUID(upload_id))
                .values(created_at=datetime.now(UTC) - timedelta(minutes=16))
            )

    await in_app_loop(api.client, age, slot["id"])
    assert await send(inspector, slot, photo) == 410
    problem(await inspector.put(slot["upload_url"], content=photo), 410)
