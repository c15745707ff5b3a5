"""The seal of unannounced inspections and the unit scopes, attacked through the reports, in every
format (JSON, CSV, XLSX, PDF).

The rule (docs/access.md, docs/reports.md): a unit head's report covers their subtree only, and
of an unannounced visit it shows nothing - no count, unit, date, category, action, row, page or
byte - until that visit (or one in the head's subtree) is checked in. The oracle is the one of
test_confidentiality.py: whole answers compared before and after, never a single figure.

Every probe (viewer x report x parameters x format) is read at every stage:

1. before the plan exists;
2. once the unannounced plan (C1 on 10-12 March, C3 on 20-22 March) is approved;
3. once the team has worked at the first target (check-in, a finding, an action, a conclusion);
4. once it has worked at the second target.

A probe's answer may depend only on the worked targets it legitimately covers (a unit in the
report's subtree, checked in on a day of the report's period). So at each stage it must equal the
answer it gave at any earlier stage with the same covered set, and it must differ from its sealed
answer once that set is not empty (so the probes are known to see what they are meant to). The
targets are worked in both orders, so each head also watches the team work at the *other*
target first. Planners and leaders are the control: their reports change at approval.

What is compared: the status, media type, `Content-Disposition`, `Content-Length`, the byte size
and the number of rows or pages (size channels), and the content: JSON without `generated_at`;
CSV as text; XLSX as the values of every cell of every sheet plus the charts' XML (openpyxl);
PDF as pypdf's text without the "Lập lúc …" line, and its page count. The app's clock is fixed,
so the generation time and the reader's name are constant anyway.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pypdf
from httpx import Response
from litestar import Litestar

from tests.helpers import Api, World, build_world, create_checklist, etag_of, plan_body, problem

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
# Reports are read on 25 March 2026 at 10:00 local time, after every visit; no microseconds, so
# generated_at, the XLSX's creation date and the PDF's are the same at every stage.
CLOCK = datetime(2026, 3, 25, 10, 0, tzinfo=ZONE)
RANDOM_ID = "00000000-0000-7000-8000-00000000beef"
POSITION = {"lat": 21.6, "lon": 105.8, "accuracy_m": 10}

UNIT_KEYS = ("P", "SNV", "D1", "D2", "C1", "C2", "C3")
SUBTREE: dict[str, frozenset[str]] = {
    "P": frozenset(UNIT_KEYS),
    "SNV": frozenset({"SNV"}),
    "D1": frozenset({"D1", "C1", "C2"}),
    "D2": frozenset({"D2", "C3"}),
    "C1": frozenset({"C1"}),
    "C2": frozenset({"C2"}),
    "C3": frozenset({"C3"}),
}
# Plain unit heads: the head of the target C1, of its district D1, of the untargeted sibling C2
# and of the other target C3 (in the other district).
HEADS: dict[str, str] = {"head.c1": "C1", "head.d1": "D1", "head.c2": "C2", "head.c3": "C3"}
# Those who see the plan from its approval: they prove the probes work.
CONTROLS: dict[str, str] = {"leader": "P", "planner": "P"}
# The targets' windows (plan_body's defaults) and the days the team works there.
WORK_DAY: dict[str, str] = {"C1": "2026-03-10", "C3": "2026-03-20"}
PERIODS: dict[str, tuple[str, str] | None] = {
    "year": None,  # the default: the current local year
    "c1_window": ("2026-03-10", "2026-03-12"),  # exactly the sealed visit's window
    "c3_window": ("2026-03-20", "2026-03-22"),
    "everything": ("1900-01-01", "8999-12-31"),  # the widest range allowed
}
FORMATS = ("json", "csv", "xlsx", "pdf")
REPORTS = ("summary", "scorecard", "findings", "discipline")
OWN_WINDOW = {"C3": "c3_window"}  # everyone else watches C1's window


def set_clock(app: Litestar, moment: datetime) -> None:
    """Fix the app's clock at `moment`."""
    app.state.clock = lambda: moment.astimezone(UTC)


