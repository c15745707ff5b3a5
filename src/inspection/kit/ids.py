"""Server-generated identifiers: UUIDv7, time-ordered, so primary-key indexes stay compact."""

from __future__ import annotations

from uuid import UUID

import uuid_utils


def new_id() -> UUID:
    """A new UUIDv7 as a standard-library UUID."""
    return UUID(int=uuid_utils.uuid7().int)
