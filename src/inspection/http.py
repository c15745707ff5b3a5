"""Shared parameter declarations and response helpers for controllers."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response
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