# --- probes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request a viewer makes: a report, its unit (`under`, or the scorecard's unit), a
    period and a format."""

    viewer: str
    report: str  # "summary" | "scorecard" | "findings" | "discipline"
    unit: str | None  # `under`, or the scorecard's unit; None: no `under`, the home unit's card
    period: str
    fmt: str

    def url(self, units: dict[str, dict[str, Any]]) -> str:
        """The report's path."""
        if self.report == "scorecard":
            return f"/api/v1/reports/units/{units[self.root]['id']}/scorecard"
        return f"/api/v1/reports/{self.report}"

    def params(self, units: dict[str, dict[str, Any]]) -> dict[str, str]:
        """The query parameters."""
        params: dict[str, str] = {"format": self.fmt}
        span = PERIODS[self.period]
        if span is not None:
            params["from"], params["to"] = span
        if self.unit is not None and self.report != "scorecard":
            params["under"] = units[self.unit]["id"]
        return params

    @property
    def root(self) -> str:
        """The unit whose subtree the report covers."""
        return self.unit or {**HEADS, **CONTROLS}[self.viewer]

    def covered(self, worked: list[str]) -> frozenset[str]:
        """The worked targets this probe may legitimately show: in the report's subtree and
        worked on a day of its period."""
        span = PERIODS[self.period]
        first, last = span or ("2026-01-01", "2026-12-31")
        return frozenset(
            unit
            for unit in worked
            if unit in SUBTREE[self.root] and first <= WORK_DAY[unit] <= last
        )

    def shows(self, covered: frozenset[str]) -> bool:
        """Whether the answer must change when `covered` is not empty: the register has no PDF
        (a constant 400); the summary's CSV is its `by_unit` table alone, whose rows are the
        root's children, so a worked root itself shows only in the other formats."""
        if self.report == "findings" and self.fmt == "pdf":
            return False
        if self.report == "summary" and self.fmt == "csv":
            return any(unit != self.root for unit in covered)
        if self.report == "discipline" and self.fmt == "csv":
            return False  # the CSV is the list of deadlines, and the team proposes no one here
        return bool(covered)


def probes(viewers: dict[str, str]) -> list[Probe]:
    """For each viewer: every report in every format at the default period, the sealed windows
    and the widest range; and at the default period with `under` (or as the scorecard) each unit
    they see. PDFs, the slow format (about 0.3 s each), are read at the default period and the
    window of the viewer's own target (or of the sealed target C1) only: the range is the
    queries' business, and JSON, CSV and XLSX read every one of them."""
    made: list[Probe] = []
    for viewer, home in viewers.items():
        units = sorted(SUBTREE[home]) if home != "P" else ["P", "D1", "C1"]
        for fmt in FORMATS:
            periods = PERIODS if fmt != "pdf" else ("year", OWN_WINDOW.get(home, "c1_window"))
            for period in periods:
                made += [Probe(viewer, report, None, period, fmt) for report in REPORTS]
            for unit in units:
                if unit == home and fmt in ("xlsx", "pdf"):
                    continue  # the default scope in JSON and CSV, and above in every format
                made += [
                    Probe(viewer, report, unit, "year", fmt)
                    for report in REPORTS
                    if not (report == "scorecard" and unit == home)
                ]
    return made


# --- answers, normalised -----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A response reduced to what may not change before check-in."""

    status: int
    media_type: str
    disposition: str | None
    content_length: str | None
    size: int  # bytes of the body
    count: int  # rows (JSON register items, CSV lines, XLSX rows) or PDF pages
    content: Any


def _json_content(body: Any) -> Any:
    """A JSON answer without its generation time."""
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k != "generated_at"}
    return body


def _xlsx_content(data: bytes) -> tuple[int, Any]:
    """Every cell value of every sheet (the generation time's line blanked) and the charts' XML;
    and the number of rows."""
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    sheets: dict[str, list[tuple[Any, ...]]] = {}
    for sheet in book.worksheets:
        sheets[sheet.title] = [
            tuple("Lập lúc …" if isinstance(c, str) and c.startswith("Lập lúc") else c for c in row)
            for row in sheet.iter_rows(values_only=True)
        ]
    book.close()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        charts = {
            name: archive.read(name).decode()
            for name in sorted(archive.namelist())
            if name.startswith("xl/charts/")
        }
    return sum(len(rows) for rows in sheets.values()), {"sheets": sheets, "charts": charts}


