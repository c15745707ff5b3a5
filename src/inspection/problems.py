"""The one map from errors to RFC 9457 problem details (`application/problem+json`).

Every error leaves the service through here: domain errors from services, Litestar's own HTTP
errors (unknown route, wrong method, bad body, body too large, missing token), database errors that
escaped a service, and anything unexpected, which becomes a bare 500 without trace or SQL.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError

from inspection.errors import DomainError, Rejected, TooManyRequests
from inspection.storage import StorageUnavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("inspection.problems")

_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation",
    428: "precondition-required",
    429: "too-many-requests",
    500: "internal-error",
    503: "unavailable",
}
# msgspec locates a bad field as "$.a.b[0].c"; clients want "a.b[0].c".
_MSGSPEC_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_NAMED_FIELD = re.compile(r"field `([^`]+)`")


def problem_type(status: int) -> str:
    """The `type` URI of a problem: a stable, documented slug per kind (see docs/api.md)."""
    return f"/problems/{_SLUGS.get(status, 'error')}"


def problem_response(
    request: Request[Any, Any, Any] | None,
    status: int,
    detail: str | None,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response[dict[str, Any]]:
    """Build a problem-details response; extension members sit beside the standard ones."""
    body: dict[str, Any] = {
        "type": f"/problems/{slug}" if slug else problem_type(status),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    body.update({k: v for k, v in extensions.items() if v is not None})
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def rejected_fields(exc: Rejected) -> list[dict[str, Any]]:
    """The `errors` member of a rejection: each field, its message and (in imports) its row."""
    return [
        {
            k: v
            for k, v in (("field", e.field), ("message", e.message), ("row", e.row))
            if v is not None
        }
        for e in exc.errors
    ]


def _domain(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    headers = None
    extensions = dict(exc.extra)
    if isinstance(exc, Rejected):
        extensions["errors"] = rejected_fields(exc)
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return problem_response(
        request,
        exc.status,
        exc.detail,
        slug=exc.slug,
        title=exc.title,
        headers=headers,
        **extensions,
    )


def locate_field(message: str, default: str) -> tuple[str, str]:
    """The field a msgspec validation message is about, and the message without its location.

    "Expected `int` - at `$.position.lat`" → position.lat; "Object missing required field `x`
    - at `$.position`" → position.x; a field of the top-level object → its name.
    """
    path = ""
    match = _MSGSPEC_PATH.search(message)
    if match:
        path, message = match.group(1), message[: match.start()]
    named = _NAMED_FIELD.search(message)
    if named:
        return (f"{path}.{named.group(1)}" if path else named.group(1)), message
    return path or default, message


def _field_errors(extra: Any) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for item in extra if isinstance(extra, list) else []:
        if not isinstance(item, dict):
            continue
        key = item.get("key")
        # Litestar names the body "data"; the message itself knows the field.
        default = str(key) if key and key != "data" else "body"
        field, message = locate_field(str(item.get("message", "invalid value")), default)
        entry = {"field": field, "message": message}
        source = item.get("source")
        if source:
            entry["source"] = str(getattr(source, "value", source))
        errors.append(entry)
    return errors


def _validation(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    errors = _field_errors(exc.extra)
    detail = (
        "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "the request is malformed"
    )
    return problem_response(
        request, 400, detail, slug="validation", title="Invalid request", errors=errors
    )


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    if status >= 500:
        log.error("HTTP error %s on %s: %s", status, request.url.path, exc.detail)
    detail = exc.detail if status < 500 else None
    if detail == HTTPStatus(status).phrase:
        detail = None
    return problem_response(request, status, detail, headers=headers or None)


def _integrity(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[dict[str, Any]]:
    # A race lost against a concurrent request (two creates of the same code): the services check
    # first, so reaching here means the other request won. The SQL stays in the log.
    log.info("integrity error on %s: %s", request.url.path, exc.orig)
    return problem_response(
        request, 409, "the change conflicts with a concurrent change; reload and retry"
    )


def _stale(request: Request[Any, Any, Any], exc: StaleDataError) -> Response[dict[str, Any]]:
    # The version-guarded UPDATE matched no row: a concurrent request changed the record between
    # our If-Match check and our write.
    return problem_response(
        request,
        412,
        "the record was changed by a concurrent request; reload it",
        slug="precondition-failed",
    )


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.warning("back-end unavailable on %s: %s", request.url.path, exc)
    return problem_response(
        request, 503, "a back-end service is unavailable; retry later", headers={"Retry-After": "5"}
    )


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "an unexpected error occurred; it has been logged")


def _sqlstate(exc: DBAPIError) -> str:
    """The SQLSTATE of a PostgreSQL error ("22…": data exception), "" when there is none."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return ""


def _database(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[dict[str, Any]]:
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return _unavailable(request, exc)
    if isinstance(exc, DataError) or _sqlstate(exc).startswith("22"):
        # The database refused a value the schema let through (a NUL character, a number out
        # of range): bad input, not a bug. The value stays in the log.
        log.info("data error on %s: %s", request.url.path, exc.orig)
        return problem_response(
            request,
            400,
            "a value contains characters or a range the database cannot store",
            slug="bad-request",
        )
    return _internal(request, exc)


exception_handlers: ExceptionHandlersMap = {
    DomainError: _domain,
    ValidationException: _validation,
    HTTPException: _http,
    IntegrityError: _integrity,
    StaleDataError: _stale,
    DBAPIError: _database,
    PoolTimeoutError: _unavailable,
    StorageUnavailable: _unavailable,
    ConnectionError: _unavailable,
    Exception: _internal,
}
