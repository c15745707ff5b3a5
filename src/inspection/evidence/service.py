"""Rules of evidence: who may attach, see and remove it; storing, checking and delivering it.

An upload can take minutes on a tablet's connection. No database transaction stays open while
the bytes arrive (on SQLite a writing transaction would block every other writer), so this
service opens its own short sessions, unlike the request-scoped ones of other services:

1. a read session checks that the caller may attach evidence to the finding (fail fast, before
   the body is read) or finds the evidence already stored under that id (a retry);
2. the body is received, hashed, recognised and checked (Pillow, off the event loop);
3. the original, preview and thumbnail are written to the object store, concurrently;
4. one short writing transaction re-checks the rule under the finding's locks and inserts the row
   with its audit entry.

A failure before 4 leaves at most objects that no row points to, which `sweep` removes after a
grace period; never a row that points at nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import anyio
import msgspec
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.actions import repository as actions_repository
from inspection.actions.models import CorrectiveAction
from inspection.actions.service import ActionService
from inspection.audit import recorder as audit
from inspection.audit.recorder import actor_of
from inspection.db.engine import Database
from inspection.db.session import transaction
from inspection.errors import Conflict, FieldError, NotFound, Rejected
from inspection.evidence import pipeline, schemas
from inspection.evidence.budget import budget_for
from inspection.evidence.models import Evidence, Upload
from inspection.evidence.pipeline import Photo
from inspection.evidence.receive import MultipartUpload, Spool
from inspection.findings import repository as findings_repository
from inspection.findings.models import Finding
from inspection.findings.service import FindingService
from inspection.kit.problem_details import locate_field
from inspection.plans.schemas import Position
from inspection.plans.service import device_time
from inspection.settings import Settings
from inspection.storage import ObjectNotFound, ObjectStore, iterate_bytes
from inspection.web.http import content_disposition, decode_json

log = logging.getLogger("inspection.evidence")

SIGNED_URL_LIFETIME = timedelta(minutes=5)
PREFIX = "evidence/"

Change = Literal["created", "unchanged"]


def object_prefix(evidence_id: UUID, sha256: str) -> str:
    """Where one version of an evidence item's objects live: the id and the original's hash."""
    return f"{PREFIX}{evidence_id}/{sha256}/"


@dataclass(frozen=True, slots=True)
class Owner:
    """What evidence belongs to: a finding, or a corrective action (its response)."""

    kind: Literal["finding", "action"]
    id: UUID

    @property
    def label(self) -> str:
        """How errors name it."""
        return "finding" if self.kind == "finding" else "corrective action"

    @classmethod
    def of_upload(cls, upload: Upload) -> Owner:
        """The owner an upload (tus or direct) was started for."""
        if upload.finding_id is not None:
            return cls("finding", upload.finding_id)
        assert upload.action_id is not None
        return cls("action", upload.action_id)

    def of(self, row: Evidence | Upload) -> bool:
        """Whether a row belongs to this owner."""
        return (row.finding_id if self.kind == "finding" else row.action_id) == self.id


@dataclass(frozen=True, slots=True)
class Delivery:
    """How to answer a content request: a redirect to the store, or a stream from it. Either
    way the browser is told the stored type, the length and a file name to show it inline
    (behind a redirect, the signed URL makes the store send the same headers)."""

    key: str
    etag: str
    content_type: str
    size: int | None  # None behind a redirect: the store tells it
    disposition: str
    redirect_to: str | None


def variant_filename(row: Evidence, variant: schemas.Variant) -> str:
    """The name a browser shows or saves: the client's for the original; for a derivative the
    same stem with the variant, as JPEG ("IMG_0001 (preview).jpg"); the id when none was given."""
    name = row.filename or f"{row.id}{pipeline.EXTENSION.get(row.content_type, '')}"
    if variant == schemas.Variant.ORIGINAL:
        return name
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return f"{stem} ({variant.value}).jpg"


@dataclass(frozen=True, slots=True)
class Received:
    """An upload as it arrived, before any check: the spooled file, its meta and its name."""

    spool: Spool
    meta: schemas.EvidenceMeta
    filename: str | None


def parse_meta(raw: bytes | None) -> schemas.EvidenceMeta:
    """The JSON `meta` part; a bad field is named as `meta.<field>`."""
    if not raw:
        return schemas.EvidenceMeta()
    try:
        # The rules for every JSON input (depth, control characters, NFC) hold for this part too.
        value, _ = decode_json(raw, root="meta")
        return msgspec.convert(value, type=schemas.EvidenceMeta)
    except msgspec.ValidationError as exc:
        field, message = locate_field(str(exc), "meta")
        name = "meta" if field == "meta" else f"meta.{field}"
        raise Rejected(f"{name}: {message}", [FieldError(name, message)]) from None
    except msgspec.DecodeError:
        raise Rejected.field("meta", "is not valid JSON") from None


def clean_filename(name: str | None) -> str | None:
    """The client's file name for display and downloads: last path segment, printable, short."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '"<>|:*?').strip()
    return cleaned[:255] or None