class PdfText:
    """A PDF's text as pypdf extracts it, without the generation time's line, compared lazily:
    equal bytes are equal text, and the text (slower to extract than the PDF is to render) is
    extracted only when two bodies differ."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.digest = hashlib.sha256(data).digest()
        self._text: list[str] | None = None

    @property
    def text(self) -> list[str]:
        """Each page's text."""
        if self._text is None:
            self._text = [
                "\n".join(
                    line
                    for line in page.extract_text().splitlines()
                    if not line.startswith("Lập lúc")
                )
                for page in pypdf.PdfReader(io.BytesIO(self.data)).pages
            ]
        return self._text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PdfText):
            return NotImplemented
        return self.digest == other.digest or self.text == other.text

    def __hash__(self) -> int:
        return 0  # equal texts may come from different bytes

    def __repr__(self) -> str:
        return f"PdfText({self.text!r})"


def answer(response: Response) -> Answer:
    """`response` as an `Answer`."""
    media = response.headers.get("content-type", "")
    data = response.content
    count: int
    content: Any
    if response.status_code != 200 or media.startswith("application/json"):
        body = response.json()
        content = _json_content(body)
        count = len(body["items"]) if isinstance(body, dict) and "items" in body else 0
    elif media.startswith("text/csv"):
        content = data.decode("utf-8-sig")
        count = content.count("\r\n")
    elif "spreadsheetml" in media:
        count, content = _xlsx_content(data)
    else:
        assert media == "application/pdf", media
        count, content = len(pypdf.PdfReader(io.BytesIO(data)).pages), PdfText(data)
    return Answer(
        response.status_code,
        media,
        response.headers.get("content-disposition"),
        response.headers.get("content-length"),
        len(data),
        count,
        content,
    )


def _differences(was: Answer, now: Answer) -> list[str]:
    """What differs between two answers (for the failure message)."""
    return [
        name for name in Answer.__dataclass_fields__ if getattr(was, name) != getattr(now, name)
    ]


# --- the world and the plan --------------------------------------------------------------------


@dataclass
class Case:
    """One world, the viewers signed in, the plan, and every probe's answers so far."""

    app: Litestar
    admin: Api
    world: World
    units: dict[str, dict[str, Any]]
    users: dict[str, Api]
    plan: dict[str, Any] = field(default_factory=dict)
    worked: list[str] = field(default_factory=list)
    # probe -> covered set -> the answer given while exactly that set was covered
    seen: dict[Probe, dict[frozenset[str], Answer]] = field(default_factory=dict)

    def visit_id(self, unit: str) -> str:
        """The id of the plan's visit to `unit`."""
        unit_id = self.units[unit]["id"]
        return str(next(v["id"] for v in self.plan["visits"] if v["unit_id"] == unit_id))


async def make_case(api: Api, app: Litestar) -> Case:
    """The standard world with heads of C2 and C3 too, every viewer signed in, the clock fixed."""
    set_clock(app, CLOCK)
    world = await build_world(api)
    for name, key in (("head.c2", "c2"), ("head.c3", "c3")):
        unit = getattr(world, key)
        world.users[name] = await api.create_user(name, [("unit_head", unit["id"])], unit["id"])
    units = {
        "P": world.province,
        "SNV": world.snv,
        "D1": world.d1,
        "D2": world.d2,
        "C1": world.c1,
        "C2": world.c2,
        "C3": world.c3,
    }
    names = (*HEADS, *CONTROLS, "inspector", "inspector2")
    users = {name: await api.as_user(name) for name in names}
    return Case(app, api, world, units, users)


async def approve_plan(case: Case) -> None:
    """The province's unannounced plan for C1 (10-12 March) and C3 (20-22 March), approved."""
    planner = case.users["planner"]
    checklist = await create_checklist(case.admin)
    created = await planner.post(
        "/api/v1/plans", json=plan_body(case.world, checklist["id"], kind="unannounced")
    )
    assert created.status_code == 201, created.text
    approved = await planner.post(
        f"/api/v1/plans/{created.json()['id']}/approve",
        headers={"If-Match": created.headers["ETag"]},
    )
    assert approved.status_code == 200, approved.text
    case.plan = approved.json()


