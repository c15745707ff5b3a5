"""Checklists, plans and visits: validation, conflict of interest, transitions, check-in, score."""

from __future__ import annotations

from typing import Any

from tests.helpers import Api, World, build_world, create_checklist, plan_body, problem

POSITION = {"lat": 21.59, "lon": 105.84, "accuracy_m": 12}


async def _plan(api: Api, world: World, **kw: Any) -> dict[str, Any]:
    checklist = await create_checklist(api)
    response = await api.post("/api/v1/plans", json=plan_body(world, checklist["id"], **kw))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _approved(api: Api, world: World, **kw: Any) -> tuple[Api, dict[str, Any]]:
    planner = await api.as_user("planner")
    checklist = await create_checklist(api)
    created = await planner.post("/api/v1/plans", json=plan_body(world, checklist["id"], **kw))
    assert created.status_code == 201, created.text
    approved = await planner.post(
        f"/api/v1/plans/{created.json()['id']}/approve",
        headers={"If-Match": created.headers["ETag"]},
    )
    assert approved.status_code == 200, approved.text
    return planner, approved.json()


def _visit(plan: dict[str, Any], unit: dict[str, Any]) -> dict[str, Any]:
    return next(v for v in plan["visits"] if v["unit_id"] == unit["id"])


async def _check_in(
    api: Api, visit_id: str, at: str = "2026-03-10T09:00:00+07:00", **extra: Any
) -> Any:
    current = await api.get(f"/api/v1/visits/{visit_id}")
    assert current.status_code == 200, current.text
    return await api.post(
        f"/api/v1/visits/{visit_id}/check-in",
        json={"position": POSITION, "at": at, **extra},
        headers={"If-Match": current.headers["ETag"]},
    )


async def _etag(api: Api, url: str) -> str:
    response = await api.get(url)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


# --- checklists ----------------------------------------------------------------------------------


async def test_checklist_is_frozen_once_a_plan_uses_it_and_revisions_follow(api: Api) -> None:
    world = await build_world(api)
    checklist = await create_checklist(api)
    url = f"/api/v1/checklists/{checklist['id']}"
    edited = await api.patch(url, json={"title": "Một cửa (sửa)"}, headers={"If-Match": '"1"'})
    assert edited.status_code == 200 and edited.json()["version"] == 2
    planner = await api.as_user("planner")
    plan = await planner.post("/api/v1/plans", json=plan_body(world, checklist["id"]))
    assert plan.status_code == 201, plan.text
    assert (await api.get(url)).json()["frozen"] is True
    body = problem(await api.patch(url, json={"title": "Again"}, headers={"If-Match": '"2"'}), 409)
    assert "/versions" in body["detail"]
    revision = await api.post(
        f"{url}/versions",
        json={"criteria": [{"code": "C09", "text": "Mới", "category": "discipline", "weight": 2}]},
    )
    assert revision.status_code == 201, revision.text
    new = revision.json()
    assert new["revision"] == 2 and new["family_id"] == checklist["family_id"]
    assert new["frozen"] is False and [c["code"] for c in new["criteria"]] == ["C09"]
    assert new["title"] == "Một cửa (sửa)"
    # The used revision is unchanged.
    assert [c["code"] for c in (await api.get(url)).json()["criteria"]] == ["C01", "C02", "C03"]
    family = (await api.get("/api/v1/checklists", params={"family": checklist["family_id"]})).json()
    assert [c["revision"] for c in family["items"]] == [2, 1]


async def test_checklist_validation(api: Api) -> None:
    duplicate = [
        {"code": "C01", "text": "a", "category": "x"},
        {"code": "C01", "text": "b", "category": "x"},
    ]
    body = problem(
        await api.post("/api/v1/checklists", json={"title": "T", "criteria": duplicate}), 422
    )
    assert body["errors"][0]["field"] == "criteria[1].code"
    zero = [{"code": "C01", "text": "a", "category": "x", "weight": 0}]
    problem(await api.post("/api/v1/checklists", json={"title": "T", "criteria": zero}), 400)
    await build_world(api)
    head = await api.as_user("head.c1")
    ok = [{"code": "C01", "text": "a", "category": "x"}]
    problem(await head.post("/api/v1/checklists", json={"title": "T", "criteria": ok}), 403)


