"""Direct uploads: `POST /api/v1/evidence/uploads` hands out an upload URL, the client
PUTs the file there, and `POST /api/v1/evidence/{id}/complete` checks and processes it.

On MinIO the URL is a short-lived signed URL of the object store: the bytes never pass through
the API. The folder store has no signed URLs, so the URL is the API's own
`PUT /api/v1/evidence/uploads/{id}/content`, which streams into the same place; clients do not
need to know which store is behind. Completion runs the very pipeline of the other uploads (type,
damage, bomb, size, `meta.sha256`, previews, idempotency under the evidence id), and the incoming
object is removed afterwards; an upload never completed is removed by `inspection evidence sweep`
after a day, like a tus upload.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, post, put
from litestar.di import Provide
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta
from sqlalchemy import select

from inspection.db.session import transaction
from inspection.errors import Conflict, NotFound, PayloadTooLarge, Rejected
from inspection.evidence import schemas
from inspection.evidence.controllers import UPLOAD_RESPONSES, provide_evidence
from inspection.evidence.models import Upload
from inspection.evidence.receive import Spool, body_chunks, declared_length, too_large
from inspection.evidence.service import EvidenceService, Owner, Received
from inspection.evidence.uploads import UPLOAD_LIFETIME, UploadGone
from inspection.http import with_etag
from inspection.storage import ObjectNotFound, ObjectTooLarge

INCOMING_PREFIX = "incoming/"
URL_LIFETIME = timedelta(hours=1)


class DirectUploadIn(msgspec.Struct, forbid_unknown_fields=True):
    """What will be uploaded: for which finding or action, under which evidence id."""

    evidence_id: UUID
    finding_id: UUID | None = None
    action_id: UUID | None = None
    size: Annotated[int, Meta(ge=1)] | None = None
    filename: Annotated[str, Meta(max_length=255)] | None = None
    meta: schemas.EvidenceMeta = msgspec.field(default_factory=schemas.EvidenceMeta)


class DirectUpload(msgspec.Struct):
    """Where to PUT the file, until when, and where to complete it."""

    id: UUID
    evidence_id: UUID
    method: str
    upload_url: str
    expires_at: datetime
    complete_url: str


class DirectUploads:
    """Direct uploads of the signed-in user."""

    def __init__(self, evidence: EvidenceService) -> None:
        # The evidence service finishes every upload; its handles serve the upload too.
        self.evidence = evidence
        self.database, self.store = evidence.database, evidence.store
        self.principal, self.settings = evidence.principal, evidence.settings

    async def start(self, data: DirectUploadIn) -> DirectUpload:
        """Check the right to attach now, before any byte travels; hand out the URL."""
        if (data.finding_id is None) == (data.action_id is None):
            raise Rejected.field("finding_id", "give finding_id or action_id (one of the two)")
        owner = (
            Owner("finding", data.finding_id)
            if data.finding_id is not None
            else Owner("action", cast(UUID, data.action_id))
        )
        limit = self.settings.max_upload_bytes
        if data.size is not None and data.size > limit:
            raise too_large(limit)
        await self.evidence.precheck(owner, data.evidence_id)
        now = datetime.now(UTC)
        async with transaction(self.database) as session:
            upload = Upload(
                user_id=self.principal.user_id,
                finding_id=data.finding_id,
                action_id=data.action_id,
                evidence_id=data.evidence_id,
                meta={**msgspec.to_builtins(data.meta), "filename": data.filename},
                raw_metadata=None,
                length=data.size or 0,
                offset=0,
                parts=[],
                expires_at=now + UPLOAD_LIFETIME,
            )
            session.add(upload)
            await session.flush()
            key = f"{INCOMING_PREFIX}{upload.id}"
            upload.parts = [{"key": key, "size": data.size or 0}]
        signed = await self.store.signed_put_url(key, URL_LIFETIME)
        return DirectUpload(
            id=upload.id,
            evidence_id=data.evidence_id,
            method="PUT",
            upload_url=signed or f"/api/v1/evidence/uploads/{upload.id}/content",
            expires_at=min(upload.expires_at, now + URL_LIFETIME),
            complete_url=f"/api/v1/evidence/{data.evidence_id}/complete",
        )

    async def _mine(self, **where: Any) -> Upload:
        async with self.database.read_session() as session:
            statement = select(Upload).where(Upload.user_id == self.principal.user_id)
            for name, value in where.items():
                statement = statement.where(getattr(Upload, name) == value)
            upload = await session.scalar(statement.order_by(Upload.created_at.desc()).limit(1))
        if (
            upload is None
            or not upload.parts
            or not upload.parts[0]["key"].startswith(INCOMING_PREFIX)
        ):
            raise NotFound("no direct upload of yours matches")
        if upload.expires_at <= datetime.now(UTC):
            raise UploadGone("this upload expired; start a new one")
        return upload

    async def receive(self, upload_id: UUID, request: Request[Any, Any, Any]) -> None:
        """The folder store's stand-in for a signed URL: stream the body into the object."""
        upload = await self._mine(id=upload_id)
        limit = self.settings.max_upload_bytes
        length = declared_length(request)
        if length is not None and length > limit:
            raise too_large(limit)
        try:
            await self.store.put(
                upload.parts[0]["key"],
                body_chunks(request),
                "application/octet-stream",
                max_size=limit,
            )
        except ObjectTooLarge:
            raise too_large(limit) from None

    async def complete(self, evidence_id: UUID) -> tuple[schemas.Evidence, str]:
        """Check and process what was uploaded; the same answers as a multipart upload."""
        upload = await self._mine(evidence_id=evidence_id)
        if upload.completed_at is not None:  # a retry of a completion that answered already
            return await self.evidence.get(evidence_id), "unchanged"
        owner = Owner.of_upload(upload)
        existing = await self.evidence.precheck(owner, evidence_id)
        key = upload.parts[0]["key"]
        limit = self.settings.max_upload_bytes
        try:
            info = await self.store.stat(key)
        except ObjectNotFound:
            raise Conflict("nothing was uploaded yet: PUT the file to upload_url first") from None
        if info.size > limit:
            await self.store.delete(key)
            raise PayloadTooLarge(f"the file is larger than {limit} bytes", limit_bytes=limit)
        spool = Spool()
        try:
            async for chunk in self.store.get(key):
                spool.write(chunk)
            meta = dict(upload.meta)
            filename = meta.pop("filename", None)
            received = Received(spool, msgspec.convert(meta, schemas.EvidenceMeta), filename)
            item, change = await self.evidence.ingest(owner, evidence_id, received, existing)
        finally:
            spool.close()
        async with transaction(self.database) as session:
            current = await session.get(Upload, upload.id)
            if current is not None:
                current.completed_at = datetime.now(UTC)
        await self.store.delete(key)
        return item, change