async def work_at(case: Case, unit: str) -> None:
    """The team at `unit` on its work day: check-in, a submitted finding, a corrective action
    for the unit's head, every criterion answered, check-out and the conclusion."""
    lead, member = case.users["inspector"], case.users["inspector2"]
    visit = f"/api/v1/visits/{case.visit_id(unit)}"
    day = WORK_DAY[unit]
    checked_in = await lead.post(
        f"{visit}/check-in",
        json={"position": POSITION, "at": f"{day}T09:00:00+07:00"},
        headers={"If-Match": await etag_of(lead, visit)},
    )
    assert checked_in.status_code == 200, checked_in.text
    finding = f"/api/v1/findings/{uuid.uuid4()}"
    created = await member.put(
        finding,
        json={
            "visit_id": case.visit_id(unit),
            "criterion_code": "C02",
            "category": "extra_documents_requested",
            "severity": "major",
            "title": f"Yêu cầu nộp thêm giấy tờ tại {case.units[unit]['name']}",
            "description": "Yêu cầu thêm giấy tờ không có trong thành phần hồ sơ.",
            "observed_at": f"{day}T09:41:00+07:00",
            "position": POSITION,
            "officials": [{"name": "Nguyễn Văn A", "position": "Công chức một cửa"}],
            "recommendation": "Chấm dứt ngay.",
        },
    )
    assert created.status_code == 201, created.text
    submitted = await lead.post(
        f"{finding}/submit", headers={"If-Match": await etag_of(lead, finding)}
    )
    assert submitted.status_code == 200, submitted.text
    action = await lead.post(
        f"{finding}/actions",
        json={
            "requirement": "Chấn chỉnh ngay",
            "unit_id": case.units[unit]["id"],
            "assignee_id": case.world.users[f"head.{unit.lower()}"]["id"],
            "due_date": "2026-04-30",
            "priority": "high",
        },
    )
    assert action.status_code == 201, action.text
    for code, result in (("C01", "pass"), ("C02", "fail"), ("C03", "pass")):
        answered = await lead.put(f"{visit}/responses/{code}", json={"result": result})
        assert answered.status_code == 201, answered.text
    for step, body in (("check-out", {}), ("conclude", {"conclusion": "Cơ bản đạt yêu cầu."})):
        moved = await lead.post(
            f"{visit}/{step}", json=body, headers={"If-Match": await etag_of(lead, visit)}
        )
        assert moved.status_code == 200, moved.text
    case.worked.append(unit)


# --- reading every probe -----------------------------------------------------------------------


async def read(case: Case, probe: Probe) -> Answer:
    """The probe's answer now."""
    user = case.users[probe.viewer]
    response = await user.get(probe.url(case.units), params=probe.params(case.units))
    assert response.status_code != 500, response.text
    if probe.report == "findings" and probe.fmt == "pdf":
        problem(response, 400)
    else:
        assert response.status_code == 200, (probe, response.text)
    return answer(response)


async def check_stage(case: Case, stage: str, all_probes: list[Probe]) -> list[str]:
    """Read every probe; return what breaks the rule (answers that changed while the covered set
    did not, and answers that did not change though it did)."""
    broken: list[str] = []
    for probe in all_probes:
        now = await read(case, probe)
        covered = probe.covered(case.worked)
        history = case.seen.setdefault(probe, {})
        if covered in history:
            was = history[covered]
            if now != was:
                broken.append(f"{stage}: {probe} changed {_differences(was, now)}")
            continue
        history[covered] = now
        sealed = history[frozenset()]
        if probe.shows(covered) and now == sealed:
            broken.append(f"{stage}: {probe} did not change though {sorted(covered)} is shown")
        if not probe.shows(covered) and now != sealed:
            broken.append(f"{stage}: {probe} changed {_differences(sealed, now)}")
    return broken


async def _missing(user: Api, report: str, fmt: str, target: str) -> tuple[int, str]:
    """A report naming `target` (as `under`, or the scorecard's unit): it must be a 404; its
    body with the id itself blanked."""
    if report == "scorecard":
        url, params = f"/api/v1/reports/units/{target}/scorecard", {"format": fmt}
    else:
        url, params = f"/api/v1/reports/{report}", {"format": fmt, "under": target}
    response = await user.get(url, params=params)
    problem(response, 404)
    return response.status_code, response.text.replace(target, "<id>")


