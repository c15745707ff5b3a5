"""Hostile input at the boundary, one rule for every endpoint:

1. JSON nested deeper than 64 levels is refused (400, naming the body) before it is decoded, and
   no traceback is logged for it;
2. numeric headers (Content-Length, Upload-Length, Upload-Offset) are ASCII digits, at most 18 of
   them (400 naming the header);
3. more than 100 header fields, or more than 16 KiB of them, are refused with 431 by the app, and
   `inspection serve` cuts a huge header off in the server before it is buffered;
4. text holds no control characters but tab, line feed and carriage return (400 naming the
   field, on SQLite as on PostgreSQL), and every incoming string is NFC.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import subprocess
import time
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar import Litestar, get
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from inspection.web.http import takes_json_body
from tests.asgi import in_app_loop
from tests.helpers import Api, build_world, finding_body, on_site, problem
from tests.served import serving

UNITS = "/api/v1/units"
DEEP = 1000  # as observed from outside: 500 on every JSON endpoint


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nfd(text: str) -> str:
    """`text` as some Vietnamese keyboards send it: base letters and combining marks."""
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    return decomposed


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Bad input is not a bug: nothing is logged with a trace, nothing at ERROR."""
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]
    assert "Traceback" not in caplog.text


async def raw(
    client: AsyncTestClient[Litestar],
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    query: bytes = b"",
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One ASGI request with headers exactly as given (bytes, any encoding, any number): what
    an HTTP client library will not send. Run on the loop of the app under `client` (its
    database connections live there). Returns the status, headers and the JSON body."""
    return await in_app_loop(client, _raw, client.app, method, path, headers, body, query)


async def _raw(
    app: Litestar,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    query: bytes = b"",
) -> tuple[int, dict[str, str], dict[str, Any]]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, json.loads(content) if content else {}


def bearer(api: Api) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {api.token}".encode())


# --- 1. depth ------------------------------------------------------------------------------------


def json_operations(app: Litestar) -> Iterator[tuple[str, str]]:
    """(method, path) of every operation whose body Litestar decodes as JSON, path parameters
    filled in with well-formed values."""
    fillers = {"uuid": lambda: str(uuid.uuid4()), "str": lambda: "C01", "int": lambda: "1"}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = re.sub(r"\{\w+:(\w+)\}", lambda m: fillers[m.group(1)](), route.path)
        for handler in route.route_handlers:
            if isinstance(handler, HTTPRouteHandler) and takes_json_body(handler):
                for method in sorted(handler.http_methods):
                    yield method, path


def assert_too_deep(response: httpx.Response, field: str = "body") -> None:
    body = problem(response, 400)
    assert body["type"] == "/problems/validation"
    assert body["errors"][0]["field"] == field, body
    assert "deeper than 64" in body["errors"][0]["message"], body


async def test_deep_json_is_400_on_every_json_operation(
    api: Api, app: Litestar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    operations = list(json_operations(app))
    assert ("POST", "/api/v1/auth/token") in operations and len(operations) > 20
    for method, path in operations:
        response = await api.request(
            method, path, content=deep_array(DEEP), headers={"Content-Type": "application/json"}
        )
        assert_too_deep(response)
    # Nested inside an object, and on the import, which reads its body itself.
    nested = b'{"units": ' + deep_array(DEEP) + b"}"
    for path in ("/api/v1/units", "/api/v1/units/import", "/api/v1/sync"):
        assert_too_deep(
            await api.post(path, content=nested, headers={"Content-Type": "application/json"})
        )
    # Without a token, the sign-in itself: 200 such requests log nothing at all.
    for _ in range(200):
        response = await api.client.post(
            "/api/v1/auth/token",
            content=b'{"username": ' + deep_array(DEEP) + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert_too_deep(response)
    no_traceback(caplog)


async def test_depth_limit_is_64_levels(api: Api) -> None:
    # An object, a list, an object, then 61 arrays: 64 levels in all.
    at_limit = b'{"units": [{"code": ' + deep_array(61) + b"}]}"
    response = await api.post(
        "/api/v1/units/import", content=at_limit, headers={"Content-Type": "application/json"}
    )
    body = problem(response, 422)  # decoded, then refused by the schema
    assert "deeper" not in body["detail"]
    over = b'{"units": [{"code": ' + deep_array(62) + b"}]}"
    assert_too_deep(
        await api.post(
            "/api/v1/units/import", content=over, headers={"Content-Type": "application/json"}
        )
    )


async def test_deep_meta_parts_are_refused_without_a_trace(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """The evidence `meta` part and the direct upload's `meta` are JSON too."""
    from tests.test_evidence import scene

    caplog.set_level(logging.INFO)
    s = await scene(api)
    inspector = await api.as_user("inspector")
    deep_meta = b'{"caption": ' + deep_array(DEEP) + b"}"
    response = await inspector.put(
        f"{s.url}/{uuid.uuid4()}",
        files={"file": ("a.jpg", b"\xff\xd8\xff", "image/jpeg"), "meta": (None, deep_meta)},
    )
    assert response.status_code in (400, 422), response.text
    direct = await inspector.post(
        "/api/v1/evidence/uploads",
        content=b'{"evidence_id": "%s", "finding_id": "%s", "meta": %s}'
        % (str(uuid.uuid4()).encode(), s.finding_id.encode(), deep_meta),
        headers={"Content-Type": "application/json"},
    )
    assert_too_deep(direct)
    no_traceback(caplog)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def test_depth_scan_reads_strings_and_escapes() -> None:
    from inspection.web.http import json_too_deep

    assert not json_too_deep(b'"[[[[[[[[[["', 3)
    assert not json_too_deep(b'["\\"[[[[[[", "\\\\", [[]]]', 3)
    assert json_too_deep(b'["\\\\", [[[]]]]', 3)
    assert not json_too_deep(b'{"a": {"b": {"c": 1}}}', 3)
    assert json_too_deep(b'{"a": {"b": {"c": {}}}}', 3)
    assert not json_too_deep(b"[" * 64 + b"]" * 64)
    assert json_too_deep(b"[" * 65 + b"]" * 65)
    assert json_too_deep(b"[" * 10_000_000)  # unbalanced, and still answered at once
    assert not json_too_deep(b'["' + b"[" * 100)  # an unterminated string is all string


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n\u00e9'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=40,
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(_json, st.integers(min_value=0, max_value=8))
def test_depth_scan_agrees_with_the_decoder(value: Any, limit: int) -> None:
    from inspection.web.http import json_too_deep

    raw = json.dumps(value).encode()
    assert json_too_deep(raw, limit) == (_depth(value) > limit)


def test_depth_scan_of_a_megabyte_is_cheap() -> None:
    """The scan runs on every JSON body with more than 64 brackets; measured here on 1 MB bodies
    of the shapes that cost it most (numbers in docs/api.md)."""
    from inspection.web.http import json_too_deep

    item = {
        "title": 'Yêu cầu "nộp thêm" [bản sao] {hộ khẩu}',
        "position": {"lat": 21.59, "lon": 105.84},
        "officials": [{"name": "Nguyễn Văn A"}],
    }
    shapes = {
        "sync batch": json.dumps({"findings": [item] * 5000}, ensure_ascii=False).encode(),
        "empty arrays": b"[" + b",".join([b"[]"] * 350_000) + b"]",
        "64 deep, repeated": b"[" + b",".join([b"[" * 62 + b"]" * 62] * 8000) + b"]",
        "escaped strings": json.dumps(['\\"[{' * 20] * 10_000).encode(),
    }
    for name, raw in shapes.items():
        assert len(raw) >= 700_000, name
        started = time.perf_counter()
        assert not json_too_deep(raw), name
        elapsed = time.perf_counter() - started
        # Generous for a shared CI machine; typically 5-20 ms.
        assert elapsed < 0.25, (name, elapsed)


# --- 2. numeric headers --------------------------------------------------------------------------

BAD_NUMBERS = [
    "²".encode("latin-1"),  # str.isdigit() says yes, int() says no
    b"1" * 4301,  # past int()'s 4300-digit limit
    b"1" * 19,  # more than any length or offset can be
    b"+5",
    b"-5",
    b"0x10",
    b"1e3",
    b"1_000",
    b"",
    b"5, 5",
]


async def test_tus_numeric_headers_are_ascii_digits(
    api: Api, app: Litestar, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.test_evidence import scene

    caplog.set_level(logging.INFO)
    s = await scene(api)
    inspector = await api.as_user("inspector")
    tus = [(b"tus-resumable", b"1.0.0"), bearer(inspector)]
    pairs = {"finding_id": s.finding_id, "evidence_id": str(uuid.uuid4())}
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())
    for value in BAD_NUMBERS:
        status, _, body = await raw(
            api.client,
            "POST",
            "/api/v1/uploads",
            [*tus, (b"upload-length", value), (b"upload-metadata", meta.encode())],
        )
        assert status == 400, (value[:20], body)
        assert body["errors"][0]["field"] == "Upload-Length", body
    # Eighteen digits are a number, just far over the limit.
    status, _, body = await raw(
        api.client,
        "POST",
        "/api/v1/uploads",
        [*tus, (b"upload-length", b"9" * 18), (b"upload-metadata", meta.encode())],
    )
    assert status == 413, body
    created = await inspector.post(
        "/api/v1/uploads",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10", "Upload-Metadata": meta},
    )
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    for value in BAD_NUMBERS:
        status, _, body = await raw(
            api.client,
            "PATCH",
            location,
            [
                *tus,
                (b"content-type", b"application/offset+octet-stream"),
                (b"upload-offset", value),
            ],
            b"0123456789",
        )
        assert status == 400, (value[:20], body)
        assert body["errors"][0]["field"] == "Upload-Offset", body
    no_traceback(caplog)


async def test_content_length_is_ascii_digits_everywhere(
    api: Api, app: Litestar, caplog: pytest.LogCaptureFixture
) -> None:
    """Read by the upload handlers themselves: checked once, for every request."""
    caplog.set_level(logging.INFO)
    targets = [
        ("PUT", f"/api/v1/findings/{uuid.uuid4()}/evidence/{uuid.uuid4()}"),
        ("PUT", f"/api/v1/evidence/uploads/{uuid.uuid4()}/content"),
        ("PATCH", f"/api/v1/uploads/{uuid.uuid4()}"),
        ("POST", UNITS),
        ("GET", "/health/live"),
    ]
    for method, path in targets:
        for value in BAD_NUMBERS:
            status, _, body = await raw(
                api.client,
                method,
                path,
                [
                    bearer(api),
                    (b"tus-resumable", b"1.0.0"),
                    (b"content-type", b"application/offset+octet-stream"),
                    (b"content-length", value),
                ],
                b"x",
            )
            assert status == 400, (method, path, value[:20], body)
            assert body["errors"][0]["field"] == "Content-Length", body
    no_traceback(caplog)


# --- 3. header size and count --------------------------------------------------------------------


async def test_too_many_or_too_large_headers_are_431(client: AsyncTestClient[Litestar]) -> None:
    many = [(f"x-h{n}".encode(), b"1") for n in range(100)]
    status, _, _ = await raw(client, "GET", "/health/live", many[:98])
    assert status == 200  # 98 + host = 99 fields
    status, headers, body = await raw(client, "GET", "/health/live", many)
    assert status == 431, body
    assert headers["content-type"].startswith("application/problem+json")
    assert body["type"] == "/problems/headers-too-large" and "100" in body["detail"]
    status, _, body = await raw(client, "GET", "/health/live", [(b"cookie", b"a" * 16 * 1024)])
    assert status == 431 and "16 KiB" in body["detail"], body
    status, _, _ = await raw(client, "GET", "/health/live", [(b"cookie", b"a" * 15 * 1024)])
    assert status == 200


def _rss_kib(pid: int) -> int:
    """Resident memory of `pid` and its children (uvicorn serves in the same process with one
    worker, but count children in case)."""
    total = 0
    for candidate in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{candidate}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return total


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`inspection serve` on a free loopback port, SQLite in a temporary folder."""
    with serving(tmp_path / "var") as running:
        yield running


def _send_huge_header(port: int, size: int) -> tuple[bytes, int, float]:
    """Send a request whose one header is `size` bytes, as long as the server reads; returns
    what it answered, how many header bytes it took, and how long that lasted."""
    chunk = b"a" * (64 * 1024)
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        try:
            while sent < size:
                connection.sendall(chunk)
                sent += len(chunk)
            connection.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused: the server closed the connection while we were still sending
        answer = b""
        try:
            while data := connection.recv(65536):
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent, time.monotonic() - started


def test_serve_refuses_a_huge_header_in_the_server(
    served: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, process = served
    before = _rss_kib(process.pid)
    answer, sent, elapsed = _send_huge_header(port, 64 * 1024 * 1024)
    status = answer.split(b"\r\n", 1)[0]
    assert not status.startswith(b"HTTP/1.1 200"), status
    assert status == b"" or re.match(rb"HTTP/1\.1 (400|431) ", status), status
    assert elapsed < 3, elapsed
    assert sent < 8 * 1024 * 1024, sent  # it stopped reading long before the end
    assert _rss_kib(process.pid) - before < 20 * 1024
    # The server still answers everyone else.
    assert httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5).status_code == 200


# --- 4. control characters and NFC ---------------------------------------------------------------


def assert_control_refused(response: httpx.Response, field: str, source: str = "body") -> None:
    body = problem(response, 400)
    assert body["type"] == "/problems/validation", body
    error = body["errors"][0]
    assert (error["field"], error.get("source")) == (field, source), body
    assert "control character" in error["message"], body


async def test_control_characters_are_refused_with_the_field_named(api: Api) -> None:
    for bad in ("La\x00Hiên", "\x1b[31mđỏ", "a\x08", "x\x0c", "\x7f", "\x85"):
        assert_control_refused(
            await api.post(UNITS, json={"code": "P", "name": bad, "kind": "province"}), "name"
        )
    assert (await api.get(UNITS)).json()["items"] == []
    # Keys too, and nested fields by their path.
    assert_control_refused(
        await api.post(UNITS, json={"code": "P", "name": "P", "kind": "province", "a\x00": 1}),
        "a\\u0000",
    )
    world = await build_world(api)
    visit = await on_site(api, world)
    inspector = await api.as_user("inspector")
    item = {**finding_body(visit), "id": str(uuid.uuid4()), "description": "một\x00hai"}
    assert_control_refused(
        await inspector.post("/api/v1/sync", json={"findings": [item]}), "findings[0].description"
    )
    import_rows = [{"code": "Q", "name": "Q\x00", "kind": "province"}]
    assert_control_refused(
        await api.post("/api/v1/units/import", json={"units": import_rows}), "units[0].name"
    )
    # Query parameters.
    assert_control_refused(await api.get(UNITS, params={"q": "vo\x00nhai"}), "q", "query")
    # Tab, line feed and carriage return are text.
    fine = {**finding_body(visit), "description": "Dòng một\r\nDòng hai\tcột"}
    created = await inspector.put(f"/api/v1/findings/{uuid.uuid4()}", json=fine)
    assert created.status_code == 201, created.text
    assert created.json()["description"] == "Dòng một\r\nDòng hai\tcột"


async def test_control_characters_in_upload_metadata_and_meta(api: Api) -> None:
    from tests.test_evidence import scene

    s = await scene(api)
    inspector = await api.as_user("inspector")
    pairs = {"finding_id": s.finding_id, "evidence_id": str(uuid.uuid4()), "caption": "a\x00b"}
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())
    tus = await inspector.post(
        "/api/v1/uploads",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10", "Upload-Metadata": meta},
    )
    assert_control_refused(tus, "Upload-Metadata.caption", "header")
    direct = await inspector.post(
        "/api/v1/evidence/uploads",
        json={
            "finding_id": s.finding_id,
            "evidence_id": str(uuid.uuid4()),
            "meta": {"caption": "a\x00b"},
        },
    )
    assert_control_refused(direct, "meta.caption")


async def test_control_characters_in_the_multipart_meta_part(api: Api) -> None:
    from tests import images
    from tests.test_evidence import scene

    s = await scene(api)
    inspector = await api.as_user("inspector")
    response = await inspector.put(
        f"{s.url}/{uuid.uuid4()}",
        files={
            "file": ("a.jpg", images.jpeg(), "image/jpeg"),
            "meta": (None, json.dumps({"caption": "a\x00b"}), "application/json"),
        },
    )
    assert_control_refused(response, "meta.caption")


async def test_text_is_stored_nfc_and_found_either_way(api: Api) -> None:
    name = "Huyện Võ Nhai"
    created = await api.post(UNITS, json={"code": "P-D1", "name": nfd(name), "kind": "district"})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name  # NFC
    unit_id = created.json()["id"]
    assert (await api.get(f"{UNITS}/{unit_id}")).json()["name"] == name
    for query in (name, nfd(name), "Võ Nhai", nfd("Võ Nhai"), "vo nhai"):
        found = (await api.get(UNITS, params={"q": query})).json()["items"]
        assert [u["id"] for u in found] == [unit_id], query
    renamed = await api.patch(
        f"{UNITS}/{unit_id}", json={"name": nfd("Huyện Đại Từ")}, headers={"If-Match": '"1"'}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Huyện Đại Từ"
    # The JSON import and the CSV import, which read their bodies themselves.
    rows = [{"code": "Q", "name": nfd("Tỉnh Quảng Ninh"), "kind": "province"}]
    imported = await api.post("/api/v1/units/import", json={"units": rows})
    assert imported.status_code == 201, imported.text
    csv = "code,name,kind,parent_code\n" + f"Q-1,{nfd('Xã Phúc Lương')},commune,Q\n"
    imported = await api.post(
        "/api/v1/units/import", content=csv.encode(), headers={"Content-Type": "text/csv"}
    )
    assert imported.status_code == 201, imported.text
    names = {u["code"]: u["name"] for u in (await api.get(UNITS)).json()["items"]}
    assert names["Q"] == "Tỉnh Quảng Ninh" and names["Q-1"] == "Xã Phúc Lương"
    # Keys are normalised too: a decomposed key is the same unknown field as a composed one.
    odd = await api.post(UNITS, json={"code": "R", "name": "R", "kind": "province", nfd("tên"): 1})
    assert problem(odd, 400)["errors"][0]["field"] == "tên"


async def test_query_and_path_strings_reach_handlers_nfc() -> None:
    """The rule itself, on a bare app: every query and path string a handler receives."""
    from inspection.web.http import IncomingTextMiddleware, InspectionRequest
    from inspection.web.problems import exception_handlers

    @get("/echo/{word:str}", sync_to_thread=False)
    def echo(word: str, q: str, many: list[str]) -> dict[str, Any]:
        return {"word": word, "q": q, "many": many}

    app = Litestar(
        [echo],
        request_class=InspectionRequest,
        middleware=[IncomingTextMiddleware()],
        exception_handlers=exception_handlers,
    )
    async with AsyncTestClient(app) as client:
        response = await client.get(
            f"/echo/{nfd('Nhài')}",
            params=[("q", nfd("Võ Nhai")), ("many", nfd("Đắk")), ("many", "ả")],
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"word": "Nhài", "q": "Võ Nhai", "many": ["Đắk", "ả"]}
        assert all(unicodedata.is_normalized("NFC", v) for v in json.loads(response.text)["many"])
        # Raw UTF-8 in the query (what curl sends), decomposed: read as UTF-8, then NFC.
        status, _, body = await _raw(
            app, "GET", "/echo/x", [], query=nfd("q=Võ Nhai&many=Đắk").encode()
        )
        assert (status, body) == (200, {"word": "x", "q": "Võ Nhai", "many": ["Đắk"]})
        refused = await client.get("/echo/x", params={"q": "\x01", "many": "a"})
        assert_control_refused(refused, "q", "query")
        refused = await client.get("/echo/a%00b", params={"q": "a", "many": "a"})
        assert_control_refused(refused, "word", "path")


_TRICKY = (
    'aeno=<"\\/\n\t\r\x00\x08\x0c\x1b\x7f\x85\u0301\u0303\u0323\u0338\u1100\u1161\u0cc6\u0cc2ñ'
)


def _reference(value: Any) -> Any:
    """What the rule makes of a decoded value, string by string."""
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, list):
        return [_reference(v) for v in value]
    if isinstance(value, dict):
        return {nfc(k): _reference(v) for k, v in value.items()}
    return value


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    st.recursive(
        st.text(alphabet=_TRICKY, max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text(alphabet=_TRICKY, max_size=4), inner, max_size=3)
        ),
        max_leaves=12,
    ),
    st.booleans(),
)
def test_every_string_of_a_body_is_checked_and_nfc(value: Any, ascii_escapes: bool) -> None:
    """The whole-text shortcut (most bodies) and the walk agree with the rule applied to each
    string, however the JSON is written (characters as they are, or `\\u` escapes)."""
    from litestar.exceptions import ValidationException

    from inspection.web.http import decode_json

    raw = json.dumps(value, ensure_ascii=ascii_escapes).encode()
    controls = any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in _all_text(value))
    if controls:
        with pytest.raises(ValidationException):
            decode_json(raw)
        return
    decoded, changed = decode_json(raw)
    assert decoded == _reference(value)
    assert changed == (decoded != value)


def _all_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_all_text(v) for v in value)
    if isinstance(value, dict):
        return "".join(k + _all_text(v) for k, v in value.items())
    return ""


def test_the_text_rule() -> None:
    from litestar.exceptions import ValidationException

    from inspection.web.http import clean_text

    assert clean_text(nfd("Võ Nhai"), "name", "body") == "Võ Nhai"
    assert clean_text("tab\tline\nreturn\r", "name", "body") == "tab\tline\nreturn\r"
    controls = [c for c in map(chr, range(0xA0)) if unicodedata.category(c) == "Cc"]
    assert len(controls) == 65
    for control in controls:
        if control in "\t\n\r":
            assert clean_text(control, "name", "body") == control
            continue
        with pytest.raises(ValidationException):
            clean_text(f"a{control}b", "name", "body")
    # Format characters are text (the zero-width joiner of some scripts), as are separators.
    assert clean_text("a\u200db\u2028", "name", "body") == "a\u200db\u2028"