class EvidenceService:
    """Evidence as the signed-in user may see and change it."""

    def __init__(
        self, database: Database, store: ObjectStore, principal: Principal, settings: Settings
    ) -> None:
        self.database = database
        self.store = store
        self.principal = principal
        self.settings = settings

    # --- reading ---------------------------------------------------------------------------

    def _owners(self, kind: Literal["finding", "action"]) -> Any:
        """SQL: ids of the findings, or of the actions, the user may see."""
        if kind == "finding":
            return select(Finding.id).where(findings_repository.readable(self.principal))
        return select(CorrectiveAction.id).where(actions_repository.readable(self.principal))

    def _visible(self) -> Any:
        """SQL: evidence is exactly as visible as its finding or its corrective action."""
        return or_(
            Evidence.finding_id.in_(self._owners("finding")),
            Evidence.action_id.in_(self._owners("action")),
        )

    async def _row(self, session: AsyncSession, evidence_id: UUID) -> Evidence:
        row = await session.scalar(
            select(Evidence).where(Evidence.id == evidence_id, self._visible())
        )
        if row is None:
            raise NotFound(f"evidence {evidence_id} not found")
        return row

    async def get(self, evidence_id: UUID) -> schemas.Evidence:
        """One evidence item's metadata."""
        async with self.database.read_session() as session:
            return shape(await self._row(session, evidence_id))

    async def list_for(self, owner: Owner) -> list[schemas.Evidence]:
        """Every evidence item of a finding or an action, oldest first."""
        column = Evidence.finding_id if owner.kind == "finding" else Evidence.action_id
        async with self.database.read_session() as session:
            owners = self._owners(owner.kind).subquery()
            visible = await session.scalar(select(owners).where(owners.c.id == owner.id))
            if visible is None:
                raise NotFound(f"{owner.label} {owner.id} not found")
            rows = await session.scalars(
                select(Evidence)
                .where(column == owner.id)
                .order_by(Evidence.created_at, Evidence.id)
            )
            return [shape(row) for row in rows]

    async def delivery(self, evidence_id: UUID, variant: schemas.Variant) -> Delivery:
        """Where the bytes of one variant are, with their ETag (derived from the SHA-256)."""
        async with self.database.read_session() as session:
            row = await self._row(session, evidence_id)
        key = {
            schemas.Variant.ORIGINAL: row.original_key,
            schemas.Variant.PREVIEW: row.preview_key,
            schemas.Variant.THUMBNAIL: row.thumbnail_key,
        }[variant]
        if key is None:
            raise NotFound(f"a {row.content_type} file has no {variant.value}")
        original = variant == schemas.Variant.ORIGINAL
        content_type = row.content_type if original else pipeline.DERIVED_TYPE
        disposition = content_disposition("inline", variant_filename(row, variant))
        redirect_to = await self.store.signed_get_url(
            key, SIGNED_URL_LIFETIME, content_type=content_type, disposition=disposition
        )
        size: int | None = row.size if original else None
        if size is None and redirect_to is None:
            try:  # derivative sizes are not recorded; the store knows them
                size = (await self.store.stat(key)).size
            except ObjectNotFound:
                size = None  # `open` answers the missing object
        return Delivery(
            key=key,
            etag=f'"{row.sha256}"' if original else f'"{row.sha256}-{variant.value}"',
            content_type=content_type,
            size=size,
            disposition=disposition,
            redirect_to=redirect_to,
        )

    async def open(self, delivery: Delivery) -> AsyncIterator[bytes]:
        """The bytes of a delivery, checked to exist before the response starts."""
        chunks = self.store.get(delivery.key)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        except ObjectNotFound:
            log.error(
                "evidence object %s is missing: run `inspection evidence verify`", delivery.key
            )
            raise NotFound("the stored file is missing; an administrator must restore it") from None

        async def stream() -> AsyncIterator[bytes]:
            yield first
            async for chunk in chunks:
                yield chunk

        return stream()

    # --- writing ---------------------------------------------------------------------------

    async def attach(
        self,
        owner: Owner,
        evidence_id: UUID,
        receive: Callable[[], Awaitable[MultipartUpload]],
    ) -> tuple[schemas.Evidence, Change]:
        """Attach an uploaded file (multipart PUT); a retry changes nothing."""
        existing = await self.precheck(owner, evidence_id)
        upload = await receive()
        try:
            received = Received(upload.spool, parse_meta(upload.meta), upload.filename)
            return await self.ingest(owner, evidence_id, received, existing)
        finally:
            upload.spool.close()

    async def precheck(self, owner: Owner, evidence_id: UUID) -> Evidence | None:
        """Before reading a byte of the body: the stored item (a retry), or the right to attach."""
        async with self.database.read_session() as session:
            existing = await session.get(Evidence, evidence_id)
            if existing is not None:
                return self._same_target(await self._row(session, evidence_id), owner)
            await self._lock(session, owner)
            return None

    async def _lock(self, session: AsyncSession, owner: Owner) -> tuple[UUID, UUID]:
        """Check, under the owner's locks, that the caller may add evidence now; returns the
        unit and plan the audit entry belongs to."""
        if owner.kind == "finding":
            _finding, plan = await FindingService(
                session, self.principal, self.settings.zone
            ).lock_for_evidence(owner.id, "add evidence")
            return plan.unit_id, plan.id
        actions = ActionService(session, self.principal, self.settings, datetime.now(UTC))
        return await actions.lock_for_evidence(owner.id)

    @staticmethod
    def _same_target(row: Evidence, owner: Owner) -> Evidence:
        if not owner.of(row):
            raise Conflict(
                f"this evidence id is already used for another {owner.label}", field="id"
            )
        return row

    @staticmethod
    def _replay(row: Evidence, sha256: str) -> tuple[schemas.Evidence, Change]:
        """The same id again: the same bytes are a retry (200); other bytes are refused (409)."""
        if row.sha256 != sha256:
            raise Conflict(
                "other bytes are already stored under this evidence id; evidence is never "
                "replaced: upload the new file under a new id",
                field="file",
                stored_sha256=row.sha256,
            )
        return shape(row), "unchanged"

    async def ingest(
        self,
        owner: Owner,
        evidence_id: UUID,
        received: Received,
        existing: Evidence | None = None,
    ) -> tuple[schemas.Evidence, Change]:
        """Check, store and record a received file (multipart PUT and completed tus uploads)."""
        spool, meta = received.spool, received.meta
        if meta.sha256 is not None and meta.sha256.lower() != spool.sha256:
            raise Rejected.field(
                "meta.sha256",
                f"the file that arrived has SHA-256 {spool.sha256}: it was damaged in transit; "
                "nothing was stored, send it again",
            )
        if existing is not None:
            return self._replay(existing, spool.sha256)
        captured_at = (
            device_time(meta.captured_at, "meta.captured_at") if meta.captured_at else None
        )
        if spool.size == 0:
            raise Rejected.field("file", "is empty")
        content_type = pipeline.sniff(spool.head)
        photo = await self._check(spool, content_type)
        prefix = object_prefix(evidence_id, spool.sha256)
        keys = await self._store(prefix, spool, content_type, photo)
        row = Evidence(
            id=evidence_id,
            finding_id=owner.id if owner.kind == "finding" else None,
            action_id=owner.id if owner.kind == "action" else None,
            content_type=content_type,
            size=spool.size,
            sha256=spool.sha256,
            filename=clean_filename(received.filename),
            captured_at=captured_at,
            lat=meta.position.lat if meta.position else None,
            lon=meta.position.lon if meta.position else None,
            accuracy_m=meta.position.accuracy_m if meta.position else None,
            caption=meta.caption.strip() if meta.caption else None,
            uploaded_by=self.principal.user_id,
            **keys,
        )
        if photo is not None:
            row.width, row.height = photo.width, photo.height
            row.taken_at = photo.taken_at.astimezone(UTC) if photo.taken_at else None
            row.gps_lat, row.gps_lon = photo.gps_lat, photo.gps_lon
            row.camera_make, row.camera_model = photo.camera_make, photo.camera_model
        return await self._record(owner, row)

    async def _check(self, spool: Spool, content_type: str) -> Photo | None:
        """Check the whole file and derive the previews of an image, off the event loop.

        An image is decoded only once the process's decode budget holds the memory its header
        says it needs (`evidence.budget`): the header is read in a worker thread, the budget is
        taken here, on the event loop, and returned when the decode is over, even when the
        request is cancelled meanwhile (the thread is waited for). An image that could never fit
        is refused (422); one that waited too long in line gets 503 with Retry-After.
        """
        if content_type == pipeline.PDF:
            await anyio.to_thread.run_sync(pipeline.check_pdf, spool.file, spool.size)
            return None
        header = await anyio.to_thread.run_sync(pipeline.read_header, spool.file, content_type)
        async with budget_for(self.settings.decode_memory_bytes).admit(header.peak_bytes):
            return await anyio.to_thread.run_sync(
                pipeline.process_image, spool.file, content_type, self.settings.zone
            )

    async def _store(
        self, prefix: str, spool: Spool, content_type: str, photo: Photo | None
    ) -> dict[str, str | None]:
        """Write the original and its derivatives concurrently; the original under retention
        when object locking is configured."""
        s3 = self.settings.s3
        retain_until = (
            datetime.now(UTC) + timedelta(days=s3.object_lock_days)
            if s3 is not None and s3.object_lock_days > 0
            else None
        )
        keys: dict[str, str | None] = {
            "original_key": prefix + "original",
            "preview_key": None,
            "thumbnail_key": None,
        }
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(
                    self._put_original, keys["original_key"], spool, content_type, retain_until
                )
                if photo is not None:
                    keys["preview_key"] = prefix + "preview.jpg"
                    keys["thumbnail_key"] = prefix + "thumbnail.jpg"
                    for key, data in (
                        (keys["preview_key"], photo.preview),
                        (keys["thumbnail_key"], photo.thumbnail),
                    ):
                        group.start_soon(self._put_bytes, key, data)
        except BaseExceptionGroup as group:
            # One failed put cancels the others; report the failure itself (e.g. a 503), not
            # the group.
            raise group.exceptions[0] from None
        return keys

    async def _put_original(
        self, key: str | None, spool: Spool, content_type: str, retain_until: datetime | None
    ) -> None:
        assert key is not None
        stored = await self.store.put(key, spool.chunks(), content_type, retain_until=retain_until)
        if stored.sha256 != spool.sha256:  # the store must hold exactly what was checked
            raise RuntimeError(f"object store returned SHA-256 {stored.sha256} for {key}")

    async def _put_bytes(self, key: str | None, data: bytes) -> None:
        assert key is not None
        await self.store.put(key, iterate_bytes(data), pipeline.DERIVED_TYPE)

    async def _record(self, owner: Owner, row: Evidence) -> tuple[schemas.Evidence, Change]:
        """The short writing transaction: re-check under the owner's locks, insert, audit."""
        try:
            async with transaction(self.database) as session:
                existing = await session.get(Evidence, row.id)
                if existing is not None:  # a parallel retry won the race
                    return self._replay(self._same_target(existing, owner), row.sha256)
                unit_id, plan_id = await self._lock(session, owner)
                session.add(row)
                await session.flush()
                await audit.record(
                    session,
                    actor_of(self.principal),
                    "evidence",
                    row.id,
                    "create",
                    audit.created(
                        {
                            f"{owner.kind}_id": str(owner.id),
                            "sha256": row.sha256,
                            "content_type": row.content_type,
                            "size": row.size,
                            "filename": row.filename,
                        }
                    ),
                    unit_id=unit_id,
                    plan_id=plan_id,
                )
                return shape(row), "created"
        except IntegrityError:
            # A parallel upload of the same id committed between our check and our insert.
            async with self.database.read_session() as session:
                stored = await self._row(session, row.id)
            return self._replay(self._same_target(stored, owner), row.sha256)

    async def remove(self, finding_id: UUID, evidence_id: UUID) -> None:
        """Remove evidence from a draft finding; its objects go after the commit."""
        async with transaction(self.database) as session:
            row = await self._row(session, evidence_id)
            self._same_target(row, Owner("finding", finding_id))
            _finding, plan = await FindingService(
                session, self.principal, self.settings.zone
            ).lock_for_evidence(finding_id, "remove evidence")
            keys = [k for k in (row.original_key, row.preview_key, row.thumbnail_key) if k]
            await session.delete(row)
            await session.flush()
            await audit.record(
                session,
                actor_of(self.principal),
                "evidence",
                evidence_id,
                "delete",
                audit.removed(
                    {"sha256": row.sha256, "content_type": row.content_type, "size": row.size}
                ),
                unit_id=plan.unit_id,
                plan_id=plan.id,
            )
        for key in keys:
            try:
                await self.store.delete(key)
            except Exception as exc:  # the sweeper removes what is left behind
                log.warning("could not delete %s now (the sweep will): %s", key, exc)


def shape(row: Evidence) -> schemas.Evidence:
    """The API shape of an evidence row."""
    variants = [schemas.Variant.ORIGINAL]
    if row.preview_key:
        variants.append(schemas.Variant.PREVIEW)
    if row.thumbnail_key:
        variants.append(schemas.Variant.THUMBNAIL)
    gps = None
    if row.gps_lat is not None and row.gps_lon is not None:
        gps = Position(row.gps_lat, row.gps_lon)
    position = None
    if row.lat is not None and row.lon is not None:
        position = Position(row.lat, row.lon, row.accuracy_m)
    return schemas.Evidence(
        id=row.id,
        finding_id=row.finding_id,
        action_id=row.action_id,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        filename=row.filename,
        width=row.width,
        height=row.height,
        variants=variants,
        camera=schemas.Camera(
            taken_at=row.taken_at, position=gps, make=row.camera_make, model=row.camera_model
        ),
        captured_at=row.captured_at,
        position=position,
        caption=row.caption,
        uploaded_by=row.uploaded_by,
        created_at=row.created_at,
        version=row.version,
    )
