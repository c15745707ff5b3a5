"""The discipline report over HTTP: every figure against an independent count of what the test
made, for the province and a district; who reads which officials' names (the head of the unit
concerned, not the heads above, not a neighbouring head); periods; the downloads (CSV BOM and
Vietnamese, XLSX sheets, PDF text); bad input.

The world is `tests.test_reports.standard_case` (C1 and C2 of district D1 inspected, actions
overdue) plus a visit to C3 of district D2 with two findings naming the same official, actions
overdue by a few days and by two weeks, and discipline proposals in every status."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from litestar import Litestar

from inspection.discipline.rules import MEASURE_ORDER, add_years, processing_due_on
from inspection.kit.search import fold
from inspection.web.http import content_disposition
from tests.helpers import Api, etag_of, finding_body, problem
from tests.test_reports import MARCH, NOW, SUBTREE, Maker, report, set_clock, standard_case

TODAY = NOW.date()
YEAR = (date(2026, 1, 1), date(2026, 12, 31))
STATUSES = ("proposed", "decided", "not_pursued", "withdrawn")


@dataclass
class Proposal:
    """What the test proposed, to count independently."""

    id: str
    unit: str
    finding: str
    name: str
    position: str
    measure: str
    violation: date
    detected: date
    status: str = "proposed"
    decided: str | None = None
    decision_number: str | None = None
    decision_date: date | None = None


class Case:
    """`standard_case`, a visit to C3 and the proposals."""

    def __init__(self, m: Maker) -> None:
        self.m = m
        self.proposals: list[Proposal] = []
        # finding id -> names of the officials it names (as written)
        self.officials: dict[str, list[str]] = {}

    async def finding(
        self, visit: dict[str, Any], observed_at: str, names: list[str], category: str = "other"
    ) -> str:
        """A submitted finding naming `names`, recorded in the maker's model."""
        m = self.m
        member, lead = await m.user("inspector2"), await m.user("inspector")
        finding_id = str(uuid.uuid4())
        body = finding_body(visit, category=category, severity="major", observed_at=observed_at)
        body["officials"] = [{"name": n, "position": "Công chức một cửa"} for n in names]
        url = f"/api/v1/findings/{finding_id}"
        assert (await member.put(url, json=body)).status_code == 201
        done = await lead.post(f"{url}/submit", headers={"If-Match": await etag_of(lead, url)})
        assert done.status_code == 200, done.text
        m.model.findings.append(
            {
                "id": finding_id,
                "unit": m.key(visit["unit_id"]),
                "visit": visit["id"],
                "kind": "scheduled",
                "category": category,
                "severity": "major",
                "observed": date.fromisoformat(observed_at[:10]),
                "counted": True,
            }
        )
        self.officials[finding_id] = names
        return finding_id

    async def propose(
        self,
        finding: str,
        unit: str,
        name: str,
        measure: str,
        violation: date,
        detected: date,
        *,
        status: str = "civil_servant",
        post: bool = False,
    ) -> Proposal:
        lead = await self.m.user("inspector")
        position = f"Chức vụ của {name}"
        body = {
            "official": {
                "name": name,
                "position": position,
                "unit_id": self.m.units[unit]["id"],
                "status": status,
                "holds_management_post": post,
            },
            "violation": "Yêu cầu bổ sung giấy tờ ngoài quy định",
            "violation_date": violation.isoformat(),
            "detected_date": detected.isoformat(),
            "proposed_measure": measure,
            "legal_basis": "Nghị định 172/2025/NĐ-CP",
        }
        created = await lead.post(f"/api/v1/findings/{finding}/discipline-proposals", json=body)
        assert created.status_code == 201, created.text
        proposal = Proposal(
            created.json()["id"], unit, finding, name, position, measure, violation, detected
        )
        self.proposals.append(proposal)
        return proposal

    async def move(self, proposal: Proposal, step: str, body: dict[str, Any], by: str) -> None:
        user = await self.m.user(by)
        url = f"/api/v1/discipline-proposals/{proposal.id}"
        moved = await user.post(
            f"{url}/{step}", json=body, headers={"If-Match": await etag_of(user, url)}
        )
        assert moved.status_code == 200, moved.text
        if step == "decide" and body["outcome"] == "decided":
            proposal.status, proposal.decided = "decided", body["measure"]
            proposal.decision_number = body["decision_number"]
            proposal.decision_date = date.fromisoformat(body["decision_date"])
        elif step == "decide":
            proposal.status = "not_pursued"
        elif step == "withdraw":
            proposal.status = "withdrawn"


