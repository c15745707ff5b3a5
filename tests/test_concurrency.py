"""Concurrent requests: writers queue (no "database is locked"), the audit chain stays linear,
and two changes based on the same version cannot both win."""

from __future__ import annotations

import anyio

from tests.helpers import Api


async def test_parallel_creates_all_succeed_and_the_chain_holds(api: Api) -> None:
    root = await api.create_unit("R", "Root", "province")
    statuses: list[int] = []

    async def create(number: int) -> None:
        response = await api.post(
            "/api/v1/units",
            json={
                "code": f"R-{number:02}",
                "name": f"Xã {number}",
                "kind": "commune",
                "parent_id": root["id"],
            },
        )
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for number in range(20):
            group.start_soon(create, number)
    assert statuses == [201] * 20
    report = (await api.get("/api/v1/audit/verify")).json()
    assert report["ok"] is True, report
    entries = (await api.get("/api/v1/audit", params={"entity": "unit", "limit": 500})).json()[
        "items"
    ]
    assert len(entries) == 21
    seqs = sorted(e["seq"] for e in entries)
    assert seqs == list(range(seqs[0], seqs[0] + 21))


async def test_same_if_match_in_parallel_exactly_one_wins(api: Api) -> None:
    unit = await api.create_unit("P", "Tỉnh", "province")
    statuses: list[int] = []

    async def rename(number: int) -> None:
        response = await api.patch(
            f"/api/v1/units/{unit['id']}",
            json={"name": f"Tên {number}"},
            headers={"If-Match": '"1"'},
        )
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for number in range(6):
            group.start_soon(rename, number)
    assert statuses.count(200) == 1, statuses
    assert all(status in (409, 412) for status in statuses if status != 200), statuses
    final = (await api.get(f"/api/v1/units/{unit['id']}")).json()
    assert final["version"] == 2
    updates = (await api.get("/api/v1/audit", params={"entity_id": unit["id"]})).json()["items"]
    assert [e["action"] for e in updates] == ["update", "create"]


async def test_parallel_creates_of_one_code_create_one_unit(api: Api) -> None:
    statuses: list[int] = []

    async def create() -> None:
        response = await api.post(
            "/api/v1/units", json={"code": "SAME", "name": "X", "kind": "other"}
        )
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(create)
    assert sorted(statuses) == [201, 409, 409, 409, 409]
    units = (await api.get("/api/v1/units")).json()["items"]
    assert [u["code"] for u in units] == ["SAME"]
