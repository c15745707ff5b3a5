"""Evidence over HTTP: idempotent multipart uploads, type and damage checks, previews upright and
without metadata, EXIF facts, content delivery with ETags, the rules of who attaches and sees
it, and the sweep and verify of stored bytes."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from litestar import Litestar
from PIL import Image

from inspection.evidence.maintenance import sweep, verify
from inspection.settings import Settings
from inspection.storage import ObjectStore, StorageUnavailable, iterate_bytes, read_all
from tests import images
from tests.asgi import in_app_loop, raw_request
from tests.conftest import Backend
from tests.helpers import Api, World, build_world, etag_of, finding_body, on_site, problem

LIMIT_MB = 2


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    """A 2 MB upload limit so that the 413 path is cheap to reach."""
    return backend.settings(tmp_path, max_upload_mb=LIMIT_MB)


def form(
    data: bytes,
    meta: dict[str, Any] | None = None,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
) -> dict[str, Any]:
    """The multipart parts of an upload."""
    files: dict[str, Any] = {"file": (filename, data, content_type)}
    if meta is not None:
        files["meta"] = (None, json.dumps(meta), "application/json")
    return {"files": files}


async def content(api: Api, url: str, **kw: Any) -> httpx.Response:
    """The bytes of an evidence variant, following the store's signed URL on MinIO."""
    response = await api.get(url, follow_redirects=False, **kw)
    if response.status_code == 307:
        async with httpx.AsyncClient() as direct:
            fetched = await direct.get(response.headers["location"])
        assert fetched.status_code == 200, fetched.text
        return fetched
    return response


class Scene:
    """A checked-in visit with one draft finding recorded by the team."""

    def __init__(self, api: Api, world: World, visit: dict[str, Any], finding_id: str) -> None:
        self.api, self.world, self.visit, self.finding_id = api, world, visit, finding_id

    @property
    def url(self) -> str:
        return f"/api/v1/findings/{self.finding_id}/evidence"

    async def upload(self, user: Api, data: bytes, **kw: Any) -> tuple[str, httpx.Response]:
        evidence_id = str(uuid.uuid4())
        return evidence_id, await user.put(f"{self.url}/{evidence_id}", **form(data, **kw))


async def scene(api: Api) -> Scene:
    world = await build_world(api)
    visit = await on_site(api, world)
    inspector = await api.as_user("inspector")
    finding_id = str(uuid.uuid4())
    created = await inspector.put(f"/api/v1/findings/{finding_id}", json=finding_body(visit))
    assert created.status_code == 201, created.text
    return Scene(api, world, visit, finding_id)


async def test_upload_is_idempotent_and_other_bytes_conflict(api: Api) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg(exif=images.exif_bytes(make="Samsung", model="SM-X710"))
    evidence_id = str(uuid.uuid4())
    url = f"{s.url}/{evidence_id}"
    meta = {
        "captured_at": "2026-03-10T09:42:00+07:00",
        "position": {"lat": 21.59, "lon": 105.84, "accuracy_m": 8},
        "caption": "Bảng niêm yết thủ tục bị che khuất",
        "sha256": hashlib.sha256(photo).hexdigest(),
    }
    created = await inspector.put(url, **form(photo, meta))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["sha256"] == hashlib.sha256(photo).hexdigest() and body["size"] == len(photo)
    assert body["content_type"] == "image/jpeg" and (body["width"], body["height"]) == (1600, 1000)
    assert body["variants"] == ["original", "preview", "thumbnail"]
    assert body["camera"] == {"make": "Samsung", "model": "SM-X710"}
    assert body["caption"] == meta["caption"] and body["position"]["accuracy_m"] == 8
    assert body["captured_at"].startswith("2026-03-10T02:42:00")
    replay = await inspector.put(url, **form(photo, meta))
    assert replay.status_code == 200 and replay.json() == body
    other = await inspector.put(url, **form(images.jpeg(quality=50)))
    assert problem(other, 409)["stored_sha256"] == body["sha256"]
    listed = await inspector.get(s.url)
    assert [e["id"] for e in listed.json()] == [evidence_id]
    audit = await api.get("/api/v1/audit", params={"entity_id": evidence_id})
    assert [e["action"] for e in audit.json()["items"]] == ["create"]


