"""Pick the object store the settings describe."""

from __future__ import annotations

from inspection.settings import Settings
from inspection.storage import ObjectStore
from inspection.storage.filesystem import FilesystemObjectStore
from inspection.storage.s3 import S3ObjectStore


def create_object_store(settings: Settings) -> ObjectStore:
    """MinIO/S3 when `INSPECTION_S3_ENDPOINT` is set, else the local folder."""
    if settings.s3 is not None:
        return S3ObjectStore(
            settings.s3, object_lock=settings.s3.object_lock_days > 0, timeouts=settings.timeouts
        )
    return FilesystemObjectStore(settings.objects_dir)
