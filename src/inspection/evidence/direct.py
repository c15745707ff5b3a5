"""Direct uploads: `POST /api/v1/evidence/uploads` hands out an upload URL and form fields,
the client POSTs the file there as a form, and `POST /api/v1/evidence/{id}/complete` checks and
processes it.

On MinIO the URL is the bucket's and the fields carry a presigned POST policy: the bytes never
pass through the API, and the store itself refuses a file of another size than declared (or over
the limit: `content-length-range`), a key other than the upload's own, and any use after 15
minutes. The folder store has no policies, so the URL is the API's own
`POST /api/v1/evidence/uploads/{id}/content`, which applies the same rules and streams into the
same place; clients send the same form to either. Completion runs the very pipeline of the other
uploads (type, damage, bomb, size, `meta.sha256`, previews, idempotency under the evidence id),
and the incoming object is removed afterwards; an upload never completed is removed by
`inspection evidence sweep` after a day, like a tus upload.

A policy cannot be revoked (S3 has no such call), so a completed upload's URL stays usable on
MinIO until it expires. What bounds that: completion happens once (a retry answers the evidence
made the first time and never reads the incoming object again), the key is the upload's own
(`incoming/<upload id>`, nothing else ever reads it after completion), a file written there is at
most the declared size, only for 15 minutes after the URL was issued, and the sweep removes the
key with the upload a day later. The API's own URL refuses any use after completion (409).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast
from uuid import UUID

import msgspec
import multipart
from litestar import Controller, Request, Response, post, put
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta
from sqlalchemy import select

from inspection.db.session import transaction
from inspection.errors import Conflict, NotFound, PayloadTooLarge, Rejected
from inspection.evidence import schemas
from inspection.evidence.controllers import UPLOAD_RESPONSES, provide_evidence
from inspection.evidence.models import Upload
from inspection.evidence.receive import (
    IncompleteBody,
    Spool,
    body_chunks,
    declared_length,
    too_large,
)
from inspection.evidence.service import EvidenceService, Owner, Received
from inspection.evidence.uploads import UPLOAD_LIFETIME, UploadGone
from inspection.storage import ObjectNotFound, ObjectTooLarge
from inspection.web.http import Problem, with_etag

INCOMING_PREFIX = "incoming/"
# How long an upload URL takes the file. 25 MB (the default limit) needs about 3.5 minutes at
# 1 Mbit/s, a poor mobile link; 15 minutes leave room for that and a slow start, and bound the
# time a leaked URL (a policy cannot be revoked) can be used. The upload itself may be completed
# for a day (UPLOAD_LIFETIME), so a tablet that lost the answer can still retry completion.
URL_LIFETIME = timedelta(minutes=15)
# Room for the form fields and the multipart framing around the file on the API's own URL.
FORM_OVERHEAD = 64 * 1024


class DirectUploadIn(msgspec.Struct, forbid_unknown_fields=True):
    """What will be uploaded: for which finding or action, under which evidence id."""

    evidence_id: UUID
    finding_id: UUID | None = None
    action_id: UUID | None = None
    size: Annotated[int, Meta(ge=1)] | None = None
    filename: Annotated[str, Meta(max_length=255)] | None = None
    meta: schemas.EvidenceMeta = msgspec.field(default_factory=schemas.EvidenceMeta)


class DirectUpload(msgspec.Struct):
    """Where to send the file (a `multipart/form-data` POST of every entry of `fields`, then
    the file as `file`, last), until when, and where to complete it."""

    id: UUID
    evidence_id: UUID
    method: str
    upload_url: str
    fields: dict[str, str]
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
            # One key per upload: nothing but this upload's completion ever reads it.
            key = f"{INCOMING_PREFIX}{upload.id}"
            upload.parts = [{"key": key, "size": data.size or 0}]
        # Exactly the declared size, else anything up to the limit: the store checks it.
        low, high = (data.size, data.size) if data.size is not None else (1, limit)
        policy = await self.store.presigned_post(key, URL_LIFETIME, min_size=low, max_size=high)
        return DirectUpload(
            id=upload.id,
            evidence_id=data.evidence_id,
            method="POST",
            upload_url=policy.url if policy else f"/api/v1/evidence/uploads/{upload.id}/content",
            fields=policy.fields if policy else {},
            expires_at=now + URL_LIFETIME,
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

    async def _writable(self, upload_id: UUID) -> tuple[Upload, int]:
        """The upload its URL may still write, and how many bytes it may write: the rules a
        store's POST policy applies, applied by the API for the folder store."""
        upload = await self._mine(id=upload_id)
        if upload.completed_at is not None:
            raise Conflict("this upload is complete: its URL takes no more files")
        if upload.created_at + URL_LIFETIME <= datetime.now(UTC):
            raise UploadGone("the upload URL expired; start a new upload")
        return upload, upload.length or self.settings.max_upload_bytes

    def _too_large(self, upload: Upload) -> PayloadTooLarge:
        if upload.length:
            return PayloadTooLarge(
                f"the file is larger than the {upload.length} bytes declared",
                limit_bytes=upload.length,
            )
        return too_large(self.settings.max_upload_bytes)

    async def _write(self, upload: Upload, chunks: AsyncIterator[bytes], most: int) -> None:
        """Stream into the upload's key, stopping past `most`; a file of another size than
        declared is removed at once, as the store's policy would refuse it."""
        key = upload.parts[0]["key"]
        try:
            stored = await self.store.put(key, chunks, max_size=most)
        except ObjectTooLarge:
            raise self._too_large(upload) from None
        finally:
            # A store that stopped reading early leaves the generators suspended: close them
            # now, not whenever the garbage collector gets to them.
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()
        if upload.length and stored.size != upload.length:
            await self.store.delete(key)
            raise Rejected.field(
                "file", f"is {stored.size} bytes; the upload was declared at {upload.length}"
            )

    async def receive(self, upload_id: UUID, request: Request[Any, Any, Any]) -> None:
        """The folder store's stand-in for a store URL, raw: the body is the file."""
        upload, most = await self._writable(upload_id)
        length = declared_length(request)
        if length is not None and length > most:
            raise self._too_large(upload)
        await self._write(upload, body_chunks(request), most)

    async def receive_form(self, upload_id: UUID, request: Request[Any, Any, Any]) -> None:
        """The folder store's stand-in for a store's POST: the same form, the `file` part kept."""
        upload, most = await self._writable(upload_id)
        length = declared_length(request)
        if length is not None and length > most + FORM_OVERHEAD:
            raise self._too_large(upload)
        await self._write(upload, form_file(request, most + FORM_OVERHEAD), most)

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
        if upload.length and info.size != upload.length:  # the store's policy refuses these
            await self.store.delete(key)
            raise Rejected.field(
                "file", f"is {info.size} bytes; the upload was declared at {upload.length}"
            )
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


