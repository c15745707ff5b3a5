"""Shared parameter declarations and response helpers for controllers, and the request checks
made once for every operation: the media type of JSON bodies, the browser origin, and the rules
for hostile input (header size and count, numeric headers, JSON depth, control characters and
NFC text), each in one place for every endpoint."""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Iterable
from itertools import accumulate
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import msgspec
from litestar import Controller, Request, Response
from litestar.config.cors import CORSConfig
from litestar.datastructures import Headers
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import SerializationException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import BodyKwarg, HeaderParameter, Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_400_BAD_REQUEST, HTTP_403_FORBIDDEN
from litestar.types import ASGIApp, Receive, Scope, Send

from inspection.errors import UnsupportedMediaType
from inspection.kit.concurrency import etag
from inspection.kit.pagination import MAX_LIMIT
from inspection.web.problems import problem_response
from inspection.web.problems import quote as quote_input

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
    431: "Too many header fields, or too many bytes of them.",
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
        return f"the body is {quote_input(media_type)}; this operation accepts {JSON_MEDIA_TYPE}"
    charset = options.get("charset", "utf-8").lower()
    if charset not in _JSON_CHARSETS:
        return f"{JSON_MEDIA_TYPE} must be UTF-8, not {quote_input(charset)}"
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
            f"the origin {quote_input(origin)} is not allowed to call this API",
            slug="origin-not-allowed",
            title="Origin not allowed",
            # The answer depends on Origin: caches must not serve it to an allowed one.
            headers={"Vary": "Origin"},
        )
        await response.to_asgi_response(app=None, request=request)(scope, receive, send)


# --- hostile input: one rule each, for every request ---------------------------------------------
#
# Limits, chosen and documented in docs/api.md ("Limits on input"):
#
# * JSON nests at most 64 levels. The deepest body of the API (a sync batch: batch, list, item,
#   officials, official) is 5 levels; 64 leaves room for any client while staying far below the
#   ~1,000 levels at which the decoder's recursion fails (it answered 500 with a traceback).
# * At most 100 header fields and 16 KiB of them (names and values), of the order proxies allow
#   by default (nginx: 8 KiB a line, 32 KiB in all): a tablet sends about 10 fields and 1 KiB.
# * A numeric header is 1 to 18 ASCII digits: every such number fits a 64-bit integer, and
#   `str.isdigit()`/`int()` accept far more ("²", Arabic-Indic digits, "+5", "1_000", and raise
#   on 4,301 digits).

MAX_JSON_DEPTH = 64
MAX_HEADER_FIELDS = 100
MAX_HEADER_BYTES = 16 * 1024
# What `inspection serve` lets the HTTP server buffer for a request line and its headers (h11's
# `max_incomplete_event_size`) before it gives up on the connection. Above MAX_HEADER_BYTES, so
# that a moderately oversized request still reaches the app and gets its 431 problem document,
# while a huge header is cut off in the server after 32 KiB instead of being buffered whole.
SERVER_MAX_HEAD_BYTES = 32 * 1024
_COUNT = re.compile(r"[0-9]{1,18}")
# Control characters (Unicode category Cc: C0, DEL and C1) other than tab, line feed and
# carriage return. See `clean_text` for why they are refused rather than stripped.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def invalid(field: str, message: str, source: str) -> ValidationException:
    """A 400 `/problems/validation` naming `field` and where it came from (`source`: body,
    query, path or header), as the schema's own validation errors do."""
    return ValidationException(
        detail=f"{field}: {message}",
        extra=[{"key": field, "message": message, "source": source}],
    )


