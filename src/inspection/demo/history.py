"""A year of inspection history for the demo province, and the same generator at bench scale.

`generate_history` reads the units, people and checklist already in the database (the demo's, or
a province made by `load_scale_world`) and inserts, with bulk Core INSERTs in one transaction,
twelve months of plans (scheduled and ~30% unannounced), teams, visits, checklist answers,
findings (with the officials they name), corrective actions in every state and their timelines,
and discipline proposals about officials the findings name (every status; measures from
`discipline/rules.py` for the violation date; some undecided near or past their processing time).

The rows obey the rules the services enforce (docs/plans.md, findings.md, actions.md), because
the generator walks each record through the same life a user would give it, only with the clock
set back: a plan is approved before its first check-in, a finding is observed between its visit's
check-in and check-out, an action is created on a submitted finding with a due date not before its
creation day, is overdue only while open or in progress and carries exactly the escalation levels
`inspection jobs run` would have raised, and a finding is closed exactly when all its actions are.

Deterministic: the same seed and the same "now" give the same rows, ids included (UUIDv7 built
from the record's own historical time and the seeded generator), so a bench is reproducible.

Audit: the history is recorded as ONE entry ("demo_history", "generate") appended through the
chain's own `audit.record`, with the seed and the counts. These rows were not made by people on
these dates; an entry per row dated today would claim they were, and would double the write cost
of a million findings. The entry is also how a second run knows a year is already there.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import Table, insert, select, text, update
from sqlalchemy import types as sa_types
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from inspection.access.principal import GrantScope, Principal
from inspection.actions.models import ActionEvent, ActionStatus, CorrectiveAction, Priority
from inspection.actions.rules import escalation_level
from inspection.audit import recorder as audit
from inspection.audit.models import AuditEntry, AuditHead
from inspection.db.engine import Database
from inspection.db.session import transaction
from inspection.demo import texts as words
from inspection.demo.organisation import CHECKLIST_TITLE, DEMO_PASSWORD, ensure_checklist
from inspection.discipline import rules
from inspection.discipline.models import DisciplineProposal, ProposalStatus
from inspection.discipline.rules import OfficialStatus
from inspection.findings.models import Category, Finding, FindingStatus, Severity
from inspection.kit.search import fold, fold_for_column
from inspection.plans.models import (
    Checklist,
    ChecklistResponse,
    Criterion,
    Plan,
    PlanKind,
    PlanStatus,
    ResponseResult,
    TeamMember,
    TeamRole,
    Visit,
    VisitStatus,
)
from inspection.plans.service import weighted_score
from inspection.units import schemas
from inspection.units.bootstrap import ADMIN_USERNAME
from inspection.units.models import Grant, Unit, UnitKind, User
from inspection.units.roles import Role
from inspection.units.service import UnitService, UserService

HISTORY_ENTITY = "demo_history"
_CATEGORY_CODES = frozenset(c.value for c in Category)
BATCH = 5_000  # rows per executemany: large enough to amortise, small enough to stream


@dataclass(frozen=True, slots=True)
class HistoryScale:
    """How much history to generate: visits in the year, findings over all of them, and about
    how many corrective actions (the exact count follows from the findings drawn)."""

    visits: int
    findings: int
    actions: int
    # Discipline proposals, about officials the findings name (the bench: 5,000 at 1M findings).
    proposals: int = 0


# The demo province (~75 units): about two visits per unit over the year.
DEMO_SCALE = HistoryScale(visits=160, findings=1_600, actions=480, proposals=60)


@dataclass(slots=True)
class HistoryReport:
    """What a run did: whether it generated anything, the counts by kind and state, the time."""

    created: bool
    seed: int
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        """Lines for the CLI."""
        if not self.created:
            return (
                "Demo history: already present (a year of history was generated before); "
                "nothing added."
            )
        c = self.counts
        return "\n".join(
            [
                f"Demo history (seed {self.seed}) generated in {self.seconds:.1f} s:",
                f"  plans     {c['plans']:>9,}  ({c['plans.unannounced']:,} unannounced; "
                + ", ".join(f"{s.value} {c['plans.' + s.value]:,}" for s in PlanStatus)
                + ")",
                f"  visits    {c['visits']:>9,}  ("
                + ", ".join(f"{s.value} {c['visits.' + s.value]:,}" for s in VisitStatus)
                + f"; {c['visits.sealed']:,} unannounced and still sealed)",
                f"  findings  {c['findings']:>9,}  ("
                + ", ".join(f"{s.value} {c['findings.' + s.value]:,}" for s in FindingStatus)
                + f"; {c['findings.with_officials']:,} name officials)",
                f"  actions   {c['actions']:>9,}  ("
                + ", ".join(
                    f"{k} {c['actions.' + k]:,}"
                    for k in (
                        "open",
                        "in_progress",
                        "submitted",
                        "closed_on_time",
                        "closed_late",
                        "cancelled",
                        "overdue_1",
                        "overdue_2",
                        "overdue_3",
                    )
                )
                + ")",
                f"  proposals {c['proposals']:>9,}  ("
                + ", ".join(f"{st.value} {c['proposals.' + st.value]:,}" for st in ProposalStatus)
                + f"; {c['proposals.overdue']:,} undecided past their processing time)",
                f"  timeline events {c['events']:,}, checklist answers {c['responses']:,}",
            ]
        )


# --- the world the history is about ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Unit:
    id: UUID
    code: str
    kind: str
    path: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class _Person:
    id: UUID
    username: str
    covers: tuple[str | None, ...]  # grant paths (None: system-wide) and the home unit's path

    def conflicts_with(self, unit: _Unit) -> bool:
        """Whether inspecting `unit` is a conflict of interest (plans.service._conflicts)."""
        return any(p is None or unit.path.startswith(p) for p in self.covers)


@dataclass(frozen=True, slots=True)
class _Criterion:
    code: str
    category: Category
    weight: float
    evidence_required: bool


@dataclass(slots=True)
class _World:
    root: _Unit
    targets: list[_Unit]
    target_weights: list[float]
    inspectors: list[_Person]
    planner: _Person
    concerned_head: dict[UUID, _Person]  # unit -> the head an action there is assigned to
    checklist_id: UUID
    criteria: list[_Criterion]


# Which units a year of inspections visits, and how often: the one-stop shops and communes are
# where citizens meet the administration; departments and districts are inspected less.
_KIND_WEIGHTS = {
    UnitKind.COMMUNE.value: 1.0,
    UnitKind.ONE_STOP_SHOP.value: 1.0,
    UnitKind.PUBLIC_SERVICE_UNIT.value: 0.4,
    UnitKind.DEPARTMENT.value: 0.25,
    UnitKind.DISTRICT.value: 0.25,
    UnitKind.OTHER.value: 0.25,
}


def _position(code: str) -> tuple[float, float]:
    """A stable point in Thái Nguyên province for a unit (independent of the seed)."""
    digest = hashlib.sha256(code.encode()).digest()
    return (
        21.45 + 0.5 * digest[0] / 255 + 0.001 * digest[1] / 255,
        105.55 + 0.6 * digest[2] / 255 + 0.001 * digest[3] / 255,
    )


async def _read_world(session: AsyncSession) -> _World:
    """Units, inspectors, the planner, unit heads and the checklist, as the generator needs them."""
    # Ordered by code, not id: the same seed then draws the same history on any database.
    units = [
        _Unit(u.id, u.code, u.kind, u.path, *_position(u.code))
        for u in (await session.scalars(select(Unit).order_by(Unit.code))).all()
    ]
    if not units:
        raise RuntimeError("no units: load the demo (`inspection demo`) or a scale world first")
    by_id = {u.id: u for u in units}
    top = min(u.path.count("/") for u in units)
    root = min((u for u in units if u.path.count("/") == top), key=lambda u: u.code)
    users = {
        u.id: u
        for u in (
            await session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.id))
        ).all()
    }
    grants: dict[UUID, list[tuple[str, str | None]]] = {}
    for user_id, role, unit_id in (
        await session.execute(select(Grant.user_id, Grant.role, Grant.unit_id))
    ).tuples():
        if user_id in users:
            path = by_id[unit_id].path if unit_id is not None else None
            grants.setdefault(user_id, []).append((role, path))

    def person(user: User) -> _Person:
        covers = [path for _, path in grants.get(user.id, [])]
        if user.unit_id is not None:
            covers.append(by_id[user.unit_id].path)
        return _Person(user.id, user.username, tuple(covers))

    inspectors = sorted(
        (
            person(u)
            for u in users.values()
            if any(r == Role.INSPECTOR for r, _ in grants.get(u.id, []))
        ),
        key=lambda p: p.username,
    )
    planners = sorted(
        (
            person(u)
            for u in users.values()
            if any(
                r == Role.PLANNER and (p is None or root.path.startswith(p))
                for r, p in grants.get(u.id, [])
            )
        ),
        key=lambda p: p.username,
    )
    if not inspectors or not planners:
        raise RuntimeError("the history needs inspectors and a planner of the province")
    heads: dict[str, list[_Person]] = {}
    for user in users.values():
        for role, path in grants.get(user.id, []):
            if role == Role.UNIT_HEAD and path is not None:
                heads.setdefault(path, []).append(person(user))
    concerned: dict[UUID, _Person] = {}
    for unit in units:
        # scopes.unit_concerned: the deepest unit at or above this one with an active head.
        above = [p for p in heads if unit.path.startswith(p)]
        if above:
            concerned[unit.id] = min(heads[max(above, key=len)], key=lambda p: p.username)
    # The demo's one-stop-shop checklist when present, else the oldest template.
    checklist_row = (
        await session.execute(
            select(Checklist.id)
            .order_by((Checklist.title == CHECKLIST_TITLE).desc(), Checklist.created_at)
            .limit(1)
        )
    ).first()
    if checklist_row is None:
        raise RuntimeError("no checklist: load the demo (`inspection demo`) first")
    criteria = [
        _Criterion(
            c.code,
            Category(c.category) if c.category in _CATEGORY_CODES else Category.OTHER,
            c.weight,
            c.evidence_required,
        )
        for c in (
            await session.scalars(
                select(Criterion)
                .where(Criterion.checklist_id == checklist_row[0])
                .order_by(Criterion.position)
            )
        ).all()
    ]
    # Only units at least two inspectors may visit without a conflict of interest (one lead, one
    # member): an inspector of Sở Nội vụ never inspects Sở Nội vụ.
    targets = [
        u
        for u in units
        if u.kind in _KIND_WEIGHTS
        and sum(not i.conflicts_with(u) for i in inspectors) >= min(2, len(inspectors))
    ]
    if not targets:
        raise RuntimeError("no unit can be inspected without a conflict of interest")
    return _World(
        root=root,
        targets=targets,
        target_weights=[_KIND_WEIGHTS[u.kind] for u in targets],
        inspectors=inspectors,
        planner=planners[0],
        concerned_head=concerned,
        checklist_id=checklist_row[0],
        criteria=criteria,
    )


# --- time and ids ------------------------------------------------------------------------------


def _uuid7(rng: random.Random, moment: datetime) -> UUID:
    """A UUIDv7 for a record made at `moment`: time-ordered like `ids.new_id`, but from the
    seeded generator so that a run is reproducible."""
    ms = int(moment.timestamp() * 1000) & ((1 << 48) - 1)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62)
    return UUID(int=value | rng.getrandbits(62))


class _Clock:
    """Local calendar days and times of the configured zone, and "now"."""

    def __init__(self, now: datetime, zone: ZoneInfo) -> None:
        self.now = now.astimezone(UTC)
        self.zone = zone
        self.today = self.now.astimezone(zone).date()

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        """A local wall-clock time as UTC."""
        return datetime.combine(day, clock(hour, minute), tzinfo=self.zone).astimezone(UTC)

    def day_of(self, moment: datetime) -> date:
        """The local calendar day of a moment."""
        return moment.astimezone(self.zone).date()

    def end_of(self, day: date) -> datetime:
        """The last second of a local day (a due date falls due when it ends)."""
        return self.at(day + timedelta(days=1), 0) - timedelta(seconds=1)

    def past(self, moment: datetime) -> datetime:
        """`moment`, or a minute before now if it lies later: history never happens tomorrow."""
        return min(moment, self.now - timedelta(minutes=1))


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A moment uniformly between two moments (`start` when the span is empty)."""
    span = (end - start).total_seconds()
    if span <= 0:
        return start
    return start + timedelta(seconds=int(rng.random() * span))