async def test_unit_heads_do_not_read_checklists(api: Api) -> None:
    """A template's frozen flag would hint that some plan, maybe unannounced, is being prepared."""
    await build_world(api)
    checklist = await create_checklist(api)
    head = await api.as_user("head.c1")
    problem(await head.get("/api/v1/checklists"), 404)
    problem(await head.get(f"/api/v1/checklists/{checklist['id']}"), 404)
    inspector = await api.as_user("inspector")
    assert (await inspector.get(f"/api/v1/checklists/{checklist['id']}")).status_code == 200


# --- plan validation ------------------------------------------------------------------------------


async def test_plan_validation_names_each_bad_field(api: Api) -> None:
    world = await build_world(api)
    checklist = await create_checklist(api)
    planner = await api.as_user("planner")
    body = plan_body(
        world,
        checklist["id"],
        targets=[
            (world.c1, "2026-03-10", "2026-03-12"),
            (world.c1, "2026-03-14", "2026-03-15"),  # the same unit twice
            (world.c2, "2026-02-25", "2026-03-02"),  # outside the period
            (world.c3, "2026-03-22", "2026-03-20"),  # ends before it starts
        ],
        team=[("inspector", "member"), ("inspector2", "member")],  # no lead
    )
    errors = problem(await planner.post("/api/v1/plans", json=body), 422)["errors"]
    fields = {e["field"] for e in errors}
    assert {
        "team",
        "targets[1].unit_id",
        "targets[2].window_start",
        "targets[3].window_end",
    } <= fields
    two_leads = plan_body(
        world, checklist["id"], team=[("inspector", "lead"), ("inspector2", "lead")]
    )
    assert (
        problem(await planner.post("/api/v1/plans", json=two_leads), 422)["errors"][0]["field"]
        == "team"
    )
    missing = plan_body(world, "00000000-0000-7000-8000-000000000000")
    assert (
        problem(await planner.post("/api/v1/plans", json=missing), 422)["errors"][0]["field"]
        == "checklist_id"
    )
    backwards = {**plan_body(world, checklist["id"]), "period_end": "2026-02-01"}
    assert "period_end" in {
        e["field"]
        for e in problem(await planner.post("/api/v1/plans", json=backwards), 422)["errors"]
    }
    assert (await planner.get("/api/v1/plans")).json()["items"] == []


async def test_only_planners_of_the_units_create_plans(api: Api) -> None:
    world = await build_world(api)
    checklist = await create_checklist(api)
    for username in ("inspector", "head.c1", "leader"):
        user = await api.as_user(username)
        response = await user.post("/api/v1/plans", json=plan_body(world, checklist["id"]))
        assert response.status_code in (403, 422), response.text
        problem(response, response.status_code)
    # A planner of D2 only cannot plan a visit to C1 in D1.
    await api.create_user("planner.d2", [("planner", world.d2["id"])], world.d2["id"])
    planner_d2 = await api.as_user("planner.d2")
    body = {**plan_body(world, checklist["id"]), "unit_id": world.d2["id"]}
    errors = problem(await planner_d2.post("/api/v1/plans", json=body), 422)["errors"]
    assert any(e["field"] == "targets[0].unit_id" for e in errors)


