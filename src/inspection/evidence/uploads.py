"""Resumable uploads: the tus 1.0 protocol (core, creation, checksum, termination, expiration).

Standard tus clients (TUSKit on iOS, tus-android-client, tus-js-client) upload large photos over
connections that drop: `POST /api/v1/uploads` creates an upload for one evidence item of a
finding, each `PATCH` appends bytes at `Upload-Offset`, and `HEAD` tells a client that lost its
connection where to resume. When the last byte arrives the file goes through exactly the checks
and pipeline of a multipart upload and becomes evidence; the final PATCH answers with the problem
if it is refused.

Every PATCH body is stored as its own object and recorded on the upload row in a short
transaction, so any worker on any host can take the next PATCH. A connection that breaks
mid-PATCH keeps what arrived (unless the chunk carried a checksum, which can then not be
verified): the client's HEAD reports the new offset and nothing is sent twice. For that HEAD to
be right at once, each request holds the upload's lock (`evidence.locks`): a PATCH from before
it checks the offset until what it received is recorded, HEAD while it reads the offset.
Uploads that are not finished within a day are removed by `inspection evidence sweep`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Request, Response, delete, head, patch, post, route
from litestar.datastructures import ResponseHeader, State
from litestar.di import Provide
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import select

from inspection.db.session import transaction
from inspection.errors import (
    ChecksumMismatch,
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    PayloadTooLarge,
    Rejected,
    UnsupportedMediaType,
)
from inspection.evidence import schemas
from inspection.evidence.controllers import provide_evidence
from inspection.evidence.locks import Holding, UploadLocks, upload_locks
from inspection.evidence.models import Upload
from inspection.evidence.receive import IncompleteBody, Spool, declared_length
from inspection.evidence.service import EvidenceService, Owner, Received
from inspection.kit.problem_details import locate_field
from inspection.web.http import Problem, clean_text, parse_count

log = logging.getLogger("inspection.uploads")

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,checksum,termination,expiration"
CHECKSUMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
UPLOAD_LIFETIME = timedelta(days=1)
PARTS_PREFIX = "uploads/"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
MAX_PARTS = 10_000
# How long a request waits for the upload's lock before answering 423 (tusd waits too): long
# enough for an interrupted PATCH to store and record a large part, short enough for a client.
LOCK_WAIT_SECONDS = 5.0
_META_KEYS = frozenset(
    {"finding_id", "action_id", "evidence_id", "filename", "filetype", "name", "type"}
    | {"captured_at", "caption", "sha256", "lat", "lon", "accuracy_m"}
)


class TusVersionUnsupported(DomainError):
    """A request without `Tus-Resumable: 1.0.0` (tus 1.0: 412 with `Tus-Version`)."""

    status = 412
    slug = "tus-version"
    title = "Unsupported tus version"


class UploadGone(DomainError):
    """The upload expired and was (or is about to be) removed."""

    status = 410
    slug = "upload-expired"
    title = "Upload expired"


def parse_metadata(raw: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64(value)` pairs."""
    pairs: dict[str, str] = {}
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        key, _, encoded = item.strip().partition(" ")
        if key in pairs:
            raise Rejected.field(f"Upload-Metadata.{key}", "given twice")
        try:
            value = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Rejected.field(f"Upload-Metadata.{key}", "must be base64-encoded UTF-8") from None
        # Text like any other: no control characters (400), NFC (inspection.web.http).
        pairs[key] = clean_text(value, f"Upload-Metadata.{key}", "header")
    return pairs


def _uuid(pairs: dict[str, str], key: str) -> UUID:
    value = pairs.get(key)
    if not value:
        raise Rejected.field(f"Upload-Metadata.{key}", "is required")
    try:
        return UUID(value)
    except ValueError:
        raise Rejected.field(f"Upload-Metadata.{key}", "must be a UUID") from None


def _owner(pairs: dict[str, str]) -> Owner:
    """The finding or the corrective action the upload is for (exactly one of the two)."""
    if ("finding_id" in pairs) == ("action_id" in pairs):
        raise Rejected.field("Upload-Metadata.finding_id", "give finding_id or action_id (one)")
    if "action_id" in pairs:
        return Owner("action", _uuid(pairs, "action_id"))
    return Owner("finding", _uuid(pairs, "finding_id"))