async def test_content_original_preview_thumbnail_and_etags(api: Api) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg(
        exif=images.exif_bytes(gps=(21.59, 105.84), make="Apple", taken="2026:03:10 09:41:00")
    )
    evidence_id, created = await s.upload(inspector, photo)
    assert created.status_code == 201, created.text
    base = f"/api/v1/evidence/{evidence_id}/content"
    original = await content(inspector, base)
    assert original.content == photo  # byte for byte, EXIF and all
    preview = await content(inspector, base, params={"variant": "preview"})
    thumbnail = await content(inspector, base, params={"variant": "thumbnail"})
    for response, side in ((preview, 1280), (thumbnail, 320)):
        derived = Image.open(io.BytesIO(response.content))
        assert derived.format == "JPEG" and max(derived.size) == side
        assert not derived.getexif() and "exif" not in derived.info  # GPS must not leak here
    etag = (await inspector.get(base, follow_redirects=False)).headers["ETag"]
    assert etag == f'"{hashlib.sha256(photo).hexdigest()}"'
    cached = await inspector.get(base, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    preview_etag = (
        await inspector.get(base, params={"variant": "preview"}, follow_redirects=False)
    ).headers["ETag"]
    assert preview_etag != etag
    problem(await inspector.get(base, params={"variant": "poster"}), 400)


async def test_browsers_are_told_the_type_length_and_name_of_every_variant(api: Api) -> None:
    """Found in the field trial: every variant came as application/octet-stream with nosniff,
    so a browser downloaded a preview instead of showing it. The headers a browser reads, on the
    answer it finally gets (the API's, or the store's behind the signed URL)."""
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg()
    cases = [
        ("ảnh hiện trường.jpg", photo, "original", "image/jpeg", "ảnh hiện trường.jpg"),
        ("ảnh hiện trường.jpg", photo, "preview", "image/jpeg", "ảnh hiện trường (preview).jpg"),
        (
            "ảnh hiện trường.jpg",
            photo,
            "thumbnail",
            "image/jpeg",
            "ảnh hiện trường (thumbnail).jpg",
        ),
        ("IMG_0001.HEIC", images.heic(), "original", "image/heic", "IMG_0001.HEIC"),
        ("IMG_0001.HEIC", images.heic(), "preview", "image/jpeg", "IMG_0001 (preview).jpg"),
        ("bien-ban.pdf", images.pdf(), "original", "application/pdf", "bien-ban.pdf"),
        ("so-do.png", images.png(), "original", "image/png", "so-do.png"),
    ]
    uploaded: dict[str, str] = {}
    for filename, data, variant, wanted_type, wanted_name in cases:
        if filename not in uploaded:
            uploaded[filename], created = await s.upload(inspector, data, filename=filename)
            assert created.status_code == 201, created.text
        url = f"/api/v1/evidence/{uploaded[filename]}/content"
        got = await content(inspector, url, params={"variant": variant})
        where = (filename, variant)
        assert got.headers["content-type"].split(";")[0] == wanted_type, (where, got.headers)
        assert int(got.headers["content-length"]) == len(got.content) > 0, (where, got.headers)
        disposition = got.headers["content-disposition"]
        assert disposition.startswith("inline;"), (where, disposition)
        assert f"filename*=UTF-8''{quote(wanted_name)}" in disposition, (where, disposition)
        assert "filename=" in disposition.replace("filename*=", ""), (where, disposition)
        if variant == "original":
            assert got.content == data


async def test_exif_orientations_1_to_8_come_out_upright(api: Api) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    for orientation in range(1, 9):
        evidence_id, created = await s.upload(inspector, images.oriented_jpeg(orientation))
        assert created.status_code == 201, created.text
        assert (created.json()["width"], created.json()["height"]) == (1600, 1000), orientation
        for variant in ("preview", "thumbnail"):
            response = await content(
                inspector,
                f"/api/v1/evidence/{evidence_id}/content",
                params={"variant": variant},
            )
            derived = Image.open(io.BytesIO(response.content))
            assert derived.width > derived.height, (orientation, variant)
            assert images.corners(derived) == (images.RED, images.GREEN, images.BLUE), (
                orientation,
                variant,
            )


async def test_exif_gps_time_and_camera_are_recorded(api: Api) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    exif = images.exif_bytes(
        gps=(21.5942, -105.8481),
        taken="2026:03:10 09:41:07",
        offset="+07:00",
        make="Apple",
        model="iPad Pro",
    )
    _, created = await s.upload(inspector, images.jpeg(exif=exif))
    camera = created.json()["camera"]
    assert camera["position"]["lat"] == pytest.approx(21.5942, abs=1e-4)
    assert camera["position"]["lon"] == pytest.approx(-105.8481, abs=1e-4)
    assert camera["taken_at"].startswith("2026-03-10T02:41:07")
    assert (camera["make"], camera["model"]) == ("Apple", "iPad Pro")
    # Without an offset the camera's clock is local time in the configured zone.
    _, local = await s.upload(
        inspector, images.jpeg(exif=images.exif_bytes(taken="2026:03:10 09:41:07"))
    )
    assert local.json()["camera"]["taken_at"].startswith("2026-03-10T02:41:07")


async def test_types_come_from_the_bytes(api: Api) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    # A PNG named .jpg and declared image/jpeg is a PNG.
    _, png = await s.upload(inspector, images.png(), filename="anh.jpg", content_type="image/jpeg")
    assert png.status_code == 201 and png.json()["content_type"] == "image/png"
    assert png.json()["filename"] == "anh.jpg"
    heic_id, heic = await s.upload(inspector, images.heic(), filename="IMG_0001.HEIC")
    assert heic.status_code == 201, heic.text
    assert heic.json()["content_type"] == "image/heic"
    assert (heic.json()["width"], heic.json()["height"]) == (640, 400)
    thumb = await content(
        inspector, f"/api/v1/evidence/{heic_id}/content", params={"variant": "thumbnail"}
    )
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 200)
    _, webp = await s.upload(inspector, images.webp(), filename="a.webp")
    assert webp.status_code == 201 and webp.json()["content_type"] == "image/webp"
    pdf_id, pdf = await s.upload(inspector, images.pdf(), filename="bien-ban.pdf")
    assert pdf.status_code == 201 and pdf.json()["content_type"] == "application/pdf"
    assert pdf.json()["variants"] == ["original"] and pdf.json()["width"] is None
    missing = await inspector.get(
        f"/api/v1/evidence/{pdf_id}/content", params={"variant": "preview"}
    )
    problem(missing, 404)
    # An executable renamed to .jpg, and random bytes, are refused.
    for data in (b"MZ\x90\x00" + bytes(2000), bytes(range(256)) * 40):
        _, refused = await s.upload(inspector, data)
        assert problem(refused, 415)["type"] == "/problems/unsupported-media-type"