async def test_conflict_of_interest_names_member_and_unit(api: Api) -> None:
    world = await build_world(api)
    checklist = await create_checklist(api)
    planner = await api.as_user("planner")
    # An inspector of SNV cannot inspect SNV, the office they belong to.
    body = plan_body(world, checklist["id"], targets=[(world.snv, "2026-03-10", "2026-03-12")])
    errors = problem(await planner.post("/api/v1/plans", json=body), 422)["errors"]
    assert {e["field"] for e in errors} == {"team[0].user_id", "team[1].user_id"}
    assert all(
        "Sở Nội vụ" in e["message"] and "conflict of interest" in e["message"] for e in errors
    )
    assert "Inspector2" in errors[1]["message"]
    # An inspector who also heads commune C1 cannot be on a team visiting C1.
    await api.post(
        f"/api/v1/users/{world.users['inspector2']['id']}/grants",
        json={"role": "unit_head", "unit_id": world.c1["id"]},
    )
    errors = problem(
        await planner.post("/api/v1/plans", json=plan_body(world, checklist["id"])), 422
    )["errors"]
    assert [e["field"] for e in errors] == ["team[1].user_id"]
    assert "Xã La Hiên" in errors[0]["message"]


# --- transitions --------------------------------------------------------------------------------


async def test_plan_transitions_and_their_preconditions(api: Api) -> None:
    world = await build_world(api)
    planner = await api.as_user("planner")
    checklist = await create_checklist(api)
    created = await planner.post("/api/v1/plans", json=plan_body(world, checklist["id"]))
    plan_id = created.json()["id"]
    assert created.json()["status"] == "draft"
    approve = f"/api/v1/plans/{plan_id}/approve"
    problem(await planner.post(approve), 428)
    problem(await planner.post(approve, headers={"If-Match": '"9"'}), 412)
    inspector = await api.as_user("inspector")
    problem(await inspector.post(approve, headers={"If-Match": created.headers["ETag"]}), 403)
    approved = await planner.post(approve, headers={"If-Match": created.headers["ETag"]})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    again = problem(
        await planner.post(approve, headers={"If-Match": approved.headers["ETag"]}), 409
    )
    assert again["current_status"] == "approved" and "approved" in again["detail"]
    assert again["allowed_transitions"] == ["cancel"]
    cancel = f"/api/v1/plans/{plan_id}/cancel"
    problem(
        await planner.post(cancel, json={}, headers={"If-Match": approved.headers["ETag"]}), 400
    )
    cancelled = await planner.post(
        cancel, json={"reason": "Trùng lịch"}, headers={"If-Match": approved.headers["ETag"]}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert {v["status"] for v in cancelled.json()["visits"]} == {"cancelled"}
    body = problem(
        await planner.post(
            cancel, json={"reason": "x"}, headers={"If-Match": cancelled.headers["ETag"]}
        ),
        409,
    )
    assert body["current_status"] == "cancelled"
    audit = (await api.get("/api/v1/audit", params={"entity_id": plan_id})).json()["items"]
    assert [e["action"] for e in audit] == ["cancel", "approve", "create"]


async def test_a_draft_changes_freely_an_approved_plan_only_team_and_targets(api: Api) -> None:
    world = await build_world(api)
    planner = await api.as_user("planner")
    checklist = await create_checklist(api)
    created = await planner.post("/api/v1/plans", json=plan_body(world, checklist["id"]))
    url = f"/api/v1/plans/{created.json()['id']}"
    kind = await planner.patch(
        url, json={"kind": "scheduled"}, headers={"If-Match": created.headers["ETag"]}
    )
    assert kind.status_code == 200 and kind.json()["kind"] == "scheduled"
    approved = await planner.post(f"{url}/approve", headers={"If-Match": kind.headers["ETag"]})
    etag = approved.headers["ETag"]
    body = problem(
        await planner.patch(url, json={"kind": "unannounced"}, headers={"If-Match": etag}), 409
    )
    assert body["fields"] == ["kind"]
    problem(
        await planner.patch(url, json={"period_end": "2026-04-30"}, headers={"If-Match": etag}), 409
    )
    # Add C2, drop C3, swap the members.
    changed = await planner.patch(
        url,
        json={
            "targets": [
                {
                    "unit_id": world.c1["id"],
                    "window_start": "2026-03-10",
                    "window_end": "2026-03-12",
                },
                {
                    "unit_id": world.c2["id"],
                    "window_start": "2026-03-15",
                    "window_end": "2026-03-16",
                },
            ],
            "team": [
                {"user_id": world.users["inspector2"]["id"], "role": "lead"},
                {"user_id": world.users["inspector"]["id"], "role": "member"},
            ],
        },
        headers={"If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    statuses = {v["unit_code"]: v["status"] for v in changed.json()["visits"]}
    assert statuses == {"P-D1-C1": "planned", "P-D1-C2": "planned", "P-D2-C3": "cancelled"}
    lead = next(m for m in changed.json()["team"] if m["role"] == "lead")
    assert lead["user_id"] == world.users["inspector2"]["id"]
    entry = (await api.get("/api/v1/audit", params={"entity_id": changed.json()["id"]})).json()[
        "items"
    ][0]
    assert entry["action"] == "update" and set(entry["changes"]) == {"targets", "team"}


async def test_check_in_window_reason_and_plan_progress(api: Api) -> None:
    world = await build_world(api)
    planner, plan = await _approved(api, world)
    visit = _visit(plan, world.c1)
    inspector2 = await api.as_user("inspector2")
    head = await api.as_user("head.c1")
    problem(await _check_in(planner, visit["id"]), 403)  # not on the team
    outside = problem(await _check_in(inspector2, visit["id"], at="2026-03-14T09:00:00+07:00"), 422)
    assert outside["errors"][0]["field"] == "reason"
    future = problem(await _check_in(inspector2, visit["id"], at="2999-01-01T00:00:00+07:00"), 422)
    assert future["errors"][0]["field"] == "at"
    # 23:30 on the last day of the window in Hanoi is still inside it (16:30 UTC).
    edge = await _check_in(inspector2, visit["id"], at="2026-03-12T16:30:00+00:00")
    assert edge.status_code == 200, edge.text
    checked = edge.json()
    assert checked["status"] == "checked_in" and checked["check_in_reason"] is None
    assert checked["check_in_position"] == POSITION
    assert (await planner.get(f"/api/v1/plans/{plan['id']}")).json()["status"] == "in_progress"
    problem(await _check_in(inspector2, visit["id"]), 409)
    # The other visit, a day early, with a reason.
    other = _visit(plan, world.c3)
    early = await _check_in(
        inspector2,
        other["id"],
        at="2026-03-19T08:00:00+07:00",
        reason="Đơn vị đề nghị sớm hơn một ngày",
    )
    assert early.status_code == 200, early.text
    assert early.json()["check_in_reason"] == "Đơn vị đề nghị sớm hơn một ngày"
    assert (await head.get(f"/api/v1/visits/{visit['id']}")).status_code == 200


async def test_responses_score_conclusion_and_completion(api: Api) -> None:
    world = await build_world(api)
    planner, plan = await _approved(api, world, targets=[(world.c1, "2026-03-10", "2026-03-12")])
    visit_id = _visit(plan, world.c1)["id"]
    inspector = await api.as_user("inspector")
    member = await api.as_user("inspector2")
    answer = f"/api/v1/visits/{visit_id}/responses"
    problem(await member.put(f"{answer}/C01", json={"result": "pass"}), 409)  # not checked in yet
    assert (await _check_in(member, visit_id)).status_code == 200
    first = await member.put(f"{answer}/C01", json={"result": "pass", "note": "Đúng hạn"})
    assert first.status_code == 201, first.text
    replay = await member.put(f"{answer}/C01", json={"result": "pass", "note": "Đúng hạn"})
    assert replay.status_code == 200 and replay.json()["version"] == first.json()["version"]
    assert (await member.put(f"{answer}/C02", json={"result": "fail"})).status_code == 201
    assert (await member.put(f"{answer}/C03", json={"result": "na"})).status_code == 201
    problem(await member.put(f"{answer}/C99", json={"result": "pass"}), 404)
    problem(await member.put(f"{answer}/C01", json={"result": "maybe"}), 400)
    problem(await planner.put(f"{answer}/C01", json={"result": "fail"}), 403)
    audit = (await api.get("/api/v1/audit", params={"entity_id": visit_id})).json()["items"]
    assert [e["action"] for e in audit].count("answer") == 3  # the replay wrote nothing

    conclude = f"/api/v1/visits/{visit_id}/conclude"
    etag = await _etag(member, f"/api/v1/visits/{visit_id}")
    problem(await member.post(conclude, json={"conclusion": "x"}, headers={"If-Match": etag}), 403)
    concluded = await inspector.post(
        conclude, json={"conclusion": "Đơn vị cơ bản thực hiện tốt."}, headers={"If-Match": etag}
    )
    assert concluded.status_code == 200, concluded.text
    # C01 (weight 1) pass, C02 (weight 2) fail, C03 not applicable: 1 / (1 + 2).
    assert concluded.json()["score"] == round(1 / 3, 4)
    assert concluded.json()["status"] == "concluded"
    problem(await member.put(f"{answer}/C01", json={"result": "fail"}), 409)
    assert (await planner.get(f"/api/v1/plans/{plan['id']}")).json()["status"] == "completed"
    detail = (await inspector.get(f"/api/v1/visits/{visit_id}")).json()
    assert {r["criterion_code"]: r["result"] for r in detail["responses"]} == {
        "C01": "pass",
        "C02": "fail",
        "C03": "na",
    }


async def test_check_out_then_conclude_and_cancelled_visits_count_as_done(api: Api) -> None:
    world = await build_world(api)
    planner, plan = await _approved(api, world)
    inspector = await api.as_user("inspector")
    c1 = _visit(plan, world.c1)["id"]
    assert (await _check_in(inspector, c1)).status_code == 200
    out = await inspector.post(
        f"/api/v1/visits/{c1}/check-out",
        json={},
        headers={"If-Match": await _etag(inspector, f"/api/v1/visits/{c1}")},
    )
    assert out.status_code == 200 and out.json()["status"] == "checked_out"
    # Drop the C3 target: its visit is cancelled.
    plan_url = f"/api/v1/plans/{plan['id']}"
    dropped = await planner.patch(
        plan_url,
        json={
            "targets": [
                {
                    "unit_id": world.c1["id"],
                    "window_start": "2026-03-10",
                    "window_end": "2026-03-12",
                }
            ]
        },
        headers={"If-Match": await _etag(planner, plan_url)},
    )
    assert dropped.status_code == 200, dropped.text
    # A started visit cannot be dropped.
    refused = await planner.patch(
        plan_url,
        json={
            "targets": [
                {
                    "unit_id": world.c3["id"],
                    "window_start": "2026-03-20",
                    "window_end": "2026-03-22",
                }
            ]
        },
        headers={"If-Match": dropped.headers["ETag"]},
    )
    problem(refused, 409)
    concluded = await inspector.post(
        f"/api/v1/visits/{c1}/conclude",
        json={"conclusion": "Xong"},
        headers={"If-Match": out.headers["ETag"]},
    )
    assert concluded.status_code == 200
    assert concluded.json()["score"] is None  # nothing answered
    assert (await planner.get(plan_url)).json()["status"] == "completed"


async def test_a_change_of_criteria_notes_alone_is_versioned_and_audited(api: Api) -> None:
    checklist = await create_checklist(api, codes=("C01",))
    url = f"/api/v1/checklists/{checklist['id']}"
    criteria = [
        {
            "code": "C01",
            "text": "Tiêu chí C01",
            "category": "dossier_handling",
            "weight": 1.0,
            "note": "Mới",
        }
    ]
    changed = await api.patch(url, json={"criteria": criteria}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2 and changed.json()["criteria"][0]["note"] == "Mới"
    entry = (await api.get("/api/v1/audit", params={"entity_id": checklist["id"]})).json()["items"][
        0
    ]
    assert entry["action"] == "update"
    assert entry["changes"]["criteria"]["after"][0]["note"] == "Mới"
    same = await api.patch(url, json={"criteria": criteria}, headers={"If-Match": '"2"'})
    assert same.json()["version"] == 2  # nothing changed, nothing written
