"""Concurrent requests, really in parallel (`parallel_client`): writers queue instead of failing,
the audit chain stays linear, and two changes based on the same state cannot both win."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from tests.conftest import ADMIN_PASSWORD
from tests.helpers import Api, build_world, create_checklist, plan_body

POSITION = {"lat": 21.59, "lon": 105.84, "accuracy_m": 12}


async def _headers(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/token", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _all(*calls: Callable[[], Awaitable[httpx.Response]]) -> list[httpx.Response]:
    results: list[httpx.Response | None] = [None] * len(calls)

    async def run(index: int) -> None:
        results[index] = await calls[index]()

    async with anyio.create_task_group() as group:
        for index in range(len(calls)):
            group.start_soon(run, index)
    return [r for r in results if r is not None]


async def test_parallel_creates_all_succeed_and_the_chain_holds(
    parallel_client: httpx.AsyncClient,
) -> None:
    admin = await _headers(parallel_client, "admin", ADMIN_PASSWORD)
    root = await parallel_client.post(
        "/api/v1/units", json={"code": "R", "name": "Root", "kind": "province"}, headers=admin
    )
    root_id = root.json()["id"]

    def create(number: int) -> Callable[[], Awaitable[httpx.Response]]:
        body = {
            "code": f"R-{number:02}",
            "name": f"Xã {number}",
            "kind": "commune",
            "parent_id": root_id,
        }
        return lambda: parallel_client.post("/api/v1/units", json=body, headers=admin)

    responses = await _all(*(create(n) for n in range(20)))
    assert [r.status_code for r in responses] == [201] * 20
    report = (await parallel_client.get("/api/v1/audit/verify", headers=admin)).json()
    assert report["ok"] is True, report
    entries = (
        await parallel_client.get(
            "/api/v1/audit", params={"entity": "unit", "limit": 500}, headers=admin
        )
    ).json()["items"]
    seqs = sorted(e["seq"] for e in entries)
    assert len(seqs) == 21 and seqs == list(range(seqs[0], seqs[0] + 21))


async def test_verify_during_writes_reports_no_false_tampering(
    parallel_client: httpx.AsyncClient,
) -> None:
    admin = await _headers(parallel_client, "admin", ADMIN_PASSWORD)

    def create(number: int) -> Callable[[], Awaitable[httpx.Response]]:
        body = {"code": f"V-{number:02}", "name": f"Đơn vị {number}", "kind": "other"}
        return lambda: parallel_client.post("/api/v1/units", json=body, headers=admin)

    def verify() -> Awaitable[httpx.Response]:
        return parallel_client.get("/api/v1/audit/verify", headers=admin)

    responses = await _all(*(create(n) for n in range(12)), *(verify for _ in range(6)))
    reports = [r.json() for r in responses if r.request.url.path.endswith("/verify")]
    assert len(reports) == 6 and all(r["ok"] for r in reports), reports


async def test_same_if_match_in_parallel_exactly_one_wins(
    parallel_client: httpx.AsyncClient,
) -> None:
    admin = await _headers(parallel_client, "admin", ADMIN_PASSWORD)
    unit = (
        await parallel_client.post(
            "/api/v1/units", json={"code": "P", "name": "Tỉnh", "kind": "province"}, headers=admin
        )
    ).json()
    url = f"/api/v1/units/{unit['id']}"

    def rename(number: int) -> Callable[[], Awaitable[httpx.Response]]:
        return lambda: parallel_client.patch(
            url, json={"name": f"Tên {number}"}, headers={**admin, "If-Match": '"1"'}
        )

    statuses = [r.status_code for r in await _all(*(rename(n) for n in range(6)))]
    assert statuses.count(200) == 1, statuses
    assert all(s in (409, 412) for s in statuses if s != 200), statuses
    assert (await parallel_client.get(url, headers=admin)).json()["version"] == 2


async def test_parallel_creates_of_one_code_create_one_unit(
    parallel_client: httpx.AsyncClient,
) -> None:
    admin = await _headers(parallel_client, "admin", ADMIN_PASSWORD)

    def create() -> Awaitable[httpx.Response]:
        return parallel_client.post(
            "/api/v1/units", json={"code": "SAME", "name": "X", "kind": "other"}, headers=admin
        )

    statuses = sorted(r.status_code for r in await _all(*(create for _ in range(5))))
    assert statuses == [201, 409, 409, 409, 409]
    units = (await parallel_client.get("/api/v1/units", headers=admin)).json()["items"]
    assert [u["code"] for u in units] == ["SAME"]


async def _approved_plan(client: httpx.AsyncClient) -> tuple[Any, dict[str, Any]]:
    api = Api(client)  # type: ignore[arg-type]  # the helper only needs httpx's client interface
    await api.sign_in("admin", ADMIN_PASSWORD)
    world = await build_world(api)
    planner = await api.as_user("planner")
    checklist = await create_checklist(api)
    created = await planner.post("/api/v1/plans", json=plan_body(world, checklist["id"]))
    approved = await planner.post(
        f"/api/v1/plans/{created.json()['id']}/approve",
        headers={"If-Match": created.headers["ETag"]},
    )
    assert approved.status_code == 200, approved.text
    return world, approved.json()


async def test_parallel_check_ins_of_one_plan_both_succeed(
    parallel_client: httpx.AsyncClient,
) -> None:
    """Both visits start the plan; neither may fail on the other's change of the plan."""
    _world, plan = await _approved_plan(parallel_client)
    inspector = await _headers(parallel_client, "inspector", "correct horse battery")

    def check_in(visit: dict[str, Any], day: str) -> Callable[[], Awaitable[httpx.Response]]:
        body = {"position": POSITION, "at": f"{day}T09:00:00+07:00", "reason": "Theo chỉ đạo"}
        return lambda: parallel_client.post(
            f"/api/v1/visits/{visit['id']}/check-in",
            json=body,
            headers={**inspector, "If-Match": '"1"'},
        )

    first, second = plan["visits"]
    responses = await _all(check_in(first, "2026-03-10"), check_in(second, "2026-03-20"))
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    status = (await parallel_client.get(f"/api/v1/plans/{plan['id']}", headers=inspector)).json()[
        "status"
    ]
    assert status == "in_progress"


