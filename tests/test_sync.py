"""`POST /api/v1/sync`: per-item outcomes, independence of items, replays change nothing."""

from __future__ import annotations

import uuid

from tests.helpers import Api, build_world, problem
from tests.test_findings import _body, _on_site


async def _audit_count(api: Api) -> int:
    return len((await api.get("/api/v1/audit", params={"limit": 500})).json()["items"])


async def test_a_batch_answers_per_item_and_a_replay_changes_nothing(api: Api) -> None:
    world = await build_world(api)
    visit = await _on_site(api, world)
    member = await api.as_user("inspector2")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = {
        "findings": [
            {**_body(visit, title=f"Phát hiện {n}"), "id": finding_id}
            for n, finding_id in enumerate(ids)
        ]
        + [
            {**_body(visit), "id": str(uuid.uuid4()), "criterion_code": "C99"},  # rejected: 422
            {**_body(visit), "id": str(uuid.uuid4()), "severity": "apocalyptic"},  # rejected: 400
            {
                **_body(visit),
                "id": str(uuid.uuid4()),
                "visit_id": str(uuid.uuid4()),
            },  # no such visit
        ],
        "responses": [
            {"visit_id": visit["id"], "criterion_code": "C01", "result": "pass"},
            {"visit_id": visit["id"], "criterion_code": "C02", "result": "fail", "note": "Thiếu"},
            {"visit_id": visit["id"], "criterion_code": "C77", "result": "pass"},  # rejected: 404
            {"visit_id": visit["id"], "result": "pass"},  # rejected: malformed
        ],
    }
    first = await member.post("/api/v1/sync", json=batch)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [f["outcome"] for f in body["findings"]] == ["created"] * 3 + ["rejected"] * 3
    assert [f["index"] for f in body["findings"]] == list(range(6))
    rejected = body["findings"][3:]
    assert [r["problem"]["status"] for r in rejected] == [422, 400, 422]
    assert rejected[0]["problem"]["errors"][0]["field"] == "criterion_code"
    assert rejected[1]["problem"]["errors"][0]["field"] == "severity"
    assert rejected[2]["problem"]["errors"][0]["field"] == "visit_id"
    assert [r["outcome"] for r in body["responses"]] == [
        "created",
        "created",
        "rejected",
        "rejected",
    ]
    assert body["responses"][2]["problem"]["status"] == 404
    assert body["responses"][3]["problem"]["errors"][0]["field"] == "criterion_code"
    listed = (await member.get("/api/v1/findings")).json()["items"]
    assert sorted(f["id"] for f in listed) == sorted(ids)

    entries = await _audit_count(api)
    again = await member.post("/api/v1/sync", json=batch)
    assert [f["outcome"] for f in again.json()["findings"]][:3] == ["unchanged"] * 3
    assert [r["outcome"] for r in again.json()["responses"]][:2] == ["unchanged"] * 2
    assert await _audit_count(api) == entries
    assert len((await member.get("/api/v1/findings")).json()["items"]) == 3


