"""Sign-in, tokens, refresh rotation, reuse refusal, lockout and /me."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import jwt
from litestar import Litestar
from litestar.testing import AsyncTestClient

from inspection.db.migrate import downgrade, upgrade
from inspection.settings import Settings
from tests.conftest import ADMIN_PASSWORD, Backend
from tests.helpers import PASSWORD, Api, build_world, problem


async def _token(
    client: AsyncTestClient[Litestar] | httpx.AsyncClient, username: str, password: str
) -> Any:
    return await client.post(
        "/api/v1/auth/token", json={"username": username, "password": password}
    )


async def test_sign_in_returns_bearer_and_refresh_tokens(client: AsyncTestClient[Litestar]) -> None:
    response = await _token(client, "admin", ADMIN_PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"].count(".") == 2
    assert body["refresh_token"] and body["refresh_token"] != body["access_token"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "admin"
    assert me.json()["grants"][0]["role"] == "admin"
    assert me.json()["grants"][0]["unit_id"] is None
    assert "password" not in me.text


async def test_username_is_case_insensitive(client: AsyncTestClient[Litestar]) -> None:
    assert (await _token(client, "  ADMIN ", ADMIN_PASSWORD)).status_code == 200


async def test_wrong_password_and_unknown_user_answer_alike(
    client: AsyncTestClient[Litestar],
) -> None:
    wrong = problem(await _token(client, "admin", "not-the-password"), 401)
    unknown = problem(await _token(client, "nobody", "not-the-password"), 401)
    assert wrong["detail"] == unknown["detail"] == "invalid username or password"


async def test_missing_bad_and_expired_tokens_are_refused(
    client: AsyncTestClient[Litestar], settings: Settings, api: Api
) -> None:
    problem(await client.get("/api/v1/me"), 401)
    problem(await client.get("/api/v1/me", headers={"Authorization": "Bearer not.a.jwt"}), 401)
    me = (await api.get("/api/v1/me")).json()
    past = datetime.now(UTC) - timedelta(hours=1)
    expired = jwt.encode(
        {"sub": me["id"], "iat": past, "exp": past + timedelta(minutes=5), "iss": "inspection"},
        settings.secret_key,
        algorithm="HS256",
    )
    problem(await client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"}), 401)
    forged = jwt.encode(
        {
            "sub": me["id"],
            "iat": datetime.now(UTC),
            "exp": datetime.now(UTC) + timedelta(minutes=5),
            "iss": "inspection",
        },
        "another-secret-key-of-sufficient-length!",
        algorithm="HS256",
    )
    problem(await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401)


async def test_refresh_rotates_and_a_reused_token_revokes_the_session(
    client: AsyncTestClient[Litestar],
) -> None:
    first = (await _token(client, "admin", ADMIN_PASSWORD)).json()
    rotated = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]

    # The first refresh token was used: presenting it again means it leaked.
    reused = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert "already used" in problem(reused, 401)["detail"]
    # ... and the whole family is revoked, including the token the legitimate holder got.
    after = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    problem(after, 401)
    # A fresh sign-in starts a new family that works.
    fresh = (await _token(client, "admin", ADMIN_PASSWORD)).json()
    ok = await client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert ok.status_code == 200


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(token: str) -> dict[str, Any]:
    """The payload of an access token (verified by the app, read here without the key)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def _refresh(
    client: AsyncTestClient[Litestar] | httpx.AsyncClient, refresh_token: str
) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