async def form_file(request: Request[Any, Any, Any], most: int) -> AsyncIterator[bytes]:
    """The bytes of the `file` part of a `multipart/form-data` body, as they arrive; the other
    parts (the form fields a store's POST takes) are read and ignored, as S3 ignores those after
    the file. At most `most` bytes of body in all (413)."""
    kind, options = multipart.parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary")
    if kind != "multipart/form-data" or not boundary:
        raise Rejected.field("file", "send multipart/form-data: the `fields`, then a `file` part")
    parser = multipart.PushMultipartParser(boundary, max_header_count=8, max_segment_count=64)
    in_file, seen, received = False, False, 0
    try:
        async for chunk in body_chunks(request):
            received += len(chunk)
            if received > most:
                raise PayloadTooLarge(f"the form is larger than {most} bytes", limit_bytes=most)
            for event in parser.parse(chunk):
                if isinstance(event, multipart.MultipartSegment):
                    in_file = event.name == "file"
                    if in_file and seen:
                        raise Rejected.field("file", "sent more than once")
                    seen = seen or in_file
                elif event is None:
                    in_file = False
                elif in_file and event:
                    yield bytes(event)
        for _ in parser.parse(b""):
            pass
    except multipart.MultipartError as exc:
        raise Rejected.field("file", f"malformed multipart body: {exc}") from None
    if not parser.closed:
        raise IncompleteBody("the multipart body ended early")
    if not seen:
        raise Rejected.field("file", "missing: send the file in a `file` part, after the fields")


_GONE = {
    410: ResponseSpec(
        data_container=Problem,
        media_type="application/problem+json",
        description="The upload URL expired (15 minutes); start a new upload.",
        generate_examples=False,
    )
}


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
        """Checks the right to attach first; POST the form (`fields`, then `file`) to
        `upload_url` within 15 minutes, then complete."""
        return await direct.start(data)

    @post(
        "/uploads/{upload_id:uuid}/content",
        summary="Upload the file as a form (folder store)",
        status_code=HTTP_204_NO_CONTENT,
        responses=_GONE,
        description="What a store's POST takes: multipart/form-data with the `fields` of the "
        "upload, then the file as `file`. Exactly the declared size (413 larger, 422 smaller), "
        "for 15 minutes (410), until the upload is completed (409).",
    )
    async def content_form(
        self, request: Request[Any, Any, Any], direct: DirectUploads, upload_id: UUID
    ) -> None:
        """Streamed into the store; checked at completion."""
        await direct.receive_form(upload_id, request)

    @put(
        "/uploads/{upload_id:uuid}/content",
        summary="Upload the file, raw (folder store)",
        status_code=HTTP_204_NO_CONTENT,
        responses=_GONE,
        description="The raw bytes of the file as the body; the same rules as the form.",
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
