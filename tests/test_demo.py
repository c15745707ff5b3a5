"""`inspection db upgrade` and `inspection demo` on a fresh data folder, as a newcomer runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient

from inspection.app import create_app
from inspection.cli import main
from inspection.demo.organisation import DEMO_PASSWORD
from inspection.settings import load_settings


def test_first_start_creates_admin_and_prints_a_generated_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("INSPECTION_ADMIN_PASSWORD", raising=False)
    runner = CliRunner()
    first = runner.invoke(main, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "Created the administrator 'admin' with password:" in first.output
    second = runner.invoke(main, ["db", "upgrade"])
    assert second.exit_code == 0
    assert "Created the administrator" not in second.output  # printed once only
    assert (tmp_path / "inspection.db").exists()


async def test_demo_loads_once_and_its_people_can_sign_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio.to_thread

    monkeypatch.setenv("INSPECTION_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INSPECTION_ADMIN_PASSWORD", "demo-admin-pass")
    runner = CliRunner()
    first = await anyio.to_thread.run_sync(lambda: runner.invoke(main, ["demo"]))
    assert first.exit_code == 0, first.output
    assert "created" in first.output and "chu.tich1" in first.output
    second = await anyio.to_thread.run_sync(lambda: runner.invoke(main, ["demo"]))
    assert second.exit_code == 0, second.output
    assert "Demo units: 0 created" in second.output
    assert "Demo users: 0 created" in second.output
    assert "Demo checklist: already present" in second.output

    async with AsyncTestClient(create_app(load_settings())) as client:
        token = await client.post(
            "/api/v1/auth/token", json={"username": "admin", "password": "demo-admin-pass"}
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        communes = await client.get(
            "/api/v1/units", params={"kind": "commune", "limit": 500}, headers=headers
        )
        names = [u["name"] for u in communes.json()["items"]]
        assert len(names) >= 30
        assert len(names) == len(set(names))
        assert any(
            "Võ Nhai" in u["name"]
            for u in (
                await client.get("/api/v1/units", params={"q": "vo nhai"}, headers=headers)
            ).json()["items"]
        )
        users = (await client.get("/api/v1/users", params={"limit": 500}, headers=headers)).json()[
            "items"
        ]
        roles = {g["role"] for u in users for g in u["grants"]}
        assert roles == {"admin", "planner", "inspector", "unit_head", "leader"}
        checklists = (await client.get("/api/v1/checklists", headers=headers)).json()["items"]
        assert len(checklists) == 1 and checklists[0]["criteria_count"] >= 7
        checklist_url = f"/api/v1/checklists/{checklists[0]['id']}"
        checklist = (await client.get(checklist_url, headers=headers)).json()
        assert any("ISO 9001:2015" in c["text"] for c in checklist["criteria"])
        assert all(c["note"] for c in checklist["criteria"])  # English notes
        head = await client.post(
            "/api/v1/auth/token", json={"username": "chu.tich1", "password": DEMO_PASSWORD}
        )
        assert head.status_code == 200
        head_headers = {"Authorization": f"Bearer {head.json()['access_token']}"}
        visible = (await client.get("/api/v1/units", headers=head_headers)).json()["items"]
        assert {u["kind"] for u in visible} == {"commune", "one_stop_shop"}

        async def signed_in(username: str) -> dict[str, str]:
            answer = await client.post(
                "/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD}
            )
            assert answer.status_code == 200, (username, answer.text)
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        # The district's head sees the district's communes; the shop's head their shop only.
        district = await signed_in("chu.tich.huyen")
        seen = (await client.get("/api/v1/units", params={"limit": 500}, headers=district)).json()[
            "items"
        ]
        assert {u["kind"] for u in seen} == {"district", "commune", "one_stop_shop"}
        assert {u["name"] for u in seen if u["kind"] == "district"} == {"Huyện Võ Nhai"}
        assert "UBND Xã La Hiên" in {u["name"] for u in seen}
        shop = await signed_in("truong.mot.cua")
        shops = (await client.get("/api/v1/units", headers=shop)).json()["items"]
        assert [u["name"] for u in shops] == ["Bộ phận một cửa Xã La Hiên"]
        # The leader verifies the audit chain the demo itself wrote.
        leader = await signed_in("lanh.dao")
        verified = await client.get("/api/v1/audit/verify", headers=leader)
        assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text


async def test_cli_resets_a_lost_password_and_ends_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio.to_thread

    monkeypatch.setenv("INSPECTION_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INSPECTION_ADMIN_PASSWORD", "forgotten-password")
    runner = CliRunner()
    assert (
        await anyio.to_thread.run_sync(lambda: runner.invoke(main, ["db", "upgrade"]))
    ).exit_code == 0
    async with AsyncTestClient(create_app(load_settings())) as client:
        before = await client.post(
            "/api/v1/auth/token", json={"username": "admin", "password": "forgotten-password"}
        )
        old_token = before.json()["access_token"]
        reset = await anyio.to_thread.run_sync(
            lambda: runner.invoke(main, ["users", "reset-password", "admin"])
        )
        assert reset.exit_code == 0, reset.output
        new_password = reset.output.strip().rsplit(": ", 1)[-1]
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {old_token}"})
        assert me.status_code == 401
        after = await client.post(
            "/api/v1/auth/token", json={"username": "admin", "password": new_password}
        )
        assert after.status_code == 200
    unknown = await anyio.to_thread.run_sync(
        lambda: runner.invoke(main, ["users", "reset-password", "nobody"])
    )
    assert unknown.exit_code == 1 and "no user" in unknown.output
