"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from inspection.db.base import metadata
from inspection.db.migrate import compare_type, downgrade, upgrade
from inspection.db.models import import_all_models
from tests.conftest import Backend


async def _diff(url: str) -> list[Any]:
    import_all_models()
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": compare_type}), metadata
                )
            )
    finally:
        await engine.dispose()


async def test_models_and_migrations_agree(backend: Backend) -> None:
    assert await _diff(backend.database_url) == []


async def test_downgrade_to_base_and_up_again(backend: Backend) -> None:
    await anyio.to_thread.run_sync(downgrade, backend.database_url, "base")
    await anyio.to_thread.run_sync(upgrade, backend.database_url)
    assert await _diff(backend.database_url) == []