def content_disposition(kind: Literal["inline", "attachment"], filename: str) -> str:
    """`Content-Disposition` with the name in both forms of RFC 6266: an ASCII fallback for old
    clients (diacritics folded, quotes, backslashes and controls replaced) and the exact UTF-8
    name (RFC 8187). Evidence is served `inline`, reports are downloaded as `attachment`."""
    decomposed = unicodedata.normalize("NFD", filename.replace("đ", "d").replace("Đ", "D"))
    fallback = "".join(
        c if " " <= c <= "~" and c not in '"\\' else "_"
        for c in decomposed
        if not unicodedata.combining(c)
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_count(raw: str | None, name: str) -> int | None:
    """The value of a numeric header (a length, an offset): None when absent; 400 naming the
    header unless it is 1-18 ASCII digits (surrounding blanks allowed, as HTTP allows them)."""
    if raw is None:
        return None
    value = raw.strip(" \t")
    if not _COUNT.fullmatch(value):
        raise invalid(name, "must be a whole number: 1 to 18 ASCII digits", "header")
    return int(value)


def _escape_controls(text: str) -> str:
    """`text` with control characters written as `\\uXXXX`, to name a field safely."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def clean_text(value: str, field: str, source: str) -> str:
    """The one rule for incoming text: no control characters but tab, line feed and carriage
    return (400 naming the field), and Unicode NFC.

    Control characters are refused, not stripped: they are never part of a name, a caption or a
    finding, NUL cannot be stored on PostgreSQL at all (it was stored on SQLite: the same
    request had two outcomes), ESC sequences rewrite terminals and log lines, and the rest break
    CSV and XML exports; silently changing what an inspector wrote would be worse than telling
    the client. NFC, because some Vietnamese keyboards send decomposed text ("o" + U+0303 for
    "õ"): stored as sent, "Võ Nhai" would be two different strings for comparisons, uniqueness
    and sorting.
    """
    _refuse_controls(value, field, source)
    return _nfc(value)


def _refuse_controls(value: str, field: str, source: str) -> None:
    found = _CONTROL.search(value)
    if found is not None:
        raise invalid(
            field,
            f"contains the control character U+{ord(found.group()):04X}; text may hold tab, "
            "line feed and carriage return, but no other control character",
            source,
        )


def _nfc(value: str) -> str:
    """`value` in NFC; the very same object when it already is (the common case, and cheap)."""
    if value.isascii() or unicodedata.is_normalized("NFC", value):
        return value
    return unicodedata.normalize("NFC", value)


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1, +1, -1, -1 as signed bytes


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text `raw` nests arrays and objects more than `limit` levels deep,
    found without decoding it: brackets are counted outside strings (escapes included).

    Everything runs in C (bytes methods and `itertools.accumulate`, no per-byte Python): a few
    milliseconds for a megabyte in the worst shapes (docs/api.md), nothing at all for a body with
    at most `limit` brackets (most requests). Malformed text is left to the decoder to refuse.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    if b'"' in raw:
        if b"\\" in raw:
            # Escapes are pairs read left to right: without the escaped backslashes, then the
            # escaped quotes, every quote left opens or closes a string.
            raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
        # Strings are the odd pieces between quotes (an unterminated one runs to the end).
        raw = b"".join(raw.split(b'"')[::2])
    brackets = raw.translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    return max(accumulate(array("b", brackets.translate(_BRACKET_STEPS)))) > limit


def _field_name(root: str, path: tuple[Any, ...]) -> str:
    """`units[3].name` from the root's name and the (nested) path of keys and indexes."""
    parts: list[str | int] = []
    while path:
        path, segment = path
        parts.append(segment)
    name = "" if root == "body" else root
    for segment in reversed(parts):
        if isinstance(segment, int):
            name += f"[{segment}]"
        else:
            name += f".{_escape_controls(segment)}" if name else _escape_controls(segment)
    return name or root


class _TextWalk:
    """Applies `clean_text` to every string (keys too) of a decoded JSON value, in place; says
    whether anything changed (then the body is encoded again for handlers that read bytes)."""

    def __init__(self, root: str, source: str) -> None:
        self.root, self.source = root, source
        self.changed = False

    def text(self, value: str, path: tuple[Any, ...]) -> str:
        # `clean_text`, with the field named only on failure (naming every string costs).
        if _CONTROL.search(value):
            _refuse_controls(value, _field_name(self.root, path), self.source)
        cleaned = _nfc(value)
        if cleaned is not value:
            self.changed = True
        return cleaned

    def walk(self, value: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(value, str):
            return self.text(value, path)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str | list | dict):
                    value[index] = self.walk(item, (path, index))
            return value
        if isinstance(value, dict):
            renamed = False
            for key, item in value.items():
                if self.text(key, (path, key)) is not key:
                    renamed = True
                if isinstance(item, str | list | dict):
                    value[key] = self.walk(item, (path, key))
            if renamed:  # rare: a decomposed key; the later of two equal keys wins, as in JSON
                return {self.text(key, (path, key)): item for key, item in value.items()}
            return value
        return value


_JSON = msgspec.json.Decoder()


def decode_json(raw: bytes, root: str = "body", source: str = "body") -> tuple[Any, bool]:
    """Decode a JSON body or part under the rules for every JSON input: at most
    MAX_JSON_DEPTH levels (checked before decoding), text by `clean_text`. Returns the value and
    whether a string was normalised. Malformed JSON raises `msgspec.DecodeError`, for the caller
    to report as it always has."""
    if json_too_deep(raw):
        raise invalid(root, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", source)
    value = _JSON.decode(raw)
    if _clean_as_written(raw):
        return value, False
    walk = _TextWalk(root, source)
    return walk.walk(value, ()), walk.changed


# What can put a control character into a decoded string: the escapes \b, \f and \u, and DEL
# and C1 characters written as they are (valid JSON); C0 characters written as they are are
# malformed JSON, refused by the decoder.
_MAYBE_CONTROL = re.compile(rb"\\[bfu]|\x7f|\xc2[\x80-\x9f]")


def _clean_as_written(raw: bytes) -> bool:
    """Whether every string of the JSON text `raw` is already clean, seen from the text as a
    whole (C speed), so that most bodies need no walk through their values.

    Without escapes that make characters (`\\uXXXX`, `\\b`, `\\f`), the strings are pieces of
    the text with at most `"`, `\\`, `/` and LF, CR, TAB put back, none of which composes with
    a neighbour; so when the whole text is NFC, each string is.
    """
    if _MAYBE_CONTROL.search(raw):
        return False
    if raw.isascii():
        return True
    try:
        return unicodedata.is_normalized("NFC", raw.decode("utf-8"))
    except UnicodeDecodeError:  # pragma: no cover - the decoder refused it already
        return False


class InspectionRequest(Request[Any, Any, Any]):
    """The service's request: JSON and CSV bodies pass the input rules once, before anything
    decodes them, whoever reads them: Litestar for a handler's `data`, or a handler reading
    `body()` itself (the unit import).

    Litestar decodes a JSON body without a depth limit (RecursionError at ~1,000 levels: a 500)
    and leaves strings as sent; decoding here, once, and handing Litestar the checked value
    closes both for every endpoint.
    """

    _checked: tuple[Any, bytes] | None = None

    def _media_type(self) -> str:
        raw = self.headers.get("content-type")
        return _parse_content_type(raw)[0] if raw else ""

    async def _checked_json(self, raw: bytes) -> tuple[Any, bytes]:
        if self._checked is None:
            value, changed = decode_json(raw)
            self._checked = (value, msgspec.json.encode(value) if changed else raw)
        return self._checked

    async def body(self) -> bytes:
        """The body; a JSON body checked and, if it held decomposed text, encoded again NFC;
        a CSV body checked and NFC as a whole (its delimiters are ASCII)."""
        raw = await super().body()
        if not raw:
            return raw
        media_type = self._media_type()
        if is_json_media_type(media_type):
            try:
                return (await self._checked_json(raw))[1]
            except msgspec.DecodeError:
                return raw  # malformed: the reader reports it in its own words
        if media_type == "text/csv":
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw
            cleaned = clean_text(text, "body", "body")
            return raw if cleaned is text else cleaned.encode("utf-8")
        return raw

    async def json(self) -> Any:
        """The checked JSON value (Litestar's own `json()` for an empty body: `null`)."""
        raw = await super().body()
        if not raw:
            return await super().json()
        try:
            return (await self._checked_json(raw))[0]
        except msgspec.DecodeError as exc:
            raise SerializationException(str(exc)) from exc  # as Litestar words it: 400


class IncomingTextMiddleware(ASGIMiddleware):
    """Query and path parameters under `clean_text`, before Litestar parses them for handlers:
    400 naming a parameter with a control character (`source`: query or path), NFC otherwise.

    The query string is rewritten only when a value was not NFC (percent-encoded again, so
    handlers and `request.url` see the same text); most requests pass untouched.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check and normalise, then pass the request on."""
        query = scope.get("query_string", b"")
        if query:
            rewritten = clean_query(query)
            if rewritten is not None:
                scope["query_string"] = rewritten
        parameters = scope.get("path_params") or {}
        for name, value in parameters.items():
            if isinstance(value, str):
                parameters[name] = clean_text(value, name, "path")
        await next_app(scope, receive, send)


_RAW_BYTE = re.compile(rb"[\x80-\xff]")


def clean_query(query: bytes) -> bytes | None:
    """Every key and value of a query string under `clean_text`; the query string again when a
    string was normalised, None when it stays as it is."""
    changed = False
    if not query.isascii():
        # Raw UTF-8 (curl sends `?q=Võ` as it is; browsers and HTTP libraries percent-encode):
        # Litestar would read each byte as a Latin-1 character. Encoded, it reads as UTF-8.
        query = _RAW_BYTE.sub(lambda m: b"%%%02X" % m.group()[0], query)
        changed = True
    pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, encoding="utf-8")
    cleaned: list[tuple[str, str]] = []
    for key, value in pairs:
        if key.isascii() and value.isascii() and not _CONTROL.search(key + value):
            cleaned.append((key, value))
            continue
        name = clean_text(key, _escape_controls(key), "query")
        text = clean_text(value, name, "query")
        changed = changed or name is not key or text is not value
        cleaned.append((name, text))
    if not changed:
        return None
    return urlencode(cleaned, quote_via=quote).encode("ascii")


def header_refusal(headers: list[tuple[bytes, bytes]]) -> tuple[int, str, str | None] | None:
    """Why a request's header fields are refused, before anything reads them: (431, detail,
    None) for too many or too large, (400, detail, header) for a malformed Content-Length;
    None when they are fine."""
    if len(headers) > MAX_HEADER_FIELDS:
        return (
            431,
            f"the request has {len(headers)} header fields; at most {MAX_HEADER_FIELDS} "
            "are accepted",
            None,
        )
    size = sum(len(name) + len(value) for name, value in headers)
    if size > MAX_HEADER_BYTES:
        return (
            431,
            f"the request's header fields take {size} bytes; at most "
            f"{MAX_HEADER_BYTES // 1024} KiB are accepted",
            None,
        )
    lengths = {value for name, value in headers if name.lower() == b"content-length"}
    for value in lengths:
        try:
            parse_count(value.decode("latin-1"), "Content-Length")
        except ValidationException:
            return 400, "must be a whole number: 1 to 18 ASCII digits", "Content-Length"
    if len(lengths) > 1:  # RFC 9110 §8.6: differing lengths frame no message
        return 400, "sent more than once with different values", "Content-Length"
    return None


class HeaderGuard:
    """Refuses, before routing, authentication or any handler, a request whose header fields
    are too many or too large (431 `/problems/headers-too-large`), or whose Content-Length is
    not a plain number (400 naming it): upload handlers read Content-Length themselves to
    refuse a large body before reading it, and Litestar reads it for its body limit.

    The HTTP server has its own, larger limit (`SERVER_MAX_HEAD_BYTES`, set by `inspection
    serve`): it stops reading a huge header instead of buffering it. This guard makes the rule
    the app's own, whatever serves it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a refused request, or pass it on."""
        if scope["type"] == ScopeType.HTTP:
            refusal = header_refusal(list(scope["headers"]))
            if refusal is not None:
                await self._refuse(refusal, scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(
        refusal: tuple[int, str, str | None], scope: Scope, receive: Receive, send: Send
    ) -> None:
        status, detail, header = refusal
        request = scope["litestar_app"].request_class(scope=scope, receive=receive, send=send)
        if header is None:
            response = problem_response(
                request,
                status,
                detail,
                slug="headers-too-large",
                title="Request Header Fields Too Large",
            )
        else:
            response = problem_response(
                request,
                HTTP_400_BAD_REQUEST,
                f"{header}: {detail}",
                slug="validation",
                title="Invalid request",
                errors=[{"field": header, "message": detail, "source": "header"}],
            )
        await response.to_asgi_response(app=None, request=request)(scope, receive, send)