async def test_offline_edits_update_or_conflict_with_the_server_copy(api: Api) -> None:
    world = await build_world(api)
    visit = await _on_site(api, world)
    member = await api.as_user("inspector2")
    lead = await api.as_user("inspector")
    finding_id = str(uuid.uuid4())
    created = await member.put(f"/api/v1/findings/{finding_id}", json=_body(visit))
    assert created.status_code == 201
    # Meanwhile the lead changes it on the server (version 2).
    changed = await lead.patch(
        f"/api/v1/findings/{finding_id}", json={"severity": "critical"}, headers={"If-Match": '"1"'}
    )
    assert changed.status_code == 200
    stale = {**_body(visit, title="Sửa khi mất mạng"), "id": finding_id, "version": 1}
    blind = {**_body(visit, title="Sửa không kèm phiên bản"), "id": finding_id}
    result = (await member.post("/api/v1/sync", json={"findings": [stale, blind]})).json()[
        "findings"
    ]
    assert [r["outcome"] for r in result] == ["conflict", "conflict"]
    assert result[0]["server"]["severity"] == "critical" and result[0]["version"] == 2
    merged = {
        **_body(visit, title="Sửa khi mất mạng", severity="critical"),
        "id": finding_id,
        "version": 2,
    }
    applied = (await member.post("/api/v1/sync", json={"findings": [merged]})).json()["findings"][0]
    assert applied["outcome"] == "updated" and applied["version"] == 3
    assert (await member.get(f"/api/v1/findings/{finding_id}")).json()[
        "title"
    ] == "Sửa khi mất mạng"
    # Checklist answers: a stale version conflicts, the right one updates.
    answer = {"visit_id": visit["id"], "criterion_code": "C01", "result": "pass"}
    assert (await member.post("/api/v1/sync", json={"responses": [answer]})).json()["responses"][0][
        "outcome"
    ] == "created"
    answer_url = f"/api/v1/visits/{visit['id']}/responses/C01"
    moved = await lead.put(answer_url, json={"result": "fail"}, headers={"If-Match": '"1"'})
    assert moved.status_code == 200 and moved.json()["version"] == 2
    late = {**answer, "result": "na", "version": 1}
    outcome = (await member.post("/api/v1/sync", json={"responses": [late]})).json()["responses"][0]
    assert outcome["outcome"] == "conflict" and outcome["server"]["result"] == "fail"
    fixed = (await member.post("/api/v1/sync", json={"responses": [{**late, "version": 2}]})).json()
    assert fixed["responses"][0]["outcome"] == "updated"


async def test_an_answer_without_version_never_replaces_a_teammates(api: Api) -> None:
    """Found in the field trial: a checklist answer synced without `version` silently replaced
    a teammate's different answer (`updated`), where a finding got `conflict`. One rule for
    both: without a version an item creates or replays; a different server copy is a conflict
    carrying that copy. The single PUT follows it too (428 without If-Match)."""
    world = await build_world(api)
    visit = await _on_site(api, world)
    lead, member = await api.as_user("inspector"), await api.as_user("inspector2")
    answer = {"visit_id": visit["id"], "criterion_code": "C01", "result": "pass", "note": "Đủ"}
    first = (await lead.post("/api/v1/sync", json={"responses": [answer]})).json()
    assert first["responses"][0]["outcome"] == "created"
    replay = (await member.post("/api/v1/sync", json={"responses": [answer]})).json()
    assert replay["responses"][0]["outcome"] == "unchanged"
    other = {**answer, "result": "fail", "note": "Thiếu sổ theo dõi"}
    clash = (await member.post("/api/v1/sync", json={"responses": [other]})).json()["responses"]
    assert clash[0]["outcome"] == "conflict", clash
    assert clash[0]["server"]["result"] == "pass" and clash[0]["version"] == 1
    url = f"/api/v1/visits/{visit['id']}/responses/C01"
    assert problem(await member.put(url, json={"result": "fail"}), 428)
    stored = (await lead.get(f"/api/v1/visits/{visit['id']}")).json()["responses"]
    assert [(r["result"], r["note"], r["version"]) for r in stored] == [("pass", "Đủ", 1)]
    # Merged with the version it was edited from, it goes through.
    merged = (
        await member.post("/api/v1/sync", json={"responses": [{**other, "version": 1}]})
    ).json()
    assert merged["responses"][0]["outcome"] == "updated"