async def discipline_case(api: Api, app: Litestar) -> Case:
    m = await standard_case(api, app)
    c = Case(m)
    # standard_case's findings name "Nguyễn Văn A" (finding_body's default).
    for f in m.model.findings:
        c.officials[f["id"]] = ["Nguyễn Văn A"]
    c1_findings = [f["id"] for f in m.model.findings if f["unit"] == "C1" and f["counted"]]
    c2_finding = next(f["id"] for f in m.model.findings if f["unit"] == "C2")
    f1, f2 = c1_findings
    # C3 of the other district: a scheduled visit in April, two findings naming Đỗ Thị Phương
    # (spelt two ways), actions 5 and 14 days overdue by NOW.
    set_clock(app, MARCH)
    plan = await m.plan("scheduled", [("C3", "2026-04-10", "2026-04-12")])
    c3 = m.visit(plan, "C3")
    await m.check_in(c3, "2026-04-10T08:30:00+07:00")
    g1 = await c.finding(c3, "2026-04-10T09:00:00+07:00", ["Đỗ Thị Phương"])
    g2 = await c.finding(c3, "2026-04-10T10:00:00+07:00", ["do thi  PHUONG", "Ngô Văn Hải"])
    m.world.users["head.c3"] = await api.create_user(
        "head.c3", [("unit_head", m.units["C3"]["id"])], m.units["C3"]["id"]
    )
    await m.action(g1, "C3", "head.c3", TODAY - timedelta(days=5))
    await m.action(g2, "C3", "head.c3", TODAY - timedelta(days=14))
    set_clock(app, NOW)
    await m.refresh_actions()

    march_10, april_1, april_10 = date(2026, 3, 10), date(2026, 4, 1), date(2026, 4, 10)
    # Processing due 18 June: 3 days left.
    await c.propose(f1, "C1", "Nguyễn Văn A", "reprimand", march_10, date(2026, 3, 20))
    # Decided (and so out of the deadlines, though its 90 days have passed).
    bich = await c.propose(
        f2, "C1", "Trần Thị Bích", "warning", march_10, march_10, post=True, status="official"
    )
    await c.move(
        bich,
        "decide",
        {
            "outcome": "decided",
            "measure": "removal_from_post",
            "decision_number": "15/QĐ-UBND",
            "decision_date": "2026-04-01",
        },
        "leader",
    )
    # The same Nguyễn Văn A on f2, which names him too: one incident, not two; decided.
    again = await c.propose(f2, "C1", "nguyen van a", "warning", march_10, march_10)
    await c.move(
        again,
        "decide",
        {
            "outcome": "decided",
            "measure": "reprimand",
            "decision_number": "20/QĐ-UBND",
            "decision_date": "2026-05-01",
        },
        "leader",
    )
    withdrawn = await c.propose(f1, "C1", "Hoàng Văn Em", "warning", march_10, march_10)
    await c.move(withdrawn, "withdraw", {"reason": "Nhầm người"}, "inspector")
    # C2 has no head of its own: the district's head is the head concerned. Detected 2 March,
    # processing due 31 May: 15 days overdue.
    await c.propose(
        c2_finding,
        "C2",
        "Lê Văn Cường",
        "dismissal",
        date(2026, 3, 1),
        date(2026, 3, 2),
        status="public_employee",
    )
    not_pursued = await c.propose(c2_finding, "C2", "Phạm Thị Dung", "warning", april_1, april_1)
    await c.move(not_pursued, "decide", {"outcome": "not_pursued", "reason": "Đủ lý do"}, "leader")
    # C3: due 9 July (24 days left), and detected 21 March, due 19 June (4 days left).
    await c.propose(g1, "C3", "Đỗ Thị Phương", "warning", april_10, april_10)
    await c.propose(g2, "C3", "Ngô Văn Hải", "reprimand", date(2026, 3, 21), date(2026, 3, 21))
    return c


# --- the independent count ------------------------------------------------------------------------


def visible(c: Case, viewer: str) -> list[Proposal]:
    """The proposals a viewer may see (docs/discipline.md#who-sees-what, written out here)."""
    if viewer == "leader":
        return c.proposals
    unit = {"head.c1": "C1", "head.d1": "C2", "head.c3": "C3"}.get(viewer)
    return [p for p in c.proposals if p.unit == unit]


