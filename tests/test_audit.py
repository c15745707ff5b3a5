"""The audit log: every change recorded with the change, readable by the right people, and the
hash chain detects an edited or deleted row."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from inspection.cli import main
from inspection.settings import Settings
from tests.helpers import Api, build_world, problem


async def _entries(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _tamper(settings: Settings, *statements: str) -> None:
    """What a database administrator could do: bypass the append-only triggers and edit rows."""
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.begin() as connection:
            if settings.is_sqlite:
                await connection.execute(text("DROP TRIGGER audit_entries_no_update"))
                await connection.execute(text("DROP TRIGGER audit_entries_no_delete"))
            else:
                await connection.execute(text("SET session_replication_role = replica"))
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def test_every_change_is_recorded_with_before_and_after(api: Api) -> None:
    unit = await api.create_unit("P", "Tỉnh Thái Nguyên", "province")
    await api.patch(
        f"/api/v1/units/{unit['id']}", json={"name": "Tỉnh mới"}, headers={"If-Match": '"1"'}
    )
    entries = await _entries(api, entity="unit", entity_id=unit["id"])
    assert [e["action"] for e in entries] == ["update", "create"]  # newest first
    update, create = entries
    assert update["changes"] == {"name": {"before": "Tỉnh Thái Nguyên", "after": "Tỉnh mới"}}
    assert create["changes"]["code"] == {"before": None, "after": "P"}
    assert update["actor"] == "admin"
    assert update["prev_hash"] == create["hash"]
    assert update["seq"] == create["seq"] + 1


async def test_passwords_never_reach_the_log(api: Api) -> None:
    user = await api.create_user("thanh.nv", [])
    await api.patch(
        f"/api/v1/users/{user['id']}",
        json={"password": "a whole new password"},
        headers={"If-Match": '"1"'},
    )
    entries = await _entries(api, entity="user", entity_id=user["id"])
    assert entries[0]["changes"] == {"password": "changed"}
    text_dump = str(entries)
    assert "argon2" not in text_dump and "a whole new password" not in text_dump


async def test_a_failed_request_leaves_no_entry(api: Api) -> None:
    await api.create_unit("P", "Tỉnh", "province")
    before = await _entries(api)
    problem(
        await api.post("/api/v1/units", json={"code": "P", "name": "Again", "kind": "province"}),
        409,
    )
    rows = [
        {"code": "OK", "name": "ok", "kind": "other"},
        {"code": "X", "name": "x", "kind": "other", "parent_code": "NOPE"},
    ]
    problem(await api.post("/api/v1/units/import", json={"units": rows}), 422)
    assert await _entries(api) == before


async def test_only_admins_and_leaders_read_the_log_within_their_units(api: Api) -> None:
    world = await build_world(api)
    for username in ("head.c1", "planner", "inspector"):
        reader = await api.as_user(username)
        problem(await reader.get("/api/v1/audit"), 404)
        problem(await reader.get("/api/v1/audit/verify"), 404)
    leader = await api.as_user("leader")
    assert any(e["entity_id"] == world.c3["id"] for e in await _entries(leader, limit=500))
    # The district admin sees changes in the district only.
    district_admin = await api.as_user("admin.d1")
    seen = {e["unit_id"] for e in await _entries(district_admin, limit=500)}
    assert world.c1["id"] in seen and world.d1["id"] in seen
    assert world.c3["id"] not in seen and world.province["id"] not in seen and None not in seen
    problem(await district_admin.get("/api/v1/audit/verify"), 404)


async def test_audit_filters_and_pages(api: Api) -> None:
    world = await build_world(api)
    mine = await _entries(api, actor=(await api.get("/api/v1/me")).json()["id"], limit=500)
    assert len(mine) >= 13
    page = (await api.get("/api/v1/audit", params={"limit": 5})).json()
    assert len(page["items"]) == 5 and page["next_cursor"]
    following = (
        await api.get("/api/v1/audit", params={"limit": 5, "cursor": page["next_cursor"]})
    ).json()
    assert following["items"][0]["seq"] == page["items"][-1]["seq"] - 1
    creates = await _entries(api, entity="unit", limit=500)
    assert {e["entity_id"] for e in creates} >= {world.c1["id"], world.c3["id"]}
    assert await _entries(api, **{"from": "2999-01-01T00:00:00Z"}) == []


async def test_the_chain_verifies_when_intact(api: Api) -> None:
    await build_world(api)
    report = (await api.get("/api/v1/audit/verify")).json()
    assert report["ok"] is True
    assert report["checked"] == report["head_seq"] >= 14
    assert report["broken_at"] is None


async def test_the_log_is_append_only_in_the_database(api: Api, settings: Settings) -> None:
    await api.create_unit("P", "Tỉnh", "province")
    engine = create_async_engine(settings.database_url)
    try:
        for statement in ("UPDATE audit_entries SET actor = 'x'", "DELETE FROM audit_entries"):
            with pytest.raises(Exception, match="append-only"):
                async with engine.begin() as connection:
                    await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def test_an_edited_row_is_detected(api: Api, settings: Settings) -> None:
    await build_world(api)
    await _tamper(settings, "UPDATE audit_entries SET actor = 'someone else' WHERE seq = 5")
    report = (await api.get("/api/v1/audit/verify")).json()
    assert report["ok"] is False
    assert report["broken_at"] == 5
    assert "altered" in report["problem"]
    assert report["checked"] == 4


async def test_a_deleted_row_is_detected(api: Api, settings: Settings) -> None:
    await build_world(api)
    await _tamper(settings, "DELETE FROM audit_entries WHERE seq = 7")
    report = (await api.get("/api/v1/audit/verify")).json()
    assert report["ok"] is False and report["broken_at"] == 7
    assert "missing" in report["problem"]


async def test_a_deleted_last_row_is_detected(api: Api, settings: Settings) -> None:
    await build_world(api)
    head = (await api.get("/api/v1/audit/verify")).json()["head_seq"]
    await _tamper(settings, f"DELETE FROM audit_entries WHERE seq = {head}")
    report = (await api.get("/api/v1/audit/verify")).json()
    assert report["ok"] is False and report["broken_at"] == head


async def test_cli_verify_names_the_broken_entry(
    api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await build_world(api)
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("INSPECTION_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("INSPECTION_SECRET_KEY", settings.secret_key)
    import anyio.to_thread

    runner = CliRunner()
    ok = await anyio.to_thread.run_sync(lambda: runner.invoke(main, ["audit", "verify"]))
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    await _tamper(settings, "UPDATE audit_entries SET changes = '{}' WHERE seq = 3")
    broken = await anyio.to_thread.run_sync(lambda: runner.invoke(main, ["audit", "verify"]))
    assert broken.exit_code == 1
    assert "BROKEN at entry 3" in broken.output