# --- rows ---------------------------------------------------------------------------------------


def _columns(model: Any) -> tuple[Table, tuple[str, ...]]:
    table: Table = model.__table__
    # The sentinel column is advanced-alchemy's, for ORM batching only.
    return table, tuple(c.key for c in table.columns if c.key != "sa_orm_sentinel")


_TABLES = {
    name: _columns(model)
    for name, model in (
        ("plans", Plan),
        ("team", TeamMember),
        ("visits", Visit),
        ("responses", ChecklistResponse),
        ("findings", Finding),
        ("actions", CorrectiveAction),
        ("events", ActionEvent),
        ("proposals", DisciplineProposal),
    )
}


class _Writer:
    """Buffers rows per table and writes them with executemany, parents before children."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.buffers: dict[str, list[dict[str, Any]]] = {name: [] for name in _TABLES}

    def add(self, name: str, **values: Any) -> dict[str, Any]:
        """A full row (every column present, so each executemany has one shape)."""
        row = dict.fromkeys(_TABLES[name][1])
        row.update(values)
        self.buffers[name].append(row)
        return row

    def full(self) -> bool:
        """Whether some buffer holds a batch."""
        return any(len(rows) >= BATCH for rows in self.buffers.values())

    async def flush(self) -> None:
        """Write every buffer, in the order of the foreign keys."""
        postgres = self.connection.dialect.name == "postgresql"
        for name, rows in self.buffers.items():
            if not rows:
                continue
            table, columns = _TABLES[name]
            if postgres:
                await self._copy(table, columns, rows)
            else:
                for start in range(0, len(rows), BATCH):
                    await self.connection.execute(insert(table), rows[start : start + BATCH])
            rows.clear()

    async def _copy(
        self, table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> None:
        """PostgreSQL: COPY in binary through asyncpg, in this transaction. Measured 5x faster
        than executemany at 100,000 findings (docs/benchmarks.md); JSON goes as text."""
        raw = await self.connection.get_raw_connection()
        driver: Any = raw.driver_connection
        json_columns = {c.key for c in table.columns if isinstance(c.type, sa_types.JSON)}
        records = [
            tuple(
                msgspec.json.encode(row[c]).decode() if c in json_columns else row[c]
                for c in columns
            )
            for row in rows
        ]
        await driver.copy_records_to_table(table.name, records=records, columns=list(columns))


# --- the generator -------------------------------------------------------------------------------


@dataclass(slots=True)
class _VisitPlan:
    """A visit as decided before its rows are written."""

    row: dict[str, Any]
    unit: _Unit
    lead: _Person
    team: list[_Person]
    plan_kind: str
    on_site: tuple[datetime, datetime] | None = None  # when findings may be observed
    answered: dict[str, str] = field(default_factory=dict)  # criterion code -> result
    findings: int = 0


_SEVERITIES = (
    (Severity.OBSERVATION, 20),
    (Severity.MINOR, 40),
    (Severity.MAJOR, 30),
    (Severity.CRITICAL, 10),
)
# Priority and the usual time allowed to fix, by severity (days).
_TERMS = {
    Severity.OBSERVATION: (Priority.LOW, 45),
    Severity.MINOR: (Priority.MEDIUM, 30),
    Severity.MAJOR: (Priority.HIGH, 20),
    Severity.CRITICAL: (Priority.URGENT, 10),
}
# Finding status at a visit, by where the visit stands (drafts are still being written on site).
_FINDING_FATES = {
    status: ((FindingStatus.DRAFT, d), (FindingStatus.SUBMITTED, s), (FindingStatus.DISMISSED, x))
    for status, d, s, x in (
        (VisitStatus.CHECKED_IN.value, 60, 35, 5),
        (VisitStatus.CHECKED_OUT.value, 25, 68, 7),
        (VisitStatus.CONCLUDED.value, 1, 91, 8),
    )
}


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


@dataclass(frozen=True, slots=True)
class _Candidate:
    """An official named on a submitted or closed finding: what a proposal about them needs."""

    finding_id: UUID
    visit_id: UUID
    plan_id: UUID
    unit: _Unit
    lead: _Person
    observed_at: datetime
    submitted_at: datetime
    title: str
    name: str
    position: str | None


# How a proposal ends, by how long ago the violation was detected (days): recent ones are mostly
# still being considered, old ones mostly decided; the few still open after 90 days are the
# overdue ones the discipline report lists.
_PROPOSAL_FATES = (
    (
        30,
        (
            (ProposalStatus.PROPOSED, 80),
            (ProposalStatus.DECIDED, 15),
            (ProposalStatus.WITHDRAWN, 5),
        ),
    ),
    (
        120,
        (
            (ProposalStatus.PROPOSED, 35),
            (ProposalStatus.DECIDED, 45),
            (ProposalStatus.NOT_PURSUED, 12),
            (ProposalStatus.WITHDRAWN, 8),
        ),
    ),
    (
        100_000,
        (
            (ProposalStatus.PROPOSED, 8),
            (ProposalStatus.DECIDED, 65),
            (ProposalStatus.NOT_PURSUED, 17),
            (ProposalStatus.WITHDRAWN, 10),
        ),
    ),
)


class _History:
    """One run: the world, the clock, the seeded generator and the counts."""

    def __init__(
        self,
        world: _World,
        scale: HistoryScale,
        seed: int,
        now_clock: _Clock,
        escalation_days: Sequence[int],
        due_soon_days: int,
        writer: _Writer,
    ) -> None:
        self.world = world
        self.scale = scale
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible history, not a secret
        self.clock = now_clock
        self.escalation_days = tuple(escalation_days)
        self.due_soon_days = due_soon_days
        self.writer = writer
        self.counts: Counter[str] = Counter()
        self.folded: dict[tuple[str, str | None], str] = {}
        self.officials: dict[UUID, list[tuple[str, str]]] = {}
        # Some units do worse than others all year, so that rankings have something to show.
        unit_rng = random.Random(f"{seed}:units")  # noqa: S311 - reproducible, not a secret
        self.troubled = {u.id: unit_rng.uniform(0.4, 2.0) for u in world.targets}
        # Discipline draws from its own generator, so that adding proposals leaves the rest of a
        # seed's history as it was. Candidates are a uniform reservoir sample (Algorithm R) of the
        # officials named on submitted or closed findings: bounded memory at a million findings.
        self.discipline_rng = random.Random(f"{seed}:discipline")  # noqa: S311 - reproducible
        self.candidates: list[_Candidate] = []
        self.offered = 0

    # --- plans and visits ---------------------------------------------------------------------

    def plans(self) -> list[_VisitPlan]:
        """Every plan, its team and its visits (rows buffered); the visits that went on site."""
        rng, clock, world = self.rng, self.clock, self.world
        sizes: list[int] = []
        remaining = self.scale.visits
        while remaining > 0:
            size = min(remaining, rng.randint(2, 8), len(world.targets))
            sizes.append(size)
            remaining -= size
        on_site: list[_VisitPlan] = []
        year_start = clock.today - timedelta(days=365)
        count = len(sizes)
        for index, size in enumerate(sizes):
            last = index == count - 1
            # Spread over the past year and the coming month; the last plan is an unannounced
            # one about to happen, so that a sealed visit always exists.
            start = year_start + timedelta(days=index * 390 // max(count, 1) + rng.randrange(0, 5))
            unannounced = last or rng.random() < 0.3
            if last:
                start = clock.today + timedelta(days=rng.randint(3, 10))
            on_site += self._plan(start, size, unannounced, last)
        return on_site

    def _targets(self, size: int, prefer_headed: bool) -> list[_Unit]:
        """`size` distinct units, weighted by kind (Efraimidis-Spirakis sampling)."""
        world, rng = self.world, self.rng
        keyed = sorted(
            (
                (
                    rng.random() ** (1.0 / w)
                    * (2.0 if prefer_headed and u.id in world.concerned_head else 1.0),
                    n,
                )
                for n, (u, w) in enumerate(zip(world.targets, world.target_weights, strict=True))
            ),
            reverse=True,
        )
        return [world.targets[n] for _, n in keyed[:size]]

    def _plan(self, start: date, size: int, unannounced: bool, sealed: bool) -> list[_VisitPlan]:
        rng, clock, world, w = self.rng, self.clock, self.world, self.writer
        today = clock.today
        targets = self._targets(size, prefer_headed=sealed)
        free = [i for i in world.inspectors if not any(i.conflicts_with(u) for u in targets)]
        if not free:  # drop targets until someone may visit them all
            targets = [u for u in targets if not world.inspectors[0].conflicts_with(u)] or targets[
                :1
            ]
            free = [i for i in world.inspectors if not any(i.conflicts_with(u) for u in targets)]
        team = rng.sample(free, min(len(free), rng.randint(2, 3)))
        length = rng.randint(3, 10) if unannounced else rng.randint(20, 45)
        end = start + timedelta(days=length)
        kind = PlanKind.UNANNOUNCED if unannounced else PlanKind.SCHEDULED
        future = start > today
        draft = future and not sealed and rng.random() < 0.15
        cancelled = not draft and not sealed and rng.random() < 0.03
        approved_day = min(start - timedelta(days=rng.randint(5, 14)), today - timedelta(days=1))
        approved_at = clock.at(approved_day, rng.randint(8, 16), rng.randrange(60))
        created_at = approved_at - timedelta(days=rng.randint(2, 10), hours=rng.randint(0, 5))
        plan_id = _uuid7(rng, created_at)
        number = rng.randint(100, 2999)
        quarter = (start.month - 1) // 3 + 1
        title = (
            f"Kiểm tra đột xuất việc chấp hành kỷ luật, kỷ cương hành chính tháng {start:%m/%Y}"
            if unannounced
            else f"Kiểm tra công vụ định kỳ quý {quarter}/{start.year} tại Bộ phận một cửa"
        )
        focus = sorted(
            {c.category.value for c in rng.sample(world.criteria, min(3, len(world.criteria)))}
        )
        plan = w.add(
            "plans",
            id=plan_id,
            kind=kind.value,
            status=PlanStatus.APPROVED.value,
            title=title,
            legal_basis=(
                f"Quyết định số {number}/QĐ-SNV ngày {approved_day:%d/%m/%Y} của Giám đốc Sở Nội vụ"
            ),
            focus=focus,
            period_start=start,
            period_end=end,
            checklist_id=world.checklist_id,
            unit_id=world.root.id,
            created_by=world.planner.id,
            approved_at=None if draft else approved_at,
            approved_by=None if draft else world.planner.id,
            version=1 if draft else 2,
            created_at=created_at,
            updated_at=created_at if draft else approved_at,
        )
        for n, member in enumerate(team):
            w.add(
                "team",
                id=_uuid7(rng, created_at),
                plan_id=plan_id,
                user_id=member.id,
                role=(TeamRole.LEAD if n == 0 else TeamRole.MEMBER).value,
                version=1,
                created_at=created_at,
                updated_at=created_at,
            )
        visits: list[_VisitPlan] = []
        for unit in targets:
            span = 0 if unannounced else rng.randint(0, 2)
            window_start = start + timedelta(days=rng.randint(0, length - span))
            visit = w.add(
                "visits",
                id=_uuid7(rng, created_at),
                plan_id=plan_id,
                unit_id=unit.id,
                window_start=window_start,
                window_end=window_start + timedelta(days=span),
                status=VisitStatus.PLANNED.value,
                version=1,
                created_at=created_at,
                updated_at=created_at,
            )
            visits.append(_VisitPlan(visit, unit, team[0], team, kind.value))
        if draft:
            plan["status"] = PlanStatus.DRAFT.value
        elif cancelled:
            self._cancel_plan(plan, visits)
        else:
            for v in visits:
                self._visit_life(v)
            self._plan_status(plan, visits)
        self._count_plan(plan, visits)
        return [v for v in visits if v.on_site is not None]

    def _cancel_plan(self, plan: dict[str, Any], visits: list[_VisitPlan]) -> None:
        """Approved, then cancelled before anyone went: every visit cancelled with it."""
        rng, clock = self.rng, self.clock
        approved: datetime = plan["approved_at"]
        latest = clock.past(clock.at(plan["period_start"], 8))
        at = _between(
            rng, approved + timedelta(hours=1), max(latest, approved + timedelta(hours=1))
        )
        at = clock.past(at)
        reason = rng.choice(words.PLAN_CANCEL_REASONS)
        plan.update(status=PlanStatus.CANCELLED.value, cancelled_at=at, cancel_reason=reason)
        plan.update(version=plan["version"] + 1, updated_at=at)
        for v in visits:
            v.row.update(
                status=VisitStatus.CANCELLED.value,
                cancelled_at=at,
                cancel_reason=reason,
                version=2,
                updated_at=at,
            )

    def _visit_life(self, v: _VisitPlan) -> None:
        """Check-in, answers, check-out and conclusion, as far as today allows."""
        rng, clock = self.rng, self.clock
        today = clock.today
        row = v.row
        start, end = row["window_start"], row["window_end"]
        if start >= today:
            return  # upcoming (or starting today): not checked in yet
        if end < today and rng.random() < 0.06:
            at = clock.past(clock.at(start - timedelta(days=rng.randint(1, 3)), 15))
            row.update(
                status=VisitStatus.CANCELLED.value,
                cancelled_at=at,
                cancel_reason=rng.choice(words.VISIT_CANCEL_REASONS),
                version=2,
                updated_at=at,
            )
            return
        if end >= today and rng.random() < 0.4:
            return  # within its window, the team has not arrived yet
        day = start + timedelta(
            days=rng.randint(0, (min(end, today - timedelta(days=1)) - start).days)
        )
        reason = None
        if end < today - timedelta(days=1) and rng.random() < 0.03:
            day, reason = end + timedelta(days=1), rng.choice(words.LATE_CHECK_IN_REASONS)
        checked_in = clock.at(day, rng.randint(7, 9), rng.randrange(60))
        row.update(
            status=VisitStatus.CHECKED_IN.value,
            checked_in_at=checked_in,
            checked_in_by=rng.choice(v.team).id,
            check_in_lat=v.unit.lat + rng.uniform(-0.0005, 0.0005),
            check_in_lon=v.unit.lon + rng.uniform(-0.0005, 0.0005),
            check_in_accuracy_m=float(rng.randint(4, 30)),
            check_in_reason=reason,
            version=2,
            updated_at=checked_in,
        )
        settled = day < today - timedelta(days=7)
        fate = rng.random()
        if (settled and fate < 0.96) or (
            not settled and fate < 0.3 and day <= today - timedelta(days=2)
        ):
            status = VisitStatus.CONCLUDED
        elif settled or fate < 0.6:
            status = VisitStatus.CHECKED_OUT
        else:
            status = VisitStatus.CHECKED_IN
        if status == VisitStatus.CHECKED_IN:
            left = clock.past(checked_in + timedelta(hours=8))
        else:
            left = clock.at(day, rng.randint(15, 16), rng.randrange(60))
            row.update(
                status=VisitStatus.CHECKED_OUT.value,
                checked_out_at=left,
                checked_out_by=rng.choice(v.team).id,
                version=3,
                updated_at=left,
            )
        v.on_site = (checked_in + timedelta(minutes=5), left - timedelta(minutes=5))
        self._answers(v, complete=status != VisitStatus.CHECKED_IN)
        if status == VisitStatus.CONCLUDED:
            concluded = clock.past(
                clock.at(day + timedelta(days=rng.randint(1, 5)), 10, rng.randrange(60))
            )
            score = weighted_score(
                [
                    (v.answered[c.code], c.weight)
                    for c in self.world.criteria
                    if c.code in v.answered
                ]
            )
            row.update(
                status=VisitStatus.CONCLUDED.value,
                concluded_at=concluded,
                concluded_by=v.lead.id,
                conclusion=rng.choice(words.CONCLUSIONS),
                score=score,
                version=4,
                updated_at=concluded,
            )

    def _answers(self, v: _VisitPlan, *, complete: bool) -> None:
        """The checklist answers: a troubled unit fails more criteria; a visit still on site has
        answered only the first few."""
        rng, w = self.rng, self.writer
        criteria = self.world.criteria
        answered = criteria if complete else criteria[: rng.randint(0, len(criteria))]
        fail_rate = min(0.85, 0.25 * self.troubled[v.unit.id])
        assert v.on_site is not None
        for criterion in answered:
            roll = rng.random()
            result = (
                ResponseResult.NOT_APPLICABLE
                if roll < 0.04
                else ResponseResult.FAIL
                if roll < 0.04 + fail_rate
                else ResponseResult.PASS
            )
            v.answered[criterion.code] = result.value
            at = _between(rng, *v.on_site)
            w.add(
                "responses",
                id=_uuid7(rng, at),
                visit_id=v.row["id"],
                criterion_code=criterion.code,
                result=result.value,
                note=rng.choice(words.FAIL_NOTES) if result == ResponseResult.FAIL else None,
                answered_by=rng.choice(v.team).id,
                version=1,
                created_at=at,
                updated_at=at,
            )
        self.counts["responses"] += len(answered)

    def _plan_status(self, plan: dict[str, Any], visits: list[_VisitPlan]) -> None:
        """in_progress from the first check-in; completed once every visit is concluded or
        cancelled (plans.service._complete_if_done)."""
        statuses = [v.row["status"] for v in visits]
        checked_in = [v.row["checked_in_at"] for v in visits if v.row["checked_in_at"]]
        if not checked_in:
            if all(s == VisitStatus.CANCELLED.value for s in statuses):
                last = max(v.row["cancelled_at"] for v in visits)
                plan.update(
                    status=PlanStatus.CANCELLED.value,
                    cancelled_at=last,
                    cancel_reason=visits[0].row["cancel_reason"],
                    version=3,
                    updated_at=last,
                )
            return
        plan.update(status=PlanStatus.IN_PROGRESS.value, version=3, updated_at=min(checked_in))
        if all(s in (VisitStatus.CONCLUDED.value, VisitStatus.CANCELLED.value) for s in statuses):
            done = max(v.row["concluded_at"] or v.row["cancelled_at"] for v in visits)
            plan.update(status=PlanStatus.COMPLETED.value, version=4, updated_at=done)

    def _count_plan(self, plan: dict[str, Any], visits: list[_VisitPlan]) -> None:
        c = self.counts
        c["plans"] += 1
        c["plans." + plan["status"]] += 1
        c["plans." + plan["kind"]] += 1
        for v in visits:
            c["visits"] += 1
            c["visits." + v.row["status"]] += 1
            if (
                plan["kind"] == PlanKind.UNANNOUNCED.value
                and plan["approved_at"] is not None
                and v.row["checked_in_at"] is None
                and v.row["status"] == VisitStatus.PLANNED.value
            ):
                c["visits.sealed"] += 1

    # --- findings ---------------------------------------------------------------------------

    def allocate(self, visits: list[_VisitPlan]) -> float:
        """Share the findings among the visits that went on site; return the chance that an
        eligible finding gets corrective actions, so that their total comes near the target."""
        rng = self.rng
        if not visits:
            return 0.0
        weights = [
            rng.lognormvariate(0, 0.5)
            * self.troubled[v.unit.id]
            * (0.5 if v.row["status"] == VisitStatus.CHECKED_IN.value else 1.0)
            for v in visits
        ]
        total = sum(weights) or 1.0
        for v, weight in zip(visits, weights, strict=True):
            v.findings = int(self.scale.findings * weight / total)
        for n in range(self.scale.findings - sum(v.findings for v in visits)):
            visits[n % len(visits)].findings += 1
        eligible = 0.0
        for v in visits:
            if v.unit.id not in self.world.concerned_head:
                continue
            fates = dict(_FINDING_FATES[v.row["status"]])
            share = fates[FindingStatus.SUBMITTED] / sum(fates.values())
            eligible += v.findings * share * 0.85  # observations seldom need a fix
        return min(1.0, self.scale.actions / (eligible * 1.15)) if eligible else 0.0

    def official(self, unit: _Unit) -> dict[str, str]:
        """One of the few officials of a unit, written as a busy inspector might: the same person
        turns up as "Nguyễn Văn An", "nguyen van an" or "NGUYỄN VĂN AN" across visits."""
        pool = self.officials.get(unit.id)
        if pool is None:
            # One generator per unit: its officials are the same whatever else is drawn.
            unit_rng = random.Random(f"{self.seed}:officials:{unit.code}")  # noqa: S311
            pool = [
                (
                    f"{unit_rng.choice(words.FAMILY_NAMES)} {unit_rng.choice(words.MIDDLE_NAMES)} "
                    f"{unit_rng.choice(words.GIVEN_NAMES)}",
                    unit_rng.choice(words.OFFICIAL_POSITIONS),
                )
                for _ in range(3)
            ]
            self.officials[unit.id] = pool
        rng = self.rng
        name, position = pool[0] if rng.random() < 0.5 else rng.choice(pool)
        style = rng.random()
        if style < 0.15:
            name = fold(name)  # typed without diacritics
        elif style < 0.25:
            name = name.upper()
        elif style < 0.33:
            name = name.lower()
        elif style < 0.38:
            name = fold(name).title()
        return {"name": name, "position": position}

    async def findings(self, visits: list[_VisitPlan], action_chance: float) -> None:
        """Every finding with its actions, visit by visit, flushed in batches."""
        for v in visits:
            for _ in range(v.findings):
                self._finding(v, action_chance)
                if self.writer.full():
                    await self.writer.flush()

    def _finding(self, v: _VisitPlan, action_chance: float) -> None:
        rng, clock, w = self.rng, self.clock, self.writer
        assert v.on_site is not None
        observed = _between(rng, *v.on_site)
        failed = [
            c for c in self.world.criteria if v.answered.get(c.code) == ResponseResult.FAIL.value
        ]
        criterion = rng.choice(failed) if failed and rng.random() < 0.75 else None
        category = criterion.category if criterion else rng.choice(list(Category))
        severity: Severity = _pick(rng, _SEVERITIES)
        title = rng.choice(words.FINDING_TITLES[category])
        description = rng.choice(words.FINDING_DESCRIPTIONS)
        key = (title, description)
        folded = self.folded.get(key)
        if folded is None:
            folded = self.folded[key] = fold(f"{title} {description or ''}")
        status: FindingStatus = _pick(rng, _FINDING_FATES[v.row["status"]])
        created = observed + timedelta(minutes=rng.randint(0, 30))
        finding_id = _uuid7(rng, created)
        cap = clock.past(v.row["concluded_at"] or v.on_site[1] + timedelta(hours=2))
        submitted_at = None
        if status == FindingStatus.SUBMITTED or (
            status == FindingStatus.DISMISSED and rng.random() < 0.5
        ):
            submitted_at = max(
                created, min(observed + timedelta(minutes=rng.randint(30, 300)), cap)
            )
        version, updated = 1 + (submitted_at is not None), submitted_at or created
        dismissed_at = dismiss_reason = None
        if status == FindingStatus.DISMISSED:
            dismissed_at = clock.past(max(updated + timedelta(hours=rng.randint(1, 48)), updated))
            dismiss_reason = rng.choice(words.DISMISS_REASONS)
            version, updated = version + 1, dismissed_at
        officials = [self.official(v.unit)] if rng.random() < 0.35 else []
        if officials and rng.random() < 0.15:
            officials.append(self.official(v.unit))
            if officials[0]["name"] == officials[1]["name"]:
                officials.pop()
        row = w.add(
            "findings",
            id=finding_id,
            visit_id=v.row["id"],
            plan_id=v.row["plan_id"],
            unit_id=v.unit.id,
            criterion_code=criterion.code if criterion else None,
            category=category.value,
            severity=severity.value,
            title=title,
            description=description,
            search_text=folded,
            observed_at=observed,
            lat=v.unit.lat + rng.uniform(-0.0008, 0.0008),
            lon=v.unit.lon + rng.uniform(-0.0008, 0.0008),
            accuracy_m=float(rng.randint(4, 40)),
            officials=officials,
            recommendation=words.RECOMMENDATIONS[category],
            status=status.value,
            created_by=rng.choice(v.team).id,
            submitted_at=submitted_at,
            submitted_by=v.lead.id if submitted_at else None,
            dismissed_at=dismissed_at,
            dismiss_reason=dismiss_reason,
            version=version,
            created_at=created,
            updated_at=updated,
        )
        c = self.counts
        c["findings"] += 1
        c["findings.with_officials"] += bool(officials)
        head = self.world.concerned_head.get(v.unit.id)
        wants_actions = (
            status == FindingStatus.SUBMITTED
            and head is not None
            and (severity != Severity.OBSERVATION or rng.random() < 0.15)
            and rng.random() < action_chance
        )
        if wants_actions:
            assert head is not None
            assert submitted_at is not None
            ends = [
                self._action(row, v, head, severity, category, criterion, submitted_at)
                for _ in range(1 if rng.random() < 0.85 else 2)
            ]
            if all(end is not None for end in ends):
                # Every action closed or cancelled: the finding closes with the last one
                # (actions.service._sync_finding).
                last = max(end for end in ends if end is not None)
                row.update(
                    status=FindingStatus.CLOSED.value, version=row["version"] + 1, updated_at=last
                )
        c["findings." + row["status"]] += 1
        if submitted_at is not None and row["status"] in (
            FindingStatus.SUBMITTED.value,
            FindingStatus.CLOSED.value,
        ):
            for official in officials:
                self._offer(
                    _Candidate(
                        finding_id,
                        v.row["id"],
                        v.row["plan_id"],
                        v.unit,
                        v.lead,
                        observed,
                        submitted_at,
                        title,
                        official["name"],
                        official.get("position"),
                    )
                )

    # --- discipline proposals -----------------------------------------------------------------

    def _offer(self, candidate: _Candidate) -> None:
        """Algorithm R over every named official: each is kept with the same chance."""
        capacity = 4 * self.scale.proposals
        if capacity == 0:
            return
        self.offered += 1
        if len(self.candidates) < capacity:
            self.candidates.append(candidate)
            return
        slot = self.discipline_rng.randrange(self.offered)
        if slot < capacity:
            self.candidates[slot] = candidate

    def proposals(self) -> None:
        """Proposals about officials named on the sampled findings (rows buffered).

        The same person is the same unit and folded name (`discipline/repository.py`), however the
        findings spelt them; a person named on several findings often gets a proposal on more
        than one, so repeats show. Each proposal is made by the visit's team lead, with a measure
        the rules table allows for the official on the violation date."""
        rng = self.discipline_rng
        groups: dict[tuple[str, str], list[_Candidate]] = {}
        for candidate in self.candidates:
            key = (candidate.unit.code, fold_for_column(candidate.name))
            groups.setdefault(key, []).append(candidate)
        order = sorted(groups)  # not the reservoir's order: reproducible on any database
        rng.shuffle(order)
        queues: list[list[_Candidate]] = []
        for key in order:
            # One proposal per finding (the same finding twice would be one incident).
            seen: dict[UUID, _Candidate] = {}
            for candidate in sorted(groups[key], key=lambda c: (c.observed_at, c.finding_id)):
                seen.setdefault(candidate.finding_id, candidate)
            queues.append(list(seen.values()))
        picked: list[_Candidate] = []
        # First pass: one to three findings of each person; later passes take one more each.
        for queue in queues:
            take = 1 + (rng.random() < 0.3) + (rng.random() < 0.1)
            picked += queue[:take]
            del queue[:take]
        while len(picked) < self.scale.proposals and any(queues):
            for queue in queues:
                if queue:
                    picked.append(queue.pop(0))
        for candidate in picked[: self.scale.proposals]:
            self._proposal(candidate)

    def _official_kind(self, candidate: _Candidate) -> tuple[OfficialStatus, bool]:
        """The official's status in law and whether they hold a management post: from the
        position where it says (công chức, viên chức), and the same for the same person."""
        folded = fold_for_column(candidate.name)
        person = random.Random(f"{self.seed}:official:{candidate.unit.code}:{folded}")  # noqa: S311
        position = fold(candidate.position or "")
        if position.startswith("vien chuc"):
            status = OfficialStatus.PUBLIC_EMPLOYEE
        elif position.startswith("cong chuc"):
            status = OfficialStatus.CIVIL_SERVANT
        else:
            status = person.choice(list(OfficialStatus))
        return status, person.random() < 0.15

    def _proposal(self, candidate: _Candidate) -> None:
        rng, clock, w = self.discipline_rng, self.clock, self.writer
        status, holds = self._official_kind(candidate)
        observed_day = clock.day_of(candidate.observed_at)
        # The violation was seen on the day of the visit or committed a little before it.
        violation = max(rules.TABLE_STARTS, observed_day - timedelta(days=rng.randint(0, 5)))
        detected = clock.day_of(candidate.submitted_at)
        allowed = rules.allowed_measures(status, holds, violation)
        # The lighter measures are proposed far more often.
        proposed = rng.choices(
            allowed, weights=[2 ** (len(allowed) - n) for n in range(len(allowed))]
        )[0]
        created = clock.past(candidate.submitted_at + timedelta(hours=rng.randint(1, 24 * 20)))
        age = (clock.today - detected).days
        fates = next(f for limit, f in _PROPOSAL_FATES if age < limit)
        fate: ProposalStatus = _pick(rng, fates)
        extended = rng.random() < 0.1
        due = rules.processing_due_on(detected, extended)
        created_day = clock.day_of(created)
        row = w.add(
            "proposals",
            id=_uuid7(rng, created),
            finding_id=candidate.finding_id,
            visit_id=candidate.visit_id,
            plan_id=candidate.plan_id,
            unit_id=candidate.unit.id,
            official_name=candidate.name,
            official_name_folded=fold_for_column(candidate.name),
            official_position=candidate.position,
            official_status=status.value,
            holds_management_post=holds,
            violation=candidate.title,
            violation_date=violation,
            detected_date=detected,
            proposed_measure=proposed,
            legal_basis="; ".join(rules.legal_sources(status, holds, violation)),
            status=ProposalStatus.PROPOSED.value,
            extended=extended,
            extension_reason=rng.choice(words.DISCIPLINE_EXTENSION_REASONS) if extended else None,
            proposed_by=candidate.lead.id,
            version=1 + extended,
            created_at=created,
            updated_at=created,
        )
        c = self.counts
        if fate is not ProposalStatus.PROPOSED:
            # Decided mostly within the processing time, now and then late; never tomorrow.
            late = rng.random() < 0.12
            span = max(1, (due - created_day).days) if not late else rng.randint(1, 40)
            first = created_day if not late else due
            day = min(clock.today, first + timedelta(days=rng.randint(0, span)))
            closed_at = max(
                created, clock.past(clock.at(day, rng.randint(8, 16), rng.randint(0, 59)))
            )
            day = clock.day_of(closed_at)
            row.update(
                status=fate.value,
                closed_at=closed_at,
                updated_at=closed_at,
                version=row["version"] + 1,
            )
            if fate is ProposalStatus.WITHDRAWN:
                row.update(
                    closed_by=candidate.lead.id,
                    reason=rng.choice(words.DISCIPLINE_WITHDRAW_REASONS),
                )
            else:
                row["closed_by"] = self.world.planner.id
            if fate is ProposalStatus.NOT_PURSUED:
                row["reason"] = rng.choice(words.DISCIPLINE_NOT_PURSUED_REASONS)
            if fate is ProposalStatus.DECIDED:
                # The authority may decide another measure the law allows (often a lighter one).
                measure = proposed if rng.random() < 0.7 else rng.choice(allowed)
                row.update(
                    decided_measure=measure,
                    decision_number=f"{rng.randint(1, 450)}/{rng.choice(words.DECISION_ISSUERS)}",
                    decision_date=day,
                )
        elif clock.today > due:
            c["proposals.overdue"] += 1
        c["proposals"] += 1
        c["proposals." + row["status"]] += 1
        c["proposals.extended"] += extended

    # --- corrective actions -------------------------------------------------------------------

    # One action's life reads best in the order it is lived, hence one long method.
    def _action(  # noqa: PLR0915
        self,
        finding: dict[str, Any],
        v: _VisitPlan,
        head: _Person,
        severity: Severity,
        category: Category,
        criterion: _Criterion | None,
        submitted_at: datetime,
    ) -> datetime | None:
        """One action and its timeline; returns when it was closed or cancelled (None: open)."""
        rng, clock, w = self.rng, self.clock, self.writer
        today, now = clock.today, clock.now
        created = clock.past(submitted_at + timedelta(hours=rng.randint(1, 72)))
        created = max(created, submitted_at)
        created_day = clock.day_of(created)
        priority, term = _TERMS[severity]
        original = created_day + timedelta(days=term + rng.randint(-3, 10))
        extension = rng.random() < 0.15
        extra = timedelta(days=rng.randint(10, 30))
        due = original + extra if extension else original
        thresholds = self.escalation_days
        if due < today:
            kind = _pick(
                rng,
                (
                    ("closed_on_time", 45),
                    ("closed_late", 20),
                    ("cancelled", 5),
                    ("submitted", 5),
                    ("overdue", 25),
                ),
            )
        else:
            kind = _pick(
                rng,
                (
                    ("open", 30),
                    ("in_progress", 35),
                    ("submitted", 15),
                    ("closed_on_time", 15),
                    ("cancelled", 5),
                ),
            )
        if kind == "overdue":
            # Spread overdue actions over the escalation levels, as a year of `jobs run` leaves
            # them: a level-1 action was due a few days ago, a level-3 one a month or more.
            level = rng.randint(1, len(thresholds))
            low = thresholds[level - 1]
            high = thresholds[level] - 1 if level < len(thresholds) else low + 90
            wanted = today - timedelta(days=rng.randint(low, high))
            base = wanted - extra if extension else wanted
            if base >= created_day + timedelta(days=3):
                due, original = wanted, base
        # A response needs evidence when the criterion requires it, and the generator writes no
        # evidence files: such a finding is recorded without a criterion (its category stays).
        needs_response = kind in ("closed_on_time", "closed_late", "submitted")
        if needs_response and criterion is not None and criterion.evidence_required:
            finding["criterion_code"] = None
        lead, planner = v.lead, self.world.planner
        action_id = _uuid7(rng, created)
        events: list[tuple[str, datetime, _Person | None, dict[str, Any]]] = []
        requirement = words.REQUIREMENTS[category]
        events.append(
            (
                "created",
                created,
                lead,
                {
                    "requirement": requirement,
                    "unit_id": str(v.unit.id),
                    "assignee_id": str(head.id),
                    "due_date": original.isoformat(),
                    "priority": priority.value,
                },
            )
        )
        state: dict[str, Any] = {
            "status": ActionStatus.OPEN.value,
            "rounds": 0,
            "pending_due_date": None,
            "pending_reason": None,
            "response": None,
            "submitted_at": None,
            "closed_at": None,
            "cancelled_at": None,
            "cancel_reason": None,
        }
        cursor = created
        due_end = clock.end_of(due)

        def step(limit: datetime) -> datetime | None:
            """The next moment after `cursor`, before `limit` (and before now)."""
            nonlocal cursor
            limit = min(limit, now - timedelta(minutes=1))
            if limit <= cursor + timedelta(minutes=2):
                return None
            cursor = _between(rng, cursor + timedelta(minutes=1), limit)
            return cursor

        if extension:
            asked = step(clock.end_of(original) - timedelta(days=1))
            if asked is None:
                due, extension = original, False
                due_end = clock.end_of(due)
            else:
                reason = rng.choice(words.EXTENSION_REASONS)
                events.append(
                    (
                        "extension_requested",
                        asked,
                        head,
                        {
                            "due_date": due.isoformat(),
                            "reason": reason,
                            "current_due_date": original.isoformat(),
                        },
                    )
                )
                decided = clock.past(asked + timedelta(hours=rng.randint(2, 48)))
                cursor = max(cursor, decided)
                events.append(
                    (
                        "extension_decided",
                        decided,
                        planner,
                        {
                            "approved": True,
                            "requested_due_date": due.isoformat(),
                            "note": None,
                            "previous_due_date": original.isoformat(),
                        },
                    )
                )
        closed_or_cancelled: datetime | None = None
        responded_at: datetime | None = None
        if kind == "cancelled":
            at = step(min(due_end + timedelta(days=20), now))
            if at is None:
                kind = "open"
            else:
                reason = rng.choice(words.CANCEL_REASONS)
                events.append(("cancelled", at, planner, {"reason": reason}))
                state.update(
                    status=ActionStatus.CANCELLED.value, cancelled_at=at, cancel_reason=reason
                )
                closed_or_cancelled = at
        if kind in ("in_progress", "submitted", "closed_on_time", "closed_late") or (
            kind == "overdue" and rng.random() < 0.5
        ):
            limit = due_end if kind in ("closed_on_time", "closed_late") else now
            started = step(limit - timedelta(hours=2) if kind != "closed_late" else due_end)
            if started is None:
                kind = "open"
            else:
                events.append(("started", started, head, {}))
                state["status"] = ActionStatus.IN_PROGRESS.value
        if kind in ("submitted", "closed_on_time", "closed_late"):
            if kind == "closed_late":
                cursor = max(cursor, due_end + timedelta(minutes=1))
            limit = due_end if kind == "closed_on_time" else now
            returned = kind != "submitted" and rng.random() < 0.2
            for round_ in range(2 if returned else 1):
                responded = step(limit)
                if responded is None:
                    break
                text_ = rng.choice(words.RESPONSES)
                events.append(
                    (
                        "responded",
                        responded,
                        head,
                        {"text": text_, "evidence_ids": [], "round": state["rounds"] + 1},
                    )
                )
                state.update(
                    status=ActionStatus.SUBMITTED.value, response=text_, submitted_at=responded
                )
                responded_at = responded
                if kind == "submitted":
                    break
                verified = step(limit)
                if verified is None:
                    break
                if returned and round_ == 0:
                    state["rounds"] += 1
                    events.append(
                        (
                            "verified",
                            verified,
                            lead,
                            {
                                "outcome": "returned",
                                "reason": rng.choice(words.RETURN_REASONS),
                                "round": state["rounds"],
                            },
                        )
                    )
                    state["status"] = ActionStatus.IN_PROGRESS.value
                else:
                    events.append(
                        ("verified", verified, lead, {"outcome": "accepted", "reason": None})
                    )
                    state.update(status=ActionStatus.CLOSED.value, closed_at=verified)
                    closed_or_cancelled = verified
        status = state["status"]
        if (
            status in (ActionStatus.OPEN.value, ActionStatus.IN_PROGRESS.value)
            and due >= today
            and rng.random() < 0.1
        ):
            asked = step(now)
            if asked is not None:
                state.update(
                    pending_due_date=due + timedelta(days=rng.randint(10, 30)),
                    pending_reason=rng.choice(words.EXTENSION_REASONS),
                )
                events.append(
                    (
                        "extension_requested",
                        asked,
                        head,
                        {
                            "due_date": state["pending_due_date"].isoformat(),
                            "reason": state["pending_reason"],
                            "current_due_date": due.isoformat(),
                        },
                    )
                )
        # Escalations `inspection jobs run` raised while the unit owed work past the due date:
        # until the response or cancellation, or until today.
        owed_until = clock.day_of(responded_at or closed_or_cancelled or now)
        days_late = (owed_until - due).days
        escalated = escalation_level(max(days_late, 0), thresholds)
        for level in range(1, escalated + 1):
            at = clock.past(clock.at(due + timedelta(days=thresholds[level - 1]), 0, 10))
            events.append(
                (
                    "escalated",
                    at,
                    None,
                    {
                        "level": level,
                        "days_overdue": thresholds[level - 1],
                        "due_date": due.isoformat(),
                    },
                )
            )
        reminded = None
        if due - timedelta(days=self.due_soon_days) <= today and owed_until >= due - timedelta(
            days=self.due_soon_days
        ):
            reminded = due
        events.sort(key=lambda e: e[1])
        changing = [e for e in events if e[0] != "comment"]
        w.add(
            "actions",
            id=action_id,
            finding_id=finding["id"],
            visit_id=finding["visit_id"],
            plan_id=finding["plan_id"],
            unit_id=v.unit.id,
            assignee_id=head.id,
            requirement=requirement,
            priority=priority.value,
            due_date=due,
            original_due_date=original,
            extensions_approved=1 if extension else 0,
            escalated_level=escalated,
            reminded_for=reminded,
            created_by=lead.id,
            version=len(changing),
            created_at=created,
            updated_at=events[-1][1],
            **state,
        )
        for kind_, at, actor, data in events:
            w.add(
                "events",
                id=_uuid7(rng, at),
                action_id=action_id,
                kind=kind_,
                at=at,
                actor_id=actor.id if actor else None,
                actor=actor.username if actor else audit.SYSTEM.name,
                data=data,
            )
        self.counts["events"] += len(events)
        self._count_action(state["status"], due, closed_or_cancelled, escalated)
        return closed_or_cancelled

    def _count_action(self, status: str, due: date, ended: datetime | None, level: int) -> None:
        c = self.counts
        c["actions"] += 1
        if status == ActionStatus.CLOSED.value:
            assert ended is not None
            late = ended > self.clock.end_of(due)
            c["actions.closed_late" if late else "actions.closed_on_time"] += 1
        elif (
            status in (ActionStatus.OPEN.value, ActionStatus.IN_PROGRESS.value)
            and due < self.clock.today
        ):
            c[f"actions.overdue_{level}"] += 1
        else:
            c["actions." + status] += 1


async def load_scale_world(database: Database, units: int, inspectors: int = 20) -> None:
    """A generated province of about `units` units for benches, through the services (rules and
    audit included), like `inspection demo`: Sở Nội vụ and its inspectors, a planner, districts
    each with a head (so every commune has a head concerned), communes and one-stop shops, and
    the demo checklist. Idempotent: what exists already is left as it is."""
    districts = max(2, units // 20)
    rest = max(units - 2 - districts, districts)
    shops = rest // 9
    communes = rest - shops
    rows = [
        schemas.UnitImportRow("P", "Tỉnh Thái Nguyên", UnitKind.PROVINCE),
        schemas.UnitImportRow("P-SNV", "Sở Nội vụ", UnitKind.DEPARTMENT, "P"),
    ]
    rows += [
        schemas.UnitImportRow(f"P-D{d:02}", f"Huyện số {d}", UnitKind.DISTRICT, "P")
        for d in range(1, districts + 1)
    ]
    for n in range(communes):
        district = f"P-D{n % districts + 1:02}"
        code = f"{district}-C{n // districts + 1:03}"
        rows.append(schemas.UnitImportRow(code, f"UBND xã số {n + 1}", UnitKind.COMMUNE, district))
        if n < shops:
            rows.append(
                schemas.UnitImportRow(
                    f"{code}-1C", f"Bộ phận một cửa xã số {n + 1}", UnitKind.ONE_STOP_SHOP, code
                )
            )
    people = [("ke.hoach", "Trần Thị Mai", Role.PLANNER, "P")]
    people += [
        (f"thanh.tra{i:02}", f"Thanh tra viên {i:02}", Role.INSPECTOR, "P-SNV")
        for i in range(1, inspectors + 1)
    ]
    people += [
        (f"chu.tich.d{d:02}", f"Chủ tịch huyện số {d}", Role.UNIT_HEAD, f"P-D{d:02}")
        for d in range(1, districts + 1)
    ]
    async with transaction(database) as session:
        admin = await session.scalar(select(User).where(User.username == ADMIN_USERNAME))
        if admin is None:
            raise RuntimeError("no admin yet: migrate the database and create it first")
        system_admin = Principal(
            admin.id, admin.username, admin.full_name, None, (GrantScope(Role.ADMIN, None, None),)
        )
        imported = await UnitService(session, system_admin).import_units(rows)
        ids = {u.code: u.id for u in imported.units}
        await ensure_checklist(session, system_admin)
        existing = set((await session.scalars(select(User.username))).all())
        service = UserService(session, system_admin)
        for username, full_name, role, unit_code in people:
            if username in existing:
                continue
            # Inspectors work at Sở Nội vụ; the others at the unit they hold their role on.
            home = ids["P-SNV"] if role == Role.INSPECTOR else ids[unit_code]
            await service.create(
                schemas.UserCreate(
                    username=username,
                    full_name=full_name,
                    password=DEMO_PASSWORD,
                    unit_id=home,
                    grants=[schemas.GrantCreate(role=role, unit_id=ids[unit_code])],
                )
            )


async def history_present(session: AsyncSession) -> bool:
    """Whether a year of history was generated into this database already."""
    found = await session.scalar(
        select(AuditEntry.seq).where(AuditEntry.entity == HISTORY_ENTITY).limit(1)
    )
    return found is not None


async def generate_history(
    database: Database,
    *,
    visits: int = DEMO_SCALE.visits,
    findings: int = DEMO_SCALE.findings,
    actions: int = DEMO_SCALE.actions,
    proposals: int = DEMO_SCALE.proposals,
    seed: int = 2026,
    now: datetime | None = None,
    zone: ZoneInfo | None = None,
    escalation_days: Sequence[int] = (1, 7, 30),
    due_soon_days: int = 3,
    units: int | None = None,
) -> HistoryReport:
    """Insert a year of history ending `now` (default: the current time) into a database that
    holds units, inspectors, a planner of the top unit and a checklist; at most once.

    With `units`, a generated province of that size is loaded first (`load_scale_world`): the
    bench's entry point, e.g. `generate_history(db, units=200, visits=1_000,
    findings=1_000_000, actions=300_000, proposals=5_000)`.

    All rows and the one audit entry commit together or not at all. The chain head is locked
    for the whole run, so two runs cannot both add a year; writers that audit wait meanwhile.
    """
    started = time.perf_counter()
    if units is not None:
        await load_scale_world(database, units)
    clock_ = _Clock(now or datetime.now(UTC), zone or ZoneInfo("Asia/Ho_Chi_Minh"))
    scale = HistoryScale(visits, findings, actions, proposals)
    async with transaction(database) as session:
        await session.scalar(select(AuditHead).with_for_update())
        if await history_present(session):
            return HistoryReport(created=False, seed=seed)
        world = await _read_world(session)
        connection = await session.connection()
        writer = _Writer(connection)
        history = _History(world, scale, seed, clock_, escalation_days, due_soon_days, writer)
        on_site = history.plans()
        await writer.flush()
        chance = history.allocate(on_site)
        await history.findings(on_site, chance)
        await writer.flush()
        history.proposals()
        await writer.flush()
        # A checklist that a plan uses is frozen (plans.service.create_plan).
        await connection.execute(
            update(Checklist)
            .where(Checklist.id == world.checklist_id, Checklist.frozen.is_(False))
            .values(frozen=True, version=Checklist.version + 1, updated_at=clock_.now)
        )
        await audit.record(
            session,
            audit.SYSTEM,
            HISTORY_ENTITY,
            f"seed:{seed}",
            "generate",
            {
                "seed": {"after": seed},
                "until": {"after": clock_.now.isoformat()},
                "counts": {"after": dict(sorted(history.counts.items()))},
            },
        )
        if connection.dialect.name == "postgresql":
            # Fresh statistics, or the first reports plan their queries for empty tables.
            for name in (
                "plans",
                "visits",
                "checklist_responses",
                "findings",
                "corrective_actions",
                "action_events",
                "discipline_proposals",
            ):
                await connection.execute(text(f"ANALYZE {name}"))
    return HistoryReport(True, seed, history.counts, time.perf_counter() - started)