def names_visible(c: Case, viewer: str, unit: str) -> bool:
    """Whether a viewer may read the officials named in a finding of `unit`."""
    if viewer == "leader":
        return True
    return {"head.c1": "C1", "head.d1": "C2", "head.c3": "C3"}.get(viewer) == unit


def expected(
    c: Case, viewer: str, scope: str, first: date = YEAR[0], last: date = YEAR[1]
) -> dict[str, Any]:
    m = c.m
    observed = {f["id"]: f["observed"] for f in m.model.findings if f["counted"]}
    mine = [
        p
        for p in visible(c, viewer)
        if p.unit in SUBTREE[scope] and first <= observed[p.finding] <= last
    ]
    by_status = {s: sum(p.status == s for p in mine) for s in STATUSES}
    by_measure = [
        {
            "measure": measure.value,
            "proposed": sum(p.measure == measure.value for p in mine),
            "decided": sum(p.decided == measure.value for p in mine),
        }
        for measure in MEASURE_ORDER
    ]
    # Repeats: incidents in the 12 months to the report day, from what the viewer may see.
    as_of = min(TODAY, last)
    start = add_years(as_of, -1)
    incidents: dict[tuple[str, str], set[str]] = {}
    # Spellings and positions in the order they count: proposals (oldest first), then findings
    # by observation.
    spellings: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for p in visible(c, viewer):
        if p.status == "withdrawn" or p.unit not in SUBTREE[scope]:
            continue
        if start <= p.violation <= as_of:
            key = (p.unit, fold(p.name))
            incidents.setdefault(key, set()).add(p.finding)
            spellings.setdefault(key, []).append((p.name, p.position))
    counted_findings = sorted(
        (f for f in m.model.findings if f["counted"]), key=lambda f: f["observed"]
    )
    for f in counted_findings:
        if f["unit"] not in SUBTREE[scope] or not names_visible(c, viewer, f["unit"]):
            continue
        if not start <= f["observed"] <= as_of:
            continue
        for name in c.officials.get(f["id"], []):
            key = (f["unit"], fold(name))
            incidents.setdefault(key, set()).add(f["id"])
            spellings.setdefault(key, []).append((name, "Công chức một cửa"))
    flagged = []
    for key, found in incidents.items():
        if len(found) < 2:
            continue
        decided = sorted(
            (
                p
                for p in visible(c, viewer)
                if (p.unit, fold(p.name)) == key
                and p.decided
                and p.decision_date
                and p.decision_date <= as_of
            ),
            key=lambda p: p.decision_date or date.min,
        )
        last_decided = decided[-1] if decided else None
        written = [n for n, _ in spellings[key] if n != fold(n)]
        flagged.append(
            {
                "name": written[0] if written else spellings[key][0][0],
                "position": spellings[key][0][1],
                "unit_id": m.units[key[0]]["id"],
                "unit_code": m.units[key[0]]["code"],
                "unit_name": m.units[key[0]]["name"],
                "count": len(found),
                "last_measure": last_decided.decided if last_decided else None,
                "last_decision_number": last_decided.decision_number if last_decided else None,
                "last_decision_date": last_decided.decision_date.isoformat()
                if last_decided and last_decided.decision_date
                else None,
            }
        )
    flagged.sort(key=lambda r: (-r["count"], r["unit_id"], fold(r["name"])))
    # Units by findings per visit carried out.
    rates = []
    for key in sorted(SUBTREE[scope]):
        visits = [
            v
            for v in m.model.visits
            if v["unit"] == key and v["checked_in"] and first <= v["day"] <= last
        ]
        if not visits:
            continue
        n = sum(
            f["counted"] and f["unit"] == key and first <= f["observed"] <= last
            for f in m.model.findings
        )
        unit = m.units[key]
        rates.append(
            {
                "unit_id": unit["id"],
                "code": unit["code"],
                "name": unit["name"],
                "visits": len(visits),
                "findings": n,
                "findings_per_visit": round(n / len(visits), 2),
            }
        )
    rates.sort(key=lambda r: (-r["findings_per_visit"], -r["findings"], r["code"]))
    # Overdue actions by level and age.
    counted = {i for i, day in observed.items() if first <= day <= last}
    overdue = []
    for a in m.model.actions:
        if a["unit"] not in SUBTREE[scope] or a["finding"] not in counted:
            continue
        if a["status"] in {"open", "in_progress"} and a["due"] < TODAY:
            overdue.append(a)
    levels = []
    for level in (1, 2, 3):
        days = [(TODAY - a["due"]).days for a in overdue]
        mine_ = [d for d in days if sum(d >= t for t in (1, 7, 30)) == level]
        levels.append(
            {
                "level": level,
                "days_1_7": sum(1 <= d <= 7 for d in mine_),
                "days_8_30": sum(8 <= d <= 30 for d in mine_),
                "days_over_30": sum(d > 30 for d in mine_),
                "total": len(mine_),
            }
        )
    children = {"P": ["D1", "D2", "SNV"], "D1": ["C1", "C2"], "D2": ["C3"]}.get(scope, [])
    by_unit = [
        {
            "unit_id": m.units[k]["id"],
            "code": m.units[k]["code"],
            "name": m.units[k]["name"],
            "overdue": sum(a["unit"] in SUBTREE[k] for a in overdue),
        }
        for k in children
    ]
    # Deadlines of undecided proposals.
    deadlines = []
    for p in mine:
        if p.status != "proposed":
            continue
        years = 5 if p.measure == "reprimand" else 10
        for kind, day in (
            ("processing", processing_due_on(p.detected, False)),
            ("limitation", add_years(p.violation, years)),
        ):
            left = (day - TODAY).days
            if left <= 30:
                deadlines.append(
                    {
                        "proposal_id": p.id,
                        "official_name": p.name,
                        "official_position": p.position,
                        "unit_id": m.units[p.unit]["id"],
                        "unit_code": m.units[p.unit]["code"],
                        "unit_name": m.units[p.unit]["name"],
                        "measure": p.measure,
                        "deadline": kind,
                        "date": day.isoformat(),
                        "days_left": left,
                    }
                )
    deadlines.sort(key=lambda r: (r["date"], r["unit_code"], r["official_name"], r["proposal_id"]))
    return {
        "proposals": {"total": len(mine), "by_status": by_status, "by_measure": by_measure},
        "repeat_threshold": 2,
        "repeats_as_of": as_of.isoformat(),
        "flagged_officials": flagged,
        "units_by_findings_per_visit": rates,
        "overdue_actions": {"total": len(overdue), "by_level": levels, "by_unit": by_unit},
        "deadlines_within_days": 30,
        "deadlines": deadlines,
    }


