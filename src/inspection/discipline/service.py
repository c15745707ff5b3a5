"""Rules of discipline proposals: who proposes, decides and withdraws, what the law allows on
the violation date (`rules.py`), the deadlines, and the repeat record (`repeats.py`).

Every change locks the proposal, checks `If-Match` (428 without, 412 stale), then the status
(409), and writes its audit entry in the request's transaction. The audit entry is filed under
the plan (as findings and actions are), so only those who see the plan whole read the official's
name in the log.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal, may_decide_discipline
from inspection.audit import recorder as audit
from inspection.audit.recorder import actor_of
from inspection.db.session import lock as lock_rows
from inspection.discipline import repository as discipline_repository
from inspection.discipline import rules, schemas
from inspection.discipline.models import DisciplineProposal, ProposalStatus
from inspection.discipline.repository import OfficialKey, RepeatRecord, repeats_of
from inspection.discipline.rules import Measure, OfficialStatus
from inspection.errors import Conflict, Forbidden, InvalidTransition, NotFound, Rejected
from inspection.findings import repository as findings_repository
from inspection.findings.models import Finding, FindingStatus
from inspection.kit.concurrency import check_version
from inspection.kit.pagination import Page, SortKey, keyset_page
from inspection.kit.search import fold_for_column, folded_contains
from inspection.plans.models import Plan, TeamMember, TeamRole
from inspection.settings import Settings
from inspection.units.models import Unit
from inspection.units.roles import Role
from inspection.units.tree import in_subtree

PROPOSABLE_FINDINGS = (FindingStatus.SUBMITTED.value, FindingStatus.CLOSED.value)


def allowed_transitions(proposal: DisciplineProposal) -> list[str]:
    """What the status allows (whoever may do it): only a proposal still open moves."""
    if proposal.status != ProposalStatus.PROPOSED.value:
        return []
    moves = ["decide", "withdraw"]
    if not proposal.extended:
        moves.append("extend")
    return moves


def _describe(status: OfficialStatus, holds_post: bool) -> str:
    post = "holding" if holds_post else "not holding"
    return f"a {status.value} {post} a management post"


def _measure_error(
    field: str, value: str, status: OfficialStatus, holds_post: bool, violation_date: date
) -> Rejected:
    """422 naming the field and the measures the table allows instead."""
    allowed = rules.allowed_measures(status, holds_post, violation_date)
    error = Rejected.field(
        field,
        f"{value!r} is not a measure the law allows for {_describe(status, holds_post)} "
        f"for a violation on {violation_date.isoformat()}; allowed: {', '.join(allowed)}",
    )
    error.extra["allowed_measures"] = allowed
    return error


def check_measure(
    field: str, value: str, status: OfficialStatus, holds_post: bool, violation_date: date
) -> Measure:
    """`value` as a measure the table allows on that date, or a 422 that lists those allowed."""
    if violation_date < rules.TABLE_STARTS:
        raise Rejected.field(
            "violation_date",
            f"the rules table starts on {rules.TABLE_STARTS.isoformat()}; earlier violations "
            "are not covered (docs/discipline.md)",
        )
    allowed = rules.allowed_measures(status, holds_post, violation_date)
    if value not in allowed:
        raise _measure_error(field, value, status, holds_post, violation_date)
    return Measure(value)


class DisciplineService:
    """Discipline proposals as the signed-in user may see and move them."""

    def __init__(
        self, session: AsyncSession, principal: Principal, settings: Settings, now: datetime
    ) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.now = now
        self.today = now.astimezone(settings.zone).date()

    # --- deadlines -------------------------------------------------------------------------

    def limitation_ends_on(self, violation_date: date, measure: Measure) -> date:
        """The last day the violation may be disciplined with a measure of that class."""
        years = self.settings.discipline_limitation_years.for_measure(measure)
        return rules.limitation_ends_on(violation_date, years)

    # --- reading ---------------------------------------------------------------------------

    async def _shape_all(self, proposals: list[DisciplineProposal]) -> list[schemas.Proposal]:
        keys = {OfficialKey(p.unit_id, p.official_name_folded) for p in proposals}
        records = await repeats_of(self.session, keys, today=self.today, zone=self.settings.zone)
        return [
            self._shape(p, records[OfficialKey(p.unit_id, p.official_name_folded)])
            for p in proposals
        ]

    def _shape(self, proposal: DisciplineProposal, record: RepeatRecord) -> schemas.Proposal:
        status = OfficialStatus(proposal.official_status)
        holds = proposal.holds_management_post
        measure = Measure(proposal.decided_measure or proposal.proposed_measure)
        due = rules.processing_due_on(proposal.detected_date, proposal.extended)
        open_ = proposal.status == ProposalStatus.PROPOSED.value
        threshold = self.settings.repeat_threshold
        in_force = record.heaviest_in_force(excluding=proposal.id)
        return schemas.Proposal(
            id=proposal.id,
            finding_id=proposal.finding_id,
            visit_id=proposal.visit_id,
            plan_id=proposal.plan_id,
            official=schemas.Official(
                name=proposal.official_name,
                position=proposal.official_position,
                unit_id=proposal.unit_id,
                status=status,
                holds_management_post=holds,
            ),
            violation=proposal.violation,
            violation_date=proposal.violation_date,
            detected_date=proposal.detected_date,
            proposed_measure=proposal.proposed_measure,
            legal_basis=proposal.legal_basis,
            status=ProposalStatus(proposal.status),
            allowed_measures=rules.allowed_measures(status, holds, proposal.violation_date),
            legal_sources=rules.legal_sources(status, holds, proposal.violation_date),
            processing_due_on=due,
            processing_extended=proposal.extended,
            processing_overdue=open_ and self.today > due,
            limitation_ends_on=self.limitation_ends_on(proposal.violation_date, measure),
            repeat=schemas.Repeat(
                count=record.count,
                flagged=record.flagged(threshold),
                threshold=threshold,
                measure_in_force=None
                if in_force is None
                else schemas.MeasureInForce(
                    proposal_id=in_force.proposal_id,
                    measure=in_force.measure.value,
                    decision_number=in_force.decision_number,
                    decision_date=in_force.decision_date,
                    in_force_until=in_force.in_force_until,
                ),
            ),
            outcome=self._outcome(proposal),
            allowed_transitions=allowed_transitions(proposal),
            proposed_by=proposal.proposed_by,
            created_at=proposal.created_at,
            updated_at=proposal.updated_at,
            version=proposal.version,
            extension_reason=proposal.extension_reason,
        )

    @staticmethod
    def _outcome(proposal: DisciplineProposal) -> schemas.Outcome | None:
        if proposal.status == ProposalStatus.PROPOSED.value or proposal.closed_at is None:
            return None
        if proposal.status == ProposalStatus.DECIDED.value:
            return schemas.Outcome(
                outcome="decided",
                at=proposal.closed_at,
                by=proposal.closed_by,
                measure=proposal.decided_measure,
                decision_number=proposal.decision_number,
                decision_date=proposal.decision_date,
            )
        return schemas.Outcome(
            outcome="not_pursued"
            if proposal.status == ProposalStatus.NOT_PURSUED.value
            else "withdrawn",
            at=proposal.closed_at,
            by=proposal.closed_by,
            reason=proposal.reason,
        )

    async def _visible(self, proposal_id: UUID, *, lock: bool = False) -> DisciplineProposal:
        proposal = await self.session.scalar(
            select(DisciplineProposal).where(
                DisciplineProposal.id == proposal_id, discipline_repository.readable(self.principal)
            )
        )
        if proposal is None:
            raise NotFound(f"discipline proposal {proposal_id} not found")
        if lock:  # changes to one proposal are decided one at a time
            await lock_rows(self.session, proposal)
        return proposal

    async def get(self, proposal_id: UUID) -> schemas.Proposal:
        """One proposal, with its allowed measures, deadlines and repeat record."""
        return (await self._shape_all([await self._visible(proposal_id)]))[0]

    async def list_proposals(
        self,
        *,
        unit_id: UUID | None,
        under: UUID | None,
        status: ProposalStatus | None,
        measure: Measure | None,
        q: str | None,
        detected_from: date | None,
        detected_to: date | None,
        cursor: str | None,
        limit: int,
    ) -> Page[schemas.Proposal]:
        """Proposals the user may see, latest detection first. `measure` is the measure
        decided, or the one proposed while undecided; `q` the official's name, ignoring
        diacritics, case and spacing."""
        if detected_from and detected_to and detected_from > detected_to:
            raise Rejected.field("from", "is after `to`")
        statement = select(DisciplineProposal).where(discipline_repository.readable(self.principal))
        if unit_id is not None:
            statement = statement.where(DisciplineProposal.unit_id == unit_id)
        if under is not None:
            statement = statement.where(
                await in_subtree(self.session, DisciplineProposal.unit_id, under)
            )
        if status is not None:
            statement = statement.where(DisciplineProposal.status == status.value)
        if measure is not None:
            current = func.coalesce(
                DisciplineProposal.decided_measure, DisciplineProposal.proposed_measure
            )
            statement = statement.where(current == measure.value)
        if q is not None and q.strip():
            statement = statement.where(folded_contains(DisciplineProposal.official_name_folded, q))
        if detected_from is not None:
            statement = statement.where(DisciplineProposal.detected_date >= detected_from)
        if detected_to is not None:
            statement = statement.where(DisciplineProposal.detected_date <= detected_to)
        keys = [
            SortKey(DisciplineProposal.detected_date, descending=True),
            SortKey(DisciplineProposal.id, descending=True),
        ]
        rows, next_cursor = await keyset_page(self.session, statement, keys, cursor, limit)
        return Page(items=await self._shape_all(rows), next_cursor=next_cursor)

    # --- creating --------------------------------------------------------------------------

    async def _unit(self, unit_id: UUID) -> Unit:
        unit = await self.session.get(Unit, unit_id)
        if unit is None:
            raise NotFound(f"unit {unit_id} not found")
        return unit

    async def _is_lead(self, plan_id: UUID) -> bool:
        role = await self.session.scalar(
            select(TeamMember.role).where(
                TeamMember.plan_id == plan_id, TeamMember.user_id == self.principal.user_id
            )
        )
        return role == TeamRole.LEAD.value

    def _check_dates(self, data: schemas.ProposalCreate) -> None:
        if data.violation_date > self.today:
            raise Rejected.field("violation_date", "is in the future")
        if data.detected_date > self.today:
            raise Rejected.field("detected_date", "is in the future")
        if data.detected_date < data.violation_date:
            raise Rejected.field("detected_date", "is before the violation_date")

    async def create(self, finding_id: UUID, data: schemas.ProposalCreate) -> schemas.Proposal:
        """A proposal on a submitted (or closed) finding, by the team lead of its visit or a
        planner over the inspected unit."""
        finding = await self.session.scalar(
            select(Finding).where(
                Finding.id == finding_id, findings_repository.readable(self.principal)
            )
        )
        if finding is None:
            raise NotFound(f"finding {finding_id} not found")
        plan = await self.session.get(Plan, finding.plan_id)
        assert plan is not None
        await lock_rows(self.session, plan, finding)
        visited = await self._unit(finding.unit_id)
        planner = self.principal.covers(visited.path, [Role.PLANNER])
        if not planner and not await self._is_lead(plan.id):
            raise Forbidden("only the team lead of the visit or a planner proposes discipline")
        if finding.status not in PROPOSABLE_FINDINGS:
            raise InvalidTransition(finding.status, "propose discipline")
        official = data.official
        unit = await self.session.get(Unit, official.unit_id)
        if unit is None or not unit.path.startswith(visited.path):
            raise Rejected.field("official.unit_id", "must be the inspected unit or inside it")
        self._check_dates(data)
        measure = check_measure(
            "proposed_measure",
            data.proposed_measure,
            official.status,
            official.holds_management_post,
            data.violation_date,
        )
        ends = self.limitation_ends_on(data.violation_date, measure)
        if ends < self.today:
            raise Rejected.field(
                "violation_date",
                f"the limitation period for {measure.value} ended on {ends.isoformat()} "
                "(INSPECTION_DISCIPLINE_LIMITATION_YEARS)",
            )
        name = " ".join(official.name.split())
        proposal = DisciplineProposal(
            finding_id=finding.id,
            visit_id=finding.visit_id,
            plan_id=plan.id,
            unit_id=unit.id,
            official_name=name,
            official_name_folded=fold_for_column(name),
            official_position=(official.position or "").strip() or None,
            official_status=official.status.value,
            holds_management_post=official.holds_management_post,
            violation=data.violation.strip(),
            violation_date=data.violation_date,
            detected_date=data.detected_date,
            proposed_measure=measure.value,
            legal_basis=(data.legal_basis or "").strip() or None,
            status=ProposalStatus.PROPOSED.value,
            extended=False,
            proposed_by=self.principal.user_id,
        )
        self.session.add(proposal)
        await self.session.flush()
        await self._audit(
            proposal,
            plan,
            "proposed",
            audit.created(
                {
                    "finding_id": finding.id,
                    "unit_id": unit.id,
                    "official_name": name,
                    "official_status": official.status.value,
                    "holds_management_post": official.holds_management_post,
                    "violation_date": data.violation_date,
                    "detected_date": data.detected_date,
                    "proposed_measure": measure.value,
                    "status": proposal.status,
                }
            ),
        )
        return (await self._shape_all([proposal]))[0]

    # --- transitions -----------------------------------------------------------------------

    async def _open(self, proposal_id: UUID) -> tuple[DisciplineProposal, Plan]:
        """The proposal, locked, with its plan; the caller checks who may move it, then the
        version (428/412) and the status (409), in that order."""
        proposal = await self._visible(proposal_id, lock=True)
        plan = await self.session.get(Plan, proposal.plan_id)
        assert plan is not None
        return proposal, plan

    def _check(self, proposal: DisciplineProposal, expected_version: int | None, move: str) -> None:
        check_version(proposal.version, expected_version, "discipline proposal")
        if move not in allowed_transitions(proposal):
            raise InvalidTransition(proposal.status, move, allowed_transitions(proposal))

    async def _require_decider(self, proposal: DisciplineProposal, what: str) -> None:
        unit = await self._unit(proposal.unit_id)
        if not may_decide_discipline(self.principal, unit.path):
            raise Forbidden(f"only a leader or a planner over the official's unit may {what}")

    async def decide(
        self, proposal_id: UUID, data: schemas.Decision, expected_version: int | None
    ) -> schemas.Proposal:
        """Record the outcome: a measure decided (allowed on the violation date, possibly not
        the one proposed) with its decision number and date, or not pursued with a reason."""
        proposal, plan = await self._open(proposal_id)
        await self._require_decider(proposal, "decide")
        self._check(proposal, expected_version, "decide")
        before = proposal.status
        changes: dict[str, Any]
        if data.outcome == "decided":
            measure = self._check_decision(proposal, data)
            proposal.status = ProposalStatus.DECIDED.value
            proposal.decided_measure = measure.value
            proposal.decision_number = (data.decision_number or "").strip()
            proposal.decision_date = data.decision_date
            changes = {
                "measure": measure.value,
                "decision_number": proposal.decision_number,
                "decision_date": data.decision_date,
            }
        else:
            for name in ("measure", "decision_number", "decision_date"):
                if getattr(data, name) is not None:
                    raise Rejected.field(name, "goes only with outcome `decided`")
            if data.reason is None or not data.reason.strip():
                raise Rejected.field("reason", "a proposal not pursued needs a reason")
            proposal.status = ProposalStatus.NOT_PURSUED.value
            proposal.reason = data.reason.strip()
            changes = {"reason": proposal.reason}
        await self._close(proposal, plan, data.outcome, before, changes)
        return (await self._shape_all([proposal]))[0]

    def _check_decision(self, proposal: DisciplineProposal, data: schemas.Decision) -> Measure:
        if data.measure is None:
            error = Rejected.field("measure", "is required with outcome `decided`")
            error.extra["allowed_measures"] = rules.allowed_measures(
                OfficialStatus(proposal.official_status),
                proposal.holds_management_post,
                proposal.violation_date,
            )
            raise error
        if data.decision_number is None or not data.decision_number.strip():
            raise Rejected.field("decision_number", "is required with outcome `decided`")
        if data.decision_date is None:
            raise Rejected.field("decision_date", "is required with outcome `decided`")
        if data.reason is not None:
            raise Rejected.field("reason", "goes only with outcome `not_pursued`")
        measure = check_measure(
            "measure",
            data.measure,
            OfficialStatus(proposal.official_status),
            proposal.holds_management_post,
            proposal.violation_date,
        )
        if data.decision_date > self.today:
            raise Rejected.field("decision_date", "is in the future")
        if data.decision_date < proposal.detected_date:
            raise Rejected.field("decision_date", "is before the violation was detected")
        ends = self.limitation_ends_on(proposal.violation_date, measure)
        if data.decision_date > ends:
            raise Rejected.field(
                "decision_date",
                f"is after the limitation period for {measure.value} ended ({ends.isoformat()})",
            )
        return measure

    async def withdraw(
        self, proposal_id: UUID, data: schemas.Withdrawal, expected_version: int | None
    ) -> schemas.Proposal:
        """The proposer takes the proposal back, with a reason."""
        proposal, plan = await self._open(proposal_id)
        if proposal.proposed_by != self.principal.user_id:
            raise Forbidden("only the proposer may withdraw a proposal")
        self._check(proposal, expected_version, "withdraw")
        before = proposal.status
        proposal.status = ProposalStatus.WITHDRAWN.value
        proposal.reason = data.reason.strip()
        await self._close(proposal, plan, "withdrawn", before, {"reason": proposal.reason})
        return (await self._shape_all([proposal]))[0]

    async def extend(
        self, proposal_id: UUID, data: schemas.Extension, expected_version: int | None
    ) -> schemas.Proposal:
        """A complex case: the processing time becomes 150 days from detection, once."""
        proposal, plan = await self._open(proposal_id)
        await self._require_decider(proposal, "extend the processing time")
        self._check(proposal, expected_version, "extend")
        if proposal.extended:
            raise Conflict("the processing time is already extended")
        before_due = rules.processing_due_on(proposal.detected_date, extended=False)
        proposal.extended = True
        proposal.extension_reason = data.reason.strip()
        proposal.updated_at = self.now
        await self.session.flush()
        await self._audit(
            proposal,
            plan,
            "extended",
            {
                "processing_due_on": {
                    "before": before_due.isoformat(),
                    "after": rules.processing_due_on(proposal.detected_date, True).isoformat(),
                },
                "reason": proposal.extension_reason,
            },
        )
        return (await self._shape_all([proposal]))[0]

    async def _close(
        self,
        proposal: DisciplineProposal,
        plan: Plan,
        action: str,
        before: str,
        changes: dict[str, Any],
    ) -> None:
        proposal.closed_at = self.now
        proposal.closed_by = self.principal.user_id
        proposal.updated_at = self.now
        await self.session.flush()
        await self._audit(
            proposal,
            plan,
            action,
            audit.jsonable(changes) | {"status": {"before": before, "after": proposal.status}},
        )

    async def _audit(
        self, proposal: DisciplineProposal, plan: Plan, action: str, changes: dict[str, Any]
    ) -> None:
        await audit.record(
            self.session,
            actor_of(self.principal),
            "discipline_proposal",
            proposal.id,
            action,
            changes,
            unit_id=plan.unit_id,
            plan_id=plan.id,
        )
