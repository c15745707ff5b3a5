"""Shared parameter declarations and response helpers for controllers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, Parameter
from litestar.status_codes import HTTP_201_CREATED

from inspection.concurrency import etag
from inspection.pagination import MAX_LIMIT

Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description="Page size (1-500).")]
Cursor = Annotated[
    str | None, Parameter(max_length=512, description="`next_cursor` of the previous page.")
]
IfMatch = Annotated[
    str | None, HeaderParameter(name="If-Match", description="ETag of the version you read.")
]
IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", description="Retry-safe creation key.")
]
REPLAYED_HEADER = "Idempotent-Replayed"


def with_etag(result: Any, status_code: int = 200) -> Response[Any]:
    """A response carrying the record's version as its ETag."""
    return Response(result, status_code=status_code, headers={"ETag": etag(result.version)})


def created(result: Any, replayed: bool = False) -> Response[Any]:
    """201 with the ETag; marks an idempotent replay."""
    response = with_etag(result, HTTP_201_CREATED)
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response


class ProblemField(msgspec.Struct, omit_defaults=True):
    """One invalid field of a request."""

    field: str
    message: str
    row: int | None = None
    source: str | None = None


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details; extension members (e.g. `current_status`) may follow."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemField] | None = None


_PROBLEM_STATUSES = {
    400: "The request does not match the schema (fields named in `errors`).",
    401: "No valid bearer token.",
    403: "You see this but may not change it.",
    404: "Not found, or not visible to you.",
    409: "Conflicts with the current state (`current_status`, `allowed_transitions`).",
    412: "`If-Match` is not the current version.",
    413: "The body is too large.",
    422: "Breaks a rule (fields named in `errors`).",
    428: "`If-Match` is required.",
    429: "Too many attempts; see `Retry-After`.",
    503: "A back-end is unavailable; see `Retry-After`.",
}
PROBLEM_RESPONSES = {
    status: ResponseSpec(
        data_container=Problem,
        media_type="application/problem+json",
        description=description,
        generate_examples=False,
    )
    for status, description in _PROBLEM_STATUSES.items()
}


def document_problems(controllers: Iterable[type[Controller]]) -> None:
    """Declare the problem responses on every operation of `controllers` in the OpenAPI schema
    (Litestar would otherwise document only its own 400, in its own format)."""
    for controller in controllers:
        for handler in vars(controller).values():
            if isinstance(handler, HTTPRouteHandler):
                handler.responses = {**PROBLEM_RESPONSES, **(handler.responses or {})}