def provide_direct(evidence: EvidenceService) -> DirectUploads:
    """This user's direct uploads."""
    return DirectUploads(evidence)


class DirectUploadController(Controller):
    """Upload URL + completion; tus (`/api/v1/uploads`) resumes within a file."""

    path = "/api/v1/evidence"
    tags = ["evidence"]
    dependencies = {
        "evidence": Provide(provide_evidence, sync_to_thread=False),
        "direct": Provide(provide_direct, sync_to_thread=False),
    }

    @post("/uploads", summary="Get an upload URL for a large file", status_code=HTTP_201_CREATED)
    async def start(self, direct: DirectUploads, data: JSONBody[DirectUploadIn]) -> DirectUpload:
        """Checks the right to attach first; PUT the file to `upload_url`, then complete."""
        return await direct.start(data)

    @put(
        "/uploads/{upload_id:uuid}/content",
        summary="Upload the file (folder store)",
        status_code=HTTP_204_NO_CONTENT,
        description="The raw bytes of the file as the body (where the store has no signed URLs).",
    )
    async def content(
        self, request: Request[Any, Any, Any], direct: DirectUploads, upload_id: UUID
    ) -> None:
        """Streamed into the store; checked at completion."""
        await direct.receive(upload_id, request)

    @post(
        "/{evidence_id:uuid}/complete",
        summary="Check and process an uploaded file",
        responses=UPLOAD_RESPONSES,
        status_code=HTTP_201_CREATED,
    )
    async def complete(
        self, direct: DirectUploads, evidence_id: UUID
    ) -> Response[schemas.Evidence]:
        """201 when stored; 200 when it already was (a retry)."""
        item, change = await direct.complete(evidence_id)
        return with_etag(item, HTTP_201_CREATED if change == "created" else HTTP_200_OK)
