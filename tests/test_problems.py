"""Every kind of error leaves the service as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from sqlalchemy.orm.exc import StaleDataError

from inspection.web.problems import exception_handlers
from tests.conftest import ADMIN_PASSWORD, Backend, make_app
from tests.helpers import Api, problem

UNITS = "/api/v1/units"


def _fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body["errors"]]


# --- routing -------------------------------------------------------------------------------------


async def test_unknown_route_is_404_problem(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/api/v1/nope", "/nope"):
        body = problem(await client.get(path), 404)
        assert body["type"] == "/problems/not-found"
        assert body["instance"] == path
        assert body["detail"] == f"no route GET {path}"
    body = problem(await client.post("/api/v1/nope", json={}), 404)
    assert body["detail"] == "no route POST /api/v1/nope"


async def test_unknown_route_is_404_problem_when_signed_in(api: Api) -> None:
    body = problem(await api.get("/api/v1/nope"), 404)
    assert body["instance"] == "/api/v1/nope"


async def test_wrong_method_is_405_with_allow_header(client: AsyncTestClient[Litestar]) -> None:
    for method in ("DELETE", "POST", "PUT"):
        response = await client.request(method, "/health/live")
        body = problem(response, 405)
        assert body["type"] == "/problems/method-not-allowed"
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert "GET" in allowed
        assert method not in allowed
        assert body["detail"].startswith(f"{method} is not allowed on /health/live; allowed: ")


async def test_wrong_method_on_an_api_route_names_the_allowed_methods(api: Api) -> None:
    response = await api.put(UNITS, json={})
    body = problem(response, 405)
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "PUT" not in allowed
    assert body["detail"].startswith("PUT is not allowed on /api/v1/units; allowed: ")
    named = {m.strip() for m in body["detail"].split("allowed: ", 1)[1].split(",")}
    assert named == allowed


# --- authentication ------------------------------------------------------------------------------


async def test_missing_token_is_401_with_bearer_challenge(
    client: AsyncTestClient[Litestar],
) -> None:
    response = await client.get(UNITS)
    body = problem(response, 401)
    assert body["type"] == "/problems/unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"

    response = await client.post(UNITS, json={"code": "X", "name": "X", "kind": "commune"})
    problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


# --- request validation --------------------------------------------------------------------------


async def test_malformed_json_body_is_400(api: Api) -> None:
    response = await api.post(
        UNITS, content=b'{"code": "A", "name":', headers={"Content-Type": "application/json"}
    )
    body = problem(response, 400)
    assert body["instance"] == UNITS
    assert body.get("detail")
    # Nothing was created.
    listed = (await api.get(UNITS)).json()
    assert all(unit["code"] != "A" for unit in listed["items"])


async def test_missing_json_body_says_so(api: Api) -> None:
    for headers in ({"Content-Type": "application/json"}, {}):
        body = problem(await api.post(UNITS, headers=headers), 400)
        assert body["type"] == "/problems/validation"
        assert body["errors"] == [
            {"field": "body", "message": "a JSON body is required", "source": "body"}
        ]
        assert body["detail"] == "body: a JSON body is required"


async def test_wrong_field_type_names_the_field(api: Api) -> None:
    response = await api.post(UNITS, json={"code": 5, "name": "Xã A", "kind": "commune"})
    body = problem(response, 400)
    assert body["type"] == "/problems/validation"
    assert _fields(body) == ["code"]
    assert body["errors"][0]["message"]
    assert "code" in body["detail"]


async def test_invalid_enum_value_names_the_field(api: Api) -> None:
    body = problem(await api.post(UNITS, json={"code": "A", "name": "A", "kind": "planet"}), 400)
    assert _fields(body) == ["kind"]


async def test_unknown_field_is_400(api: Api) -> None:
    response = await api.post(
        UNITS, json={"code": "A", "name": "Xã A", "kind": "commune", "colour": "red"}
    )
    body = problem(response, 400)
    assert body["type"] == "/problems/validation"
    assert len(body["errors"]) == 1
    assert "colour" in body["errors"][0]["message"]
    assert body["errors"][0]["field"] == "colour"
    listed = (await api.get(UNITS)).json()
    assert all(unit["code"] != "A" for unit in listed["items"])


async def test_limit_out_of_range_names_limit(api: Api) -> None:
    for limit in ("0", "501", "-1", "abc"):
        body = problem(await api.get(UNITS, params={"limit": limit}), 400)
        assert _fields(body) == ["limit"], limit
        assert body["errors"][0].get("source") == "query"
    for limit in ("1", "500"):
        assert (await api.get(UNITS, params={"limit": limit})).status_code == 200


async def test_json_body_over_limit_is_413(backend: Backend, tmp_path: Path) -> None:
    settings = backend.settings(tmp_path, max_json_body_mb=1)
    app = await make_app(settings)
    big_name = "x" * (1536 * 1024)
    payload = json.dumps({"code": "BIG", "name": big_name, "kind": "commune"}).encode()
    assert len(payload) > 1024 * 1024
    async with AsyncTestClient(app) as client:
        api = Api(client)
        await api.sign_in("admin", ADMIN_PASSWORD)
        response = await api.post(
            UNITS, content=payload, headers={"Content-Type": "application/json"}
        )
        body = problem(response, 413)
        assert body["type"] == "/problems/payload-too-large"
        assert body["detail"] == "the body is larger than 1 MB"
        assert body["limit_bytes"] == 1024 * 1024
        # The sign-in endpoint (no token needed) is protected the same way.
        response = await client.post(
            "/api/v1/auth/token", content=payload, headers={"Content-Type": "application/json"}
        )
        problem(response, 413)
        # A body under the limit still goes through.
        small = await api.post(UNITS, json={"code": "SMALL", "name": "x" * 200, "kind": "commune"})
        assert small.status_code == 201, small.text


# --- media types of request bodies ---------------------------------------------------------------

UNIT_JSON = json.dumps({"code": "MT", "name": "Xã MT", "kind": "commune"}).encode()


def _unsupported(response: Any) -> dict[str, Any]:
    body = problem(response, 415)
    assert body["type"] == "/problems/unsupported-media-type"
    assert "application/json" in body["detail"]
    assert body["accepted_media_types"] == ["application/json"]
    return body


async def _no_unit_mt(api: Api) -> None:
    listed = (await api.get(UNITS)).json()
    assert all(unit["code"] != "MT" for unit in listed["items"])


async def test_text_plain_body_is_415_even_when_it_is_valid_json(api: Api) -> None:
    response = await api.post(UNITS, content=UNIT_JSON, headers={"Content-Type": "text/plain"})
    body = _unsupported(response)
    assert "text/plain" in body["detail"]
    await _no_unit_mt(api)


async def test_form_and_multipart_bodies_are_415_on_json_operations(api: Api) -> None:
    # What `curl -d` sends.
    form = await api.post(
        UNITS,
        content=b"code=MT&name=x&kind=commune",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "application/x-www-form-urlencoded" in _unsupported(form)["detail"]
    multipart = await api.post(UNITS, files={"data": ("unit.json", UNIT_JSON, "application/json")})
    assert "multipart/form-data" in _unsupported(multipart)["detail"]
    await _no_unit_mt(api)


async def test_a_body_without_content_type_is_415(api: Api) -> None:
    response = await api.post(UNITS, content=UNIT_JSON)
    assert "content-type" not in response.request.headers
    body = _unsupported(response)
    assert "no Content-Type" in body["detail"]
    await _no_unit_mt(api)


async def test_non_json_body_is_415_before_sign_in_too(client: AsyncTestClient[Litestar]) -> None:
    credentials = json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode()
    response = await client.post(
        "/api/v1/auth/token", content=credentials, headers={"Content-Type": "text/plain"}
    )
    _unsupported(response)


async def test_a_json_body_in_another_charset_is_415(api: Api) -> None:
    response = await api.post(
        UNITS, content=UNIT_JSON, headers={"Content-Type": "application/json; charset=iso-8859-1"}
    )
    assert "UTF-8" in _unsupported(response)["detail"]


async def test_json_media_types_with_parameters_and_suffixes_are_accepted(api: Api) -> None:
    for number, content_type in enumerate(
        (
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            "application/vnd.inspection+json",
            "application/merge-patch+json",
        )
    ):
        unit = {"code": f"OK{number}", "name": "Xã", "kind": "commune"}
        response = await api.post(
            UNITS, content=json.dumps(unit).encode(), headers={"Content-Type": content_type}
        )
        assert response.status_code == 201, (content_type, response.text)


async def test_operations_without_a_json_body_keep_their_media_types(api: Api) -> None:
    # The bulk import reads CSV or JSON itself.
    csv_import = await api.post(
        f"{UNITS}/import",
        content="code,name,kind,parent_code\nCSV1,Xã CSV,commune,\n".encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert csv_import.status_code == 201, csv_import.text
    json_import = await api.post(
        f"{UNITS}/import", json={"units": [{"code": "J1", "name": "Xã J", "kind": "commune"}]}
    )
    assert json_import.status_code == 201, json_import.text
    # An evidence upload is multipart: not refused as "not JSON" (404: no such finding).
    upload = await api.put(
        f"/api/v1/findings/{uuid.uuid4()}/evidence/{uuid.uuid4()}",
        files={"file": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")},
    )
    assert problem(upload, 404)["type"] == "/problems/not-found"


# --- CORS refusals -------------------------------------------------------------------------------

ORIGIN = "https://app.example.gov.vn"
STRANGER = "https://evil.example"


@pytest.fixture
async def cors_api(backend: Backend, tmp_path: Path) -> AsyncIterator[Api]:
    """A signed-in admin on an app that allows one browser origin."""
    app = await make_app(backend.settings(tmp_path, cors_origins=(ORIGIN,)))
    async with AsyncTestClient(app) as client:
        api = Api(client)
        await api.sign_in("admin", ADMIN_PASSWORD)
        yield api


def _refused(response: Any, origin: str) -> dict[str, Any]:
    body = problem(response, 403)
    assert body["type"] == "/problems/origin-not-allowed"
    assert body["detail"] == f"the origin {origin} is not allowed to call this API"
    assert "access-control-allow-origin" not in response.headers
    return body


async def test_a_preflight_from_a_stranger_origin_is_a_403_problem(cors_api: Api) -> None:
    for path in (UNITS, "/api/v1/uploads", "/api/v1/nope"):
        preflight = await cors_api.client.options(
            path,
            headers={
                "Origin": STRANGER,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert _refused(preflight, STRANGER)["instance"] == path


async def test_a_request_from_a_stranger_origin_is_a_403_problem(cors_api: Api) -> None:
    response = await cors_api.get(UNITS, headers={"Origin": STRANGER})
    _refused(response, STRANGER)
    created = await cors_api.post(
        UNITS,
        json={"code": "EVIL", "name": "Evil", "kind": "commune"},
        headers={"Origin": "null"},
    )
    _refused(created, "null")
    listed = (await cors_api.get(UNITS)).json()
    assert all(unit["code"] != "EVIL" for unit in listed["items"])


async def test_allowed_and_same_origin_requests_are_unchanged(cors_api: Api) -> None:
    preflight = await cors_api.client.options(
        UNITS,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    listed = await cors_api.get(UNITS, headers={"Origin": ORIGIN})
    assert listed.status_code == 200, listed.text
    assert listed.headers["access-control-allow-origin"] == ORIGIN
    # A page served by the API itself (the Swagger UI at /schema) sends its own origin.
    own = str(cors_api.client.base_url).rstrip("/")
    same = await cors_api.post(
        UNITS, json={"code": "SAME", "name": "Same", "kind": "commune"}, headers={"Origin": own}
    )
    assert same.status_code == 201, same.text
    # No Origin: not a browser's cross-origin request.
    assert (await cors_api.get(UNITS)).status_code == 200


# --- domain errors -------------------------------------------------------------------------------


async def test_duplicate_unit_code_is_409(api: Api) -> None:
    await api.create_unit("DUP", "First", "province")
    body = problem(
        await api.post(UNITS, json={"code": "DUP", "name": "Second", "kind": "province"}), 409
    )
    assert body["type"] == "/problems/conflict"
    assert "DUP" in body["detail"]
    assert body.get("field") == "code"


async def test_unknown_parent_is_422_naming_parent_id(api: Api) -> None:
    missing = str(uuid.uuid4())
    response = await api.post(
        UNITS, json={"code": "ORPHAN", "name": "Orphan", "kind": "commune", "parent_id": missing}
    )
    body = problem(response, 422)
    assert body["type"] == "/problems/validation"
    assert _fields(body) == ["parent_id"]
    assert body["errors"][0]["message"]


async def test_patch_without_if_match_is_428(api: Api) -> None:
    unit = await api.create_unit("P", "Province", "province")
    response = await api.patch(f"{UNITS}/{unit['id']}", json={"name": "Renamed"})
    body = problem(response, 428)
    assert body["type"] == "/problems/precondition-required"
    # Unchanged.
    assert (await api.get(f"{UNITS}/{unit['id']}")).json()["name"] == "Province"


async def test_patch_with_stale_if_match_is_412(api: Api) -> None:
    unit = await api.create_unit("P", "Province", "province")
    url = f"{UNITS}/{unit['id']}"
    first = await api.get(url)
    old_etag = first.headers["etag"]
    updated = await api.patch(url, json={"name": "Renamed once"}, headers={"If-Match": old_etag})
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] != old_etag

    stale = await api.patch(url, json={"name": "Renamed twice"}, headers={"If-Match": old_etag})
    body = problem(stale, 412)
    assert body["type"] == "/problems/precondition-failed"
    assert body["current_version"] == updated.json()["version"]
    assert (await api.get(url)).json()["name"] == "Renamed once"

    garbage = await api.patch(url, json={"name": "X"}, headers={"If-Match": "*"})
    problem(garbage, 412)


async def test_unknown_uuid_is_404(api: Api) -> None:
    missing = uuid.uuid4()
    body = problem(await api.get(f"{UNITS}/{missing}"), 404)
    assert body["type"] == "/problems/not-found"
    problem(
        await api.patch(f"{UNITS}/{missing}", json={"name": "X"}, headers={"If-Match": '"1"'}),
        404,
    )
    problem(await api.get(f"/api/v1/users/{missing}"), 404)


async def test_malformed_uuid_path_param_is_a_problem(api: Api) -> None:
    # `{unit_id:uuid}` does not match, so the router answers 404 (as for any unknown route).
    for path in (f"{UNITS}/not-a-uuid", f"{UNITS}/1234", "/api/v1/users/zzz"):
        body = problem(await api.get(path), 404)
        assert body["instance"] == path
    problem(await api.patch(f"{UNITS}/not-a-uuid", json={}, headers={"If-Match": '"1"'}), 404)


async def test_malformed_uuid_path_param_names_the_parameter(api: Api) -> None:
    for path, name, value in (
        ("/api/v1/plans/not-a-uuid", "plan_id", "not-a-uuid"),
        (f"{UNITS}/1234", "unit_id", "1234"),
        ("/api/v1/evidence/zzz", "evidence_id", "zzz"),
        ("/api/v1/actions/zzz/evidence", "action_id", "zzz"),
    ):
        body = problem(await api.get(path), 404)
        assert body["detail"] == f"path parameter {name}: {value!r} is not a valid UUID", path
        assert body["errors"] == [
            {"field": name, "message": f"{value!r} is not a valid UUID", "source": "path"}
        ]
    # On a method the route does not have, the answer stays 405.
    problem(await api.put("/api/v1/plans/not-a-uuid", json={}), 405)


# --- unexpected errors ---------------------------------------------------------------------------


@get("/boom", sync_to_thread=False)
def _boom() -> None:
    raise RuntimeError("secret SELECT * FROM users")


@get("/integrity", sync_to_thread=False)
def _integrity() -> None:
    raise sqlalchemy.exc.IntegrityError(
        "INSERT INTO units (code) VALUES ('secret')", {}, Exception("dup")
    )


@get("/operational", sync_to_thread=False)
def _operational() -> None:
    raise sqlalchemy.exc.OperationalError(
        "SELECT secret FROM users", {}, Exception("connection refused")
    )


@get("/dbapi", sync_to_thread=False)
def _dbapi() -> None:
    raise sqlalchemy.exc.ProgrammingError("SELECT secret FROM nowhere", {}, Exception("syntax"))


@get("/stale", sync_to_thread=False)
def _stale() -> None:
    # What the ORM raises when a version-guarded UPDATE loses a race after the If-Match check.
    raise StaleDataError("UPDATE units SET name=? WHERE units.id = ? AND units.version = ?")


def _failing_app() -> Litestar:
    return Litestar(
        route_handlers=[_boom, _integrity, _operational, _dbapi, _stale],
        exception_handlers=exception_handlers,
        debug=False,
    )


def _assert_no_leak(text: str) -> None:
    for secret in ("secret", "SELECT", "INSERT", "Traceback", "RuntimeError", "sqlalchemy"):
        assert secret.lower() not in text.lower(), text


async def test_unexpected_error_is_bare_500() -> None:
    async with AsyncTestClient(_failing_app()) as client:
        response = await client.get("/boom")
        body = problem(response, 500)
        assert body["type"] == "/problems/internal-error"
        assert body["instance"] == "/boom"
        _assert_no_leak(response.text)


async def test_integrity_error_is_409_without_sql() -> None:
    async with AsyncTestClient(_failing_app()) as client:
        response = await client.get("/integrity")
        body = problem(response, 409)
        assert body["type"] == "/problems/conflict"
        _assert_no_leak(response.text)
        assert "dup" not in response.text


async def test_operational_error_is_503_with_retry_after() -> None:
    async with AsyncTestClient(_failing_app()) as client:
        response = await client.get("/operational")
        body = problem(response, 503)
        assert body["type"] == "/problems/unavailable"
        assert int(response.headers["retry-after"]) > 0
        _assert_no_leak(response.text)
        assert "refused" not in response.text


async def test_a_lost_version_race_is_412_without_sql() -> None:
    async with AsyncTestClient(_failing_app()) as client:
        response = await client.get("/stale")
        body = problem(response, 412)
        assert body["type"] == "/problems/precondition-failed"
        assert "UPDATE" not in response.text


async def test_other_database_error_is_500_without_sql() -> None:
    async with AsyncTestClient(_failing_app()) as client:
        response = await client.get("/dbapi")
        problem(response, 500)
        _assert_no_leak(response.text)


# --- inputs that once reached a 500 -----------------------------------------------------------


async def test_nul_characters_are_refused_or_harmless(api: Api) -> None:
    for url, params in (
        (UNITS, {"q": "a\x00b"}),
        ("/api/v1/audit", {"entity_id": "a\x00b"}),
        ("/api/v1/findings", {"q": "\x00"}),
    ):
        response = await api.get(url, params=params)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            problem(response, 400)


async def test_names_that_grow_when_folded_are_stored_and_found(api: Api) -> None:
    unit = await api.create_unit("SS", "ß" * 255, "other")
    assert unit["name"] == "ß" * 255
    found = (await api.get(UNITS, params={"q": "ssss"})).json()["items"]
    assert [u["code"] for u in found] == ["SS"]


async def test_extreme_dates_are_rejected_naming_the_field(api: Api) -> None:
    for url, name, value in (
        ("/api/v1/audit", "from", "0001-01-01T00:00:00+14:00"),
        ("/api/v1/audit", "to", "9999-12-31T23:59:59-12:00"),
        ("/api/v1/findings", "observed_from", "0001-01-01"),
        ("/api/v1/findings", "observed_to", "9999-12-31"),
    ):
        body = problem(await api.get(url, params={name: value}), 422)
        assert body["errors"][0]["field"] == name
