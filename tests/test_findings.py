"""Findings: offline-first PUT (create, replay, update), who records and edits, submission and
what unit heads see, officials as personal data, filters."""

from __future__ import annotations

import uuid
from typing import Any

from tests.helpers import Api, build_world, problem
from tests.helpers import etag_of as _etag
from tests.helpers import finding_body as _body
from tests.helpers import on_site as _on_site


async def _audit_actions(api: Api, finding_id: str) -> list[str]:
    entries = (await api.get("/api/v1/audit", params={"entity_id": finding_id})).json()["items"]
    return [e["action"] for e in entries]


async def _shop_finding(api: Api) -> tuple[str, dict[str, Any]]:
    """A submitted finding about the one-stop shop of C1 (the visit's target is the shop)."""
    world = await build_world(api)
    shop = await api.create_unit(
        "P-D1-C1-1C", "Bộ phận một cửa xã La Hiên", "one_stop_shop", world.c1["id"]
    )
    visit = await _on_site(api, world, target=shop)
    inspector = await api.as_user("inspector")
    url = f"/api/v1/findings/{uuid.uuid4()}"
    assert (await inspector.put(url, json=_body(visit))).status_code == 201
    submitted = await inspector.post(f"{url}/submit", headers={"If-Match": '"1"'})
    assert submitted.status_code == 200, submitted.text
    return url, shop


async def test_officials_go_to_the_nearest_head_at_or_above_the_unit(api: Api) -> None:
    """Found in the field trial: the head of a commune did not see the officials of findings
    about the commune's own one-stop shop (only a grant on exactly that unit did). The head
    concerned is the nearest unit head at or above the finding's unit: the commune's head while
    the shop has none, the shop's own head once it has one; never the district head above."""
    url, shop = await _shop_finding(api)
    head_c1, head_d1 = await api.as_user("head.c1"), await api.as_user("head.d1")
    official = [{"name": "Nguyễn Văn A", "position": "Công chức tư pháp - hộ tịch"}]
    seen = await head_c1.get(url)
    assert seen.status_code == 200 and seen.json()["officials"] == official, seen.text
    listed = (await head_c1.get("/api/v1/findings")).json()["items"]
    assert [f["officials"] for f in listed] == [official]
    assert (await head_d1.get(url)).json()["officials"] is None
    # The shop gets its own head: the commune's head is no longer the head concerned.
    shop_head = await api.create_user("head.shop", [("unit_head", shop["id"])], shop["id"])
    head_shop = await api.as_user("head.shop")
    assert (await head_shop.get(url)).json()["officials"] == official
    assert (await head_c1.get(url)).json()["officials"] is None
    assert (await head_d1.get(url)).json()["officials"] is None
    # An inactive head is no head: the commune's head is concerned again.
    user_url = f"/api/v1/users/{shop_head['id']}"
    deactivated = await api.patch(
        user_url, json={"is_active": False}, headers={"If-Match": await _etag(api, user_url)}
    )
    assert deactivated.status_code == 200, deactivated.text
    assert (await head_c1.get(url)).json()["officials"] == official


