"""Queries of discipline: what of proposals a principal may read (`readable`, built from
`inspection.access`), and repeat offences.

Repeat offences are officials named for violations more than once in a rolling 12 months.

The same official is the same unit and the same folded name ("nguyen  van a" is "Nguyễn Văn A",
`inspection.kit.search.fold`). An incident is one finding: a submitted (or closed) finding of the
unit that names the official, or the finding a proposal about the official was made on (withdrawn
proposals excepted). A proposal made on a finding that also names the official is one incident,
not two. Findings count by the local date they were observed, proposals by the violation date,
both from the same day a year before `today` up to `today`.

A measure decided for the official stays in force for 12 months from its decision date; a new
violation meanwhile calls for a heavier measure (Decree 172/2025/NĐ-CP, Art. 2; before it, Decree
112/2020/NĐ-CP, Art. 2), so each record carries the measures in force.

The repeat-offence queries decide no visibility: callers pass the predicates they filter with
(`where_findings`, `where_proposals`). The discipline report lists flagged officials with
`flagged_officials`, passing `findings.repository.officials_readable` too, so a reader counts
only incidents whose names they may read. Findings that name nobody (`officials` is `[]`) are
left in the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    exists,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from inspection.access import scopes, seal
from inspection.access.principal import Principal
from inspection.discipline.models import DisciplineProposal, ProposalStatus
from inspection.discipline.rules import IN_FORCE_MONTHS, MEASURE_ORDER, Measure, add_years
from inspection.findings.models import Finding, FindingStatus
from inspection.kit.search import fold_for_column
from inspection.plans.models import Visit
from inspection.units.models import Unit
from inspection.units.roles import Role

_VISIT = aliased(Visit)


def readable(principal: Principal) -> ColumnElement[bool]:
    """SQL for `DisciplineProposal`: who may know that an official is proposed for discipline.

    - leaders and planners covering the official's unit;
    - the team of the visit's plan;
    - the head of the unit concerned by the official's unit (`access.scopes.unit_concerned`): the
      nearest headed unit at or above it, as for the officials named in a finding. Other unit heads,
      the heads above included, never see a proposal;
    - and, whoever the viewer, nothing of a visit before its check-in (a proposal needs a
      submitted finding, hence a checked-in visit; the seal is stated here all the same).
    """
    visit = _VISIT
    checked_in = exists(
        select(visit.id)
        .where(visit.id == DisciplineProposal.visit_id, visit.checked_in_at.is_not(None))
        .correlate_except(visit)
    )
    clauses = [
        scopes.organises(principal, DisciplineProposal.unit_id),
        seal.on_team(principal, DisciplineProposal.plan_id),
    ]
    headed = [g.unit_id for g in principal.grants if g.role == Role.UNIT_HEAD and g.unit_id]
    if headed:
        clauses.append(
            exists(
                select(Unit.id).where(
                    Unit.id == DisciplineProposal.unit_id,
                    scopes.unit_concerned(Unit.path).in_(headed),
                )
            )
        )
    return and_(checked_in, or_(*clauses))


WINDOW_YEARS = 1
COUNTED_FINDINGS = (FindingStatus.SUBMITTED.value, FindingStatus.CLOSED.value)


@dataclass(frozen=True, slots=True, order=True)
class OfficialKey:
    """Who an official is for repeat counting: their unit and folded name."""

    unit_id: UUID
    name_folded: str

    @classmethod
    def of(cls, unit_id: UUID, name: str) -> OfficialKey:
        """The key of an official as written."""
        return cls(unit_id, fold_for_column(name))


@dataclass(frozen=True, slots=True)
class InForce:
    """A measure decided for the official that is still in force today."""

    proposal_id: UUID
    measure: Measure
    decision_number: str | None
    decision_date: date
    in_force_until: date


@dataclass(frozen=True, slots=True)
class Decision:
    """A measure decided for the official: the discipline report's "last decided measure"."""

    measure: Measure
    decision_number: str | None
    decision_date: date


