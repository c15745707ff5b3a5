"""HTTP endpoints of evidence. Thin: parse, call one service method, return."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, put
from litestar.datastructures import ResponseHeader
from litestar.di import Provide
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter
from litestar.response import Redirect, Stream
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_304_NOT_MODIFIED,
    HTTP_307_TEMPORARY_REDIRECT,
)

from inspection.access.principal import Principal
from inspection.evidence import schemas
from inspection.evidence.receive import MultipartUpload, receive_multipart
from inspection.evidence.service import EvidenceService, Owner
from inspection.web.http import PROBLEM_RESPONSES, Problem, with_etag

IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(name="If-None-Match", description="ETag you hold; 304 if it is current."),
]
# Content is addressed by its SHA-256: a cached copy never goes stale, but access can be
# withdrawn, so browsers keep it privately and revalidate after a day.
CACHE_CONTROL = "private, max-age=86400"
UPLOAD_RESPONSES = {
    415: ResponseSpec(
        data_container=Problem,
        media_type="application/problem+json",
        description="Not a JPEG, PNG, WebP, HEIC/HEIF or PDF file (recognised from the bytes).",
        generate_examples=False,
    ),
}
CONTENT_RESPONSES = {
    304: ResponseSpec(data_container=None, description="Your copy (If-None-Match) is current."),
    307: ResponseSpec(
        data_container=None,
        description="Fetch the bytes from this short-lived signed URL of the object store.",
    ),
    404: PROBLEM_RESPONSES[404],
}


def provide_evidence(request: Request[Any, Any, Any], principal: Principal) -> EvidenceService:
    """Evidence as this user sees it (the service opens its own short sessions)."""
    state = request.app.state
    return EvidenceService(state.database, state.object_store, principal, state.settings)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    return if_none_match.strip() == "*" or etag in {t.strip() for t in if_none_match.split(",")}


async def _put(
    request: Request[Any, Any, Any], evidence: EvidenceService, owner: Owner, evidence_id: UUID
) -> Response[schemas.Evidence]:
    """A multipart upload, read from the raw stream (see `evidence.receive`)."""
    limit = request.app.state.settings.max_upload_bytes

    async def receive() -> MultipartUpload:
        return await receive_multipart(request, limit)

    item, change = await evidence.attach(owner, evidence_id, receive)
    return with_etag(item, HTTP_201_CREATED if change == "created" else HTTP_200_OK)


class FindingEvidenceController(Controller):
    """Photos and documents of a finding, uploaded under ids the tablet chooses."""

    path = "/api/v1/findings/{finding_id:uuid}/evidence"
    tags = ["evidence"]
    dependencies = {"evidence": Provide(provide_evidence, sync_to_thread=False)}

    @put(
        "/{evidence_id:uuid}",
        summary="Upload evidence (multipart: `file` and JSON `meta`)",
        responses=UPLOAD_RESPONSES,
        status_code=HTTP_201_CREATED,
        description=(
            "multipart/form-data with a `file` part (the photo or PDF) and an optional `meta` part"
            " (JSON: captured_at, position, caption, sha256). 201 when stored; 200 for the same"
            " bytes again; 409 for other bytes under the same id."
        ),
    )
    async def put_evidence(
        self,
        request: Request[Any, Any, Any],
        evidence: EvidenceService,
        finding_id: UUID,
        evidence_id: UUID,
    ) -> Response[schemas.Evidence]:
        """Store a photo or document once, however often the tablet retries."""
        return await _put(request, evidence, Owner("finding", finding_id), evidence_id)

    @get("/", summary="List a finding's evidence")
    async def list_evidence(
        self, evidence: EvidenceService, finding_id: UUID
    ) -> list[schemas.Evidence]:
        """Every photo and document of the finding, oldest first."""
        return await evidence.list_for(Owner("finding", finding_id))

    @delete("/{evidence_id:uuid}", summary="Remove evidence from a draft finding")
    async def delete_evidence(
        self, evidence: EvidenceService, finding_id: UUID, evidence_id: UUID
    ) -> None:
        """Only while the finding is a draft (409 once it is submitted)."""
        await evidence.remove(finding_id, evidence_id)


class ActionEvidenceController(Controller):
    """Evidence of a corrective action's response, uploaded by its assignee."""

    path = "/api/v1/actions/{action_id:uuid}/evidence"
    tags = ["evidence"]
    dependencies = {"evidence": Provide(provide_evidence, sync_to_thread=False)}

    @put(
        "/{evidence_id:uuid}",
        summary="Upload evidence of a corrective action",
        responses=UPLOAD_RESPONSES,
        status_code=HTTP_201_CREATED,
        description="As for findings: multipart `file` and JSON `meta`; the assignee, before "
        "the response is submitted.",
    )
    async def put_evidence(
        self,
        request: Request[Any, Any, Any],
        evidence: EvidenceService,
        action_id: UUID,
        evidence_id: UUID,
    ) -> Response[schemas.Evidence]:
        """Store a photo or document once, however often the client retries."""
        return await _put(request, evidence, Owner("action", action_id), evidence_id)

    @get("/", summary="List a corrective action's evidence")
    async def list_evidence(
        self, evidence: EvidenceService, action_id: UUID
    ) -> list[schemas.Evidence]:
        """Every photo and document of the action, oldest first."""
        return await evidence.list_for(Owner("action", action_id))


class EvidenceController(Controller):
    """Evidence metadata and bytes, for whoever may see its finding."""

    path = "/api/v1/evidence"
    tags = ["evidence"]
    dependencies = {"evidence": Provide(provide_evidence, sync_to_thread=False)}

    @get("/{evidence_id:uuid}", summary="Get evidence metadata")
    async def get_evidence(
        self, evidence: EvidenceService, evidence_id: UUID
    ) -> Response[schemas.Evidence]:
        """Type, size, SHA-256, dimensions, EXIF facts and what the tablet said."""
        return with_etag(await evidence.get(evidence_id))

    @get(
        "/{evidence_id:uuid}/content",
        summary="Get evidence bytes",
        responses=CONTENT_RESPONSES,
        response_headers=[ResponseHeader(name="ETag", documentation_only=True)],
        media_type="application/octet-stream",
    )
    async def get_content(
        self,
        evidence: EvidenceService,
        evidence_id: UUID,
        variant: schemas.Variant = schemas.Variant.ORIGINAL,
        if_none_match: IfNoneMatch = None,
    ) -> Response[Any]:
        """The original, or the upright metadata-free preview (1280 px) or thumbnail (320 px)."""
        delivery = await evidence.delivery(evidence_id, variant)
        headers = {"ETag": delivery.etag, "Cache-Control": CACHE_CONTROL}
        if _matches(if_none_match, delivery.etag):
            return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
        if delivery.redirect_to is not None:
            return Redirect(
                delivery.redirect_to,
                status_code=HTTP_307_TEMPORARY_REDIRECT,
                headers=headers,
                media_type=MediaType.TEXT,
            )
        if delivery.size is not None:
            headers["Content-Length"] = str(delivery.size)
        # The type goes in the headers: Litestar lets the route's documented media type
        # (application/octet-stream) override a Stream's own.
        headers["Content-Type"] = delivery.content_type
        headers["Content-Disposition"] = delivery.disposition
        headers["X-Content-Type-Options"] = "nosniff"
        return Stream(await evidence.open(delivery), headers=headers, status_code=HTTP_200_OK)