def figures(body: dict[str, Any]) -> dict[str, Any]:
    """The report without its period, scope and time, and flagged officials in a stable order."""
    out = {k: v for k, v in body.items() if k not in {"period", "scope", "generated_at"}}
    out["flagged_officials"] = sorted(
        out["flagged_officials"], key=lambda r: (-r["count"], r["unit_id"], fold(r["name"]))
    )
    return out


# --- the figures --------------------------------------------------------------------------------


async def test_discipline_report_counts_what_was_made_for_the_province_and_a_district(
    api: Api, app: Litestar
) -> None:
    c = await discipline_case(api, app)
    m = c.m
    leader = await m.user("leader")
    province = await report(leader, "discipline")
    assert province["scope"] == {"unit_id": m.units["P"]["id"], "name": "Tỉnh Thái Nguyên"}
    assert province["period"] == {"from": "2026-01-01", "to": "2026-12-31"}
    assert figures(province) == expected(c, "leader", "P")
    # The model agrees with figures worked out by hand, so it is not wrong the way the service
    # would be.
    assert province["proposals"]["total"] == 8
    assert province["proposals"]["by_status"] == {
        "proposed": 4,
        "decided": 2,
        "not_pursued": 1,
        "withdrawn": 1,
    }
    decided = {r["measure"]: r["decided"] for r in province["proposals"]["by_measure"]}
    assert decided["removal_from_post"] == 1 and decided["reprimand"] == 1
    flagged = {(o["unit_code"], o["name"]): o for o in province["flagged_officials"]}
    assert set(flagged) == {("P-D1-C1", "Nguyễn Văn A"), ("P-D2-C3", "Đỗ Thị Phương")}
    a = flagged[("P-D1-C1", "Nguyễn Văn A")]
    assert (a["count"], a["last_measure"], a["last_decision_number"]) == (
        2,
        "reprimand",
        "20/QĐ-UBND",
    )
    assert flagged[("P-D2-C3", "Đỗ Thị Phương")]["last_measure"] is None
    assert [u["code"] for u in province["units_by_findings_per_visit"]] == [
        "P-D1-C1",
        "P-D2-C3",
        "P-D1-C2",
    ]
    assert [lv["total"] for lv in province["overdue_actions"]["by_level"]] == [1, 1, 2]
    assert province["overdue_actions"]["by_level"][0]["days_1_7"] == 1
    assert province["overdue_actions"]["by_level"][1]["days_8_30"] == 1
    assert [(d["official_name"], d["deadline"], d["days_left"]) for d in province["deadlines"]] == [
        ("Lê Văn Cường", "processing", -15),
        ("Nguyễn Văn A", "processing", 3),
        ("Ngô Văn Hải", "processing", 4),
        ("Đỗ Thị Phương", "processing", 24),
    ]

    district = await report(leader, "discipline", under=m.units["D1"]["id"])
    assert district["scope"]["unit_id"] == m.units["D1"]["id"]
    assert figures(district) == expected(c, "leader", "D1")
    assert district["proposals"]["total"] == 6
    assert {o["name"] for o in district["flagged_officials"]} == {"Nguyễn Văn A"}
    # A planner of the province reads what the leader reads.
    assert figures(await report(await m.user("planner"), "discipline")) == figures(province)

    # Proposals go with the period of their finding: April holds C2's and C3's only.
    april = {"from": "2026-04-01", "to": "2026-04-30"}
    spring = await report(leader, "discipline", **april)
    assert figures(spring) == expected(c, "leader", "P", date(2026, 4, 1), date(2026, 4, 30))
    assert spring["proposals"]["total"] == 4
    # A period that ended in March reads repeats as of 31 March.
    march = await report(leader, "discipline", **{"from": "2026-03-01", "to": "2026-03-31"})
    assert march["repeats_as_of"] == "2026-03-31"
    assert figures(march) == expected(c, "leader", "P", date(2026, 3, 1), date(2026, 3, 31))

    # The scorecard counts the unit's proposals the same way.
    card = await report(leader, f"units/{m.units['C1']['id']}/scorecard")
    assert card["discipline"] == expected(c, "leader", "C1")["proposals"]