async def test_a_reused_refresh_token_ends_the_access_tokens_of_its_session_at_once(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    """The copied refresh token's holder (and the legitimate one) lose their access tokens on the
    next request, not when the tokens expire; the refusal looks like any other stale token."""
    first = (await _token(client, "admin", ADMIN_PASSWORD)).json()
    second = (await _refresh(client, first["refresh_token"])).json()
    assert (await client.get("/api/v1/me", headers=_bearer(second["access_token"]))).is_success

    reused = await _refresh(client, first["refresh_token"])
    assert "already used" in problem(reused, 401)["detail"]

    past = datetime.now(UTC) - timedelta(hours=1)
    expired = jwt.encode(
        {**_claims(second["access_token"]), "iat": past, "exp": past + timedelta(minutes=5)},
        settings.secret_key,
        algorithm="HS256",
    )
    stale = await client.get("/api/v1/me", headers=_bearer(expired))
    expected = problem(stale, 401)
    for pair in (second, first):
        refused = await client.get("/api/v1/me", headers=_bearer(pair["access_token"]))
        body = problem(refused, 401)
        assert refused.headers["WWW-Authenticate"] == stale.headers["WWW-Authenticate"] == "Bearer"
        # The same problem as an expired token (an expired one also says why it is invalid).
        assert {k: v for k, v in body.items() if k != "detail"} == {
            k: v for k, v in expected.items() if k != "detail"
        }
    # Writes are refused as well, and the session stays revoked for refreshes.
    created = await client.post(
        "/api/v1/units",
        json={"code": "X", "name": "X", "kind": "commune"},
        headers=_bearer(second["access_token"]),
    )
    problem(created, 401)
    problem(await _refresh(client, second["refresh_token"]), 401)
    problem(await _refresh(client, first["refresh_token"]), 401)


async def test_another_session_of_the_same_user_outlives_a_revoked_one(
    client: AsyncTestClient[Litestar],
) -> None:
    leaked = (await _token(client, "admin", ADMIN_PASSWORD)).json()
    other = (await _token(client, "admin", ADMIN_PASSWORD)).json()
    other_sid = _claims(other["access_token"])["extras"]["sid"]
    assert _claims(leaked["access_token"])["extras"]["sid"] != other_sid
    rotated = (await _refresh(client, leaked["refresh_token"])).json()
    problem(await _refresh(client, leaked["refresh_token"]), 401)
    problem(await client.get("/api/v1/me", headers=_bearer(rotated["access_token"])), 401)

    assert (await client.get("/api/v1/me", headers=_bearer(other["access_token"]))).is_success
    renewed = await _refresh(client, other["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    # The rotated pair belongs to the same session as the one it came from.
    new = renewed.json()
    assert _claims(new["access_token"])["extras"]["sid"] == other_sid
    assert (await client.get("/api/v1/me", headers=_bearer(new["access_token"]))).is_success
    # Revoking the first session did not touch this one's old access token either.
    assert (await client.get("/api/v1/me", headers=_bearer(other["access_token"]))).is_success


async def test_access_tokens_without_a_live_session_of_their_user_are_refused(
    client: AsyncTestClient[Litestar], settings: Settings, api: Api
) -> None:
    """Tokens minted before sessions were carried (no `sid`), naming no session, or naming
    another user's session are refused, even with a valid signature and password stamp."""
    await build_world(api)
    admin = _claims(api.token or "")
    head = _claims((await Api(api.client).sign_in("head.c1"))["access_token"])

    def forge(claims: dict[str, Any], **extras: Any) -> dict[str, str]:
        payload = {**claims, "extras": {**claims["extras"], **extras}}
        payload["extras"] = {k: v for k, v in payload["extras"].items() if v is not None}
        return _bearer(jwt.encode(payload, settings.secret_key, algorithm="HS256"))

    assert (await client.get("/api/v1/me", headers=forge(admin))).is_success
    for headers in (
        forge(admin, sid=None),
        forge(admin, sid="not-a-session"),
        forge(admin, sid=uuid.uuid4().hex),
        forge(admin, sid=head["extras"]["sid"]),
    ):
        problem(await client.get("/api/v1/me", headers=headers), 401)


async def test_a_rotation_racing_a_reuse_does_not_outlive_the_revocation(
    parallel_client: httpx.AsyncClient,
) -> None:
    """The copied token and the current one are presented at once: whichever runs first, no
    pair of the session works afterwards, not even one the rotation minted beside the reuse."""

    async def present(answers: dict[str, httpx.Response], name: str, refresh_token: str) -> None:
        answers[name] = await _refresh(parallel_client, refresh_token)

    for _ in range(5):
        first = (await _token(parallel_client, "admin", ADMIN_PASSWORD)).json()
        second = (await _refresh(parallel_client, first["refresh_token"])).json()
        answers: dict[str, httpx.Response] = {}
        async with anyio.create_task_group() as group:
            group.start_soon(present, answers, "copy", first["refresh_token"])
            group.start_soon(present, answers, "current", second["refresh_token"])
        problem(answers["copy"], 401)
        pairs = [second]
        if answers["current"].status_code == 200:
            pairs.append(answers["current"].json())
        for pair in pairs:
            me = await parallel_client.get("/api/v1/me", headers=_bearer(pair["access_token"]))
            problem(me, 401)
            problem(await _refresh(parallel_client, pair["refresh_token"]), 401)


async def test_refresh_token_families_from_before_sessions_become_sessions(
    client: AsyncTestClient[Litestar], backend: Backend
) -> None:
    """Migration 0008 turns each existing family into a session: a live one keeps refreshing
    (with the same id, so its `sid` tokens stay valid), a revoked one stays revoked."""
    live = (await _token(client, "admin", ADMIN_PASSWORD)).json()
    leaked = (await _token(client, "admin", ADMIN_PASSWORD)).json()
    rotated = (await _refresh(client, leaked["refresh_token"])).json()
    problem(await _refresh(client, leaked["refresh_token"]), 401)

    await anyio.to_thread.run_sync(downgrade, backend.database_url, "0007")
    await anyio.to_thread.run_sync(upgrade, backend.database_url)

    assert (await client.get("/api/v1/me", headers=_bearer(live["access_token"]))).is_success
    renewed = await _refresh(client, live["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.json()["access_token"]
    assert (await client.get("/api/v1/me", headers=_bearer(fresh))).is_success
    problem(await client.get("/api/v1/me", headers=_bearer(rotated["access_token"])), 401)
    problem(await _refresh(client, rotated["refresh_token"]), 401)


async def test_malformed_refresh_tokens_are_refused(client: AsyncTestClient[Litestar]) -> None:
    for token in ["garbage", "0" * 32 + ".secret", "zz.zz"]:
        problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": token}), 401)
    real = (await _token(client, "admin", ADMIN_PASSWORD)).json()["refresh_token"]
    tampered = real.split(".")[0] + ".wrong-secret"
    problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": tampered}), 401)


async def test_a_success_resets_the_failure_count(client: AsyncTestClient[Litestar]) -> None:
    for _ in range(2):
        problem(await _token(client, "admin", "wrong-password"), 401)
    assert (await _token(client, "admin", ADMIN_PASSWORD)).status_code == 200
    for _ in range(2):
        problem(await _token(client, "admin", "wrong-password"), 401)
    assert (await _token(client, "admin", ADMIN_PASSWORD)).status_code == 200


async def test_deactivated_user_loses_access_at_once(api: Api) -> None:
    world = await build_world(api)
    head = await api.as_user("head.c1")
    assert (await head.get("/api/v1/me")).status_code == 200
    user = world.users["head.c1"]
    response = await api.patch(
        f"/api/v1/users/{user['id']}", json={"is_active": False}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    problem(await head.get("/api/v1/me"), 401)
    problem(
        await api.client.post(
            "/api/v1/auth/token", json={"username": "head.c1", "password": PASSWORD}
        ),
        401,
    )


async def test_changing_the_password_ends_other_sessions(api: Api) -> None:
    await build_world(api)
    head = await api.as_user("head.c1")
    pair = await Api(api.client).sign_in("head.c1")
    wrong = await head.post(
        "/api/v1/me/password",
        json={"current_password": "nope", "new_password": "a brand new secret"},
    )
    assert problem(wrong, 422)["errors"][0]["field"] == "current_password"
    changed = await head.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new secret"},
    )
    assert changed.status_code == 204, changed.text
    problem(await head.get("/api/v1/me"), 401)
    problem(
        await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        ),
        401,
    )
    again = await api.as_user("head.c1", "a brand new secret")
    assert (await again.get("/api/v1/me")).json()["username"] == "head.c1"


async def test_me_lists_grants_with_unit_names(api: Api) -> None:
    world = await build_world(api)
    head = await api.as_user("head.c1")
    me = (await head.get("/api/v1/me")).json()
    assert me["unit_id"] == world.c1["id"]
    assert [(g["role"], g["unit_id"], g["unit_name"]) for g in me["grants"]] == [
        ("unit_head", world.c1["id"], "Xã La Hiên")
    ]


async def test_an_admin_password_reset_ends_every_session_at_once(api: Api) -> None:
    world = await build_world(api)
    user = world.users["head.c1"]
    pair = await Api(api.client).sign_in("head.c1")
    head = Api(api.client, pair["access_token"])
    reset = await api.patch(
        f"/api/v1/users/{user['id']}",
        json={"password": "reset by the admin"},
        headers={"If-Match": '"1"'},
    )
    assert reset.status_code == 200, reset.text
    # No waiting for the next second: the token's stamp no longer matches, to the microsecond.
    problem(await head.get("/api/v1/me"), 401)
    problem(
        await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        ),
        401,
    )
    fresh = await api.as_user("head.c1", "reset by the admin")
    assert (await fresh.get("/api/v1/me")).status_code == 200


async def test_deactivation_revokes_refresh_tokens_for_good(api: Api) -> None:
    world = await build_world(api)
    user = world.users["head.c1"]
    pair = await Api(api.client).sign_in("head.c1")
    url = f"/api/v1/users/{user['id']}"
    off = await api.patch(url, json={"is_active": False}, headers={"If-Match": '"1"'})
    on = await api.patch(url, json={"is_active": True}, headers={"If-Match": off.headers["ETag"]})
    assert on.status_code == 200, on.text
    # Reactivation does not bring the old session back.
    problem(
        await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        ),
        401,
    )


async def test_overlong_usernames_after_lower_casing_are_refused_cleanly(
    client: AsyncTestClient[Litestar],
) -> None:
    problem(await _token(client, "İ" * 64, "whatever"), 401)