async def not_found_alike(case: Case, viewer: str, ids: dict[str, str]) -> list[str]:
    """Every report naming each of `ids` (units outside the viewer's subtree, the sealed plan's
    and visits' ids), in every format, must answer the very 404 a random id gets."""
    broken: list[str] = []
    user = case.users[viewer]
    for fmt in FORMATS:
        for report in REPORTS:
            if report == "findings" and fmt == "pdf":
                continue  # a 400 before the unit is looked at
            unknown = await _missing(user, report, fmt, RANDOM_ID)
            for name, target in ids.items():
                if await _missing(user, report, fmt, target) != unknown:
                    broken.append(f"{viewer} {report} {fmt}: {name} answers unlike an unknown id")
    return broken


def hidden_ids(case: Case, viewer: str) -> dict[str, str]:
    """The ids `viewer` must not tell from a random one: units outside their subtree, and the
    plan's and its visits' ids (never unit ids at all)."""
    home = HEADS[viewer]
    ids = {key: case.units[key]["id"] for key in UNIT_KEYS if key not in SUBTREE[home]}
    if case.plan:
        ids["plan"] = case.plan["id"]
        ids |= {f"visit {k}": case.visit_id(k) for k in ("C1", "C3")}
    return ids


# --- the tests ---------------------------------------------------------------------------------


async def test_reports_show_nothing_of_a_sealed_visit_in_any_format(
    api: Api, app: Litestar
) -> None:
    """Every head and every probe through the four stages, the team at C3 first: the heads of
    C1, D1 and C2 watch it work at the other target; then it arrives at C1. The planner and the
    leader are the control."""
    case = await make_case(api, app)
    heads = probes(HEADS)
    # The controls read what the heads read: the leader in every format, the planner in JSON.
    controls = [p for p in probes({"leader": "P"}) if p.unit != "P" or p.fmt == "json"]
    controls += [p for p in probes({"planner": "P"}) if p.fmt == "json"]
    broken = await check_stage(case, "before the plan", heads + controls)
    await approve_plan(case)
    broken += await check_stage(case, "approved", heads)
    # The control: planners and leaders count the visits from the approval, in every format
    # (their register lists findings, of which there are none yet).
    for probe in controls:
        if probe.report in ("findings", "discipline"):
            continue  # both count what the team finds, and it has found nothing yet
        before, now = case.seen[probe][frozenset()], await read(case, probe)
        if probe.shows(probe.covered(["C1", "C3"])) == (now == before):
            broken.append(f"control {probe}: {'un' if now == before else ''}changed at approval")
    for viewer in HEADS:
        broken += await not_found_alike(case, viewer, hidden_ids(case, viewer))
    for unit in ("C3", "C1"):
        await work_at(case, unit)
        broken += await check_stage(case, f"{unit} worked", heads)
    assert not broken, "\n".join(broken)


async def test_the_other_targets_head_sees_nothing_while_the_team_works_at_c1(
    api: Api, app: Litestar
) -> None:
    """The reverse order, for the head of C3 (the other heads were watched above): the team
    works at C1 first, and C3's head sees no change until the team arrives at C3."""
    case = await make_case(api, app)
    heads = probes({"head.c3": "C3"})
    broken = await check_stage(case, "before the plan", heads)
    await approve_plan(case)
    await work_at(case, "C1")
    broken += await check_stage(case, "C1 worked", heads)
    # That the probes see C3's own visit was shown above in every format; here JSON suffices.
    await work_at(case, "C3")
    broken += await check_stage(case, "C3 worked", [p for p in heads if p.fmt == "json"])
    assert not broken, "\n".join(broken)


# --- parameter abuse -------------------------------------------------------------------------

# (parameters, the field the 400 must name): malformed, out of range, inverted, ambiguous.
BAD_PARAMETERS: list[tuple[dict[str, str], str]] = [
    ({"from": "2026-03-12", "to": "2026-03-10"}, "from"),  # inverted: the sealed window reversed
    ({"from": "2027-01-01"}, "from"),  # after the default `to`
    ({"from": "2026-02-30"}, "from"),
    ({"from": "2026-3-10"}, "from"),
    ({"from": "2026-03-10T00:00"}, "from"),
    ({"from": "\uff11\uff19\uff10\uff10-01-01"}, "from"),  # fullwidth digits
    ({"from": "2026-03-10\x00"}, "from"),
    ({"from": "9" * 41}, "from"),  # over the length limit
    ({"to": "0001-01-01"}, "to"),
    ({"to": "1899-12-31"}, "to"),
    ({"to": "9999-12-31"}, "to"),
    ({"to": "x" * 41}, "to"),
    ({"under": "not-a-uuid"}, "under"),
    ({"under": ""}, "under"),
    ({"under": "x" * 5000}, "under"),
    ({"format": "docx"}, "format"),
    ({"format": "JSON"}, "format"),
]


