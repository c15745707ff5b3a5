"""The one map from errors to RFC 9457 problem details (`application/problem+json`).

Every error leaves the service through here: domain errors from services, Litestar's own HTTP
errors (unknown route, wrong method, bad body, body too large, missing token), database errors that
escaped a service, and anything unexpected, which becomes a bare 500 without trace or SQL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from uuid import UUID

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
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
# What a problem says when nothing more specific is known: RFC 9457 makes `detail` optional, but
# our clients show it to people, so every problem carries one (see `problem_response`).
_DEFAULT_DETAILS = {
    400: "the request is malformed",
    401: "a valid bearer token is required",
    403: "you may not do this",
    404: "there is nothing at this address",
    405: "this method is not allowed here",
    413: "the body is too large",
    415: "the body's media type is not accepted",
    429: "too many requests; retry later",
    500: "an unexpected error occurred; it has been logged",
    503: "a back-end service is unavailable; retry later",
}
# Client input quoted in a detail is cut to this many characters (paths can be kilobytes long).
_QUOTE_LIMIT = 200
# What a path parameter of each type must look like, for the detail of a malformed one.
_PATH_TYPE_NAMES: dict[type, str] = {UUID: "UUID", int: "whole number", float: "number"}
# msgspec locates a bad field as "$.a.b[0].c"; clients want "a.b[0].c".
_MSGSPEC_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_NAMED_FIELD = re.compile(r"field `([^`]+)`")


def problem_type(status: int) -> str:
    """The `type` URI of a problem: a stable, documented slug per kind (see docs/api.md)."""
    return f"/problems/{_SLUGS.get(status, 'error')}"


def default_detail(status: int) -> str:
    """A generic `detail` for `status`, used only when the error itself says nothing more."""
    if status in _DEFAULT_DETAILS:
        return _DEFAULT_DETAILS[status]
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:  # a non-standard status such as tus's 460
        return "the request failed"


def quote(value: str) -> str:
    """Client input for a detail: cut to a readable length (the whole value helps nobody)."""
    return value if len(value) <= _QUOTE_LIMIT else value[:_QUOTE_LIMIT] + "…"


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
    """Build a problem-details response; extension members sit beside the standard ones.

    `detail` is always present: without one, a generic sentence for the status is used.
    """
    body: dict[str, Any] = {
        "type": f"/problems/{slug}" if slug else problem_type(status),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or default_detail(status),
    }
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
        if key and message == repr(str(key)):
            # A missing value comes as its bare quoted name (a KeyError's message).
            message = "a JSON body is required" if key == "data" else "is required"
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


def _is_generic(exc: HTTPException) -> bool:
    """Whether Litestar raised `exc` without saying more than its status (its router's 404 and
    405, its 413): then the handlers below write the detail."""
    # A class may declare its own default (RequestEntityTooLarge: "Request Entity Too Large").
    return exc.detail in {HTTPStatus(exc.status_code).phrase, getattr(type(exc), "detail", ""), ""}


def _path_components(request: Request[Any, Any, Any]) -> list[str]:
    path: str = request.scope["path"]
    root = request.scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    return [part for part in path.split("/") if part]


def _match(route: HTTPRoute, components: list[str]) -> list[tuple[Any, str]] | None:
    """The (parameter definition, raw value) pairs of `components` on `route`'s path, or None
    when the literal segments do not line up."""
    if len(route.path_components) != len(components):
        return None
    values: list[tuple[Any, str]] = []
    for expected, actual in zip(route.path_components, components, strict=True):
        if isinstance(expected, str):
            if expected != actual:
                return None
        else:
            values.append((expected, actual))
    return values


def malformed_path_parameters(request: Request[Any, Any, Any]) -> list[dict[str, str]]:
    """The `errors` of a request whose path matches a route except for a typed parameter (a
    UUID that is not one); empty when no route matches at all.

    Litestar's router answers such a request with a bare 404 and does not say which parameter
    failed, so the routes are matched again here, on the error path only.
    """
    components = _path_components(request)
    for route in request.app.routes:
        if not isinstance(route, HTTPRoute) or request.method not in route.methods:
            continue
        values = _match(route, components)
        if not values:
            continue
        errors: list[dict[str, str]] = []
        for definition, raw in values:
            parser: Callable[[str], Any] | None = definition.parser
            if parser is None:
                continue
            try:
                parser(raw)
            except ValueError:
                kind = _PATH_TYPE_NAMES.get(definition.type, definition.type.__name__)
                errors.append(
                    {
                        "field": definition.name,
                        "message": f"{quote(raw)!r} is not a valid {kind}",
                        "source": "path",
                    }
                )
        if errors:
            return errors
    return []


def _not_found(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    errors = malformed_path_parameters(request) if isinstance(exc.__cause__, ValueError) else []
    if errors:
        # The address is one of a route's, with a value that cannot be an id: still 404 (no
        # such thing), but saying why spares the client a search for a record that never was.
        detail = "; ".join(f"path parameter {e['field']}: {e['message']}" for e in errors)
        return problem_response(request, 404, detail, errors=errors)
    detail = f"no route {request.method} {quote(request.url.path)}"
    return problem_response(request, 404, detail)


def _allow(headers: dict[str, str]) -> str:
    return next((value for key, value in headers.items() if key.lower() == "allow"), "")


def _too_large(request: Request[Any, Any, Any]) -> tuple[str, int | None]:
    handler = request.scope.get("route_handler")
    limit = (
        handler.resolve_request_max_body_size() if isinstance(handler, HTTPRouteHandler) else None
    )
    if not limit:
        return default_detail(413), None
    mib = 1024 * 1024
    size = f"{limit // mib} MB" if limit % mib == 0 else f"{limit} bytes"
    return f"the body is larger than {size}", limit


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    if status >= 500:
        log.error("HTTP error %s on %s: %s", status, request.url.path, exc.detail)
    generic = _is_generic(exc)
    if isinstance(exc, NotFoundException) and generic:
        return _not_found(request, exc)
    if isinstance(exc, MethodNotAllowedException) and generic:
        detail = f"{request.method} is not allowed on {quote(request.url.path)}"
        if allowed := _allow(headers):
            detail += f"; allowed: {allowed}"
        return problem_response(request, 405, detail, headers=headers or None)
    if status == 413 and generic:  # RequestEntityTooLarge, not exported by litestar.exceptions
        detail, limit = _too_large(request)
        return problem_response(request, 413, detail, headers=headers or None, limit_bytes=limit)
    # A 5xx detail may describe internals; the generic sentence replaces it.
    specific = exc.detail if status < 500 and not generic else None
    return problem_response(request, status, specific, headers=headers or None)


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