async def test_put_creates_replays_and_updates_with_if_match(api: Api) -> None:
    world = await build_world(api)
    visit = await _on_site(api, world)
    member = await api.as_user("inspector2")
    finding_id = str(uuid.uuid4())
    url = f"/api/v1/findings/{finding_id}"
    created = await member.put(url, json=_body(visit))
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "draft" and created.json()["unit_id"] == world.c1["id"]
    assert created.headers["ETag"] == '"1"'
    replay = await member.put(url, json=_body(visit))
    assert replay.status_code == 200 and replay.json() == created.json()
    assert await _audit_actions(api, finding_id) == ["create"]
    changed = _body(visit, severity="critical")
    problem(await member.put(url, json=changed), 428)
    problem(await member.put(url, json=changed, headers={"If-Match": '"5"'}), 412)
    updated = await member.put(url, json=changed, headers={"If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.json()["severity"] == "critical" and updated.json()["version"] == 2
    assert await _audit_actions(api, finding_id) == ["update", "create"]
    patched = await member.patch(url, json={"title": "Đã sửa tiêu đề"}, headers={"If-Match": '"2"'})
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "Đã sửa tiêu đề" and patched.json()["severity"] == "critical"
    # The id belongs to this visit: reusing it for another is a conflict.
    other = {**_body(visit), "visit_id": str(uuid.uuid4())}
    problem(await member.put(url, json=other), 409)


async def test_bad_findings_are_rejected_and_nothing_is_stored(api: Api) -> None:
    world = await build_world(api)
    visit = await _on_site(api, world)
    member = await api.as_user("inspector2")
    url = f"/api/v1/findings/{uuid.uuid4()}"
    cases = [
        (_body(visit, criterion_code="C99"), 422, "criterion_code"),
        (_body(visit, observed_at="2026-03-10T09:41:00"), 422, "observed_at"),
        (_body(visit, observed_at="2999-01-01T00:00:00+07:00"), 422, "observed_at"),
        (_body(visit, visit_id=str(uuid.uuid4())), 422, "visit_id"),
        (_body(visit, category="gossip"), 400, "category"),
        (_body(visit, severity="apocalyptic"), 400, "severity"),
        (_body(visit, position={"lat": 123, "lon": 0}), 400, "position.lat"),
    ]
    for body, status, field in cases:
        errors = problem(await member.put(url, json=body), status)["errors"]
        assert errors[0]["field"] == field, errors
    assert (await member.get("/api/v1/findings")).json()["items"] == []


async def test_who_records_findings_and_when(api: Api) -> None:
    world = await build_world(api)
    visit = await _on_site(api, world)
    for username in ("planner", "leader", "head.c1"):
        outsider = await api.as_user(username)
        problem(await outsider.put(f"/api/v1/findings/{uuid.uuid4()}", json=_body(visit)), 403)
    # The C3 visit is not checked in yet: no findings there.
    plan = (await (await api.as_user("planner")).get(f"/api/v1/plans/{visit['plan']['id']}")).json()
    c3 = next(v for v in plan["visits"] if v["unit_id"] == world.c3["id"])
    inspector = await api.as_user("inspector")
    problem(
        await inspector.put(
            f"/api/v1/findings/{uuid.uuid4()}", json=_body(c3, criterion_code=None)
        ),
        409,
    )
    # A member edits a draft while on site; after the conclusion only the lead does.
    member = await api.as_user("inspector2")
    url = f"/api/v1/findings/{uuid.uuid4()}"
    assert (await member.put(url, json=_body(visit))).status_code == 201
    visit_url = f"/api/v1/visits/{visit['id']}"
    concluded = await inspector.post(
        f"{visit_url}/conclude",
        json={"conclusion": "Kết luận"},
        headers={"If-Match": await _etag(inspector, visit_url)},
    )
    assert concluded.status_code == 200, concluded.text
    problem(await member.patch(url, json={"severity": "minor"}, headers={"If-Match": '"1"'}), 403)
    by_lead = await inspector.patch(url, json={"severity": "minor"}, headers={"If-Match": '"1"'})
    assert by_lead.status_code == 200, by_lead.text
    problem(await member.put(f"/api/v1/findings/{uuid.uuid4()}", json=_body(visit)), 409)


async def test_unit_heads_see_submitted_findings_and_officials_only_of_their_unit(api: Api) -> None:
    world = await build_world(api)
    visit = await _on_site(api, world)
    inspector = await api.as_user("inspector")
    member = await api.as_user("inspector2")
    head_c1, head_d1 = await api.as_user("head.c1"), await api.as_user("head.d1")
    finding_id = str(uuid.uuid4())
    url = f"/api/v1/findings/{finding_id}"
    assert (await member.put(url, json=_body(visit))).status_code == 201
    # A draft is the team's business.
    for head in (head_c1, head_d1):
        problem(await head.get(url), 404)
        assert (await head.get("/api/v1/findings")).json()["items"] == []
    problem(await member.post(f"{url}/submit", headers={"If-Match": '"1"'}), 403)
    submitted = await inspector.post(f"{url}/submit", headers={"If-Match": '"1"'})
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"
    seen_by_c1 = (await head_c1.get(url)).json()
    assert seen_by_c1["officials"] == [
        {"name": "Nguyễn Văn A", "position": "Công chức tư pháp - hộ tịch"}
    ]
    # The district head sees the finding, not the names of the commune's officials.
    seen_by_d1 = (await head_d1.get(url)).json()
    assert seen_by_d1["officials"] is None and seen_by_d1["title"] == seen_by_c1["title"]
    listed = (await head_d1.get("/api/v1/findings")).json()["items"]
    assert [f["id"] for f in listed] == [finding_id] and listed[0]["officials"] is None
    for username in ("planner", "leader"):
        viewer = await api.as_user(username)
        assert (await viewer.get(url)).json()["officials"][0]["name"] == "Nguyễn Văn A"
    # Unit heads cannot change findings.
    problem(await head_c1.patch(url, json={"severity": "minor"}, headers={"If-Match": '"2"'}), 403)
    again = problem(await inspector.post(f"{url}/submit", headers={"If-Match": '"2"'}), 409)
    assert again["current_status"] == "submitted"


async def test_dismissal(api: Api) -> None:
    world = await build_world(api)
    visit = await _on_site(api, world)
    inspector = await api.as_user("inspector")
    url = f"/api/v1/findings/{uuid.uuid4()}"
    assert (await inspector.put(url, json=_body(visit))).status_code == 201
    problem(await inspector.post(f"{url}/dismiss", json={}, headers={"If-Match": '"1"'}), 400)
    dismissed = await inspector.post(
        f"{url}/dismiss", json={"reason": "Trùng lặp"}, headers={"If-Match": '"1"'}
    )
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    assert dismissed.json()["dismiss_reason"] == "Trùng lặp"
    problem(
        await inspector.patch(url, json={"severity": "minor"}, headers={"If-Match": '"2"'}), 409
    )
    # Never submitted: the unit's head never learns of it.
    problem(await (await api.as_user("head.c1")).get(url), 404)


async def test_filters_search_and_pages(api: Api) -> None:
    world = await build_world(api)
    visit = await _on_site(api, world)
    member = await api.as_user("inspector2")
    specs = [
        (
            "late_dossiers",
            "minor",
            "Hồ sơ trễ hạn không có phiếu xin lỗi",
            "2026-03-10T08:00:00+07:00",
        ),
        ("equipment", "observation", "Máy quét hỏng", "2026-03-10T10:00:00+07:00"),
        ("absent_or_late", "major", "Công chức vắng mặt", "2026-03-11T09:00:00+07:00"),
    ]
    for category, severity, title, observed in specs:
        body = _body(
            visit,
            category=category,
            severity=severity,
            title=title,
            observed_at=observed,
            criterion_code=None,
        )
        assert (await member.put(f"/api/v1/findings/{uuid.uuid4()}", json=body)).status_code == 201

    async def titles(**params: str) -> list[str]:
        response = await member.get("/api/v1/findings", params=params)
        assert response.status_code == 200, response.text
        return [f["title"] for f in response.json()["items"]]

    assert await titles() == [
        "Công chức vắng mặt",
        "Máy quét hỏng",
        "Hồ sơ trễ hạn không có phiếu xin lỗi",
    ]
    assert await titles(category="equipment") == ["Máy quét hỏng"]
    assert await titles(severity="major") == ["Công chức vắng mặt"]
    assert await titles(q="ho so tre han") == ["Hồ sơ trễ hạn không có phiếu xin lỗi"]
    assert await titles(q="VANG MAT") == ["Công chức vắng mặt"]
    assert await titles(observed_from="2026-03-11") == ["Công chức vắng mặt"]
    assert await titles(observed_to="2026-03-10") == [
        "Máy quét hỏng",
        "Hồ sơ trễ hạn không có phiếu xin lỗi",
    ]
    assert await titles(
        observed_from="2026-03-10T09:00:00+07:00", observed_to="2026-03-11T00:00:00+07:00"
    ) == ["Máy quét hỏng"]
    assert await titles(under=world.d1["id"], status="draft") == [
        t for _, _, t, _ in reversed(specs)
    ]
    assert await titles(under=world.d2["id"]) == []
    assert await titles(visit=visit["id"], plan=visit["plan"]["id"], unit=world.c1["id"]) != []
    problem(
        await member.get("/api/v1/findings", params={"observed_from": "2026-03-10T09:00:00"}), 422
    )
    first = (await member.get("/api/v1/findings", params={"limit": 2})).json()
    rest = (
        await member.get("/api/v1/findings", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [f["title"] for f in first["items"] + rest["items"]] == await titles()
    assert rest["next_cursor"] is None


async def test_categories_have_vietnamese_labels(api: Api) -> None:
    categories = (await api.get("/api/v1/findings/categories")).json()
    codes = {c["code"] for c in categories}
    assert {
        "late_dossiers",
        "extra_documents_requested",
        "procedures_not_posted",
        "absent_or_late",
        "conduct_toward_citizens",
        "iso_9001_nonconformity",
        "online_service_not_working",
        "equipment",
        "other",
    } == codes
    assert all(c["label_vi"] and c["label_en"] for c in categories)