async def test_bad_parameters_are_400_naming_the_field_the_client_sent_never_500(
    api: Api, app: Litestar
) -> None:
    """Every report, every format, for a head while a visit to their unit is sealed and for the
    leader: a 400 naming the query parameter as the client wrote it (`from`, not the handler's
    `first`; `format`, not `fmt`), with the same body for both (the head's answer tells nothing
    a leader's does not)."""
    case = await make_case(api, app)
    await approve_plan(case)
    broken: list[str] = []
    c1 = case.units["C1"]["id"]
    urls = ("/api/v1/reports/summary", f"/api/v1/reports/units/{c1}/scorecard")
    for url in (*urls, "/api/v1/reports/findings"):
        for fmt in FORMATS:
            for params, name in BAD_PARAMETERS:
                if "under" in params and "scorecard" in url:
                    continue  # the scorecard takes no `under`: its unit is in the path
                query = {"format": fmt, **params}
                bodies = []
                for viewer in ("head.c1", "leader"):
                    response = await case.users[viewer].get(url, params=query)
                    assert response.status_code != 500, (url, query, response.text)
                    body = problem(response, 400)
                    bodies.append(body)
                    fields = [e["field"] for e in body.get("errors", [])]
                    # The register has no PDF: `format` is wrong too, and checked first.
                    named = fields == [name] or (
                        "findings" in url and fmt == "pdf" and "format" in fields
                    )
                    if not named:
                        broken.append(f"{url} {str(query)[:80]}: names {fields}, not {name!r}")
                if bodies[0] != bodies[1]:
                    broken.append(f"{url} {str(query)[:80]}: the head's 400 differs")
    assert not broken, "\n".join(sorted(set(broken)))


async def test_a_repeated_parameter_is_never_a_500(api: Api, app: Litestar) -> None:
    """`from`, `under` and `format` given twice: an answer or a 4xx, never a 500; and `under`
    twice cannot widen a head's scope (C2 is outside it): the answer is a 404 or the one for
    C1 alone."""
    case = await make_case(api, app)
    head = case.users["head.c1"]
    c1, c2 = case.units["C1"]["id"], case.units["C2"]["id"]
    for url in ("/api/v1/reports/summary", "/api/v1/reports/findings"):
        for params in (
            [("from", "2026-01-01"), ("from", "2026-03-10")],
            [("format", "csv"), ("format", "xlsx")],
            [("under", c1), ("under", c2)],
            [("under", c2), ("under", c1)],
        ):
            response = await head.get(url, params=params)
            assert response.status_code < 500, (url, params, response.text)
            if any(k == "under" for k, _ in params) and response.status_code == 200:
                alone = await head.get(url, params={"under": c1})
                assert _json_content(response.json()) == _json_content(alone.json())


async def test_pdf_reports_at_any_moment_of_the_clock(api: Api, app: Litestar) -> None:
    """The production clock has microseconds (`datetime.now(UTC)`): every PDF must still render.
    Typst refuses a PDF timestamp with microseconds, which made every PDF download a 500."""
    case = await make_case(api, app)
    set_clock(app, datetime(2026, 3, 25, 10, 0, 0, 123456, tzinfo=ZONE))
    head = case.users["head.c1"]
    for url in (
        "/api/v1/reports/summary",
        f"/api/v1/reports/units/{case.units['C1']['id']}/scorecard",
    ):
        response = await head.get(url, params={"format": "pdf"})
        assert response.status_code == 200, response.text
        assert response.content.startswith(b"%PDF")
        text = "".join(
            p.extract_text() for p in pypdf.PdfReader(io.BytesIO(response.content)).pages
        )
        assert "Lập lúc 10:00 ngày 25/03/2026" in text or "25/03/2026" in text
