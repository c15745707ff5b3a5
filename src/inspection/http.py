"""Shared parameter declarations and response helpers for controllers, and the two request
checks made once for every operation: the media type of JSON bodies and the browser origin."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Response
from litestar.config.cors import CORSConfig
from litestar.datastructures import Headers
from litestar.enums import RequestEncodingType, ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import BodyKwarg, HeaderParameter, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_403_FORBIDDEN
from litestar.types import ASGIApp, Receive, Scope, Send

from inspection.concurrency import etag
from inspection.errors import UnsupportedMediaType
from inspection.pagination import MAX_LIMIT
from inspection.problems import problem_response, quote

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
    """201 with the ETag (of a mutable record; an event, which never changes, has none); marks
    an idempotent replay."""
    response = (
        with_etag(result, HTTP_201_CREATED)
        if hasattr(result, "version")
        else Response(result, status_code=HTTP_201_CREATED)
    )
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
    detail: str  # always present: what was wrong, in words
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
    415: "The body is not `application/json` (`accepted_media_types`).",
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


# --- JSON bodies ---------------------------------------------------------------------------------

JSON_MEDIA_TYPE = "application/json"
# JSON is UTF-8 (RFC 8259 §8.1); ASCII is a subset of it.
_JSON_CHARSETS = {"utf-8", "utf8", "us-ascii"}


def takes_json_body(handler: HTTPRouteHandler) -> bool:
    """Whether Litestar decodes `handler`'s `data` as JSON: a msgspec Struct, dict, ... body
    declared without another encoding (multipart, url-encoded and MessagePack bodies are not)."""
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return False
    kwarg = data.kwarg_definition
    media_type = kwarg.media_type if isinstance(kwarg, BodyKwarg) else RequestEncodingType.JSON
    return media_type == RequestEncodingType.JSON


def _parse_content_type(raw: str) -> tuple[str, dict[str, str]]:
    media_type, *parameters = raw.split(";")
    options: dict[str, str] = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        options[name.strip().lower()] = value.strip().strip('"')
    return media_type.strip().lower(), options


def is_json_media_type(media_type: str) -> bool:
    """`application/json` or a JSON-based type (`application/merge-patch+json`, RFC 6839)."""
    return media_type == JSON_MEDIA_TYPE or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _has_no_body(headers: Headers, http_version: str) -> bool:
    if headers.get("content-length", "").strip() == "0":
        return True
    # HTTP/1.x frames a body with one of these two (RFC 9112 §6.3); HTTP/2 and 3 may send a
    # body with neither, so there the answer is unknown and the request is refused.
    return (
        http_version in {"1.0", "1.1"}
        and "content-length" not in headers
        and "transfer-encoding" not in headers
    )


def json_body_refusal(headers: Headers, http_version: str = "1.1") -> str | None:
    """Why a request to a JSON operation is refused with 415, or None when its body may be
    decoded as JSON.

    The type must be JSON (parameters such as `charset=utf-8` allowed, charsets other than
    UTF-8 not). A body without `Content-Type` is refused too: RFC 9110 §8.3 lets the recipient
    take it as `application/octet-stream` rather than guess, JSON clients all label their
    bodies, and a browser may send an unlabelled body cross-origin without a preflight.
    A request without Content-Type and without a body goes on (to the schema's "missing body").
    """
    raw = headers.get("content-type")
    media_type, options = _parse_content_type(raw) if raw else ("", {})
    if not media_type:
        if _has_no_body(headers, http_version):
            return None
        return f"the body has no Content-Type; send it as {JSON_MEDIA_TYPE}"
    if not is_json_media_type(media_type):
        return f"the body is {quote(media_type)}; this operation accepts {JSON_MEDIA_TYPE}"
    charset = options.get("charset", "utf-8").lower()
    if charset not in _JSON_CHARSETS:
        return f"{JSON_MEDIA_TYPE} must be UTF-8, not {quote(charset)}"
    return None


class JSONBodyMiddleware(ASGIMiddleware):
    """Refuses, with 415, a body that is not JSON sent to an operation that decodes its body as
    JSON, before anything reads it.

    Litestar itself parses such a body as JSON whatever its `Content-Type` says: a `text/plain`
    body holding JSON was accepted, and a form or multipart body got "JSON is malformed".
    Operations that read their body themselves (evidence multipart and direct uploads, tus,
    the CSV-or-JSON unit import) take no `data` and are left alone.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the request's media type when its handler takes a JSON body."""
        handler = scope.get("route_handler")
        if isinstance(handler, HTTPRouteHandler) and takes_json_body(handler):
            version = str(scope.get("http_version", "1.1"))
            reason = json_body_refusal(Headers.from_scope(scope), version)
            if reason is not None:
                raise UnsupportedMediaType(reason, accepted_media_types=[JSON_MEDIA_TYPE])
        await next_app(scope, receive, send)


# --- browser origins -----------------------------------------------------------------------------


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def is_same_origin(origin: str, headers: Headers) -> bool:
    """Whether `origin` is the service's own: a page it serves (the Swagger UI at /schema)
    sends its origin on POST, PATCH, PUT and DELETE, and CORS is not about those requests.

    The scheme is not compared (TLS usually ends at a proxy); the host and port are, against
    `X-Forwarded-Host` (set by such a proxy; a browser cannot add it without a preflight) and
    `Host`.
    """
    try:
        parts = urlsplit(origin)
        port = parts.port or _default_port(parts.scheme)
    except ValueError:
        return False
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    for candidate in (headers.get("x-forwarded-host"), headers.get("host")):
        if not candidate:
            continue
        try:
            host = urlsplit("//" + candidate.split(",")[0].strip())
            if host.hostname == parts.hostname and (host.port or _default_port(parts.scheme)) == (
                port
            ):
                return True
        except ValueError:
            continue
    return False


class OriginGuard:
    """Refuses browser requests from origins that INSPECTION_CORS_ORIGINS does not list with a
    403 problem (`/problems/origin-not-allowed`), and hands every other request, untouched, to
    Litestar's CORS handling.

    It must wrap Litestar's CORS middleware from the outside: that middleware sits in front of
    the router and the exception handlers and answers a refused preflight with a `text/plain`
    400 of its own. 403, not 400: the request is well-formed; the service understood it and
    refuses it to that origin (RFC 9110 §15.5.4). Refused are:

    * preflights (OPTIONS with `Origin`) from an origin not allowed;
    * other requests with an `Origin` that is neither allowed nor the service's own (see
      `is_same_origin`): the browser would hide the answer from the page anyway; refusing
      means the request is not carried out either.

    Requests without `Origin` (non-browser clients, same-origin GETs) are not concerned.
    """

    def __init__(self, app: ASGIApp, config: CORSConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a refused origin, or pass the request on."""
        if scope["type"] == ScopeType.HTTP:
            headers = Headers.from_scope(scope)
            origin = headers.get("origin")
            if origin is not None and self._refuses(origin, scope["method"], headers):
                await self._refuse(origin, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refuses(self, origin: str, method: str, headers: Headers) -> bool:
        if self.config.is_origin_allowed(origin):
            return False
        # A browser never preflights a same-origin request; an OPTIONS with a foreign Origin
        # is refused whatever its Host says, so the CORS middleware never refuses one itself.
        return method == "OPTIONS" or not is_same_origin(origin, headers)

    @staticmethod
    async def _refuse(origin: str, scope: Scope, receive: Receive, send: Send) -> None:
        request = scope["litestar_app"].request_class(scope=scope, receive=receive, send=send)
        response = problem_response(
            request,
            HTTP_403_FORBIDDEN,
            f"the origin {quote(origin)} is not allowed to call this API",
            slug="origin-not-allowed",
            title="Origin not allowed",
            # The answer depends on Origin: caches must not serve it to an allowed one.
            headers={"Vary": "Origin"},
        )
        await response.to_asgi_response(app=None, request=request)(scope, receive, send)
