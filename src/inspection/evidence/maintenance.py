"""Housekeeping of evidence bytes: `inspection evidence sweep` and `inspection evidence verify`.

Objects are written before rows, so a failed commit or a crash leaves objects that no row points
to. The sweep removes them once they are older than a grace period (longer than any upload can
take, so an upload in flight is never touched), and removes tus uploads that expired with their
parts. The verify re-reads every original and compares it with the SHA-256 recorded at upload.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import delete, select

from inspection.db.engine import Database
from inspection.db.session import transaction
from inspection.evidence.direct import INCOMING_PREFIX
from inspection.evidence.models import Evidence, Upload
from inspection.evidence.service import PREFIX
from inspection.evidence.uploads import PARTS_PREFIX
from inspection.storage import ObjectInfo, ObjectNotFound, ObjectStore, StorageError

log = logging.getLogger("inspection.evidence")

DEFAULT_GRACE = timedelta(hours=24)
_BATCH = 500


@dataclass
class SweepReport:
    """What a sweep removed, and what it had to leave (e.g. objects under retention)."""

    removed_objects: list[str] = field(default_factory=list)
    removed_uploads: int = 0
    kept: list[str] = field(default_factory=list)


@dataclass
class VerifyReport:
    """Originals that are missing or whose bytes no longer match their SHA-256."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every original is present and intact."""
        return not self.missing and not self.changed


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


async def _remove(store: ObjectStore, keys: Sequence[str], report: SweepReport) -> None:
    for key in keys:
        try:
            await store.delete(key)
            report.removed_objects.append(key)
        except StorageError as exc:  # e.g. an original still under object-lock retention
            log.warning("sweep kept %s: %s", key, exc)
            report.kept.append(key)


async def sweep(
    database: Database,
    store: ObjectStore,
    grace: timedelta = DEFAULT_GRACE,
    now: datetime | None = None,
) -> SweepReport:
    """Remove expired uploads, and objects no row points to that are older than `grace`."""
    now = now or datetime.now(UTC)
    cutoff = now - grace
    report = SweepReport()
    async with transaction(database) as session:
        expired = list(await session.scalars(select(Upload).where(Upload.expires_at <= now)))
        parts = [p["key"] for upload in expired for p in upload.parts]
        if expired:
            await session.execute(delete(Upload).where(Upload.id.in_([u.id for u in expired])))
        report.removed_uploads = len(expired)
    await _remove(store, parts, report)
    checks = (
        (PREFIX, _unreferenced_evidence),
        (PARTS_PREFIX, _unreferenced_parts),
        (INCOMING_PREFIX, _unreferenced_parts),
    )
    for prefix, check in checks:
        batch: list[ObjectInfo] = []
        async for info in store.list(prefix):
            if info.modified_at <= cutoff:
                batch.append(info)
            if len(batch) >= _BATCH:
                await _remove(store, await check(database, batch), report)
                batch = []
        if batch:
            await _remove(store, await check(database, batch), report)
    return report


async def _unreferenced_evidence(database: Database, objects: list[ObjectInfo]) -> list[str]:
    """Keys are `evidence/<id>/<sha256>/<variant>`: referenced when that row has that hash."""
    wanted: dict[str, tuple[UUID | None, str]] = {}
    for info in objects:
        segments = info.key.split("/")
        wanted[info.key] = (
            _uuid(segments[1]) if len(segments) == 4 else None,
            segments[2] if len(segments) == 4 else "",
        )
    ids = {i for i, _ in wanted.values() if i is not None}
    async with database.read_session() as session:
        rows = await session.execute(
            select(Evidence.id, Evidence.sha256).where(Evidence.id.in_(ids))
        )
        stored = {(row.id, row.sha256) for row in rows}
    return [key for key, pair in wanted.items() if pair not in stored]


async def _unreferenced_parts(database: Database, objects: list[ObjectInfo]) -> list[str]:
    """Keys are `uploads/<upload id>/<part>` (tus) or `incoming/<upload id>` (direct uploads):
    referenced when that upload lists the key."""
    ids = {u for info in objects if (u := _uuid(info.key.split("/")[1])) is not None}
    async with database.read_session() as session:
        uploads = await session.scalars(select(Upload).where(Upload.id.in_(ids)))
        listed = {part["key"] for upload in uploads for part in upload.parts}
    return [info.key for info in objects if info.key not in listed]


async def verify(database: Database, store: ObjectStore) -> VerifyReport:
    """Re-hash every stored original; report those missing or changed (and missing previews)."""
    report = VerifyReport()
    after: UUID | None = None
    while True:
        async with database.read_session() as session:
            statement = select(Evidence).order_by(Evidence.id).limit(_BATCH)
            if after is not None:
                statement = statement.where(Evidence.id > after)
            rows = list(await session.scalars(statement))
        if not rows:
            return report
        for row in rows:
            report.checked += 1
            await _verify_one(store, row, report)
        after = rows[-1].id


async def _verify_one(store: ObjectStore, row: Evidence, report: VerifyReport) -> None:
    digest = hashlib.sha256()
    try:
        async for chunk in store.get(row.original_key):
            digest.update(chunk)
    except ObjectNotFound:
        report.missing.append(row.original_key)
        return
    if digest.hexdigest() != row.sha256:
        report.changed.append(row.original_key)
    for key in (row.preview_key, row.thumbnail_key):
        if key is None:
            continue
        try:
            await store.stat(key)
        except ObjectNotFound:
            report.missing.append(key)