async def test_an_answer_racing_the_conclusion_is_counted_or_refused(
    parallel_client: httpx.AsyncClient,
) -> None:
    """Whatever order they commit in, the stored score agrees with the stored answers."""
    _world, plan = await _approved_plan(parallel_client)
    lead = await _headers(parallel_client, "inspector", "correct horse battery")
    member = await _headers(parallel_client, "inspector2", "correct horse battery")
    visit = plan["visits"][0]
    url = f"/api/v1/visits/{visit['id']}"
    checked = await parallel_client.post(
        f"{url}/check-in",
        json={"position": POSITION, "at": "2026-03-10T09:00:00+07:00"},
        headers={**lead, "If-Match": '"1"'},
    )
    assert checked.status_code == 200, checked.text
    assert (
        await parallel_client.put(f"{url}/responses/C01", json={"result": "pass"}, headers=member)
    ).status_code == 201
    etag = checked.headers["ETag"]
    answer, conclusion = await _all(
        lambda: parallel_client.put(
            f"{url}/responses/C02", json={"result": "fail"}, headers=member
        ),
        lambda: parallel_client.post(
            f"{url}/conclude", json={"conclusion": "Xong"}, headers={**lead, "If-Match": etag}
        ),
    )
    assert conclusion.status_code == 200, conclusion.text
    assert answer.status_code in (201, 409), answer.text
    detail = (await parallel_client.get(url, headers=lead)).json()
    answers = {r["criterion_code"]: r["result"] for r in detail["responses"]}
    # C01 (weight 1) pass; C02 (weight 2) fail if it landed before the conclusion.
    expected = round(1 / 3, 4) if answers.get("C02") == "fail" else 1.0
    assert detail["score"] == expected, (answers, detail["score"])


async def test_a_retry_racing_the_first_request_replays_it(
    parallel_client: httpx.AsyncClient,
) -> None:
    """The tablet times out and retries while the first request is still running."""
    admin = await _headers(parallel_client, "admin", ADMIN_PASSWORD)
    body = {"code": "RETRY", "name": "Xã Thử lại", "kind": "commune"}
    headers = {**admin, "Idempotency-Key": "tablet-42"}

    def create() -> Awaitable[httpx.Response]:
        return parallel_client.post("/api/v1/units", json=body, headers=headers)

    responses = await _all(*(create for _ in range(4)))
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    units = (await parallel_client.get("/api/v1/units", headers=admin)).json()["items"]
    assert [u["code"] for u in units] == ["RETRY"]
