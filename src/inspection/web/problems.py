"""The one map from errors to RFC 9457 problem details (`application/problem+json`).

Every error leaves the service through here: domain errors from services, Litestar's own HTTP
errors (unknown route, wrong method, bad body, body too large, missing token), database errors that
escaped a service, and anything unexpected, which becomes a bare 500 without trace or SQL.
"""

from __future__ import annotations

import logging
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
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError

from inspection.db.engine import is_connection_failure
from inspection.errors import DomainError, Rejected, TooManyRequests
from inspection.kit.problem_details import (
    default_detail,
    locate_field,
    problem_type,
    rejected_fields,
)
from inspection.storage import StorageUnavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("inspection.web.problems")

# Client input quoted in a detail is cut to this many characters (paths can be kilobytes long).
_QUOTE_LIMIT = 200
# What a path parameter of each type must look like, for the detail of a malformed one.
_PATH_TYPE_NAMES: dict[type, str] = {UUID: "UUID", int: "whole number", float: "number"}


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


def _wire_names(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The handler's parameters that the client writes under another name, by Python name: a
    `first` declared `QueryParameter(name="from")` is `from` in the query string, and an error
    must name what the client sent."""
    signature = getattr(request.scope.get("route_handler"), "parsed_fn_signature", None)
    names: dict[str, str] = {}
    for key, definition in (getattr(signature, "parameters", None) or {}).items():
        name = getattr(getattr(definition, "kwarg_definition", None), "name", None)
        if isinstance(name, str) and name and name != key:
            names[key] = name
    return names


def _field_errors(extra: Any, names: dict[str, str] | None = None) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for item in extra if isinstance(extra, list) else []:
        if not isinstance(item, dict):
            continue
        key = item.get("key")
        # Litestar names the body "data"; the message itself knows the field.
        default = str(key) if key and key != "data" else "body"
        default = (names or {}).get(default, default)
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
    errors = _field_errors(exc.extra, _wire_names(request))
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


# What a client is told to wait before retrying a request that met a back-end failure: about
# what a restarting PostgreSQL or MinIO needs, and what readiness takes to notice (operations.md).
RETRY_AFTER_SECONDS = 5
# A failure's log line is cut to this many characters.
_LOG_LIMIT = 300


def one_line(exc: BaseException) -> str:
    """The failure in one line for the log: its type and first line. Driver errors append the
    SQL and a link on further lines, which would turn every failed request into a paragraph."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= _LOG_LIMIT else text[:_LOG_LIMIT] + "…"


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # The database or the store is down, timed out or shutting down: expected in operation and
    # not a bug, so one warning line without a trace (an outage would otherwise flood the log).
    backend = "object store" if isinstance(exc, StorageUnavailable) else "database"
    log.warning(
        "%s unavailable on %s %s: %s", backend, request.method, request.url.path, one_line(exc)
    )
    return problem_response(
        request,
        503,
        "a back-end service is unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # A connection failure can arrive in a shape no handler below names (asyncpg's
    # CannotConnectNowError raised raw by a connect, a socket's TimeoutError or OSError).
    if is_connection_failure(exc):
        return _unavailable(request, exc)
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
    # Invalidated connections, OperationalError (SQLite's "database is locked") and driver
    # errors that mean the server cannot serve now (57P01 admin_shutdown, 08xxx, ...).
    if is_connection_failure(exc):
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