@dataclass(slots=True)
class RepeatRecord:
    """One official's incidents in the window and the measures in force.

    `name` is the first spelling written out in full (with diacritics or capitals), a proposal's
    (oldest first) before a finding's (in observation order): "nguyen van a" typed in a hurry
    never hides "Nguyễn Văn A", and every read shows the same one."""

    key: OfficialKey
    name: str
    finding_ids: set[UUID] = field(default_factory=set)
    in_force: list[InForce] = field(default_factory=list)
    # The first written on a proposal about the official (oldest first), else on a finding.
    position: str | None = None
    # The latest decision among the proposals seen (not only those still in force).
    last_decision: Decision | None = None

    @property
    def count(self) -> int:
        """Distinct incidents (findings) in the window."""
        return len(self.finding_ids)

    def flagged(self, threshold: int) -> bool:
        """Whether the official reaches the repeat threshold."""
        return self.count >= threshold

    def heaviest_in_force(self, excluding: UUID | None = None) -> InForce | None:
        """The heaviest measure in force (the latest among equals), other than `excluding`."""
        candidates = [m for m in self.in_force if m.proposal_id != excluding]
        if not candidates:
            return None
        return max(candidates, key=lambda m: (MEASURE_ORDER.index(m.measure), m.decision_date))


def window_start(today: date) -> date:
    """The first day of the rolling window that ends `today`."""
    return add_years(today, -WINDOW_YEARS)