async def test_damaged_files_and_bombs_are_refused_quickly(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    photo = images.jpeg()
    cases = {
        "truncated jpeg": photo[: len(photo) // 2],
        "bomb (400 MP header)": images.png_claiming(20_000, 20_000),
        "just over 60 MP": images.png_claiming(8_000, 7_600),
        "truncated pdf": images.pdf()[:-40],
        "garbage after a JPEG signature": b"\xff\xd8\xff\xe0" + bytes(5000),
    }
    for name, data in cases.items():
        started = time.perf_counter()
        evidence_id, refused = await s.upload(inspector, data)
        body = problem(refused, 422)
        assert body["errors"][0]["field"] == "file", name
        assert time.perf_counter() - started < 2, name
        problem(await inspector.get(f"/api/v1/evidence/{evidence_id}"), 404)
    # Nothing of any refused file reached the store.
    store: ObjectStore = app.state.object_store
    assert [o.key async for o in store.list("evidence/")] == []


async def test_size_limit_and_bad_requests(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    too_big = images.jpeg() + bytes(LIMIT_MB * 1024 * 1024)
    _, declared = await s.upload(inspector, too_big)
    assert problem(declared, 413)["limit_bytes"] == LIMIT_MB * 1024 * 1024

    # Without Content-Length (chunked), the body is cut off at the limit.
    head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
    streamed = await in_app_loop(
        api.client,
        raw_request,
        app,
        "PUT",
        f"{s.url}/{uuid.uuid4()}",
        {
            "Authorization": f"Bearer {inspector.token}",
            "Content-Type": "multipart/form-data; boundary=xyz",
        },
        [head, *[bytes(256 * 1024)] * (LIMIT_MB * 4 + 4), b"\r\n--xyz--\r\n"],
    )
    assert streamed.status == 413 and json.loads(streamed.body)["status"] == 413
    digest_wrong = {"sha256": "0" * 64}
    _, mismatch = await s.upload(inspector, images.jpeg(), meta=digest_wrong)
    assert problem(mismatch, 422)["errors"][0]["field"] == "meta.sha256"
    _, bad_meta = await s.upload(inspector, images.jpeg(), meta={"captured_at": "yesterday"})
    assert problem(bad_meta, 422)["errors"][0]["field"] == "meta.captured_at"
    _, future = await s.upload(
        inspector, images.jpeg(), meta={"captured_at": "2099-01-01T00:00:00Z"}
    )
    assert problem(future, 422)["errors"][0]["field"] == "meta.captured_at"
    no_file = await inspector.put(
        f"{s.url}/{uuid.uuid4()}", files={"meta": (None, "{}", "application/json")}
    )
    assert problem(no_file, 422)["errors"][0]["field"] == "file"
    not_multipart = await inspector.put(f"{s.url}/{uuid.uuid4()}", json={"file": "x"})
    problem(not_multipart, 422)
    store: ObjectStore = app.state.object_store
    assert [o.key async for o in store.list("evidence/")] == []


async def test_who_attaches_and_when(api: Api) -> None:
    s = await scene(api)
    head = await api.as_user("head.c1")
    _, by_head = await s.upload(head, images.jpeg())
    problem(by_head, 404)  # a draft finding does not exist for the inspected unit
    outsider = await api.as_user("planner")
    _, by_planner = await s.upload(outsider, images.jpeg())
    problem(by_planner, 403)
    member = await api.as_user("inspector2")
    kept_id, kept = await s.upload(member, images.jpeg())
    assert kept.status_code == 201
    removed_id, removable = await s.upload(member, images.png())
    assert removable.status_code == 201
    deleted = await member.delete(f"{s.url}/{removed_id}")
    assert deleted.status_code == 204
    problem(await member.get(f"/api/v1/evidence/{removed_id}"), 404)
    lead = await api.as_user("inspector")  # the team lead
    finding_url = f"/api/v1/findings/{s.finding_id}"
    submitted = await lead.post(
        f"{finding_url}/submit", headers={"If-Match": await etag_of(lead, finding_url)}
    )
    assert submitted.status_code == 200, submitted.text
    # Once submitted, evidence is part of the record.
    _, late = await s.upload(member, images.webp())
    assert problem(late, 409)["current_status"] == "submitted"
    problem(await member.delete(f"{s.url}/{kept_id}"), 409)
    retry = await member.put(f"{s.url}/{kept_id}", **form(images.jpeg()))
    assert retry.status_code == 200  # a tablet's late retry of what is already stored
    problem(await member.put(f"{s.url}/{kept_id}", **form(images.png())), 409)


async def test_evidence_is_as_visible_as_its_finding(api: Api) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    evidence_id, created = await s.upload(inspector, images.jpeg())
    assert created.status_code == 201
    urls = [
        f"/api/v1/evidence/{evidence_id}",
        f"/api/v1/evidence/{evidence_id}/content",
        s.url,
    ]
    head_c1 = await api.as_user("head.c1")
    head_d1 = await api.as_user("head.d1")
    for url in urls:  # a draft: the inspected unit sees nothing yet
        problem(await head_c1.get(url), 404)
        problem(await head_d1.get(url), 404)
    lead = await api.as_user("inspector")  # the team lead
    finding_url = f"/api/v1/findings/{s.finding_id}"
    await lead.post(f"{finding_url}/submit", headers={"If-Match": await etag_of(lead, finding_url)})
    for url in urls:
        assert (await head_c1.get(url, follow_redirects=False)).status_code in (200, 307), url
    # An inspector who is not on this plan's team sees nothing either, submitted or not.
    await api.create_user("inspector3", [("inspector", s.world.snv["id"])], s.world.snv["id"])
    outsider = await api.as_user("inspector3")
    for url in urls:
        problem(await outsider.get(url), 404)
    # The head of the neighbouring commune still sees nothing.
    await api.create_user("head.c2", [("unit_head", s.world.c2["id"])], s.world.c2["id"])
    other = await api.as_user("head.c2")
    for url in urls:
        problem(await other.get(url), 404)


async def test_failed_store_write_leaves_no_row(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    store: ObjectStore = app.state.object_store
    real_put = store.put

    async def failing_put(key: str, *args: Any, **kw: Any) -> Any:
        if key.endswith("/original"):
            raise StorageUnavailable("store down")
        return await real_put(key, *args, **kw)

    store.put = failing_put  # type: ignore[method-assign]
    try:
        evidence_id, failed = await s.upload(inspector, images.jpeg())
    finally:
        store.put = real_put  # type: ignore[method-assign]
    problem(failed, 503)
    problem(await inspector.get(f"/api/v1/evidence/{evidence_id}"), 404)
    assert (await inspector.get(s.url)).json() == []
    # The retry succeeds once the store is back.
    again = await inspector.put(f"{s.url}/{evidence_id}", **form(images.jpeg()))
    assert again.status_code == 201


async def _principal(app: Litestar, user: Api) -> Any:
    """The principal behind a signed-in helper, as the app would load it."""
    from inspection.units.auth import PASSWORD_STAMP, load_principal

    assert user.token is not None
    claims = json.loads(base64.urlsafe_b64decode(user.token.split(".")[1] + "=="))
    return await load_principal(
        app.state.database, uuid.UUID(claims["sub"]), claims["extras"][PASSWORD_STAMP]
    )


async def test_a_failed_commit_leaves_an_orphan_that_the_sweep_removes(
    api: Api, app: Litestar
) -> None:
    """The team lead submits the finding while a photo is uploading: the photo's objects are
    stored, its row is refused (409), and the sweep removes the orphans and nothing else."""
    from inspection.db.session import transaction
    from inspection.errors import InvalidTransition
    from inspection.evidence.receive import MultipartUpload, Spool
    from inspection.evidence.service import EvidenceService, Owner
    from inspection.findings.service import FindingService

    s = await scene(api)
    inspector = await api.as_user("inspector")  # the team lead
    kept_id, kept = await s.upload(inspector, images.jpeg())
    assert kept.status_code == 201
    state = app.state
    store: ObjectStore = state.object_store
    finding_id, orphan_id = uuid.UUID(s.finding_id), uuid.uuid4()
    version = int((await etag_of(inspector, f"/api/v1/findings/{finding_id}")).strip('"'))

    async def upload_while_the_lead_submits() -> str:
        principal = await _principal(app, inspector)
        service = EvidenceService(state.database, store, principal, state.settings)

        async def receive() -> MultipartUpload:
            async with transaction(state.database) as session:
                await FindingService(session, principal, state.settings.zone).submit(
                    finding_id, version
                )
            spool = Spool()
            spool.write(images.png())
            return MultipartUpload(spool, None, "late.png")

        try:
            await service.attach(Owner("finding", finding_id), orphan_id, receive)
        except InvalidTransition as exc:
            return exc.extra["current_status"]
        return "stored"

    assert await in_app_loop(api.client, upload_while_the_lead_submits) == "submitted"
    orphans = [o.key async for o in store.list(f"evidence/{orphan_id}/")]
    assert len(orphans) == 3
    problem(await inspector.get(f"/api/v1/evidence/{orphan_id}"), 404)
    young = await in_app_loop(api.client, sweep, state.database, store, timedelta(hours=1))
    assert young.removed_objects == []  # within the grace period: maybe an upload in flight
    report = await in_app_loop(api.client, sweep, state.database, store, timedelta(0))
    assert sorted(report.removed_objects) == sorted(orphans)
    assert [o.key async for o in store.list(f"evidence/{orphan_id}/")] == []
    assert len([o async for o in store.list(f"evidence/{kept_id}/")]) == 3
    assert (await in_app_loop(api.client, verify, state.database, store)).ok


async def test_verify_reports_missing_and_changed_originals(api: Api, app: Litestar) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    changed_id, _ = await s.upload(inspector, images.jpeg())
    missing_id, _ = await s.upload(inspector, images.png())
    store: ObjectStore = app.state.object_store
    report = await in_app_loop(api.client, verify, app.state.database, store)
    assert report.ok and report.checked == 2
    (changed_key,) = [
        o.key async for o in store.list(f"evidence/{changed_id}/") if o.key.endswith("original")
    ]
    (missing_key,) = [
        o.key async for o in store.list(f"evidence/{missing_id}/") if o.key.endswith("original")
    ]
    original = await read_all(store, changed_key)
    await store.put(changed_key, iterate_bytes(original[:-10] + b"tampered!!"))
    await store.delete(missing_key)
    report = await in_app_loop(api.client, verify, app.state.database, store)
    assert report.changed == [changed_key] and report.missing == [missing_key]
    if not store.supports_signed_urls:  # streamed from the folder: the loss is seen at once
        problem(await inspector.get(f"/api/v1/evidence/{missing_id}/content"), 404)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_originals_are_kept_under_retention_when_object_lock_is_on(
    backend: Backend, tmp_path: Path
) -> None:
    """INSPECTION_S3_OBJECT_LOCK_DAYS: the bucket is created with object locking and each
    original is stored under COMPLIANCE retention (MinIO only: the folder store has no lock)."""
    from litestar.testing import AsyncTestClient

    from tests.conftest import ADMIN_PASSWORD, make_app

    assert backend.s3 is not None
    s3 = dataclasses.replace(
        backend.s3, bucket=f"locked-{uuid.uuid4().hex[:12]}", object_lock_days=1
    )
    app = await make_app(backend.settings(tmp_path, s3=s3))
    async with AsyncTestClient(app) as client:
        api = Api(client)
        await api.sign_in("admin", ADMIN_PASSWORD)
        s = await scene(api)
        inspector = await api.as_user("inspector")
        evidence_id, created = await s.upload(inspector, images.jpeg())
        assert created.status_code == 201, created.text
        store: Any = app.state.object_store
        keys = [o.key async for o in store.list(f"evidence/{evidence_id}/")]
        (original,) = [k for k in keys if k.endswith("/original")]
        retention = await in_app_loop(
            client, store._call, store.client.get_object_retention, s3.bucket, original
        )
        assert retention.mode == "COMPLIANCE"
        assert retention.retain_until_date > datetime.now(UTC) + timedelta(hours=23)


def _cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point the `inspection` command at the test's database and store."""
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("INSPECTION_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("INSPECTION_SECRET_KEY", settings.secret_key)
    if settings.s3 is not None:
        monkeypatch.setenv("INSPECTION_S3_ENDPOINT", f"http://{settings.s3.endpoint}")
        monkeypatch.setenv("INSPECTION_S3_ACCESS_KEY", settings.s3.access_key)
        monkeypatch.setenv("INSPECTION_S3_SECRET_KEY", settings.s3.secret_key)
        monkeypatch.setenv("INSPECTION_S3_BUCKET", settings.s3.bucket)
    else:
        monkeypatch.setenv("INSPECTION_OBJECTS_DIR", str(settings.objects_dir))


async def test_cli_sweep_and_verify(
    api: Api, app: Litestar, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio.to_thread
    from click.testing import CliRunner

    from inspection.cli import main

    s = await scene(api)
    inspector = await api.as_user("inspector")
    evidence_id, _ = await s.upload(inspector, images.jpeg())
    store: ObjectStore = app.state.object_store
    orphan = f"evidence/{uuid.uuid4()}/{'0' * 64}/original"
    await store.put(orphan, iterate_bytes(b"left behind by a failed commit"))
    _cli_env(monkeypatch, settings)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args))

    ok = await anyio.to_thread.run_sync(lambda: run("evidence", "verify"))
    assert ok.exit_code == 0, ok.output
    assert "1 originals checked" in ok.output
    kept = await anyio.to_thread.run_sync(lambda: run("evidence", "sweep"))
    assert kept.exit_code == 0 and "sweep: 0 objects" in kept.output  # within 24 h
    swept = await anyio.to_thread.run_sync(lambda: run("evidence", "sweep", "--grace-hours", "0"))
    assert swept.exit_code == 0, swept.output
    assert f"removed {orphan}" in swept.output and "sweep: 1 objects" in swept.output
    (original,) = [
        o.key async for o in store.list(f"evidence/{evidence_id}/") if o.key.endswith("original")
    ]
    await store.delete(original)
    missing = await anyio.to_thread.run_sync(lambda: run("evidence", "verify"))
    assert missing.exit_code == 1 and f"MISSING {original}" in missing.output