async def test_names_reach_only_those_who_may_see_the_officials(api: Api, app: Litestar) -> None:
    c = await discipline_case(api, app)
    m = c.m
    await api.create_user("head.d2", [("unit_head", m.units["D2"]["id"])], m.units["D2"]["id"])
    c1_names = {"Nguyễn Văn A", "nguyen van a", "Trần Thị Bích", "Hoàng Văn Em"}
    c2_names = {"Lê Văn Cường", "Phạm Thị Dung"}
    c3_names = {"Đỗ Thị Phương", "do thi  PHUONG", "Ngô Văn Hải"}

    # The head of C1 (the unit concerned) reads C1's proposals and its flagged official.
    head_c1 = await report(await m.user("head.c1"), "discipline")
    assert figures(head_c1) == expected(c, "head.c1", "C1")
    assert head_c1["proposals"]["total"] == 4
    assert [o["name"] for o in head_c1["flagged_officials"]] == ["Nguyễn Văn A"]

    # The district's head sees C1's findings but is not the head concerned there (C1 has its
    # own): not a name, not a count of C1's officials. C2 has no head: the district's head is
    # the head concerned for it, and reads its proposals.
    head_d1 = await report(await m.user("head.d1"), "discipline")
    assert figures(head_d1) == expected(c, "head.d1", "D1")
    assert head_d1["proposals"]["total"] == 2
    assert head_d1["flagged_officials"] == []
    text = str(head_d1)
    assert not any(name in text for name in c1_names | c3_names)
    assert {d["official_name"] for d in head_d1["deadlines"]} == {"Lê Văn Cường"}

    # The neighbouring commune's head (C3, in D2): C3's own, nothing of D1's subtree.
    head_c3 = await report(await m.user("head.c3"), "discipline")
    assert figures(head_c3) == expected(c, "head.c3", "C3")
    assert [o["name"] for o in head_c3["flagged_officials"]] == ["Đỗ Thị Phương"]
    text = str(head_c3)
    assert not any(name in text for name in c1_names | c2_names)
    for other in ("D1", "C1", "C2", "P"):
        problem(
            await (await m.user("head.c3")).get(
                "/api/v1/reports/discipline", params={"under": m.units[other]["id"]}
            ),
            404,
        )
    csv = await (await m.user("head.c3")).get(
        "/api/v1/reports/discipline", params={"format": "csv"}
    )
    assert not any(name in csv.content.decode("utf-8-sig") for name in c1_names | c2_names)

    # The district D2's head is above C3's head: sees C3's findings, never its proposals or
    # officials.
    head_d2 = await report(await api.as_user("head.d2"), "discipline")
    assert head_d2["proposals"]["total"] == 0
    assert head_d2["flagged_officials"] == [] and head_d2["deadlines"] == []
    assert not any(name in str(head_d2) for name in c1_names | c2_names | c3_names)
    assert [u["code"] for u in head_d2["units_by_findings_per_visit"]] == ["P-D2-C3"]