async def test_items_that_are_not_objects_are_rejected_alone(api: Api) -> None:
    """Found in the field trial: a string or a number among the items failed the whole batch
    with 400; it must be `rejected` on its own, the other items applied."""
    world = await build_world(api)
    visit = await _on_site(api, world)
    member = await api.as_user("inspector2")
    good = {**_body(visit), "id": str(uuid.uuid4())}
    answer = {"visit_id": visit["id"], "criterion_code": "C01", "result": "pass"}
    batch = {
        "findings": ["a finding", 42, good, None, [good], True],
        "responses": [answer, "C01=pass", 3.5, {}],
    }
    response = await member.post("/api/v1/sync", json=batch)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [f["outcome"] for f in body["findings"]] == [
        "rejected",
        "rejected",
        "created",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert [r["outcome"] for r in body["responses"]] == [
        "created",
        "rejected",
        "rejected",
        "rejected",
    ]
    for outcome in body["findings"][:2] + body["responses"][1:3]:
        assert outcome["problem"]["status"] == 400
        assert "object" in outcome["problem"]["detail"], outcome
    assert (await member.get(f"/api/v1/findings/{good['id']}")).status_code == 200


async def test_nothing_of_an_invisible_visit_and_batch_limits(api: Api) -> None:
    world = await build_world(api)
    visit = await _on_site(api, world)
    head = await api.as_user("head.c1")
    result = (
        await head.post(
            "/api/v1/sync", json={"findings": [{**_body(visit), "id": str(uuid.uuid4())}]}
        )
    ).json()
    assert result["findings"][0]["outcome"] == "rejected"
    assert result["findings"][0]["problem"]["status"] == 403  # visible visit, not on the team
    member = await api.as_user("inspector2")
    too_many = {
        "responses": [{"visit_id": visit["id"], "criterion_code": "C01", "result": "pass"}] * 501
    }
    problem(await member.post("/api/v1/sync", json=too_many), 400)
    both = {
        "findings": [{**_body(visit), "id": str(uuid.uuid4())}] * 300,
        "responses": [{"visit_id": visit["id"], "criterion_code": "C01", "result": "pass"}] * 201,
    }
    problem(await member.post("/api/v1/sync", json=both), 422)
    problem(await member.post("/api/v1/sync", json={"findings": "nope"}), 400)


async def test_bulk_creation_keeps_the_rules_the_order_and_the_audit_chain(api: Api) -> None:
    """New findings are written together; the result must be what one PUT per item gives."""
    world = await build_world(api)
    visit = await _on_site(api, world)
    member = await api.as_user("inspector2")
    repeated = str(uuid.uuid4())
    fresh = [str(uuid.uuid4()) for _ in range(40)]
    batch = {
        "findings": [{**_body(visit, title=f"Phát hiện {n}"), "id": i} for n, i in enumerate(fresh)]
        + [
            {**_body(visit), "id": str(uuid.uuid4()), "observed_at": "2099-01-01T00:00:00Z"},
            # The same id twice: created, then edited from version 1, in the order sent.
            {**_body(visit, title="Bản đầu"), "id": repeated},
            {**_body(visit, title="Bản sửa"), "id": repeated, "version": 1},
        ]
    }
    body = (await member.post("/api/v1/sync", json=batch)).json()
    outcomes = [f["outcome"] for f in body["findings"]]
    assert outcomes == ["created"] * 40 + ["rejected", "created", "updated"]
    assert body["findings"][40]["problem"]["errors"][0]["field"] == "observed_at"
    assert all(f["version"] == 1 for f in body["findings"][:40])
    edited = (await member.get(f"/api/v1/findings/{repeated}")).json()
    assert edited["title"] == "Bản sửa" and edited["version"] == 2
    created = await member.get(f"/api/v1/findings/{fresh[7]}")
    assert created.json()["title"] == "Phát hiện 7" and created.headers["ETag"] == '"1"'
    audit = await api.get("/api/v1/audit", params={"entity_id": fresh[7]})
    assert [e["action"] for e in audit.json()["items"]] == ["create"]
    verified = await api.get("/api/v1/audit/verify")
    assert verified.status_code == 200 and verified.json()["ok"] is True
    # A unit head (not on the team) gets every new item refused, and nothing is written.
    head = await api.as_user("head.c1")
    refused = (
        await head.post(
            "/api/v1/sync", json={"findings": [{**_body(visit), "id": str(uuid.uuid4())}]}
        )
    ).json()
    assert refused["findings"][0]["outcome"] == "rejected"
    assert refused["findings"][0]["problem"]["status"] in (403, 404)