def evidence_meta(pairs: dict[str, str]) -> schemas.EvidenceMeta:
    """The evidence `meta` a tus client sends as metadata pairs (numbers arrive as text)."""
    unknown = sorted(set(pairs) - _META_KEYS)
    if unknown:
        raise Rejected.field(f"Upload-Metadata.{unknown[0]}", "unknown key")
    values: dict[str, Any] = {
        k: pairs[k] for k in ("captured_at", "caption", "sha256") if k in pairs
    }
    if "lat" in pairs or "lon" in pairs:
        values["position"] = {k: pairs[k] for k in ("lat", "lon", "accuracy_m") if k in pairs}
    try:
        return msgspec.convert(values, schemas.EvidenceMeta, strict=False)
    except msgspec.ValidationError as exc:
        field, message = locate_field(str(exc), "Upload-Metadata")
        name = f"Upload-Metadata.{field.removeprefix('position.')}"
        raise Rejected(f"{name}: {message}", [FieldError(name, message)]) from None


def _checksum(header: str | None) -> tuple[str, Any, bytes] | None:
    """`Upload-Checksum: <algorithm> <base64 digest>` → algorithm, hasher, expected digest."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    factory = CHECKSUMS.get(algorithm.lower())
    if factory is None:
        raise Rejected.field(
            "Upload-Checksum", f"unsupported algorithm; use {', '.join(CHECKSUMS)}"
        )
    try:
        expected = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise Rejected.field("Upload-Checksum", "the digest must be base64") from None
    return algorithm.lower(), factory(), expected


class UploadService:
    """tus uploads of the signed-in user."""

    def __init__(self, evidence: EvidenceService, locks: UploadLocks) -> None:
        # The evidence service finishes every upload; its handles serve the upload too.
        self.evidence = evidence
        self.database, self.store = evidence.database, evidence.store
        self.principal, self.settings = evidence.principal, evidence.settings
        self.locks = locks

    async def create(self, length: int | None, raw_metadata: str | None) -> Upload:
        """A new upload for one evidence item, after the same checks as a multipart upload."""
        limit = self.settings.max_upload_bytes
        if length is None:
            raise Rejected.field(
                "Upload-Length", "is required (Upload-Defer-Length is not supported)"
            )
        if length > limit:
            raise PayloadTooLarge(
                f"Upload-Length {length} is over the limit of {limit} bytes", limit_bytes=limit
            )
        if length == 0:
            raise Rejected.field("Upload-Length", "the file is empty")
        pairs = parse_metadata(raw_metadata)
        owner = _owner(pairs)
        evidence_id = _uuid(pairs, "evidence_id")
        meta = evidence_meta(pairs)
        await self.evidence.precheck(owner, evidence_id)
        async with transaction(self.database) as session:
            upload = Upload(
                user_id=self.principal.user_id,
                finding_id=owner.id if owner.kind == "finding" else None,
                action_id=owner.id if owner.kind == "action" else None,
                evidence_id=evidence_id,
                meta={
                    **msgspec.to_builtins(meta),
                    "filename": pairs.get("filename") or pairs.get("name"),
                },
                raw_metadata=(raw_metadata or "")[:8000] or None,
                length=length,
                offset=0,
                parts=[],
                expires_at=datetime.now(UTC) + UPLOAD_LIFETIME,
            )
            session.add(upload)
            await session.flush()
            return upload

    async def get(self, upload_id: UUID) -> Upload:
        """An upload of this user; 404 for anyone else's, 410 once expired."""
        async with self.database.read_session() as session:
            upload = await session.scalar(
                select(Upload).where(
                    Upload.id == upload_id, Upload.user_id == self.principal.user_id
                )
            )
        if upload is None:
            raise NotFound(f"upload {upload_id} not found")
        if upload.expires_at <= datetime.now(UTC):
            raise UploadGone("this upload expired; start a new one")
        return upload

    async def status(self, upload_id: UUID) -> Upload:
        """HEAD: the upload with every byte that will be kept, once no PATCH is recording more."""
        await self.get(upload_id)  # someone else's upload: 404 before touching its lock
        async with self.locks.hold(upload_id, LOCK_WAIT_SECONDS):
            return await self.get(upload_id)

    async def append(
        self,
        upload_id: UUID,
        request: Request[Any, Any, Any],
        offset: int,
        checksum_header: str | None,
    ) -> Upload:
        """PATCH: store the body at `offset`; on the last byte, turn the upload into evidence.

        The upload's lock is held from before the offset is checked until the part is recorded
        and, on the last byte, the evidence stored: no other request sees the offset meanwhile.
        """
        await self.get(upload_id)
        checksum = _checksum(checksum_header)
        async with self.locks.hold(upload_id, LOCK_WAIT_SECONDS) as holding:
            upload = await self.get(upload_id)  # as recorded by the last holder
            if offset != upload.offset:
                raise Conflict(
                    f"Upload-Offset is {offset} but the upload is at {upload.offset};"
                    " HEAD and resume",
                    upload_offset=upload.offset,
                )
            remaining = upload.length - upload.offset
            announced = declared_length(request)
            if announced is not None and announced > remaining:
                raise PayloadTooLarge(
                    f"only {remaining} bytes remain of Upload-Length {upload.length}"
                )
            if remaining > 0:
                spool, cut = await self._receive(request, remaining, checksum, holding)
                try:
                    if spool.size > 0:
                        upload = await self._add_part(upload, spool)
                finally:
                    spool.close()
                if cut is not None:
                    raise IncompleteBody(f"{cut}; the upload is at {upload.offset}")
            if upload.offset == upload.length and upload.completed_at is None:
                await self._complete(upload)
            return upload

    async def _receive(
        self,
        request: Request[Any, Any, Any],
        remaining: int,
        checksum: tuple[str, Any, bytes] | None,
        holding: Holding,
    ) -> tuple[Spool, str | None]:
        """The PATCH body, capped at the bytes still missing, and why it was cut short if it was:
        the connection broke, or another request for the upload asked for it."""
        spool = Spool()
        asked = asyncio.ensure_future(holding.asked_to_let_go.wait())
        try:
            while True:
                message = await _next_message(request, asked)
                if message is None or message["type"] == "http.disconnect":
                    if checksum is not None:  # an unverifiable chunk is worth nothing
                        spool.close()
                        spool = Spool()
                    if message is None:
                        return spool, "another request for this upload took over"
                    return spool, "the connection broke"
                chunk = message.get("body", b"")
                if isinstance(chunk, bytes) and chunk:
                    if spool.size + len(chunk) > remaining:
                        raise PayloadTooLarge(f"only {remaining} bytes remain of this upload")
                    spool.write(chunk)
                    if checksum is not None:
                        checksum[1].update(chunk)
                if not message.get("more_body", False):
                    break
        except BaseException:
            spool.close()
            raise
        finally:
            asked.cancel()
        if checksum is not None and checksum[1].digest() != checksum[2]:
            spool.close()
            raise ChecksumMismatch(
                f"the chunk does not match its {checksum[0]} checksum; resend it"
            )
        return spool, None

    async def _add_part(self, upload: Upload, spool: Spool) -> Upload:
        """Store the chunk as an object, then record it if nobody else moved the offset."""
        key = f"{PARTS_PREFIX}{upload.id}/{upload.offset:016d}-{uuid4().hex[:8]}"
        await self.store.put(key, spool.chunks())
        async with transaction(self.database) as session:
            current = await session.scalar(
                select(Upload).where(Upload.id == upload.id).with_for_update()
            )
            refusal = _refusal(current, upload)
            if refusal is not None:
                await self.store.delete(key)
                raise refusal
            assert current is not None
            current.parts = [*current.parts, {"key": key, "size": spool.size}]
            current.offset = current.offset + spool.size
            await session.flush()
            return current

    async def _complete(self, upload: Upload) -> None:
        """Join the parts and ingest them as evidence, then forget the parts."""
        owner = Owner.of_upload(upload)
        existing = await self.evidence.precheck(owner, upload.evidence_id)
        spool = Spool()
        try:
            for part in upload.parts:
                async for chunk in self.store.get(part["key"]):
                    spool.write(chunk)
            if spool.size != upload.length:
                raise Conflict("the stored parts do not add up to the upload; start again")
            meta = dict(upload.meta)
            filename = meta.pop("filename", None)
            received = Received(spool, msgspec.convert(meta, schemas.EvidenceMeta), filename)
            await self.evidence.ingest(owner, upload.evidence_id, received, existing)
        finally:
            spool.close()
        async with transaction(self.database) as session:
            current = await session.get(Upload, upload.id)
            if current is not None:
                current.completed_at = datetime.now(UTC)
                current.parts = []
        upload.completed_at = datetime.now(UTC)
        for part in upload.parts:
            try:
                await self.store.delete(part["key"])
            except Exception as exc:  # the sweep removes what is left
                log.warning("could not delete upload part %s: %s", part["key"], exc)

    async def terminate(self, upload_id: UUID) -> None:
        """DELETE: abandon an upload and its parts (after any PATCH has recorded its own)."""
        await self.get(upload_id)
        async with self.locks.hold(upload_id, LOCK_WAIT_SECONDS):
            upload = await self.get(upload_id)
            async with transaction(self.database) as session:
                current = await session.get(Upload, upload.id)
                if current is not None:
                    await session.delete(current)
        for part in upload.parts:
            await self.store.delete(part["key"])