# --- downloads and bad input -------------------------------------------------------------------------


async def test_discipline_downloads(api: Api, app: Litestar) -> None:
    import openpyxl
    import pypdf

    c = await discipline_case(api, app)
    leader = await c.m.user("leader")
    body = await report(leader, "discipline")
    for fmt, media in (("csv", "text/csv"), ("xlsx", "spreadsheetml"), ("pdf", "application/pdf")):
        response = await leader.get("/api/v1/reports/discipline", params={"format": fmt})
        assert response.status_code == 200, response.text
        assert media in response.headers["content-type"]
        assert response.headers["content-disposition"] == content_disposition(
            "attachment", f"bao-cao-ky-luat_2026-01-01_2026-12-31.{fmt}"
        )
        if fmt == "csv":
            assert response.content.startswith(b"\xef\xbb\xbf")
            text = response.content.decode("utf-8-sig")
            assert text.splitlines()[0].startswith("Họ và tên,Chức vụ,Mã đơn vị,Đơn vị")
            for d in body["deadlines"]:
                assert d["official_name"] in text
            assert "Thời hạn xử lý kỷ luật" in text and "Quá hạn 15 ngày" in text
        elif fmt == "xlsx":
            book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
            assert {
                "Tổng quan",
                "Thời hạn",
                "Theo hình thức",
                "Theo tình trạng",
                "Vi phạm nhiều lần",
                "Xếp hạng đơn vị",
                "Quá hạn theo cấp độ",
                "Quá hạn theo đơn vị",
            } <= set(book.sheetnames)
            cells = {
                c_ for row in book["Vi phạm nhiều lần"].iter_rows(values_only=True) for c_ in row
            }
            assert {"Nguyễn Văn A", "Đỗ Thị Phương", "Khiển trách", "20/QĐ-UBND"} <= cells
        else:
            pages = pypdf.PdfReader(io.BytesIO(response.content)).pages
            # Narrow columns wrap names over lines: the words are intact, the breaks are layout.
            text = " ".join(" ".join(p.extract_text() for p in pages).split())
            for name in ("Nguyễn Văn A", "Đỗ Thị Phương", "Lê Văn Cường", "Xã Phúc Lương"):
                assert name in text, name
            assert "BÁO CÁO TÌNH HÌNH XỬ LÝ KỶ LUẬT" in text


async def test_discipline_report_bad_input_is_400_or_404_never_500(api: Api, app: Litestar) -> None:
    m = await standard_case(api, app)
    leader = await m.user("leader")
    url = "/api/v1/reports/discipline"
    body = problem(await leader.get(url, params={"from": "2026-05-01", "to": "2026-04-01"}), 400)
    assert body["errors"][0]["field"] == "from"
    problem(await leader.get(url, params={"from": "2026-02-30"}), 400)
    problem(await leader.get(url, params={"to": "0001-01-01"}), 400)
    problem(await leader.get(url, params={"from": "9999-12-31"}), 400)
    problem(await leader.get(url, params={"under": "not-a-uuid"}), 400)
    problem(await leader.get(url, params={"format": "docx"}), 400)
    problem(await leader.get(url, params={"under": str(uuid.uuid4())}), 404)
    problem(await leader.get(url, params={"format": "pdf", "from": "x"}), 400)
    # Without proposals every status and measure is listed, with zeros.
    empty = await report(leader, "discipline")
    assert empty["proposals"]["by_status"] == dict.fromkeys(STATUSES, 0)
    assert len(empty["proposals"]["by_measure"]) == len(MEASURE_ORDER)
    assert empty["deadlines"] == []
    # Two findings at C1 name Nguyễn Văn A: flagged without any proposal.
    assert [
        (o["name"], o["position"], o["count"], o["last_measure"])
        for o in empty["flagged_officials"]
    ] == [("Nguyễn Văn A", "Công chức tư pháp - hộ tịch", 2, None)]
    # A reader without units reads an empty report.
    await api.create_user("nobody", [], m.units["C1"]["id"])
    nobody = await report(await api.as_user("nobody"), "discipline")
    assert nobody["scope"] == {"unit_id": None, "name": ""}
    assert nobody["proposals"]["total"] == 0 and nobody["units_by_findings_per_visit"] == []
