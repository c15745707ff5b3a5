"""Writing and verifying the hash-chained audit log.

`record` is called by services inside the request's transaction, so the change and its entry
commit together or not at all. Each entry's hash covers its content and the previous hash; editing
or removing any row breaks the chain at that row, and `verify` names it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.audit.models import GENESIS_HASH, AuditEntry, AuditHead
from inspection.errors import Conflict

HEAD_ID = 1
_VERIFY_BATCH = 2000
# Never copied into the log, whatever a service passes.
_SECRET_FIELDS = frozenset({"password", "password_hash", "secret_hash"})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a user, or the system itself (start-up, jobs, the CLI)."""

    id: UUID | None
    name: str


SYSTEM = Actor(None, "system")


def actor_of(principal: Principal) -> Actor:
    """The audit actor for a signed-in user."""
    return Actor(principal.user_id, principal.username)


def jsonable(value: Any) -> Any:
    """A value as it will read back from the JSON column, so hashing before and after agree."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The fields whose value differs, as {field: {"before": …, "after": …}}."""
    changed: dict[str, Any] = {}
    for field in sorted(set(before) | set(after)):
        if field in _SECRET_FIELDS:
            continue
        old, new = jsonable(before.get(field)), jsonable(after.get(field))
        if old != new:
            changed[field] = {"before": old, "after": new}
    return changed


def created(values: Mapping[str, Any]) -> dict[str, Any]:
    """Changes of a new record: every field with its value."""
    return changes_between({}, values)


def removed(values: Mapping[str, Any]) -> dict[str, Any]:
    """Changes of a removed record: every field with its last value."""
    return changes_between(values, {})


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    """SHA-256 over the previous hash and the entry's canonical JSON."""
    payload = {
        "seq": entry.seq,
        "occurred_at": jsonable(entry.occurred_at),
        "actor_id": jsonable(entry.actor_id),
        "actor": entry.actor,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "action": entry.action,
        "unit_id": jsonable(entry.unit_id),
        "changes": entry.changes,
    }
    if entry.plan_id is not None:
        payload["plan_id"] = jsonable(entry.plan_id)
    canonical = msgspec.json.encode(payload, order="sorted")
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class Event:
    """One change to record."""

    entity: str
    entity_id: UUID | str
    action: str
    changes: Mapping[str, Any]
    unit_id: UUID | None = None
    plan_id: UUID | None = None


async def record(
    session: AsyncSession,
    actor: Actor,
    entity: str,
    entity_id: UUID | str,
    action: str,
    changes: Mapping[str, Any],
    *,
    unit_id: UUID | None = None,
    plan_id: UUID | None = None,
) -> AuditEntry:
    """Append one entry to the chain in the caller's transaction.

    Locks the chain head until the transaction ends: call it last in a service operation so the
    lock is held for as short a time as possible.
    """
    head = await _lock_head(session)
    event = Event(entity, entity_id, action, changes, unit_id, plan_id)
    entry = _chained(head, actor, event, datetime.now(UTC))
    session.add(entry)
    return entry


async def record_many(session: AsyncSession, actor: Actor, events: Sequence[Event]) -> None:
    """Append many entries at once (a sync batch): one head lock, one multi-row INSERT.

    The chain is the same as with one `record` per event, in the order given.
    """
    if not events:
        return
    head = await _lock_head(session)
    now = datetime.now(UTC)
    entries = [_chained(head, actor, event, now) for event in events]
    await session.execute(
        insert(AuditEntry), [{c: getattr(e, c) for c in _ENTRY_COLUMNS} for e in entries]
    )


async def _lock_head(session: AsyncSession) -> AuditHead:
    head = await session.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update())
    if head is None:
        raise Conflict("the audit log is not initialised; run the database migrations")
    return head


def _chained(head: AuditHead, actor: Actor, event: Event, now: datetime) -> AuditEntry:
    """The next entry of the chain, hashed over the previous one; moves the head onto it."""
    entry = AuditEntry(
        seq=head.seq + 1,
        occurred_at=now,
        actor_id=actor.id,
        actor=actor.name,
        entity=event.entity,
        entity_id=str(event.entity_id),
        action=event.action,
        unit_id=event.unit_id,
        plan_id=event.plan_id,
        changes=jsonable(dict(event.changes)),
        prev_hash=head.hash,
        hash="",
    )
    entry.hash = entry_hash(head.hash, entry)
    head.seq, head.hash = entry.seq, entry.hash
    return entry


_ENTRY_COLUMNS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor",
    "entity",
    "entity_id",
    "action",
    "unit_id",
    "plan_id",
    "changes",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of checking the chain: how far it holds and, if broken, where and why."""

    ok: bool
    checked: int
    head_seq: int
    broken_at: int | None = None
    problem: str | None = None


async def verify(session: AsyncSession) -> ChainReport:
    """Recompute every hash in order; report the first entry that was changed, removed or added."""
    head = await session.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID))
    if head is None:
        return ChainReport(False, 0, 0, 0, "the chain head is missing")
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    while True:
        batch = (
            await session.scalars(
                select(AuditEntry)
                # Only up to the head read above: entries committed while we scan are not
                # "missing", they are newer than what we verify.
                .where(AuditEntry.seq >= expected_seq, AuditEntry.seq <= head.seq)
                .order_by(AuditEntry.seq)
                .limit(_VERIFY_BATCH)
            )
        ).all()
        for entry in batch:
            if entry.seq != expected_seq:
                return ChainReport(
                    False, checked, head.seq, expected_seq, f"entry {expected_seq} is missing"
                )
            if entry.prev_hash != prev_hash:
                return ChainReport(
                    False,
                    checked,
                    head.seq,
                    entry.seq,
                    f"entry {entry.seq} does not follow entry {entry.seq - 1}",
                )
            if entry_hash(prev_hash, entry) != entry.hash:
                return ChainReport(
                    False, checked, head.seq, entry.seq, f"entry {entry.seq} was altered"
                )
            prev_hash, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
        if len(batch) < _VERIFY_BATCH:
            break
        session.expunge_all()  # keep memory flat over millions of entries
    if head.seq != checked or head.hash != prev_hash:
        return ChainReport(
            False,
            checked,
            head.seq,
            checked + 1,
            f"entries after {checked} are missing (the head is at {head.seq})",
        )
    return ChainReport(True, checked, head.seq)