async def _next_message(
    request: Request[Any, Any, Any], asked: asyncio.Future[Any]
) -> dict[str, Any] | None:
    """The next ASGI message of the body, or None once another request asked for the upload.

    Waiting for the client and for such a request at once is what lets a PATCH on a half-open
    connection (the server never hears that the client left) give the upload up.
    """
    if asked.done():
        return None
    receiving = asyncio.ensure_future(request.receive())
    try:
        await asyncio.wait({receiving, asked}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not receiving.done():
            receiving.cancel()  # nothing was taken from the stream: nothing is lost
    if receiving.done() and not receiving.cancelled():
        return dict(receiving.result())  # bytes that arrived are kept, even if also asked
    return None


def _refusal(current: Upload | None, seen: Upload) -> DomainError | None:
    """Why a received part cannot be recorded on the upload as it is now, if it cannot."""
    if current is None:
        return NotFound(f"upload {seen.id} not found")
    if current.offset != seen.offset:
        return Conflict("another request appended to this upload first; HEAD and resume")
    if len(current.parts) >= MAX_PARTS:
        return Conflict(f"an upload takes at most {MAX_PARTS} parts; send larger chunks")
    return None


def provide_uploads(request: Request[Any, Any, Any], evidence: EvidenceService) -> UploadService:
    """This user's tus uploads."""
    return UploadService(evidence, _upload_locks(request.app.state))


def _upload_locks(state: State) -> UploadLocks:
    """The app's upload locks, made once for the database the lifespan opened."""
    cached = state.get("upload_locks")
    if cached is None or cached[0] is not state.database:
        cached = state.upload_locks = (state.database, upload_locks(state.database))
    locks: UploadLocks = cached[1]
    return locks


def check_tus_version(request: Request[Any, Any, Any]) -> None:
    """tus 1.0: every request but OPTIONS names the protocol version it speaks."""
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise TusVersionUnsupported(
            f"send Tus-Resumable: {TUS_VERSION}", supported_versions=[TUS_VERSION]
        )


def _expires(upload: Upload) -> str:
    return format_datetime(upload.expires_at.astimezone(UTC), usegmt=True)


def _headers(**values: str | int) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    headers.update({name.replace("_", "-"): str(value) for name, value in values.items()})
    return headers


TusResumable = Annotated[
    str | None, HeaderParameter(name="Tus-Resumable", description="Always 1.0.0.")
]
_TUS_RESPONSES = {
    460: ResponseSpec(
        data_container=Problem,
        media_type="application/problem+json",
        description="The chunk does not match its Upload-Checksum.",
        generate_examples=False,
    ),
    410: ResponseSpec(
        data_container=Problem,
        media_type="application/problem+json",
        description="The upload expired.",
        generate_examples=False,
    ),
    415: ResponseSpec(
        data_container=Problem,
        media_type="application/problem+json",
        description="Not an accepted file type (the finished upload), or a PATCH without "
        "Content-Type: application/offset+octet-stream.",
        generate_examples=False,
    ),
    423: ResponseSpec(
        data_container=Problem,
        media_type="application/problem+json",
        description="Another request for the upload is still recording what it received; "
        "retry after Retry-After.",
        generate_examples=False,
    ),
}


class UploadController(Controller):
    """tus 1.0 resumable uploads of evidence (see docs/evidence.md)."""

    path = "/api/v1/uploads"
    tags = ["evidence"]
    dependencies = {
        "evidence": Provide(provide_evidence, sync_to_thread=False),
        "uploads": Provide(provide_uploads, sync_to_thread=False),
    }
    response_headers = [ResponseHeader(name="Tus-Resumable", value=TUS_VERSION)]

    @route(
        "/",
        http_method=[HttpMethod.OPTIONS],
        summary="tus capabilities",
        status_code=HTTP_204_NO_CONTENT,
        include_in_schema=False,  # a protocol probe without a body; see docs/evidence.md
    )
    async def capabilities(self, request: Request[Any, Any, Any]) -> Response[None]:
        """Protocol version, extensions, size limit and checksum algorithms."""
        return Response(
            None,
            status_code=HTTP_204_NO_CONTENT,
            headers=_headers(
                Tus_Version=TUS_VERSION,
                Tus_Extension=TUS_EXTENSIONS,
                Tus_Max_Size=request.app.state.settings.max_upload_bytes,
                Tus_Checksum_Algorithm=",".join(CHECKSUMS),
            ),
        )

    @post("/", summary="Create a resumable upload (tus creation)", responses=_TUS_RESPONSES)
    async def create(
        self,
        request: Request[Any, Any, Any],
        uploads: UploadService,
        tus_resumable: TusResumable = None,
        upload_length: Annotated[
            str | None, HeaderParameter(name="Upload-Length", description="Total bytes.")
        ] = None,
        upload_metadata: Annotated[
            str | None,
            HeaderParameter(
                name="Upload-Metadata",
                description="finding_id, evidence_id (required), filename, captured_at, caption,"
                " lat, lon, accuracy_m, sha256: each `key base64(value)`, comma-separated.",
            ),
        ] = None,
    ) -> Response[None]:
        """201 with `Location`: PATCH the bytes there."""
        check_tus_version(request)
        # ASCII digits only, at most 18 (400 naming the header); over the limit is 413 below.
        length = parse_count(upload_length, "Upload-Length")
        upload = await uploads.create(length, upload_metadata)
        return Response(
            None,
            status_code=HTTP_201_CREATED,
            headers=_headers(
                Location=f"{self.path}/{upload.id}",
                Upload_Expires=_expires(upload),
                Upload_Offset=0,
            ),
        )

    @head(
        "/{upload_id:uuid}",
        summary="Where to resume an upload",
        status_code=HTTP_200_OK,
        responses={423: _TUS_RESPONSES[423]},
    )
    async def offset(
        self, request: Request[Any, Any, Any], uploads: UploadService, upload_id: UUID
    ) -> Response[None]:
        """`Upload-Offset` says how many bytes the server has (and will keep: a PATCH still
        recording what it received is waited for)."""
        check_tus_version(request)
        upload = await uploads.status(upload_id)
        headers = _headers(
            Upload_Offset=upload.offset,
            Upload_Length=upload.length,
            Upload_Expires=_expires(upload),
        )
        if upload.raw_metadata:
            headers["Upload-Metadata"] = upload.raw_metadata
        return Response(None, status_code=HTTP_200_OK, headers=headers)

    @patch(
        "/{upload_id:uuid}",
        summary="Append bytes to an upload",
        status_code=HTTP_204_NO_CONTENT,
        responses=_TUS_RESPONSES,
    )
    async def append(
        self,
        request: Request[Any, Any, Any],
        uploads: UploadService,
        upload_id: UUID,
        tus_resumable: TusResumable = None,
        upload_offset: Annotated[
            str | None, HeaderParameter(name="Upload-Offset", description="Where these bytes go.")
        ] = None,
        upload_checksum: Annotated[
            str | None,
            HeaderParameter(name="Upload-Checksum", description="`sha1|sha256|md5 base64(digest)`"),
        ] = None,
    ) -> Response[None]:
        """204 with the new `Upload-Offset`; the last chunk turns the upload into evidence."""
        check_tus_version(request)
        if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_CONTENT_TYPE:
            raise UnsupportedMediaType(f"PATCH bodies are {OFFSET_CONTENT_TYPE}")
        offset = parse_count(upload_offset, "Upload-Offset")
        if offset is None:
            raise Rejected.field("Upload-Offset", "is required: a non-negative integer")
        upload = await uploads.append(upload_id, request, offset, upload_checksum)
        headers = _headers(Upload_Offset=upload.offset, Upload_Expires=_expires(upload))
        if upload.completed_at is not None:
            headers["Evidence-Location"] = f"/api/v1/evidence/{upload.evidence_id}"
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers=headers)

    @delete(
        "/{upload_id:uuid}",
        summary="Abandon an upload (tus termination)",
        responses={423: _TUS_RESPONSES[423]},
    )
    async def terminate(
        self,
        request: Request[Any, Any, Any],
        uploads: UploadService,
        upload_id: UUID,
        tus_resumable: TusResumable = None,
    ) -> Response[None]:
        """Removes the upload and what it received."""
        check_tus_version(request)
        await uploads.terminate(upload_id)
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers=_headers())
