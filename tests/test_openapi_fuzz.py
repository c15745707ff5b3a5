"""Fuzzing every operation of the OpenAPI document with schemathesis, signed in as `admin`.

What must hold for every generated request (positive and negative, all phases: examples,
coverage, fuzzing):

* no response is a 5xx (`not_a_server_error`);
* every 4xx/5xx is RFC 9457 problem details: `application/problem+json`, with `status`, `type`
  and `title` (`errors_are_problem_details`);
* every status code and content type is documented, errors included (`status_code_conformance`,
  `content_type_conformance`: `inspection.web.http.document_problems` declares the problem responses
  on every operation);
* a response body that has a documented schema conforms to it, as do its documented headers
  (`response_schema_conformance`, `response_headers_conformance`).

Left out on purpose:

* `negative_data_rejection` and `positive_data_acceptance`: request bodies are documented without
  `additionalProperties: false` (the server forbids unknown fields, rightly), the header
  `Idempotency-Key` without its 1-255 length, `POST /api/v1/units/import` without any request
  body (it reads JSON or CSV itself); business rules (422, 412) also count as "valid data
  rejected";
* checks that replay requests on their own (`ignored_auth`, `use_after_free`, ...): they need a
  network client or an app bound to the schema, and the app here is built per test.

Set-up: pytest collects one test per operation from the document the app serves, built without
starting the app (`schemathesis.pytest.from_fixture` would load it from a fixture instead, but it
fails on pytest 9.2: it sets `Node._nodeid`, which pytest no longer has). Each of those tests gets
its own copy of the migrated SQLite database with the first `admin`, and signs in once, before any
generated request. That order is what makes the lockout harmless: Hypothesis also draws string
constants from local modules (src/ and tests/conftest.py: `"admin"`, `ADMIN_PASSWORD`), so a
fuzzed sign-in may well lock `admin` out, but a lockout only refuses new sign-ins and the token is
already issued. The auth endpoints are therefore fuzzed too. For the same reason a fuzzed
`POST /api/v1/me/password` could name the right current password; `_keep_admin_password` rules
that out (and a change would only reach that one operation's database anyway). Generated ids are
random UUIDs (no response feeds later requests in this mode), so no request reaches the admin's
own record. `derandomize=True` makes every run send the same requests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar import Litestar
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inspection.app import create_app
from inspection.db.engine import create_database
from inspection.settings import Settings
from inspection.units.bootstrap import ensure_admin
from tests.conftest import ADMIN_PASSWORD, Backend

PROBLEM_MEDIA_TYPE = "application/problem+json"
NIL_UUID = "00000000-0000-0000-0000-000000000000"


def _openapi_document() -> dict[str, Any]:
    """What `/schema/openapi.json` serves (the same `to_schema()`); building the app touches no
    database or folder, so this runs at collection."""
    nowhere = Path("/nonexistent")
    backend = Backend("sqlite", "sqlite+aiosqlite:///:memory:", nowhere, None)
    return create_app(backend.settings(nowhere)).openapi_schema.to_schema()


schema = schemathesis.openapi.from_dict(_openapi_document())
# Requests go in-process to each test's app (`app=`); this is only the host they name.
schema.config.update(base_url="http://testserver")


def errors_are_problem_details(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Every 4xx/5xx is `application/problem+json` with `status`, `type` and `title`."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith(PROBLEM_MEDIA_TYPE), (
        f"{response.status_code} answered with content-type {content_type!r}, "
        f"not {PROBLEM_MEDIA_TYPE}: {response.text[:300]!r}"
    )
    if case.method.upper() == "HEAD":
        return None
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("status") == response.status_code, body
    assert str(body.get("type", "")).startswith("/problems/"), body
    assert body.get("title"), body
    return None


CHECKS = [
    not_a_server_error,
    errors_are_problem_details,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# schemathesis gives up on a response after 10 s by default. The checks are about what the answer
# is, not how fast it comes, and on a loaded CI machine one request (a sign-in's Argon2 behind
# other work) once took longer than that.
REQUEST_TIMEOUT = 60


async def _first_admin(settings: Settings) -> None:
    database = create_database(settings)
    try:
        await ensure_admin(database, ADMIN_PASSWORD)
    finally:
        await database.dispose()


@pytest.fixture
def fuzz_app(sqlite_template: Path, tmp_path: Path) -> Litestar:
    """The app on a fresh copy of the migrated SQLite database, with its first `admin`.

    schemathesis starts its lifespan on the first request and its pytest plugin ends it when the
    test tears down."""
    db_file = tmp_path / "fuzz.db"
    shutil.copyfile(sqlite_template, db_file)
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{db_file}", tmp_path / "objects", None)
    settings = backend.settings(tmp_path)
    asyncio.run(_first_admin(settings))
    return create_app(settings)


@pytest.fixture
def admin_headers(fuzz_app: Litestar) -> dict[str, str]:
    """A bearer token of `admin`, issued before any fuzzed sign-in can lock the account."""
    sign_in = schema["/api/v1/auth/token"]["POST"].Case(
        body={"username": "admin", "password": ADMIN_PASSWORD}
    )
    response = sign_in.call(app=fuzz_app, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _keep_admin_password(case: schemathesis.Case[Any]) -> None:
    """A password change as admin can never name the right current password."""
    body = case.body
    if (
        case.operation.path == "/api/v1/me/password"
        and isinstance(body, dict)
        and body.get("current_password") == ADMIN_PASSWORD
    ):
        body["current_password"] = "not-" + ADMIN_PASSWORD


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_fuzzed_requests_never_fail_and_errors_are_problems(
    case: schemathesis.Case[Any], fuzz_app: Litestar, admin_headers: dict[str, str]
) -> None:
    _keep_admin_password(case)
    case.call_and_validate(
        app=fuzz_app, headers=admin_headers, checks=CHECKS, timeout=REQUEST_TIMEOUT
    )


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


# Requests the random search above does not reach, each of which answered 500 when this file was
# written: (method, path, Case arguments, extra transport arguments).
EDGE_CASES: dict[str, tuple[str, str, dict[str, Any], dict[str, Any]]] = {
    "audit-from-without-utc-offset": (
        "GET",
        "/api/v1/audit",
        {"query": {"from": "2024-01-01T00:00:00"}},
        {},
    ),
    "audit-to-without-utc-offset": (
        "GET",
        "/api/v1/audit",
        {"query": {"to": "2024-01-01T00:00:00"}},
        {},
    ),
    "audit-cursor-beyond-int64": (
        "GET",
        "/api/v1/audit",
        {"query": {"cursor": _cursor([2**63])}},
        {},
    ),
    "unit-if-match-superscript-digit": (
        "PATCH",
        "/api/v1/units/{unit_id}",
        {"path_parameters": {"unit_id": NIL_UUID}, "headers": {"If-Match": "\u00b2"}, "body": {}},
        {},
    ),
    "user-if-match-5000-digits": (
        "PATCH",
        "/api/v1/users/{user_id}",
        {"path_parameters": {"user_id": NIL_UUID}, "headers": {"If-Match": "9" * 5000}, "body": {}},
        {},
    ),
    "import-csv-field-over-128-kib": (
        "POST",
        "/api/v1/units/import",
        {"headers": {"Content-Type": "text/csv"}},
        {"data": b"code,name,kind\nA," + b"x" * 140_000 + b",other\n"},
    ),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases_never_fail_and_errors_are_problems(
    name: str, fuzz_app: Litestar, admin_headers: dict[str, str]
) -> None:
    method, path, arguments, transport = EDGE_CASES[name]
    case = schema[path][method].Case(**arguments)
    case.call_and_validate(
        app=fuzz_app, headers=admin_headers, checks=CHECKS, timeout=REQUEST_TIMEOUT, **transport
    )
