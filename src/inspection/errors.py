"""Domain errors raised by services; `inspection.web.problems` turns each into RFC 9457 problem
details.

Services speak in the domain's terms (not found, conflict, invalid transition); they never build
HTTP responses, so the same rules serve the API, the CLI and background jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field: where it is (a dotted path, or a row number in a bulk import) and why."""

    field: str
    message: str
    row: int | None = None


class DomainError(Exception):
    """Base of every error a service may raise on purpose."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it exists."""

    status = 404
    slug = "not-found"
    title = "Not found"


class Forbidden(DomainError):
    """The caller sees the thing but may not do this to it."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class Unauthenticated(DomainError):
    """No valid credentials."""

    status = 401
    slug = "unauthenticated"
    title = "Unauthorized"


class Conflict(DomainError):
    """The request conflicts with the current state (a duplicate code, a reused id, ...)."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class InvalidTransition(Conflict):
    """A state transition that the current status does not allow."""

    slug = "invalid-transition"
    title = "Invalid transition"

    def __init__(self, current: str, action: str, allowed: Sequence[str] = ()) -> None:
        super().__init__(
            f"cannot {action} while status is {current!r}",
            current_status=current,
            allowed_transitions=list(allowed),
        )


class PreconditionFailed(DomainError):
    """`If-Match` names a version that is no longer current."""

    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PreconditionRequired(DomainError):
    """A change to a versioned resource came without `If-Match`."""

    status = 428
    slug = "precondition-required"
    title = "Precondition required"


class Rejected(DomainError):
    """Well-formed input that breaks a rule; names each field at fault."""

    status = 422
    slug = "validation"
    title = "Unprocessable content"

    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.errors = list(errors)

    @classmethod
    def field(cls, field: str, message: str) -> Rejected:
        """A rejection caused by a single field."""
        return cls(f"{field}: {message}", [FieldError(field, message)])


class InvalidParameter(Rejected):
    """A query parameter that cannot be served as given (`from` after `to`): 400, naming it, like
    the schema's own validation of parameters."""

    status = 400
    slug = "validation"
    title = "Invalid request"


class TooManyRequests(DomainError):
    """The caller must wait before trying again."""

    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PayloadTooLarge(DomainError):
    """The body is larger than the configured limit; it was not read past the limit."""

    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(DomainError):
    """The bytes are not of an accepted type (recognised from the bytes, not the name)."""

    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class ChecksumMismatch(DomainError):
    """A tus chunk did not match its `Upload-Checksum` (tus 1.0 checksum extension: 460)."""

    status = 460
    slug = "checksum-mismatch"
    title = "Checksum mismatch"
