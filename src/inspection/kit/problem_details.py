"""What an RFC 9457 problem says, apart from any HTTP response: the `type` URI and generic
`detail` of each status, the `errors` member of a rejection, the field a msgspec validation
message is about. `inspection.web.problems` builds the responses from these; a sync batch
reports its items' problems with the same words."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from inspection.errors import Rejected

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