def _local_range(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in `zone`, as aware datetimes."""
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )


async def _collect(
    session: AsyncSession,
    *,
    today: date,
    zone: ZoneInfo,
    where_findings: Sequence[ColumnElement[bool]],
    where_proposals: Sequence[ColumnElement[bool]],
    keys: set[OfficialKey] | None,
) -> dict[OfficialKey, RepeatRecord]:
    start = window_start(today)
    begins, ends = _local_range(start, today, zone)
    records: dict[OfficialKey, RepeatRecord] = {}

    # A unit has few officials and they are spelt a few ways: fold each spelling once (folding
    # was most of the time of a report over 100,000 findings).
    folds: dict[str, str] = {}

    def folded(name: str) -> str:
        found = folds.get(name)
        if found is None:
            found = folds[name] = fold_for_column(name)
        return found

    def plain(name: str) -> bool:
        """Written without diacritics or capitals ("nguyen van a")."""
        return name == folded(name)

    def record(key: OfficialKey, name: str, position: str | None) -> RepeatRecord | None:
        if keys is not None and key not in keys:
            return None
        found = records.get(key)
        if found is None:
            found = records[key] = RepeatRecord(key, name, position=position)
        elif plain(found.name) and not plain(name):
            # "nguyen van a" typed in a hurry gives way to "Nguyễn Văn A" written out.
            found.name = name
        found.position = found.position or position
        return found

    finding_filters = [
        Finding.status.in_(COUNTED_FINDINGS),
        # Most findings name nobody: leave them in the database rather than decode their JSON
        # here. An empty list is stored as `[]` on both databases (jsonb prints it so too);
        # anything else, however malformed, reaches `_officials`.
        cast(Finding.officials, String) != "[]",
        Finding.observed_at >= begins,
        Finding.observed_at < ends,
        *where_findings,
    ]
    proposal_filters: list[ColumnElement[bool]] = [
        DisciplineProposal.status != ProposalStatus.WITHDRAWN.value,
        or_(
            and_(
                DisciplineProposal.violation_date >= start,
                DisciplineProposal.violation_date <= today,
            ),
            and_(
                DisciplineProposal.status == ProposalStatus.DECIDED.value,
                DisciplineProposal.decision_date > add_years(today, -1),
                DisciplineProposal.decision_date <= today,
            ),
        ),
        *where_proposals,
    ]
    if keys is not None:
        units = {k.unit_id for k in keys}
        finding_filters.append(Finding.unit_id.in_(units))
        proposal_filters.append(DisciplineProposal.unit_id.in_(units))
        proposal_filters.append(
            DisciplineProposal.official_name_folded.in_({k.name_folded for k in keys})
        )
    # Proposals first, oldest first, then findings in observation order: the name and the
    # position shown are the first written out in full, a proposal's (stated deliberately)
    # before a finding's (a passing note), and the same on every read.
    proposals = await session.scalars(
        select(DisciplineProposal)
        .where(*proposal_filters)
        .order_by(DisciplineProposal.created_at, DisciplineProposal.id)
    )
    for proposal in proposals:
        found = record(
            OfficialKey(proposal.unit_id, proposal.official_name_folded),
            proposal.official_name,
            proposal.official_position or None,
        )
        if found is None:
            continue
        if start <= proposal.violation_date <= today:
            found.finding_ids.add(proposal.finding_id)
        decision = _decision(proposal, today)
        if decision is not None and (
            found.last_decision is None
            or decision.decision_date >= found.last_decision.decision_date
        ):
            found.last_decision = decision
        in_force = _in_force(proposal, today)
        if in_force is not None:
            found.in_force.append(in_force)
    findings = await session.execute(
        select(Finding.id, Finding.unit_id, Finding.officials)
        .where(*finding_filters)
        .order_by(Finding.observed_at, Finding.id)
    )
    for finding_id, unit_id, officials in findings.tuples():
        for official, position in _officials(officials):
            found = record(OfficialKey(unit_id, folded(official)), official, position)
            if found is not None:
                found.finding_ids.add(finding_id)
    return records


def _officials(value: Any) -> Iterable[tuple[str, str | None]]:
    """The (name, position) of each official in a finding's `officials` column, skipping
    anything malformed."""
    if not isinstance(value, list):
        return []
    found: list[tuple[str, str | None]] = []
    for official in value:
        if not isinstance(official, dict):
            continue
        name, position = official.get("name"), official.get("position")
        if isinstance(name, str) and name.strip():
            found.append((name, position if isinstance(position, str) and position else None))
    return found


def _decision(proposal: DisciplineProposal, today: date) -> Decision | None:
    if (
        proposal.status != ProposalStatus.DECIDED.value
        or proposal.decision_date is None
        or proposal.decided_measure is None
        or proposal.decision_date > today
    ):
        return None
    return Decision(
        Measure(proposal.decided_measure), proposal.decision_number, proposal.decision_date
    )


def _in_force(proposal: DisciplineProposal, today: date) -> InForce | None:
    if proposal.status != ProposalStatus.DECIDED.value or proposal.decision_date is None:
        return None
    until = add_years(proposal.decision_date, IN_FORCE_MONTHS // 12)
    if not proposal.decision_date <= today < until or proposal.decided_measure is None:
        return None
    return InForce(
        proposal.id,
        Measure(proposal.decided_measure),
        proposal.decision_number,
        proposal.decision_date,
        until,
    )


async def repeats_of(
    session: AsyncSession,
    keys: Iterable[OfficialKey],
    *,
    today: date,
    zone: ZoneInfo,
    where_findings: Sequence[ColumnElement[bool]] = (),
    where_proposals: Sequence[ColumnElement[bool]] = (),
) -> dict[OfficialKey, RepeatRecord]:
    """The record of each official in `keys` (an empty one for those without incidents)."""
    wanted = set(keys)
    if not wanted:
        return {}
    found = await _collect(
        session,
        today=today,
        zone=zone,
        where_findings=where_findings,
        where_proposals=where_proposals,
        keys=wanted,
    )
    return {key: found.get(key) or RepeatRecord(key, key.name_folded) for key in wanted}


async def flagged_officials(
    session: AsyncSession,
    *,
    today: date,
    zone: ZoneInfo,
    threshold: int,
    where_findings: Sequence[ColumnElement[bool]] = (),
    where_proposals: Sequence[ColumnElement[bool]] = (),
) -> list[RepeatRecord]:
    """Every official at or over `threshold` in the window ending `today`, most incidents first
    (then by unit and name): the list of the discipline report."""
    found = await _collect(
        session,
        today=today,
        zone=zone,
        where_findings=where_findings,
        where_proposals=where_proposals,
        keys=None,
    )
    flagged = [r for r in found.values() if r.flagged(threshold)]
    return sorted(flagged, key=lambda r: (-r.count, r.key))
