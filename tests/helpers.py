"""An API client helper and a small organisation used across tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient

PASSWORD = "correct horse battery"


class Api:
    """Calls the API as one signed-in user."""

    def __init__(self, client: AsyncTestClient[Litestar], token: str | None = None) -> None:
        self.client = client
        self.token = token

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        merged = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        merged.update(headers or {})
        return merged

    async def sign_in(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        """Sign in and keep the bearer token."""
        response = await self.client.post(
            "/api/v1/auth/token", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        self.token = body["access_token"]
        return body

    async def as_user(self, username: str, password: str = PASSWORD) -> Api:
        """Another helper, signed in as `username`."""
        other = Api(self.client)
        await other.sign_in(username, password)
        return other

    async def get(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> Response:
        return await self.client.get(url, headers=self._headers(headers), **kw)

    async def post(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> Response:
        return await self.client.post(url, headers=self._headers(headers), **kw)

    async def patch(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> Response:
        return await self.client.patch(url, headers=self._headers(headers), **kw)

    async def put(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> Response:
        return await self.client.put(url, headers=self._headers(headers), **kw)

    async def delete(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> Response:
        return await self.client.delete(url, headers=self._headers(headers), **kw)

    async def request(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> Response:
        return await self.client.request(method, url, headers=self._headers(headers), **kw)

    async def create_unit(
        self, code: str, name: str, kind: str = "commune", parent_id: str | None = None
    ) -> dict[str, Any]:
        """Create a unit and return it."""
        body: dict[str, Any] = {"code": code, "name": name, "kind": kind}
        if parent_id:
            body["parent_id"] = parent_id
        response = await self.post("/api/v1/units", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def create_user(
        self, username: str, grants: list[tuple[str, str | None]], unit_id: str | None = None
    ) -> dict[str, Any]:
        """Create a user with grants [(role, unit_id)] and return it."""
        body = {
            "username": username,
            "full_name": username.replace(".", " ").title(),
            "password": PASSWORD,
            "unit_id": unit_id,
            "grants": [{"role": role, "unit_id": unit} for role, unit in grants],
        }
        response = await self.post("/api/v1/users", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result


def problem(response: Response, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 problem with `status` and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert body["title"]
    text = response.text.lower()
    assert "traceback" not in text and "select " not in text and "sqlalchemy" not in text
    return body


@dataclass
class World:
    """Province P with districts D1 (communes C1, C2) and D2 (commune C3), and the Home Affairs
    department SNV; a head of C1, a head of D1, a planner and a leader of P, two inspectors of
    SNV, and an admin of D1 only."""

    province: dict[str, Any]
    snv: dict[str, Any]
    d1: dict[str, Any]
    d2: dict[str, Any]
    c1: dict[str, Any]
    c2: dict[str, Any]
    c3: dict[str, Any]
    users: dict[str, dict[str, Any]]


async def build_world(api: Api) -> World:
    """Create the standard test organisation through the API."""
    province = await api.create_unit("P", "Tỉnh Thái Nguyên", "province")
    snv = await api.create_unit("P-SNV", "Sở Nội vụ", "department", province["id"])
    d1 = await api.create_unit("P-D1", "Huyện Võ Nhai", "district", province["id"])
    d2 = await api.create_unit("P-D2", "Huyện Đại Từ", "district", province["id"])
    c1 = await api.create_unit("P-D1-C1", "Xã La Hiên", "commune", d1["id"])
    c2 = await api.create_unit("P-D1-C2", "Xã Tràng Xá", "commune", d1["id"])
    c3 = await api.create_unit("P-D2-C3", "Xã Phúc Lương", "commune", d2["id"])
    users = {
        "head.c1": await api.create_user("head.c1", [("unit_head", c1["id"])], c1["id"]),
        "head.d1": await api.create_user("head.d1", [("unit_head", d1["id"])], d1["id"]),
        "planner": await api.create_user("planner", [("planner", province["id"])], snv["id"]),
        "leader": await api.create_user("leader", [("leader", province["id"])], province["id"]),
        "inspector": await api.create_user("inspector", [("inspector", snv["id"])], snv["id"]),
        "inspector2": await api.create_user("inspector2", [("inspector", snv["id"])], snv["id"]),
        "admin.d1": await api.create_user("admin.d1", [("admin", d1["id"])], d1["id"]),
    }
    return World(province, snv, d1, d2, c1, c2, c3, users)


async def create_checklist(
    api: Api,
    codes: tuple[str, ...] = ("C01", "C02", "C03"),
    evidence_required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A checklist with weighted criteria (weights 1, 2, 3, ...)."""
    criteria = [
        {
            "code": code,
            "text": f"Tiêu chí {code}",
            "category": "dossier_handling",
            "weight": float(n),
            "evidence_required": code in evidence_required,
        }
        for n, code in enumerate(codes, start=1)
    ]
    response = await api.post("/api/v1/checklists", json={"title": "Một cửa", "criteria": criteria})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def plan_body(
    world: World,
    checklist_id: str,
    *,
    kind: str = "unannounced",
    targets: list[tuple[dict[str, Any], str, str]] | None = None,
    team: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """A plan for March 2026 by the province; targets (unit, window_start, window_end) default to
    C1 on 10-12 March and C3 on 20-22 March; the team to inspector (lead) and inspector2."""
    targets = targets or [
        (world.c1, "2026-03-10", "2026-03-12"),
        (world.c3, "2026-03-20", "2026-03-22"),
    ]
    team = team or [("inspector", "lead"), ("inspector2", "member")]
    return {
        "kind": kind,
        "title": "Kiểm tra công vụ đột xuất quý I/2026",
        "legal_basis": "Quyết định số 123/QĐ-SNV",
        "focus": ["dossier_handling", "discipline"],
        "period_start": "2026-03-01",
        "period_end": "2026-03-31",
        "checklist_id": checklist_id,
        "unit_id": world.province["id"],
        "team": [{"user_id": world.users[name]["id"], "role": role} for name, role in team],
        "targets": [
            {"unit_id": u["id"], "window_start": s, "window_end": e} for u, s, e in targets
        ],
    }


POSITION = {"lat": 21.59, "lon": 105.84, "accuracy_m": 12}


async def etag_of(api: Api, url: str) -> str:
    response = await api.get(url)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


async def on_site(
    api: Api,
    world: World,
    kind: str = "unannounced",
    evidence_required: tuple[str, ...] = (),
    target: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An approved plan (C1 and C3) whose C1 visit is checked in; returns the C1 visit. With a
    `target`, the plan visits that unit alone (10-12 March) and its visit is checked in."""
    planner = await api.as_user("planner")
    checklist = await create_checklist(api, evidence_required=evidence_required)
    targets = [(target, "2026-03-10", "2026-03-12")] if target else None
    body = plan_body(world, checklist["id"], kind=kind, targets=targets)
    created = await planner.post("/api/v1/plans", json=body)
    assert created.status_code == 201, created.text
    approved = await planner.post(
        f"/api/v1/plans/{created.json()['id']}/approve",
        headers={"If-Match": created.headers["ETag"]},
    )
    assert approved.status_code == 200, approved.text
    unit_id = (target or world.c1)["id"]
    visit = next(v for v in approved.json()["visits"] if v["unit_id"] == unit_id)
    inspector = await api.as_user("inspector")
    url = f"/api/v1/visits/{visit['id']}"
    checked = await inspector.post(
        f"{url}/check-in",
        json={"position": POSITION, "at": "2026-03-10T09:00:00+07:00"},
        headers={"If-Match": await etag_of(inspector, url)},
    )
    assert checked.status_code == 200, checked.text
    result: dict[str, Any] = checked.json()
    return result


def finding_body(visit: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "visit_id": visit["id"],
        "criterion_code": "C02",
        "category": "extra_documents_requested",
        "severity": "major",
        "title": "Yêu cầu nộp thêm bản sao hộ khẩu",
        "description": "Công chức một cửa yêu cầu thêm giấy tờ không có trong thành phần hồ sơ.",
        "observed_at": "2026-03-10T09:41:00+07:00",
        "position": POSITION,
        "officials": [{"name": "Nguyễn Văn A", "position": "Công chức tư pháp - hộ tịch"}],
        "recommendation": "Chấm dứt ngay việc yêu cầu giấy tờ ngoài quy định.",
    }
    body.update(changes)
    return body
